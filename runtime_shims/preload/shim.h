// Copyright Broom authors.
//
// shim.h: the preload's allocation logic, shared by the exported entry points (exports.cc,
// operators.cc), the C API (c_api.cc), the profiler and the unit tests.
//
//   BROOM_PRELOAD_NAME(x)  the exported name of malloc-family function x: `x` in
//                          libbroom_preload.so, `broom_x` in the prefixed testing build
//                          (BROOM_PRELOAD_PREFIX defined), which interposes nothing.
//   g_mode                 which slow-path features are on (stats, profile); read on every call.
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
#include "runtime_shims/preload/config.h"

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
extern uint32_t g_mode;
extern bool g_checks;
extern Config g_config;
// Set once any region was created (the exit report reads region stats only then).
extern std::atomic<bool> g_regions_used;

// Set while Broom itself runs code that may call malloc (reporting, symbolizing): such
// allocations go to the heap unprofiled, never into a pushed region.
extern thread_local bool t_internal BROOM_IE_TLS;

// True when the fast path may be taken: nothing pushed on this thread, no stats/profile.
inline bool FastPath() {
  return BROOM_LIKELY((static_cast<uint32_t>(internal::t_context.depth) | g_mode) == 0);
}

// 16 bytes in front of each malloc-routed region object.
// INVARIANT: offset >= 16, offset == max(16, alignment); raw allocation = object - offset.
struct ObjectHeader {
  uint64_t size;    // bytes requested: what malloc_usable_size reports
  uint32_t tag;     // RegionTag() of the owning region when allocated
  uint32_t offset;  // bytes from the raw region allocation to the object
};
static_assert(sizeof(ObjectHeader) == 16);

inline uint32_t RegionTag(const Region* r) {
  return static_cast<uint32_t>(r->id()) ^ 0xb400f00du;
}
inline ObjectHeader* HeaderOf(const void* p) {
  return reinterpret_cast<ObjectHeader*>(const_cast<char*>(static_cast<const char*>(p)) - 16);
}

// Applies a configuration: sets g_mode/g_checks, enables the profiler. Call before the program's
// threads start (the library constructor does), or in tests with no outstanding allocations.
void Configure(const Config& config);

// ---- slow paths (`align` 0 means the default 16; otherwise a power of two) ------------------
void* Allocate(size_t size, size_t align, bool zero, void* site);
void* AllocateIn(Region* r, size_t size, size_t align);  // region object with header; no errno
void Free(void* p);
void FreeSized(void* p, size_t size, size_t align);
void* Reallocate(void* p, size_t size, void* site);
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

// Fork protection of the preload's own locks (the core and jemalloc protect theirs).
void ForkPrepare();
void ForkParent();
void ForkChild();

}  // namespace broom::preload

#endif  // BROOM_RUNTIME_SHIMS_PRELOAD_SHIM_H_
