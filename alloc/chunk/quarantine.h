// Copyright Broom authors. Layer 1 (chunk): quarantine of freed blocks.
//
// In quarantine mode a released block is not reused at once: it is made inaccessible with
// mprotect(PROT_NONE) for `duration_ms` (or until `max_bytes` are quarantined), so a stale read
// or write through a pointer into a freed region faults. A SIGSEGV handler recognizes faults in
// quarantined pages and reports the freed region by id, name and kind before aborting; other
// faults go to the previous handler. Off by default; the public switch is in broom/check.h and
// is implemented by the process wiring (chunk_space.cc), which frees the blocks that leave.
//
// The quarantine knows the space (to mark chunks in the chunk map, so BlockOf stays one load and
// a mask for chunks that never held a quarantined block) and nothing above it: blocks that leave
// quarantine are handed back to the caller.
//
// Thread-safety: thread-safe (one lock; the fault handler reads without it).
#ifndef BROOM_ALLOC_CHUNK_QUARANTINE_H_
#define BROOM_ALLOC_CHUNK_QUARANTINE_H_

#include <atomic>
#include <cstdint>

#include "alloc/chunk/space.h"
#include "broom/check.h"
#include "broom/internal/block.h"

namespace broom::internal {

inline constexpr int kMaxExpired = 64;

namespace quarantine_internal {
extern std::atomic<bool> g_active;
}  // namespace quarantine_internal

// Whether released blocks go to quarantine. One relaxed load.
inline bool QuarantineActive() {
  return quarantine_internal::g_active.load(std::memory_order_relaxed);
}

// Installs the page map and the fault handler for `space` (the first call; later calls do
// nothing), sets the policy and turns quarantine on.
void QuarantineStart(Space* space, const QuarantinePolicy& policy);
// Turns quarantine off: released blocks are freed again. Blocks already quarantined stay until
// taken with QuarantineTakeOldest.
void QuarantineStop();

// Takes `block` (owner cleared, uncharged) into quarantine and returns true, or returns false
// (the caller frees it) if quarantine is off, the block is smaller than a page, or no room can
// be made for it (the ring is full, or it is larger than max_bytes). Blocks whose time is up, or
// the oldest while the bytes would exceed max_bytes, leave first, accessible again: written to
// expired[0..*n), at most kMaxExpired.
bool QuarantineAdmit(BlockHeader* block, BlockHeader** expired, int* n);
// The oldest quarantined block, made accessible again, or null if none is left.
BlockHeader* QuarantineTakeOldest();

// Names the region whose blocks the calling thread is about to release, for the fault report.
// Cheap: three thread-local stores. `kind_name` must be a string with static lifetime.
void SetReleasingRegion(uint64_t id, const char* name, const char* kind_name);

}  // namespace broom::internal

#endif  // BROOM_ALLOC_CHUNK_QUARANTINE_H_
