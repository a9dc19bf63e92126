// Copyright Broom authors.
#include "broom/temporary_region.h"

#include "alloc/os/os.h"
#include "alloc/region/region_internal.h"

namespace broom {

using internal::RegionAccess;

TemporaryRegion::TemporaryRegion(const RegionOptions& options)
    : region_(RegionAccess::CreateOrThrow(RegionKind::kTemporary, options)) {}

TemporaryRegion::~TemporaryRegion() {
  if (region_ != nullptr) RegionAccess::Destroy(region_, "destruction of TemporaryRegion");
}

TemporaryRegion& TemporaryRegion::operator=(TemporaryRegion&& other) noexcept {
  if (this != &other) {
    if (region_ != nullptr) RegionAccess::Destroy(region_, "assignment to TemporaryRegion");
    region_ = other.region_;
    other.region_ = nullptr;
  }
  return *this;
}

void TemporaryRegion::Reset() { RegionAccess::Reset(&region(), "TemporaryRegion::Reset"); }

void TemporaryRegion::DieMovedFrom() {
  internal::Fatal(__FILE__, __LINE__, "use of a moved-from TemporaryRegion");
}

namespace {
Region& CheckOwnerThread(TemporaryRegion& t) {
  Region& r = t.region();
  if (BROOM_UNLIKELY(RegionAccess::owner_tid(&r) != internal::os::ThreadId())) {
    char buf[128];
    internal::Fatal(__FILE__, __LINE__,
                    "TemporaryRegion::Scope on %s from thread %u; it belongs to thread %u "
                    "(temporary regions are owner-thread only)",
                    internal::Describe(&r, buf, sizeof(buf)), internal::os::ThreadId(),
                    RegionAccess::owner_tid(&r));
  }
  return r;
}
}  // namespace

TemporaryRegion::Scope::Scope(TemporaryRegion& temporary)
    : region_(&CheckOwnerThread(temporary)),
      mark_(RegionAccess::Mark(region_)),
      context_(*region_) {
  ++RegionAccess::scope_depth(region_);
}

TemporaryRegion::Scope::~Scope() {
  --RegionAccess::scope_depth(region_);
  RegionAccess::Rewind(region_, mark_);
}

}  // namespace broom
