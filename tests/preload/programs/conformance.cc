// Copyright Broom authors.
//
// Conformance of the malloc family, run as a plain program and under the preload:
//   alignment  every aligned entry point (posix_memalign, memalign, aligned_alloc, valloc,
//              pvalloc, operator new with std::align_val_t) at every power-of-two alignment
//              from 1 to 64 KiB and sizes 0..40 plus a few around the alignment: the pointer
//              is aligned and malloc_usable_size covers the request;
//   errno      every failing entry point sets ENOMEM (EINVAL for a bad alignment: aligned_alloc,
//              memalign above SIZE_MAX / 2 + 1); posix_memalign returns its error and leaves
//              errno and *memptr alone; realloc/reallocarray near SIZE_MAX and PTRDIFF_MAX
//              fail without touching the old block; operator new throws std::bad_alloc.
// With the argument "regions" and the preload present, everything runs again with a region of
// each kind pushed. Prints one line per failed check and "conformance: N failures"; exits 1 if
// any failed.
#define BROOM_C_WEAK
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <initializer_list>
#include <new>

#include "broom/c/broom.h"

// The checks make requests the compiler can prove absurd and reuse blocks after a failed
// realloc (which leaves them alive): exactly what its warnings are about.
#pragma GCC diagnostic ignored "-Walloc-size-larger-than="
#pragma GCC diagnostic ignored "-Wuse-after-free"

