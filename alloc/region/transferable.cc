// Copyright Broom authors.
#include "alloc/region/region_internal.h"
#include "broom/transferable_region.h"

namespace broom {

using State = TransferableRegion::State;

const char* StateName(State state) {
  switch (state) {
    case State::kClosed:
      return "CLOSED";
    case State::kOpen:
      return "OPEN";
    case State::kFreed:
      return "FREED";
    case State::kTransferred:
      return "TRANSFERRED";
  }
  return "?";
}

TransferableRegion::TransferableRegion(const RegionOptions& options)
    : region_(BumpRegion::Create(RegionKind::kTransferable, options)) {
  if (region_ == nullptr) internal::ThrowBadAlloc();
}

TransferableRegion::~TransferableRegion() {
  if (region_ != nullptr) region_->Destroy("destruction of TransferableRegion");
}

TransferableRegion::TransferableRegion(TransferableRegion&& other) noexcept
    : region_(other.Release()) {
  if (region_ == nullptr) {  // moving an already dead handle keeps its story
    dead_state_ = other.dead_state_;
    dead_id_ = other.dead_id_;
  }
}

TransferableRegion& TransferableRegion::operator=(TransferableRegion&& other) noexcept {
  if (this != &other) {
    if (region_ != nullptr) {
      region_->Destroy("assignment to TransferableRegion (frees the old region)");
    }
    region_ = other.Release();
    dead_state_ = region_ != nullptr ? State::kClosed : other.dead_state_;
    dead_id_ = other.dead_id_;
  }
  return *this;
}

State TransferableRegion::state() const {
  if (region_ == nullptr) return dead_state_;
  return region_->open_count() > 0 ? State::kOpen : State::kClosed;
}

void TransferableRegion::DieUnusable(const char* op) const {
  if (dead_id_ == 0) {
    internal::Fatal(__FILE__, __LINE__,
                    "TransferableRegion::%s on a handle that owns no region (moved-from)", op);
  }
  internal::Fatal(__FILE__, __LINE__,
                  "TransferableRegion::%s on transferable region #%llu after %s (typestate %s): "
                  "a freed or transferred region can never be used again through this handle",
                  op, static_cast<unsigned long long>(dead_id_),
                  dead_state_ == State::kFreed ? "Free" : "Transfer", StateName(dead_state_));
}

void TransferableRegion::CheckClosed(const char* op) const {
  Region& r = region(op);
  r.CheckThread(op);  // open on another thread: name both threads
  if (BROOM_UNLIKELY(r.open_count() > 0)) {
    char buf[128];
    internal::Fatal(__FILE__, __LINE__,
                    "TransferableRegion::%s on %s while it is OPEN (open %u times): %s is legal "
                    "only when CLOSED",
                    op, internal::Describe(&r, buf, sizeof(buf)), r.open_count(), op);
  }
}

void TransferableRegion::Free() {
  CheckClosed("Free");
  dead_id_ = region_->id();
  region_->Destroy("TransferableRegion::Free");
  region_ = nullptr;
  dead_state_ = State::kFreed;
}

void TransferableRegion::Reset() {
  CheckClosed("Reset");
  region_->Reset("TransferableRegion::Reset");
}

TransferableRegion TransferableRegion::Transfer() {
  region("Transfer");  // fatal on a freed or transferred handle
  return TransferableRegion(std::move(*this));
}

BumpRegion* TransferableRegion::Release() {
  if (region_ == nullptr) return nullptr;
  CheckClosed("Transfer");
  BumpRegion* r = region_;
  if (internal::TransferHook hook = internal::g_transfer_hook.load(std::memory_order_acquire)) {
    hook(r, "transfer");
  }
  dead_id_ = r->id();
  region_ = nullptr;
  dead_state_ = State::kTransferred;
  return r;
}

TransferableRegion TransferableRegion::Adopt(Region* r) {
  BROOM_CHECK(r != nullptr && r->kind() == RegionKind::kTransferable,
              "TransferableRegion::Adopt of %s",
              r == nullptr ? "null" : "a non-transferable region");
  return TransferableRegion(AdoptTag{}, static_cast<BumpRegion*>(r));
}

SharedRegion TransferableRegion::Share() && {
  CheckClosed("Share");
  BumpRegion* r = Release();
  r->shared_refs_.store(1, std::memory_order_relaxed);
  return SharedRegion(r);
}

SharedRegion::SharedRegion(const SharedRegion& other) : region_(other.region_) {
  if (region_ != nullptr) region_->shared_refs_.fetch_add(1, std::memory_order_relaxed);
}

void SharedRegion::reset() {
  BumpRegion* r = region_;
  region_ = nullptr;
  if (r != nullptr && r->shared_refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    r->Destroy("release of the last SharedRegion");
  }
}

uint32_t SharedRegion::use_count() const {
  return region_ != nullptr ? region_->shared_refs_.load(std::memory_order_relaxed) : 0;
}

}  // namespace broom
