// Copyright Broom authors.
//
// heaps.h: the per-object heaps the actor-state benchmarks compare (churn.cc, reap_batch.cc,
// reap_pmr.cc, reap_footprint.cc), one per BROOM_BENCH_POLICY (program_common.h), all with the
// same interface so that a program's code is the same for every contender:
//
//   class Heap
//     static std::string Name()       the RESULT line's policy= (sidebyside.py checks it)
//     void* Allocate(size_t size)     one object of 1..8192 bytes, 16-byte aligned
//     void Free(void* p, size_t size) frees an object allocated with that size
//     std::pmr::memory_resource* Resource()           the same heap as a memory_resource
//     template <class T> using Alloc; Alloc<T> MakeAllocator<T>()   ... as an STL allocator
//     size_t HeapBytes() const        bytes the heap holds from the layer below it now (0 if
//                                     the heap cannot tell: the mallocs)
//     size_t PeakHeapBytes() const    the high-water mark of HeapBytes, where the heap keeps one
//                                     (broom, pmr_pool; else 0)
//     void Report(Result&) const      policy-specific RESULT keys
//
//   broom          one ActorRegion. Allocate/Free are the inline fast paths of its ReapRegion
//                  (ActorRegion::region()), Alloc<T> is broom::ActorAllocator<T> (which calls
//                  them directly), Resource() is the ReapRegion itself (a memory_resource: a
//                  virtual do_allocate per call, like every resource). HeapBytes: block_bytes.
//   malloc         malloc/free, std::allocator, std::pmr::new_delete_resource(); the malloc is
//                  glibc's or the one LD_PRELOAD supplies (malloc_identity.h names it).
//   pmr_pool       one std::pmr::unsynchronized_pool_resource (libstdc++'s default options)
//                  over new_delete_resource (run without a preload: glibc's malloc upstream),
//                  through a counting resource. Allocate/Free call the pool object itself (its
//                  type is known, so the compiler may skip the virtual dispatch); Alloc<T> is
//                  std::pmr::polymorphic_allocator<T>. HeapBytes: bytes held from upstream.
//   mimalloc_heap  one mi_heap_new() heap: mi_heap_malloc / mi_free, with an STL allocator and
//                  a memory_resource over them. The binary links libmimalloc, which is then the
//                  process's malloc too. HeapBytes: committed bytes of the heap's pages
//                  (mi_heap_visit_blocks, O(pages)).
//   gc             Boehm GC (churn.cc only): Allocate is GC_MALLOC_ATOMIC (payload bytes),
//                  Alloc<T> GC_MALLOC; Free and deallocate do nothing (the collector decides).
//
// Allocation failure: Allocate returns null (every program writes to what it gets at once, so a
// null stops it there); the STL allocators and resources throw std::bad_alloc.
//
// Thread-safety: owner thread only, like the actor state they stand for.
#ifndef BROOM_BENCH_WORKLOADS_HEAPS_H_
#define BROOM_BENCH_WORKLOADS_HEAPS_H_

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <memory>
#include <memory_resource>
#include <new>
#include <string>

#include "bench/workloads/program_common.h"

#if BROOM_BENCH_POLICY == BROOM_BENCH_POLICY_BROOM
#include "broom/actor_region.h"
#include "broom/context.h"
#elif BROOM_BENCH_POLICY == BROOM_BENCH_POLICY_MALLOC
#include "bench/baselines/malloc_identity.h"
#elif BROOM_BENCH_POLICY == BROOM_BENCH_POLICY_PMR_POOL
#include "bench/baselines/malloc_identity.h"
#elif BROOM_BENCH_POLICY == BROOM_BENCH_POLICY_MIMALLOC_HEAP
#include <mimalloc.h>
#elif BROOM_BENCH_POLICY == BROOM_BENCH_POLICY_GC
#include <gc/gc.h>
#else
#error "BROOM_BENCH_POLICY must be 1 (broom), 2 (malloc), 3 (gc), 4 (pmr_pool), 5 (mimalloc_heap)"
#endif

