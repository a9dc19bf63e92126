// Copyright Broom authors. Layer 2 (region): what the region kinds share. Includes layer 1.
#ifndef BROOM_ALLOC_REGION_REGION_INTERNAL_H_
#define BROOM_ALLOC_REGION_REGION_INTERNAL_H_

#include <cstring>

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

// Privileged access to Region for the handle classes and the actor heap.
class RegionAccess {
 public:
  // Creates a region in a fresh 4 KiB block. Returns null (LastAllocError() says why) if no
  // block can be had.
  static Region* Create(RegionKind kind, const RegionOptions& options);
  // Create for the handle constructors: throws std::bad_alloc instead of returning null.
  static Region* CreateOrThrow(RegionKind kind, const RegionOptions& options) {
    Region* r = Create(kind, options);
    if (r == nullptr) ThrowBadAlloc();
    return r;
  }
  // Runs outstanding destructors and releases every block. REQUIRES: not open (fatal).
  static void Destroy(Region* r, const char* op);
  // Frees all objects, keeping up to retain_bytes of blocks. REQUIRES: not open.
  static void Reset(Region* r, const char* op);

  static RegionMark Mark(const Region* r);
  static void Rewind(Region* r, const RegionMark& mark);

  static uint16_t& open_count(Region* r) { return r->open_count_; }
  static uint32_t& scope_depth(Region* r) { return r->scope_depth_; }
  static uint32_t owner_tid(const Region* r) { return r->owner_tid_; }
  static std::atomic<uint32_t>& shared_refs(Region* r) { return r->shared_refs_; }
  static ActorHeap* actor(Region* r) { return r->actor_; }
  static void set_error(Region* r, AllocError e) {
    r->last_error_ = e;
    SetLastError(e);
  }
  // Takes a block for region `r` charged to its budget; links it into the block list if
  // `link`. Returns null (error recorded) on failure.
  static BlockHeader* TakeBlock(Region* r, size_t bytes, bool link);
  // Pushes `b` on the block list (doubly linked outside actor regions' large-object lists).
  static void LinkBlock(Region* r, BlockHeader* b);
  // Transferable regions: if `p` is the object of one of r's dedicated blocks, unlinks and
  // releases the block; otherwise does nothing (the memory is freed in bulk).
  static void FreeDedicated(Region* r, void* p);
  static void NoteRequested(Region* r, size_t n) { r->bytes_requested_ += n; }
  static void NoteFreed(Region* r, size_t n) { r->bytes_freed_ += n; }
  static void GiveBackBlock(Region* r, BlockHeader* b);  // unlinked dedicated block

  // For scans (outlives checks): the block list, the bump state, where objects start.
  static BlockHeader* blocks(const Region* r) { return r->blocks_; }
  static BlockHeader* current(const Region* r) { return r->current_; }
  static char* cursor(const Region* r) { return r->cursor_; }
  static char* FirstObjectByte(BlockHeader* first);
};

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

}  // namespace broom::internal

#endif  // BROOM_ALLOC_REGION_REGION_INTERNAL_H_
