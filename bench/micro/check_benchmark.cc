// Cost of the dynamic outlives check (check.h): bytes scanned per second by CheckOutlives on a
// transferable region whose words all point into itself (every word is looked up, none is a
// violation), and on one holding plain integers (most words rejected by the range check).
#include <benchmark/benchmark.h>

#include <cstdint>

#include "broom/check.h"
#include "broom/transferable_region.h"

namespace broom::bench {
namespace {

void FillRegion(TransferableRegion& t, size_t bytes, bool pointers) {
  const size_t words = bytes / sizeof(uintptr_t);
  auto* w = static_cast<uintptr_t*>(t.Allocate(bytes, 8));
  for (size_t i = 0; i < words; ++i) {
    w[i] = pointers ? reinterpret_cast<uintptr_t>(&w[(i * 7919) % words]) : i;
  }
}

void BM_CheckOutlives(benchmark::State& state) {
  const size_t bytes = static_cast<size_t>(state.range(0));
  const bool pointers = state.range(1) != 0;
  TransferableRegion t;
  FillRegion(t, bytes, pointers);
  size_t scanned = 0;
  for (auto _ : state) {
    OutlivesReport r = CheckOutlives(t.region());
    if (!r.ok()) state.SkipWithError("unexpected violation");
    scanned += r.bytes_scanned;
    benchmark::DoNotOptimize(r);
  }
  state.SetBytesProcessed(static_cast<int64_t>(scanned));
  state.SetLabel(pointers ? "all words point into the region" : "no pointers");
}
BENCHMARK(BM_CheckOutlives)
    ->Name("check_outlives")
    ->ArgNames({"bytes", "pointers"})
    ->Args({1 << 20, 1})
    ->Args({1 << 20, 0})
    ->Args({16 << 20, 1})
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace broom::bench
