// Copyright Broom authors. Layer 0 (os): the options table, Broom's only reader of the process
// environment.
//
// Every environment variable Broom reads is a row of one table (options.cc; documented in
// docs/tuning.md). The whole table is parsed once, at the first GetOption call; later changes to
// the environment are not seen. A value that does not parse or is out of range is reported once
// on stderr ("broom: warning: BROOM_X=...: ...; using the default") and the default is used, so a
// typo never changes behaviour silently and never stops the program.
//
// Thread-safety: thread-safe. GetOption never allocates (safe inside malloc, for the preload
// library) and costs one load after the first call.
#ifndef BROOM_ALLOC_OS_OPTIONS_H_
#define BROOM_ALLOC_OS_OPTIONS_H_

#include <cstdint>

namespace broom::internal {

enum class Option : int {
  kReserveGb,      // BROOM_RESERVE_GB: this process's region space (its slice of the plan), GiB
  kChecks,         // BROOM_CHECKS: -1 unset, 0 off, 1 fatal, 2 log (the CheckMode values)
  kQuarantineMs,   // BROOM_QUARANTINE_MS: 0 off, else quarantine freed blocks this long
  kRetainedCapMb,  // BROOM_RETAINED_CAP_MB: RetentionPolicy::retained_cap_bytes, MiB
  kDecayMs,        // BROOM_DECAY_MS: RetentionPolicy::decay_ms
  kCheckHeap,      // BROOM_CHECK_HEAP: -1 unset, 0/1 CheckOptions::heap_pointers
  kCheckSent,      // BROOM_CHECK_SENT: -1 unset, 0/1 CheckOptions::sent_writes
  kPlanBaseGb,     // BROOM_PLAN_BASE_GB: where the job's address plan starts, GiB from 0
  kPlanProcesses,  // BROOM_PLAN_PROCESSES: slices in the plan (processes a job may have)
  kPlanIndex,      // BROOM_PLAN_INDEX: this process's slice (the driver is 0; set for workers)
  kPlanShared,     // BROOM_PLAN_SHARED: 0/1, back this process's slice with shared memory
  kHugePages,      // BROOM_HUGE_PAGES: 0/1, ask for transparent huge pages (MADV_HUGEPAGE)
  kCount,
};

// The option's value: from the environment if set and valid, else its default.
int64_t GetOption(Option option);

// The environment variable's name ("BROOM_RESERVE_GB").
const char* OptionName(Option option);

namespace options_internal {
// Parses one value as the table would ("fatal", "64", ...). Returns false if `text` is not a
// valid value for `option`. For tests of the table.
bool ParseOption(Option option, const char* text, int64_t* value);
}  // namespace options_internal

}  // namespace broom::internal

#endif  // BROOM_ALLOC_OS_OPTIONS_H_
