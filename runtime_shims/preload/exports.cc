// Copyright Broom authors.
//
// The exported C malloc family. malloc and free are one jump through g_dispatch (shim.h): to
// jemalloc's own entry point while no region was ever created and no mode is on, else to the
// checked or slow entries in shim.cc. calloc checks the thread's depth (one TLS load, a branch)
// and jumps to jemalloc's calloc; realloc also checks the pointer against g_slow_free.
// Everything else goes to the slow paths in shim.cc. The generated code:
// runtime_shims/preload/BENCH.md.
//
// glibc behaviours kept (see docs/preload.md, "Differences from glibc malloc"):
//   malloc(0) returns a unique pointer; calloc/reallocarray detect n * size overflow (ENOMEM);
//   realloc(p, 0) frees p and returns NULL, realloc(NULL, 0) is malloc(0); posix_memalign
//   returns EINVAL for an alignment that is not a power of two multiple of sizeof(void*);
//   aligned_alloc sets EINVAL for an alignment that is not a power of two (glibc >= 2.38);
//   memalign rounds a non-power-of-two alignment up (glibc) and sets EINVAL for one above
//   SIZE_MAX / 2 + 1; every other failure sets errno = ENOMEM (realloc and reallocarray too,
//   where jemalloc's realloc leaves errno untouched); posix_memalign returns its error and
//   leaves errno alone. Every aligned entry point honours its alignment for every size, 0
//   included.
#include <errno.h>
#include <unistd.h>

#include "broom/internal/block.h"
#include "runtime_shims/preload/backend.h"
#include "runtime_shims/preload/fork.h"
#include "runtime_shims/preload/shim.h"

using broom::preload::FastPath;
using broom::preload::g_dispatch;
using broom::preload::g_je;
using broom::preload::NeedsSlowFree;

namespace {

#define BROOM_RET_ADDR __builtin_return_address(0)

inline size_t PageSize() {
  static size_t page = 0;
  if (BROOM_UNLIKELY(page == 0)) page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return page;
}

// memalign's alignment: `align` rounded up to a power of two, as glibc does (0 and 1 ask for
// nothing beyond malloc's); SIZE_MAX if it is too large to honour.
inline size_t RoundAlignment(size_t align) {
  if (align > (SIZE_MAX >> 1) + 1) return SIZE_MAX;
  if (align <= 1) return 0;
  if ((align & (align - 1)) != 0) align = size_t{1} << (64 - __builtin_clzll(align));
  return align;
}

// Optimized builds turn the jumps through g_dispatch into tail calls, so a *Slow or *Checked
// target sees the program's call site as its return address. Unoptimized builds may not, so
// there the exported functions keep the full check (depth, mode) in front of the jump and call
// the slow path themselves.
#ifdef __OPTIMIZE__
constexpr bool kTailJumps = true;
#else
constexpr bool kTailJumps = false;
#endif

// True when calloc may jump through g_dispatch.
inline bool DispatchPath() { return kTailJumps ? broom::preload::NothingPushed() : FastPath(); }

// `align` is honoured exactly, whatever the size: jemalloc's malloc aligns requests under 16
// bytes to 8 only, so an explicit alignment never takes the plain malloc path (see Allocate).
inline void* AlignedSlow(size_t align, size_t size, void* site) {
  return broom::preload::Allocate(size, align, false, site);
}

}  // namespace

// Pass-through: one indirect jump to jemalloc's malloc (MallocChecked in between once regions
// exist: 5 more instructions and a second jump).
BROOM_PRELOAD_EXPORT void* BROOM_PRELOAD_NAME(malloc)(size_t size) {
  if (kTailJumps || FastPath()) return g_dispatch.malloc.load(std::memory_order_relaxed)(size);
  return broom::preload::Allocate(size, 0, false, BROOM_RET_ADDR);
}

// Pass-through: one indirect jump to jemalloc's free (FreeChecked in between once regions exist).
BROOM_PRELOAD_EXPORT void BROOM_PRELOAD_NAME(free)(void* p) {
  if (kTailJumps) return g_dispatch.free.load(std::memory_order_relaxed)(p);
  if (!NeedsSlowFree(p)) return g_je.free(p);
  broom::preload::Free(p);
}

