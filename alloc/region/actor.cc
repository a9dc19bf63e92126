// Copyright Broom authors.
#include "alloc/region/region_internal.h"
#include "broom/actor_region.h"

namespace broom {

ActorRegion::ActorRegion(const RegionOptions& options) : region_(ReapRegion::Create(options)) {
  if (region_ == nullptr) internal::ThrowBadAlloc();
}

ActorRegion::~ActorRegion() {
  if (region_ != nullptr) region_->Destroy("destruction of ActorRegion");
}

ActorRegion& ActorRegion::operator=(ActorRegion&& other) noexcept {
  if (this != &other) {
    if (region_ != nullptr) region_->Destroy("assignment to ActorRegion");
    region_ = other.region_;
    other.region_ = nullptr;
  }
  return *this;
}

void ActorRegion::DieMovedFrom() {
  internal::Fatal(__FILE__, __LINE__, "use of a moved-from ActorRegion");
}

}  // namespace broom
