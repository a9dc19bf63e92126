// Copyright Broom authors. Layer 1 (chunk): the member definitions of Pool<Below> (pool.h): a .cc
// in all but name (a template's definitions), included only by the process wiring
// (chunk_space.cc) and by tests that build a pool on a fake.
#ifndef BROOM_ALLOC_CHUNK_POOL_IMPL_H_
#define BROOM_ALLOC_CHUNK_POOL_IMPL_H_

#include <algorithm>
#include <bit>

#include "alloc/chunk/pool.h"
#include "broom/internal/base.h"

namespace broom::internal {

namespace pool_internal {

inline constexpr int BlocksPerChunk(int c) { return static_cast<int>(kChunkSize >> (10 + c)); }
// Blocks purged together: a block, or for blocks below a page, the blocks sharing a page.
inline constexpr int BlocksPerPurgeUnit(int c) {
  return BlockClassSize(c) >= kPageSize ? 1 : static_cast<int>(kPageSize / BlockClassSize(c));
}
inline bool TestBit(const uint64_t* bits, int k) { return (bits[k >> 6] >> (k & 63)) & 1; }

}  // namespace pool_internal

template <class Below>
Pool<Below>::Pool(Below* below) : below_(below) {
  const size_t bytes = below->chunks() * sizeof(ChunkRecord);
  records_ = static_cast<ChunkRecord*>(below->MapZeroed(bytes));
  BROOM_CHECK(records_ != nullptr, "cannot map the pool's chunk records (%zu bytes)", bytes);
  MutexLock lock(&mu_);
  for (int c = 0; c < kNumBlockClasses; ++c) partial_[c] = idle_[c] = kNil;
  slice_start_ms_ = below->NowMs();
}

// ---- chunk records and lists ----------------------------------------------------------------

template <class Below>
uint32_t Pool<Below>::IndexOf(const void* p) const {
  return static_cast<uint32_t>((static_cast<const char*>(p) - below_->base()) >> kChunkShift);
}

template <class Below>
char* Pool<Below>::ChunkAt(uint32_t i) const {
  return below_->base() + (static_cast<size_t>(i) << kChunkShift);
}

template <class Below>
uint32_t* Pool<Below>::ListHead(int c, uint8_t list) {
  return list == kPartialList ? &partial_[c] : &idle_[c];
}

template <class Below>
void Pool<Below>::Unlink(uint32_t i) {
  ChunkRecord& r = records_[i];
  if (r.prev != kNil) {
    records_[r.prev].next = r.next;
  } else {
    *ListHead(r.block_class, r.list) = r.next;
  }
  if (r.next != kNil) records_[r.next].prev = r.prev;
  r.list = kNoList;
}

template <class Below>
void Pool<Below>::PushFront(uint32_t i, uint8_t list) {
  ChunkRecord& r = records_[i];
  uint32_t* head = ListHead(r.block_class, list);
  r.list = list;
  r.prev = kNil;
  r.next = *head;
  if (*head != kNil) records_[*head].prev = i;
  *head = i;
}

template <class Below>
int Pool<Below>::TakeFromChunk(uint32_t i, BlockHeader** out, int n, int want) {
  ChunkRecord& r = records_[i];
  const int c = r.block_class;
  const size_t size = BlockClassSize(c);
  const int words = (pool_internal::BlocksPerChunk(c) + 63) / 64;
  const int unit = pool_internal::BlocksPerPurgeUnit(c);
  char* const chunk = ChunkAt(i);
  // The lowest resident free block, else the lowest purged one (whose page-mates it makes
  // resident, so they come next).
  while (n < want && r.free_count > 0) {
    int w = 0;
    uint64_t bits = 0;
    for (; w < words && (bits = r.free[w] & ~r.purged[w]) == 0; ++w) {
    }
    const bool resident = w < words;
    if (!resident) {
      for (w = 0; w < words && (bits = r.purged[w]) == 0; ++w) {
      }
    }
    const int b = std::countr_zero(bits);
    const uint64_t bit = uint64_t{1} << b;
    r.free[w] &= ~bit;
    --r.free_count;
    if (resident) {
      dirty_bytes_ -= size;
    } else {
      // Touching the block makes its whole page resident: its page-mates count as dirty.
      const uint64_t mates = ((uint64_t{1} << unit) - 1) << (b & ~(unit - 1));
      const int others = std::popcount(r.purged[w] & mates & ~bit);
      r.purged[w] &= ~mates;
      r.purged_count = static_cast<uint16_t>(r.purged_count - 1 - others);
      purged_bytes_ -= size * static_cast<size_t>(1 + others);
      dirty_bytes_ += size * static_cast<size_t>(others);
    }
    out[n++] = reinterpret_cast<BlockHeader*>(chunk + static_cast<size_t>(w * 64 + b) * size);
  }
  if (r.free_count == 0) {
    Unlink(i);
  } else if (r.list == kIdleList) {
    Unlink(i);
    PushFront(i, kPartialList);
  }
  return n;
}

template <class Below>
bool Pool<Below>::AddChunkForClass(int c, AllocError* error) {
  const size_t size = BlockClassSize(c);
  const int per = pool_internal::BlocksPerChunk(c);
  // Resident memory first: a dirty run, or idle chunks of other classes merged into runs.
  char* chunk = TakeBestFit(&dirty_runs_, 1);
  if (chunk == nullptr && MergeIdleChunks() > 0) chunk = TakeBestFit(&dirty_runs_, 1);
  const bool dirty = chunk != nullptr;
  bool grew = false;
  if (dirty) {
    dirty_bytes_ -= kChunkSize;
  } else if ((chunk = TakeBestFit(&purged_runs_, 1)) != nullptr) {
    purged_bytes_ -= kChunkSize;
  } else if ((chunk = below_->Carve(1, error)) != nullptr) {
    grew = true;
  } else {
    return false;
  }
  // Every block gets a free header (owner null) before the map word sends lookups to it.
  // Purged and fresh memory reads as zero already.
  for (int k = 0; k < per; ++k) {
    auto* b = reinterpret_cast<BlockHeader*>(chunk + static_cast<size_t>(k) * size);
    UnpoisonMemory(b, sizeof(BlockHeader));
    if (dirty) b->owner.store(nullptr, std::memory_order_relaxed);
  }
  const uint32_t i = IndexOf(chunk);
  ChunkRecord& r = records_[i];
  r = ChunkRecord{};
  for (int k = 0; k < per; k += 64) {
    const uint64_t bits = per - k >= 64 ? ~uint64_t{0} : (uint64_t{1} << (per - k)) - 1;
    r.free[k / 64] = bits;
    if (!dirty) r.purged[k / 64] = bits;
  }
  r.free_count = static_cast<uint16_t>(per);
  r.purged_count = dirty ? 0 : static_cast<uint16_t>(per);
  r.time_ms = last_decay_ms_;
  r.carved = 1;
  r.block_class = static_cast<uint8_t>(c);
  (dirty ? dirty_bytes_ : purged_bytes_) += kChunkSize;
  below_->SetMap(chunk, 1, CarvedMapWord(size));
  PushFront(i, kIdleList);
  if (grew) OffsetGrowth(kChunkSize);
  return true;
}

template <class Below>
size_t Pool<Below>::MergeIdleChunks() {
  size_t merged = 0;
  for (int c = 0; c < kNumBlockClasses; ++c) {
    while (idle_[c] != kNil) {
      IdleChunkToRuns(idle_[c]);
      ++merged;
    }
  }
  return merged;
}

template <class Below>
void Pool<Below>::IdleChunkToRuns(uint32_t i) {
  ChunkRecord& r = records_[i];
  Unlink(i);
  char* const chunk = ChunkAt(i);
  below_->SetMap(chunk, 1, 0);
  if (r.purged_count == r.free_count) {
    InsertRun(&purged_runs_, chunk, 1, r.time_ms);
  } else {
    // A chunk with any resident block counts as resident (an upper bound).
    const size_t purged = static_cast<size_t>(r.purged_count) * BlockClassSize(r.block_class);
    purged_bytes_ -= purged;
    dirty_bytes_ += purged;
    InsertRun(&dirty_runs_, chunk, 1, r.time_ms);
  }
  r = ChunkRecord{};
}

// ---- runs -----------------------------------------------------------------------------------

template <class Below>
void Pool<Below>::InsertRun(RunSet* set, char* base, size_t chunks, uint64_t time_ms) {
  auto it = std::lower_bound(set->begin(), set->end(), base,
                             [](const Run& r, const char* b) { return r.base < b; });
  char* const end = base + chunks * kChunkSize;
  const bool joins_next = it != set->end() && it->base == end;
  if (it != set->begin()) {
    Run& prev = *(it - 1);
    if (prev.base + prev.chunks * kChunkSize == base) {
      prev.chunks += chunks;
      prev.time_ms = std::max(prev.time_ms, time_ms);
      if (joins_next) {
        prev.chunks += it->chunks;
        prev.time_ms = std::max(prev.time_ms, it->time_ms);
        set->erase(it);
      }
      return;
    }
  }
  if (joins_next) {
    it->base = base;
    it->chunks += chunks;
    it->time_ms = std::max(it->time_ms, time_ms);
    return;
  }
  set->insert(it, Run{base, chunks, time_ms});
}

template <class Below>
char* Pool<Below>::TakeBestFit(RunSet* set, size_t chunks) {
  Run* best = nullptr;
  for (Run& r : *set) {  // address order: the lowest of the smallest that fit
    if (r.chunks >= chunks && (best == nullptr || r.chunks < best->chunks)) {
      best = &r;
      if (r.chunks == chunks) break;
    }
  }
  if (best == nullptr) return nullptr;
  char* base = best->base;
  if (best->chunks == chunks) {
    set->erase(set->begin() + (best - set->data()));
  } else {
    best->base += chunks * kChunkSize;
    best->chunks -= chunks;
  }
  return base;
}

template <class Below>
char* Pool<Below>::ExtendAtFrontier(size_t chunks, AllocError* error) {
  char* const frontier = below_->frontier();
  for (RunSet* set : {&dirty_runs_, &purged_runs_}) {
    if (set->empty()) continue;
    Run& last = set->back();
    if (last.base + last.chunks * kChunkSize != frontier || last.chunks >= chunks) continue;
    if (below_->Carve(chunks - last.chunks, error) == nullptr) return nullptr;
    char* base = last.base;
    (set == &dirty_runs_ ? dirty_bytes_ : purged_bytes_) -= last.chunks * kChunkSize;
    set->pop_back();
    return base;
  }
  return nullptr;
}

// ---- blocks and runs in and out -------------------------------------------------------------

template <class Below>
int Pool<Below>::AcquireBlocks(int c, BlockHeader** out, int want, AllocError* error) {
  BROOM_ASSERT(want >= 1 && want <= kMaxBatch);
  MutexLock lock(&mu_);
  int n = 0;
  while (n < want) {
    const uint32_t i = partial_[c] != kNil ? partial_[c] : idle_[c];
    if (i == kNil) {
      if (n > 0 || !AddChunkForClass(c, error)) break;  // a new chunk only when nothing is free
      continue;
    }
    n = TakeFromChunk(i, out, n, want);
  }
  if (n > 0) {
    std::reverse(out, out + n);  // the lowest block is handed out first
    NoteInUse();
  }
  return n;
}

template <class Below>
void Pool<Below>::ReleaseBlocks(int c, BlockHeader* const* blocks, int n) {
  const size_t size = BlockClassSize(c);
  const int per = pool_internal::BlocksPerChunk(c);
  const uint64_t now = below_->NowMs();
  MutexLock lock(&mu_);
  for (int j = 0; j < n; ++j) {
    char* const p = reinterpret_cast<char*>(blocks[j]);
    const uint32_t i = IndexOf(p);
    ChunkRecord& r = records_[i];
    const int k = static_cast<int>(static_cast<size_t>(p - ChunkAt(i)) / size);
    BROOM_ASSERT(r.carved && r.block_class == c && !pool_internal::TestBit(r.free, k));
    r.free[k >> 6] |= uint64_t{1} << (k & 63);
    ++r.free_count;
    r.time_ms = now;
    // The chunk that got a block back most recently is refilled from first (hot reuse).
    const uint8_t list = r.free_count == per ? kIdleList : kPartialList;
    if (r.list != list || *ListHead(c, list) != i) {
      if (r.list != kNoList) Unlink(i);
      PushFront(i, list);
    }
  }
  dirty_bytes_ += size * static_cast<size_t>(n);
  MaybeDecay(now);
}

template <class Below>
BlockHeader* Pool<Below>::AcquireRun(size_t chunks, AllocError* error) {
  const size_t bytes = chunks * kChunkSize;
  MutexLock lock(&mu_);
  const size_t carved = below_->carved_bytes();
  char* base = TakeBestFit(&dirty_runs_, chunks);
  if (base == nullptr && MergeIdleChunks() > 0) base = TakeBestFit(&dirty_runs_, chunks);
  if (base != nullptr) {
    dirty_bytes_ -= bytes;
  } else if ((base = TakeBestFit(&purged_runs_, chunks)) != nullptr) {
    purged_bytes_ -= bytes;
  } else if ((base = ExtendAtFrontier(chunks, error)) == nullptr) {
    base = below_->Carve(chunks, error);
    if (base == nullptr) return nullptr;
  }
  // The header is valid (owner null) before the map words send lookups to it.
  auto* b = reinterpret_cast<BlockHeader*>(base);
  UnpoisonMemory(b, sizeof(BlockHeader));
  b->owner.store(nullptr, std::memory_order_relaxed);
  below_->SetMap(base, chunks, reinterpret_cast<uintptr_t>(b));
  NoteInUse();
  if (below_->carved_bytes() > carved) OffsetGrowth(below_->carved_bytes() - carved);
  return b;
}

template <class Below>
void Pool<Below>::ReleaseRun(BlockHeader* b) {
  char* const base = reinterpret_cast<char*>(b);
  const size_t chunks = b->size / kChunkSize;
  below_->SetMap(base, chunks, 0);
  const uint64_t now = below_->NowMs();
  MutexLock lock(&mu_);
  InsertRun(&dirty_runs_, base, chunks, now);
  dirty_bytes_ += chunks * kChunkSize;
  MaybeDecay(now);
}

// ---- retention and decay --------------------------------------------------------------------

template <class Below>
size_t Pool<Below>::InUse() const {
  return below_->carved_bytes() - dirty_bytes_ - purged_bytes_;
}

template <class Below>
void Pool<Below>::NoteInUse() {
  slice_peak_[slice_] = std::max(slice_peak_[slice_], InUse());
}

template <class Below>
void Pool<Below>::AdvanceWindow(uint64_t now) {
  const uint64_t slice_ms = policy_.peak_window_ms / kSlices;
  const size_t in_use = InUse();
  if (slice_ms == 0) {  // no window: the peak is what is in use now
    std::fill(slice_peak_, slice_peak_ + kSlices, in_use);
    slice_start_ms_ = now;
    return;
  }
  if (now < slice_start_ms_ + slice_ms) return;
  const uint64_t steps = (now - slice_start_ms_) / slice_ms;
  for (uint64_t s = 0; s < std::min<uint64_t>(steps, kSlices); ++s) {
    slice_ = (slice_ + 1) % kSlices;
    slice_peak_[slice_] = in_use;
  }
  slice_start_ms_ += steps * slice_ms;
}

template <class Below>
size_t Pool<Below>::RecentPeak() const {
  return std::max(*std::max_element(slice_peak_, slice_peak_ + kSlices), InUse());
}

template <class Below>
size_t Pool<Below>::RetainTarget() const {
  const size_t need = RecentPeak() - InUse();
  return std::min(std::max(need, policy_.retained_min_bytes), policy_.retained_cap_bytes);
}

template <class Below>
void Pool<Below>::MaybeDecay(uint64_t now) {
  if (now - last_decay_ms_ < kDecayCheckMs) return;
  last_decay_ms_ = now;
  AdvanceWindow(now);
  const size_t target = RetainTarget();
  if (dirty_bytes_ > target) PurgeOldest(dirty_bytes_ - target, now, /*ignore_age=*/false);
}

template <class Below>
void Pool<Below>::OffsetGrowth(size_t grown) {
  if (dirty_bytes_ <= policy_.retained_min_bytes) return;
  PurgeOldest(std::min(grown, dirty_bytes_ - policy_.retained_min_bytes), below_->NowMs(),
              /*ignore_age=*/true);
}

template <class Below>
size_t Pool<Below>::PurgeOldest(size_t bytes, uint64_t now, bool ignore_age) {
  const uint64_t decay = policy_.decay_ms;
  auto old_enough = [&](uint64_t t) { return ignore_age || (now >= t && now - t >= decay); };
  candidates_.clear();
  for (const Run& r : dirty_runs_) {
    if (old_enough(r.time_ms)) candidates_.push_back({r.time_ms, kNil, r.base});
  }
  for (int c = 0; c < kNumBlockClasses; ++c) {
    for (uint32_t head : {partial_[c], idle_[c]}) {
      for (uint32_t i = head; i != kNil; i = records_[i].next) {
        const ChunkRecord& r = records_[i];
        if (r.free_count > r.purged_count && old_enough(r.time_ms)) {
          candidates_.push_back({r.time_ms, i, nullptr});
        }
      }
    }
  }
  std::sort(candidates_.begin(), candidates_.end(),
            [](const PurgeCandidate& a, const PurgeCandidate& b) { return a.time_ms < b.time_ms; });
  size_t purged = 0;
  for (const PurgeCandidate& cand : candidates_) {
    if (purged >= bytes) break;
    purged += cand.chunk == kNil ? PurgeRun(cand.run_base, bytes - purged) : PurgeChunk(cand.chunk);
  }
  return purged;
}

template <class Below>
size_t Pool<Below>::PurgeRun(char* base, size_t max_bytes) {
  auto it = std::lower_bound(dirty_runs_.begin(), dirty_runs_.end(), base,
                             [](const Run& r, const char* b) { return r.base < b; });
  if (it == dirty_runs_.end() || it->base != base) return 0;
  // The run's top part, as much as is asked (whole chunks); the rest stays warm.
  const size_t chunks = std::min(it->chunks, (max_bytes + kChunkSize - 1) / kChunkSize);
  const size_t bytes = chunks * kChunkSize;
  char* const top = it->base + (it->chunks - chunks) * kChunkSize;
  const uint64_t time_ms = it->time_ms;
  if (chunks == it->chunks) {
    dirty_runs_.erase(it);
  } else {
    it->chunks -= chunks;
  }
  below_->Purge(top, bytes);
  ++purges_;
  dirty_bytes_ -= bytes;
  purged_bytes_ += bytes;
  InsertRun(&purged_runs_, top, chunks, time_ms);
  return bytes;
}

template <class Below>
size_t Pool<Below>::PurgeChunk(uint32_t i) {
  ChunkRecord& r = records_[i];
  const int c = r.block_class;
  const size_t size = BlockClassSize(c);
  const int per = pool_internal::BlocksPerChunk(c);
  char* const chunk = ChunkAt(i);
  if (r.free_count == per) {  // idle: the whole chunk in one call, then it becomes a run
    const size_t bytes = static_cast<size_t>(per - r.purged_count) * size;
    below_->Purge(chunk, kChunkSize);
    ++purges_;
    dirty_bytes_ -= bytes;
    purged_bytes_ += bytes;
    r.purged_count = r.free_count;
    IdleChunkToRuns(i);
    return bytes;
  }
  // Free units (blocks, or whole pages of small blocks) not purged yet; neighbours in one call.
  const int unit = pool_internal::BlocksPerPurgeUnit(c);
  const uint64_t unit_mask = (uint64_t{1} << unit) - 1;
  size_t purged = 0;
  uint64_t calls = 0;
  char* span = nullptr;
  size_t span_bytes = 0;
  auto flush = [&] {
    if (span_bytes == 0) return;
    below_->Purge(span, span_bytes);
    ++calls;
    span = nullptr;
    span_bytes = 0;
  };
  for (int k = 0; k < per; k += unit) {
    const int w = k >> 6;
    const uint64_t m = unit_mask << (k & 63);
    if ((r.free[w] & m) != m || (r.purged[w] & m) == m) {
      flush();
      continue;
    }
    const int count = std::popcount(m & ~r.purged[w]);
    r.purged[w] |= m;
    r.purged_count = static_cast<uint16_t>(r.purged_count + count);
    purged += static_cast<size_t>(count) * size;
    if (span == nullptr) span = chunk + static_cast<size_t>(k) * size;
    span_bytes += static_cast<size_t>(unit) * size;
  }
  flush();
  purges_ += calls;
  dirty_bytes_ -= purged;
  purged_bytes_ += purged;
  return purged;
}

// ---- policy and stats -----------------------------------------------------------------------

template <class Below>
size_t Pool<Below>::ReleaseFreeMemory(bool all) {
  MutexLock lock(&mu_);
  const uint64_t now = below_->NowMs();
  AdvanceWindow(now);
  const size_t target = all ? 0 : RetainTarget();
  if (dirty_bytes_ <= target) return 0;
  return PurgeOldest(dirty_bytes_ - target, now, /*ignore_age=*/true);
}

template <class Below>
void Pool<Below>::SetRetention(const RetentionPolicy& policy) {
  MutexLock lock(&mu_);
  policy_ = policy;
}

template <class Below>
RetentionPolicy Pool<Below>::retention() {
  MutexLock lock(&mu_);
  return policy_;
}

template <class Below>
PoolStats Pool<Below>::Stats() {
  MutexLock lock(&mu_);
  PoolStats s;
  s.dirty_bytes = dirty_bytes_;
  s.purged_bytes = purged_bytes_;
  s.in_use_bytes = InUse();
  s.recent_peak_bytes = RecentPeak();
  s.retain_target_bytes = RetainTarget();
  s.free_runs = dirty_runs_.size() + purged_runs_.size();
  s.purges = purges_;
  return s;
}

}  // namespace broom::internal

#endif  // BROOM_ALLOC_CHUNK_POOL_IMPL_H_
