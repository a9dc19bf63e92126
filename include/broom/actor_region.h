// Copyright Broom authors.
//
// actor_region.h: an operator's long-lived state, with per-object free (a "reap").
//
//   ActorRegion   owns a region of kind kActor, a ReapRegion (see broom/region.h): objects come
//                 from size-class slabs (16 B .. 8 KiB in 32 classes; larger objects get their
//                 own block), each slab with its own free list, so Free makes memory reusable
//                 at once and a slab whose objects are all freed is reused by any class: an
//                 operator that inserts and deletes forever runs in memory that follows its live
//                 size. Destroying the region releases every block at once, in O(blocks).
#ifndef BROOM_ACTOR_REGION_H_
#define BROOM_ACTOR_REGION_H_

#include "broom/region.h"

namespace broom {

// Actor-scoped region.
//
// Ownership and lifetime: the ActorRegion object owns the region and should live exactly as
// long as the operator (make it the first member of the operator's state, so it is destroyed
// last). Destruction runs the destructors of objects made with broom::New that were not
// Deleted, then releases all blocks. Move-only.
//
// Thread-safety: thread-compatible, owner only. One thread at a time may use it, but that thread
// may change over time (actors migrate between scheduler threads); the engine's hand-over of the
// actor between threads must synchronize (as every actor runtime's mailbox does).
namespace internal {
inline constexpr char kActorRegionName[] = "ActorRegion";
}  // namespace internal

class ActorRegion {
 public:
  // Creates the region (one 2 KiB block for its header; about 30 ns). Throws std::bad_alloc if
  // no block can be had (process budget, out of memory); LastAllocError() says which.
  explicit ActorRegion(const RegionOptions& options = {}) : region_(ReapRegion::Create(options)) {}
  // Moving leaves `other` empty (any use but destruction or assignment is fatal). Assignment
  // destroys the region this handle owned first.
  ActorRegion(ActorRegion&& other) noexcept = default;
  ActorRegion& operator=(ActorRegion&& other) noexcept = default;

  // Allocates from the size class of `size`; see ReapRegion::Allocate (the inline fast path)
  // and broom/region.h for errors. Alignments up to 64 are honoured inside slabs; larger ones
  // take a block of their own.
  void* Allocate(size_t size, size_t align = kDefaultAlignment) {
    return region().Allocate(size, align);
  }

  // Frees one object for reuse; null is ignored. Fatal (always checked): `p` is not owned by
  // this region (heap, another region, freed region), or does not point at the start of an
  // object, or is already free (double free).
  void Free(void* p) { region().Free(p); }

  ReapRegion& region() const { return region_.get(); }
  RegionStats stats() const { return region().stats(); }

  // Usable size of an object allocated here (its size class). REQUIRES: as Free.
  size_t UsableSize(const void* p) const { return region().UsableSize(p); }

 private:
  internal::OwnedRegion<ReapRegion, internal::kActorRegionName> region_;
};

}  // namespace broom

#endif  // BROOM_ACTOR_REGION_H_
