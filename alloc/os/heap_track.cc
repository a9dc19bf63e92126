// Copyright Broom authors.
//
// Heap recognition (heap_track.h): the tracked jemalloc arena, or the sanitizer's allocator.
#include "alloc/os/heap_track.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "alloc/os/mutex.h"

// The sanitizers, as the compiler says (the os layer does not include broom/internal/base.h).
#if defined(__SANITIZE_ADDRESS__)
#define BROOM_TRACK_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BROOM_TRACK_ASAN 1
#endif
#endif
#ifndef BROOM_TRACK_ASAN
#define BROOM_TRACK_ASAN 0
#endif
#if defined(__SANITIZE_THREAD__)
#define BROOM_TRACK_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define BROOM_TRACK_TSAN 1
#endif
#endif
#ifndef BROOM_TRACK_TSAN
#define BROOM_TRACK_TSAN 0
#endif

#if BROOM_TRACK_ASAN
#include <sanitizer/asan_interface.h>
#elif BROOM_TRACK_TSAN
// GCC ships no <sanitizer/allocator_interface.h>; libtsan has both.
extern "C" int __sanitizer_get_ownership(const volatile void* p);
extern "C" const char* __tsan_locate_address(uintptr_t addr, char* name, uintptr_t name_size,
                                             uintptr_t* region_address, uintptr_t* region_size);
#elif BROOM_WITH_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

