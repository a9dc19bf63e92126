// Copyright Broom authors. Internal to the profiler: the site table shared by the recording
// hooks (profiler.cc) and the report writer (profile_report.cc).
#ifndef BROOM_RUNTIME_SHIMS_PRELOAD_PROFILER_INTERNAL_H_
#define BROOM_RUNTIME_SHIMS_PRELOAD_PROFILER_INTERNAL_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "runtime_shims/preload/profiler.h"

namespace broom::preload::profiler {

inline constexpr size_t kMaxSites = 1 << 15;  // more distinct stacks fold into site 0 ("other")

// One distinct allocation stack and its counters. `frames` and `nframes` are written by the
// thread that claims the slot (CAS on `key`) and read only by the report.
struct alignas(64) Site {
  std::atomic<uint64_t> key;  // hash of the stack; 0 = empty slot; 1 = the "other" site
  uintptr_t frames[kMaxFrames];
  int nframes;
  std::atomic<uint64_t> count, bytes, freed, cross_thread, grouped, at_exit, long_lived, replaced;
  std::atomic<uint64_t> lifetime_ticks;  // sum over freed objects
  std::atomic<uint64_t> last_free;       // tsc of the latest free from this site
  std::atomic<uint64_t> max_size;
  std::atomic<uint64_t> hist[kBuckets];
  std::atomic<uint64_t> scope[kScopeFrames + 2];
};

struct State {
  Site* sites = nullptr;  // kMaxSites entries
  double ticks_per_ns = 1.0;
  uint64_t bucket_limit[kBuckets - 1] = {};  // in ticks
  uint64_t window_ticks = 0;
  uint64_t min_long_ticks = 0;  // 1 ms: shorter lives are never "long"
  uint64_t start_tsc = 0;
  std::atomic<uint64_t> exit_tsc{0};   // when exit() began; 0 before
  std::atomic<uint64_t> own_ticks{0};  // time spent in OnAlloc/OnFree, all threads (folded)
  int owner_pid = 0;
  const char* unwinder = "";
};
extern State g_state;

const char* BucketLabel(int b);
void Counts(const Site& s, SiteCounts* out);
// The profiler's own time so far (all threads; the calling thread's unfolded part included).
uint64_t OwnTicks();

}  // namespace broom::preload::profiler

#endif  // BROOM_RUNTIME_SHIMS_PRELOAD_PROFILER_INTERNAL_H_
