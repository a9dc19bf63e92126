// Copyright Broom authors.
//
// The chunk layer's process-wide wiring: one Space, one Pool on it, one BlockStats, and a state
// per thread (its ThreadCache, its BlockStats share, its region counters), registered so stats
// can sum them and flushed when the thread exits.
#include "alloc/chunk/chunk_space.h"

#include <pthread.h>

#include <atomic>
#include <new>

#include "absl/base/thread_annotations.h"
#include "alloc/chunk/loans.h"
#include "alloc/chunk/pool_impl.h"
#include "alloc/chunk/quarantine.h"
#include "alloc/chunk/space.h"
#include "alloc/chunk/stats.h"
#include "alloc/chunk/thread_cache.h"
#include "alloc/os/heap.h"
#include "alloc/os/mutex.h"
#include "alloc/os/options.h"
#include "broom/check.h"
#include "broom/internal/base.h"

namespace broom::internal {

namespace {

using ProcessPool = Pool<Space>;

constexpr uint64_t kIdRange = 4096;

// One thread's part of the chunk layer. Created at the thread's first block operation.
struct ThreadState {
  explicit ThreadState(ProcessPool* pool) : cache(pool) {}
  ThreadCache<ProcessPool> cache;
  BlockStats::Local stats;
  // Written by the owner only (load + store), read by GetGlobalStats.
  std::atomic<uint64_t> created[kNumRegionKinds] = {};
  std::atomic<uint64_t> destroyed[kNumRegionKinds] = {};
  uint64_t next_id = 0;
  uint64_t id_limit = 0;
  ThreadState* next = nullptr;  // the registry's list (Chunks::mu_)
  ThreadState* prev = nullptr;
};

void ThreadExit(void* arg);
void ForkPrepare();
void ForkParent();
void ForkChild();

// The pieces, wired bottom up, and the registry of thread states.
// Ownership: one per process, created at the first block operation, never destroyed (threads
// release blocks during and after static destruction). Thread-safety: thread-safe.
class Chunks {
 public:
  Chunks();

  Space space;
  ProcessPool pool;

  void Register(ThreadState* ts) ABSL_LOCKS_EXCLUDED(mu_);
  // Adds the thread's region counters to the retired totals and forgets it.
  void Unregister(ThreadState* ts) ABSL_LOCKS_EXCLUDED(mu_);
  // Region counters, thread cache bytes and thread count over all registered threads.
  void SumThreads(GlobalStats* s) ABSL_LOCKS_EXCLUDED(mu_);
  pthread_key_t key() const { return key_; }

  // fork(): the registry's and the pool's locks are held across fork.
  void LockForFork() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    mu_.Lock();
    pool.LockForFork();
  }
  void UnlockAfterFork() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    pool.UnlockAfterFork();
    mu_.Unlock();
  }

 private:
  Mutex mu_;
  ThreadState* threads_ ABSL_GUARDED_BY(mu_) = nullptr;
  uint64_t retired_created_[kNumRegionKinds] ABSL_GUARDED_BY(mu_) = {};
  uint64_t retired_destroyed_[kNumRegionKinds] ABSL_GUARDED_BY(mu_) = {};
  pthread_key_t key_;
};

constinit BlockStats g_block_stats;
// This process's slice of the space, for ReleaseBlock's test (set once, with the space).
constinit uintptr_t g_own_slice_base = 0;
constinit size_t g_own_slice_bytes = 0;
// A plan set by ConfigurePlan before the space exists, and whether the space exists.
constinit AddressPlan g_configured_plan;
std::atomic<bool> g_plan_configured{false};
std::atomic<bool> g_chunks_created{false};

AddressPlan InitialPlan() {
  g_chunks_created.store(true, std::memory_order_release);
  return g_plan_configured.load(std::memory_order_acquire) ? g_configured_plan : PlanFromOptions();
}
thread_local constinit ThreadState* t_state = nullptr;

