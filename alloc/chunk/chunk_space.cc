// Copyright Broom authors.
//
// The space: reservation, chunk map, carving, per-thread caches, the global pool and decay.
#include "alloc/chunk/chunk_space.h"

#include "alloc/chunk/quarantine.h"

#include <pthread.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "alloc/os/mutex.h"
#include "alloc/os/heap.h"
#include "alloc/os/os.h"
#include "broom/internal/base.h"

namespace broom::internal {

SpaceBounds g_space = {0, 0, 0, nullptr, {nullptr}};

namespace {

constexpr size_t kCommitStep = size_t{64} << 20;
constexpr int kCacheSlots = 64;
// Blocks of each class a thread cache holds at most (1K: 64 KiB, 2K: 128 KiB, 4K: 256 KiB,
// 8K: 512 KiB, 16K: 512 KiB, 32K: 1 MiB, 64K: 1 MiB, 128K: 2 MiB, 256K: 2 MiB; about 7 MiB).
constexpr int kCacheLimit[kNumBlockClasses] = {64, 64, 64, 64, 32, 32, 16, 16, 8};
constexpr int64_t kCounterFold = int64_t{1} << 20;
constexpr uint64_t kIdRange = 4096;
constexpr uint64_t kDecayCheckMs = 10;

struct ThreadCache {
  BlockHeader* slots[kNumBlockClasses][kCacheSlots];
  std::atomic<int> count[kNumBlockClasses];
  int64_t held_delta;  // bytes charged minus uncharged, not yet folded into g_held
  std::atomic<uint64_t> created[kNumRegionKinds];
  std::atomic<uint64_t> destroyed[kNumRegionKinds];
  uint64_t next_id;
  uint64_t id_limit;
  ThreadCache* next;
  ThreadCache* prev;
};

struct FreeEntry {
  BlockHeader* block;
  uint64_t time_ms;
};
struct RunEntry {
  char* base;
  size_t chunks;
  uint64_t time_ms;
  bool purged;
};
template <class T>
using MetaVector = std::vector<T, MetaAllocator<T>>;

std::atomic<int64_t> g_held{0};
std::atomic<int64_t> g_peak{0};
std::atomic<size_t> g_process_budget{0};
std::atomic<size_t> g_cache_bytes{0};  // bytes in thread caches
std::atomic<uint64_t> g_next_id_range{1};
std::atomic<size_t> g_retained_cap{size_t{256} << 20};
std::atomic<uint32_t> g_decay_ms{1000};

thread_local constinit ThreadCache* t_cache = nullptr;

void UpdatePeak(int64_t v) {
  int64_t peak = g_peak.load(std::memory_order_relaxed);
  while (v > peak && !g_peak.compare_exchange_weak(peak, v, std::memory_order_relaxed)) {
  }
}

class Space {
 public:
  Space();

  BlockHeader* RefillAndTake(ThreadCache* tc, int c, AllocError* error) ABSL_LOCKS_EXCLUDED(mu_);
  void Flush(ThreadCache* tc, int c, int keep) ABSL_LOCKS_EXCLUDED(mu_);
  BlockHeader* AcquireRun(size_t chunks, AllocError* error) ABSL_LOCKS_EXCLUDED(mu_);
  void ReleaseRun(BlockHeader* b) ABSL_LOCKS_EXCLUDED(mu_);
  size_t Purge(size_t target, bool ignore_age) ABSL_LOCKS_EXCLUDED(mu_);
  void Register(ThreadCache* tc) ABSL_LOCKS_EXCLUDED(mu_);
  void Unregister(ThreadCache* tc) ABSL_LOCKS_EXCLUDED(mu_);
  void FillStats(GlobalStats* s) ABSL_LOCKS_EXCLUDED(mu_);
  pthread_key_t key() const { return key_; }
  // fork(): the pool lock is held across fork so the child never inherits it mid-update.
  void LockForFork() ABSL_NO_THREAD_SAFETY_ANALYSIS { mu_.Lock(); }
  void UnlockAfterFork() ABSL_NO_THREAD_SAFETY_ANALYSIS { mu_.Unlock(); }

