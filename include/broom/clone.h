// Copyright Broom authors.
//
// clone.h: copying an object graph into another region (the cure for data that must outlive
// its region, and for keeping transferable regions self-contained).
//
//   Clone(src, target)  returns a copy of `src` allocated in `target`. Chosen in this order:
//     1. a customization found by argument-dependent lookup:
//          T* BroomClone(const T& src, broom::Region& target);
//        (write it next to T; clone each member that owns memory, e.g. with Clone or
//        CopyStringIn, and construct the result with NewIn<T>(target, ...)).
//     2. containers whose allocator is broom::Allocator or std::pmr::polymorphic_allocator:
//        an allocator-extended copy into `target` (nested elements that use the same kind of
//        allocator land there too).
//     3. trivially copyable T: a byte copy.
//   Any other type is a compile-time error that asks for a BroomClone overload: a plain copy
//   constructor could leave members on the heap or pointing into the source region.
//
// Thread-safety: reads `src` and allocates in `target`; the caller must own `target` and keep
// `src` stable for the duration. Throws std::bad_alloc if `target` cannot allocate.
#ifndef BROOM_CLONE_H_
#define BROOM_CLONE_H_

#include <memory_resource>
#include <type_traits>

#include "broom/context.h"
#include "broom/region.h"

namespace broom {

namespace internal {

template <class T, class = void>
struct HasAdlClone : std::false_type {};
template <class T>
struct HasAdlClone<
    T, std::void_t<decltype(BroomClone(std::declval<const T&>(), std::declval<Region&>()))>>
    : std::true_type {};

template <class A>
struct IsRegionAllocator : std::false_type {};
template <class U>
struct IsRegionAllocator<Allocator<U>> : std::true_type {};
template <class U>
struct IsRegionAllocator<std::pmr::polymorphic_allocator<U>> : std::true_type {};

template <class T, class = void>
struct HasRegionAllocator : std::false_type {};
template <class T>
struct HasRegionAllocator<T, std::void_t<typename T::allocator_type>>
    : IsRegionAllocator<typename T::allocator_type> {};

}  // namespace internal

template <class T>
T* Clone(const T& src, Region& target) {
  ContextScope scope(target);
  if constexpr (internal::HasAdlClone<T>::value) {
    return BroomClone(src, target);
  } else if constexpr (internal::HasRegionAllocator<T>::value) {
    return NewIn<T>(target, src);  // uses-allocator construction puts it in target
  } else if constexpr (std::is_trivially_copyable_v<T>) {
    return NewIn<T>(target, src);
  } else {
    static_assert(internal::HasAdlClone<T>::value,
                  "broom::Clone: T needs `T* BroomClone(const T&, broom::Region&)` (found by "
                  "ADL), a region-aware allocator_type, or to be trivially copyable");
    return nullptr;
  }
}

}  // namespace broom

#endif  // BROOM_CLONE_H_
