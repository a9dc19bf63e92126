// Copyright Broom authors.
#include "broom/lifecycle/stats.h"

#include <cstdio>

namespace broom::lifecycle {
namespace internal {
ShimCounters g_shim_counters;

void NoteEnvelopeCreated() {
  uint64_t created = g_shim_counters.envelopes_created.fetch_add(1, std::memory_order_relaxed) + 1;
  uint64_t destroyed = g_shim_counters.envelopes_destroyed.load(std::memory_order_relaxed);
  if (created > destroyed) RaiseTo(g_shim_counters.peak_live_envelopes, created - destroyed);
}
}  // namespace internal

ShimStats GetShimStats() {
  auto& c = internal::g_shim_counters;
  auto get = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  ShimStats s;
  s.handle_copies = get(c.handle_copies);
  s.handle_shared_takes = get(c.handle_shared_takes);
  s.batches_sent = get(c.batches_sent);
  s.batches_received = get(c.batches_received);
  s.envelopes_created = get(c.envelopes_created);
  s.envelopes_destroyed = get(c.envelopes_destroyed);
  s.peak_live_envelopes = get(c.peak_live_envelopes);
  s.remote_batches_out = get(c.remote_batches_out);
  s.remote_batches_in = get(c.remote_batches_in);
  s.remote_bytes_out = get(c.remote_bytes_out);
  s.remote_bytes_in = get(c.remote_bytes_in);
  s.credit_stalls = get(c.credit_stalls);
  s.peak_in_flight = get(c.peak_in_flight);
  return s;
}

void ResetShimStats() {
  auto& c = internal::g_shim_counters;
  for (auto* a : {&c.handle_copies, &c.handle_shared_takes, &c.batches_sent, &c.batches_received,
                  &c.envelopes_created, &c.envelopes_destroyed, &c.peak_live_envelopes,
                  &c.remote_batches_out, &c.remote_batches_in, &c.remote_bytes_out,
                  &c.remote_bytes_in, &c.credit_stalls, &c.peak_in_flight}) {
    a->store(0, std::memory_order_relaxed);
  }
}

std::string ShimStats::ToString() const {
  char buf[512];
  std::snprintf(buf, sizeof(buf),
                "handle_copies=%llu shared_takes=%llu batches_sent=%llu batches_received=%llu "
                "envelopes_created=%llu envelopes_destroyed=%llu peak_live_envelopes=%llu "
                "remote_batches_out=%llu remote_batches_in=%llu remote_bytes_out=%llu "
                "remote_bytes_in=%llu credit_stalls=%llu peak_in_flight=%llu",
                (unsigned long long)handle_copies, (unsigned long long)handle_shared_takes,
                (unsigned long long)batches_sent, (unsigned long long)batches_received,
                (unsigned long long)envelopes_created, (unsigned long long)envelopes_destroyed,
                (unsigned long long)peak_live_envelopes, (unsigned long long)remote_batches_out,
                (unsigned long long)remote_batches_in, (unsigned long long)remote_bytes_out,
                (unsigned long long)remote_bytes_in, (unsigned long long)credit_stalls,
                (unsigned long long)peak_in_flight);
  return buf;
}

}  // namespace broom::lifecycle
