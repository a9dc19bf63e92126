// Copyright Broom authors.
#include "broom/lifecycle/policy.h"

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <new>
#include <optional>
#include <utility>
#include <vector>

#include "broom/actor_region.h"
#include "broom/temporary_region.h"

namespace broom::lifecycle {

namespace {
std::atomic<uint64_t> g_next_policy_id{1};
}  // namespace

MemoryPolicy::MemoryPolicy() : id_(g_next_policy_id.fetch_add(1, std::memory_order_relaxed)) {}

namespace {

// ---- regions ----------------------------------------------------------------------------------

// The scopes of nested callbacks' scratch: up to kMaxDepth of type S, made by Enter and ended by
// Exit in LIFO order (both fatal when unbalanced).
template <class S>
class ScopeStack {
 public:
  static constexpr size_t kMaxDepth = 8;
  template <class... Args>
  void Push(Args&&... args) {
    BROOM_CHECK(depth_ < kMaxDepth, "callback scratch nested deeper than %zu", kMaxDepth);
    scopes_[depth_++].emplace(std::forward<Args>(args)...);
  }
  void Pop() {
    BROOM_CHECK(depth_ > 0, "callback scratch exited more often than entered");
    scopes_[--depth_].reset();
  }
  size_t depth() const { return depth_; }

 private:
  std::array<std::optional<S>, kMaxDepth> scopes_;
  size_t depth_ = 0;
};

class RegionScratch final : public ScratchSpace {
 public:
  RegionScratch() : temporary_(RegionOptions{.name = "callback-scratch"}) {}
  void Enter() override {
    if (scopes_.depth() < cleanups_at_enter_.size()) {
      cleanups_at_enter_[scopes_.depth()] = temporary_.region().stats().cleanups;
    }
    scopes_.Push(temporary_);
  }
  void Exit() override {
    // Destructors registered since Enter run at the scope's exit.
    const size_t depth = scopes_.depth();
    const size_t before = depth > 0 ? temporary_.region().stats().cleanups : 0;
    scopes_.Pop();
    const size_t cleanups = before - cleanups_at_enter_[depth - 1];
    if (cleanups != 0) internal::AddTo(internal::g_shim_counters.scratch_cleanups, cleanups);
  }

 private:
  TemporaryRegion temporary_;  // declared first: outlives the scopes
  ScopeStack<TemporaryRegion::Scope> scopes_;
  std::array<size_t, ScopeStack<TemporaryRegion::Scope>::kMaxDepth> cleanups_at_enter_{};
};

class RegionPolicy final : public MemoryPolicy {
 public:
  std::string_view name() const override { return "regions"; }
  Arena CreateArena(ArenaUse use, const char* name) override {
    RegionOptions options;
    options.name = name;
    if (use == ArenaUse::kOperatorState) return Arena(use, ActorRegion(options));
    // Messages and per-timestamp state are transferable: they may change owner.
    return Arena::NewTransferable(use, options);
  }
  std::unique_ptr<ScratchSpace> CreateScratch() override {
    return std::make_unique<RegionScratch>();
  }
};

// ---- heap -------------------------------------------------------------------------------------

// "heap" allocates through operator new, i.e. the process's malloc, so that a run under
// LD_PRELOAD of mimalloc or tcmalloc measures that allocator (without a preload it is jemalloc,
// which libbroom links and which therefore replaces malloc in the whole process).
std::pmr::memory_resource* ProcessHeap() { return std::pmr::new_delete_resource(); }

}  // namespace
}  // namespace broom::lifecycle

// glibc keeps its allocator callable under these names when another malloc is interposed.
extern "C" void* __libc_malloc(size_t size);
extern "C" void* __libc_memalign(size_t align, size_t size);
extern "C" void __libc_free(void* p);

