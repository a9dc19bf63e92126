// Copyright Broom authors.
#include "alloc/region/region_internal.h"
#include "broom/temporary_region.h"

namespace broom {

TemporaryRegion::TemporaryRegion(const RegionOptions& options)
    : region_(BumpRegion::Create(RegionKind::kTemporary, options)) {
  region_.get().owner_tid_.store(internal::CurrentThreadId(), std::memory_order_relaxed);
}

void TemporaryRegion::Reset() { region().Reset("TemporaryRegion::Reset"); }

BumpRegion& TemporaryRegion::CheckOwnerThread(const TemporaryRegion& t) {
  BumpRegion& r = t.region();
  if (BROOM_UNLIKELY(r.owner_thread() != internal::CurrentThreadId())) {
    char buf[128];
    internal::Fatal(__FILE__, __LINE__,
                    "TemporaryRegion::Scope on %s from thread %u; it belongs to thread %u "
                    "(temporary regions are owner-thread only)",
                    internal::Describe(&r, buf, sizeof(buf)), internal::CurrentThreadId(),
                    r.owner_thread());
  }
  return r;
}

TemporaryRegion::Scope::Scope(TemporaryRegion& temporary)
    : region_(&CheckOwnerThread(temporary)), mark_(region_->Mark()), context_(*region_) {
  ++region_->scope_depth_;
}

TemporaryRegion::Scope::~Scope() {
  --region_->scope_depth_;
  region_->Rewind(mark_);
}

}  // namespace broom
