// Tests of the options table (alloc/os/options.h). The environment is read once per process, so
// the tests that set variables run in a fresh process (EXPECT_EXIT, re-executing the binary).
#include "alloc/os/options.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>

namespace broom::internal {
namespace {

using options_internal::ParseOption;

TEST(OptionsTest, EveryOptionHasItsBroomName) {
  EXPECT_STREQ(OptionName(Option::kReserveGb), "BROOM_RESERVE_GB");
  EXPECT_STREQ(OptionName(Option::kChecks), "BROOM_CHECKS");
  EXPECT_STREQ(OptionName(Option::kQuarantineMs), "BROOM_QUARANTINE_MS");
  EXPECT_STREQ(OptionName(Option::kRetainedCapMb), "BROOM_RETAINED_CAP_MB");
  EXPECT_STREQ(OptionName(Option::kDecayMs), "BROOM_DECAY_MS");
  EXPECT_STREQ(OptionName(Option::kHugePages), "BROOM_HUGE_PAGES");
}

TEST(OptionsTest, ValuesParseByTheirRowsRules) {
  int64_t v = -7;
  EXPECT_TRUE(ParseOption(Option::kReserveGb, "16", &v));
  EXPECT_EQ(v, 16);
  EXPECT_FALSE(ParseOption(Option::kReserveGb, "0", &v));      // below the range
  EXPECT_FALSE(ParseOption(Option::kReserveGb, "65537", &v));  // above it
  EXPECT_FALSE(ParseOption(Option::kReserveGb, "16GB", &v));   // trailing text
  EXPECT_FALSE(ParseOption(Option::kReserveGb, "", &v));
  EXPECT_FALSE(ParseOption(Option::kDecayMs, "-1", &v));
  for (const char* off : {"0", "off", "OFF", "no", "false"}) {
    EXPECT_TRUE(ParseOption(Option::kChecks, off, &v)) << off;
    EXPECT_EQ(v, 0) << off;
  }
  for (const char* fatal : {"1", "fatal", "on", "yes", "true"}) {
    EXPECT_TRUE(ParseOption(Option::kChecks, fatal, &v)) << fatal;
    EXPECT_EQ(v, 1) << fatal;
  }
  EXPECT_TRUE(ParseOption(Option::kChecks, "log", &v));
  EXPECT_EQ(v, 2);
  EXPECT_FALSE(ParseOption(Option::kChecks, "loud", &v));
  EXPECT_FALSE(ParseOption(Option::kChecks, "3", &v));
}

class OptionsEnvTest : public testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

TEST_F(OptionsEnvTest, UnsetOptionsHaveTheirDefaults) {
  EXPECT_EXIT(
      {
        for (int i = 0; i < static_cast<int>(Option::kCount); ++i) {
          unsetenv(OptionName(static_cast<Option>(i)));
        }
        const bool ok = GetOption(Option::kReserveGb) == 64 && GetOption(Option::kChecks) == -1 &&
                        GetOption(Option::kQuarantineMs) == 0 &&
                        GetOption(Option::kRetainedCapMb) == 256 &&
                        GetOption(Option::kDecayMs) == 1000 && GetOption(Option::kHugePages) == 0;
        _exit(ok ? 0 : 1);
      },
      testing::ExitedWithCode(0), "");
}

TEST_F(OptionsEnvTest, TheEnvironmentIsReadOnceAtTheFirstRead) {
  EXPECT_EXIT(
      {
        setenv("BROOM_DECAY_MS", "250", 1);
        setenv("BROOM_CHECKS", "log", 1);
        const bool first = GetOption(Option::kDecayMs) == 250 && GetOption(Option::kChecks) == 2;
        setenv("BROOM_DECAY_MS", "999", 1);
        _exit(first && GetOption(Option::kDecayMs) == 250 ? 0 : 1);
      },
      testing::ExitedWithCode(0), "");
}

TEST_F(OptionsEnvTest, ABadValueIsReportedAndTheDefaultUsed) {
  EXPECT_EXIT(
      {
        setenv("BROOM_RESERVE_GB", "lots", 1);
        _exit(GetOption(Option::kReserveGb) == 64 ? 0 : 1);
      },
      testing::ExitedWithCode(0),
      "broom: warning: BROOM_RESERVE_GB=lots is not valid \\(expected an integer 1..65536\\); "
      "using the default \\(64\\)");
}

}  // namespace
}  // namespace broom::internal
