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

// Size classes: 16, 32, ..., 128 (steps of 16), then four classes per doubling up to 8192.
constexpr int ActorSizeClassSlow(size_t size) {
  if (size <= 128) return size == 0 ? 0 : static_cast<int>((size + 15) >> 4) - 1;
  size_t m = size - 1;
  int lg = 63 - __builtin_clzll(m);
  return 8 + (lg - 7) * 4 + static_cast<int>((m >> (lg - 2)) & 3);
}
constexpr size_t ActorClassSize(int c) {
  if (c < 8) return static_cast<size_t>(c + 1) * 16;
  size_t base = size_t{128} << ((c - 8) / 4);
  return base + static_cast<size_t>((c - 8) % 4 + 1) * (base / 4);
}
inline constexpr size_t kActorTableMax = 1024;
inline constexpr int kActorNumClasses = 32;
inline constexpr auto kActorClassOf = [] {
  struct {
    uint8_t v[kActorTableMax / 16 + 1];
  } t{};
  for (size_t i = 0; i <= kActorTableMax / 16; ++i) {
    t.v[i] = static_cast<uint8_t>(ActorSizeClassSlow(i * 16));
  }
  return t;
}();
inline constexpr auto kActorClassSizes = [] {
  struct {
    size_t v[kActorNumClasses];
  } t{};
  for (int c = 0; c < kActorNumClasses; ++c) t.v[c] = ActorClassSize(c);
  return t;
}();

class ActorHeap {
 public:
  static constexpr int kNumClasses = kActorNumClasses;
  static constexpr size_t kMaxSmall = 8192;

  static constexpr size_t ClassSize(int c) { return ActorClassSize(c); }
  // Table lookup up to 1 KiB (one load, no branches that mispredict on mixed sizes).
  static int SizeClass(size_t size) {
    return size <= kActorTableMax ? kActorClassOf.v[(size + 15) >> 4] : ActorSizeClassSlow(size);
  }
  // Offset of the first object in a slab: power-of-two classes start at a multiple of their
  // size (capped at 4096) so they can serve aligned requests.
  static constexpr size_t SlabStart(int c) {
    size_t s = ClassSize(c);
    if ((s & (s - 1)) == 0 && s > sizeof(BlockHeader)) return s < 4096 ? s : 4096;
    return sizeof(BlockHeader);
  }

  // Inline fast path: pop the class's free list or bump in its newest slab.
  void* Allocate(Region* r, size_t size, size_t align) {
    // align in {1, 2, 4, 8, 16}: one shift of a mask of those bits.
    if (BROOM_LIKELY(size <= kMaxSmall && align <= 16 && ((0x10116u >> align) & 1) != 0)) {
      const int c = SizeClass(size);
      ClassState& s = classes_[c];
      auto* p = static_cast<uintptr_t*>(s.free_list);
      if (BROOM_LIKELY(p != nullptr)) {
        UnpoisonMemory(p, kActorClassSizes.v[c]);
        s.free_list = reinterpret_cast<void*>(p[0]);
        p[1] = 0;  // clear the freed tag
        RegionAccess::NoteRequested(r, kActorClassSizes.v[c]);
        return p;
      }
      if (BROOM_LIKELY(s.cursor != s.limit)) {
        p = reinterpret_cast<uintptr_t*>(s.cursor);
        s.cursor += kActorClassSizes.v[c];
        p[1] = 0;  // recycled blocks may hold a stale freed tag
        RegionAccess::NoteRequested(r, kActorClassSizes.v[c]);
        return p;
      }
    }
    return AllocateSlowPath(r, size, align);
  }
  void Free(Region* r, void* p);
  size_t UsableSize(Region* r, const void* p);
  // Runs destructors of objects made by New and not deleted, and releases dedicated blocks.
  // Slabs are released with the region's block list.
  void DestroyAll(Region* r);

  // For scans: the end of the carved part of slab `b`, and whether the object at `p` is on a
  // free list (its tag word is set; reading it is safe even under ASan).
  char* SlabEnd(const BlockHeader* b) const;
  static bool LooksFreed(const void* p);
  // Fatal ("double free") if `p` is on its class's free list; returns otherwise.
  void DieIfFreed(Region* r, void* p);
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
  BROOM_NOINLINE void* AllocateSlowPath(Region* r, size_t size, size_t align);
  void* AllocateSlow(Region* r, int c);
  void* AllocateLarge(Region* r, size_t size, size_t align);
  [[noreturn]] void DieBadFree(Region* r, const void* p, const char* why);

  ClassState classes_[kNumClasses] = {};
  BlockHeader* large_ = nullptr;             // dedicated blocks, doubly linked via next/prev
  ActorCleanupNode* cleanups_ = nullptr;     // newest first
};

}  // namespace broom::internal

#endif  // BROOM_ALLOC_REGION_ACTOR_HEAP_H_
