// Copyright Broom authors.
//
// batch_handle.h: a copyable, reference-counted carrier of one batch, for engines (CAF) whose
// message types must be copyable. No CAF include here.
//
//   BatchHandle   holds one AnyEnvelope in a heap box with an atomic reference count.
//                 Copying shares the box (and counts a handle copy in ShimStats); moving does
//                 not. The receiver calls Take() to become the batch's unique owner.
//                 A batch leaving for another process by address is held as its
//                 broom::Shipment instead (made by the sending actor, written out by CAF's
//                 serializer on its I/O thread).
// The wire form of a batch that crosses processes is in wire.cc (CAF inspectors, messages.h).
//
// Ownership and lifetime: the box owns the envelope until Take(); the batch's arena is freed
// when the envelope is (by the receiver after its callback, or with the last handle if nobody
// took it). A shipment is Sent() once the serializer has written it; a shipment whose message
// was never written (the connection went first) is dropped with the box, which returns its
// blocks (ship.h). Thread-safety: distinct handles sharing a box may be used and destroyed on
// different threads (atomic count); Take() must be called by one thread, the receiver.
#ifndef BROOM_RUNTIME_SHIMS_CAF_BATCH_HANDLE_H_
#define BROOM_RUNTIME_SHIMS_CAF_BATCH_HANDLE_H_

#include <atomic>
#include <optional>
#include <string>
#include <vector>

#include "broom/lifecycle/envelope.h"
#include "broom/ship.h"

namespace broom::caf_shim {

// Wire form of a batch: header (record type name, epoch, record count) plus the records (see
// messages.h).
struct WireHeader {
  std::string type;
  uint64_t epoch = 0;
  uint64_t count = 0;
};
WireHeader HeaderOf(const lifecycle::AnyEnvelope& batch);

class BatchHandle {
 public:
  BatchHandle() = default;
  explicit BatchHandle(lifecycle::AnyEnvelope&& batch);
  // A batch shipped by address from this process (slice `from` of the address plan); `header`
  // describes it (HeaderOf, taken before the envelope was shipped).
  BatchHandle(Shipment&& shipment, WireHeader header, uint32_t from);
  BatchHandle(const BatchHandle& other);
  BatchHandle(BatchHandle&& other) noexcept : box_(other.box_) { other.box_ = nullptr; }
  BatchHandle& operator=(BatchHandle other) noexcept {
    std::swap(box_, other.box_);
    return *this;
  }
  ~BatchHandle() { Release(); }

  explicit operator bool() const {
    return box_ != nullptr && (static_cast<bool>(box_->batch) || box_->shipment.has_value());
  }
  // The batch, read-only (serialization). REQUIRES: non-empty, not shipped.
  const lifecycle::AnyEnvelope& batch() const { return box_->batch; }
  // The shipment of a batch leaving by address, else null; its header and sending slice.
  Shipment* shipment() const {
    return box_ != nullptr && box_->shipment ? &*box_->shipment : nullptr;
  }
  const WireHeader& header() const { return box_->header; }
  uint32_t from() const { return box_->from; }

  // Makes the caller the unique owner of the batch. If this is the only handle, the envelope
  // moves out (no copy). If the box is shared (the engine delivered one message to several
  // receivers), the batch is deep-copied into a fresh arena (counted in
  // ShimStats::handle_shared_takes) so every receiver owns its own. Empty handle: empty result.
  // Fatal for a shipped handle (it only ever goes to another process).
  lifecycle::AnyEnvelope Take();

 private:
  struct Box {
    std::atomic<uint32_t> refs{1};
    lifecycle::AnyEnvelope batch;
    std::optional<Shipment> shipment;  // set instead of `batch` for a batch shipped by address
    WireHeader header;                 // of the shipped batch
    uint32_t from = 0;
  };
  void Release();
  Box* box_ = nullptr;
};

// The memory policy that batches arriving from other processes are rebuilt with (the policy of
// the job this process currently runs). Thread-safe.
void SetReceivePolicy(lifecycle::MemoryPolicy* policy);
lifecycle::MemoryPolicy* ReceivePolicy();

}  // namespace broom::caf_shim

#endif  // BROOM_RUNTIME_SHIMS_CAF_BATCH_HANDLE_H_
