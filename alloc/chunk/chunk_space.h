// Copyright Broom authors. Layer 1 (chunk): what the region layer calls. Includes only layer 0
// (alloc/os, alloc/debug through broom/internal/base.h) and the chunk layer's own pieces.
//
// The chunk layer, bottom up (each piece takes the one below as a parameter, so its tests drive
// it on a fake):
//   space.h         Space: the reservation, the chunk map, carving at the frontier
//   pool.h          Pool<Below>: free blocks and runs, merging, retention and decay
//   thread_cache.h  ThreadCache<PoolT>: a thread's stacks of free blocks in front of the pool
//   stats.h         BlockStats: bytes held by regions, their peak, the process budget
//   quarantine.h    freed blocks kept inaccessible (test mode)
//   chunk_space.cc  the one process-wide instance of each, wired together: a thread's state
//                   (cache, stats share, region counters) created at its first use and flushed
//                   at its exit; the functions below; broom/memory.h; the quarantine switch.
//
// Block life cycle:  fresh (frontier) -> held by a region -> thread cache -> pool (dirty) ->
//                    purged (madvised, still reusable) -> held again ...
// Ownership: a block is owned by exactly one of: a region (owner != null), one thread's cache,
// the pool, or the quarantine. Moving one block is O(1); a region's block list is released in
// O(blocks), with one pool lock per batch of cache overflow.
// Verbs: a holder of blocks Acquires them from the layer below and Releases them to it.
#ifndef BROOM_ALLOC_CHUNK_CHUNK_SPACE_H_
#define BROOM_ALLOC_CHUNK_CHUNK_SPACE_H_

#include <cstddef>
#include <cstdint>

#include "alloc/chunk/address_plan.h"
#include "alloc/chunk/quarantine.h"
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

// Acquires a block of at least `bytes` bytes (header included) for `owner`, charged to the
// process budget. On failure returns null and sets *error (kProcessBudget, kOutOfMemory). The
// header is initialized: owner set, next/prev null, object_class kNoObjectClass, live_objects 0.
// Cost on a thread-cache hit: about 30 instructions, no lock, no shared write.
BlockHeader* AcquireBlock(size_t bytes, Region* owner, AllocError* error);

// Releases one block, or a list linked through `next`, to the calling thread's cache (runs go
// to the pool; in quarantine mode, to the quarantine). Clears `owner`, uncharges. Returns the
// number of bytes released.
size_t ReleaseBlock(BlockHeader* block);
size_t ReleaseBlockList(BlockHeader* head);

// Per-thread counters for region creation/destruction (no shared cache line written).
void NoteRegionCreated(RegionKind kind);
void NoteRegionDestroyed(RegionKind kind);
// A process-unique region id (taken from a per-thread range).
uint64_t NextRegionId();

// Where the process's space was reserved: `active` is the address plan it sits at
// (processes == 0 if it could not be placed there); `requested` is the plan the options asked
// for; `problem` (null if placed) and `error` (an errno, or 0) say why not. Creates the space
// on first use.
struct PlanState {
  AddressPlan active;
  AddressPlan requested;
  const char* problem;
  int error;
};
PlanState GetPlanState();
// Makes `plan` the one the space is reserved at, instead of the options'. Returns false (and
// changes nothing) once the space exists. REQUIRES: no other thread creates the space meanwhile.
bool ConfigurePlan(const AddressPlan& plan);

class Space;
// For the chunk layer's own pieces (loans.cc): the process's space, held bytes charged to the
// calling thread's share, and a free block given back (owner null, uncharged: to the thread's
// cache, a run to the pool).
namespace chunk_internal {
Space& ProcessSpace();
bool ChargeHeld(size_t bytes, AllocError* error);
void UnchargeHeld(size_t bytes);
void ReleaseFreeBlock(BlockHeader* b);
}  // namespace chunk_internal

}  // namespace broom::internal

#endif  // BROOM_ALLOC_CHUNK_CHUNK_SPACE_H_
