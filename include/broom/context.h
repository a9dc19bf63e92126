// Copyright Broom authors.
//
// context.h: the allocation context, a per-thread stack of open regions (Broom's OpenAlloc,
// ECOOP's `open`), and the typed helpers that allocate into its top.
//
//   ContextScope        RAII: pushes a region on this thread's stack, pops it on exit.
//   CurrentRegion()     the top of the stack, or null (then helpers use the heap, jemalloc).
//   CurrentResource()   std::pmr::memory_resource of the top region (or the heap), captured
//                       when called: a container built with it stays in that region.
//   ContextResource()   a resource that allocates in whatever region is on top at each call
//                       and frees into whichever region owns the pointer.
//   HeapResource()      the general heap (jemalloc; glibc malloc in sanitizer builds).
//   FallbackResourceScope  RAII: the resource CurrentResource()/ContextResource() use when no
//                       region is open (default HeapResource()); lets an engine run the same
//                       code over another allocator (e.g. a garbage-collected one).
//   Allocator<T>        STL allocator over a memory_resource, defaulting to CurrentResource();
//                       works with std::vector, std::unordered_map, absl::flat_hash_map.
//   New/NewArray/CopyString/Delete   typed helpers; see each.
//
// Thread-safety: the stack is per thread; nothing here is shared between threads. Engines that
// move actors between threads set the context per callback, never per thread.
#ifndef BROOM_CONTEXT_H_
#define BROOM_CONTEXT_H_

#include <cstddef>
#include <cstring>
#include <memory>
#include <memory_resource>
#include <new>
#include <string_view>
#include <type_traits>
#include <utility>

#include "broom/region.h"

namespace broom {

namespace internal {

inline constexpr int kMaxContextDepth = 64;

struct ContextStack {
  int depth;
  Region* regions[kMaxContextDepth];
};
extern thread_local constinit ContextStack t_context;
// The resource used when no region is open; null means HeapResource().
extern thread_local constinit std::pmr::memory_resource* t_fallback_resource;

void PushContext(Region* r);  // fatal on overflow
void PopContext(Region* r);   // fatal if r is not the top

// A node placed before objects with non-trivial destructors in actor regions, so Delete can
// run and unlink it. Doubly linked so unlinking is O(1).
struct ActorCleanupNode {
  ActorCleanupNode* prev;
  ActorCleanupNode* next;
  void (*destroy)(void*);
  size_t count;  // objects in the array that follows
};
static_assert(sizeof(ActorCleanupNode) % alignof(std::max_align_t) == 0);

[[noreturn]] void ThrowBadAlloc();

template <class T>
void DestroyArray(void* p) {
  // The element count is stored just before the array for arrays of non-trivial T.
  size_t n = *reinterpret_cast<size_t*>(static_cast<char*>(p) - sizeof(size_t));
  T* a = static_cast<T*>(p);
  for (size_t i = n; i > 0; --i) a[i - 1].~T();
}

template <class T>
void DestroyOne(void* p) {
  static_cast<T*>(p)->~T();
}

}  // namespace internal

// Pushes `region` on this thread's allocation context for the scope's lifetime.
// Ownership: borrows the region; it must stay alive and not be freed or transferred while the
// scope is open (both are fatal). Nesting up to 64 deep (fatal beyond). Scopes must end in LIFO
// order (C++ scoping guarantees it). Not movable.
class ContextScope {
 public:
  explicit ContextScope(Region& region) : region_(&region) { internal::PushContext(region_); }
  ~ContextScope() { internal::PopContext(region_); }
  ContextScope(const ContextScope&) = delete;
  ContextScope& operator=(const ContextScope&) = delete;

 private:
  Region* region_;
};

inline Region* CurrentRegion() {
  int d = internal::t_context.depth;
  return d > 0 ? internal::t_context.regions[d - 1] : nullptr;
}

std::pmr::memory_resource* HeapResource();
std::pmr::memory_resource* ContextResource();
inline std::pmr::memory_resource* CurrentResource() {
  Region* r = CurrentRegion();
  if (r != nullptr) return r->resource();
  std::pmr::memory_resource* f = internal::t_fallback_resource;
  return f != nullptr ? f : HeapResource();
}

// Sets this thread's fallback resource (used by CurrentResource() and ContextResource() when no
// region is open) for the scope's lifetime, restoring the previous one on exit. Regions opened
// inside still take precedence. ContextResource() frees a pointer that no region owns into the
// fallback current at the free, so free in the scope that allocated. New<T>/NewArray<T> with no
// region open still use plain `new`. Borrowed: `resource` must outlive the scope. Not movable;
// scopes end in LIFO order. Thread-safety: affects the calling thread only.
class FallbackResourceScope {
 public:
  explicit FallbackResourceScope(std::pmr::memory_resource* resource)
      : saved_(internal::t_fallback_resource) {
    internal::t_fallback_resource = resource;
  }
  ~FallbackResourceScope() { internal::t_fallback_resource = saved_; }
  FallbackResourceScope(const FallbackResourceScope&) = delete;
  FallbackResourceScope& operator=(const FallbackResourceScope&) = delete;

