// Copyright Broom authors. Layer 2 (region): what the region kinds share in their
// implementation. Includes layer 1.
#ifndef BROOM_ALLOC_REGION_REGION_INTERNAL_H_
#define BROOM_ALLOC_REGION_REGION_INTERNAL_H_

#include <cstring>
#include <new>

#include "alloc/chunk/chunk_space.h"
#include "broom/context.h"
#include "broom/region.h"

namespace broom::internal {

struct Cleanup {
  void (*fn)(void*);
  void* obj;
  Cleanup* next;
};

void SetLastError(AllocError e);

// Called (when set) before a transferable region changes owner; installed by SetCheckMode.
using TransferHook = void (*)(const Region* r, const char* op);
extern std::atomic<TransferHook> g_transfer_hook;

// Checked mode is on: memory handed out again is zeroed first, so the conservative outlives
// scan never sees stale words in padding or in the unused tail of an object.
inline bool ChecksEnabled() { return g_transfer_hook.load(std::memory_order_relaxed) != nullptr; }
// In checked mode, clears memory about to be handed out again (unpoisoning it first: it may have
// been poisoned by a rewind or free). Does nothing otherwise.
inline void ClearIfChecked(void* p, size_t n) {
  if (BROOM_UNLIKELY(ChecksEnabled())) {
    UnpoisonMemory(p, n);
    std::memset(p, 0, n);
  }
}

// "region #12 'name' (transferable)" into buf, for messages.
const char* Describe(const Region* r, char* buf, size_t n);

// Reads BROOM_CHECKS / BROOM_QUARANTINE_MS once (outlives.cc).
void InitCheckModeOnce();

// Fatal unless `r` is closed (not open on any allocation context, no Scope open).
void CheckNotOpen(const Region* r, uint32_t scope_depth, const char* op);

// Creates a region object in a fresh block of `block_bytes`: `construct(id, block)` places it
// at block->begin(). Returns null, with the thread's last error set, if no block can be had.
template <class R, class Construct>
R* CreateRegion(RegionKind kind, size_t block_bytes, Construct construct) {
  InitCheckModeOnce();
  AllocError error = AllocError::kNone;
  BlockHeader* b = AcquireBlock(block_bytes, nullptr, &error);
  if (b == nullptr) {
    SetLastError(error);
    return nullptr;
  }
  ClearIfChecked(b->begin(), b->size - sizeof(BlockHeader));  // no stale words for scans
  R* r = construct(NextRegionId(), b);
  b->owner.store(r, std::memory_order_release);
  NoteRegionCreated(kind);
  return r;
}

// Bytes in a region's first block before its first object: the block header and the region
// object, rounded to 16 so bump space stays aligned.
template <class R>
inline constexpr size_t kRegionHeaderBytes = (sizeof(BlockHeader) + sizeof(R) + 15) & ~size_t{15};

}  // namespace broom::internal

#endif  // BROOM_ALLOC_REGION_REGION_INTERNAL_H_
