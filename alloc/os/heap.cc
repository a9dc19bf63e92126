// Copyright Broom authors.
#include "alloc/os/heap.h"

#include <cstdlib>

#if BROOM_WITH_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

namespace broom::internal {

#if BROOM_WITH_JEMALLOC
void* MetaAllocate(size_t size, size_t align) {
  int flags = align > alignof(std::max_align_t) ? MALLOCX_ALIGN(align) : 0;
  return mallocx(size == 0 ? 1 : size, flags);
}
void MetaFree(void* p, size_t size, size_t align) {
  if (p == nullptr) return;
  int flags = align > alignof(std::max_align_t) ? MALLOCX_ALIGN(align) : 0;
  sdallocx(p, size == 0 ? 1 : size, flags);
}
#else
void* MetaAllocate(size_t size, size_t align) {
  if (align <= alignof(std::max_align_t)) return std::malloc(size == 0 ? 1 : size);
  void* p = nullptr;
  return posix_memalign(&p, align, size == 0 ? 1 : size) == 0 ? p : nullptr;
}
void MetaFree(void* p, size_t, size_t) { std::free(p); }
#endif

}  // namespace broom::internal