BROOM_PRELOAD_EXPORT void* BROOM_PRELOAD_NAME(calloc)(size_t n, size_t size) {
  if (DispatchPath()) return g_dispatch.calloc.load(std::memory_order_relaxed)(n, size);
  size_t bytes;
  if (__builtin_mul_overflow(n, size, &bytes)) {
    errno = ENOMEM;
    return nullptr;
  }
  return broom::preload::Allocate(bytes, 0, true, BROOM_RET_ADDR);
}

BROOM_PRELOAD_EXPORT void* BROOM_PRELOAD_NAME(realloc)(void* p, size_t size) {
  // NeedsSlowFree covers the region space and every pointer while a mode is on.
  if (BROOM_LIKELY(broom::preload::NothingPushed() && !NeedsSlowFree(p))) {
    if (BROOM_UNLIKELY(size == 0 && p != nullptr)) {  // glibc: free, return NULL
      g_je.free(p);
      return nullptr;
    }
    void* q = g_je.realloc(p, size);
    if (BROOM_UNLIKELY(q == nullptr)) errno = ENOMEM;  // jemalloc's realloc leaves errno alone
    return q;
  }
  return broom::preload::Reallocate(p, size, BROOM_RET_ADDR);
}

BROOM_PRELOAD_EXPORT void* BROOM_PRELOAD_NAME(reallocarray)(void* p, size_t n, size_t size) {
  size_t bytes;
  if (__builtin_mul_overflow(n, size, &bytes)) {
    errno = ENOMEM;
    return nullptr;
  }
  return broom::preload::Reallocate(p, bytes, BROOM_RET_ADDR);
}

BROOM_PRELOAD_EXPORT int BROOM_PRELOAD_NAME(posix_memalign)(void** out, size_t align, size_t size) {
  if (align < sizeof(void*) || (align & (align - 1)) != 0) return EINVAL;
  int saved = errno;  // POSIX: the error is returned, errno and *out are left alone
  void* p = AlignedSlow(align, size, BROOM_RET_ADDR);
  errno = saved;
  if (p == nullptr) return ENOMEM;
  *out = p;
  return 0;
}

BROOM_PRELOAD_EXPORT void* BROOM_PRELOAD_NAME(aligned_alloc)(size_t align, size_t size) {
  if (align == 0 || (align & (align - 1)) != 0) {
    errno = EINVAL;
    return nullptr;
  }
  return AlignedSlow(align, size, BROOM_RET_ADDR);
}

BROOM_PRELOAD_EXPORT void* BROOM_PRELOAD_NAME(memalign)(size_t align, size_t size) {
  size_t a = RoundAlignment(align);
  if (a == SIZE_MAX) {
    errno = EINVAL;
    return nullptr;
  }
  return AlignedSlow(a, size, BROOM_RET_ADDR);
}

BROOM_PRELOAD_EXPORT void* BROOM_PRELOAD_NAME(valloc)(size_t size) {
  return AlignedSlow(PageSize(), size, BROOM_RET_ADDR);
}

BROOM_PRELOAD_EXPORT void* BROOM_PRELOAD_NAME(pvalloc)(size_t size) {
  size_t page = PageSize();
  size_t rounded;
  if (__builtin_add_overflow(size, page - 1, &rounded)) {
    errno = ENOMEM;
    return nullptr;
  }
  rounded &= ~(page - 1);
  return AlignedSlow(page, rounded == 0 ? page : rounded, BROOM_RET_ADDR);
}

BROOM_PRELOAD_EXPORT size_t BROOM_PRELOAD_NAME(malloc_usable_size)(void* p) {
  return broom::preload::UsableSize(p);
}

// fork.h: the stdio/allocator lock order, nested forks from signal handlers, the lazy space.
BROOM_PRELOAD_EXPORT pid_t BROOM_PRELOAD_NAME(fork)(void) { return broom::preload::Fork(); }