// The wiring is built by the first block operation, under g_init_mu, and never destroyed
// (threads release blocks during and after static destruction). fork() holds g_init_mu, so no
// child is forked while another thread is half way through building it: such a child would
// inherit the half-built wiring and its lock with no thread to finish them, and hang.
constinit Mutex g_init_mu;
std::atomic<Chunks*> g_chunks{nullptr};
alignas(Chunks) char g_chunks_storage[sizeof(Chunks)];

BROOM_NOINLINE Chunks& CreateChunks() {
  MutexLock lock(&g_init_mu);
  Chunks* chunks = g_chunks.load(std::memory_order_relaxed);
  if (chunks == nullptr) {
    chunks = new (g_chunks_storage) Chunks();
    g_chunks.store(chunks, std::memory_order_release);
  }
  return *chunks;
}

inline Chunks& GetChunks() {
  Chunks* chunks = g_chunks.load(std::memory_order_acquire);
  return BROOM_LIKELY(chunks != nullptr) ? *chunks : CreateChunks();
}

// Registered before main, while one thread runs, so the handlers are in place before any thread
// can start building the wiring. The heap (jemalloc, which registers its own handlers when it
// starts) is started first: prepare handlers run last-registered first, so ours take our locks
// while jemalloc's are still free (the pool calls jemalloc under its lock).
bool RegisterForkHandlers() {
  MetaFree(MetaAllocate(1), 1);
  BROOM_CHECK(pthread_atfork(&ForkPrepare, &ForkParent, &ForkChild) == 0, "pthread_atfork failed");
  return true;
}
[[maybe_unused]] const bool g_fork_handlers = RegisterForkHandlers();

QuarantinePolicy QuarantineFromEnv() {
  return {.duration_ms = static_cast<uint32_t>(GetOption(Option::kQuarantineMs))};
}

Chunks::Chunks() : space(InitialPlan()), pool(&space) {
  space.Publish();
  space.set_huge_pages(GetOption(Option::kHugePages) != 0);
  g_own_slice_base = reinterpret_cast<uintptr_t>(space.slice_base());
  g_own_slice_bytes = space.slice_bytes();
  RetentionPolicy retention;
  retention.retained_cap_bytes = static_cast<size_t>(GetOption(Option::kRetainedCapMb)) << 20;
  retention.decay_ms = static_cast<uint32_t>(GetOption(Option::kDecayMs));
  pool.SetRetention(retention);
  if (GetOption(Option::kQuarantineMs) > 0) QuarantineStart(&space, QuarantineFromEnv());
  BROOM_CHECK(pthread_key_create(&key_, &ThreadExit) == 0, "pthread_key_create failed");
}

void Chunks::Register(ThreadState* ts) {
  MutexLock lock(&mu_);
  ts->prev = nullptr;
  ts->next = threads_;
  if (threads_ != nullptr) threads_->prev = ts;
  threads_ = ts;
}

void Chunks::Unregister(ThreadState* ts) {
  MutexLock lock(&mu_);
  for (int k = 0; k < kNumRegionKinds; ++k) {
    retired_created_[k] += ts->created[k].load(std::memory_order_relaxed);
    retired_destroyed_[k] += ts->destroyed[k].load(std::memory_order_relaxed);
  }
  if (ts->prev != nullptr) ts->prev->next = ts->next;
  if (ts->next != nullptr) ts->next->prev = ts->prev;
  if (threads_ == ts) threads_ = ts->next;
}

void Chunks::SumThreads(GlobalStats* s) {
  MutexLock lock(&mu_);
  for (int k = 0; k < kNumRegionKinds; ++k) {
    s->regions_created[k] = retired_created_[k];
    s->regions_destroyed[k] = retired_destroyed_[k];
  }
  for (ThreadState* ts = threads_; ts != nullptr; ts = ts->next) {
    for (int k = 0; k < kNumRegionKinds; ++k) {
      s->regions_created[k] += ts->created[k].load(std::memory_order_relaxed);
      s->regions_destroyed[k] += ts->destroyed[k].load(std::memory_order_relaxed);
    }
    s->thread_cache_bytes += ts->cache.cached_bytes();
    ++s->threads;
  }
}

