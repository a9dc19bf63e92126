// Copyright Broom authors.
//
// Small-object allocation followed by freeing the whole batch, per object.
//
// One iteration: Begin (create the region / open the scope), allocate n objects of 16, 64 or
// 256 bytes, or of mixed sizes in [16, 256] from kMixedSizes, writing one word into each, then
// free them all (Broom: free the region or leave the scope; glibc and jemalloc: free each
// object; the bump floor: reset its cursor). The time per object therefore includes the
// object's share of creating and freeing its region.
//
// Time is the benchmark thread's CPU time (the default): on a shared VM it is far less noisy
// than wall-clock time, and every contender here runs on that one thread.
//
// Names: alloc_free/size:<16|64|256|mixed>/n:<4096|100000>/<contender>.
#include <string>
#include <vector>

#include "bench/micro/bench_common.h"
#include "bench/micro/contenders.h"

namespace broom::bench {
namespace {

template <class C, size_t kSize>
void BM_AllocFree(benchmark::State& state, size_t n) {
  std::vector<void*> ptrs(n);
  C contender(BatchBytes<kSize>(n));
  for (auto _ : state) {
    typename C::Handle h = contender.Begin();
    FillBatch<C, kSize>(h, ptrs.data(), n);
    contender.template End<kSize>(ptrs.data(), n);
  }
  contender.Teardown();
  ReportObjects(state, static_cast<int64_t>(n));
}

template <size_t kSize>
void RegisterSize(const std::string& size_name) {
  for (int64_t n : {kSmallBatch, kLargeBatch}) {
    const std::string prefix = "alloc_free/size:" + size_name + "/n:" + std::to_string(n) + "/";
    auto add = [&](const char* name, auto fn) {
      benchmark::RegisterBenchmark((prefix + name).c_str(), fn, static_cast<size_t>(n));
    };
    add(BumpFloor::kName, &BM_AllocFree<BumpFloor, kSize>);
    add(BroomTransferable::kName, &BM_AllocFree<BroomTransferable, kSize>);
    add(BroomTemporaryScope::kName, &BM_AllocFree<BroomTemporaryScope, kSize>);
    add(BroomActor::kName, &BM_AllocFree<BroomActor, kSize>);
    add(Glibc::kName, &BM_AllocFree<Glibc, kSize>);
#if BROOM_BENCH_HAVE_JEMALLOC
    add(Jemalloc::kName, &BM_AllocFree<Jemalloc, kSize>);
#endif
  }
}

}  // namespace

void RegisterRegionAllocBenchmarks() {
  RegisterSize<16>("16");
  RegisterSize<64>("64");
  RegisterSize<256>("256");
  RegisterSize<0>("mixed");
}

}  // namespace broom::bench
