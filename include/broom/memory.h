// Copyright Broom authors.
//
// memory.h: process-wide controls and statistics of Broom's region memory.
//
//   GetGlobalStats()      counters over all regions and the block pool.
//   SetRetention()        how much free region memory stays warm, and for how long the rest
//                         may stay before it is returned to the OS (madvise(MADV_DONTNEED)).
//   SetProcessBudget()    a byte limit on the blocks held by all regions together.
//   ReleaseFreeMemory()   returns all cached free memory above the retained cap to the OS now.
//   FlushThreadCache()    moves this thread's cached blocks to the global pool.
//
// Memory model: region memory comes from one address range reserved at first use (default
// 64 GiB of address space, no memory; BROOM_RESERVE_GB overrides it; halved until the kernel
// accepts it). Freed blocks go to a per-thread cache, then to the global pool, and are reused
// hottest-first. Free memory up to the retained cap is never returned; free memory above it is
// returned after `decay_ms` (checked on pool operations, no background thread).
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
  size_t block_bytes = 0;       // bytes of blocks held by live regions
  size_t peak_block_bytes = 0;  // high-water mark of block_bytes
  size_t cached_bytes = 0;      // free, warm bytes in thread caches and the pool
  size_t purged_bytes = 0;      // free bytes returned to the OS (address space kept)
  size_t reserved_bytes = 0;    // address space reserved
  size_t committed_bytes = 0;   // address space made accessible so far
  uint64_t purges = 0;          // madvise calls that returned memory
  uint64_t live(RegionKind k) const {
    return regions_created[static_cast<int>(k)] - regions_destroyed[static_cast<int>(k)];
  }
};
GlobalStats GetGlobalStats();

struct RetentionPolicy {
  size_t retained_cap_bytes = size_t{256} << 20;  // free memory kept warm indefinitely
  uint32_t decay_ms = 1000;                       // age after which memory above the cap goes
};
void SetRetention(const RetentionPolicy& policy);
RetentionPolicy GetRetention();

// Limit on bytes of blocks held by all regions; 0 = unlimited (the default). Allocations that
// would exceed it fail with AllocError::kProcessBudget.
void SetProcessBudget(size_t bytes);
size_t ProcessBudget();

// Returns free memory above the retained cap to the OS now (ignoring decay); with
// `all` = true, every free byte. Returns the bytes returned.
size_t ReleaseFreeMemory(bool all = false);

// Moves this thread's cached free blocks to the global pool (also done at thread exit).
void FlushThreadCache();

}  // namespace broom

#endif  // BROOM_MEMORY_H_
