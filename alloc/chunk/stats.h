// Copyright Broom authors. Layer 1 (chunk): the counters of block bytes held by regions.
//
//   BlockStats        process-wide: bytes of blocks held by all regions, their peak, and the
//                     process budget (SetProcessBudget) that charging enforces.
//   BlockStats::Local one thread's share: bytes charged and uncharged by the thread that are not
//                     folded into the process counter yet, and the highest value that reached.
//                     Folded every kFold bytes either way, at thread exit, and on every charge
//                     while a budget is set (so the budget is exact). The peak is folded with
//                     it, so it is exact when one thread allocates, and within kFold per thread
//                     otherwise.
//
// Ownership: the process has one BlockStats (never destroyed); each thread state owns a Local.
// Thread-safety: BlockStats is thread-safe; a Local belongs to one thread (owner only).
#ifndef BROOM_ALLOC_CHUNK_STATS_H_
#define BROOM_ALLOC_CHUNK_STATS_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "broom/internal/base.h"
#include "broom/region.h"

namespace broom::internal {

class BlockStats {
 public:
  static constexpr int64_t kFold = int64_t{1} << 20;

  struct Local {
    int64_t delta = 0;      // charged minus uncharged since the last fold
    int64_t max_delta = 0;  // the highest `delta` since the last fold (>= 0)
  };

  constexpr BlockStats() = default;

  // Charges `bytes` to the thread's share. Fails with *error = kProcessBudget (charging
  // nothing) if a budget is set and the process total would exceed it. Cheap without a budget:
  // thread-local arithmetic and a compare.
  bool Charge(Local* local, size_t bytes, AllocError* error) {
    if (BROOM_LIKELY(budget_.load(std::memory_order_relaxed) == 0)) {
      local->delta += static_cast<int64_t>(bytes);
      if (local->delta > local->max_delta) local->max_delta = local->delta;
      if (BROOM_UNLIKELY(local->delta >= kFold)) Fold(local);
      return true;
    }
    return ChargeWithBudget(local, bytes, error);
  }
  void Uncharge(Local* local, size_t bytes) {
    local->delta -= static_cast<int64_t>(bytes);
    if (BROOM_UNLIKELY(local->delta <= -kFold || budget_.load(std::memory_order_relaxed) != 0)) {
      Fold(local);
    }
  }
  // Moves the thread's share into the process counters (and its peak into the peak).
  void Fold(Local* local);

  // Bytes held by all regions, and the peak, as the calling thread sees them (`caller` is its
  // own share, or null).
  size_t held(const Local* caller) const;
  size_t peak(const Local* caller) const;

  void set_budget(size_t bytes) { budget_.store(bytes, std::memory_order_relaxed); }
  size_t budget() const { return budget_.load(std::memory_order_relaxed); }

 private:
  bool ChargeWithBudget(Local* local, size_t bytes, AllocError* error);
  void RaisePeak(int64_t v);

  std::atomic<int64_t> held_{0};
  std::atomic<int64_t> peak_{0};
  std::atomic<size_t> budget_{0};
};

}  // namespace broom::internal

#endif  // BROOM_ALLOC_CHUNK_STATS_H_
