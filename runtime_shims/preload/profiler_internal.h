// Copyright Broom authors. Internal to the profiler: the site table shared by the recording
// hooks (profiler.cc) and the report writer (profile_report.cc).
#ifndef BROOM_RUNTIME_SHIMS_PRELOAD_PROFILER_INTERNAL_H_
#define BROOM_RUNTIME_SHIMS_PRELOAD_PROFILER_INTERNAL_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "runtime_shims/preload/profiler.h"

namespace broom::preload::profiler {

inline constexpr int kBuckets = 9;        // decades: <1us ... <10s, >=10s
inline constexpr size_t kMaxSites = 1 << 15;  // more distinct sites fold into site 0 ("other")

struct alignas(64) Site {
  std::atomic<uintptr_t> addr;  // return address; 0 = empty slot; 1 = the "other" site
  std::atomic<uint64_t> count, bytes, freed, cross_thread, grouped;
  std::atomic<uint64_t> lifetime_ticks;  // sum over freed objects
  std::atomic<uint64_t> last_free;       // tsc of the latest free from this site
  std::atomic<uint64_t> max_size;
  std::atomic<uint64_t> hist[kBuckets];
};

struct State {
  Site* sites = nullptr;       // kMaxSites entries
  double ticks_per_ns = 1.0;
  uint64_t bucket_limit[kBuckets - 1] = {};  // in ticks
  uint64_t window_ticks = 0;
  uint64_t start_tsc = 0;
  int owner_pid = 0;
};
extern State g_state;

const char* BucketLabel(int b);
void Counts(const Site& s, SiteCounts* out);

}  // namespace broom::preload::profiler

#endif  // BROOM_RUNTIME_SHIMS_PRELOAD_PROFILER_INTERNAL_H_
