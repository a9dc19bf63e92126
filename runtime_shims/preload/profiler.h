// Copyright Broom authors.
//
// profiler.h: the allocation-lifetime profiler (BROOM_CONF=profile:FILE).
//
// For every heap allocation made while it is on, the profiler records the call site (the
// return address of malloc/new), the allocating thread and a timestamp (rdtsc) in a sharded
// pointer table; at free it removes the record and adds to the site's counters: frees, frees
// by another thread than the allocating one, a lifetime histogram (decades from 1 us to 10 s),
// and "group deaths". A free is a group death when the previous free of an object from the same
// site happened at most group_window_us earlier and the object itself lived longer than that
// window: objects that lived a while and then died together, which is what a region freed in
// bulk captures. Objects still live at exit are counted as such.
//
// At exit Report() symbolizes sites with dladdr (demangled), ranks them and writes FILE (JSON)
// and FILE.txt (readable), suggesting for each site a region kind: transferable (freed by
// another thread, or dies in groups), temporary (short-lived, same thread), actor (long-lived,
// freed one by one) or heap (no clear pattern). Region allocations are not profiled.
//
// Thread-safety: OnAlloc/OnFree/Take/Put/Retire are thread-safe (one SpinLock per shard of the
// pointer table, held across fork by fork.cc; site counters are atomics). Enable and Report are
// called once, by the library constructor and destructor.
#ifndef BROOM_RUNTIME_SHIMS_PRELOAD_PROFILER_H_
#define BROOM_RUNTIME_SHIMS_PRELOAD_PROFILER_H_

#include <cstddef>
#include <cstdint>

#include "runtime_shims/preload/config.h"
#include "runtime_shims/preload/spin_lock.h"

namespace broom::preload::profiler {

struct Record {
  uint64_t tsc;   // allocation time
  uint32_t site;  // index in the site table
  uint32_t tid;   // ThreadIndex() of the allocating thread
};

// Allocates the tables and calibrates the clock (about 2 ms). False if the tables cannot be
// allocated (the profiler stays off, with a warning).
bool Enable(const Config& config);
void OnAlloc(void* p, size_t size, void* site);
void OnFree(void* p);
// Removes and returns p's record (realloc keeps it aside while jemalloc moves the object).
bool Take(void* p, Record* out);
void Put(void* p, const Record& record);
// Counts the death of `record` now, on this thread.
void Retire(const Record& record);

// Writes the report files. Returns false (with a warning) if they cannot be written.
bool Report(const Config& config);

// Per-site counters, for tests. Returns false if `site` was never seen.
struct SiteCounts {
  uint64_t count, bytes, freed, cross_thread, grouped;
  uint64_t lifetime_hist[9];  // <1us, <10us, ..., <10s, >=10s
};
bool CountsFor(void* site, SiteCounts* out);
// The suggestion for a site with these counts ("transferable", "temporary", "actor", "heap").
const char* Suggest(const SiteCounts& c, const char** reason);

// The pointer table's shard locks, for the fork handlers (fork.cc).
inline constexpr int kShards = 256;
SpinLock& ShardLock(int i);

}  // namespace broom::preload::profiler

#endif  // BROOM_RUNTIME_SHIMS_PRELOAD_PROFILER_H_
