// Copyright Broom authors.
#include "broom/lifecycle/gc_policy.h"

#define GC_THREADS 1
#include <gc/gc.h>

#include <memory_resource>
#include <new>

#include "broom/lifecycle/arena.h"
#include "broom/lifecycle/policy.h"

namespace broom::lifecycle {
namespace {

// Registers the calling thread with the collector once; unregisters it at thread exit.
class ThreadRegistration {
 public:
  void Ensure() {
    if (registered_ || GC_thread_is_registered()) return;
    GC_stack_base sb;
    BROOM_CHECK(GC_get_stack_base(&sb) == GC_SUCCESS, "gc policy: no stack base for a thread");
    int rc = GC_register_my_thread(&sb);
    BROOM_CHECK(rc == GC_SUCCESS || rc == GC_DUPLICATE, "gc policy: cannot register a thread");
    registered_ = rc == GC_SUCCESS;
  }
  ~ThreadRegistration() {
    if (registered_) GC_unregister_my_thread();
  }

 private:
  bool registered_ = false;
};
thread_local ThreadRegistration t_registration;

// The collected heap as a memory resource: allocation from GC_MALLOC, deallocation a no-op.
class GcResource final : public std::pmr::memory_resource {
 private:
  void* do_allocate(size_t bytes, size_t align) override {
    void* p = align <= 16 ? GC_MALLOC(bytes == 0 ? 1 : bytes)
                          : GC_memalign(align, bytes == 0 ? 1 : bytes);
    if (p == nullptr) throw std::bad_alloc();
    return p;
  }
  void do_deallocate(void*, size_t, size_t) override {}  // the collector reclaims it
  bool do_is_equal(const memory_resource& o) const noexcept override { return this == &o; }
};

GcResource& Resource() {
  static GcResource* r = new GcResource();  // never destroyed: arenas may outlive statics
  return *r;
}

// An arena: an uncollectable (scanned, never collected) cell holding the root, so a batch or
// state object that only the shim references (from memory the collector does not scan) stays
// alive until its arena is freed; then its objects are garbage.
class GcAnchor final : public ArenaBackend {
 public:
  static GcAnchor* Create() {
    void* cell = GC_MALLOC_UNCOLLECTABLE(sizeof(GcAnchor));
    if (cell == nullptr) throw std::bad_alloc();
    return ::new (cell) GcAnchor();
  }
  std::pmr::memory_resource* resource() override { return &Resource(); }
  void AttachRoot(void* root) override { root_ = root; }
  void Destroy() override {
    root_ = nullptr;
    this->~GcAnchor();
    GC_FREE(this);
  }

 private:
  GcAnchor() = default;
  void* root_ = nullptr;
};

class GcPolicy final : public MemoryPolicy {
 public:
  std::string_view name() const override { return "gc"; }
  Arena CreateArena(ArenaUse use, const char*) override {
    t_registration.Ensure();
    return Arena::WithBackend(use, GcAnchor::Create());
  }
  std::unique_ptr<ScratchSpace> CreateScratch() override {
    t_registration.Ensure();  // every thread that runs callbacks comes here first
    return MakeFallbackScratch(&Resource());
  }
};

}  // namespace

void RegisterGcPolicy() {
  static const bool once = [] {
    GC_INIT();
    GC_allow_register_threads();
    RegisterPolicy("gc", [] { return std::unique_ptr<MemoryPolicy>(new GcPolicy()); });
    return true;
  }();
  (void)once;
}

uint64_t GcCollections() { return GC_get_gc_no(); }
size_t GcHeapBytes() { return GC_get_heap_size(); }
void GcCollectNow() { GC_gcollect(); }

}  // namespace broom::lifecycle
