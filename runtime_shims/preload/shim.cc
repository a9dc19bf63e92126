// Copyright Broom authors.
//
// The slow paths of the malloc family: region routing, object headers, checked mode, stats.
#include "runtime_shims/preload/shim.h"

#include <errno.h>
#include <pthread.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "broom/internal/block.h"
#include "broom/memory.h"
#include "runtime_shims/preload/backend.h"
#include "runtime_shims/preload/bind.h"
#include "runtime_shims/preload/fork.h"
#include "runtime_shims/preload/profiler.h"

namespace broom::preload {

uint32_t g_mode = 0;
// Until PublishFastPaths(): every call takes the slow paths, which work from the first
// allocation of the process (before any constructor) through g_je's Boot wrappers.
Dispatch g_dispatch = {
    {&MallocSlow}, {&CallocSlow}, {&OperatorNewSlow}, {&FreeSlow}, {&SizedDeleteChecked}};
SlowFreeRange g_slow_free = {0, UINTPTR_MAX};
// Set before the first region is created. The prefixed testing build creates regions through
// the core directly, never through broom_region_create, so there it starts set.
std::atomic<bool> g_regions_may_exist{!BROOM_PRELOAD_INTERPOSES};
// Cleared (before g_regions_may_exist is set) if UnbindDirect() failed.
bool g_regions_usable = true;
bool g_checks = false;
Config g_config;
std::atomic<bool> g_regions_used{false};
thread_local constinit bool t_internal BROOM_IE_TLS = false;

namespace {

std::atomic<uint32_t> g_next_thread{1};
thread_local uint32_t t_thread_index BROOM_IE_TLS = 0;

// ---- stats: per-thread counters, folded into globals at thread exit --------------------------
struct ThreadCounters {
  std::atomic<uint64_t> mallocs, frees, bytes;
  std::atomic<uint64_t> region_mallocs[kNumRegionKinds];
  int64_t live_delta;  // owner thread only
  ThreadCounters* next;
  ThreadCounters* prev;
  bool registered;
};
thread_local ThreadCounters t_counters BROOM_IE_TLS = {};

SpinLock g_counters_lock;
ThreadCounters* g_counters_list = nullptr;
std::atomic<uint64_t> g_retired_mallocs{0}, g_retired_frees{0}, g_retired_bytes{0};
std::atomic<uint64_t> g_retired_region[kNumRegionKinds] = {};
std::atomic<int64_t> g_live_bytes{0};
std::atomic<int64_t> g_peak_bytes{0};
pthread_key_t g_exit_key;
std::atomic<bool> g_exit_key_made{false};
constexpr int64_t kLiveFold = 256 << 10;

void LockCounters() { g_counters_lock.Lock(); }
void UnlockCounters() { g_counters_lock.Unlock(); }

void FoldLive(ThreadCounters& c) {
  int64_t v = g_live_bytes.fetch_add(c.live_delta, std::memory_order_relaxed) + c.live_delta;
  c.live_delta = 0;
  int64_t peak = g_peak_bytes.load(std::memory_order_relaxed);
  while (v > peak && !g_peak_bytes.compare_exchange_weak(peak, v, std::memory_order_relaxed)) {
  }
}

void ThreadExit(void*) {
  ThreadCounters& c = t_counters;
  if (!c.registered) return;
  FoldLive(c);
  LockCounters();
  g_retired_mallocs.fetch_add(c.mallocs.load(std::memory_order_relaxed), std::memory_order_relaxed);
  g_retired_frees.fetch_add(c.frees.load(std::memory_order_relaxed), std::memory_order_relaxed);
  g_retired_bytes.fetch_add(c.bytes.load(std::memory_order_relaxed), std::memory_order_relaxed);
  for (int k = 0; k < kNumRegionKinds; ++k) {
    g_retired_region[k].fetch_add(c.region_mallocs[k].load(std::memory_order_relaxed),
                                  std::memory_order_relaxed);
    c.region_mallocs[k].store(0, std::memory_order_relaxed);
  }
  if (c.prev != nullptr) c.prev->next = c.next;
  if (c.next != nullptr) c.next->prev = c.prev;
  if (g_counters_list == &c) g_counters_list = c.next;
  UnlockCounters();
  c.mallocs.store(0, std::memory_order_relaxed);
  c.frees.store(0, std::memory_order_relaxed);
  c.bytes.store(0, std::memory_order_relaxed);
  c.registered = false;  // a later allocation on this thread registers again
}

BROOM_NOINLINE ThreadCounters& RegisterCounters() {
  ThreadCounters& c = t_counters;
  if (!g_exit_key_made.load(std::memory_order_acquire)) {
    LockCounters();
    if (!g_exit_key_made.load(std::memory_order_relaxed)) {
      pthread_key_create(&g_exit_key, &ThreadExit);
      g_exit_key_made.store(true, std::memory_order_release);
    }
    UnlockCounters();
  }
  LockCounters();
  c.prev = nullptr;
  c.next = g_counters_list;
  if (g_counters_list != nullptr) g_counters_list->prev = &c;
  g_counters_list = &c;
  c.registered = true;
  UnlockCounters();
  pthread_setspecific(g_exit_key, reinterpret_cast<void*>(1));
  return c;
}

inline ThreadCounters& Counters() {
  ThreadCounters& c = t_counters;
  return BROOM_LIKELY(c.registered) ? c : RegisterCounters();
}

template <class T>
inline void Bump(std::atomic<T>& a, T by) {  // single writer: no locked instruction
  a.store(a.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}

// ---- diagnostics ----------------------------------------------------------------------------

void Say(const char* fmt, const void* p, const char* op, const Region* r) {
  char buf[400];
  char rbuf[128] = "";
  if (r != nullptr) {
    std::snprintf(rbuf, sizeof(rbuf), " (its memory now belongs to region #%llu '%s', %s)",
                  static_cast<unsigned long long>(r->id()), r->name(), KindName(r->kind()));
  }
  int n = std::snprintf(buf, sizeof(buf), fmt, op, p, rbuf);
  if (n > 0) {
    ssize_t ignored =
        write(STDERR_FILENO, buf, static_cast<size_t>(n) < sizeof(buf) ? n : sizeof(buf) - 1);
    (void)ignored;
  }
}

constexpr const char* kStaleFmt =
    "broom: %s(%p): pointer into a destroyed region (the region was freed, or reset and its "
    "memory reused)%s\n";

[[noreturn]] BROOM_NOINLINE void DieStale(const void* p, const char* op, const Region* r) {
  Say(kStaleFmt, p, op, r);
  internal::Fatal(__FILE__, __LINE__, "%s of a dangling region pointer %p", op, p);
}

// The live region owning the region pointer `p` with a valid header, or null (diagnosed and
// fatal when `fatal`, for operations that cannot proceed, or in checked mode).
Region* LiveRegionOf(const void* p, const char* op, bool fatal) {
  Region* r = RegionOf(p);
  if (BROOM_UNLIKELY(r == nullptr)) {
    if (fatal || g_checks) DieStale(p, op, nullptr);
    return nullptr;
  }
  if ((fatal || g_checks) && BROOM_UNLIKELY(HeaderOf(p)->tag != RegionTag(r))) DieStale(p, op, r);
  return r;
}

void FreeRegionObject(Region* r, void* p) {
  if (r->kind() != RegionKind::kActor) return;  // freed in bulk with the region
  ObjectHeader* h = HeaderOf(p);
  static_cast<ReapRegion*>(r)->Free(static_cast<char*>(p) - h->offset);
}

size_t HeapUsable(const void* p) { return JeUsableSize(p); }

// `align` 0 (or up to 8, which every jemalloc allocation has) takes jemalloc's malloc, which
// aligns requests under 16 bytes to 8 only; any larger alignment goes through mallocx with
// MALLOCX_ALIGN, also for 16 (posix_memalign(&p, 16, 0) must be 16-aligned).
void* HeapAllocate(size_t size, size_t align, bool zero) {
  if (align <= 8) return zero ? g_je.calloc(1, size) : g_je.malloc(size);
  return JeAllocAligned(size, align, zero);
}

}  // namespace

uint32_t ThreadIndex() {
  uint32_t t = t_thread_index;
  if (BROOM_UNLIKELY(t == 0)) {
    t = g_next_thread.fetch_add(1, std::memory_order_relaxed);
    t_thread_index = t;
  }
  return t;
}

void CountRegionMalloc(RegionKind kind, size_t size) {
  ThreadCounters& c = Counters();
  Bump(c.region_mallocs[static_cast<int>(kind)], uint64_t{1});
  (void)size;
}

void CountHeapMalloc(size_t usable) {
  ThreadCounters& c = Counters();
  Bump(c.mallocs, uint64_t{1});
  Bump(c.bytes, static_cast<uint64_t>(usable));
  c.live_delta += static_cast<int64_t>(usable);
  if (c.live_delta > kLiveFold) FoldLive(c);
}

void CountHeapFree(size_t usable) {
  ThreadCounters& c = Counters();
  Bump(c.frees, uint64_t{1});
  c.live_delta -= static_cast<int64_t>(usable);
  if (c.live_delta < -kLiveFold) FoldLive(c);
}

HeapCounters ReadCounters() {
  HeapCounters h = {};
  LockCounters();
  h.mallocs = g_retired_mallocs.load(std::memory_order_relaxed);
  h.frees = g_retired_frees.load(std::memory_order_relaxed);
  h.bytes = g_retired_bytes.load(std::memory_order_relaxed);
  for (int k = 0; k < kNumRegionKinds; ++k) {
    h.region_mallocs[k] = g_retired_region[k].load(std::memory_order_relaxed);
  }
  for (ThreadCounters* c = g_counters_list; c != nullptr; c = c->next) {
    h.mallocs += c->mallocs.load(std::memory_order_relaxed);
    h.frees += c->frees.load(std::memory_order_relaxed);
    h.bytes += c->bytes.load(std::memory_order_relaxed);
    for (int k = 0; k < kNumRegionKinds; ++k) {
      h.region_mallocs[k] += c->region_mallocs[k].load(std::memory_order_relaxed);
    }
  }
  UnlockCounters();
  h.live_bytes = g_live_bytes.load(std::memory_order_relaxed) + t_counters.live_delta;
  h.peak_bytes = g_peak_bytes.load(std::memory_order_relaxed);
  if (h.live_bytes > h.peak_bytes) h.peak_bytes = h.live_bytes;
  return h;
}

namespace {

// Held while UseCheckedEntries() switches from pass-through to the checked entries.
SpinLock g_switch_lock;

}  // namespace

SpinLock& SwitchLock() { return g_switch_lock; }
SpinLock& CountersLock() { return g_counters_lock; }

void Configure(const Config& config) {
  g_config = config;
  g_checks = config.checks;
  uint32_t mode = 0;
  if (config.stats) mode |= kModeStats;
  if (config.profile_path[0] != '\0' && profiler::Enable(config)) mode |= kModeProfile;
  g_mode = mode;
  // The region space (an address-space reservation, BROOM_RESERVE_GB, default 64 GiB) is made
  // by the first region (UseCheckedEntries), not at start-up; the prefixed testing build, where
  // regions may exist from the start, makes it now.
  if (g_regions_may_exist.load(std::memory_order_relaxed)) (void)GetGlobalStats();
  PublishFastPaths();
}

namespace {

void StoreEntries(void* (*m)(size_t), void* (*c)(size_t, size_t), void* (*n)(size_t),
                  void (*f)(void*) noexcept, void (*d)(void*, size_t) noexcept) {
  g_dispatch.malloc.store(m, std::memory_order_relaxed);
  g_dispatch.calloc.store(c, std::memory_order_relaxed);
  g_dispatch.op_new.store(n, std::memory_order_relaxed);
  g_dispatch.free.store(f, std::memory_order_relaxed);
  g_dispatch.sized_delete.store(d, std::memory_order_relaxed);
}

void StoreCheckedEntries() {
  StoreEntries(&MallocChecked, g_je.calloc, &OperatorNewChecked, &FreeChecked, &SizedDeleteChecked);
}

// Binds the program's call sites straight to the functions g_dispatch holds in pass-through
// (bind.h): the same targets, minus the jump through Broom's export.
void BindPassThrough() {
  auto fn = [](auto f) { return reinterpret_cast<void*>(f); };
  const BindTarget targets[] = {
      {"malloc", fn(g_je.malloc)},        {"free", fn(g_je.free)},
      {"calloc", fn(g_je.calloc)},        {"_Znwm", fn(g_je.op_new)},
      {"_Znam", fn(g_je.op_new)},         {"_ZdlPv", fn(g_je.free)},
      {"_ZdaPv", fn(g_je.free)},          {"_ZdlPvm", fn(g_je.sized_delete)},
      {"_ZdaPvm", fn(g_je.sized_delete)},
  };
  BindDirect(targets, static_cast<int>(sizeof(targets) / sizeof(targets[0])));
}

}  // namespace

namespace {

// g_slow_free while no mode is on: the region space, or nothing before it exists (no region
// memory can exist then).
void NarrowSlowFreeToSpace() {
  // Two stores: a racing reader may see {base, old len} (more pointers take the slow path: fine)
  // or {0, len} (heap pointers, all above len, stay fast; no region pointer exists yet).
  g_slow_free.lo = internal::g_space.base;
  g_slow_free.len = internal::g_space.end - internal::g_space.base;
}

}  // namespace

void PublishFastPaths() {
  bool plain = g_mode == 0;
  if (!plain) {
    StoreEntries(&MallocSlow, &CallocSlow, &OperatorNewSlow, &FreeSlow, &SizedDeleteChecked);
  } else if (g_regions_may_exist.load(std::memory_order_relaxed)) {
    StoreCheckedEntries();
  } else {
    StoreEntries(g_je.malloc, g_je.calloc, g_je.op_new != nullptr ? g_je.op_new : &OperatorNewSlow,
                 g_je.free, g_je.sized_delete != nullptr ? g_je.sized_delete : &SizedDeleteChecked);
    if (BROOM_PRELOAD_INTERPOSES && g_config.bind && BackendResolved()) BindPassThrough();
  }
  if (plain) {
    NarrowSlowFreeToSpace();
  } else {
    g_slow_free = {0, UINTPTR_MAX};
  }
}

bool UseCheckedEntries() {
  if (BROOM_LIKELY(g_regions_may_exist.load(std::memory_order_acquire))) return g_regions_usable;
  // The region space, made now (a function-local static in the core). Not under the switch
  // lock: its constructor registers fork handlers, and pthread_atfork waits for a fork in
  // progress, whose prepare handler waits for the switch lock. Fork() and the build exclude
  // each other instead (fork.h).
  BeginSpaceBuild();
  (void)GetGlobalStats();
  EndSpaceBuild();
  OnSpaceCreated();
  // Concurrent first creators wait here: none may return before the slots are restored.
  SwitchLock().Lock();
  if (!g_regions_may_exist.load(std::memory_order_relaxed)) {
    if (g_mode == 0) {  // with a mode on, the entries are the slow ones and every free is slow
      NarrowSlowFreeToSpace();
      StoreCheckedEntries();
    }
    if (!UnbindDirect()) {
      g_regions_usable = false;
      static const char kMsg[] =
          "broom: warning: a malloc call site bound directly to jemalloc could not be restored "
          "(its PLT slot was rewritten by someone else, or mprotect failed); region memory "
          "freed through it would reach jemalloc, so regions are disabled "
          "(broom_region_create fails with ENOTSUP). BROOM_CONF=bind:0 avoids this.\n";
      ssize_t ignored = write(STDERR_FILENO, kMsg, sizeof(kMsg) - 1);
      (void)ignored;
    }
    g_regions_may_exist.store(true, std::memory_order_release);
  }
  SwitchLock().Unlock();
  return g_regions_usable;
}

namespace {

// Out of line, so that MallocChecked's heap path saves no registers.
BROOM_NOINLINE void* MallocInRegion(size_t size) {
  if (void* p = TryRegionMalloc(size)) return p;
  return Allocate(size, 0, false, __builtin_return_address(0));
}

}  // namespace

BROOM_NOINLINE void* MallocChecked(size_t size) {
  if (NothingPushed()) return g_je.malloc(size);
  return MallocInRegion(size);  // tail jumps: the return address is still the program's
}

BROOM_NOINLINE void FreeChecked(void* p) noexcept {
  if (!NeedsSlowFree(p)) return g_je.free(p);
  Free(p);
}

BROOM_NOINLINE void FreeSlow(void* p) noexcept { Free(p); }

BROOM_NOINLINE void* MallocSlow(size_t size) {
  return Allocate(size, 0, false, __builtin_return_address(0));
}

BROOM_NOINLINE void* CallocSlow(size_t n, size_t size) {
  size_t bytes;
  if (__builtin_mul_overflow(n, size, &bytes)) {
    errno = ENOMEM;
    return nullptr;
  }
  return Allocate(bytes, 0, true, __builtin_return_address(0));
}

// ---- allocation ------------------------------------------------------------------------------

void* AllocateIn(Region* r, size_t size, size_t align) {
  size_t a = align < 16 ? 16 : align;
  if (BROOM_UNLIKELY(size > kMaxRegionObject || a > (size_t{1} << 31))) return nullptr;
  char* raw = static_cast<char*>(r->Allocate(a + size, a));
  if (BROOM_UNLIKELY(raw == nullptr)) return nullptr;
  return InitObject(raw, r, size, a);
}

void* Allocate(size_t size, size_t align, bool zero, void* site) {
  Region* r = CurrentRegion();
  void* p;
  if (r != nullptr && !t_internal) {
    p = AllocateIn(r, size, align);
    if (BROOM_UNLIKELY(p == nullptr)) {
      errno = ENOMEM;
      return nullptr;
    }
    if (zero) std::memset(p, 0, size);
    if (g_mode & kModeStats) CountRegionMalloc(r->kind(), size);
    return p;
  }
  p = HeapAllocate(size, align, zero);
  if (BROOM_UNLIKELY(p == nullptr)) {
    errno = ENOMEM;
    return nullptr;
  }
  if (!t_internal) {
    if (g_mode & kModeStats) CountHeapMalloc(HeapUsable(p));
    if (g_mode & kModeProfile) profiler::OnAlloc(p, size, site);
  }
  return p;
}

void Free(void* p) {
  if (p == nullptr) return;
  if (internal::InSpace(p)) {
    int saved = errno;
    if (Region* r = LiveRegionOf(p, "free", false)) FreeRegionObject(r, p);
    errno = saved;
    return;
  }
  if (g_mode != 0 && !t_internal) {
    if (g_mode & kModeProfile) profiler::OnFree(p);
    if (g_mode & kModeStats) CountHeapFree(HeapUsable(p));
  }
  g_je.free(p);
}

void FreeSized(void* p, size_t size, size_t align) {
  if (p == nullptr) return;
  if (internal::InSpace(p) || (g_mode != 0 && !t_internal)) {
    Free(p);
    return;
  }
  JeFreeSized(p, size, align);
}

size_t UsableSize(const void* p) {
  if (p == nullptr) return 0;
  if (internal::InSpace(p)) {
    Region* r = LiveRegionOf(p, "malloc_usable_size", false);
    return r != nullptr ? HeaderOf(p)->size : 0;
  }
  return HeapUsable(p);
}

void* Reallocate(void* p, size_t size, void* site) {
  if (p == nullptr) return Allocate(size, 0, false, site);
  if (size == 0) {  // glibc: frees and returns null
    Free(p);
    return nullptr;
  }
  Region* cur = t_internal ? nullptr : CurrentRegion();
  size_t old_size;
  if (internal::InSpace(p)) {
    Region* r = LiveRegionOf(p, "realloc", true);
    ObjectHeader* h = HeaderOf(p);
    old_size = h->size;
    if (size <= old_size) return p;  // shrink in place; the usable size stays exact
    if (cur == r && r->kind() != RegionKind::kActor && h->offset == 16) {
      // Undo the object if it was the last allocation, then allocate the larger size: the bump
      // pointer gives back the same address when it fits in the current block.
      char* raw = static_cast<char*>(p) - 16;
      r->Deallocate(raw, 16 + old_size);
      void* q = AllocateIn(r, size, 0);
      if (q == nullptr) {
        void* back = AllocateIn(r, old_size, 0);  // restore what the undo removed
        (void)back;
        h->size = old_size;
        errno = ENOMEM;
        return nullptr;
      }
      if (q != p) std::memcpy(q, p, old_size);  // the old bytes are intact: nothing reused them
      if (g_mode & kModeStats) CountRegionMalloc(r->kind(), size);
      return q;
    }
    void* q = Allocate(size, 0, false, site);
    if (q == nullptr) return nullptr;
    std::memcpy(q, p, old_size);
    FreeRegionObject(r, p);
    return q;
  }
  if (cur == nullptr) {  // heap to heap
    if (g_mode == 0 || t_internal) {
      void* q = g_je.realloc(p, size);
      if (q == nullptr) errno = ENOMEM;  // jemalloc's realloc leaves errno alone
      return q;
    }
    profiler::Record rec;
    bool had = (g_mode & kModeProfile) && profiler::Take(p, &rec);
    size_t old_usable = (g_mode & kModeStats) ? HeapUsable(p) : 0;
    void* q = g_je.realloc(p, size);
    if (q == nullptr) {
      if (had) profiler::Put(p, rec);
      errno = ENOMEM;
      return nullptr;
    }
    if (g_mode & kModeStats) {
      CountHeapFree(old_usable);
      CountHeapMalloc(HeapUsable(q));
    }
    if (g_mode & kModeProfile) {
      if (had) profiler::Retire(rec);
      profiler::OnAlloc(q, size, site);
    }
    return q;
  }
  // Heap object while a region is pushed: move it into the region.
  old_size = HeapUsable(p);
  void* q = Allocate(size, 0, false, site);
  if (q == nullptr) return nullptr;
  std::memcpy(q, p, old_size < size ? old_size : size);
  Free(p);
  return q;
}

int CheckPointer(const void* p, const char* op, bool fatal) {
  if (p == nullptr || !internal::InSpace(p)) return 0;
  Region* r = RegionOf(p);
  if (r != nullptr && HeaderOf(p)->tag == RegionTag(r)) return 1;
  if (fatal) DieStale(p, op, r);
  Say(kStaleFmt, p, op, r);
  return -1;
}

}  // namespace broom::preload
