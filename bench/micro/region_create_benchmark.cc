// Copyright Broom authors.
//
// The fixed cost of a region: creating and destroying an empty one, and the memory a tiny one
// holds.
//
//   region_create/<contender>    create + destroy an empty region of each kind, and open +
//                                close a TemporaryRegion::Scope (the per-callback cost); as a
//                                rival, create + destroy a jemalloc arena (arenas.create,
//                                arena.<i>.destroy), the closest thing jemalloc has to a region.
//   tiny_region/regions:10000/bytes:300/<kind>
//                                create 10,000 regions each holding 300 bytes (five 60-byte
//                                objects), then destroy them. Time is per region (create, five
//                                allocations, destroy). Counters:
//                                  block_bytes_per_region   sum of RegionStats::block_bytes / 10k
//                                  global_bytes_per_region  GetGlobalStats().block_bytes growth
//                                                           / 10k (what the process paid)
// Time is the benchmark thread's CPU time (single-threaded; far less noisy than wall clock here).
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "bench/micro/bench_common.h"
#include "broom/actor_region.h"
#include "broom/memory.h"
#include "broom/temporary_region.h"
#include "broom/transferable_region.h"

namespace broom::bench {
namespace {

template <class Handle>
void BM_CreateDestroy(benchmark::State& state) {
  for (auto _ : state) {
    Handle h;
    benchmark::DoNotOptimize(&h);
  }
  ReportObjects(state, 1);
}

void BM_ScopeOpenClose(benchmark::State& state) {
  TemporaryRegion temporary;
  for (auto _ : state) {
    TemporaryRegion::Scope scope(temporary);
    benchmark::DoNotOptimize(&scope);
  }
  ReportObjects(state, 1);
}

#if BROOM_BENCH_HAVE_JEMALLOC
void BM_JemallocArenaCreateDestroy(benchmark::State& state) {
  for (auto _ : state) {
    unsigned index = 0;
    size_t len = sizeof(index);
    if (mallctl("arenas.create", &index, &len, nullptr, 0) != 0) {
      state.SkipWithError("mallctl arenas.create failed");
      break;
    }
    char name[64];
    std::snprintf(name, sizeof(name), "arena.%u.destroy", index);
    if (mallctl(name, nullptr, nullptr, nullptr, 0) != 0) {
      state.SkipWithError("mallctl arena.<i>.destroy failed");
      break;
    }
  }
  ReportObjects(state, 1);
}
#endif

constexpr int64_t kTinyRegions = 10000;
constexpr int kTinyObjects = 5;
constexpr size_t kTinyObjectSize = 60;  // 5 * 60 = 300 bytes per region

template <class Handle>
void BM_TinyRegion(benchmark::State& state, size_t n) {
  std::vector<std::optional<Handle>> regions(n);
  double block_bytes_per_region = 0;
  double global_bytes_per_region = 0;
  for (auto _ : state) {
    state.PauseTiming();
    const size_t global_before = GetGlobalStats().block_bytes;
    state.ResumeTiming();
    for (size_t i = 0; i < n; ++i) {
      Handle& h = regions[i].emplace();
      for (int k = 0; k < kTinyObjects; ++k) {
        void* p = h.Allocate(kTinyObjectSize);
        Touch(p, i);
        benchmark::DoNotOptimize(p);
      }
    }
    state.PauseTiming();
    size_t block_bytes = 0;
    for (auto& r : regions) block_bytes += r->stats().block_bytes;
    const size_t global_after = GetGlobalStats().block_bytes;
    block_bytes_per_region = static_cast<double>(block_bytes) / static_cast<double>(n);
    global_bytes_per_region =
        static_cast<double>(global_after - global_before) / static_cast<double>(n);
    state.ResumeTiming();
    for (auto& r : regions) r.reset();
  }
  ReportObjects(state, static_cast<int64_t>(n));
  state.counters["block_bytes_per_region"] = block_bytes_per_region;
  state.counters["global_bytes_per_region"] = global_bytes_per_region;
}

}  // namespace

void RegisterRegionCreateBenchmarks() {
  auto add = [](const std::string& name, auto fn) {
    return benchmark::RegisterBenchmark(name.c_str(), fn);
  };
  auto add_with = [](const std::string& name, auto fn, size_t n) {
    return benchmark::RegisterBenchmark(name.c_str(), fn, n);
  };
  add("region_create/broom_transferable", &BM_CreateDestroy<TransferableRegion>);
  add("region_create/broom_temporary", &BM_CreateDestroy<TemporaryRegion>);
  add("region_create/broom_actor", &BM_CreateDestroy<ActorRegion>);
  add("region_create/broom_temporary_scope", &BM_ScopeOpenClose);
#if BROOM_BENCH_HAVE_JEMALLOC
  // About 0.3-0.4 ms each; a fixed count keeps it from dominating the run.
  add("region_create/jemalloc_arena", &BM_JemallocArenaCreateDestroy)->Iterations(200);
#endif

  const std::string tiny = "tiny_region/regions:" + std::to_string(kTinyRegions) +
                           "/bytes:" + std::to_string(kTinyObjects * kTinyObjectSize) + "/";
  const auto n = static_cast<size_t>(kTinyRegions);
  add_with(tiny + "broom_transferable", &BM_TinyRegion<TransferableRegion>, n);
  add_with(tiny + "broom_temporary", &BM_TinyRegion<TemporaryRegion>, n);
  add_with(tiny + "broom_actor", &BM_TinyRegion<ActorRegion>, n);
}

}  // namespace broom::bench
