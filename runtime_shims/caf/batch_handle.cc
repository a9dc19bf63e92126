// Copyright Broom authors.
#include "runtime_shims/caf/batch_handle.h"

namespace broom::caf_shim {

namespace {
std::atomic<lifecycle::MemoryPolicy*> g_receive_policy{nullptr};
}  // namespace

void SetReceivePolicy(lifecycle::MemoryPolicy* policy) {
  g_receive_policy.store(policy, std::memory_order_release);
}
lifecycle::MemoryPolicy* ReceivePolicy() {
  return g_receive_policy.load(std::memory_order_acquire);
}

BatchHandle::BatchHandle(lifecycle::AnyEnvelope&& batch) : box_(new Box) {
  box_->batch = std::move(batch);
}

BatchHandle::BatchHandle(Shipment&& shipment, WireHeader header, uint32_t from) : box_(new Box) {
  box_->shipment.emplace(std::move(shipment));
  box_->header = std::move(header);
  box_->from = from;
}

BatchHandle::BatchHandle(const BatchHandle& other) : box_(other.box_) {
  if (box_ != nullptr) box_->refs.fetch_add(1, std::memory_order_relaxed);
  lifecycle::internal::AddTo(lifecycle::internal::g_shim_counters.handle_copies);
}

void BatchHandle::Release() {
  Box* b = box_;
  box_ = nullptr;
  if (b != nullptr && b->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete b;
}

lifecycle::AnyEnvelope BatchHandle::Take() {
  if (box_ == nullptr) return {};
  BROOM_CHECK(!box_->shipment, "a batch of %s shipped to another process was delivered locally",
              box_->header.type.c_str());
  if (box_->refs.load(std::memory_order_acquire) == 1) {
    lifecycle::AnyEnvelope out = std::move(box_->batch);
    Release();
    return out;
  }
  // Shared: a copy in a fresh arena of the same policy.
  lifecycle::internal::AddTo(lifecycle::internal::g_shim_counters.handle_shared_takes);
  lifecycle::AnyEnvelope out = lifecycle::AnyEnvelope::CopyOf(box_->batch);
  Release();
  return out;
}

WireHeader HeaderOf(const lifecycle::AnyEnvelope& batch) {
  return WireHeader{batch.ops()->name, batch.epoch(), batch.size()};
}

}  // namespace broom::caf_shim
