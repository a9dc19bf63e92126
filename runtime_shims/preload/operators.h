// Copyright Broom authors.
//
// operators.h: the logic behind the replaced C++ operator new/delete family. The interposing
// build (libbroom_preload.so) defines all of ::operator new/delete (plain, array, nothrow,
// sized, aligned) on top of these; the prefixed testing build defines none and tests these.
//
// New semantics are the standard's: on failure the new_handler is called in a loop; with no
// handler, std::bad_alloc is thrown (plain forms) or null returned (nothrow forms). Size 0
// returns a unique pointer. Delete of a region pointer follows free(): a no-op in transferable
// and temporary regions, a per-object free in actor regions.
//
// Thread-safety: as malloc.
#ifndef BROOM_RUNTIME_SHIMS_PRELOAD_OPERATORS_H_
#define BROOM_RUNTIME_SHIMS_PRELOAD_OPERATORS_H_

#include <cstddef>

namespace broom::preload {

// `align` 0 is the plain operator new (jemalloc's alignment: 8 for sizes under 16, else 16);
// any other power of two is honoured for every size, 0 included.
void* OperatorNew(size_t size, size_t align, bool nothrow, void* site);
// `size` 0 means unknown (unsized delete).
void OperatorDelete(void* p, size_t size, size_t align);

}  // namespace broom::preload

#endif  // BROOM_RUNTIME_SHIMS_PRELOAD_OPERATORS_H_
