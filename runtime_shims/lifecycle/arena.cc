// Copyright Broom authors.
#include "broom/lifecycle/arena.h"

namespace broom::lifecycle {

const char* ArenaUseName(ArenaUse use) {
  switch (use) {
    case ArenaUse::kMessage:
      return "message";
    case ArenaUse::kOperatorState:
      return "operator-state";
    case ArenaUse::kEpochState:
      return "epoch-state";
  }
  return "?";
}

Arena::Arena(ArenaUse use, Holder holder) : holder_(std::move(holder)), use_(use) {
  internal::NoteArenaCreated(static_cast<int>(use));
}

Arena Arena::NewTransferable(ArenaUse use, const RegionOptions& options) {
  return Arena(use, Holder(std::make_unique<internal::TransferableSlot>(options)));
}

Arena::Arena(ArenaUse use, TransferableRegion region)
    : Arena(use, Holder(std::make_unique<internal::TransferableSlot>(std::move(region)))) {}

Arena::Arena(ArenaUse use, ActorRegion region) : Arena(use, Holder(std::move(region))) {}

Arena Arena::OnHeap(ArenaUse use, std::pmr::memory_resource* heap) {
  return Arena(use, Holder(heap));
}

Arena Arena::WithBackend(ArenaUse use, ArenaBackend* backend) {
  return Arena(use, Holder(std::unique_ptr<ArenaBackend, internal::BackendDestroyer>(backend)));
}

std::pmr::memory_resource* Arena::resource() const {
  switch (holder_.index()) {
    case 1:
    case 2:
      return region();
    case 3:
      return std::get<3>(holder_);
    case 4:
      return std::get<4>(holder_)->resource();
  }
  return nullptr;
}

Region* Arena::region() const {
  if (auto* slot = std::get_if<1>(&holder_)) return &(*slot)->handle().region();
  if (auto* actor = std::get_if<2>(&holder_)) return &actor->region();
  return nullptr;
}

TransferableRegion* Arena::transferable() {
  auto* slot = std::get_if<1>(&holder_);
  return slot != nullptr ? &(*slot)->handle() : nullptr;
}

ActorRegion* Arena::actor() { return std::get_if<2>(&holder_); }

size_t Arena::bytes() const {
  if (Region* r = region()) return r->stats().block_bytes;
  if (auto* backend = std::get_if<4>(&holder_)) return (*backend)->bytes();
  return 0;
}

void Arena::AttachRoot(void* root) {
  if (auto* backend = std::get_if<4>(&holder_)) (*backend)->AttachRoot(root);
}

void Arena::Transfer() {
  if (auto* slot = std::get_if<1>(&holder_)) (*slot)->Transfer();
}

std::optional<Shipment> Arena::ShipOut(uint32_t to, const ShipOptions& options,
                                       std::string* error) {
  TransferableRegion* handle = transferable();
  if (handle == nullptr) {
    *error = std::string(
                 "only an arena that is a transferable region (policy \"regions\") can "
                 "be shipped by address; this is a ") +
             (region() != nullptr ? "actor region" : "heap or backend arena");
    return std::nullopt;
  }
  const size_t peak = handle->region().stats().peak_block_bytes;
  std::optional<Shipment> s = Ship(*handle, to, options, error);
  if (s) {
    holder_ = std::monostate{};  // the slot's handle is TRANSFERRED: it owns nothing now
    internal::NoteArenaFreed(static_cast<int>(use_), peak, 0);
  }
  return s;
}

void Arena::ResetSlow() {
  size_t peak = 0, cleanups = 0;
  if (Region* r = region()) {
    RegionStats s = r->stats();
    peak = s.peak_block_bytes;
    cleanups = s.cleanups;  // destructors the bulk free below runs
  }
  if (auto* slot = std::get_if<1>(&holder_)) (*slot)->handle().Free();  // fatal while OPEN
  holder_ = std::monostate{};
  internal::NoteArenaFreed(static_cast<int>(use_), peak, cleanups);
}

}  // namespace broom::lifecycle