 private:
  std::pmr::memory_resource* saved_;
};

// STL allocator over a memory_resource. Default-constructed, it binds to CurrentResource() at
// that moment. Copying a container (select_on_container_copy_construction) binds the copy to
// the context current at the copy, so a container copied while a region is open lands there.
// allocate throws std::bad_alloc on failure or overflow of n * sizeof(T).
template <class T>
class Allocator {
 public:
  using value_type = T;
  using propagate_on_container_copy_assignment = std::false_type;
  using propagate_on_container_move_assignment = std::false_type;
  using propagate_on_container_swap = std::false_type;
  using is_always_equal = std::false_type;

  Allocator() noexcept : resource_(CurrentResource()) {}
  explicit Allocator(std::pmr::memory_resource* resource) noexcept : resource_(resource) {}
  explicit Allocator(Region& region) noexcept : resource_(region.resource()) {}
  template <class U>
  Allocator(const Allocator<U>& other) noexcept  // NOLINT(google-explicit-constructor): rebind
      : resource_(other.resource()) {}

  T* allocate(size_t n) {
    if (BROOM_UNLIKELY(n > SIZE_MAX / sizeof(T))) internal::ThrowBadAlloc();
    return static_cast<T*>(resource_->allocate(n * sizeof(T), alignof(T)));
  }
  void deallocate(T* p, size_t n) noexcept { resource_->deallocate(p, n * sizeof(T), alignof(T)); }
  Allocator select_on_container_copy_construction() const { return Allocator(); }
  std::pmr::memory_resource* resource() const { return resource_; }

  template <class U>
  bool operator==(const Allocator<U>& other) const noexcept {
    return resource_ == other.resource() || resource_->is_equal(*other.resource());
  }

 private:
  std::pmr::memory_resource* resource_;
};

// STL allocator bound to one region whose allocator type is known statically: R is BumpRegion
// or ReapRegion (ActorAllocator<T> below). allocate and deallocate call that region's inline
// fast paths directly (no virtual call, no kind() switch), which matters for node-based
// containers that allocate and free per element. Otherwise as Allocator: throws
// std::bad_alloc on failure or overflow; copies of a container stay in the same region
// (unlike Allocator, copying does not rebind to the current context). Converts to
// Allocator<U> for code that takes the generic one.
// Thread-safety: as the region (owner only).
template <class T, class R>
class RegionAllocator {
 public:
  using value_type = T;
  using propagate_on_container_copy_assignment = std::true_type;
  using propagate_on_container_move_assignment = std::true_type;
  using propagate_on_container_swap = std::true_type;
  using is_always_equal = std::false_type;
  template <class U>
  struct rebind {
    using other = RegionAllocator<U, R>;
  };

  explicit RegionAllocator(R& region) noexcept : region_(&region) {}
  template <class U>
  // NOLINTNEXTLINE(google-explicit-constructor): a rebind, implicit as the standard requires
  RegionAllocator(const RegionAllocator<U, R>& other) noexcept : region_(&other.region()) {}

  T* allocate(size_t n) {
    if (BROOM_UNLIKELY(n > SIZE_MAX / sizeof(T))) internal::ThrowBadAlloc();
    void* p = region_->Allocate(n * sizeof(T), alignof(T));
    if (BROOM_UNLIKELY(p == nullptr)) internal::ThrowBadAlloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t n) noexcept { region_->Deallocate(p, n * sizeof(T), alignof(T)); }
  R& region() const { return *region_; }
  template <class U>
  operator Allocator<U>() const noexcept {  // NOLINT(google-explicit-constructor): as a rebind
    return Allocator<U>(region_->resource());
  }