namespace broom::bench {

#if BROOM_BENCH_POLICY == BROOM_BENCH_POLICY_BROOM
class Heap {
 public:
  Heap() : reap_(&actor_.region()) {}
  static std::string Name() { return "broom"; }
  void* Allocate(size_t size) { return reap_->Allocate(size); }
  void Free(void* p, size_t) { reap_->Free(p); }
  std::pmr::memory_resource* Resource() { return reap_; }
  template <class T>
  using Alloc = broom::ActorAllocator<T>;
  template <class T>
  Alloc<T> MakeAllocator() {
    return Alloc<T>(*reap_);
  }
  size_t HeapBytes() const { return actor_.stats().block_bytes; }
  size_t PeakHeapBytes() const { return actor_.stats().peak_block_bytes; }
  RegionStats Stats() const { return actor_.stats(); }
  void Report(Result& r) const {
    const RegionStats s = actor_.stats();
    r.Add("peak_block_bytes", static_cast<double>(s.peak_block_bytes));
    r.Add("end_block_bytes", static_cast<double>(s.block_bytes));
  }

 private:
  ActorRegion actor_;
  ReapRegion* reap_;  // actor_.region(), without its moved-from check on every call
};

#elif BROOM_BENCH_POLICY == BROOM_BENCH_POLICY_MALLOC
class Heap {
 public:
  static std::string Name() { return "malloc_" + MallocName(); }
  void* Allocate(size_t size) { return std::malloc(size); }
  void Free(void* p, size_t) { std::free(p); }
  std::pmr::memory_resource* Resource() { return std::pmr::new_delete_resource(); }
  template <class T>
  using Alloc = std::allocator<T>;
  template <class T>
  Alloc<T> MakeAllocator() {
    return Alloc<T>();
  }
  size_t HeapBytes() const { return 0; }
  size_t PeakHeapBytes() const { return 0; }
  void Report(Result&) const {}
};

#elif BROOM_BENCH_POLICY == BROOM_BENCH_POLICY_PMR_POOL
// new_delete_resource, counting the bytes held through it.
class CountingResource final : public std::pmr::memory_resource {
 public:
  size_t bytes() const { return bytes_; }
  size_t peak_bytes() const { return peak_bytes_; }

 private:
  void* do_allocate(size_t bytes, size_t align) override {
    void* p = std::pmr::new_delete_resource()->allocate(bytes, align);
    bytes_ += bytes;
    peak_bytes_ = std::max(peak_bytes_, bytes_);
    return p;
  }
  void do_deallocate(void* p, size_t bytes, size_t align) override {
    std::pmr::new_delete_resource()->deallocate(p, bytes, align);
    bytes_ -= bytes;
  }
  bool do_is_equal(const memory_resource& other) const noexcept override { return this == &other; }

  size_t bytes_ = 0;
  size_t peak_bytes_ = 0;
};

class Heap {
 public:
  static std::string Name() { return "pmr_pool"; }
  void* Allocate(size_t size) { return pool_.allocate(size, alignof(std::max_align_t)); }
  void Free(void* p, size_t size) { pool_.deallocate(p, size, alignof(std::max_align_t)); }
  std::pmr::memory_resource* Resource() { return &pool_; }
  template <class T>
  using Alloc = std::pmr::polymorphic_allocator<T>;
  template <class T>
  Alloc<T> MakeAllocator() {
    return Alloc<T>(&pool_);
  }
  size_t HeapBytes() const { return upstream_.bytes(); }
  size_t PeakHeapBytes() const { return upstream_.peak_bytes(); }
  void Report(Result& r) const {
    r.Add("upstream", MallocName());
    r.Add("peak_upstream_bytes", static_cast<double>(upstream_.peak_bytes()));
  }

