// Copyright Broom authors.
//
// shim.h: the preload's allocation logic, shared by the exported entry points (exports.cc,
// operators.cc), the C API (c_api.cc), the profiler and the unit tests.
//
//   BROOM_PRELOAD_NAME(x)  the exported name of malloc-family function x: `x` in
//                          libbroom_preload.so, `broom_x` in the prefixed testing build
//                          (BROOM_PRELOAD_PREFIX defined), which interposes nothing.
//   g_mode                 which slow-path features are on (stats, profile). Never read by the
//                          fast paths: PublishFastPaths() folds it into the two below.
//   g_dispatch             where the exported malloc/free/new/delete jump: jemalloc's own entries
//                          until the first region, then the *Checked entries; *Slow with a mode.
//   g_slow_free            the address range whose frees take the slow path: the region space,
//                          or every address while a mode is on or before PublishFastPaths().
//   ObjectHeader           the 16 bytes in front of every malloc-routed region object.
//   Allocate/Free/...      the slow paths. The exported functions inline the fast path (heap,
//                          nothing pushed, no stats/profile) and call these otherwise.
//
// Where an allocation goes: to the region on top of the calling thread's allocation context
// (broom::CurrentRegion(), pushed with broom_region_push) if there is one and the thread is not
// inside Broom itself (t_internal), else to jemalloc.
//
// Thread-safety: every function here is thread-safe in the sense of malloc: calls on different
// pointers may run concurrently; region rules are those of broom/c/broom.h.
#ifndef BROOM_RUNTIME_SHIMS_PRELOAD_SHIM_H_
#define BROOM_RUNTIME_SHIMS_PRELOAD_SHIM_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "broom/context.h"
#include "broom/region.h"
#include "runtime_shims/preload/backend.h"
#include "runtime_shims/preload/config.h"
#include "runtime_shims/preload/spin_lock.h"

#define BROOM_PRELOAD_CONCAT2(a, b) a##b
#define BROOM_PRELOAD_CONCAT(a, b) BROOM_PRELOAD_CONCAT2(a, b)
#ifdef BROOM_PRELOAD_PREFIX
#define BROOM_PRELOAD_NAME(x) BROOM_PRELOAD_CONCAT(BROOM_PRELOAD_PREFIX, x)
#define BROOM_PRELOAD_INTERPOSES 0
#else
#define BROOM_PRELOAD_NAME(x) x
#define BROOM_PRELOAD_INTERPOSES 1
#endif
#define BROOM_PRELOAD_EXPORT extern "C" __attribute__((visibility("default")))
#define BROOM_IE_TLS __attribute__((tls_model("initial-exec")))

