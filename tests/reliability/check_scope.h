// Copyright Broom authors.
//
// CheckScope: sets the process's check mode (and, optionally, its check options) for a test and
// restores both when it goes out of scope. Tests share one process, so a test that changes
// checked mode must put it back. Not thread-safe: use on the test's main thread.
#ifndef BROOM_TESTS_RELIABILITY_CHECK_SCOPE_H_
#define BROOM_TESTS_RELIABILITY_CHECK_SCOPE_H_

#include "broom/check.h"

namespace broom::testing {

class CheckScope {
 public:
  explicit CheckScope(CheckMode mode)
      : previous_mode_(GetCheckMode()), previous_options_(GetCheckOptions()) {
    SetCheckMode(mode);
  }
  CheckScope(CheckMode mode, const CheckOptions& options) : CheckScope(mode) {
    SetCheckOptions(options);
  }
  ~CheckScope() {
    SetCheckMode(previous_mode_);
    SetCheckOptions(previous_options_);
  }
  CheckScope(const CheckScope&) = delete;
  CheckScope& operator=(const CheckScope&) = delete;

  const CheckOptions& previous_options() const { return previous_options_; }

 private:
  CheckMode previous_mode_;
  CheckOptions previous_options_;
};

}  // namespace broom::testing

#endif  // BROOM_TESTS_RELIABILITY_CHECK_SCOPE_H_
