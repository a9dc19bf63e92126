// Copyright Broom authors. Layer 1 (chunk): the pool of free blocks and runs.
//
//   Pool<Below>   every free block and run not in a thread cache, and what the process keeps of
//                 them. Below is the space (alloc/chunk/space.h) in the process and a fake in
//                 tests (tests/unit/chunk/fake_space.h): the pool's only contact with memory it
//                 does not own. Member definitions: pool_impl.h.
//
// What the pool holds, and how it keeps memory following the working set:
//   * Class chunks: a chunk carved into blocks of one class has a record (a bitmap of its blocks
//     in the pool, and of those purged). A class's chunks with free blocks are on its `partial`
//     list (the chunk that got a block back most recently first, so reuse is hot); a chunk whose
//     blocks are all free is `idle`. Refills take partial chunks first, dirty blocks before
//     purged ones, in address order.
//   * Runs: free chunks not carved into blocks, in two address-ordered sets, dirty (resident) and
//     purged. A run released next to a free run of the same set is merged with it, in the middle
//     of the set as well as at its ends. A request for a run takes the best fit.
//   * Idle chunks go back to the runs when the memory is wanted in another shape: a run request,
//     or a refill of a class with nothing free, merges them first; decay purges them whole. So
//     no class keeps memory it does not use, and 1 KiB / 2 KiB blocks, which cannot be purged
//     one by one, are returned with their chunk.
//   * Fresh chunks are carved at the space's frontier only when nothing free fits; a free run
//     ending at the frontier is extended rather than left behind. When the space grows although
//     warm free memory is there, that memory has just shown it does not fit what is asked for:
//     as much of it as the space grew is purged (oldest first, down to retained_min_bytes), so
//     fragmentation does not add to resident memory.
//   * Retention (RetentionPolicy, broom/memory.h): the pool measures the memory in use outside it
//     (carved bytes minus its free bytes: blocks held by regions, thread caches, quarantine) and
//     keeps the peak of that over the last `peak_window_ms`. It keeps warm the free memory needed
//     to return to that peak (recent peak - in use now), at least `retained_min_bytes` and at
//     most `retained_cap_bytes`; free memory above that which has been free for `decay_ms` is
//     purged (madvise), oldest first. Checked on releases, at most every kDecayCheckMs.
//
// Ownership: the process's pool lives as long as the process (never destroyed); a test's pool
// must not outlive its Below. Blocks and runs in the pool have owner == null.
// Thread-safety: thread-safe; one mutex guards everything (callers batch: a thread cache moves
// half its capacity per call).
#ifndef BROOM_ALLOC_CHUNK_POOL_H_
#define BROOM_ALLOC_CHUNK_POOL_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "alloc/os/heap.h"
#include "alloc/os/mutex.h"
#include "broom/internal/block.h"
#include "broom/memory.h"
#include "broom/region.h"

namespace broom::internal {

// What Pool needs from the layer below (the real Space, or a fake):
//   char* base(); size_t chunks(); char* frontier(); size_t carved_bytes();
//   char* Carve(size_t chunks, AllocError*);   contiguous fresh chunks at the frontier, zeroed
//   void SetMap(char* chunk, size_t chunks, uintptr_t word);
//   void Purge(void*, size_t);  uint64_t NowMs();  void* MapZeroed(size_t);

struct PoolStats {
  size_t dirty_bytes = 0;          // free and resident: reusable without page faults
  size_t purged_bytes = 0;         // free and not resident (purged, or carved and never touched)
  size_t in_use_bytes = 0;         // carved minus free: held by regions, thread caches, quarantine
  size_t recent_peak_bytes = 0;    // peak of in_use_bytes over the last peak_window_ms
  size_t retain_target_bytes = 0;  // dirty bytes the pool keeps now (see the file comment)
  size_t free_runs = 0;            // entries in both run sets
  uint64_t purges = 0;             // madvise calls
};

template <class Below>
class Pool {
 public:
  static constexpr uint64_t kDecayCheckMs = 10;
  static constexpr int kMaxBatch = 256;  // most blocks one AcquireBlocks call moves

  explicit Pool(Below* below);
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // Moves up to `want` (1..kMaxBatch) free blocks of class `c` to `out` and returns how many:
  // out[n - 1] should be handed out first (address order then follows allocation order). Each
  // block has owner == null; nothing else in its header is initialized. Returns 0 with *error
  // = kOutOfMemory if there is no block and the space cannot grow.
  int AcquireBlocks(int c, BlockHeader** out, int want, AllocError* error) ABSL_LOCKS_EXCLUDED(mu_);
  // Takes back `n` blocks of class `c` (owner already null). REQUIRES: each came from this pool
  // and is not in it.
  void ReleaseBlocks(int c, BlockHeader* const* blocks, int n) ABSL_LOCKS_EXCLUDED(mu_);

  // A run of `chunks` chunks (>= 1): its map words point at its header, whose owner is null.
  // Null with *error = kOutOfMemory if nothing fits and the space cannot grow.
  BlockHeader* AcquireRun(size_t chunks, AllocError* error) ABSL_LOCKS_EXCLUDED(mu_);
  // Takes back a run (b->size is its size; owner already null); its map words become 0.
  void ReleaseRun(BlockHeader* b) ABSL_LOCKS_EXCLUDED(mu_);

