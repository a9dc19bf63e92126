// Copyright Broom authors.
//
// The profiler's recording side: site table, sharded pointer table, clock, exit mark. See
// profiler.h.
#include "runtime_shims/preload/profiler.h"

#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include <cstdio>
#include <cstring>

#include "broom/internal/base.h"
#include "runtime_shims/preload/backend.h"
#include "runtime_shims/preload/call_stack.h"
#include "runtime_shims/preload/profiler_internal.h"
#include "runtime_shims/preload/shim.h"

extern "C" int __cxa_thread_atexit_impl(void (*fn)(void*), void* arg, void* dso);
extern "C" void* __dso_handle;

namespace broom::preload::profiler {

State g_state;

namespace {

constexpr size_t kInitialSlots = 1024;

// Replacement detection (a vector growing: allocate the new array, move, free the old one).
// t_last_site: the site of this thread's latest profiled allocation; t_last_tsc its time;
// t_prev_tsc the time of the allocation before it if that came from the same site too, 0 if not
// or once anything was freed since. A free of that previous object right after the latest is a
// replacement.
thread_local uint32_t t_last_site BROOM_IE_TLS = 0;
thread_local uint64_t t_last_tsc BROOM_IE_TLS = 0;
thread_local uint64_t t_prev_tsc BROOM_IE_TLS = 0;
// The profiler's own time on this thread, folded into g_state.own_ticks every 64 calls (a thread
// that exits loses at most 63 calls' worth).
thread_local uint64_t t_own_ticks BROOM_IE_TLS = 0;
thread_local uint32_t t_own_calls BROOM_IE_TLS = 0;

void CountOwnTime(uint64_t since) {
  t_own_ticks += __rdtsc() - since;
  if (++t_own_calls % 64 == 0) {
    g_state.own_ticks.fetch_add(t_own_ticks, std::memory_order_relaxed);
    t_own_ticks = 0;
  }
}

struct Entry {
  uintptr_t key;  // 0 = empty
  Record rec;
};

struct alignas(64) Shard {
  SpinLock lock;
  Entry* slots = nullptr;
  size_t cap = 0;  // power of two
  size_t count = 0;
};
Shard g_shards[kShards];

inline uint64_t Hash(uintptr_t p) { return (p >> 4) * 0x9e3779b97f4a7c15ull; }
inline Shard& ShardOf(uint64_t h) { return g_shards[h >> 56]; }

void Lock(Shard& s) { s.lock.Lock(); }
void Unlock(Shard& s) { s.lock.Unlock(); }

bool Grow(Shard& s) {
  size_t cap = s.cap == 0 ? kInitialSlots : s.cap * 2;
  auto* slots = static_cast<Entry*>(JeAllocAligned(cap * sizeof(Entry), 64, true));
  if (slots == nullptr) return false;
  for (size_t i = 0; i < s.cap; ++i) {
    if (s.slots[i].key == 0) continue;
    size_t j = Hash(s.slots[i].key) & (cap - 1);
    while (slots[j].key != 0) j = (j + 1) & (cap - 1);
    slots[j] = s.slots[i];
  }
  if (s.slots != nullptr) JeFreeSized(s.slots, s.cap * sizeof(Entry), 64);
  s.slots = slots;
  s.cap = cap;
  return true;
}

void Insert(uintptr_t key, const Record& rec) {
  uint64_t h = Hash(key);
  Shard& s = ShardOf(h);
  Lock(s);
  if ((s.count + 1) * 2 > s.cap && !Grow(s)) {
    Unlock(s);
    return;  // out of memory: this object goes unprofiled
  }
  size_t mask = s.cap - 1;
  size_t i = h & mask;
  while (s.slots[i].key != 0 && s.slots[i].key != key) i = (i + 1) & mask;
  if (s.slots[i].key == 0) ++s.count;
  s.slots[i].key = key;
  s.slots[i].rec = rec;
  Unlock(s);
}

bool Remove(uintptr_t key, Record* out) {
  uint64_t h = Hash(key);
  Shard& s = ShardOf(h);
  Lock(s);
  if (s.cap == 0) {
    Unlock(s);
    return false;
  }
  size_t mask = s.cap - 1;
  size_t i = h & mask;
  while (s.slots[i].key != key) {
    if (s.slots[i].key == 0) {
      Unlock(s);
      return false;
    }
    i = (i + 1) & mask;
  }
  *out = s.slots[i].rec;
  // Backward-shift deletion keeps probe chains intact without tombstones.
  size_t j = i;
  for (;;) {
    j = (j + 1) & mask;
    if (s.slots[j].key == 0) break;
    size_t home = Hash(s.slots[j].key) & mask;
    bool movable = i <= j ? (home <= i || home > j) : (home <= i && home > j);
    if (movable) {
      s.slots[i] = s.slots[j];
      i = j;
    }
  }
  s.slots[i].key = 0;
  --s.count;
  Unlock(s);
  return true;
}

uint64_t HashStack(const uintptr_t* frames, int n) {
  uint64_t h = 0x243f6a8885a308d3ull ^ static_cast<uint64_t>(n);
  for (int i = 0; i < n; ++i) {
    h ^= frames[i];
    h *= 0x9e3779b97f4a7c15ull;
    h ^= h >> 29;
  }
  return h > 1 ? h : h + 2;  // 0 and 1 are reserved
}

// The index of the site with this stack, claiming an empty slot for a new one; 0 ("other") when
// 64 probes find neither.
uint32_t SiteIndex(const uintptr_t* frames, int n) {
  Site* sites = g_state.sites;
  uint64_t key = HashStack(frames, n);
  size_t i = (key >> 20) & (kMaxSites - 1);
  for (int probe = 0; probe < 64; ++probe, i = (i + 1) & (kMaxSites - 1)) {
    if (i == 0) continue;  // site 0 is "other"
    uint64_t cur = sites[i].key.load(std::memory_order_acquire);
    if (cur == key) return static_cast<uint32_t>(i);
    if (cur == 0) {
      if (sites[i].key.compare_exchange_strong(cur, key, std::memory_order_acq_rel)) {
        for (int f = 0; f < n; ++f) sites[i].frames[f] = frames[f];
        sites[i].nframes = n;  // read only by the report, at exit
        return static_cast<uint32_t>(i);
      }
      if (cur == key) return static_cast<uint32_t>(i);
    }
  }
  return 0;
}

inline void Add(std::atomic<uint64_t>& a, uint64_t v) { a.fetch_add(v, std::memory_order_relaxed); }

uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace

const char* BucketLabel(int b) {
  static const char* const kLabels[kBuckets] = {"<1us",   "<10us", "<100us", "<1ms", "<10ms",
                                                "<100ms", "<1s",   "<10s",   ">=10s"};
  return kLabels[b];
}

void Counts(const Site& s, SiteCounts* out) {
  out->count = s.count.load(std::memory_order_relaxed);
  out->bytes = s.bytes.load(std::memory_order_relaxed);
  out->freed = s.freed.load(std::memory_order_relaxed);
  out->cross_thread = s.cross_thread.load(std::memory_order_relaxed);
  out->grouped = s.grouped.load(std::memory_order_relaxed);
  out->at_exit = s.at_exit.load(std::memory_order_relaxed);
  out->long_lived = s.long_lived.load(std::memory_order_relaxed);
  out->replaced = s.replaced.load(std::memory_order_relaxed);
  for (int b = 0; b < kBuckets; ++b)
    out->lifetime_hist[b] = s.hist[b].load(std::memory_order_relaxed);
  for (int r = 0; r < kScopeFrames + 2; ++r) {
    out->scope[r] = s.scope[r].load(std::memory_order_relaxed);
  }
}

void MarkExit() {
  uint64_t expected = 0;
  g_state.exit_tsc.compare_exchange_strong(expected, __rdtsc(), std::memory_order_relaxed);
}

bool Enable(const Config& config) {
  if (g_state.sites == nullptr) {
    g_state.sites = static_cast<Site*>(JeAllocAligned(kMaxSites * sizeof(Site), 4096, true));
    if (g_state.sites == nullptr) {
      static const char kMsg[] = "broom: profile: cannot allocate the site table; profiler off\n";
      ssize_t ignored = write(STDERR_FILENO, kMsg, sizeof(kMsg) - 1);
      (void)ignored;
      return false;
    }
    g_state.sites[0].key.store(1, std::memory_order_relaxed);
  }
  g_state.unwinder = LoadUnwinder();
  static bool exit_hook = false;
  if (!exit_hook) {
    // exit() runs the calling thread's TLS destructors before atexit handlers and static
    // destructors: registered now, from the constructor on the main thread, this one marks the
    // start of exit before any of them frees anything.
    exit_hook = __cxa_thread_atexit_impl([](void*) { MarkExit(); }, nullptr, &__dso_handle) == 0;
  }
  // Calibrate rdtsc against CLOCK_MONOTONIC over about 2 ms.
  uint64_t n0 = NowNs();
  uint64_t c0 = __rdtsc();
  uint64_t n1;
  do {
    n1 = NowNs();
  } while (n1 - n0 < 2000000);
  uint64_t c1 = __rdtsc();
  g_state.ticks_per_ns = static_cast<double>(c1 - c0) / static_cast<double>(n1 - n0);
  if (g_state.ticks_per_ns <= 0.01) g_state.ticks_per_ns = 1.0;
  double limit_ns = 1000.0;
  for (int b = 0; b < kBuckets - 1; ++b, limit_ns *= 10) {
    g_state.bucket_limit[b] = static_cast<uint64_t>(limit_ns * g_state.ticks_per_ns);
  }
  g_state.window_ticks = static_cast<uint64_t>(static_cast<double>(config.group_window_us) *
                                               1000.0 * g_state.ticks_per_ns);
  g_state.min_long_ticks = static_cast<uint64_t>(1e6 * g_state.ticks_per_ns);
  g_state.exit_tsc.store(0, std::memory_order_relaxed);
  g_state.start_tsc = c1;
  g_state.owner_pid = getpid();
  return true;
}

void OnAlloc(void* p, size_t size, void* site) {
  uint64_t entered = __rdtsc();
  bool saved = t_internal;
  t_internal = true;  // the unwinder and the per-thread setup may allocate: not profiled
  Stack* stack = CaptureStack(site);
  auto at = reinterpret_cast<uintptr_t>(site);
  uint32_t idx = stack != nullptr ? SiteIndex(stack->frames, stack->n) : SiteIndex(&at, 1);
  Site& s = g_state.sites[idx];
  Add(s.count, 1);
  Add(s.bytes, size);
  uint64_t max = s.max_size.load(std::memory_order_relaxed);
  if (size > max) s.max_size.store(size, std::memory_order_relaxed);  // racy max is fine
  Record rec = {};
  rec.site = idx;
  rec.tid = ThreadIndex();
  if (stack != nullptr && stack->nslots > 0) {
    if (ScopeMarks* marks = ThisThreadMarks()) {
      marks->Enter(stack->slots, stack->frames + 1, stack->nslots, CurrentSp(), rec.scope);
    }
  }
  t_internal = saved;
  rec.tsc = __rdtsc();
  t_prev_tsc = t_last_site == idx ? t_last_tsc : 0;
  t_last_site = idx;
  t_last_tsc = rec.tsc;
  Insert(reinterpret_cast<uintptr_t>(p), rec);
  CountOwnTime(entered);
}

void Retire(const Record& rec) {
  uint64_t now = __rdtsc();
  Site& s = g_state.sites[rec.site];
  if (BROOM_UNLIKELY(g_state.exit_tsc.load(std::memory_order_relaxed) != 0)) {
    Add(s.at_exit, 1);  // it lived until exit
    return;
  }
  uint64_t life = now > rec.tsc ? now - rec.tsc : 0;
  Add(s.freed, 1);
  Add(s.lifetime_ticks, life);
  bool same_thread = rec.tid == ThreadIndex();
  if (!same_thread) Add(s.cross_thread, 1);
  int b = 0;
  while (b < kBuckets - 1 && life >= g_state.bucket_limit[b]) ++b;
  Add(s.hist[b], 1);
  uint64_t elapsed = now - g_state.start_tsc;
  if (life >= g_state.min_long_ticks && life >= elapsed / 4) Add(s.long_lived, 1);
  uint64_t prev = s.last_free.exchange(now, std::memory_order_relaxed);
  if (prev != 0 && now - prev <= g_state.window_ticks && life > g_state.window_ticks) {
    Add(s.grouped, 1);
  }
  // Every free tells this thread which of its activations have returned, whoever allocated the
  // object (an engine loop's `delete batch` after a callback ends the callback's activation).
  ScopeMarks* marks = ThisThreadMarks();
  if (marks != nullptr) marks->Observe(CurrentSp());
  bool replaced =
      same_thread && t_last_site == rec.site && t_prev_tsc != 0 && rec.tsc == t_prev_tsc;
  t_prev_tsc = 0;
  if (!same_thread) return;
  if (replaced) {
    Add(s.replaced, 1);
    return;
  }
  int r = kScopeFrames + 1;  // not tracked
  if (marks != nullptr && rec.scope[0] != 0) {
    r = marks->InnermostLive(rec.scope, kScopeFrames, s.frames, s.nframes, CurrentSp());
  }
  Add(s.scope[r], 1);
}

void OnFree(void* p) {
  uint64_t entered = __rdtsc();
  Record rec;
  if (Remove(reinterpret_cast<uintptr_t>(p), &rec)) Retire(rec);
  CountOwnTime(entered);
}

uint64_t OwnTicks() { return g_state.own_ticks.load(std::memory_order_relaxed) + t_own_ticks; }

bool Take(void* p, Record* out) { return Remove(reinterpret_cast<uintptr_t>(p), out); }
void Put(void* p, const Record& rec) { Insert(reinterpret_cast<uintptr_t>(p), rec); }

bool CountsFor(void* site, SiteCounts* out) {
  if (g_state.sites == nullptr) return false;
  auto at = reinterpret_cast<uintptr_t>(site);
  uint64_t key = HashStack(&at, 1);
  size_t i = (key >> 20) & (kMaxSites - 1);
  for (int probe = 0; probe < 64; ++probe, i = (i + 1) & (kMaxSites - 1)) {
    if (i == 0) continue;
    uint64_t cur = g_state.sites[i].key.load(std::memory_order_acquire);
    if (cur == 0) return false;
    if (cur == key) {
      Counts(g_state.sites[i], out);
      return true;
    }
  }
  return false;
}

SpinLock& ShardLock(int i) { return g_shards[i].lock; }

}  // namespace broom::preload::profiler
