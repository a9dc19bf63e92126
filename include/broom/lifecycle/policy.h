// Copyright Broom authors.
//
// policy.h: the memory policy of a dataflow job, chosen at run time.
//
//   MemoryPolicy        the interface: hands out the arenas (arena.h) that an operator's
//                       state, each message and each timestamp's state live in, and the
//                       per-thread scratch every callback enters and leaves.
//   ScratchSpace        per-thread scratch that every callback enters and leaves.
//   ScratchScope        RAII for ScratchSpace::Enter/Exit.
//   MakePolicy(name)    "regions" (Broom), "heap" (the process malloc, per-object free),
//                       "heap-glibc" (glibc's malloc through __libc_malloc, whatever the
//                       process malloc is), or a policy added with RegisterPolicy (the Boehm
//                       GC policy "gc", gc_policy.h).
//   ThreadScratch / ReleaseThreadScratch   the calling thread's scratch for a policy.
//
// Operators never name a policy: they allocate through broom::CurrentResource(),
// broom::Allocator<T> or std::pmr containers built with the resources the Context hands out.
// The engine shims create every arena through the job's policy, so switching "regions" to "heap"
// or "gc" changes no operator code.
//
// Arena model: an arena holds one root object and everything it owns. The shim constructs the
// root with the arena open (ArenaScope), destroys it explicitly, then frees the arena. Under
// "regions" messages and per-timestamp state are broom::TransferableRegions, operator state a
// broom::ActorRegion, and freeing the arena frees its contents in bulk. Under "heap" an arena is
// the general heap, and the root's destructor frees each object.
//
// Thread-safety: a MemoryPolicy is immutable after construction and thread-safe; the arenas it
// creates are owner-thread only. ScratchSpace is owner-thread only.
#ifndef BROOM_LIFECYCLE_POLICY_H_
#define BROOM_LIFECYCLE_POLICY_H_

#include <memory>
#include <memory_resource>
#include <string_view>

#include "broom/lifecycle/arena.h"

namespace broom::lifecycle {

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

  // Creates an arena for `use` (see arena.h for what each policy hands out); `name` (a string
  // literal or null) labels it in diagnostics. Throws std::bad_alloc on failure. Called on the
  // thread that will own the arena.
  virtual Arena CreateArena(ArenaUse use, const char* name) = 0;

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
