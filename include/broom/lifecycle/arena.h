// Copyright Broom authors.
//
// arena.h: owning, move-only handles of the memory that operator objects live in.
//
//   ArenaUse      what an arena is for: a message (batch), an operator's state, one
//                 timestamp's state.
//   Arena         one arena, as a MemoryPolicy hands it out. Under "regions" it owns a core
//                 region handle: a broom::TransferableRegion (messages, per-timestamp state) or
//                 a broom::ActorRegion (operator state). Under the heap policies it is the heap
//                 itself (owns nothing; objects are freed one by one by their destructors).
//                 Under any other policy it owns an ArenaBackend the policy defines (Boehm GC's
//                 anchor cell, gc_policy.h).
//   ArenaBackend  the interface a policy implements for arenas with state of their own.
//   ArenaScope    RAII: makes an arena the calling thread's allocation context.
//
// Transfers. Moving an Arena moves a pointer, never the core handle: a transferable region's
// handle stays at one address while the engine moves the batch through its queues, so the only
// core transfers are the engine's real handoffs, Arena::Transfer(), one
// TransferableRegion::Transfer() each: the typestate is checked (fatal while OPEN, after Free or
// after Transfer) and, in checked mode (broom::SetCheckMode, BROOM_CHECKS), the region is
// scanned for pointers out of it, once per handoff.
//
// Statistics: every arena counts itself in ShimStats::arenas[use] (created, freed, alive at
// peak) and, when freed, adds its region's peak footprint and the destructors the bulk free ran
// (stats.h).
//
// Thread-safety: an Arena is owner-thread only, like the region it owns; hand it to another
// thread through a synchronizing channel (an actor mailbox). ArenaScope affects the calling
// thread only.
#ifndef BROOM_LIFECYCLE_ARENA_H_
#define BROOM_LIFECYCLE_ARENA_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <memory_resource>
#include <new>
#include <optional>
#include <string>
#include <utility>
#include <variant>

#include "broom/actor_region.h"
#include "broom/context.h"
#include "broom/lifecycle/stats.h"
#include "broom/region.h"
#include "broom/ship.h"
#include "broom/transferable_region.h"

namespace broom::lifecycle {

enum class ArenaUse : uint8_t { kMessage = 0, kOperatorState = 1, kEpochState = 2 };
static_assert(kNumArenaUses == 3);
// "message", "operator-state", "epoch-state".
const char* ArenaUseName(ArenaUse use);

// Per-arena state of a policy other than "regions" and the heap policies.
//
// Ownership: the Arena that holds it calls Destroy() exactly once, when the arena is freed
// (after the root object was destroyed); Destroy() ends the object (typically `delete this`).
// Thread-safety: called by the arena's owner only.
class ArenaBackend {
 public:
  // Where the arena's objects are allocated. Valid until Destroy().
  virtual std::pmr::memory_resource* resource() = 0;
  // Bytes the arena holds, if known (else 0). Cheap.
  virtual size_t bytes() const { return 0; }
  // The arena's root object is constructed (a tracing policy keeps it reachable until Destroy;
  // the engine keeps roots where a collector cannot see them).
  virtual void AttachRoot(void* /*root*/) {}
  virtual void Destroy() = 0;

 protected:
  ~ArenaBackend() = default;
};

namespace internal {
// A TransferableRegion at a stable address. Transfer() moves ownership into the other slot
// with one core TransferableRegion::Transfer() (the new handle is built in place from its
// result), so the region changes handles once per handoff.
class TransferableSlot {
 public:
  explicit TransferableSlot(const RegionOptions& options) {
    ::new (storage_[0]) TransferableRegion(options);
  }
  explicit TransferableSlot(TransferableRegion&& region) {
    ::new (storage_[0]) TransferableRegion(std::move(region));
  }
  ~TransferableSlot() { handle().~TransferableRegion(); }
  TransferableSlot(const TransferableSlot&) = delete;
  TransferableSlot& operator=(const TransferableSlot&) = delete;

  TransferableRegion& handle() {
    return *std::launder(reinterpret_cast<TransferableRegion*>(storage_[current_]));
  }
  void Transfer() {
    int next = current_ ^ 1;
    ::new (storage_[next]) TransferableRegion(handle().Transfer());
    handle().~TransferableRegion();  // TRANSFERRED: owns nothing
    current_ = next;
  }

