// Copyright Broom authors.
//
// stats.h: counters of the runtime shims (process-wide), next to broom::GetGlobalStats().
//
//   ShimStats            plain snapshot of the counters.
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

struct ShimStats {
  uint64_t handle_copies = 0;        // copies of the engine's ref-counted batch handle
  uint64_t handle_shared_takes = 0;  // takes of a shared handle (forced a deep clone)
  uint64_t batches_sent = 0;         // batches handed to the engine for delivery
  uint64_t batches_received = 0;     // batches delivered to an operator callback
  uint64_t envelopes_created = 0;    // batch arenas created (fresh outputs, remote rebuilds)
  uint64_t envelopes_destroyed = 0;
  uint64_t peak_live_envelopes = 0;  // high-water mark of created - destroyed
  uint64_t remote_batches_out = 0;   // batches serialized for another process
  uint64_t remote_batches_in = 0;    // batches rebuilt from bytes
  uint64_t remote_bytes_out = 0;
  uint64_t remote_bytes_in = 0;
  uint64_t credit_stalls = 0;   // times an instance stopped because an edge had no credit
  uint64_t peak_in_flight = 0;  // most batches ever outstanding on one edge (sent, not
                                // yet credited back by the receiver)
  std::string ToString() const;
};

ShimStats GetShimStats();
void ResetShimStats();

namespace internal {
struct ShimCounters {
  std::atomic<uint64_t> handle_copies{0}, handle_shared_takes{0}, batches_sent{0},
      batches_received{0}, envelopes_created{0}, envelopes_destroyed{0}, peak_live_envelopes{0},
      remote_batches_out{0}, remote_batches_in{0}, remote_bytes_out{0}, remote_bytes_in{0},
      credit_stalls{0}, peak_in_flight{0};
};
extern ShimCounters g_shim_counters;

inline void Bump(std::atomic<uint64_t>& c, uint64_t n = 1) {
  c.fetch_add(n, std::memory_order_relaxed);
}
inline void RaiseTo(std::atomic<uint64_t>& c, uint64_t v) {
  uint64_t cur = c.load(std::memory_order_relaxed);
  while (v > cur && !c.compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
  }
}
void NoteEnvelopeCreated();
inline void NoteEnvelopeDestroyed() { Bump(g_shim_counters.envelopes_destroyed); }
}  // namespace internal

}  // namespace broom::lifecycle

#endif  // BROOM_LIFECYCLE_STATS_H_
