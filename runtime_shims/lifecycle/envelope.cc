// Copyright Broom authors.
#include "broom/lifecycle/envelope.h"

#include <map>
#include <mutex>
#include <string>

namespace broom::lifecycle {
namespace internal {
namespace {
std::mutex& RegistryMutex() {
  static std::mutex m;
  return m;
}
std::map<std::string, const BatchOps*, std::less<>>& Registry() {
  static auto* r = new std::map<std::string, const BatchOps*, std::less<>>();
  return *r;
}
}  // namespace

void RegisterBatchOps(const BatchOps* ops) {
  std::lock_guard<std::mutex> lock(RegistryMutex());
  Registry().emplace(ops->name, ops);
}
}  // namespace internal

const BatchOps* FindBatchOps(std::string_view name) {
  std::lock_guard<std::mutex> lock(internal::RegistryMutex());
  auto& r = internal::Registry();
  auto it = r.find(name);
  return it == r.end() ? nullptr : it->second;
}

// A batch whose root `make(arena's resource)` builds in a fresh message arena of `policy`,
// with the arena open. On throw, the arena is freed.
template <class Make>
AnyEnvelope AnyEnvelope::InFreshArena(MemoryPolicy& policy, const BatchOps& ops, Make make) {
  AnyEnvelope e;
  e.arena_ = policy.CreateArena(ArenaUse::kMessage, "batch");
  {
    ArenaScope open(e.arena_);
    e.root_ = internal::HiddenPointer(make(e.arena_.resource()));
  }
  e.arena_.AttachRoot(e.root());
  e.policy_ = &policy;
  e.ops_ = &ops;
  return e;
}

AnyEnvelope AnyEnvelope::Create(MemoryPolicy& policy, const BatchOps& ops, Epoch epoch,
                                size_t capacity) {
  return InFreshArena(policy, ops, [&](std::pmr::memory_resource* arena) {
    return ops.construct(arena, epoch, capacity);
  });
}

AnyEnvelope AnyEnvelope::Decode(MemoryPolicy& policy, const BatchOps& ops, Epoch epoch,
                                size_t count, ByteReader& in) {
  if (ops.decode == nullptr) return {};
  AnyEnvelope e = Create(policy, ops, epoch, 0);
  bool ok;
  {
    ArenaScope open(e.arena_);
    ok = ops.decode(in, count, e.root());
  }
  if (!ok) e.Reset();
  return e;
}

AnyEnvelope AnyEnvelope::CopyOf(const AnyEnvelope& src) {
  const BatchOps& ops = *src.ops_;
  if (ops.copy == nullptr) {
    BROOM_CHECK(ops.encode != nullptr,
                "a batch of %s needs a second owner, but its records can be neither copied nor "
                "encoded",
                ops.name);
    std::vector<char> bytes;
    src.EncodeRecords(bytes);
    ByteReader in(bytes.data(), bytes.size());
    return Decode(*src.policy_, ops, src.epoch(), src.size(), in);
  }
  return InFreshArena(*src.policy_, ops, [&](std::pmr::memory_resource* arena) {
    return ops.copy(src.root(), arena);
  });
}

AnyEnvelope AnyEnvelope::Adopt(MemoryPolicy& policy, const BatchOps& ops,
                               TransferableRegion&& region, void* root) {
  AnyEnvelope e;
  e.arena_ = Arena(ArenaUse::kMessage, std::move(region));
  e.root_ = internal::HiddenPointer(root);
  e.policy_ = &policy;
  e.ops_ = &ops;
  return e;
}

std::optional<Shipment> AnyEnvelope::Ship(uint32_t to, ShipMode mode, std::string* error) {
  if (!ops_->by_address) {
    *error = std::string("records of type ") + ops_->name +
             " do not travel by address (polymorphic, or they bring a codec of their own)";
    return std::nullopt;
  }
  ShipOptions options{mode, reinterpret_cast<uintptr_t>(root())};
  std::optional<Shipment> s = arena_.ShipOut(to, options, error);
  if (s) {
    root_ = {};
    ops_ = nullptr;
    policy_ = nullptr;
  }
  return s;
}

void AnyEnvelope::Reset() {
  if (void* root = root_.get()) ops_->destroy(root, arena_.resource());
  root_ = {};
  arena_.Reset();
}

const void* AnyEnvelope::raw_data() const {
  BROOM_CHECK(ops_ != nullptr && ops_->raw_resize != nullptr, "raw_data of a non-raw batch");
  // Batch<R> layout is {epoch, records}; records.data() is what raw_resize(root, size()) returns
  // without changing the size.
  return ops_->raw_resize(root(), size());
}

void AnyEnvelope::DieWrongType(const char* wanted) const {
  broom::internal::Fatal(__FILE__, __LINE__, "batch holds records of type %s, not %s",
                         ops_ != nullptr ? ops_->name : "(empty envelope)", wanted);
}

void OwnedState::Reset() {
  if (object_ != nullptr) destroy_(object_, arena_.resource());
  object_ = nullptr;
  arena_.Reset();
}

}  // namespace broom::lifecycle