 private:
  alignas(TransferableRegion) unsigned char storage_[2][sizeof(TransferableRegion)];
  int current_ = 0;  // INVARIANT: storage_[current_] holds the live handle
};

struct BackendDestroyer {
  void operator()(ArenaBackend* b) const { b->Destroy(); }
};
}  // namespace internal

// An owning, move-only arena handle. See the file comment.
//
// Ownership and lifetime: the Arena owns what it holds; destroying or Reset()ting it frees the
// arena (in bulk for regions; REQUIRES: the objects in it were destroyed, and no ArenaScope is
// open on it: freeing an OPEN transferable region is fatal). A default-constructed or moved-from
// Arena is empty. Thread-safety: owner-thread only.
class Arena {
 public:
  Arena() = default;
  // A new transferable region (messages and per-timestamp state under "regions"). Throws
  // std::bad_alloc if no block can be had.
  static Arena NewTransferable(ArenaUse use, const RegionOptions& options = {});
  // Takes over a core handle. A TransferableRegion is moved in (a core transfer: REQUIRES
  // CLOSED); an ActorRegion moves freely.
  Arena(ArenaUse use, TransferableRegion region);
  Arena(ArenaUse use, ActorRegion region);
  // An arena that is the shared resource `heap` (heap policies): it owns nothing and freeing it
  // frees nothing. REQUIRES: `heap` outlives the arena.
  static Arena OnHeap(ArenaUse use, std::pmr::memory_resource* heap);
  // An arena with a backend of the policy's own; takes ownership (see ArenaBackend).
  static Arena WithBackend(ArenaUse use, ArenaBackend* backend);

  Arena(Arena&& other) noexcept
      : holder_(std::exchange(other.holder_, std::monostate{})), use_(other.use_) {}
  Arena& operator=(Arena&& other) noexcept {
    if (this != &other) {
      Reset();
      holder_ = std::exchange(other.holder_, std::monostate{});
      use_ = other.use_;
    }
    return *this;
  }
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;
  ~Arena() { Reset(); }

  explicit operator bool() const { return !std::holds_alternative<std::monostate>(holder_); }
  ArenaUse use() const { return use_; }

  // Where the arena's objects are allocated: the region itself (a std::pmr::memory_resource),
  // the heap, or the backend's resource. REQUIRES: non-empty (null otherwise).
  std::pmr::memory_resource* resource() const;
  // The Broom region of a region arena, else null. Fatal for a transferable region whose
  // handle is dead (cannot happen through this class).
  Region* region() const;
  // The core handles, or null for another kind of arena.
  TransferableRegion* transferable();
  ActorRegion* actor();
  // Bytes of blocks the arena holds (region arenas and backends that know), else 0. Cheap.
  size_t bytes() const;

  // Tells a backend that the root object is built (no-op for other arenas).
  void AttachRoot(void* root);
  // The arena changes owner (the engine sends the batch): one core transfer for a transferable
  // region (typestate checked, scanned in checked mode); nothing for other arenas. REQUIRES:
  // not open.
  void Transfer();
  // A transferable region's arena leaves this process (broom::Ship, with `options`): on
  // success the arena is empty and counted as freed here (its objects now belong to the
  // receiver). Returns nullopt with *error set, the arena unchanged, for any other arena or if
  // Ship refuses. REQUIRES: not open.
  std::optional<Shipment> ShipOut(uint32_t to, const ShipOptions& options, std::string* error);
  // Frees the arena now; see the class comment. No-op when empty.
  void Reset() {
    if (*this) ResetSlow();
  }

 private:
  using Holder = std::variant<std::monostate, std::unique_ptr<internal::TransferableSlot>,
                              ActorRegion, std::pmr::memory_resource*,
                              std::unique_ptr<ArenaBackend, internal::BackendDestroyer>>;
  Arena(ArenaUse use, Holder holder);
  void ResetSlow();

  Holder holder_;
  ArenaUse use_ = ArenaUse::kMessage;
};

// Makes `arena` the calling thread's allocation context until the scope ends: a region arena is
// opened (pushed on the context stack, typestate OPEN); any other arena's resource becomes the
// fallback resource (broom::FallbackResourceScope). Borrowed: the arena must outlive the scope
// and not be freed or transferred inside it (fatal for regions). Not movable; LIFO.
class ArenaScope {
 public:
  explicit ArenaScope(const Arena& arena) {
    if (Region* r = arena.region()) {
      region_.emplace(*r);
    } else {
      fallback_.emplace(arena.resource());
    }
  }
  ArenaScope(const ArenaScope&) = delete;
  ArenaScope& operator=(const ArenaScope&) = delete;

 private:
  std::optional<FallbackResourceScope> fallback_;
  std::optional<ContextScope> region_;
};

}  // namespace broom::lifecycle

#endif  // BROOM_LIFECYCLE_ARENA_H_
