// Copyright Broom authors.
//
// The allocation-context stack and the heap / context memory resources.
#include "broom/context.h"

#include "alloc/os/heap.h"
#include "alloc/region/region_internal.h"

namespace broom {
namespace internal {

thread_local constinit ContextStack t_context = {0, {}};
thread_local constinit std::pmr::memory_resource* t_fallback_resource = nullptr;

void PushContext(Region* r) {
  ContextStack& s = t_context;
  if (BROOM_UNLIKELY(s.depth == kMaxContextDepth)) {
    char buf[128];
    Fatal(__FILE__, __LINE__, "allocation context overflow: opening %s at depth %d",
          Describe(r, buf, sizeof(buf)), kMaxContextDepth);
  }
  const uint32_t me = CurrentThreadId();
  const uint32_t owner = r->owner_tid_.load(std::memory_order_relaxed);
  if (BROOM_UNLIKELY(owner != 0 && owner != me)) r->DieWrongThread("open");
  r->owner_tid_.store(me, std::memory_order_relaxed);
  s.regions[s.depth++] = r;
  ++r->open_count_;
}

void PopContext(Region* r) {
  ContextStack& s = t_context;
  if (BROOM_UNLIKELY(s.depth == 0 || s.regions[s.depth - 1] != r)) {
    char buf[128];
    Fatal(__FILE__, __LINE__,
          "allocation context closed out of order: closing %s, but the top is %s (scopes must "
          "end in LIFO order on the thread that opened them)",
          Describe(r, buf, sizeof(buf)), s.depth == 0 ? "empty" : "another region");
  }
  --s.depth;
  if (--r->open_count_ == 0 && r->kind_ != RegionKind::kTemporary) {
    r->owner_tid_.store(0, std::memory_order_relaxed);  // closed: no thread owns it now
  }
}

void ThrowBadAlloc() { throw std::bad_alloc(); }

namespace {

class HeapResourceImpl final : public std::pmr::memory_resource {
  void* do_allocate(size_t bytes, size_t align) override {
    void* p = MetaAllocate(bytes, align);
    if (p == nullptr) throw std::bad_alloc();
    return p;
  }
  void do_deallocate(void* p, size_t bytes, size_t align) override { MetaFree(p, bytes, align); }
  bool do_is_equal(const std::pmr::memory_resource& o) const noexcept override {
    return this == &o;
  }
};

// Allocates in the region on top of the calling thread's context at each call; frees into the
// region owning the pointer (or the heap).
class ContextResourceImpl final : public std::pmr::memory_resource {
  void* do_allocate(size_t bytes, size_t align) override {
    return CurrentResource()->allocate(bytes, align);
  }
  void do_deallocate(void* p, size_t bytes, size_t align) override {
    if (Region* r = RegionOf(p)) {
      r->Deallocate(p, bytes, align);
    } else if (std::pmr::memory_resource* f = t_fallback_resource) {
      f->deallocate(p, bytes, align);
    } else {
      MetaFree(p, bytes, align);
    }
  }
  bool do_is_equal(const std::pmr::memory_resource& o) const noexcept override {
    return this == &o;
  }
};

HeapResourceImpl g_heap_resource;
ContextResourceImpl g_context_resource;

}  // namespace
}  // namespace internal

std::pmr::memory_resource* HeapResource() { return &internal::g_heap_resource; }
std::pmr::memory_resource* ContextResource() { return &internal::g_context_resource; }

std::string_view CopyString(std::string_view s) {
  Region* r = CurrentRegion();
  BROOM_CHECK(r != nullptr, "broom::CopyString with no region open (use CopyStringIn)");
  return CopyStringIn(*r, s);
}

}  // namespace broom
