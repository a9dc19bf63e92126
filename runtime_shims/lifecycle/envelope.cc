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

AnyEnvelope AnyEnvelope::Create(MemoryPolicy& policy, const BatchOps& ops, Epoch epoch,
                                size_t capacity) {
  AnyEnvelope e;
  void* arena = policy.CreateArena(ArenaUse::kMessage, "batch");
  try {
    std::pmr::memory_resource* res = policy.ArenaResource(arena);
    ArenaScope open(res);
    e.root_ = ops.construct(res, epoch, capacity);
    policy.AttachRoot(arena, e.root_);
  } catch (...) {
    policy.DestroyArena(arena);
    throw;
  }
  e.policy_ = &policy;
  e.arena_ = arena;
  e.ops_ = &ops;
  internal::NoteEnvelopeCreated();
  return e;
}

AnyEnvelope AnyEnvelope::Decode(MemoryPolicy& policy, const BatchOps& ops, Epoch epoch,
                                size_t count, ByteReader& in) {
  if (ops.decode == nullptr) return {};
  AnyEnvelope e = Create(policy, ops, epoch, 0);
  bool ok;
  {
    ArenaScope open(e.resource());
    ok = ops.decode(in, count, e.root_);
  }
  if (!ok) e.Reset();
  return e;
}

void AnyEnvelope::Reset() {
  if (root_ == nullptr) return;
  std::pmr::memory_resource* res = policy_->ArenaResource(arena_);
  ops_->destroy(root_, res);
  policy_->DestroyArena(arena_);
  root_ = nullptr;
  arena_ = nullptr;
  internal::NoteEnvelopeDestroyed();
}

const void* AnyEnvelope::raw_data() const {
  BROOM_CHECK(ops_ != nullptr && ops_->raw_resize != nullptr, "raw_data of a non-raw batch");
  // Batch<R> layout is {epoch, records}; records.data() is what raw_resize(root, size()) returns
  // without changing the size.
  return ops_->raw_resize(root_, size());
}

void AnyEnvelope::DieWrongType(const char* wanted) const {
  broom::internal::Fatal(__FILE__, __LINE__, "batch holds records of type %s, not %s",
                         ops_ != nullptr ? ops_->name : "(empty envelope)", wanted);
}

void OwnedState::Reset() {
  if (object_ == nullptr) return;
  destroy_(object_, policy_->ArenaResource(arena_));
  policy_->DestroyArena(arena_);
  object_ = nullptr;
  arena_ = nullptr;
}

}  // namespace broom::lifecycle
