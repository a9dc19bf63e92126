// Copyright Broom authors.
//
// envelope.h: batches of records and the owning handles the engine moves between operators.
//
//   Batch<R>          up to N records sharing one timestamp (Naiad's message); its vector
//                     allocates from the arena it was built in.
//   AnyEnvelope       owning, move-only handle of one batch: the Arena it lives in (under
//                     "regions" a broom::TransferableRegion) plus the root Batch, type-erased
//                     through BatchOps. What engines move around.
//   Envelope<R>       owning, move-only handle of a batch of R records: what operators see.
//                     Converts from an AnyEnvelope that holds R records (fatal otherwise) and
//                     back, by moving; both hold the same three pointers.
//   BatchOps          per record type: construct, destroy, size, copy, and how a batch crosses
//                     a process boundary (record.h): by address (broom::Ship), as raw bytes,
//                     or through the record's codec. Registered by name on first use, so a
//                     receiving process finds it.
//   OwnedState        owning handle of one state object in its own arena (operator state,
//                     per-timestamp state).
//
// Ownership and lifetime: an envelope owns its arena; destroying or Reset()ting it destroys the
// batch and frees the arena (bulk free under "regions"). Moving hands the batch on; nothing is
// copied, and the arena's core handle does not move (arena.h): the engine calls Transfer() when
// the batch changes owner. Everything a batch's records own must live in the batch's arena
// (self-contained): build records with the batch's resource, or push copies (the vector's
// uses-allocator construction clones pmr members into the arena).
//
// Thread-safety: owner-thread only, like broom::TransferableRegion: one thread at a time; move
// the envelope through a synchronizing channel (an actor mailbox) to hand it over.
#ifndef BROOM_LIFECYCLE_ENVELOPE_H_
#define BROOM_LIFECYCLE_ENVELOPE_H_

#include <cstdint>
#include <memory>
#include <memory_resource>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "broom/internal/base.h"
#include "broom/lifecycle/arena.h"
#include "broom/lifecycle/policy.h"
#include "broom/lifecycle/record.h"
#include "broom/lifecycle/stats.h"
#include "broom/ship.h"

namespace broom::lifecycle {

using Epoch = uint64_t;
// Punctuation value meaning "no more epochs on this channel".
inline constexpr Epoch kEndOfStream = UINT64_MAX;

template <class R>
struct Batch {
  using allocator_type = std::pmr::polymorphic_allocator<std::byte>;
  Batch(Epoch e, size_t capacity, const allocator_type& alloc) : epoch(e), records(alloc) {
    records.reserve(capacity);
  }
  Epoch epoch;
  std::pmr::vector<R> records;
};

struct BatchOps {
  const char* name;  // stable across processes running the same binary
  void* (*construct)(std::pmr::memory_resource* arena, Epoch epoch, size_t capacity);
  void (*destroy)(void* root, std::pmr::memory_resource* arena);
  size_t (*size)(const void* root);
  Epoch (*epoch)(const void* root);
  // Flat-byte form of the records (null for records that cannot travel; see record.h).
  void (*encode)(const void* root, std::vector<char>& out);
  // Appends `count` records read from `in` to the (empty) batch; false on malformed bytes.
  bool (*decode)(ByteReader& in, size_t count, void* root);
  // RawRecord only (else null): resizes the (empty) batch to `count` records and returns their
  // storage, so a transport can read the bytes straight into the batch's arena.
  void* (*raw_resize)(void* root, size_t count);
  size_t record_size;  // sizeof(R)
  // A copy of the batch built in `arena` (every record copied with the arena's allocator, so
  // pmr members land there), for a batch that needs a second owner; null for records that are
  // not copy-constructible.
  void* (*copy)(const void* root, std::pmr::memory_resource* arena);
  // The batch can cross processes as its region (AnyEnvelope::Ship): R is not polymorphic (a
  // vtable pointer is a code address of one process) and has no codec of its own. Raw records
  // can travel either way (raw_resize is set too; the CAF shim ships them by address only with
  // shared memory, where that measured faster). Whether the records are self-contained is
  // checked mode's to verify, when Ship scans the region.
  bool by_address;
};

namespace internal {
void RegisterBatchOps(const BatchOps* ops);

// A pointer stored complemented, so that a conservative scan (broom::CheckOutlives) does not
// take it for one: the complement of a user-space address is never region memory. A read costs
// one `not`.
class HiddenPointer {
 public:
  HiddenPointer() = default;
  explicit HiddenPointer(void* p) : bits_(~reinterpret_cast<uintptr_t>(p)) {}
  void* get() const { return reinterpret_cast<void*>(~bits_); }

