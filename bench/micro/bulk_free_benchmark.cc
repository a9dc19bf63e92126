// Copyright Broom authors.
//
// Freeing 1M objects of 64 bytes: in bulk (a whole region) against one by one.
//
// One iteration allocates 1,000,000 objects of 64 B (not timed) and then frees them; only the
// free phase is timed: UseManualTime, with the thread's CPU clock (CLOCK_THREAD_CPUTIME_ID)
// read around End(), which on a shared VM is much steadier than wall-clock time. Contenders:
//   broom_transferable      TransferableRegion::Free
//   broom_temporary_scope   leaving the TemporaryRegion::Scope (keeps 1 MiB of blocks)
//   broom_actor             destroying the ActorRegion
//   broom_actor_free_each   ActorRegion::Free on each object (the reap path)
//   glibc                   __libc_free on each object
//   jemalloc                sdallocx on each object
// Objects are freed in allocation order. The iteration count is fixed: with manual time a
// minimum time would mean thousands of untimed million-object fills for the fast contenders.
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
// Names: bulk_free/n:1000000/size:64/<contender>, actor_free_recycled/n:10000/size:64/<touch>.
#include <time.h>

#include <string>
#include <vector>

#include "bench/micro/bench_common.h"
#include "bench/micro/contenders.h"

namespace broom::bench {
namespace {

// This thread's CPU time in seconds.
double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

constexpr int64_t kObjects = 1000000;
constexpr size_t kSize = 64;
constexpr int64_t kIterations = 12;

template <class C>
void BM_BulkFree(benchmark::State& state, size_t n) {
  std::vector<void*> ptrs(n);
  C contender(BatchBytes<kSize>(n));
  for (auto _ : state) {
    typename C::Handle h = contender.Begin();
    FillBatch<C, kSize, /*kWholeObject=*/true>(h, ptrs.data(), n);
    const double start = ThreadCpuSeconds();
    contender.template End<kSize>(ptrs.data(), n);
    benchmark::ClobberMemory();
    state.SetIterationTime(ThreadCpuSeconds() - start);
    contender.Teardown();
  }
  ReportObjects(state, static_cast<int64_t>(n));
}

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
  const std::string prefix =
      "bulk_free/n:" + std::to_string(kObjects) + "/size:" + std::to_string(kSize) + "/";
  auto add = [&](const char* name, auto fn) {
    benchmark::RegisterBenchmark((prefix + name).c_str(), fn, static_cast<size_t>(kObjects))
        ->UseManualTime()
        ->Iterations(kIterations);
  };
  add(BroomTransferable::kName, &BM_BulkFree<BroomTransferable>);
  add(BroomTemporaryScope::kName, &BM_BulkFree<BroomTemporaryScope>);
  add(BroomActor::kName, &BM_BulkFree<BroomActor>);
  add(BroomActorFreeEach::kName, &BM_BulkFree<BroomActorFreeEach>);
  add(Glibc::kName, &BM_BulkFree<Glibc>);
#if BROOM_BENCH_HAVE_JEMALLOC
  add(Jemalloc::kName, &BM_BulkFree<Jemalloc>);
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
