// Copyright Broom authors. Layer 1 (chunk): the reserved space, blocks, per-thread caches and
// the global pool. Includes only layer 0 (alloc/os) and the public internal/block.h.
//
// Block life cycle:  fresh (frontier) -> held by a region -> thread cache -> global pool
//                    (dirty, warm) -> purged (madvised, still reusable) -> held again ...
// Ownership: a block is owned by exactly one of: a region (owner != null), one thread's cache,
// or the pool. Transitions are O(1) per block; bulk release of a region's block list is
// O(blocks) with one pool lock per batch of overflow.
#ifndef BROOM_ALLOC_CHUNK_CHUNK_SPACE_H_
#define BROOM_ALLOC_CHUNK_CHUNK_SPACE_H_

#include <cstddef>
#include <cstdint>

#include "broom/internal/block.h"
#include "broom/memory.h"
#include "broom/region.h"

namespace broom::internal {

// Smallest block class holding `bytes` (header included), or -1 if it needs a run.
inline int BlockClassFor(size_t bytes) {
  for (int c = 0; c < kNumBlockClasses; ++c) {
    if (bytes <= BlockClassSize(c)) return c;
  }
  return -1;
}

// Takes a block of at least `bytes` bytes (header included) for `owner`. On failure returns
// null and sets *error (kBadSize, kProcessBudget, kOutOfMemory). The header is initialized:
// owner set, next/prev null, object_class kNoObjectClass, live_objects 0.
BlockHeader* AcquireBlock(size_t bytes, Region* owner, AllocError* error);

// Returns one block, or a list linked through `next`, to the calling thread's cache (runs go to
// the pool). Clears `owner`. Returns the number of bytes released.
size_t ReleaseBlock(BlockHeader* block);
size_t ReleaseBlockList(BlockHeader* head);

// Reserves the space if that has not happened yet (g_space is valid afterwards).
void EnsureSpace();

// Puts a free block (owner already cleared, already uncharged) in the thread cache or the pool.
void ReturnFreeBlock(BlockHeader* block);

// Names the region whose blocks the calling thread is about to release (for quarantine
// reports). Cheap: three thread-local stores.
void SetReleasingRegion(uint64_t id, const char* name, RegionKind kind);

// Per-thread counters for region creation/destruction (cheap: no shared cache line).
void NoteRegionCreated(RegionKind kind);
void NoteRegionDestroyed(RegionKind kind);
// A process-unique region id (taken from a per-thread range).
uint64_t NextRegionId();

}  // namespace broom::internal

#endif  // BROOM_ALLOC_CHUNK_CHUNK_SPACE_H_