 private:
  uintptr_t bits_ = ~uintptr_t{0};  // null
};

template <class R>
struct BatchOpsImpl {
  using B = Batch<R>;
  static void* Construct(std::pmr::memory_resource* arena, Epoch e, size_t capacity) {
    void* p = arena->allocate(sizeof(B), alignof(B));
    return std::uninitialized_construct_using_allocator(
        static_cast<B*>(p), std::pmr::polymorphic_allocator<std::byte>(arena), e, capacity);
  }
  static void Destroy(void* root, std::pmr::memory_resource* arena) {
    static_cast<B*>(root)->~B();
    arena->deallocate(root, sizeof(B), alignof(B));
  }
  static size_t Size(const void* root) { return static_cast<const B*>(root)->records.size(); }
  static Epoch GetEpoch(const void* root) { return static_cast<const B*>(root)->epoch; }
  static void Encode(const void* root, std::vector<char>& out) {
    const auto& recs = static_cast<const B*>(root)->records;
    if constexpr (RawRecord<R>) {
      const char* p = reinterpret_cast<const char*>(recs.data());
      out.insert(out.end(), p, p + recs.size() * sizeof(R));
    } else {
      ByteWriter w(out);
      for (const R& r : recs) r.BroomEncode(w);
    }
  }
  static bool Decode(ByteReader& in, size_t count, void* root) {
    auto& recs = static_cast<B*>(root)->records;
    if constexpr (RawRecord<R>) {
      if (count > in.remaining() / sizeof(R)) return false;
      recs.resize(count);
      in.Read(recs.data(), count * sizeof(R));
    } else {
      std::pmr::memory_resource* target = recs.get_allocator().resource();
      recs.reserve(count);
      for (size_t i = 0; i < count && in.ok(); ++i) recs.push_back(R::BroomDecode(in, target));
    }
    return in.ok();
  }
  static void* RawResize(void* root, size_t count) {
    auto& recs = static_cast<B*>(root)->records;
    recs.resize(count);
    return recs.data();
  }
  static void* Copy(const void* root, std::pmr::memory_resource* arena) {
    const B& src = *static_cast<const B*>(root);
    B* b = static_cast<B*>(Construct(arena, src.epoch, src.records.size()));
    for (const R& r : src.records) b->records.push_back(r);  // uses-allocator copies
    return b;
  }
  static const BatchOps* Make() {
    static const BatchOps ops = [] {
      BatchOps o{typeid(R).name(), &Construct, &Destroy,  &Size,   &GetEpoch, nullptr,
                 nullptr,          nullptr,    sizeof(R), nullptr, false};
      if constexpr (WireRecord<R>) {
        o.encode = &Encode;
        o.decode = &Decode;
      }
      if constexpr (RawRecord<R>) o.raw_resize = &RawResize;
      if constexpr (std::is_copy_constructible_v<R>) o.copy = &Copy;
      o.by_address = !std::is_polymorphic_v<R> && !CodedRecord<R>;
      return o;
    }();
    return &ops;
  }
};
}  // namespace internal

// The ops of Batch<R>, registered for lookup by name on first call.
template <class R>
const BatchOps& BatchOpsFor() {
  static const BatchOps* ops = [] {
    const BatchOps* o = internal::BatchOpsImpl<R>::Make();
    internal::RegisterBatchOps(o);
    return o;
  }();
  return *ops;
}
// The ops registered under `name`, or null.
const BatchOps* FindBatchOps(std::string_view name);

class AnyEnvelope {
 public:
  AnyEnvelope() = default;
  AnyEnvelope(AnyEnvelope&& o) noexcept
      : policy_(std::exchange(o.policy_, nullptr)),
        arena_(std::move(o.arena_)),
        root_(std::exchange(o.root_, {})),
        ops_(std::exchange(o.ops_, nullptr)) {}
  AnyEnvelope& operator=(AnyEnvelope&& o) noexcept {
    if (this != &o) {
      Reset();
      policy_ = std::exchange(o.policy_, nullptr);
      arena_ = std::move(o.arena_);
      root_ = std::exchange(o.root_, {});
      ops_ = std::exchange(o.ops_, nullptr);
    }
    return *this;
  }
  ~AnyEnvelope() { Reset(); }

