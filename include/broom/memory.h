// Copyright Broom authors.
//
// memory.h: process-wide controls and statistics of Broom's region memory.
//
//   GetGlobalStats()      counters over all regions, the thread caches and the block pool.
//   SetRetention()        how much free region memory stays warm, and for how long the rest
//                         may stay before it is returned to the OS (madvise(MADV_DONTNEED)).
//   SetProcessBudget()    a byte limit on the blocks held by all regions together.
//   ReleaseFreeMemory()   returns cached free memory above the retention target (or all) now.
//   FlushThreadCache()    moves this thread's cached blocks to the global pool.
//
// Memory model: region memory comes from one address range reserved at first use (default
// 64 GiB of address space, no memory; BROOM_RESERVE_GB overrides it; halved until the kernel
// accepts it). Freed blocks go to a per-thread cache, then to the global pool, and are reused
// hottest-first; free chunks are merged back into larger runs when memory is wanted in another
// shape. The pool keeps warm what the working set needs: the free memory needed to get back to
// the peak of the recent past, within [retained_min_bytes, retained_cap_bytes]. Free memory
// above that is returned to the OS once it has been free `decay_ms` (checked on pool
// operations, no background thread). Environment variables: docs/tuning.md.
//
// Thread-safety: every function here is thread-safe.
#ifndef BROOM_MEMORY_H_
#define BROOM_MEMORY_H_

#include <cstddef>
#include <cstdint>

#include "broom/region.h"

namespace broom {

struct GlobalStats {
  uint64_t regions_created[kNumRegionKinds] = {};
  uint64_t regions_destroyed[kNumRegionKinds] = {};
  size_t block_bytes = 0;          // bytes of blocks held by live regions
  size_t peak_block_bytes = 0;     // high-water mark of block_bytes (exact when one thread
                                   // allocates; with several, within 1 MiB per thread)
  size_t cached_bytes = 0;         // free, warm bytes in thread caches and the pool
  size_t thread_cache_bytes = 0;   // of those, in the caches of running threads
  size_t purged_bytes = 0;         // free bytes not resident (returned to the OS, or never touched)
  size_t retain_target_bytes = 0;  // free bytes the pool keeps warm now (see RetentionPolicy)
  size_t reserved_bytes = 0;       // address space reserved
  size_t committed_bytes = 0;      // address space made accessible so far
  uint64_t purges = 0;             // madvise calls that returned memory
  uint64_t threads = 0;            // threads with a block cache (running, having used regions)
  uint64_t live(RegionKind k) const {
    return regions_created[static_cast<int>(k)] - regions_destroyed[static_cast<int>(k)];
  }
};
GlobalStats GetGlobalStats();

// What the pool keeps of free region memory. It measures the memory in use (blocks held by
// regions and cached by threads) and keeps its peak over the last `peak_window_ms`; the free
// memory needed to get back to that peak stays warm, within [retained_min_bytes,
// retained_cap_bytes]. Free memory above that goes back to the OS once it has been free for
// `decay_ms`. So a job that peaks each epoch keeps one epoch's worth warm, and a process whose
// working set shrinks gives the difference back within a window.
struct RetentionPolicy {
  size_t retained_cap_bytes = size_t{256} << 20;  // never more than this warm (a ceiling)
  size_t retained_min_bytes = size_t{8} << 20;    // always this much may stay warm
  uint32_t decay_ms = 1000;         // age after which free memory above the target goes
  uint32_t peak_window_ms = 10000;  // how far back the working set's peak is remembered
};
// Defaults: as above, or BROOM_RETAINED_CAP_MB and BROOM_DECAY_MS from the environment.
void SetRetention(const RetentionPolicy& policy);
RetentionPolicy GetRetention();

// Limit on bytes of blocks held by all regions; 0 = unlimited (the default). Allocations that
// would exceed it fail with AllocError::kProcessBudget.
void SetProcessBudget(size_t bytes);
size_t ProcessBudget();

// Moves this thread's cache to the pool, then returns the pool's free memory above the retention
// target to the OS now (ignoring decay); with `all` = true, every free byte in the pool that can
// be (1 and 2 KiB blocks sharing a page with a block in use stay). Returns the bytes returned.
// Other threads' caches are not touched.
size_t ReleaseFreeMemory(bool all = false);

// Moves this thread's cached free blocks to the global pool (also done at thread exit).
void FlushThreadCache();

}  // namespace broom

#endif  // BROOM_MEMORY_H_