// Waits for a build of the wiring in progress, then holds its locks; builds nothing (a process
// that never used Broom forks without reserving its space).
void ForkPrepare() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  g_init_mu.Lock();
  if (Chunks* chunks = g_chunks.load(std::memory_order_acquire)) chunks->LockForFork();
}
void ForkParent() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  if (Chunks* chunks = g_chunks.load(std::memory_order_acquire)) chunks->UnlockAfterFork();
  g_init_mu.Unlock();
}
// The child has one thread; the states of the others stay registered (their cached blocks are
// lost to the child, which only matters for a child that keeps running without exec).
// The child's only thread is the one that forked, which holds the locks: it releases them (also
// what ThreadSanitizer can follow, unlike re-initializing the mutex). Memory shared with other
// processes (a memfd-backed slice, other slices mapped here) is not the child's to write: those
// slices become inaccessible in the child (a child that uses regions must not fork from a
// process with shared memory; one that execs is unaffected).
void ForkChild() {
  if (Chunks* chunks = g_chunks.load(std::memory_order_acquire)) {
    chunks->space.DetachSharedAfterFork(&SliceMappedHere);
  }
  ForkParent();
}

BROOM_NOINLINE ThreadState* CreateThreadState() {
  Chunks& chunks = GetChunks();
  void* mem = MetaAllocate(sizeof(ThreadState), alignof(ThreadState));
  BROOM_CHECK(mem != nullptr, "cannot allocate a thread's block cache");
  auto* ts = new (mem) ThreadState(&chunks.pool);
  chunks.Register(ts);
  pthread_setspecific(chunks.key(), ts);
  t_state = ts;
  return ts;
}

inline ThreadState* State() {
  ThreadState* ts = t_state;
  return BROOM_LIKELY(ts != nullptr) ? ts : CreateThreadState();
}

void ThreadExit(void* arg) {
  auto* ts = static_cast<ThreadState*>(arg);
  ts->cache.Flush();
  g_block_stats.Fold(&ts->stats);
  GetChunks().Unregister(ts);
  t_state = nullptr;
  ts->~ThreadState();
  MetaFree(ts, sizeof(ThreadState), alignof(ThreadState));
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
  b->capacity_less_2 = 0;
  b->free_list = nullptr;
}

// A free block (owner null, uncharged) to the thread's cache, or a run to the pool.
void ReleaseFree(ThreadState* ts, BlockHeader* b) {
  PoisonMemory(b->begin(), b->size - sizeof(BlockHeader));
  if (b->block_class == kRunClass) {
    GetChunks().pool.ReleaseRun(b);
  } else {
    ts->cache.Release(b, b->block_class);
  }
}

BROOM_NOINLINE bool ReleaseToQuarantine(ThreadState* ts, BlockHeader* b) {
  BlockHeader* expired[kMaxExpired];
  int n = 0;
  const bool taken = QuarantineAdmit(b, expired, &n);
  for (int i = 0; i < n; ++i) ReleaseFree(ts, expired[i]);
  return taken;
}

}  // namespace

BlockHeader* AcquireBlock(size_t bytes, Region* owner, AllocError* error) {
  ThreadState* ts = State();
  const int c = BlockClassFor(bytes);
  size_t size;
  size_t chunks = 0;
  if (c >= 0) {
    size = BlockClassSize(c);
  } else {
    if (bytes > g_space.size) {
      *error = AllocError::kOutOfMemory;
      return nullptr;
    }
    chunks = (bytes + kChunkSize - 1) >> kChunkShift;
    size = chunks << kChunkShift;
  }
  if (!g_block_stats.Charge(&ts->stats, size, error)) return nullptr;
  BlockHeader* b =
      c >= 0 ? ts->cache.Acquire(c, error) : GetChunks().pool.AcquireRun(chunks, error);
  if (BROOM_UNLIKELY(b == nullptr)) {
    g_block_stats.Uncharge(&ts->stats, size);
    return nullptr;
  }
  UnpoisonMemory(b, size);
  InitHeader(b, size, c >= 0 ? static_cast<uint8_t>(c) : kRunClass);
  b->owner.store(owner, std::memory_order_release);
  return b;
}

