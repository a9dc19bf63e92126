// Copyright Broom authors.
//
// stats.h: counters of the runtime shims (process-wide), next to broom::GetGlobalStats().
//
//   ArenaCounts          per arena use (message, operator state, epoch state; arena.h): arenas
//                        created and freed, most alive at once, the largest footprint of one
//                        arena and the destructors that freeing ran. The last two are exact
//                        per-region statistics (RegionStats), so they are right at any size.
//   ShimStats            plain snapshot of all counters.
//   GetShimStats()       reads them; ResetShimStats() zeroes them (between jobs in one process).
//   internal::ShimCounters  the atomics the shims bump (relaxed; a batch costs a few of them).
//
// Thread-safety: every function is thread-safe; a snapshot taken while a job runs is a racy
// but per-counter-consistent view.
#ifndef BROOM_LIFECYCLE_STATS_H_
#define BROOM_LIFECYCLE_STATS_H_

#include <atomic>
#include <cstdint>
#include <string>

namespace broom::lifecycle {

inline constexpr int kNumArenaUses = 3;  // the values of ArenaUse (arena.h)

struct ArenaCounts {
  uint64_t created = 0;
  uint64_t freed = 0;
  uint64_t peak_live = 0;   // most arenas of this use alive at once
  uint64_t peak_bytes = 0;  // largest peak footprint (bytes of blocks) of one freed arena;
                            // region arenas only, 0 under the heap and gc policies
  uint64_t cleanups = 0;    // destructors (broom::New objects never deleted) run when freed
  uint64_t live() const { return created - freed; }
};

struct ShimStats {
  uint64_t handle_copies = 0;        // copies of the engine's ref-counted batch handle
  uint64_t handle_shared_takes = 0;  // takes of a shared handle (forced a deep clone)
  uint64_t batches_sent = 0;         // batches handed to the engine for delivery
  uint64_t batches_received = 0;     // batches delivered to an operator callback
  uint64_t remote_batches_out = 0;   // batches serialized for another process
  uint64_t remote_batches_in = 0;    // batches rebuilt from bytes
  uint64_t remote_bytes_out = 0;
  uint64_t remote_bytes_in = 0;
  uint64_t credit_stalls = 0;         // times an instance stopped because an edge had no credit
  uint64_t peak_in_flight = 0;        // most batches ever outstanding on one edge (sent, not
                                      // yet credited back by the receiver)
  uint64_t state_checks = 0;          // checked mode: scans of operator state (StateChecks)
  uint64_t state_bytes_scanned = 0;   // bytes those scans read
  ArenaCounts arenas[kNumArenaUses];  // indexed by ArenaUse; [kMessage] counts batches
  // Callback scratch: one per thread that ran callbacks (a temporary region under "regions"),
  // kept for that thread's later callbacks and destroyed at thread exit or by
  // ReleaseThreadScratch().
  uint64_t scratch_created = 0;
  uint64_t scratch_destroyed = 0;
  uint64_t scratch_cleanups = 0;  // destructors run at callback exits (regions policy)

  const ArenaCounts& messages() const { return arenas[0]; }
  uint64_t scratch_live() const { return scratch_created - scratch_destroyed; }
  std::string ToString() const;
};

ShimStats GetShimStats();
void ResetShimStats();

namespace internal {
struct ArenaCounters {
  std::atomic<uint64_t> created{0}, freed{0}, peak_live{0}, peak_bytes{0}, cleanups{0};
};
struct ShimCounters {
  std::atomic<uint64_t> handle_copies{0}, handle_shared_takes{0}, batches_sent{0},
      batches_received{0}, remote_batches_out{0}, remote_batches_in{0}, remote_bytes_out{0},
      remote_bytes_in{0}, credit_stalls{0}, peak_in_flight{0}, state_checks{0},
      state_bytes_scanned{0};
  ArenaCounters arenas[kNumArenaUses];
  std::atomic<uint64_t> scratch_created{0}, scratch_destroyed{0}, scratch_cleanups{0};
};
extern ShimCounters g_shim_counters;

inline void AddTo(std::atomic<uint64_t>& c, uint64_t n = 1) {
  c.fetch_add(n, std::memory_order_relaxed);
}
inline void RaiseTo(std::atomic<uint64_t>& c, uint64_t v) {
  uint64_t cur = c.load(std::memory_order_relaxed);
  while (v > cur && !c.compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
  }
}
void NoteArenaCreated(int use);
void NoteArenaFreed(int use, uint64_t peak_bytes, uint64_t cleanups);
}  // namespace internal

}  // namespace broom::lifecycle

#endif  // BROOM_LIFECYCLE_STATS_H_
