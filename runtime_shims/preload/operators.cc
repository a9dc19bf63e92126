// Copyright Broom authors.
//
// C++ operator new/delete. See operators.h.
#include "runtime_shims/preload/operators.h"

#include <jemalloc/jemalloc.h>

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

BROOM_NOINLINE void* OperatorNewSlow(size_t size) {
  return OperatorNew(size, 0, false, __builtin_return_address(0));
}

BROOM_NOINLINE void SizedDeleteChecked(void* p, size_t size) noexcept {
  // Size 0 (only from operator new(0)) keeps the unsized path, as OperatorDelete does.
  if (BROOM_LIKELY(p != nullptr && size != 0 && !NeedsSlowFree(p))) return sdallocx(p, size, 0);
  OperatorDelete(p, size, 0);
}

namespace {

// Out of line, so that OperatorNewChecked's heap path saves no registers.
BROOM_NOINLINE void* OperatorNewInRegion(size_t size) {
  if (void* p = TryRegionMalloc(size)) return p;
  return OperatorNewSlow(size);  // a tail jump: the return address is still the program's
}

}  // namespace

BROOM_NOINLINE void* OperatorNewChecked(size_t size) {
  if (NothingPushed() && g_je.op_new != nullptr) return g_je.op_new(size);
  return OperatorNewInRegion(size);
}

void* OperatorNew(size_t size, size_t align, bool nothrow, void* site) {
  // An explicit alignment (new(std::align_val_t{16}) included) is honoured for every size.
  if (align == 0) return NewFast(size, nothrow, site);
  return NewSlow(size, align, nothrow, site);
}

void OperatorDelete(void* p, size_t size, size_t align) {
  if (size == 0 && align <= 8) {
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

// The hot forms. Pass-through: new and delete are one jump through g_dispatch, to jemalloc's
// operator new (which runs the new_handler loop itself) and free while no region was ever
// created (see shim.h); so is sized delete, to jemalloc's sized delete, or once regions exist
// to SizedDeleteChecked: null, zero-size and region range tests, then sdallocx. Unoptimized
// builds keep OperatorNew and OperatorDelete: the *Slow/*Checked targets of g_dispatch need the
// tail call.
namespace {

inline void* NewPlain(size_t n, void* site) {
#ifdef __OPTIMIZE__
  (void)site;
  return broom::preload::g_dispatch.op_new.load(std::memory_order_relaxed)(n);
#else
  return OperatorNew(n, 0, false, site);
#endif
}

inline void DeletePlain(void* p) {
#ifdef __OPTIMIZE__
  return broom::preload::g_dispatch.free.load(std::memory_order_relaxed)(p);
#else
  OperatorDelete(p, 0, 0);
#endif
}

inline void DeleteSized(void* p, size_t n) {
#ifdef __OPTIMIZE__
  return broom::preload::g_dispatch.sized_delete.load(std::memory_order_relaxed)(p, n);
#else
  OperatorDelete(p, n, 0);
#endif
}

}  // namespace

BROOM_NEW_EXPORT void* operator new(size_t n) { return NewPlain(n, RA); }
BROOM_NEW_EXPORT void* operator new[](size_t n) { return NewPlain(n, RA); }
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

BROOM_NEW_EXPORT void operator delete(void* p) noexcept { DeletePlain(p); }
BROOM_NEW_EXPORT void operator delete[](void* p) noexcept { DeletePlain(p); }
BROOM_NEW_EXPORT void operator delete(void* p, const NT&) noexcept { OperatorDelete(p, 0, 0); }
BROOM_NEW_EXPORT void operator delete[](void* p, const NT&) noexcept { OperatorDelete(p, 0, 0); }
BROOM_NEW_EXPORT void operator delete(void* p, size_t n) noexcept { DeleteSized(p, n); }
BROOM_NEW_EXPORT void operator delete[](void* p, size_t n) noexcept { DeleteSized(p, n); }
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
