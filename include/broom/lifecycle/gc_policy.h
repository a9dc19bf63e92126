// Copyright Broom authors.
//
// gc_policy.h: the Boehm GC memory policy ("gc"), the garbage-collected rival of Broom's regions
// for the same operator code (issue #6).
//
//   RegisterGcPolicy()   initializes Boehm GC (call it from main, before other threads exist)
//                        and registers the policy under "gc" for MakePolicy.
//   GcCollections()      collections so far (GC_get_gc_no); benchmarks check it is above zero.
//   GcHeapBytes()        the collected heap's size (GC_get_heap_size).
//   GcCollectNow()       a full collection now (tests: live data must survive it).
//
// What the policy does: every arena allocates with GC_MALLOC (GC_memalign above 16-byte
// alignment) and deallocation is a no-op, so memory comes back only by collection; collection
// is never disabled. An arena is an uncollectable anchor cell that holds its root object (see
// MemoryPolicy::AttachRoot), because the shim keeps roots in memory the collector does not scan
// (the general heap, CAF mailboxes); DestroyArena frees the anchor, after which the arena's
// objects are garbage. Callback scratch is the same collected heap. Destructors still run (the
// shim destroys roots explicitly); only the memory is the collector's.
//
// Thread-safety: RegisterGcPolicy once, from main, before other threads exist; after that the
// policy may be used from any thread registered with the collector. The first thread to use it
// must be the one that called RegisterGcPolicy or a registered one; other threads register
// themselves on their first callback (CreateScratch) and unregister at thread exit. Boehm GC
// then stops them with signals during collections, as it would in a managed runtime.
//
// Not available under sanitizers (the collector scans memory the sanitizers consider
// uninitialized or poisoned); the build leaves the policy out there.
#ifndef BROOM_LIFECYCLE_GC_POLICY_H_
#define BROOM_LIFECYCLE_GC_POLICY_H_

#include <cstddef>
#include <cstdint>

namespace broom::lifecycle {

void RegisterGcPolicy();
uint64_t GcCollections();
size_t GcHeapBytes();
void GcCollectNow();

}  // namespace broom::lifecycle

#endif  // BROOM_LIFECYCLE_GC_POLICY_H_