namespace broom::lifecycle {
namespace {

// "heap-glibc": glibc's malloc for the operators' memory, although jemalloc is the process
// malloc (a binary linking libbroom cannot get glibc malloc back through LD_PRELOAD).
class GlibcHeap final : public std::pmr::memory_resource {
 private:
  void* do_allocate(size_t bytes, size_t align) override {
    void* p =
        align <= alignof(std::max_align_t) ? __libc_malloc(bytes) : __libc_memalign(align, bytes);
    if (p == nullptr) throw std::bad_alloc();
    return p;
  }
  void do_deallocate(void* p, size_t, size_t) override { __libc_free(p); }
  bool do_is_equal(const memory_resource& o) const noexcept override { return this == &o; }
};

std::pmr::memory_resource* GlibcResource() {
  static GlibcHeap* heap = new GlibcHeap();  // never destroyed: used until exit
  return heap;
}

class HeapScratch final : public ScratchSpace {
 public:
  explicit HeapScratch(std::pmr::memory_resource* heap) : heap_(heap) {}
  // Scratch is the general heap: objects are freed one by one by their destructors. Making the
  // heap the explicit fallback keeps this correct even if an enclosing scope set another one.
  void Enter() override { scopes_.Push(heap_); }
  void Exit() override { scopes_.Pop(); }

 private:
  std::pmr::memory_resource* heap_;
  ScopeStack<FallbackResourceScope> scopes_;
};

class HeapPolicy final : public MemoryPolicy {
 public:
  HeapPolicy(std::string_view name, std::pmr::memory_resource* heap) : name_(name), heap_(heap) {}
  std::string_view name() const override { return name_; }
  Arena CreateArena(ArenaUse use, const char*) override { return Arena::OnHeap(use, heap_); }
  std::unique_ptr<ScratchSpace> CreateScratch() override { return MakeFallbackScratch(heap_); }

 private:
  std::string_view name_;
  std::pmr::memory_resource* heap_;
};

// The calling thread's scratch, counted in ShimStats (created here, destroyed when replaced,
// released or at thread exit).
struct ThreadScratchSlot {
  ~ThreadScratchSlot() { Reset(); }
  void Reset() {
    if (scratch == nullptr) return;
    scratch.reset();
    policy_id = 0;
    internal::AddTo(internal::g_shim_counters.scratch_destroyed);
  }
  uint64_t policy_id = 0;
  std::unique_ptr<ScratchSpace> scratch;
};
thread_local ThreadScratchSlot t_scratch;

}  // namespace

namespace {
struct Registered {
  const char* name;
  PolicyFactory factory;
};
std::mutex g_registry_mu;
std::vector<Registered>& RegisteredPolicies() {
  static auto* r = new std::vector<Registered>();  // never destroyed: used until exit
  return *r;
}
}  // namespace

void RegisterPolicy(const char* name, PolicyFactory factory) {
  std::lock_guard<std::mutex> lock(g_registry_mu);
  for (Registered& r : RegisteredPolicies()) {
    if (name == std::string_view(r.name)) {
      r.factory = factory;
      return;
    }
  }
  RegisteredPolicies().push_back({name, factory});
}

std::unique_ptr<ScratchSpace> MakeFallbackScratch(std::pmr::memory_resource* heap) {
  return std::make_unique<HeapScratch>(heap);
}

std::unique_ptr<MemoryPolicy> MakePolicy(std::string_view name) {
  if (name == "regions" || name == "broom") return std::make_unique<RegionPolicy>();
  if (name == "heap") return std::make_unique<HeapPolicy>("heap", ProcessHeap());
  if (name == "heap-glibc") return std::make_unique<HeapPolicy>("heap-glibc", GlibcResource());
  std::lock_guard<std::mutex> lock(g_registry_mu);
  for (const Registered& r : RegisteredPolicies()) {
    if (name == r.name) return r.factory();
  }
  return nullptr;
}

ScratchSpace& ThreadScratch(MemoryPolicy& policy) {
  ThreadScratchSlot& slot = t_scratch;
  if (slot.policy_id != policy.id()) {
    slot.Reset();
    slot.scratch = policy.CreateScratch();
    slot.policy_id = policy.id();
    internal::AddTo(internal::g_shim_counters.scratch_created);
  }
  return *slot.scratch;
}

void ReleaseThreadScratch() { t_scratch.Reset(); }

}  // namespace broom::lifecycle
