// Copyright Broom authors.
//
// C++ operator new/delete. See operators.h.
#include "runtime_shims/preload/operators.h"

#include <new>

#include "broom/internal/block.h"
#include "runtime_shims/preload/backend.h"
#include "runtime_shims/preload/shim.h"

namespace broom::preload {

namespace {

BROOM_NOINLINE void* NewSlow(size_t size, size_t align, bool nothrow, void* site) {
  for (;;) {
    void* p = Allocate(size, align, false, site);
    if (p != nullptr) return p;
    std::new_handler handler = std::get_new_handler();
    if (handler == nullptr) {
      if (nothrow) return nullptr;
      throw std::bad_alloc();
    }
    if (nothrow) {
      try {
        handler();
      } catch (...) {
        return nullptr;
      }
    } else {
      handler();
    }
  }
}

inline void* NewFast(size_t size, bool nothrow, void* site) {
  if (FastPath()) {
    void* p = g_je.malloc(size);
    if (BROOM_LIKELY(p != nullptr)) return p;
  }
  return NewSlow(size, 0, nothrow, site);
}

inline void DeleteFast(void* p) {
  if (BROOM_LIKELY(!internal::InSpace(p) && g_mode == 0)) {
    g_je.free(p);
    return;
  }
  Free(p);
}

inline void DeleteSizedFast(void* p, size_t size, size_t align) {
  if (BROOM_LIKELY(p != nullptr && !internal::InSpace(p) && g_mode == 0)) {
    JeFreeSized(p, size, align);
    return;
  }
  FreeSized(p, size, align);
}

}  // namespace

void* OperatorNew(size_t size, size_t align, bool nothrow, void* site) {
  if (align <= 16) return NewFast(size, nothrow, site);
  return NewSlow(size, align, nothrow, site);
}

void OperatorDelete(void* p, size_t size, size_t align) {
  if (size == 0 && align <= 16) {
    DeleteFast(p);
  } else if (size == 0) {
    if (p == nullptr) return;
    if (!internal::InSpace(p) && g_mode == 0) {
      JeFreeAligned(p, align);
    } else {
      Free(p);
    }
  } else {
    DeleteSizedFast(p, size, align);
  }
}

}  // namespace broom::preload

#if BROOM_PRELOAD_INTERPOSES

#define BROOM_NEW_EXPORT __attribute__((visibility("default")))
#define RA __builtin_return_address(0)
using broom::preload::OperatorDelete;
using broom::preload::OperatorNew;
using A = std::align_val_t;
using NT = std::nothrow_t;

BROOM_NEW_EXPORT void* operator new(size_t n) { return OperatorNew(n, 0, false, RA); }
BROOM_NEW_EXPORT void* operator new[](size_t n) { return OperatorNew(n, 0, false, RA); }
BROOM_NEW_EXPORT void* operator new(size_t n, const NT&) noexcept {
  return OperatorNew(n, 0, true, RA);
}
BROOM_NEW_EXPORT void* operator new[](size_t n, const NT&) noexcept {
  return OperatorNew(n, 0, true, RA);
}
BROOM_NEW_EXPORT void* operator new(size_t n, A a) {
  return OperatorNew(n, static_cast<size_t>(a), false, RA);
}
BROOM_NEW_EXPORT void* operator new[](size_t n, A a) {
  return OperatorNew(n, static_cast<size_t>(a), false, RA);
}
BROOM_NEW_EXPORT void* operator new(size_t n, A a, const NT&) noexcept {
  return OperatorNew(n, static_cast<size_t>(a), true, RA);
}
BROOM_NEW_EXPORT void* operator new[](size_t n, A a, const NT&) noexcept {
  return OperatorNew(n, static_cast<size_t>(a), true, RA);
}

BROOM_NEW_EXPORT void operator delete(void* p) noexcept { OperatorDelete(p, 0, 0); }
BROOM_NEW_EXPORT void operator delete[](void* p) noexcept { OperatorDelete(p, 0, 0); }
BROOM_NEW_EXPORT void operator delete(void* p, const NT&) noexcept { OperatorDelete(p, 0, 0); }
BROOM_NEW_EXPORT void operator delete[](void* p, const NT&) noexcept { OperatorDelete(p, 0, 0); }
BROOM_NEW_EXPORT void operator delete(void* p, size_t n) noexcept { OperatorDelete(p, n, 0); }
BROOM_NEW_EXPORT void operator delete[](void* p, size_t n) noexcept { OperatorDelete(p, n, 0); }
BROOM_NEW_EXPORT void operator delete(void* p, A a) noexcept {
  OperatorDelete(p, 0, static_cast<size_t>(a));
}
BROOM_NEW_EXPORT void operator delete[](void* p, A a) noexcept {
  OperatorDelete(p, 0, static_cast<size_t>(a));
}
BROOM_NEW_EXPORT void operator delete(void* p, A a, const NT&) noexcept {
  OperatorDelete(p, 0, static_cast<size_t>(a));
}
BROOM_NEW_EXPORT void operator delete[](void* p, A a, const NT&) noexcept {
  OperatorDelete(p, 0, static_cast<size_t>(a));
}
BROOM_NEW_EXPORT void operator delete(void* p, size_t n, A a) noexcept {
  OperatorDelete(p, n, static_cast<size_t>(a));
}
BROOM_NEW_EXPORT void operator delete[](void* p, size_t n, A a) noexcept {
  OperatorDelete(p, n, static_cast<size_t>(a));
}

#endif  // BROOM_PRELOAD_INTERPOSES