size_t ReleaseBlock(BlockHeader* b) {
  // A block of another process's slice (in a region received from it) goes back to its lender.
  if (BROOM_UNLIKELY(reinterpret_cast<uintptr_t>(b) - g_own_slice_base >= g_own_slice_bytes)) {
    return ReleaseForeign(b);
  }
  const size_t size = b->size;
  b->owner.store(nullptr, std::memory_order_release);
  ThreadState* ts = State();
  g_block_stats.Uncharge(&ts->stats, size);
  if (BROOM_UNLIKELY(QuarantineActive()) && ReleaseToQuarantine(ts, b)) return size;
  ReleaseFree(ts, b);
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
  auto& counter = State()->created[static_cast<int>(kind)];
  counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

void NoteRegionDestroyed(RegionKind kind) {
  auto& counter = State()->destroyed[static_cast<int>(kind)];
  counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

bool ConfigurePlan(const AddressPlan& plan) {
  if (g_chunks_created.load(std::memory_order_acquire)) return false;
  g_configured_plan = plan;
  g_plan_configured.store(true, std::memory_order_release);
  return true;
}

namespace chunk_internal {

Space& ProcessSpace() { return GetChunks().space; }

bool ChargeHeld(size_t bytes, AllocError* error) {
  return g_block_stats.Charge(&State()->stats, bytes, error);
}

void UnchargeHeld(size_t bytes) { g_block_stats.Uncharge(&State()->stats, bytes); }

void ReleaseFreeBlock(BlockHeader* b) { ReleaseFree(State(), b); }

}  // namespace chunk_internal

PlanState GetPlanState() {
  const Space& space = GetChunks().space;
  return {space.plan(), space.requested_plan(), space.plan_problem(), space.plan_errno()};
}

uint64_t NextRegionId() {
  static std::atomic<uint64_t> next_range{1};
  ThreadState* ts = State();
  if (BROOM_UNLIKELY(ts->next_id == ts->id_limit)) {
    ts->next_id = next_range.fetch_add(kIdRange, std::memory_order_relaxed);
    ts->id_limit = ts->next_id + kIdRange;
  }
  return ts->next_id++;
}

}  // namespace broom::internal

namespace broom {

using internal::g_block_stats;
using internal::GetChunks;
using internal::t_state;

GlobalStats GetGlobalStats() {
  internal::Chunks& chunks = GetChunks();
  GlobalStats s;
  chunks.SumThreads(&s);
  const internal::PoolStats pool = chunks.pool.Stats();
  s.cached_bytes = pool.dirty_bytes + s.thread_cache_bytes;
  s.purged_bytes = pool.purged_bytes;
  s.retain_target_bytes = pool.retain_target_bytes;
  s.purges = pool.purges;
  s.reserved_bytes = chunks.space.slice_bytes();
  s.committed_bytes = chunks.space.committed_bytes();
  const internal::BlockStats::Local* own = t_state != nullptr ? &t_state->stats : nullptr;
  s.block_bytes = g_block_stats.held(own);
  s.peak_block_bytes = g_block_stats.peak(own);
  return s;
}

void SetRetention(const RetentionPolicy& policy) { GetChunks().pool.SetRetention(policy); }
RetentionPolicy GetRetention() { return GetChunks().pool.retention(); }

void SetProcessBudget(size_t bytes) { g_block_stats.set_budget(bytes); }
size_t ProcessBudget() { return g_block_stats.budget(); }

size_t ReleaseFreeMemory(bool all) {
  FlushThreadCache();
  return GetChunks().pool.ReleaseFreeMemory(all);
}

void FlushThreadCache() {
  if (t_state != nullptr) t_state->cache.Flush();
}

void EnableQuarantine(const QuarantinePolicy& policy) {
  internal::QuarantineStart(&GetChunks().space, policy);
}

void DisableQuarantine() {
  internal::QuarantineStop();
  internal::ThreadState* ts = internal::State();
  while (internal::BlockHeader* b = internal::QuarantineTakeOldest()) internal::ReleaseFree(ts, b);
}

bool QuarantineEnabled() { return internal::QuarantineActive(); }

}  // namespace broom
