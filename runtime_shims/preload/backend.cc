// Copyright Broom authors.
#include "runtime_shims/preload/backend.h"

#include <dlfcn.h>
#include <jemalloc/jemalloc.h>

#include <cerrno>
#include <cstdint>

#if BROOM_PRELOAD_STATIC_JEMALLOC
// jemalloc linked into this library (CMakeLists.txt): its standard-named entry points, renamed
// by jemalloc_rename.txt. Hidden: the version script exports only Broom's own malloc family.
extern "C" {
void* __broom_je_malloc(size_t);
void __broom_je_free(void*) noexcept;
void* __broom_je_calloc(size_t, size_t);
void* __broom_je_realloc(void*, size_t);
void* __broom_je__Znwm(size_t);
void __broom_je__ZdlPvm(void*, size_t) noexcept;
}
#endif

namespace broom::preload {

namespace {

// jemalloc aligns every allocation to 8 but only those of 16 bytes or more to 16, so 16 is
// passed on (mallocx(1, MALLOCX_ALIGN(16)) is a 16-byte object). Frees pass the same flags.
int AlignFlags(size_t align) { return align > 8 ? MALLOCX_ALIGN(align) : 0; }

void* BootMalloc(size_t n) {
  void* p = mallocx(n == 0 ? 1 : n, 0);
  if (p == nullptr) errno = ENOMEM;
  return p;
}
void BootFree(void* p) noexcept {
  if (p != nullptr) dallocx(p, 0);
}
void* BootCalloc(size_t n, size_t size) {
  size_t bytes;
  if (__builtin_mul_overflow(n, size, &bytes)) {
    errno = ENOMEM;
    return nullptr;
  }
  void* p = mallocx(bytes == 0 ? 1 : bytes, MALLOCX_ZERO);
  if (p == nullptr) errno = ENOMEM;
  return p;
}
void* BootRealloc(void* p, size_t n) {
  if (p == nullptr) return BootMalloc(n);
  void* q = rallocx(p, n == 0 ? 1 : n, 0);
  if (q == nullptr) errno = ENOMEM;
  return q;
}

bool g_resolved = false;

#if !BROOM_PRELOAD_STATIC_JEMALLOC
// True if code address `fn` lies in the object whose link map is `object`.
bool In(const void* fn, const void* object) {
  dl_find_object found;
  return fn != nullptr && _dl_find_object(const_cast<void*>(fn), &found) == 0 &&
         found.dlfo_link_map == object;
}
#endif

}  // namespace

Backend g_je = {&BootMalloc, &BootFree, &BootCalloc, &BootRealloc, nullptr, nullptr};

void ResolveBackend() {
  if (g_resolved) return;
  // Make sure jemalloc is initialized (it registers its fork handlers now, before ours).
  sdallocx(mallocx(1, 0), 1, 0);
#if BROOM_PRELOAD_STATIC_JEMALLOC
  g_je = {&__broom_je_malloc,  &__broom_je_free,  &__broom_je_calloc,
          &__broom_je_realloc, &__broom_je__Znwm, &__broom_je__ZdlPvm};
  g_resolved = true;
#else
  void* h = dlopen("libjemalloc.so.2", RTLD_NOW | RTLD_NOLOAD);
  if (h == nullptr) return;
  dl_find_object je;
  if (_dl_find_object(reinterpret_cast<void*>(&mallocx), &je) != 0) return;
  auto m = reinterpret_cast<void* (*)(size_t)>(dlsym(h, "malloc"));
  auto f = reinterpret_cast<void (*)(void*) noexcept>(dlsym(h, "free"));
  auto c = reinterpret_cast<void* (*)(size_t, size_t)>(dlsym(h, "calloc"));
  auto r = reinterpret_cast<void* (*)(void*, size_t)>(dlsym(h, "realloc"));
  auto n = reinterpret_cast<void* (*)(size_t)>(dlsym(h, "_Znwm"));
  auto d = reinterpret_cast<void (*)(void*, size_t) noexcept>(dlsym(h, "_ZdlPvm"));
  // dlsym on the jemalloc handle searches jemalloc first; accept only jemalloc's own functions.
  // (_dl_find_object: a lock-free lookup of the containing object; dladdr would also scan the
  // object's symbol table.)
  const void* obj = je.dlfo_link_map;
  auto fp = [](auto fn) { return reinterpret_cast<const void*>(fn); };
  if (!In(fp(m), obj) || !In(fp(f), obj) || !In(fp(c), obj) || !In(fp(r), obj)) return;
  g_je.malloc = m;
  g_je.free = f;
  g_je.calloc = c;
  g_je.realloc = r;
  if (In(fp(n), obj)) g_je.op_new = n;
  if (In(fp(d), obj)) g_je.sized_delete = d;
  g_resolved = true;
#endif
}

bool BackendResolved() { return g_resolved; }

void* JeAllocAligned(size_t size, size_t align, bool zero) {
  return mallocx(size == 0 ? 1 : size, AlignFlags(align) | (zero ? MALLOCX_ZERO : 0));
}

void JeFreeSized(void* p, size_t size, size_t align) {
  sdallocx(p, size == 0 ? 1 : size, AlignFlags(align));
}

void JeFreeAligned(void* p, size_t align) { dallocx(p, AlignFlags(align)); }

size_t JeUsableSize(const void* p) { return sallocx(const_cast<void*>(p), 0); }

}  // namespace broom::preload