namespace {

int g_failures = 0;
const char* g_mode = "heap";

void Fail(const char* what, size_t align, size_t size, const void* p, int err) {
  ++g_failures;
  if (g_failures <= 40) {
    printf("FAIL [%s] %s align=%zu size=%zu -> %p errno=%d\n", g_mode, what, align, size, p, err);
  }
}

bool Aligned(const void* p, size_t align) { return reinterpret_cast<uintptr_t>(p) % align == 0; }

// An allocation that must succeed, be aligned and cover `size` bytes (all of them writable).
void CheckBlock(const char* what, void* p, size_t align, size_t size) {
  if (p == nullptr || !Aligned(p, align) || malloc_usable_size(p) < size) {
    Fail(what, align, size, p, errno);
    return;
  }
  memset(p, 0x5a, size);
}

// Four blocks at a time stay live per check: a heap that hands back the block just freed would
// otherwise hide a misaligned size class behind one lucky slot.
constexpr int kLive = 4;

void CheckAlignment() {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  void* live[kLive];
  for (size_t align = 1; align <= 65536; align *= 2) {
    size_t sizes[48];
    int n = 0;
    for (size_t s = 0; s <= 40; ++s) sizes[n++] = s;
    for (size_t s : {align - 1, align, align + 1, 2 * align + 3}) sizes[n++] = s;
    for (int i = 0; i < n; ++i) {
      size_t size = sizes[i];
      if (align >= sizeof(void*)) {
        for (void*& p : live) {
          p = reinterpret_cast<void*>(1);
          int rc = posix_memalign(&p, align, size);
          if (rc != 0) Fail("posix_memalign", align, size, p, rc);
          if (rc != 0) p = nullptr;
          if (p != nullptr) CheckBlock("posix_memalign", p, align, size);
        }
        for (void* p : live) free(p);
      }
      for (void*& p : live) CheckBlock("memalign", p = memalign(align, size), align, size);
      for (void* p : live) free(p);
      for (void*& p : live)
        CheckBlock("aligned_alloc", p = aligned_alloc(align, size), align, size);
      for (void* p : live) free(p);
      for (void*& p : live) {
        p = ::operator new (size, std::align_val_t{align});
        CheckBlock("operator new(align_val_t)", p, align, size);
      }
      for (void* p : live) ::operator delete (p, size, std::align_val_t{align});
      for (void*& p : live) {
        p = ::operator new[](size, std::align_val_t{align}, std::nothrow);
        CheckBlock("operator new[](align_val_t, nothrow)", p, align, size);
      }
      for (void* p : live) ::operator delete[](p, std::align_val_t{align});
    }
  }
  for (size_t size : {size_t{0}, size_t{1}, size_t{16}, page - 1, page, page + 1}) {
    for (void*& p : live) CheckBlock("valloc", p = valloc(size), page, size);
    for (void* p : live) free(p);
    for (void*& p : live) CheckBlock("pvalloc", p = pvalloc(size), page, size);
    for (void* p : live) free(p);
  }
}

// `p` must be null with errno == `want` (errno was set to 0 before the call).
void ExpectFailure(const char* what, size_t size, const void* p, int want) {
  int err = errno;
  if (p != nullptr || err != want) Fail(what, 0, size, p, err);
}

void CheckErrno(bool broom) {
  const size_t kHuge[] = {SIZE_MAX, SIZE_MAX - 4096, size_t{PTRDIFF_MAX}, size_t{PTRDIFF_MAX} + 1};
  for (size_t n : kHuge) {
    errno = 0;
    ExpectFailure("malloc", n, malloc(n), ENOMEM);
    errno = 0;
    ExpectFailure("calloc", n, calloc(1, n), ENOMEM);
    errno = 0;
    ExpectFailure("aligned_alloc", n, aligned_alloc(64, n), ENOMEM);
    errno = 0;
    ExpectFailure("memalign", n, memalign(64, n), ENOMEM);
    errno = 0;
    ExpectFailure("valloc", n, valloc(n), ENOMEM);
    errno = 0;
    ExpectFailure("pvalloc", n, pvalloc(n), ENOMEM);
    errno = 0;
    ExpectFailure("realloc(NULL)", n, realloc(nullptr, n), ENOMEM);
    // A failed realloc leaves the old block alone.
    char* old = static_cast<char*>(malloc(32));
    strcpy(old, "still here");
    errno = 0;
    ExpectFailure("realloc", n, realloc(old, n), ENOMEM);
    errno = 0;
    ExpectFailure("reallocarray", n, reallocarray(old, 1, n), ENOMEM);
    if (strcmp(old, "still here") != 0) Fail("realloc kept the block", 0, n, old, 0);
    free(old);
    // posix_memalign returns the error and leaves *memptr alone; Broom also leaves errno alone
    // (glibc sets it to ENOMEM on the way).
    errno = 1234;
    void* keep = reinterpret_cast<void*>(1);
    int rc = posix_memalign(&keep, 64, n);
    if (rc != ENOMEM || (broom && errno != 1234) || keep != reinterpret_cast<void*>(1)) {
      Fail("posix_memalign huge", 64, n, keep, rc);
    }
    bool threw = false;
    try {
      void* p = ::operator new(n);
      ::operator delete(p);
    } catch (const std::bad_alloc&) {
      threw = true;
    }
    if (!threw) Fail("operator new throws bad_alloc", 0, n, nullptr, 0);
    // libstdc++ 12's aligned new rounds the size up to the alignment without an overflow check
    // (SIZE_MAX becomes 0 and succeeds): checked under Broom only, which replaces it.
    if (broom && ::operator new (n, std::align_val_t{64}, std::nothrow) != nullptr) {
      Fail("operator new(align_val_t, nothrow) returns null", 64, n, nullptr, 0);
    }
  }
  errno = 0;
  ExpectFailure("calloc overflow", SIZE_MAX, calloc(SIZE_MAX / 2, 3), ENOMEM);
  void* p = malloc(8);
  errno = 0;
  ExpectFailure("reallocarray overflow", SIZE_MAX, reallocarray(p, SIZE_MAX / 4, 8), ENOMEM);
  free(p);
  for (size_t bad : {size_t{0}, size_t{3}, size_t{4}, size_t{24}}) {
    errno = 1234;
    void* keep = reinterpret_cast<void*>(1);
    int rc = posix_memalign(&keep, bad, 16);
    if (rc != EINVAL || errno != 1234 || keep != reinterpret_cast<void*>(1)) {
      Fail("posix_memalign bad alignment", bad, 16, keep, rc);
    }
  }
  errno = 0;
  ExpectFailure("memalign alignment too large", 16, memalign(SIZE_MAX / 2 + 2, 16), EINVAL);
  // glibc 2.36 (Debian 12) accepts these like memalign; glibc 2.38 and Broom fail with EINVAL.
  if (broom) {
    for (size_t bad : {size_t{0}, size_t{3}, size_t{48}}) {
      errno = 0;
      ExpectFailure("aligned_alloc bad alignment", bad, aligned_alloc(bad, 96), EINVAL);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  bool broom = broom_available() && broom_is_active();
  CheckAlignment();
  CheckErrno(broom);
  if (argc > 1 && strcmp(argv[1], "regions") == 0 && broom) {
    const broom_kind_t kinds[] = {BROOM_TRANSFERABLE, BROOM_ACTOR, BROOM_TEMPORARY};
    const char* names[] = {"transferable", "actor", "temporary"};
    for (int k = 0; k < 3; ++k) {
      broom_region_t* r = broom_region_create(kinds[k], nullptr);
      if (r == nullptr || broom_region_push(r) != 0) {
        Fail("broom_region_create/push", 0, 0, r, errno);
        continue;
      }
      g_mode = names[k];
      // Allocations land in the region: check one, then the whole suite.
      void* probe = malloc(10);
      if (broom_region_of(probe) != r) Fail("malloc lands in the pushed region", 0, 10, probe, 0);
      CheckAlignment();
      CheckErrno(broom);
      broom_region_pop(r);
      broom_region_destroy(r);
    }
    g_mode = "heap";
  }
  printf("conformance: %d failures\n", g_failures);
  return g_failures == 0 ? 0 : 1;
}
