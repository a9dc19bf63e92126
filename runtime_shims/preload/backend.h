// Copyright Broom authors.
//
// backend.h: the general heap under the preload: jemalloc, linked into the library from
// Debian's libjemalloc_pic.a (BROOM_PRELOAD_STATIC_JEMALLOC, the default where the archive
// exists: one shared object to load instead of two) or the shared libjemalloc.so.2.
//
//   Backend    table of jemalloc entry points used outside regions. Until ResolveBackend()
//              runs (from the library constructor) the table points at wrappers over
//              mallocx/dallocx/rallocx, which need no symbol lookup, so the very first
//              allocations of the process (the loader's, libc's) work. ResolveBackend() then
//              switches to jemalloc's own malloc/free/calloc/realloc (and operator new, if
//              jemalloc exports it), whose fast paths are about 2 ns shorter than the *allocx
//              API. The exported fast paths reach the table through g_dispatch (shim.h). With
//              jemalloc linked in, ResolveBackend() takes its (renamed) entry points directly,
//              without dlopen/dlsym.
//   Je*()      the non-standard jemalloc API (never interposed by us, so safe to call from
//              inside the shim).
//
// Thread-safety: the table is written once, by the constructor, before the program's threads
// start; each entry is a single pointer-sized store, so a racing reader sees old or new, and both
// allocate from the same jemalloc heap.
#ifndef BROOM_RUNTIME_SHIMS_PRELOAD_BACKEND_H_
#define BROOM_RUNTIME_SHIMS_PRELOAD_BACKEND_H_

#include <cstddef>

namespace broom::preload {

#define BROOM_PRELOAD_HIDDEN __attribute__((visibility("hidden")))

struct Backend {
  void* (*malloc)(size_t);
  void (*free)(void*) noexcept;  // also frees null; noexcept lets operator delete tail-call it
  void* (*calloc)(size_t, size_t);
  void* (*realloc)(void*, size_t);
  // jemalloc's ::operator new(size_t) (new_handler loop, std::bad_alloc); null until resolved
  // or if this jemalloc has no C++ operators.
  void* (*op_new)(size_t);
  // jemalloc's ::operator delete(void*, size_t); null until resolved or if absent.
  void (*sized_delete)(void*, size_t) noexcept;
};
// Hidden: the fast paths load the entries PC-relative, not through the GOT.
extern Backend g_je BROOM_PRELOAD_HIDDEN;

// Finds jemalloc's malloc/free/calloc/realloc (in libjemalloc.so.2: dlopen/dlsym, which may
// allocate): call only from a constructor, never from an allocation path. Idempotent.
void ResolveBackend();
// True once ResolveBackend() found jemalloc's own entry points.
bool BackendResolved();

// jemalloc's extended API. Sizes are in bytes; `align` is 0 (jemalloc's natural alignment: 8
// for requests under 16 bytes, else 16) or a power of two, honoured for every size. A free
// passes the size and alignment of its allocation.
void* JeAllocAligned(size_t size, size_t align, bool zero);  // null on failure, errno untouched
void JeFreeSized(void* p, size_t size, size_t align);        // p from JeAllocAligned or malloc
void JeFreeAligned(void* p, size_t align);
size_t JeUsableSize(const void* p);  // p != null

}  // namespace broom::preload

#endif  // BROOM_RUNTIME_SHIMS_PRELOAD_BACKEND_H_
