// Copyright Broom authors.
//
// transferable_region.h: regions that hold a message and move between owners.
//
//   TransferableRegion   move-only owning handle of a region of kind kTransferable, with the
//                        ECOOP typestate: CLOSED, OPEN (pushed on an allocation context; opening
//                        is re-entrant), FREED, TRANSFERRED.
//                          Open()      CLOSED|OPEN -> OPEN   (fatal after Free or Transfer)
//                          Free()      CLOSED -> FREED        (fatal while OPEN)
//                          Transfer()  CLOSED -> TRANSFERRED  (fatal while OPEN); the returned
//                                      handle is the new owner, in state CLOSED
//                        Moving a handle is a Transfer. Any use of a FREED or TRANSFERRED handle
//                        other than destruction, assignment or state() is fatal, with a message
//                        naming the region and the operation.
//   SharedRegion         the broadcast form: a copyable, read-only, reference-counted handle;
//                        the region is freed when the last copy is destroyed, on any thread.
//
// A transferable region must be self-contained: objects in it may point only into it (see
// docs/overview.md, "Points-to rules"); use broom::Clone to copy data in from elsewhere.
//
// Checked mode can also catch a sender that writes after sending (check.h,
// CheckOptions::sent_writes): a handle-to-handle transfer then leaves the region read-only
// ("sealed") until the new handle is first used, so a write through a pointer the old owner kept
// faults with a report. Any operation on the new handle unseals, the read-only ones included
// (state() and usable() excepted); forwarding a sealed handle keeps it sealed.
#ifndef BROOM_TRANSFERABLE_REGION_H_
#define BROOM_TRANSFERABLE_REGION_H_

#include <cstdint>

#include "broom/context.h"
#include "broom/region.h"

namespace broom {

class SharedRegion;

// Owning handle of a transferable region.
//
// Ownership and lifetime: exactly one live handle owns the region. Ownership moves only by
// Transfer() or by moving the handle (for example into a queue read by another thread). The
// last owner frees the region in bulk, by Free() or by the destructor: cost O(blocks), never
// O(objects) (plus registered destructors), on whatever thread does it; blocks go to that
// thread's cache, and overflow moves to the global pool in batches (one lock per batch).
//
// Thread-safety: owner-thread only. A handle may be used by one thread at a time; handing it to
// another thread (through any synchronizing channel) hands over the region. The handle object
// itself is thread-compatible.
class TransferableRegion {
 public:
  enum class State : uint8_t { kClosed, kOpen, kFreed, kTransferred };

  // Creates an empty region (one 4 KiB block, about 30 ns). Throws std::bad_alloc if no block
  // can be had; LastAllocError() says why.
  explicit TransferableRegion(const RegionOptions& options = {});
  ~TransferableRegion();

  // Moving transfers ownership: fatal if `other` is OPEN; `other` becomes TRANSFERRED.
  TransferableRegion(TransferableRegion&& other) noexcept;
  // Frees the currently owned region (if any, fatal if OPEN), then takes `other`'s.
  TransferableRegion& operator=(TransferableRegion&& other) noexcept;
  TransferableRegion(const TransferableRegion&) = delete;
  TransferableRegion& operator=(const TransferableRegion&) = delete;

  State state() const;
  bool usable() const { return region_ != nullptr; }

  // Bump allocation; see BumpRegion::Allocate. REQUIRES: CLOSED or OPEN (fatal otherwise).
  void* Allocate(size_t size, size_t align = kDefaultAlignment) {
    return region("Allocate").Allocate(size, align);
  }

  // Pushes the region on this thread's allocation context until the returned scope ends.
  // REQUIRES: CLOSED or OPEN.
  [[nodiscard]] ContextScope Open() { return ContextScope(region("Open")); }

  // Frees the region now. REQUIRES: CLOSED.
  void Free();
  // Frees every object (destructors run) but keeps up to retain_bytes of blocks, so the
  // region can be refilled without touching the pool. REQUIRES: CLOSED.
  void Reset();
  // Hands ownership to the returned handle. REQUIRES: CLOSED. A sealed handle (see the file
  // comment) is forwarded sealed.
  [[nodiscard]] TransferableRegion Transfer();
  // Converts into the broadcast form. REQUIRES: CLOSED. This handle becomes TRANSFERRED.
  [[nodiscard]] SharedRegion Share() &&;

  // The region. REQUIRES: CLOSED or OPEN.
  BumpRegion& region() const { return region("region"); }
  RegionStats stats() const { return region("stats").stats(); }

  // Releases ownership without freeing and returns the region (for C APIs and engine shims
  // that carry it through a message); take it back with Adopt. REQUIRES: CLOSED. The region is
  // never sealed: its new owner uses it without a handle.
  BumpRegion* Release();
  // Takes ownership of a region obtained from Release(). REQUIRES: r is a transferable region.
  static TransferableRegion Adopt(Region* r);

 private:
  struct AdoptTag {};
  TransferableRegion(AdoptTag, BumpRegion* r) : region_(r) {}
  // The region, unsealed. Fast path: two loads and two predictable branches.
  BumpRegion& region(const char* op) const {
    if (BROOM_UNLIKELY(region_ == nullptr || sealed_)) return RegionSlow(op);
    return *region_;
  }
  BumpRegion& RegionSlow(const char* op) const;  // fatal if dead; unseals if sealed
  [[noreturn]] void DieUnusable(const char* op) const;
  void CheckClosed(const char* op) const;  // fatal unless owned and CLOSED; does not unseal
  // Takes `other`'s region: the transfer (typestate, thread, checked-mode scan), then sealing.
  void TakeFrom(TransferableRegion& other);
  BumpRegion* ReleaseKeepingSeal();  // Release() without unsealing
  void Unseal() const;               // REQUIRES: sealed_

  BumpRegion* region_;
  State dead_state_ = State::kClosed;  // kFreed or kTransferred once region_ is null
  // INVARIANT: sealed_ implies region_ != null; while set, the region's blocks are read-only.
  mutable bool sealed_ = false;
  uint64_t dead_id_ = 0;  // id of the region this handle last owned
};

// Copyable, read-only handle of a shared (broadcast) transferable region.
//
// Ownership and lifetime: every copy holds a reference; the region is freed in bulk when the
// last copy is destroyed or reset, on whatever thread that happens.
//
// Thread-safety: thread-safe for distinct copies (the reference count is atomic); the region's
// contents are immutable after Share(), so any number of threads may read them.
class SharedRegion {
 public:
  SharedRegion() = default;
  SharedRegion(const SharedRegion& other);
  SharedRegion(SharedRegion&& other) noexcept : region_(other.region_) { other.region_ = nullptr; }
  SharedRegion& operator=(SharedRegion other) noexcept {
    std::swap(region_, other.region_);
    return *this;
  }
  ~SharedRegion() { reset(); }

  void reset();
  explicit operator bool() const { return region_ != nullptr; }
  const Region* region() const { return region_; }
  uint32_t use_count() const;

 private:
  friend class TransferableRegion;
  explicit SharedRegion(BumpRegion* r) : region_(r) {}
  BumpRegion* region_ = nullptr;
};

const char* StateName(TransferableRegion::State state);

}  // namespace broom

#endif  // BROOM_TRANSFERABLE_REGION_H_
