// Copyright Broom authors. Internal: the owning pointer of ActorRegion and TemporaryRegion.
//
//   OwnedRegion<R, kName>   holds the region object a handle owns: destroys it with the handle
//                           or when another is move-assigned, moves by leaving the source empty,
//                           and makes any use of an empty (moved-from) handle fatal, naming the
//                           handle type. TransferableRegion keeps its own pointer: moving it is a
//                           checked transfer (typestate), not a plain move.
//
// Thread-safety: as the handle that contains it (owner only).
#ifndef BROOM_INTERNAL_OWNED_REGION_H_
#define BROOM_INTERNAL_OWNED_REGION_H_

#include <utility>

#include "broom/internal/base.h"

namespace broom::internal {

[[noreturn]] void ThrowBadAlloc();
[[noreturn]] void DieMovedFrom(const char* handle);

template <class R, const char* kName>
class OwnedRegion {
 public:
  // Takes `r` from R::Create; throws std::bad_alloc if creation failed (null).
  explicit OwnedRegion(R* r) : region_(r) {
    if (BROOM_UNLIKELY(r == nullptr)) ThrowBadAlloc();
  }
  ~OwnedRegion() { Drop(); }
  OwnedRegion(OwnedRegion&& other) noexcept : region_(std::exchange(other.region_, nullptr)) {}
  // Destroys the region this handle owned (fatal if it is open), then takes `other`'s.
  OwnedRegion& operator=(OwnedRegion&& other) noexcept {
    if (this != &other) {
      Drop();
      region_ = std::exchange(other.region_, nullptr);
    }
    return *this;
  }
  OwnedRegion(const OwnedRegion&) = delete;
  OwnedRegion& operator=(const OwnedRegion&) = delete;

  // The region. Fatal on a moved-from handle ("use of a moved-from <kName>").
  R& get() const {
    if (BROOM_UNLIKELY(region_ == nullptr)) DieMovedFrom(kName);
    return *region_;
  }

 private:
  void Drop() {
    if (region_ != nullptr) R::DestroyOwned(region_, kName);
  }
  R* region_;
};

}  // namespace broom::internal

#endif  // BROOM_INTERNAL_OWNED_REGION_H_