namespace broom::internal {

namespace {

std::atomic<HeapTracker> g_tracker{HeapTracker::kNone};

// Written to stderr without malloc (heap tracking may start while jemalloc is being set up).
[[maybe_unused]] void Warn(const char* why) {
  char buf[256];
  int n = std::snprintf(buf, sizeof(buf),
                        "broom: warning: heap pointers cannot be recognised (%s): the strict "
                        "self-containment check (BROOM_CHECK_HEAP) reports none\n",
                        why);
  if (n <= 0) return;
  ssize_t ignored =
      write(STDERR_FILENO, buf,
            static_cast<size_t>(n) < sizeof(buf) ? static_cast<size_t>(n) : sizeof(buf) - 1);
  (void)ignored;
}

#if !BROOM_TRACK_ASAN && !BROOM_TRACK_TSAN && BROOM_WITH_JEMALLOC

// Every range the tracked arena's extent hooks obtained, in the order they were mapped. Entries
// are written once, under g_mu, before g_count publishes them; ranges are never unmapped (the
// hooks refuse deallocation, so jemalloc retains and reuses them), so an entry stays true.
struct Range {
  std::atomic<uintptr_t> begin{0};
  std::atomic<uintptr_t> end{0};
  // False once jemalloc tried to deallocate part of the range: its boundary pages may never
  // have been registered in jemalloc's radix tree, so jemalloc is not asked about it.
  std::atomic<bool> queryable{true};
};
constexpr int kMaxRanges = 4096;  // with retain (the default) jemalloc maps geometrically more
Range g_ranges[kMaxRanges];
std::atomic<int> g_count{0};
std::atomic<uintptr_t> g_lo{UINTPTR_MAX};
std::atomic<uintptr_t> g_hi{0};
std::atomic<bool> g_full_warned{false};
Mutex g_mu;  // serializes writers; readers take no lock

extent_hooks_t* g_default_hooks = nullptr;
extent_hooks_t g_hooks;  // the default hooks with alloc, dalloc and destroy replaced
unsigned g_arena = 0;
size_t g_query_mib[4];
size_t g_query_miblen = 0;  // 0: jemalloc has no utilization query; sizes are unknown
size_t g_large_min = 0;     // the smallest large size class (smaller extents are slabs)
size_t g_large_pad = 0;     // the page jemalloc adds to large extents (opt.cache_oblivious)

// jemalloc's radix tree leaves cover at least 2^15 pages of 4 KiB (LG_VADDR 57; 2^18 with the
// usual 48 bits). A hook range's first and last pages were registered when jemalloc took the
// range, so the leaves of the windows holding them exist and a lookup there cannot crash.
constexpr int kLeafWindowShift = 27;

void Record(void* p, size_t size) {
  const uintptr_t b = reinterpret_cast<uintptr_t>(p);
  MutexLock lock(&g_mu);
  const int n = g_count.load(std::memory_order_relaxed);
  if (n == kMaxRanges) {
    if (!g_full_warned.exchange(true)) Warn("more than 4096 heap ranges; later ones are missed");
    return;
  }
  g_ranges[n].begin.store(b, std::memory_order_relaxed);
  g_ranges[n].end.store(b + size, std::memory_order_relaxed);
  if (b < g_lo.load(std::memory_order_relaxed)) g_lo.store(b, std::memory_order_relaxed);
  if (b + size > g_hi.load(std::memory_order_relaxed)) {
    g_hi.store(b + size, std::memory_order_relaxed);
  }
  g_count.store(n + 1, std::memory_order_release);
}

void* HookAlloc(extent_hooks_t*, void* new_addr, size_t size, size_t alignment, bool* zero,
                bool* commit, unsigned arena_ind) {
  void* p =
      g_default_hooks->alloc(g_default_hooks, new_addr, size, alignment, zero, commit, arena_ind);
  if (p != nullptr) Record(p, size);
  return p;
}

// Opts out of every deallocation: the range stays mapped and jemalloc keeps it for reuse, so a
// recorded range never becomes someone else's memory.
bool HookDalloc(extent_hooks_t*, void* addr, size_t size, bool, unsigned) {
  const uintptr_t b = reinterpret_cast<uintptr_t>(addr);
  const int n = g_count.load(std::memory_order_acquire);
  for (int i = 0; i < n; ++i) {
    if (b < g_ranges[i].end.load(std::memory_order_relaxed) &&
        b + size > g_ranges[i].begin.load(std::memory_order_relaxed)) {
      g_ranges[i].queryable.store(false, std::memory_order_relaxed);
    }
  }
  return true;
}

// Only at arena destruction, which never happens: keep the mapping, as HookDalloc does.
void HookDestroy(extent_hooks_t*, void*, size_t, bool, unsigned) {}

// mallctl reads of pointer-sized values: sizeof(T) of a pointer type is meant (NOLINTs).
template <class T>
bool Read(const char* name, T* value) {
  size_t len = sizeof(T);  // NOLINT(bugprone-sizeof-expression)
  return mallctl(name, value, &len, nullptr, 0) == 0 &&
         len == sizeof(T);  // NOLINT(bugprone-sizeof-expression)
}

HeapTracker StartJemalloc() {
  if (!Read("arena.0.extent_hooks", &g_default_hooks) || g_default_hooks == nullptr) {
    Warn("jemalloc did not give its default extent hooks");
    return HeapTracker::kNone;
  }
  g_hooks = *g_default_hooks;
  g_hooks.alloc = &HookAlloc;
  g_hooks.dalloc = &HookDalloc;
  g_hooks.destroy = &HookDestroy;
  extent_hooks_t* hooks = &g_hooks;
  size_t len = sizeof(g_arena);
  // The new value is the hooks pointer itself: sizeof(hooks) is a pointer's size, as meant.
  if (mallctl("arenas.create", &g_arena, &len, &hooks,
              sizeof(hooks)) != 0) {  // NOLINT(bugprone-sizeof-expression)
    Warn("jemalloc refused to create the tracking arena");
    return HeapTracker::kNone;
  }
  g_query_miblen = sizeof(g_query_mib) / sizeof(g_query_mib[0]);
  if (mallctlnametomib("experimental.utilization.query", g_query_mib, &g_query_miblen) != 0) {
    g_query_miblen = 0;
  }
  bool cache_oblivious = false;
  size_t page = 0;
  if (!Read("arenas.lextent.0.size", &g_large_min) || !Read("arenas.page", &page) ||
      !Read("opt.cache_oblivious", &cache_oblivious)) {
    g_query_miblen = 0;  // cannot turn extent sizes into object sizes
  }
  g_large_pad = cache_oblivious ? page : 0;
  return HeapTracker::kJemallocArena;
}

thread_local constinit bool t_tracked = false;

void BindThread() {
  t_tracked = true;
  unsigned arena = g_arena;
  mallctl("thread.arena", nullptr, nullptr, &arena, sizeof(arena));
  // Objects already in the thread cache came from the old arena; the next ones come from ours.
  mallctl("thread.tcache.flush", nullptr, nullptr, nullptr, 0);
}

// The recorded range holding `a`, or null.
const Range* RangeOf(uintptr_t a) {
  const int n = g_count.load(std::memory_order_acquire);
  for (int i = 0; i < n; ++i) {
    const Range& r = g_ranges[i];
    if (a >= r.begin.load(std::memory_order_relaxed) && a < r.end.load(std::memory_order_relaxed)) {
      return &r;
    }
  }
  return nullptr;
}

// The size of the heap block at `a` in `range`, or 0 if jemalloc cannot safely be asked.
size_t BlockSize(uintptr_t a, const Range& range) {
  if (g_query_miblen == 0 || !range.queryable.load(std::memory_order_relaxed)) return 0;
  const uintptr_t window = a >> kLeafWindowShift;
  if (window != range.begin.load(std::memory_order_relaxed) >> kLeafWindowShift &&
      window != (range.end.load(std::memory_order_relaxed) - 1) >> kLeafWindowShift) {
    return 0;
  }
  struct {
    void* slabcur_addr;
    size_t nfree, nregs, size, bin_nfree, bin_nregs;
  } util = {};
  size_t len = sizeof(util);
  const void* p = reinterpret_cast<const void*>(a);
  if (mallctlbymib(g_query_mib, g_query_miblen, &util, &len, &p, sizeof(p)) != 0) return 0;
  if (util.nregs == 0 || util.size == 0) return 0;  // no extent starts or ends at this page
  // A large extent holds one object plus the cache-oblivious pad; a slab holds nregs objects.
  if (util.nregs == 1 && util.size >= g_large_min) return util.size - g_large_pad;
  return util.size / util.nregs;
}

#endif  // jemalloc

HeapTracker Start() {
#if BROOM_TRACK_ASAN
  return HeapTracker::kAddressSanitizer;
#elif BROOM_TRACK_TSAN
  return HeapTracker::kThreadSanitizer;
#elif BROOM_WITH_JEMALLOC
  if (StartJemalloc() == HeapTracker::kNone) return HeapTracker::kNone;
  BindThread();
  void* probe = std::malloc(64);
  const bool recognised = probe != nullptr && RangeOf(reinterpret_cast<uintptr_t>(probe));
  std::free(probe);
  if (!recognised) {
    Warn("malloc is not jemalloc's, or does not use the tracking arena");
    return HeapTracker::kNone;
  }
  return HeapTracker::kJemallocArena;
#else
  Warn("this build has neither jemalloc nor a sanitizer allocator");
  return HeapTracker::kNone;
#endif
}

}  // namespace

const char* HeapTrackerName(HeapTracker tracker) {
  switch (tracker) {
    case HeapTracker::kNone:
      return "none";
    case HeapTracker::kJemallocArena:
      return "jemalloc tracking arena";
    case HeapTracker::kAddressSanitizer:
      return "AddressSanitizer";
    case HeapTracker::kThreadSanitizer:
      return "ThreadSanitizer";
  }
  return "?";
}

HeapTracker StartHeapTracking() {
  static const HeapTracker tracker = [] {
    const HeapTracker t = Start();
    g_tracker.store(t, std::memory_order_release);
    return t;
  }();
  TrackThisThread();
  return tracker;
}

HeapTracker ActiveHeapTracker() { return g_tracker.load(std::memory_order_acquire); }

void TrackThisThread() {
#if !BROOM_TRACK_ASAN && !BROOM_TRACK_TSAN && BROOM_WITH_JEMALLOC
  if (__builtin_expect(t_tracked, true) || ActiveHeapTracker() != HeapTracker::kJemallocArena)
    return;
  BindThread();
#endif
}

HeapBounds HeapBoundsNow() {
  switch (ActiveHeapTracker()) {
    case HeapTracker::kNone:
      return {};
    case HeapTracker::kAddressSanitizer:
    case HeapTracker::kThreadSanitizer:
      // Every user-space address above the zero page: the sanitizer decides.
      return {.lo = 4096, .span = (uintptr_t{1} << 47) - 4096};
    case HeapTracker::kJemallocArena:
      break;
  }
#if !BROOM_TRACK_ASAN && !BROOM_TRACK_TSAN && BROOM_WITH_JEMALLOC
  const uintptr_t lo = g_lo.load(std::memory_order_relaxed);
  const uintptr_t hi = g_hi.load(std::memory_order_relaxed);
  if (hi <= lo) return {};
  return {.lo = lo, .span = hi - lo};
#else
  return {};
#endif
}

bool LookUpHeap(const void* p, size_t* size) {
  *size = 0;
#if BROOM_TRACK_ASAN
  char name[8];
  void* begin = nullptr;
  size_t bytes = 0;
  const char* kind =
      __asan_locate_address(const_cast<void*>(p), name, sizeof(name), &begin, &bytes);
  if (kind == nullptr || std::strcmp(kind, "heap") != 0) return false;
  *size = bytes;
  return true;
#elif BROOM_TRACK_TSAN
  // The allocator first: __tsan_locate_address symbolizes any other address as a global, and
  // crashes on data without a symbol name (GCC 12's libtsan).
  if (!__sanitizer_get_ownership(p)) return false;
  char name[8];
  uintptr_t begin = 0;
  uintptr_t bytes = 0;
  const char* kind =
      __tsan_locate_address(reinterpret_cast<uintptr_t>(p), name, sizeof(name), &begin, &bytes);
  if (kind != nullptr && std::strcmp(kind, "heap") == 0) *size = bytes;  // else freed: unknown
  return true;
#elif BROOM_WITH_JEMALLOC
  if (ActiveHeapTracker() != HeapTracker::kJemallocArena) return false;
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  const Range* range = RangeOf(a);
  if (range == nullptr) return false;
  *size = BlockSize(a, *range);
  return true;
#else
  (void)p;
  return false;
#endif
}

}  // namespace broom::internal