  // A fresh, empty batch in a new message arena of `policy`. Throws std::bad_alloc.
  static AnyEnvelope Create(MemoryPolicy& policy, const BatchOps& ops, Epoch epoch,
                            size_t capacity);
  // Rebuilds a batch of `count` records from flat bytes into a fresh arena; empty on malformed
  // input.
  static AnyEnvelope Decode(MemoryPolicy& policy, const BatchOps& ops, Epoch epoch, size_t count,
                            ByteReader& in);
  // A copy of `src` in a fresh arena of its policy, for a batch that needs a second owner:
  // through BatchOps::copy, else through the codec. Fatal if the record type has neither.
  static AnyEnvelope CopyOf(const AnyEnvelope& src);
  // A batch that arrived by address: takes over `region` (a finished broom::Receipt, CLOSED)
  // whose root Batch of `ops`' records is at `root`. REQUIRES: `root` points into `region` at
  // a Batch built by a process running this binary (ship.h's rules).
  static AnyEnvelope Adopt(MemoryPolicy& policy, const BatchOps& ops, TransferableRegion&& region,
                           void* root);
  // Sends the batch to process `to` by address (broom::Ship with the root as the shipment's
  // root word): on success the envelope is empty and the Shipment holds the batch's blocks;
  // the records' destructors do not run here (the receiver's envelope runs them). Returns
  // nullopt with *error set, the envelope unchanged, if the arena is not a transferable region
  // (only the "regions" policy's batches can travel so), the record type is not
  // ops()->by_address, or Ship refuses (see broom::Ship: checked mode's self-containment scan,
  // the address plan, shared memory). REQUIRES: non-empty, no ArenaScope open on it.
  std::optional<Shipment> Ship(uint32_t to, ShipMode mode, std::string* error);

  // Destroys the batch and frees its arena (bulk under "regions"). No-op when empty.
  void Reset();
  // The batch changes owner (the engine sends it): Arena::Transfer(), one core transfer under
  // "regions". REQUIRES: non-empty, no ArenaScope open on it.
  void Transfer() { arena_.Transfer(); }

  explicit operator bool() const { return root() != nullptr; }
  const BatchOps* ops() const { return ops_; }
  MemoryPolicy* policy() const { return policy_; }
  Epoch epoch() const { return ops_->epoch(root()); }
  size_t size() const { return ops_->size(root()); }
  const Arena& arena() const { return arena_; }
  std::pmr::memory_resource* resource() const { return arena_.resource(); }
  // True if the batch holds R records.
  template <class R>
  bool Holds() const {
    return ops_ == &BatchOpsFor<R>();
  }
  // Appends the records' flat-byte form. REQUIRES: non-empty, ops()->encode != null.
  void EncodeRecords(std::vector<char>& out) const { ops_->encode(root(), out); }
  // RawRecord batches: the records' bytes (size() * ops()->record_size of them).
  const void* raw_data() const;
  // The root, for transports that fill a batch in place (see BatchOps::raw_resize).
  void* root() const { return root_.get(); }

 private:
  template <class R>
  friend class Envelope;
  [[noreturn]] void DieWrongType(const char* wanted) const;
  // Create and CopyOf: a fresh message arena whose root `make(resource)` builds (envelope.cc).
  template <class Make>
  static AnyEnvelope InFreshArena(MemoryPolicy& policy, const BatchOps& ops, Make make);

  MemoryPolicy* policy_ = nullptr;
  Arena arena_;
  // The Batch, of the type ops_ describes. Hidden: an envelope kept in operator state is a
  // handle of its arena, which the points-to rules allow, and the arena's own region handle is
  // in a heap slot (arena.h); a plain pointer to the root there would read, to checked mode's
  // scan of that state, as a pointer into a transferable region.
  internal::HiddenPointer root_;
  const BatchOps* ops_ = nullptr;
};

// A batch of R records; see the file comment. Owner-thread only.
template <class R>
class Envelope {
 public:
  Envelope() = default;
  // Takes the batch out of `any`, which is left empty. Fatal if `any` holds records of another
  // type; an empty `any` gives an empty Envelope.
  explicit Envelope(AnyEnvelope&& any) : any_(std::move(any)) {
    if (BROOM_UNLIKELY(any_ && !any_.Holds<R>())) any_.DieWrongType(BatchOpsFor<R>().name);
  }
  Envelope(Envelope&&) noexcept = default;
  Envelope& operator=(Envelope&&) noexcept = default;