 private:
  CountingResource upstream_;  // declared first: outlives the pool
  std::pmr::unsynchronized_pool_resource pool_{&upstream_};
};

#elif BROOM_BENCH_POLICY == BROOM_BENCH_POLICY_MIMALLOC_HEAP
inline mi_heap_t* NewMiHeap() {
  mi_heap_t* heap = mi_heap_new();
  if (heap == nullptr) {
    std::fprintf(stderr, "mi_heap_new failed\n");
    std::exit(1);
  }
  return heap;
}

// An STL allocator over one mimalloc heap (mimalloc 2.0.9's own mi_heap_stl_allocator holds the
// heap in a std::shared_ptr that would `delete` a heap it did not create).
template <class T>
struct MiHeapAllocator {
  using value_type = T;
  explicit MiHeapAllocator(mi_heap_t* h) noexcept : heap(h) {}
  template <class U>
  MiHeapAllocator(const MiHeapAllocator<U>& other) noexcept : heap(other.heap) {}
  T* allocate(size_t n) {
    void* p = alignof(T) <= alignof(std::max_align_t)
                  ? mi_heap_mallocn(heap, n, sizeof(T))
                  : mi_heap_malloc_aligned(heap, n * sizeof(T), alignof(T));
    if (p == nullptr) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t) noexcept { mi_free(p); }
  template <class U>
  bool operator==(const MiHeapAllocator<U>& other) const noexcept {
    return heap == other.heap;
  }
  mi_heap_t* heap;
};

// A memory_resource over one mimalloc heap.
class MiHeapResource final : public std::pmr::memory_resource {
 public:
  explicit MiHeapResource(mi_heap_t* heap) : heap_(heap) {}

 private:
  void* do_allocate(size_t bytes, size_t align) override {
    void* p = align <= alignof(std::max_align_t) ? mi_heap_malloc(heap_, bytes)
                                                 : mi_heap_malloc_aligned(heap_, bytes, align);
    if (p == nullptr) throw std::bad_alloc();
    return p;
  }
  void do_deallocate(void* p, size_t, size_t) override { mi_free(p); }
  bool do_is_equal(const memory_resource& other) const noexcept override { return this == &other; }

  mi_heap_t* heap_;
};

class Heap {
 public:
  Heap() : heap_(NewMiHeap()), resource_(heap_) {}
  ~Heap() { mi_heap_delete(heap_); }  // whatever is still live moves to the default heap
  Heap(const Heap&) = delete;
  Heap& operator=(const Heap&) = delete;
  static std::string Name() { return "mimalloc_heap"; }
  void* Allocate(size_t size) { return mi_heap_malloc(heap_, size); }
  void Free(void* p, size_t) { mi_free(p); }
  std::pmr::memory_resource* Resource() { return &resource_; }
  template <class T>
  using Alloc = MiHeapAllocator<T>;
  template <class T>
  Alloc<T> MakeAllocator() {
    return Alloc<T>(heap_);
  }
  size_t HeapBytes() const {
    size_t committed = 0;
    mi_heap_visit_blocks(
        heap_, /*visit_all_blocks=*/false,
        [](const mi_heap_t*, const mi_heap_area_t* area, void* block, size_t, void* arg) {
          if (block == nullptr) *static_cast<size_t*>(arg) += area->committed;
          return true;
        },
        &committed);
    return committed;
  }
  size_t PeakHeapBytes() const { return 0; }
  void Report(Result& r) const { r.Add("mimalloc_version", static_cast<double>(mi_version())); }

 private:
  mi_heap_t* heap_;
  MiHeapResource resource_;
};

#else  // BROOM_BENCH_POLICY_GC
// An STL allocator over the collected heap. deallocate does nothing: the collector decides.
template <class T>
struct GcAllocator {
  using value_type = T;
  GcAllocator() = default;
  template <class U>
  GcAllocator(const GcAllocator<U>&) {}
  T* allocate(size_t n) {
    void* p = GC_MALLOC(n * sizeof(T));
    if (p == nullptr) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T*, size_t) {}
  template <class U>
  bool operator==(const GcAllocator<U>&) const {
    return true;
  }
};

class Heap {
 public:
  Heap() { GC_INIT(); }
  static std::string Name() { return "boehm_gc"; }
  void* Allocate(size_t size) { return GC_MALLOC_ATOMIC(size); }
  void Free(void*, size_t) {}
  template <class T>
  using Alloc = GcAllocator<T>;
  template <class T>
  Alloc<T> MakeAllocator() {
    return Alloc<T>();
  }
  size_t HeapBytes() const { return GC_get_heap_size(); }
  size_t PeakHeapBytes() const { return 0; }
  void Report(Result& r) const {
    r.Add("gc_collections", static_cast<double>(GC_get_gc_no()));
    r.Add("gc_heap_bytes", static_cast<double>(GC_get_heap_size()));
  }
};
#endif

}  // namespace broom::bench

#endif  // BROOM_BENCH_WORKLOADS_HEAPS_H_