 private:
  char* CarveLocked(size_t chunks, AllocError* error) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // One chunk cut from the end of a free run (a warm one first), or null if there is none.
  char* TakeChunkFromRunsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MaybeDecayLocked(uint64_t now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  size_t PurgeLocked(size_t target, uint64_t now, bool ignore_age)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Mutex mu_;
  char* base_ = nullptr;
  size_t reserved_ = 0;
  char* frontier_ ABSL_GUARDED_BY(mu_) = nullptr;
  char* committed_end_ ABSL_GUARDED_BY(mu_) = nullptr;
  MetaVector<FreeEntry> dirty_[kNumBlockClasses] ABSL_GUARDED_BY(mu_);
  MetaVector<BlockHeader*> purged_[kNumBlockClasses] ABSL_GUARDED_BY(mu_);
  MetaVector<RunEntry> runs_ ABSL_GUARDED_BY(mu_);
  size_t dirty_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  size_t purged_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t purges_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t last_decay_ms_ ABSL_GUARDED_BY(mu_) = 0;
  ThreadCache* caches_ ABSL_GUARDED_BY(mu_) = nullptr;
  uint64_t retired_created_[kNumRegionKinds] ABSL_GUARDED_BY(mu_) = {};
  uint64_t retired_destroyed_[kNumRegionKinds] ABSL_GUARDED_BY(mu_) = {};
  pthread_key_t key_;
};

void ThreadExit(void* arg);
void ForkPrepare();
void ForkParent();
void ForkChild();

Space& GetSpace() {
  // Never destroyed: threads may release blocks during and after static destruction.
  alignas(Space) static char storage[sizeof(Space)];
  static Space* space = new (storage) Space();
  return *space;
}

Space::Space() {
  size_t gib = 64;
  if (const char* env = std::getenv("BROOM_RESERVE_GB")) {
    long v = std::strtol(env, nullptr, 10);
    if (v > 0 && v <= (1 << 16)) gib = static_cast<size_t>(v);
  }
  size_t size = gib << 30;
  void* base = nullptr;
  for (; size >= (size_t{256} << 20); size /= 2) {
    base = os::Reserve(size, kChunkSize);
    if (base != nullptr) break;
  }
  BROOM_CHECK(base != nullptr, "cannot reserve address space for regions (even 256 MiB)");
  size_t map_bytes = (size >> kChunkShift) * sizeof(std::atomic<uintptr_t>);
  void* map = os::MapLazyZeroed(map_bytes);
  BROOM_CHECK(map != nullptr, "cannot map the chunk map (%zu bytes)", map_bytes);
  base_ = static_cast<char*>(base);
  reserved_ = size;
  {
    MutexLock lock(&mu_);
    frontier_ = base_;
    committed_end_ = base_;
  }
  g_space.chunk_map = static_cast<std::atomic<uintptr_t>*>(map);
  g_space.base = reinterpret_cast<uintptr_t>(base_);
  g_space.end = g_space.base + reserved_;
  g_space.size = reserved_;
  BROOM_CHECK(pthread_key_create(&key_, &ThreadExit) == 0, "pthread_key_create failed");
  BROOM_CHECK(pthread_atfork(&ForkPrepare, &ForkParent, &ForkChild) == 0, "pthread_atfork failed");
}

// Runs first among the prepare handlers registered before the space existed (LIFO), so
// jemalloc, which the pool calls under its lock, is still unlocked while we wait for the lock.
void ForkPrepare() { GetSpace().LockForFork(); }
void ForkParent() { GetSpace().UnlockAfterFork(); }
// The child has one thread; the caches of the others stay registered (their blocks are lost to
// the child, which only matters for a child that keeps running without exec).
// The child's only thread is the one that forked, which holds the lock: it releases it (also
// what ThreadSanitizer can follow, unlike re-initializing the mutex).
void ForkChild() { GetSpace().UnlockAfterFork(); }

std::atomic<uintptr_t>& MapWord(const void* chunk) {
  return g_space.chunk_map[(reinterpret_cast<uintptr_t>(chunk) - g_space.base) >> kChunkShift];
}

char* Space::CarveLocked(size_t chunks, AllocError* error) {
  size_t bytes = chunks * kChunkSize;
  if (static_cast<size_t>(base_ + reserved_ - frontier_) < bytes) {
    *error = AllocError::kOutOfMemory;
    return nullptr;
  }
  char* p = frontier_;
  if (p + bytes > committed_end_) {
    size_t need = static_cast<size_t>(p + bytes - committed_end_);
    size_t step = std::max(kCommitStep, (need + kCommitStep - 1) / kCommitStep * kCommitStep);
    step = std::min(step, static_cast<size_t>(base_ + reserved_ - committed_end_));
    if (!os::Commit(committed_end_, step)) {
      *error = AllocError::kOutOfMemory;
      return nullptr;
    }
    committed_end_ += step;
  }
  frontier_ += bytes;
  return p;
}

char* Space::TakeChunkFromRunsLocked() {
  size_t pick = runs_.size();
  for (size_t i = 0; i < runs_.size(); ++i) {
    if (!runs_[i].purged) {
      pick = i;
      break;
    }
    if (pick == runs_.size()) pick = i;
  }
  if (pick == runs_.size()) return nullptr;
  RunEntry& e = runs_[pick];
  (e.purged ? purged_bytes_ : dirty_bytes_) -= kChunkSize;
  --e.chunks;
  char* chunk = e.base + e.chunks * kChunkSize;  // the rest keeps its base (map words are 0)
  if (e.chunks == 0) runs_.erase(runs_.begin() + static_cast<ptrdiff_t>(pick));
  return chunk;
}

void InitHeader(BlockHeader* b, size_t size, uint8_t block_class) {
  b->next = nullptr;
  b->prev = nullptr;
  b->size = size;
  b->block_class = block_class;
  b->dedicated = 0;
  b->object = nullptr;
  b->used_end = nullptr;
  b->object_class = kNoObjectClass;
  b->live_objects = 0;
  b->capacity = 0;
  b->free_list = nullptr;
}

BlockHeader* Space::RefillAndTake(ThreadCache* tc, int c, AllocError* error) {
  const size_t size = BlockClassSize(c);
  const int want = kCacheLimit[c] / 2;
  BlockHeader* got[kCacheSlots];
  int n = 0;
  {
    MutexLock lock(&mu_);
    auto& dirty = dirty_[c];
    while (n < want && !dirty.empty()) {
      got[n++] = dirty.back().block;
      dirty.pop_back();
      dirty_bytes_ -= size;
    }
    auto& purged = purged_[c];
    while (n < want && !purged.empty()) {
      got[n++] = purged.back();
      purged.pop_back();
      purged_bytes_ -= size;
    }
    if (n == 0) {
      // No free block of this class: reuse a chunk of a free run (memory a large object gave
      // back) before growing into fresh space, so RSS follows what is live.
      char* chunk = TakeChunkFromRunsLocked();
      const bool reused = chunk != nullptr;
      if (!reused) chunk = CarveLocked(1, error);
      if (chunk == nullptr) return nullptr;
      size_t per_chunk = kChunkSize / size;
      if (reused) {
        // Fresh space reads as zero, old run memory does not: give every block a free header
        // (owner null) before the chunk map makes RegionOf look at them.
        for (size_t i = 0; i < per_chunk; ++i) {
          auto* b = reinterpret_cast<BlockHeader*>(chunk + i * size);
          UnpoisonMemory(b, sizeof(BlockHeader));
          b->owner.store(nullptr, std::memory_order_relaxed);
        }
      }
      MapWord(chunk).store(CarvedMapWord(size), std::memory_order_release);
      // The thread takes the lowest blocks, as many as its cache holds (lowest last, so it is
      // handed out first and address order follows allocation order); a chunk of blocks below
      // 4 KiB holds more, and the rest go to the pool.
      const size_t take = std::min<size_t>(per_chunk, kCacheSlots);
      const uint64_t now = take < per_chunk ? os::NowMs() : 0;
      for (size_t i = per_chunk; i > take; --i) {
        dirty.push_back({reinterpret_cast<BlockHeader*>(chunk + (i - 1) * size), now});
        dirty_bytes_ += size;
      }
      for (size_t i = take; i > 0; --i) got[n++] = reinterpret_cast<BlockHeader*>(chunk + (i - 1) * size);
      g_cache_bytes.fetch_add(size * static_cast<size_t>(n), std::memory_order_relaxed);
    } else {
      g_cache_bytes.fetch_add(size * static_cast<size_t>(n), std::memory_order_relaxed);
    }
  }
  BlockHeader* take = got[n - 1];
  int count = tc->count[c].load(std::memory_order_relaxed);
  for (int i = 0; i < n - 1; ++i) tc->slots[c][count++] = got[i];
  tc->count[c].store(count, std::memory_order_relaxed);
  g_cache_bytes.fetch_sub(size, std::memory_order_relaxed);
  return take;
}

void Space::Flush(ThreadCache* tc, int c, int keep) {
  const size_t size = BlockClassSize(c);
  int count = tc->count[c].load(std::memory_order_relaxed);
  if (count <= keep) return;
  uint64_t now = os::NowMs();
  {
    MutexLock lock(&mu_);
    // Oldest (bottom of the cache stack) go first; the hottest stay in the thread.
    int moved = count - keep;
    for (int i = 0; i < moved; ++i) dirty_[c].push_back({tc->slots[c][i], now});
    dirty_bytes_ += size * static_cast<size_t>(moved);
    MaybeDecayLocked(now);
  }
  std::memmove(&tc->slots[c][0], &tc->slots[c][count - keep], sizeof(BlockHeader*) * keep);
  tc->count[c].store(keep, std::memory_order_relaxed);
  g_cache_bytes.fetch_sub(size * static_cast<size_t>(count - keep), std::memory_order_relaxed);
}

BlockHeader* Space::AcquireRun(size_t chunks, AllocError* error) {
  char* base = nullptr;
  {
    MutexLock lock(&mu_);
    size_t best = runs_.size();
    for (size_t i = 0; i < runs_.size(); ++i) {
      if (runs_[i].chunks >= chunks && (best == runs_.size() || runs_[i].chunks < runs_[best].chunks)) {
        best = i;
        if (runs_[i].chunks == chunks) break;
      }
    }
    if (best != runs_.size()) {
      RunEntry& e = runs_[best];
      base = e.base;
      size_t taken = chunks * kChunkSize;
      (e.purged ? purged_bytes_ : dirty_bytes_) -= taken;
      if (e.chunks == chunks) {
        runs_.erase(runs_.begin() + static_cast<ptrdiff_t>(best));
      } else {
        e.base += taken;
        e.chunks -= chunks;
      }
    } else {
      base = CarveLocked(chunks, error);
      if (base == nullptr) return nullptr;
    }
  }
  auto* b = reinterpret_cast<BlockHeader*>(base);
  for (size_t i = 0; i < chunks; ++i) {
    MapWord(base + i * kChunkSize).store(reinterpret_cast<uintptr_t>(b), std::memory_order_release);
  }
  return b;
}

void Space::ReleaseRun(BlockHeader* b) {
  char* base = reinterpret_cast<char*>(b);
  size_t chunks = b->size / kChunkSize;
  for (size_t i = 0; i < chunks; ++i) MapWord(base + i * kChunkSize).store(0, std::memory_order_release);
  uint64_t now = os::NowMs();
  MutexLock lock(&mu_);
  runs_.push_back({base, chunks, now, false});
  dirty_bytes_ += chunks * kChunkSize;
  MaybeDecayLocked(now);
}

void Space::MaybeDecayLocked(uint64_t now) {
  size_t cap = g_retained_cap.load(std::memory_order_relaxed);
  if (dirty_bytes_ <= cap) return;
  if (now - last_decay_ms_ < kDecayCheckMs) return;
  last_decay_ms_ = now;
  PurgeLocked(cap, now, /*ignore_age=*/false);
}

size_t Space::PurgeLocked(size_t target, uint64_t now, bool ignore_age) {
  uint64_t decay = g_decay_ms.load(std::memory_order_relaxed);
  size_t purged = 0;
  // Runs first (largest), then block classes from the largest; oldest entries first.
  for (RunEntry& e : runs_) {
    if (dirty_bytes_ <= target) break;
    if (e.purged || (!ignore_age && now - e.time_ms < decay)) continue;
    size_t bytes = e.chunks * kChunkSize;
    os::Purge(e.base, bytes);
    e.purged = true;
    dirty_bytes_ -= bytes;
    purged_bytes_ += bytes;
    purged += bytes;
    ++purges_;
  }
  // Blocks smaller than a page cannot be madvised one by one; they stay dirty.
  for (int c = kNumBlockClasses - 1; c >= kPageBlockClass && dirty_bytes_ > target; --c) {
    const size_t size = BlockClassSize(c);
    auto& dirty = dirty_[c];
    size_t i = 0;
    for (; i < dirty.size() && dirty_bytes_ > target; ++i) {
      if (!ignore_age && now - dirty[i].time_ms < decay) break;  // the rest are younger
      os::Purge(dirty[i].block, size);
      purged_[c].push_back(dirty[i].block);
      dirty_bytes_ -= size;
      purged_bytes_ += size;
      purged += size;
      ++purges_;
    }
    dirty.erase(dirty.begin(), dirty.begin() + static_cast<ptrdiff_t>(i));
  }
  return purged;
}

size_t Space::Purge(size_t target, bool ignore_age) {
  MutexLock lock(&mu_);
  return PurgeLocked(target, os::NowMs(), ignore_age);
}

void Space::Register(ThreadCache* tc) {
  MutexLock lock(&mu_);
  tc->prev = nullptr;
  tc->next = caches_;
  if (caches_ != nullptr) caches_->prev = tc;
  caches_ = tc;
}

void Space::Unregister(ThreadCache* tc) {
  MutexLock lock(&mu_);
  for (int k = 0; k < kNumRegionKinds; ++k) {
    retired_created_[k] += tc->created[k].load(std::memory_order_relaxed);
    retired_destroyed_[k] += tc->destroyed[k].load(std::memory_order_relaxed);
  }
  if (tc->prev != nullptr) tc->prev->next = tc->next;
  if (tc->next != nullptr) tc->next->prev = tc->prev;
  if (caches_ == tc) caches_ = tc->next;
}

void Space::FillStats(GlobalStats* s) {
  MutexLock lock(&mu_);
  for (int k = 0; k < kNumRegionKinds; ++k) {
    s->regions_created[k] = retired_created_[k];
    s->regions_destroyed[k] = retired_destroyed_[k];
  }
  for (ThreadCache* tc = caches_; tc != nullptr; tc = tc->next) {
    for (int k = 0; k < kNumRegionKinds; ++k) {
      s->regions_created[k] += tc->created[k].load(std::memory_order_relaxed);
      s->regions_destroyed[k] += tc->destroyed[k].load(std::memory_order_relaxed);
    }
  }
  s->cached_bytes = dirty_bytes_ + g_cache_bytes.load(std::memory_order_relaxed);
  s->purged_bytes = purged_bytes_;
  s->reserved_bytes = reserved_;
  s->committed_bytes = static_cast<size_t>(committed_end_ - base_);
  s->purges = purges_;
}

void FoldCounters(ThreadCache* tc) {
  int64_t v = g_held.fetch_add(tc->held_delta, std::memory_order_relaxed) + tc->held_delta;
  tc->held_delta = 0;
  UpdatePeak(v);
}

ThreadCache* CreateCache() {
  Space& space = GetSpace();
  auto* tc = static_cast<ThreadCache*>(MetaAllocate(sizeof(ThreadCache), alignof(ThreadCache)));
  BROOM_CHECK(tc != nullptr, "cannot allocate a thread cache");
  std::memset(static_cast<void*>(tc), 0, sizeof(ThreadCache));
  space.Register(tc);
  pthread_setspecific(space.key(), tc);
  t_cache = tc;
  return tc;
}

inline ThreadCache* Cache() {
  ThreadCache* tc = t_cache;
  return BROOM_LIKELY(tc != nullptr) ? tc : CreateCache();
}

void FlushAll(ThreadCache* tc) {
  for (int c = 0; c < kNumBlockClasses; ++c) GetSpace().Flush(tc, c, 0);
}

void ThreadExit(void* arg) {
  auto* tc = static_cast<ThreadCache*>(arg);
  FlushAll(tc);
  FoldCounters(tc);
  GetSpace().Unregister(tc);
  t_cache = nullptr;
  MetaFree(tc, sizeof(ThreadCache), alignof(ThreadCache));
}

bool Charge(ThreadCache* tc, size_t bytes, AllocError* error) {
  size_t budget = g_process_budget.load(std::memory_order_relaxed);
  if (BROOM_LIKELY(budget == 0)) {
    tc->held_delta += static_cast<int64_t>(bytes);
    if (tc->held_delta >= kCounterFold) FoldCounters(tc);
    return true;
  }
  FoldCounters(tc);
  int64_t cur = g_held.load(std::memory_order_relaxed);
  do {
    if (cur + static_cast<int64_t>(bytes) > static_cast<int64_t>(budget)) {
      *error = AllocError::kProcessBudget;
      return false;
    }
  } while (!g_held.compare_exchange_weak(cur, cur + static_cast<int64_t>(bytes),
                                         std::memory_order_relaxed));
  UpdatePeak(cur + static_cast<int64_t>(bytes));
  return true;
}

void Uncharge(ThreadCache* tc, size_t bytes) {
  tc->held_delta -= static_cast<int64_t>(bytes);
  if (tc->held_delta <= -kCounterFold ||
      g_process_budget.load(std::memory_order_relaxed) != 0) {
    FoldCounters(tc);
  }
}

}  // namespace

void EnsureSpace() { GetSpace(); }

BlockHeader* AcquireBlock(size_t bytes, Region* owner, AllocError* error) {
  ThreadCache* tc = Cache();
  int c = BlockClassFor(bytes);
  size_t size;
  size_t chunks = 0;
  if (c >= 0) {
    size = BlockClassSize(c);
  } else {
    if (bytes > (g_space.end - g_space.base)) {
      *error = AllocError::kOutOfMemory;
      return nullptr;
    }
    chunks = (bytes + kChunkSize - 1) >> kChunkShift;
    size = chunks << kChunkShift;
  }
  if (!Charge(tc, size, error)) return nullptr;
  BlockHeader* b;
  if (c >= 0) {
    int count = tc->count[c].load(std::memory_order_relaxed);
    if (BROOM_LIKELY(count > 0)) {
      b = tc->slots[c][count - 1];
      tc->count[c].store(count - 1, std::memory_order_relaxed);
      g_cache_bytes.fetch_sub(size, std::memory_order_relaxed);
    } else {
      b = GetSpace().RefillAndTake(tc, c, error);
    }
  } else {
    b = GetSpace().AcquireRun(chunks, error);
  }
  if (BROOM_UNLIKELY(b == nullptr)) {
    Uncharge(tc, size);
    return nullptr;
  }
  UnpoisonMemory(b, size);
  InitHeader(b, size, c >= 0 ? static_cast<uint8_t>(c) : kRunClass);
  b->owner.store(owner, std::memory_order_release);
  return b;
}

void ReturnFreeBlock(BlockHeader* b) {
  ThreadCache* tc = Cache();
  size_t size = b->size;
  uint8_t c = b->block_class;
  PoisonMemory(b->begin(), size - sizeof(BlockHeader));
  if (c == kRunClass) {
    GetSpace().ReleaseRun(b);
    return;
  }
  int count = tc->count[c].load(std::memory_order_relaxed);
  if (count == kCacheLimit[c]) {
    GetSpace().Flush(tc, c, kCacheLimit[c] / 2);
    count = kCacheLimit[c] / 2;
  }
  tc->slots[c][count] = b;
  tc->count[c].store(count + 1, std::memory_order_relaxed);
  g_cache_bytes.fetch_add(size, std::memory_order_relaxed);
}

size_t ReleaseBlock(BlockHeader* b) {
  size_t size = b->size;
  b->owner.store(nullptr, std::memory_order_release);
  Uncharge(Cache(), size);
  if (BROOM_UNLIKELY(g_space.quarantine.load(std::memory_order_relaxed) != nullptr) &&
      QuarantineAdmit(b)) {
    return size;
  }
  ReturnFreeBlock(b);
  return size;
}

size_t ReleaseBlockList(BlockHeader* head) {
  size_t total = 0;
  while (head != nullptr) {
    BlockHeader* next = head->next;
    total += ReleaseBlock(head);
    head = next;
  }
  return total;
}

void NoteRegionCreated(RegionKind kind) {
  auto& counter = Cache()->created[static_cast<int>(kind)];
  counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

void NoteRegionDestroyed(RegionKind kind) {
  auto& counter = Cache()->destroyed[static_cast<int>(kind)];
  counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

uint64_t NextRegionId() {
  ThreadCache* tc = Cache();
  if (BROOM_UNLIKELY(tc->next_id == tc->id_limit)) {
    tc->next_id = g_next_id_range.fetch_add(kIdRange, std::memory_order_relaxed);
    tc->id_limit = tc->next_id + kIdRange;
  }
  return tc->next_id++;
}

}  // namespace broom::internal

namespace broom {

GlobalStats GetGlobalStats() {
  GlobalStats s;
  internal::GetSpace().FillStats(&s);
  int64_t held = internal::g_held.load(std::memory_order_relaxed);
  if (internal::t_cache != nullptr) held += internal::t_cache->held_delta;
  s.block_bytes = held > 0 ? static_cast<size_t>(held) : 0;
  s.peak_block_bytes = static_cast<size_t>(std::max(internal::g_peak.load(std::memory_order_relaxed), held));
  return s;
}

void SetRetention(const RetentionPolicy& policy) {
  internal::g_retained_cap.store(policy.retained_cap_bytes, std::memory_order_relaxed);
  internal::g_decay_ms.store(policy.decay_ms, std::memory_order_relaxed);
}

RetentionPolicy GetRetention() {
  return {internal::g_retained_cap.load(std::memory_order_relaxed),
          internal::g_decay_ms.load(std::memory_order_relaxed)};
}

void SetProcessBudget(size_t bytes) {
  internal::g_process_budget.store(bytes, std::memory_order_relaxed);
}
size_t ProcessBudget() { return internal::g_process_budget.load(std::memory_order_relaxed); }

size_t ReleaseFreeMemory(bool all) {
  FlushThreadCache();
  return internal::GetSpace().Purge(all ? 0 : internal::g_retained_cap.load(std::memory_order_relaxed),
                                    /*ignore_age=*/true);
}

void FlushThreadCache() {
  if (internal::t_cache != nullptr) internal::FlushAll(internal::t_cache);
}

}  // namespace broom