  // A fresh, empty batch in a new message arena of `policy`. Throws std::bad_alloc.
  static Envelope Create(MemoryPolicy& policy, Epoch epoch, size_t capacity) {
    return Envelope(AnyEnvelope::Create(policy, BatchOpsFor<R>(), epoch, capacity));
  }

  explicit operator bool() const { return static_cast<bool>(any_); }
  // The batch. REQUIRES: non-empty.
  Batch<R>& operator*() const { return *get(); }
  Batch<R>* operator->() const { return get(); }
  std::pmr::vector<R>& records() const { return get()->records; }
  Epoch epoch() const { return get()->epoch; }
  size_t size() const { return get()->records.size(); }
  // The batch's arena and its resource: allocate there (or open it with ArenaScope) to build
  // records in place.
  const Arena& arena() const { return any_.arena(); }
  std::pmr::memory_resource* resource() const { return any_.resource(); }

  void Reset() { any_.Reset(); }
  // The type-erased handle, read-only (its wire form: EncodeRecords).
  const AnyEnvelope& any() const { return any_; }
  // The type-erased handle, for engines. This envelope is left empty.
  AnyEnvelope Erase() && { return std::move(any_); }

 private:
  Batch<R>* get() const { return static_cast<Batch<R>*>(any_.root()); }
  AnyEnvelope any_;
};

// One state object in its own arena. Move-only; destroying it destroys the object, then frees
// the arena. Owner-thread only.
class OwnedState {
 public:
  OwnedState() = default;
  OwnedState(OwnedState&& o) noexcept
      : arena_(std::move(o.arena_)),
        object_(std::exchange(o.object_, nullptr)),
        destroy_(o.destroy_) {}
  OwnedState& operator=(OwnedState&& o) noexcept {
    if (this != &o) {
      Reset();
      arena_ = std::move(o.arena_);
      object_ = std::exchange(o.object_, nullptr);
      destroy_ = o.destroy_;
    }
    return *this;
  }
  ~OwnedState() { Reset(); }

  // Creates an arena for `use` and constructs T in it with the arena open as the allocation
  // context, so T's broom::Allocator / CurrentResource() members bind to it. Types whose
  // allocator_type is a pmr allocator get uses-allocator construction. Throws std::bad_alloc.
  template <class T, class... Args>
  static OwnedState Make(MemoryPolicy& policy, ArenaUse use, const char* name, Args&&... args) {
    OwnedState s;
    s.arena_ = policy.CreateArena(use, name);
    std::pmr::memory_resource* res = s.arena_.resource();
    {
      ArenaScope open(s.arena_);
      void* p = res->allocate(sizeof(T), alignof(T));
      try {
        if constexpr (std::uses_allocator_v<T, std::pmr::polymorphic_allocator<std::byte>>) {
          s.object_ = std::uninitialized_construct_using_allocator(
              static_cast<T*>(p), std::pmr::polymorphic_allocator<std::byte>(res),
              std::forward<Args>(args)...);
        } else {
          s.object_ = ::new (p) T(std::forward<Args>(args)...);
        }
      } catch (...) {
        res->deallocate(p, sizeof(T), alignof(T));
        throw;  // the arena is freed with `s`, after the scope closes
      }
    }
    s.arena_.AttachRoot(s.object_);
    s.destroy_ = [](void* obj, std::pmr::memory_resource* r) {
      static_cast<T*>(obj)->~T();
      r->deallocate(obj, sizeof(T), alignof(T));
    };
    return s;
  }

  void Reset();
  explicit operator bool() const { return object_ != nullptr; }
  void* get() const { return object_; }
  const Arena& arena() const { return arena_; }
  std::pmr::memory_resource* resource() const { return arena_.resource(); }

 private:
  Arena arena_;
  void* object_ = nullptr;  // the state object, of the type destroy_ was made for
  void (*destroy_)(void*, std::pmr::memory_resource*) = nullptr;
};

}  // namespace broom::lifecycle

#endif  // BROOM_LIFECYCLE_ENVELOPE_H_
