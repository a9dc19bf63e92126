// Copyright Broom authors.
//
// Freeing regions of 1k, 100k and 1M objects of 64 B: in bulk (a whole region) against one by
// one.
//
// One iteration fills K = 1M / n regions of n objects (not timed) and then frees all K (timed;
// see BM_BulkFree in scenarios.h): UseManualTime with the thread's CPU clock around the frees.
// Contenders:
//   broom_transferable      TransferableRegion::Free
//   broom_temporary_scope   leaving the TemporaryRegion::Scope (n = 1M only: scopes nest, and
//                           the context stack holds 64)
//   broom_actor             destroying the ActorRegion
//   broom_actor_free_each   ActorRegion::Free on each object (the reap path)
//   pmr_monotonic           monotonic_buffer_resource::release
//   pmr_pool                unsynchronized_pool_resource::release
//   pmr_pool_free_each      unsynchronized_pool_resource::deallocate on each object
//   protobuf_arena          Arena::Reset
//   glibc                   __libc_free on each object
//   jemalloc                sdallocx on each object
// (mimalloc_heap: mi_heap_destroy, and malloc+free under LD_PRELOAD, run in bench/baselines/.)
// Objects are freed in allocation order within a region. The iteration count is fixed: with
// manual time a minimum time would mean thousands of untimed million-object fills.
//
// The fill initializes every byte of every object, as constructors would. With only one word
// written, ActorRegion::Free becomes quadratic on recycled memory (see actor_free_recycled
// below, and bench/README.md): the bulk-free comparison would never finish.
//
// actor_free_recycled/n:10000/size:64/<touch>: ActorRegion::Free of 10,000 objects in a fresh
// region whose blocks were used (and freed into) by an earlier actor region, with objects that
// have one word written (`one_word`) or every byte (`whole_object`). The two should cost the
// same; a large gap means Free is walking free lists.
//
// Names: bulk_free/n:<1000|100000|1000000>/size:64/<contender>,
// actor_free_recycled/n:10000/size:64/<touch>.
#include <string>
#include <vector>

#include "bench/micro/bench_common.h"
#include "bench/micro/contenders.h"

namespace broom::bench {
namespace {

constexpr size_t kSize = 64;

constexpr int64_t kRecycledObjects = 10000;

template <bool kWholeObject>
void BM_ActorFreeRecycled(benchmark::State& state, size_t n) {
  std::vector<void*> ptrs(n);
  BroomActorFreeEach contender(0);
  // Leave freed objects behind in the blocks the timed iterations will get back.
  FillBatch<BroomActorFreeEach, kSize, true>(contender.Begin(), ptrs.data(), n);
  contender.End<kSize>(ptrs.data(), n);
  contender.Teardown();
  for (auto _ : state) {
    FillBatch<BroomActorFreeEach, kSize, kWholeObject>(contender.Begin(), ptrs.data(), n);
    const double start = ThreadCpuSeconds();
    contender.End<kSize>(ptrs.data(), n);
    benchmark::ClobberMemory();
    state.SetIterationTime(ThreadCpuSeconds() - start);
    contender.Teardown();
  }
  ReportObjects(state, static_cast<int64_t>(n));
}

}  // namespace

void RegisterBulkFreeBenchmarks() {
  RegisterBulkFree<BroomTransferable>();
  RegisterBulkFree<BroomTemporaryScope>(/*max_regions=*/1);
  RegisterBulkFree<BroomActor>();
  RegisterBulkFree<BroomActorFreeEach>();
  RegisterBulkFree<PmrMonotonic>();
  RegisterBulkFree<PmrPool>();
  RegisterBulkFree<PmrPoolFreeEach>();
#if BROOM_BENCH_HAVE_PROTOBUF
  RegisterBulkFree<ProtobufArena>();
#endif
  RegisterBulkFree<Glibc>();
#if BROOM_BENCH_HAVE_JEMALLOC
  RegisterBulkFree<Jemalloc>();
#endif

  const std::string recycled = "actor_free_recycled/n:" + std::to_string(kRecycledObjects) +
                               "/size:" + std::to_string(kSize) + "/";
  // Fixed, small iteration counts: the one_word case takes about 0.1 s per iteration while
  // the quadratic behaviour lasts.
  benchmark::RegisterBenchmark((recycled + "whole_object").c_str(), &BM_ActorFreeRecycled<true>,
                               static_cast<size_t>(kRecycledObjects))
      ->UseManualTime()
      ->Iterations(3);
  benchmark::RegisterBenchmark((recycled + "one_word").c_str(), &BM_ActorFreeRecycled<false>,
                               static_cast<size_t>(kRecycledObjects))
      ->UseManualTime()
      ->Iterations(3);
}

}  // namespace broom::bench
