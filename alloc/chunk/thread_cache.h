// Copyright Broom authors. Layer 1 (chunk): a thread's cache of free blocks.
//
//   ThreadCache<PoolT>   per block class, a stack of free blocks (hottest on top) in front of a
//                        pool. An empty stack refills half its capacity from the pool in one
//                        call; a full one moves its older half to the pool in one call. So a
//                        thread takes the pool's lock about once per 32 blocks, and a block
//                        freed and taken again by one thread never leaves it. PoolT is
//                        Pool<Space> in the process and a fake in tests; it needs
//                        AcquireBlocks(c, out, want, error) and ReleaseBlocks(c, blocks, n) as
//                        in pool.h.
//
// Ownership: the cache owns the blocks on its stacks; Flush() gives them all back (the process
// does at thread exit and in FlushThreadCache). Destroying a cache that holds blocks leaks them.
// Thread-safety: owner only (one thread), except cached_bytes(), which any thread may read.
#ifndef BROOM_ALLOC_CHUNK_THREAD_CACHE_H_
#define BROOM_ALLOC_CHUNK_THREAD_CACHE_H_

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstring>

#include "broom/internal/base.h"
#include "broom/internal/block.h"
#include "broom/region.h"

namespace broom::internal {

// Blocks of each class a thread cache holds at most (1K: 64 KiB, 2K: 128 KiB, 4K: 256 KiB,
// 8K: 512 KiB, 16K: 512 KiB, 32K: 1 MiB, 64K: 1 MiB, 128K: 2 MiB, 256K: 2 MiB; about 7.5 MiB).
inline constexpr int kCacheLimit[kNumBlockClasses] = {64, 64, 64, 64, 32, 32, 16, 16, 8};
inline constexpr int kCacheSlots = 64;

template <class PoolT>
class ThreadCache {
 public:
  explicit ThreadCache(PoolT* pool) : pool_(pool) {}
  ThreadCache(const ThreadCache&) = delete;
  ThreadCache& operator=(const ThreadCache&) = delete;

  // A free block of class `c` (owner null): the most recently cached one, or, if the stack is
  // empty, one of kCacheLimit[c] / 2 refilled from the pool. Null with *error set if the pool
  // has none and cannot grow. About 6 instructions on a hit.
  BlockHeader* Acquire(int c, AllocError* error) {
    int count = count_[c];
    if (BROOM_LIKELY(count > 0)) {
      --count;
      count_[c] = count;
      AddCached(-static_cast<ptrdiff_t>(BlockClassSize(c)));
      return slots_[c][count];
    }
    return AcquireSlow(c, error);
  }

  // Caches a free block of class `c` (owner already null); if the stack is full, its older half
  // goes to the pool first.
  void Release(BlockHeader* b, int c) {
    int count = count_[c];
    if (BROOM_UNLIKELY(count == kCacheLimit[c])) count = MoveToPool(c, kCacheLimit[c] / 2);
    slots_[c][count] = b;
    count_[c] = count + 1;
    AddCached(static_cast<ptrdiff_t>(BlockClassSize(c)));
  }

  // Gives every cached block back to the pool.
  void Flush() {
    for (int c = 0; c < kNumBlockClasses; ++c) MoveToPool(c, 0);
  }

  int count(int c) const { return count_[c]; }
  // Bytes of blocks on the stacks; readable from any thread (exact for the owner).
  size_t cached_bytes() const { return cached_bytes_.load(std::memory_order_relaxed); }

 private:
  // Written by the owner only: a plain load and store, no read-modify-write.
  void AddCached(ptrdiff_t bytes) {
    cached_bytes_.store(cached_bytes_.load(std::memory_order_relaxed) + static_cast<size_t>(bytes),
                        std::memory_order_relaxed);
  }

  BROOM_NOINLINE BlockHeader* AcquireSlow(int c, AllocError* error) {
    const int n = pool_->AcquireBlocks(c, slots_[c], kCacheLimit[c] / 2, error);
    if (n == 0) return nullptr;
    count_[c] = n - 1;
    AddCached(static_cast<ptrdiff_t>(BlockClassSize(c)) * (n - 1));
    return slots_[c][n - 1];
  }

  // Moves all but the `keep` hottest blocks of class `c` to the pool; returns `keep` (or the
  // count if it was lower).
  BROOM_NOINLINE int MoveToPool(int c, int keep) {
    const int count = count_[c];
    if (count <= keep) return count;
    const int moved = count - keep;
    pool_->ReleaseBlocks(c, slots_[c], moved);  // the oldest: the bottom of the stack
    std::copy(&slots_[c][moved], &slots_[c][moved + keep], &slots_[c][0]);  // overlapping: forward
    count_[c] = keep;
    AddCached(-static_cast<ptrdiff_t>(BlockClassSize(c)) * moved);
    return keep;
  }

  PoolT* const pool_;
  std::atomic<size_t> cached_bytes_{0};
  // INVARIANT: 0 <= count_[c] <= kCacheLimit[c] <= kCacheSlots; slots_[c][0..count_[c]) are
  // free blocks of class c, hottest last.
  int count_[kNumBlockClasses] = {};
  BlockHeader* slots_[kNumBlockClasses][kCacheSlots];
};

}  // namespace broom::internal

#endif  // BROOM_ALLOC_CHUNK_THREAD_CACHE_H_
