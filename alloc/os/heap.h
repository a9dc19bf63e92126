// Copyright Broom authors. Layer 0 (os): the general-purpose heap for Broom's own metadata and
// for everything allocated outside regions: jemalloc's mallocx/sdallocx when Broom is built with
// jemalloc (BROOM_WITH_JEMALLOC), glibc's malloc in sanitizer builds. These entry points are
// never interposed by Broom's LD_PRELOAD library, so metadata never lands in a region.
#ifndef BROOM_ALLOC_OS_HEAP_H_
#define BROOM_ALLOC_OS_HEAP_H_

#include <cstddef>
#include <new>

namespace broom::internal {

void* MetaAllocate(size_t size, size_t align = alignof(std::max_align_t));  // null on failure
void MetaFree(void* p, size_t size, size_t align = alignof(std::max_align_t));

// std allocator over MetaAllocate, for containers inside Broom. Throws std::bad_alloc.
template <class T>
struct MetaAllocator {
  using value_type = T;
  MetaAllocator() = default;
  template <class U>
  MetaAllocator(const MetaAllocator<U>&) {}  // NOLINT(google-explicit-constructor): rebind
  T* allocate(size_t n) {
    void* p = MetaAllocate(n * sizeof(T), alignof(T));
    if (p == nullptr) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t n) { MetaFree(p, n * sizeof(T), alignof(T)); }
  template <class U>
  bool operator==(const MetaAllocator<U>&) const {
    return true;
  }
};

}  // namespace broom::internal

#endif  // BROOM_ALLOC_OS_HEAP_H_
