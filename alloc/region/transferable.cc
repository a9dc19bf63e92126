// Copyright Broom authors.
#include <cinttypes>

#include "alloc/os/protect.h"
#include "alloc/region/region_internal.h"
#include "broom/check.h"
#include "broom/transferable_region.h"

namespace broom {

using State = TransferableRegion::State;

namespace {

// Sealing (check.h, CheckOptions::sent_writes): the runs of adjacent blocks of a region, made
// read-only or writable again with one mprotect each. Bump regions' blocks are 4 KiB and up,
// aligned to their size, so whole pages.
class BlockRuns {
 public:
  explicit BlockRuns(bool read_only) : read_only_(read_only) {}

  static void Visit(void* ctx, const internal::BlockHeader* b, const char*, const char*) {
    static_cast<BlockRuns*>(ctx)->Add(reinterpret_cast<uintptr_t>(b), b->size);
  }
  // Applies the protection to the runs not yet done; false if the kernel refused any.
  bool Flush() {
    for (int i = 0; i < n_; ++i) {
      ok_ &= internal::os::ProtectReadOnly(reinterpret_cast<void*>(runs_[i].begin),
                                           runs_[i].end - runs_[i].begin, read_only_);
    }
    n_ = 0;
    return ok_;
  }

 private:
  void Add(uintptr_t begin, size_t size) {
    if (size < internal::kPageSize) return;  // shares its page: never the case for bump blocks
    const uintptr_t end = begin + size;
    if (n_ > 0 && begin == runs_[n_ - 1].end) {
      runs_[n_ - 1].end = end;
    } else if (n_ > 0 && end == runs_[n_ - 1].begin) {
      runs_[n_ - 1].begin = begin;
    } else {
      if (n_ == kMaxRuns) Flush();
      runs_[n_++] = {begin, end};
    }
  }

  static constexpr int kMaxRuns = 32;
  struct Run {
    uintptr_t begin, end;
  };
  Run runs_[kMaxRuns];
  int n_ = 0;
  bool ok_ = true;
  const bool read_only_;
};

// A write fault on a read-only page: a live transferable region's page can only be read-only
// because its handle is sealed, so this is a write after the transfer.
void OnSealedWrite(void* address) {
  const internal::BlockHeader* b = internal::BlockOf(address);
  const Region* r = b != nullptr ? b->owner.load(std::memory_order_relaxed) : nullptr;
  if (r == nullptr || r->kind() != RegionKind::kTransferable) return;  // not ours
  internal::Fatal(
      __FILE__, __LINE__,
      "write to transferable region #%" PRIu64
      "%s%s%s +0x%zx (%p) after it was "
      "transferred: in checked mode (BROOM_CHECK_SENT) a sent region stays read-only "
      "until its new owner first uses its handle; the sender must not write through "
      "pointers it kept",
      r->id(), r->name()[0] ? " '" : "", r->name(), r->name()[0] ? "'" : "",
      static_cast<size_t>(static_cast<const char*>(address) - reinterpret_cast<const char*>(b)),
      address);
}

bool SealOnTransfer() { return GetCheckMode() != CheckMode::kOff && GetCheckOptions().sent_writes; }

// Makes `r`'s blocks read-only; false (and nothing read-only) if the kernel refuses.
bool Seal(const BumpRegion* r) {
  internal::os::InstallAccessFaultHandler(&OnSealedWrite);
  BlockRuns runs(/*read_only=*/true);
  r->ForEachLiveRange(&BlockRuns::Visit, &runs);
  if (runs.Flush()) return true;
  BlockRuns undo(/*read_only=*/false);
  r->ForEachLiveRange(&BlockRuns::Visit, &undo);
  undo.Flush();
  return false;
}

}  // namespace

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
  if (region_ == nullptr) return;
  if (sealed_) Unseal();
  region_->Destroy("destruction of TransferableRegion");
}

TransferableRegion::TransferableRegion(TransferableRegion&& other) noexcept : region_(nullptr) {
  TakeFrom(other);
}

TransferableRegion& TransferableRegion::operator=(TransferableRegion&& other) noexcept {
  if (this != &other) {
    if (region_ != nullptr) {
      if (sealed_) Unseal();
      region_->Destroy("assignment to TransferableRegion (frees the old region)");
      region_ = nullptr;
    }
    TakeFrom(other);
  }
  return *this;
}

void TransferableRegion::TakeFrom(TransferableRegion& other) {
  const bool was_sealed = other.sealed_;
  region_ = other.ReleaseKeepingSeal();
  dead_id_ = other.dead_id_;
  if (region_ == nullptr) {  // moving an already dead handle keeps its story
    dead_state_ = other.dead_state_;
    return;
  }
  dead_state_ = State::kClosed;
  sealed_ = was_sealed || (SealOnTransfer() && Seal(region_));
}

BumpRegion& TransferableRegion::RegionSlow(const char* op) const {
  if (region_ == nullptr) DieUnusable(op);
  Unseal();
  return *region_;
}

void TransferableRegion::Unseal() const {
  BlockRuns runs(/*read_only=*/false);
  region_->ForEachLiveRange(&BlockRuns::Visit, &runs);
  BROOM_CHECK(runs.Flush(), "cannot make transferable region #%llu writable again",
              static_cast<unsigned long long>(region_->id()));
  sealed_ = false;
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
  if (BROOM_UNLIKELY(region_ == nullptr)) DieUnusable(op);
  const Region& r = *region_;
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
  if (sealed_) Unseal();
  dead_id_ = region_->id();
  region_->Destroy("TransferableRegion::Free");
  region_ = nullptr;
  dead_state_ = State::kFreed;
}

void TransferableRegion::Reset() {
  CheckClosed("Reset");
  if (sealed_) Unseal();
  region_->Reset("TransferableRegion::Reset");
}

TransferableRegion TransferableRegion::Transfer() {
  if (BROOM_UNLIKELY(region_ == nullptr)) DieUnusable("Transfer");  // freed or transferred
  return TransferableRegion(std::move(*this));
}

BumpRegion* TransferableRegion::Release() {
  if (region_ != nullptr && sealed_) Unseal();  // the new owner will not use a handle
  return ReleaseKeepingSeal();
}

BumpRegion* TransferableRegion::ReleaseKeepingSeal() {
  if (region_ == nullptr) return nullptr;
  CheckClosed("Transfer");
  BumpRegion* r = region_;
  if (internal::TransferHook hook = internal::g_transfer_hook.load(std::memory_order_acquire)) {
    hook(r, "transfer");
  }
  dead_id_ = r->id();
  region_ = nullptr;
  sealed_ = false;
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