  template <class U>
  bool operator==(const RegionAllocator<U, R>& other) const noexcept {
    return region_ == &other.region();
  }

 private:
  R* region_;
};

// The allocator for an operator's state: node containers in an actor region.
template <class T>
using ActorAllocator = RegionAllocator<T, ReapRegion>;

namespace internal {
// Constructs T at p. Region-aware types (whose allocator_type accepts a broom::Allocator or a
// std::pmr::polymorphic_allocator) get uses-allocator construction with `region`, so a
// std::pmr::vector or a container using broom::Allocator made by NewIn lives wholly in it.
template <class T, class... Args>
T* ConstructIn(void* p, Region& region, Args&&... args) {
  if constexpr (std::uses_allocator_v<T, std::pmr::polymorphic_allocator<std::byte>>) {
    return std::uninitialized_construct_using_allocator(
        static_cast<T*>(p), std::pmr::polymorphic_allocator<std::byte>(region.resource()),
        std::forward<Args>(args)...);
  } else if constexpr (std::uses_allocator_v<T, Allocator<std::byte>>) {
    return std::uninitialized_construct_using_allocator(
        static_cast<T*>(p), Allocator<std::byte>(region), std::forward<Args>(args)...);
  } else {
    return ::new (p) T(std::forward<Args>(args)...);
  }
}
}  // namespace internal

// Constructs a T in `region` (region-aware types get `region` as their allocator, see
// internal::ConstructIn). Non-trivially-destructible T get their destructor registered:
// in transferable and temporary regions it runs at bulk free (reverse order); in actor regions
// it runs at Delete or, for objects never deleted, when the region is destroyed.
// Throws std::bad_alloc if the region cannot allocate (reason in region.last_error()).
// The BumpRegion and ReapRegion overloads call that allocator's fast path directly; the
// Region overload dispatches on kind().
template <class T, class... Args>
T* NewIn(BumpRegion& region, Args&&... args) {
  void* p = region.Allocate(sizeof(T), alignof(T));
  if (BROOM_UNLIKELY(p == nullptr)) internal::ThrowBadAlloc();
  T* obj = internal::ConstructIn<T>(p, region, std::forward<Args>(args)...);
  if constexpr (!std::is_trivially_destructible_v<T>) {
    if (BROOM_UNLIKELY(!region.AddCleanup(&internal::DestroyOne<T>, obj))) {
      obj->~T();
      internal::ThrowBadAlloc();
    }
  }
  return obj;
}

template <class T, class... Args>
T* NewIn(ReapRegion& region, Args&&... args) {
  if constexpr (std::is_trivially_destructible_v<T>) {
    void* p = region.Allocate(sizeof(T), alignof(T));
    if (BROOM_UNLIKELY(p == nullptr)) internal::ThrowBadAlloc();
    return internal::ConstructIn<T>(p, region, std::forward<Args>(args)...);
  } else {
    void* p = region.AllocateWithCleanup(sizeof(T), alignof(T), &internal::DestroyOne<T>, 1);
    if (BROOM_UNLIKELY(p == nullptr)) internal::ThrowBadAlloc();
    try {
      return internal::ConstructIn<T>(p, region, std::forward<Args>(args)...);
    } catch (...) {
      region.FreeWithCleanup(p, alignof(T), /*run_destructor=*/false);
      throw;
    }
  }
}

template <class T, class... Args>
T* NewIn(Region& region, Args&&... args) {
  if (region.kind() == RegionKind::kActor) {
    return NewIn<T>(*static_cast<ReapRegion*>(&region), std::forward<Args>(args)...);
  }
  return NewIn<T>(*static_cast<BumpRegion*>(&region), std::forward<Args>(args)...);
}

// Constructs a T in the current region, or on the heap (plain `new`) when none is open.
template <class T, class... Args>
T* New(Args&&... args) {
  Region* r = CurrentRegion();
  if (r == nullptr) return new T(std::forward<Args>(args)...);
  return NewIn<T>(*r, std::forward<Args>(args)...);
}

// n value-initialized Ts in `region`; throws std::bad_alloc if n * sizeof(T) overflows or the
// region cannot allocate. n == 0 returns a non-null pointer that must not be dereferenced.
template <class T>
T* NewArrayIn(Region& region, size_t n) {
  if (BROOM_UNLIKELY(n > (SIZE_MAX - 64) / sizeof(T))) {
    internal::ThrowBadAlloc();
  }
  if constexpr (std::is_trivially_destructible_v<T>) {
    void* p = region.Allocate(n * sizeof(T), alignof(T));
    if (BROOM_UNLIKELY(p == nullptr)) internal::ThrowBadAlloc();
    T* a = static_cast<T*>(p);
    for (size_t i = 0; i < n; ++i) ::new (a + i) T();
    return a;
  } else {
    static_assert(std::is_nothrow_default_constructible_v<T>,
                  "NewArray of non-trivially-destructible T requires a noexcept constructor");
    T* a;
    if (region.kind() == RegionKind::kActor) {
      a = static_cast<T*>(static_cast<ReapRegion&>(region).AllocateWithCleanup(
          n * sizeof(T), alignof(T), &internal::DestroyArray<T>, n));
      if (BROOM_UNLIKELY(a == nullptr)) internal::ThrowBadAlloc();
    } else {
      // Count stored in front of the array for DestroyArray.
      constexpr size_t kFront = alignof(T) > sizeof(size_t) ? alignof(T) : sizeof(size_t);
      char* raw = static_cast<char*>(
          region.Allocate(kFront + n * sizeof(T), alignof(T) > 8 ? alignof(T) : 8));
      if (BROOM_UNLIKELY(raw == nullptr)) internal::ThrowBadAlloc();
      a = reinterpret_cast<T*>(raw + kFront);
      if (BROOM_UNLIKELY(!region.AddCleanup(&internal::DestroyArray<T>, a))) {
        internal::ThrowBadAlloc();
      }
    }
    *reinterpret_cast<size_t*>(reinterpret_cast<char*>(a) - sizeof(size_t)) = n;
    for (size_t i = 0; i < n; ++i) ::new (a + i) T();
    return a;
  }
}

// NewArrayIn in the current region; with no region open, on the heap (free with DeleteArray).
template <class T>
T* NewArray(size_t n) {
  Region* r = CurrentRegion();
  if (r == nullptr) {
    if (n > SIZE_MAX / sizeof(T)) internal::ThrowBadAlloc();
    return new T[n]();
  }
  return NewArrayIn<T>(*r, n);
}

// Copies `s` into `region` with a terminating NUL; returns a view of the copy (data() is
// NUL-terminated). Throws std::bad_alloc on failure.
template <class R>  // Region, BumpRegion or ReapRegion
std::string_view CopyStringIn(R& region, std::string_view s) {
  if (BROOM_UNLIKELY(s.size() == SIZE_MAX)) internal::ThrowBadAlloc();
  char* p = static_cast<char*>(region.Allocate(s.size() + 1, 1));
  if (BROOM_UNLIKELY(p == nullptr)) internal::ThrowBadAlloc();
  if (!s.empty()) std::memcpy(p, s.data(), s.size());
  p[s.size()] = '\0';
  return std::string_view(p, s.size());
}
// CopyStringIn into the current region. REQUIRES: a region is open (fatal otherwise: a heap
// copy would have no owner).
std::string_view CopyString(std::string_view s);

namespace internal {
// Delete/DeleteArray for a region pointer: actor regions free (running the registered
// destroy function, which knows whether it is one object or an array); other kinds do nothing.
template <class T>
void DeleteInRegion(Region& r, T* p) {
  if (r.kind() != RegionKind::kActor) return;
  auto& reap = static_cast<ReapRegion&>(r);
  if constexpr (std::is_trivially_destructible_v<T>) {
    reap.Free(p);
  } else {
    reap.FreeWithCleanup(p, alignof(T), /*run_destructor=*/true);
  }
}
}  // namespace internal

// Ends an object made by New<T>/NewIn<T>. Heap objects: `delete p`. Actor regions: runs the
// destructor and frees the memory for reuse. Transferable and temporary regions: does nothing;
// the destructor runs and memory is freed in bulk with the region. Null is ignored.
template <class T>
void Delete(T* p) {
  if (p == nullptr) return;
  if (Region* r = RegionOf(p)) {
    internal::DeleteInRegion(*r, p);
  } else {
    delete p;
  }
}

// Ends an array made by NewArray<T>(n); same rules as Delete.
template <class T>
void DeleteArray(T* p) {
  if (p == nullptr) return;
  if (Region* r = RegionOf(p)) {
    internal::DeleteInRegion(*r, p);
  } else {
    delete[] p;
  }
}

}  // namespace broom

#endif  // BROOM_CONTEXT_H_