  // Purges free memory now, ignoring decay: all of it, or what is above the retention target.
  // Returns the bytes purged.
  size_t ReleaseFreeMemory(bool all) ABSL_LOCKS_EXCLUDED(mu_);

  void SetRetention(const RetentionPolicy& policy) ABSL_LOCKS_EXCLUDED(mu_);
  RetentionPolicy retention() ABSL_LOCKS_EXCLUDED(mu_);
  PoolStats Stats() ABSL_LOCKS_EXCLUDED(mu_);

  // fork(): the lock is held across fork so the child never inherits it mid-update.
  void LockForFork() ABSL_NO_THREAD_SAFETY_ANALYSIS { mu_.Lock(); }
  void UnlockAfterFork() ABSL_NO_THREAD_SAFETY_ANALYSIS { mu_.Unlock(); }

 private:
  static constexpr uint32_t kNil = 0xffffffff;
  static constexpr int kSlices = 4;  // the peak window is kept as this many slices
  enum : uint8_t { kNoList = 0, kPartialList, kIdleList };

  struct ChunkRecord {
    uint64_t free[4];    // bit i: block i of the chunk is in the pool
    uint64_t purged[4];  // bit i: block i is in the pool and not resident (subset of free)
    uint64_t time_ms;    // when a block of the chunk last came back
    uint32_t next;       // links in its class's partial or idle list
    uint32_t prev;
    uint16_t free_count;
    uint16_t purged_count;
    uint8_t carved;       // 1 while the chunk is carved into blocks
    uint8_t block_class;  // valid while carved
    uint8_t list;         // kNoList, kPartialList, kIdleList
  };
  struct Run {
    char* base;
    size_t chunks;
    uint64_t time_ms;  // when (the newest part of) it became free
  };
  using RunSet = std::vector<Run, MetaAllocator<Run>>;
  struct PurgeCandidate {
    uint64_t time_ms;
    uint32_t chunk;  // a class chunk's index, or kNil for a run
    char* run_base;  // runs: the run (looked up again: purging earlier ones may merge it)
  };

  // Chunk records and lists.
  uint32_t IndexOf(const void* p) const;
  char* ChunkAt(uint32_t i) const;
  void Unlink(uint32_t i) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PushFront(uint32_t i, uint8_t list) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint32_t* ListHead(int c, uint8_t list) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Takes free blocks of chunk i into out[n..want); returns the new n.
  int TakeFromChunk(uint32_t i, BlockHeader** out, int n, int want)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Makes a chunk of blocks of class c (all free, on the idle list) from a run or fresh space.
  bool AddChunkForClass(int c, AllocError* error) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Moves every idle chunk (of any class) to the runs. Returns the chunks moved.
  size_t MergeIdleChunks() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void IdleChunkToRuns(uint32_t i) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Runs.
  void InsertRun(RunSet* set, char* base, size_t chunks, uint64_t time_ms)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  char* TakeBestFit(RunSet* set, size_t chunks) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  char* ExtendAtFrontier(size_t chunks, AllocError* error) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Retention and decay.
  void NoteInUse() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AdvanceWindow(uint64_t now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  size_t InUse() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  size_t RecentPeak() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  size_t RetainTarget() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MaybeDecay(uint64_t now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The space grew by `grown` bytes although warm free memory was there: it did not fit, so as
  // much of it is purged (oldest first, down to retained_min_bytes).
  void OffsetGrowth(size_t grown) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Purges at least `bytes` of dirty memory if there is that much (older than decay_ms unless
  // `ignore_age`), oldest first. Returns the bytes purged.
  size_t PurgeOldest(size_t bytes, uint64_t now, bool ignore_age)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  size_t PurgeRun(char* base, size_t max_bytes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  size_t PurgeChunk(uint32_t i) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Below* const below_;
  ChunkRecord* records_;  // one per chunk of the space, zeroed (lazily committed)
  Mutex mu_;
  uint32_t partial_[kNumBlockClasses] ABSL_GUARDED_BY(mu_);
  uint32_t idle_[kNumBlockClasses] ABSL_GUARDED_BY(mu_);
  RunSet dirty_runs_ ABSL_GUARDED_BY(mu_);   // sorted by base, no two adjacent
  RunSet purged_runs_ ABSL_GUARDED_BY(mu_);  // sorted by base, no two adjacent
  std::vector<PurgeCandidate, MetaAllocator<PurgeCandidate>> candidates_ ABSL_GUARDED_BY(mu_);
  // INVARIANT: dirty_bytes_ + purged_bytes_ == bytes of free blocks in class chunks + bytes of
  // runs in both sets; purged_bytes_ counts the purged bits and purged_runs_.
  size_t dirty_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  size_t purged_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t purges_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t last_decay_ms_ ABSL_GUARDED_BY(mu_) = 0;
  RetentionPolicy policy_ ABSL_GUARDED_BY(mu_);
  size_t slice_peak_[kSlices] ABSL_GUARDED_BY(mu_) = {};
  int slice_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t slice_start_ms_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace broom::internal

#endif  // BROOM_ALLOC_CHUNK_POOL_H_
