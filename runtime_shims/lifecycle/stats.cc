// Copyright Broom authors.
#include "broom/lifecycle/stats.h"

#include <cstdio>

namespace broom::lifecycle {
namespace internal {
ShimCounters g_shim_counters;

void NoteArenaCreated(int use) {
  ArenaCounters& c = g_shim_counters.arenas[use];
  uint64_t created = c.created.fetch_add(1, std::memory_order_relaxed) + 1;
  uint64_t freed = c.freed.load(std::memory_order_relaxed);
  if (created > freed) RaiseTo(c.peak_live, created - freed);
}

void NoteArenaFreed(int use, uint64_t peak_bytes, uint64_t cleanups) {
  ArenaCounters& c = g_shim_counters.arenas[use];
  AddTo(c.freed);
  RaiseTo(c.peak_bytes, peak_bytes);
  if (cleanups != 0) AddTo(c.cleanups, cleanups);
}
}  // namespace internal

namespace {
uint64_t Get(const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); }
}  // namespace

ShimStats GetShimStats() {
  auto& c = internal::g_shim_counters;
  ShimStats s;
  s.handle_copies = Get(c.handle_copies);
  s.handle_shared_takes = Get(c.handle_shared_takes);
  s.batches_sent = Get(c.batches_sent);
  s.batches_received = Get(c.batches_received);
  s.remote_batches_out = Get(c.remote_batches_out);
  s.remote_batches_in = Get(c.remote_batches_in);
  s.remote_bytes_out = Get(c.remote_bytes_out);
  s.remote_bytes_in = Get(c.remote_bytes_in);
  s.credit_stalls = Get(c.credit_stalls);
  s.peak_in_flight = Get(c.peak_in_flight);
  s.state_checks = Get(c.state_checks);
  s.state_bytes_scanned = Get(c.state_bytes_scanned);
  for (int u = 0; u < kNumArenaUses; ++u) {
    const internal::ArenaCounters& a = c.arenas[u];
    s.arenas[u] = ArenaCounts{Get(a.created), Get(a.freed), Get(a.peak_live), Get(a.peak_bytes),
                              Get(a.cleanups)};
  }
  s.scratch_created = Get(c.scratch_created);
  s.scratch_destroyed = Get(c.scratch_destroyed);
  s.scratch_cleanups = Get(c.scratch_cleanups);
  return s;
}

void ResetShimStats() {
  auto& c = internal::g_shim_counters;
  for (auto* a : {&c.handle_copies, &c.handle_shared_takes, &c.batches_sent, &c.batches_received,
                  &c.remote_batches_out, &c.remote_batches_in, &c.remote_bytes_out,
                  &c.remote_bytes_in, &c.credit_stalls, &c.peak_in_flight, &c.state_checks,
                  &c.state_bytes_scanned, &c.scratch_cleanups}) {
    a->store(0, std::memory_order_relaxed);
  }
  for (internal::ArenaCounters& a : c.arenas) {
    // Arenas still alive (none between jobs) stay counted as created, so freed <= created.
    uint64_t live = Get(a.created) - Get(a.freed);
    a.created.store(live, std::memory_order_relaxed);
    a.freed.store(0, std::memory_order_relaxed);
    a.peak_live.store(live, std::memory_order_relaxed);
    a.peak_bytes.store(0, std::memory_order_relaxed);
    a.cleanups.store(0, std::memory_order_relaxed);
  }
  // Scratch spaces outlive jobs (one per thread): keep the live ones counted the same way.
  uint64_t scratch_live = Get(c.scratch_created) - Get(c.scratch_destroyed);
  c.scratch_created.store(scratch_live, std::memory_order_relaxed);
  c.scratch_destroyed.store(0, std::memory_order_relaxed);
}

std::string ShimStats::ToString() const {
  char buf[640];
  int n = std::snprintf(
      buf, sizeof(buf),
      "handle_copies=%llu shared_takes=%llu batches_sent=%llu batches_received=%llu "
      "peak_live_batches=%llu remote_batches_out=%llu remote_batches_in=%llu "
      "remote_bytes_out=%llu remote_bytes_in=%llu credit_stalls=%llu peak_in_flight=%llu",
      (unsigned long long)handle_copies, (unsigned long long)handle_shared_takes,
      (unsigned long long)batches_sent, (unsigned long long)batches_received,
      (unsigned long long)messages().peak_live, (unsigned long long)remote_batches_out,
      (unsigned long long)remote_batches_in, (unsigned long long)remote_bytes_out,
      (unsigned long long)remote_bytes_in, (unsigned long long)credit_stalls,
      (unsigned long long)peak_in_flight);
  if (state_checks > 0 && n > 0 && static_cast<size_t>(n) < sizeof(buf)) {
    std::snprintf(buf + n, sizeof(buf) - static_cast<size_t>(n),
                  " state_checks=%llu state_bytes_scanned=%llu", (unsigned long long)state_checks,
                  (unsigned long long)state_bytes_scanned);
  }
  return buf;
}

}  // namespace broom::lifecycle
