// Copyright Broom authors.
//
// policy.h: the memory policy of a dataflow job, chosen at run time.
//
//   MemoryPolicy        the interface: where an operator's state, each message, each
//                       timestamp's state and each callback's scratch memory come from.
//   ArenaUse            what an arena is for (message, operator state, per-timestamp state).
//   ScratchSpace        per-thread scratch that every callback enters and leaves.
//   ArenaScope          RAII: makes an arena's memory the allocation context (CurrentResource()).
//   MakePolicy(name)    "regions" (Broom), "heap" (the process malloc, per-object free),
//                       "heap-glibc" (glibc's malloc through __libc_malloc, whatever the
//                       process malloc is), or a policy added with RegisterPolicy (the Boehm
//                       GC policy "gc", gc_policy.h).
//
// Operators never name a policy: they allocate through broom::CurrentResource(),
// broom::Allocator<T> or std::pmr containers built with the resources the Context hands out.
// The engine shims create every arena through the job's policy, so switching "regions" to "heap"
// or "gc" changes no operator code.
//
// Arena model: an arena holds one root object and everything it owns. The shim constructs the
// root with the arena open (ArenaScope), destroys it explicitly, then calls DestroyArena. Under
// "regions" an arena is a broom region: messages and per-timestamp state are transferable
// regions, operator state an actor region, and freeing the arena frees its contents in bulk.
// Under "heap" an arena is the general heap, and the root's destructor frees each object.
//
// Thread-safety: a MemoryPolicy is immutable after construction and thread-safe; arenas it
// creates follow the rules of what they wrap (owner-thread only for regions). ScratchSpace is
// owner-thread only.
#ifndef BROOM_LIFECYCLE_POLICY_H_
#define BROOM_LIFECYCLE_POLICY_H_

#include <memory>
#include <memory_resource>
#include <optional>
#include <string_view>

#include "broom/context.h"
#include "broom/region.h"

namespace broom::lifecycle {

enum class ArenaUse : uint8_t { kMessage, kOperatorState, kEpochState };
const char* ArenaUseName(ArenaUse use);

// Per-thread scratch memory entered around each callback (a TemporaryRegion scope under
// "regions"). Enter/Exit nest in LIFO order on the creating thread.
class ScratchSpace {
 public:
  virtual ~ScratchSpace() = default;
  virtual void Enter() = 0;
  virtual void Exit() = 0;
};

// Scratch for policies without per-callback arenas: each Enter makes `heap` the fallback
// resource (broom::FallbackResourceScope) until the matching Exit.
std::unique_ptr<ScratchSpace> MakeFallbackScratch(std::pmr::memory_resource* heap);

class MemoryPolicy {
 public:
  MemoryPolicy();
  virtual ~MemoryPolicy() = default;
  virtual std::string_view name() const = 0;
  // Unique over the process lifetime (never reused, unlike the object's address).
  uint64_t id() const { return id_; }

  // Creates an arena for `use`; `name` (a string literal or null) labels it in diagnostics.
  // Returns an opaque handle (may be null for policies without per-arena state). Throws
  // std::bad_alloc on failure. Called on the thread that will own the arena.
  virtual void* CreateArena(ArenaUse use, const char* name) = 0;
  // The memory resource of an arena. Valid until DestroyArena.
  virtual std::pmr::memory_resource* ArenaResource(void* arena) = 0;
  // Frees the arena. REQUIRES: its root object has been destroyed; no ArenaScope open on it.
  virtual void DestroyArena(void* arena) = 0;
  // Bytes held by the arena (its footprint) if known, else 0. Cheap.
  virtual size_t ArenaBytes(void* arena) const = 0;
  // Called by the engine just before a message arena changes owner (a batch is sent). The
  // regions policy performs a core transfer here, so Broom's checked mode (BROOM_CHECKS,
  // broom::SetCheckMode) scans the batch for pointers out of it before it leaves.
  virtual void BeforeTransfer(void* /*arena*/) {}
  // Called once the arena's root object is constructed (the shim keeps the root pointer where a
  // collector cannot see it; a tracing policy makes `root` reachable until DestroyArena).
  virtual void AttachRoot(void* /*arena*/, void* /*root*/) {}

  // Creates scratch space for the calling thread.
  virtual std::unique_ptr<ScratchSpace> CreateScratch() = 0;

 private:
  uint64_t id_;
};

// "regions", "heap", "heap-glibc" or a registered name; null for an unknown name.
std::unique_ptr<MemoryPolicy> MakePolicy(std::string_view name);
// Adds a policy under `name` (a string literal) for MakePolicy; replaces an earlier one of that
// name. Thread-safe.
using PolicyFactory = std::unique_ptr<MemoryPolicy> (*)();
void RegisterPolicy(const char* name, PolicyFactory factory);

// Makes `resource` the calling thread's allocation context until the scope ends: a broom
// region is pushed on the context stack; any other resource becomes the fallback resource.
class ArenaScope {
 public:
  explicit ArenaScope(std::pmr::memory_resource* resource) {
    if (auto* region = dynamic_cast<Region*>(resource)) {
      region_.emplace(*region);
    } else {
      fallback_.emplace(resource);
    }
  }
  ArenaScope(const ArenaScope&) = delete;
  ArenaScope& operator=(const ArenaScope&) = delete;

 private:
  std::optional<FallbackResourceScope> fallback_;
  std::optional<ContextScope> region_;
};

// RAII for ScratchSpace::Enter/Exit.
class ScratchScope {
 public:
  explicit ScratchScope(ScratchSpace& s) : s_(s) { s_.Enter(); }
  ~ScratchScope() { s_.Exit(); }
  ScratchScope(const ScratchScope&) = delete;
  ScratchScope& operator=(const ScratchScope&) = delete;

 private:
  ScratchSpace& s_;
};

// The calling thread's scratch for `policy`, created on first use and destroyed at thread exit
// or by ReleaseThreadScratch(). If the thread last used another policy, that scratch is
// destroyed and a new one made. REQUIRES: no ScratchScope open on the thread when the policy
// changes.
ScratchSpace& ThreadScratch(MemoryPolicy& policy);
// Destroys the calling thread's scratch now (drivers call it so region statistics balance
// before the thread exits). REQUIRES: no ScratchScope open.
void ReleaseThreadScratch();

}  // namespace broom::lifecycle

#endif  // BROOM_LIFECYCLE_POLICY_H_
