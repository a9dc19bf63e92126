// Copyright Broom authors. Layer 2 (region): the size-class heap inside an actor region.
//
// Objects up to kMaxSmall bytes come from slabs: blocks dedicated to one size class (recorded
// in the block header, so Free needs no size). Each class keeps an intrusive free list; a freed
// object is reused by the next allocation of its class (LIFO, cache-warm). Larger objects get a
// dedicated block, released to the thread cache when freed. Slabs stay with the region until it
// is destroyed, so memory is bounded by the peak of live bytes per class.
#ifndef BROOM_ALLOC_REGION_ACTOR_HEAP_H_
#define BROOM_ALLOC_REGION_ACTOR_HEAP_H_

#include <cstddef>
#include <cstdint>

#include "alloc/region/region_internal.h"
#include "broom/context.h"
#include "broom/region.h"

namespace broom::internal {

class ActorHeap {
 public:
  static constexpr int kNumClasses = 32;
  static constexpr size_t kMaxSmall = 8192;

  // 16, 32, ..., 128 (steps of 16), then four classes per doubling up to 8192.
  static int SizeClass(size_t size) {
    if (size <= 128) return size == 0 ? 0 : static_cast<int>((size + 15) >> 4) - 1;
    size_t m = size - 1;
    int lg = 63 - __builtin_clzll(m);
    return 8 + (lg - 7) * 4 + static_cast<int>((m >> (lg - 2)) & 3);
  }
  static constexpr size_t ClassSize(int c) {
    if (c < 8) return static_cast<size_t>(c + 1) * 16;
    size_t base = size_t{128} << ((c - 8) / 4);
    return base + static_cast<size_t>((c - 8) % 4 + 1) * (base / 4);
  }
  // Offset of the first object in a slab: power-of-two classes start at a multiple of their
  // size (capped at 4096) so they can serve aligned requests.
  static constexpr size_t SlabStart(int c) {
    size_t s = ClassSize(c);
    if ((s & (s - 1)) == 0 && s > sizeof(BlockHeader)) return s < 4096 ? s : 4096;
    return sizeof(BlockHeader);
  }

  void* Allocate(Region* r, size_t size, size_t align);
  void Free(Region* r, void* p);
  size_t UsableSize(Region* r, const void* p);
  // Runs destructors of objects made by New and not deleted, and releases dedicated blocks.
  // Slabs are released with the region's block list.
  void DestroyAll(Region* r);

  // For scans: the end of the carved part of slab `b`, and whether the object at `p` is on a
  // free list (its tag word is set; reading it is safe even under ASan).
  char* SlabEnd(const BlockHeader* b) const;
  static bool LooksFreed(const void* p);
  BlockHeader* large_blocks() const { return large_; }

  void LinkCleanup(ActorCleanupNode* node);
  void UnlinkCleanup(ActorCleanupNode* node);

 private:
  struct ClassState {
    void* free_list;   // intrusive: word 0 = next, word 1 = kFreedTag ^ address
    char* cursor;      // bump pointer in the newest slab of this class
    char* limit;
    uint32_t slabs;    // slabs taken so far (drives slab growth)
    uint32_t reserved;
  };
  void* AllocateSlow(Region* r, int c);
  void* AllocateLarge(Region* r, size_t size, size_t align);
  [[noreturn]] void DieBadFree(Region* r, const void* p, const char* why);

  ClassState classes_[kNumClasses] = {};
  BlockHeader* large_ = nullptr;             // dedicated blocks, doubly linked via next/prev
  ActorCleanupNode* cleanups_ = nullptr;     // newest first
};

}  // namespace broom::internal

#endif  // BROOM_ALLOC_REGION_ACTOR_HEAP_H_
