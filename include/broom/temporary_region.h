// Copyright Broom authors.
//
// temporary_region.h: lexically scoped scratch memory for one callback.
//
//   TemporaryRegion          owns a region of kind kTemporary.
//   TemporaryRegion::Scope   marks the region, opens it as the thread's allocation context, and
//                            on exit frees everything allocated since the mark (running the
//                            destructors registered since), keeping the blocks for the next
//                            scope. Scopes nest (LIFO).
//
// Typical use, once per callback:
//   TemporaryRegion scratch;                 // lives as long as the operator or thread
//   { TemporaryRegion::Scope s(scratch);     // per callback
//     std::pmr::vector<int> v(broom::CurrentResource()); ... }   // all freed here
#ifndef BROOM_TEMPORARY_REGION_H_
#define BROOM_TEMPORARY_REGION_H_

#include "broom/context.h"
#include "broom/region.h"

namespace broom {

// Scratch region with LIFO scopes.
//
// Ownership and lifetime: the TemporaryRegion object owns its region; destroying it frees all
// memory (blocks go to the thread's cache) and runs outstanding destructors. Move-only. It must
// not be destroyed while a Scope on it is open (fatal).
//
// Thread-safety: owner-thread only. The region and its scopes belong to the thread that created
// it; opening a Scope on another thread is a fatal error (checked at Scope entry, always).
namespace internal {
inline constexpr char kTemporaryRegionName[] = "TemporaryRegion";
}  // namespace internal

class TemporaryRegion {
 public:
  // Creates the region: takes one 4 KiB block from the thread's cache (about 30 ns).
  // Throws std::bad_alloc if no block can be had; LastAllocError() says why.
  explicit TemporaryRegion(const RegionOptions& options = {});
  // Moving leaves `other` empty (any use but destruction or assignment is fatal). Assignment
  // destroys the region this handle owned first (fatal while a Scope is open on it).
  TemporaryRegion(TemporaryRegion&& other) noexcept = default;
  TemporaryRegion& operator=(TemporaryRegion&& other) noexcept = default;

  // Raw allocation; see BumpRegion::Allocate. REQUIRES: not moved-from (fatal).
  void* Allocate(size_t size, size_t align = kDefaultAlignment) {
    return region().Allocate(size, align);
  }

  // Frees everything (destructors run in reverse order), keeping up to
  // RegionOptions::retain_bytes of blocks for reuse. REQUIRES: no Scope open (fatal).
  void Reset();

  BumpRegion& region() const { return region_.get(); }
  RegionStats stats() const { return region().stats(); }

  // RAII mark + allocation context. Not movable. See the file comment.
  class Scope {
   public:
    explicit Scope(TemporaryRegion& temporary);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    BumpRegion* region_;
    internal::RegionMark mark_;
    ContextScope context_;
  };

 private:
  static BumpRegion& CheckOwnerThread(const TemporaryRegion& t);
  internal::OwnedRegion<BumpRegion, internal::kTemporaryRegionName> region_;
};

}  // namespace broom

#endif  // BROOM_TEMPORARY_REGION_H_
