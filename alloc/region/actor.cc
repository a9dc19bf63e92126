// Copyright Broom authors.
#include "broom/actor_region.h"

#include "alloc/region/actor_heap.h"
#include "alloc/region/region_internal.h"

namespace broom {

using internal::RegionAccess;

ActorRegion::ActorRegion(const RegionOptions& options)
    : region_(RegionAccess::CreateOrThrow(RegionKind::kActor, options)) {}

ActorRegion::~ActorRegion() {
  if (region_ != nullptr) RegionAccess::Destroy(region_, "destruction of ActorRegion");
}

ActorRegion& ActorRegion::operator=(ActorRegion&& other) noexcept {
  if (this != &other) {
    if (region_ != nullptr) RegionAccess::Destroy(region_, "assignment to ActorRegion");
    region_ = other.region_;
    other.region_ = nullptr;
  }
  return *this;
}

void ActorRegion::Free(void* p) {
  Region& r = region();
  RegionAccess::actor(&r)->Free(&r, p);
}

size_t ActorRegion::UsableSize(const void* p) const {
  Region& r = region();
  return RegionAccess::actor(&r)->UsableSize(&r, p);
}

void ActorRegion::DieMovedFrom() {
  internal::Fatal(__FILE__, __LINE__, "use of a moved-from ActorRegion");
}

}  // namespace broom
