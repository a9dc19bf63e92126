// Copyright Broom authors. Layer 0 (os): recognising pointers to heap memory, for the strict
// self-containment check (broom/check.h, Rule::kHeapPointer).
//
// A conservative scan sees words, not types, so it must tell heap addresses from integers,
// stack, code and unmapped addresses without ever dereferencing the word. How depends on the
// build:
//   jemalloc (BROOM_WITH_JEMALLOC)   StartHeapTracking creates one jemalloc arena whose extent
//                                    hooks (delegating to the default ones) record every range
//                                    the arena maps, in a fixed table that never allocates;
//                                    TrackThisThread binds the calling thread's malloc to that
//                                    arena ("thread.arena") and flushes its thread cache. A word
//                                    is a heap pointer exactly when it lies in a recorded range.
//                                    Only then is jemalloc asked about it (its lookups crash on
//                                    addresses it never mapped): the size comes from
//                                    "experimental.utilization.query".
//   AddressSanitizer, ThreadSanitizer   the sanitizer's own allocator answers
//                                    (__asan_locate_address; under TSan
//                                    __sanitizer_get_ownership, then __tsan_locate_address for
//                                    the size, as it crashes on some non-heap addresses).
//   anything else (UBSan alone, glibc malloc)   nothing is recognised: kNone.
// What is not recognised: heap memory allocated before StartHeapTracking or by a thread that was
// never bound (jemalloc builds), memory a bound thread frees and gets back from its thread cache
// although it came from before binding, and memory not from malloc (mmap, globals, stack).
// Those are never reported; a recognised word is always heap memory.
//
// Thread-safety: thread-safe. LookUpHeap and HeapBoundsNow never allocate and take no lock on
// the path that rejects a word.
#ifndef BROOM_ALLOC_OS_HEAP_TRACK_H_
#define BROOM_ALLOC_OS_HEAP_TRACK_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace broom::internal {

enum class HeapTracker : uint8_t {
  kNone,              // heap pointers cannot be recognised in this build or process
  kJemallocArena,     // the tracked jemalloc arena
  kAddressSanitizer,  // __asan_locate_address
  kThreadSanitizer,   // __sanitizer_get_ownership, __tsan_locate_address
};
const char* HeapTrackerName(HeapTracker tracker);

// Starts recognising heap memory (the first call; later calls return the same answer) and
// binds the calling thread (TrackThisThread). Returns what recognises heap pointers, kNone if
// nothing can: no jemalloc and no sanitizer allocator, jemalloc refusing the arena, or malloc
// not being jemalloc's (checked with one malloc). Cost of the first call: about a millisecond.
HeapTracker StartHeapTracking();
// What StartHeapTracking returned, or kNone before it was called. One relaxed load.
HeapTracker ActiveHeapTracker();

// jemalloc builds, after StartHeapTracking: from now on the calling thread's malloc allocates
// in the tracked arena. Cheap when already done (one thread-local load); no-op in other builds.
// REQUIRES: not called from inside malloc.
void TrackThisThread();

// A cheap filter: a word `w` can be a recognised heap pointer only if w - lo < span.
struct HeapBounds {
  uintptr_t lo = 0;
  uintptr_t span = 0;  // 0: nothing can be (tracking not started, or kNone)
  bool MayHold(uintptr_t w) const { return w - lo < span; }
};
HeapBounds HeapBoundsNow();

// True if `p` is heap memory the tracker recognises (live or freed); then *size is the size of
// the heap block it lies in (the allocator's size class under jemalloc, the requested size under
// the sanitizers), or 0 if that cannot be known (an interior pointer far inside a large jemalloc
// allocation). Never dereferences `p`. About 10 ns for a word outside the bounds filter (the
// caller usually applies HeapBounds first); a recognised word costs a jemalloc query (~100 ns).
bool LookUpHeap(const void* p, size_t* size);

}  // namespace broom::internal

#endif  // BROOM_ALLOC_OS_HEAP_TRACK_H_