namespace broom::preload {

inline constexpr uint32_t kModeStats = 1;
inline constexpr uint32_t kModeProfile = 2;
// Non-zero sends every call through the slow paths. Written by Configure() only.
extern uint32_t g_mode BROOM_PRELOAD_HIDDEN;
extern bool g_checks;
extern Config g_config;
// Set once any region was created (the exit report reads region stats only then).
extern std::atomic<bool> g_regions_used;

// Set while Broom itself runs code that may call malloc (reporting, symbolizing): such
// allocations go to the heap unprofiled, never into a pushed region.
extern thread_local constinit bool t_internal BROOM_IE_TLS;

// True when the fast path may be taken: nothing pushed on this thread, no stats/profile.
inline bool FastPath() {
  return BROOM_LIKELY((static_cast<uint32_t>(internal::t_context.depth) | g_mode) == 0);
}

// True when nothing is pushed on this thread: one TLS load (its offset comes from the GOT).
inline bool NothingPushed() { return BROOM_LIKELY(internal::t_context.depth == 0); }

// Targets of the exported malloc, calloc, operator new, free and operator delete. Three states,
// set by PublishFastPaths() and UseCheckedEntries():
//   no region created yet, no mode  malloc/op_new/free are jemalloc's own: the exported
//                                   function is a single jump (no region memory can exist and
//                                   nothing can be pushed); with direct binding (bind.h) the
//                                   program's PLT slots skip even that jump
//   regions exist, no mode          *Checked: test the thread's depth or the pointer's range,
//                                   then jump to jemalloc
//   a mode (stats, profile) on      the slow paths (MallocSlow, ..., FreeSlow); also the state
//                                   before the first PublishFastPaths()
// calloc is jemalloc's or CallocSlow; the exported calloc checks the depth itself.
// The *Slow/*Checked entries read the program's call site as their own return address: correct
// because the exported functions reach them by tail jumps (optimized builds).
// Thread-safety: entries are atomics (relaxed); UseCheckedEntries() may run concurrently with
// any call. A thread that creates a region sees the checked entries from then on (program
// order); another thread can hold that region's memory only after synchronizing with it.
struct Dispatch {
  std::atomic<void* (*)(size_t)> malloc;
  std::atomic<void* (*)(size_t, size_t)> calloc;
  std::atomic<void* (*)(size_t)> op_new;
  std::atomic<void (*)(void*) noexcept> free;
  std::atomic<void (*)(void*, size_t) noexcept> sized_delete;  // jemalloc's or SizedDeleteChecked
};
extern Dispatch g_dispatch BROOM_PRELOAD_HIDDEN;

// Frees of addresses in [lo, lo + len) take the slow path (Free/FreeSized); all others go straight
// to jemalloc. lo/len are the region space while g_mode == 0 (empty before the first region
// makes the space), else 0/UINTPTR_MAX (everything); also everything until PublishFastPaths()
// first runs.
// INVARIANT: [g_space.base, g_space.end) is inside [lo, lo + len) whenever a region may exist.
struct SlowFreeRange {
  uintptr_t lo;
  uintptr_t len;
};
extern SlowFreeRange g_slow_free BROOM_PRELOAD_HIDDEN;

// True if free(p) must take the slow path. Two loads, a subtract and a compare. Null is outside
// the region space, so with no mode on jemalloc's free receives it, as under plain jemalloc.
inline bool NeedsSlowFree(const void* p) {
  return BROOM_UNLIKELY(reinterpret_cast<uintptr_t>(p) - g_slow_free.lo < g_slow_free.len);
}

// Recomputes g_dispatch and g_slow_free from g_mode, g_je, the region space and whether a region
// may exist. Called by Configure(). REQUIRES: no other thread allocates concurrently (the two
// words of g_slow_free are stored separately).
void PublishFastPaths();
// Called before the first region is created (broom_region_create): makes the region space,
// switches g_dispatch from jemalloc's entries to the *Checked ones, narrows g_slow_free to the
// space and restores the PLT slots BindDirect() rewrote.
// Returns false, from then on, if a slot could not be restored (UnbindDirect()): then no region
// may be created. Idempotent, thread-safe (concurrent first callers wait until both are done;
// fork() waits for it too), one atomic load after the first call.
bool UseCheckedEntries();

// 16 bytes in front of each malloc-routed region object.
// INVARIANT: offset >= 16, offset == max(16, alignment); raw allocation = object - offset.
struct ObjectHeader {
  uint64_t size;    // bytes requested: what malloc_usable_size reports
  uint32_t tag;     // RegionTag() of the owning region when allocated
  uint32_t offset;  // bytes from the raw region allocation to the object
};
static_assert(sizeof(ObjectHeader) == 16);

inline uint32_t RegionTag(const Region* r) { return static_cast<uint32_t>(r->id()) ^ 0xb400f00du; }
inline ObjectHeader* HeaderOf(const void* p) {
  return reinterpret_cast<ObjectHeader*>(const_cast<char*>(static_cast<const char*>(p)) - 16);
}

// Writes the header of a region object at `raw + offset` (offset = max(16, alignment)) and
// returns the object.
inline void* InitObject(char* raw, const Region* r, size_t size, size_t offset) {
  char* p = raw + offset;
  ObjectHeader* h = HeaderOf(p);
  h->size = size;
  h->tag = RegionTag(r);
  h->offset = static_cast<uint32_t>(offset);
  return p;
}

// Largest object AllocateIn accepts (the header and alignment are added without overflow).
inline constexpr size_t kMaxRegionObject = SIZE_MAX >> 2;

// The region fast path of the checked entries (MallocChecked, OperatorNewChecked; no mode on):
// bump-allocates `size` bytes and the object's header in the region on top of this thread's
// stack (its slow path, a new block, included). Null when nothing is pushed, the thread is
// inside Broom, the size is absurd or the region cannot allocate (budget, memory); then
// Allocate() decides and reports the failure.
inline void* TryRegionMalloc(size_t size) {
  Region* r = CurrentRegion();
  if (r == nullptr || t_internal || size > kMaxRegionObject) return nullptr;
  auto* raw = static_cast<char*>(r->Allocate(size + 16));
  return BROOM_LIKELY(raw != nullptr) ? InitObject(raw, r, size, 16) : nullptr;
}

// Applies a configuration: sets g_mode/g_checks, enables the profiler, creates the region space
// if needed and publishes the fast paths. Call before the program's threads start (the library
// constructor does), or in tests with no outstanding allocations.
void Configure(const Config& config);

// ---- slow paths (`align` 0 means malloc's alignment: 8 under 16 bytes on the heap, 16 in a
// region; otherwise a power of two, honoured for every size) ---------------------------------
void* Allocate(size_t size, size_t align, bool zero, void* site);
void* AllocateIn(Region* r, size_t size, size_t align);  // region object with header; no errno
void Free(void* p);
void FreeSized(void* p, size_t size, size_t align);
void* Reallocate(void* p, size_t size, void* site);
// g_dispatch targets while a mode is on (and before the first PublishFastPaths()). Each takes
// its profiler site from __builtin_return_address(0): only reach them by a tail call.
void* MallocSlow(size_t size);
void* CallocSlow(size_t n, size_t size);
void* OperatorNewSlow(size_t size);  // in operators.cc
void FreeSlow(void* p) noexcept;
// g_dispatch targets while regions exist and no mode is on: the fast-path checks, then jemalloc.
void* MallocChecked(size_t size);
void* OperatorNewChecked(size_t size);  // in operators.cc
void FreeChecked(void* p) noexcept;
// Also the entry while a mode is on (g_slow_free then sends every pointer to the slow path).
void SizedDeleteChecked(void* p, size_t size) noexcept;  // in operators.cc
size_t UsableSize(const void* p);
// Returns 1 for live region memory, 0 for heap, -1 (after a diagnostic) for a stale pointer.
int CheckPointer(const void* p, const char* op, bool fatal);

// Prints "broom: warning: <message>" on stderr (a WarnFn for ParseConf).
void WarnToStderr(void* ctx, const char* message);

// Exit-time reporting (stats:1, profile:FILE). Idempotent; only the first call reports.
void ReportAtExit();

// Small dense per-thread number (1, 2, ...), for ownership checks and the profiler.
uint32_t ThreadIndex();

// Stats (counted only with stats:1).
void CountRegionMalloc(RegionKind kind, size_t size);
void CountHeapMalloc(size_t usable);
void CountHeapFree(size_t usable);
struct HeapCounters {
  uint64_t mallocs, frees;
  uint64_t region_mallocs[kNumRegionKinds];
  int64_t live_bytes, peak_bytes;
  uint64_t bytes;
};
HeapCounters ReadCounters();

// The preload's own locks, held across fork() by fork.cc (the core and jemalloc hold theirs).
SpinLock& SwitchLock();
SpinLock& CountersLock();

}  // namespace broom::preload

#endif  // BROOM_RUNTIME_SHIMS_PRELOAD_SHIM_H_
