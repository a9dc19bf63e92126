// Copyright Broom authors.
//
// scenarios.h: the benchmark loops shared by broom_micro_bench and the baseline binaries of
// bench/baselines/ (which must not link libbroom: it links jemalloc, which would replace the
// malloc they measure). Nothing here depends on Broom.
//
//   FillBatch<C, kSize>(h, ptrs, n)   allocate n objects from contender C, touch, keep pointers
//   BatchBytes<kSize>(n)              bytes n objects take in a bump allocator aligning to 16
//   BM_AllocFree<C, kSize>            alloc_free/...: allocate a batch, free it, per object
//   BM_BulkFree<C>                    bulk_free/...: free K batches of n objects (timed part)
//   BM_HandoffMalloc<Alloc, Free>     handoff/...: producer mallocs, consumer frees each record
//   ThreadCpuSeconds()                CLOCK_THREAD_CPUTIME_ID in seconds
//
// A contender C is a struct with (see contenders.h for the Broom ones):
//   explicit C(size_t max_batch_bytes)
//   Handle Begin()                        start a batch (create the region / heap / arena)
//   static void* Allocate(Handle, size)   one small object
//   template <size_t kSize> void End(void** ptrs, size_t n)   free the batch
//   void Teardown()                       untimed cleanup after End
//   static constexpr const char* kName
#ifndef BROOM_BENCH_MICRO_SCENARIOS_H_
#define BROOM_BENCH_MICRO_SCENARIOS_H_

#include <time.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench/micro/bench_common.h"

namespace broom::bench {

// Fills one batch of n objects: allocate, write one word, remember the pointer. The pointer
// array is written by every contender (a program keeps references to what it allocates); only
// the general allocators read it back, to free.
//
// kWholeObject: initialize every byte (as a constructor would) instead of one word. Used where
// only the free is timed; see bulk_free_benchmark.cc for why it matters to ActorRegion::Free.
template <class C, size_t kSize, bool kWholeObject = false>
inline void FillBatch(typename C::Handle h, void** ptrs, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const size_t size = SizeAt<kSize>(i);
    void* p = C::Allocate(h, size);
    if constexpr (kWholeObject) std::memset(p, static_cast<int>(i & 0x7f), size);
    Touch(p, i);
    ptrs[i] = p;
    benchmark::DoNotOptimize(p);
  }
  benchmark::ClobberMemory();
}

// Bytes a batch of n objects takes in a bump allocator aligning to 16.
template <size_t kSize>
size_t BatchBytes(size_t n) {
  size_t total = 0;
  for (size_t i = 0; i < n; ++i) total += (SizeAt<kSize>(i) + 15) & ~size_t{15};
  return total;
}

// True when BROOM_BENCH_SMOKE is set (ctest's smoke runs): fixed iteration counts and minimum
// times drop to the least that still exercises every line.
inline bool SmokeMode() {
  static const bool smoke = std::getenv("BROOM_BENCH_SMOKE") != nullptr;
  return smoke;
}

// This thread's CPU time in seconds.
inline double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// alloc_free: one iteration = Begin, n allocations, End. Time per object includes its share
// of creating and freeing the region. Thread CPU time.
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

// Objects freed per bulk_free iteration, whatever the region size: K = kBulkObjects / n
// regions of n objects each are filled (untimed), then all K are freed (timed), in reverse
// order of creation (LIFO, which nested scopes require). Timing K regions at once keeps the
// clock's own cost (a system call) negligible even for 1,000-object regions.
inline constexpr int64_t kBulkObjects = 1000000;
inline constexpr size_t kBulkSize = 64;

template <class C>
void BM_BulkFree(benchmark::State& state, size_t n) {
  const size_t regions = static_cast<size_t>(kBulkObjects) / n;
  std::vector<void*> ptrs(regions * n);
  std::vector<std::unique_ptr<C>> contenders;
  for (size_t k = 0; k < regions; ++k) contenders.push_back(std::make_unique<C>(0));
  for (auto _ : state) {
    for (size_t k = 0; k < regions; ++k) {
      typename C::Handle h = contenders[k]->Begin();
      FillBatch<C, kBulkSize, /*kWholeObject=*/true>(h, ptrs.data() + k * n, n);
    }
    const double start = ThreadCpuSeconds();
    for (size_t k = regions; k-- > 0;)
      contenders[k]->template End<kBulkSize>(ptrs.data() + k * n, n);
    benchmark::ClobberMemory();
    state.SetIterationTime(ThreadCpuSeconds() - start);
    for (size_t k = regions; k-- > 0;) contenders[k]->Teardown();
  }
  ReportObjects(state, static_cast<int64_t>(regions * n));
}

// Registers bulk_free/n:<n>/size:64/<C::kName> for n = 1k, 100k, 1M.
template <class C>
void RegisterBulkFree(size_t max_regions = SIZE_MAX) {
  for (int64_t n : {int64_t{1000}, int64_t{100000}, int64_t{1000000}}) {
    if (static_cast<size_t>(kBulkObjects / n) > max_regions) continue;
    const std::string name =
        "bulk_free/n:" + std::to_string(n) + "/size:" + std::to_string(kBulkSize) + "/" + C::kName;
    benchmark::RegisterBenchmark(name.c_str(), &BM_BulkFree<C>, static_cast<size_t>(n))
        ->UseManualTime()
        ->Iterations(SmokeMode() ? 1 : 5);
  }
}

// Registers alloc_free/size:<16|64|256|mixed>/n:<4096|100000>/<C::kName>.
template <class C, size_t kSize>
void RegisterAllocFreeSize(const std::string& size_name) {
  for (int64_t n : {kSmallBatch, kLargeBatch}) {
    const std::string name =
        "alloc_free/size:" + size_name + "/n:" + std::to_string(n) + "/" + C::kName;
    benchmark::RegisterBenchmark(name.c_str(), &BM_AllocFree<C, kSize>, static_cast<size_t>(n));
  }
}

// ---- cross-thread handoff -------------------------------------------------------------------

inline constexpr int64_t kHandoffRecords = 256;
inline constexpr size_t kHandoffRecordSize = 64;
inline constexpr size_t kHandoffQueueCapacity = 16;

inline uint64_t ReadBatch(void* const* records) {
  uint64_t sum = 0;
  for (int64_t i = 0; i < kHandoffRecords; ++i) sum += *static_cast<const uint64_t*>(records[i]);
  return sum;
}

// A general allocator as a pair of functions: Alloc(size) and Free(p, size). The producer (the
// benchmark thread) allocates a 256-pointer array and 256 records of 64 B, touches each, and
// pushes the array; the consumer reads one word of each record and frees each record and the
// array. Wall-clock time per record.
template <void* (*Alloc)(size_t), void (*Free)(void*, size_t)>
void BM_HandoffMalloc(benchmark::State& state) {
  SpscQueue<void**, kHandoffQueueCapacity> queue;
  std::thread consumer([&queue] {
    uint64_t sum = 0;
    for (;;) {
      void** records = queue.Pop();
      if (records == nullptr) break;
      sum += ReadBatch(records);
      for (int64_t i = 0; i < kHandoffRecords; ++i) Free(records[i], kHandoffRecordSize);
      Free(records, kHandoffRecords * sizeof(void*));
    }
    benchmark::DoNotOptimize(sum);
  });
  for (auto _ : state) {
    auto** records = static_cast<void**>(Alloc(kHandoffRecords * sizeof(void*)));
    for (int64_t i = 0; i < kHandoffRecords; ++i) {
      void* p = Alloc(kHandoffRecordSize);
      Touch(p, static_cast<uint64_t>(i));
      records[i] = p;
    }
    queue.Push(records);
  }
  queue.Push(nullptr);
  consumer.join();
  ReportObjects(state, kHandoffRecords);
}

inline std::string HandoffName(const char* contender) {
  return "handoff/records:" + std::to_string(kHandoffRecords) +
         "/size:" + std::to_string(kHandoffRecordSize) + "/" + contender;
}

// Wall-clock time over two busy threads on a shared 2-core VM is noisy: a longer minimum time
// than the rest (it overrides --benchmark_min_time) steadies the median.
template <class Fn>
void RegisterHandoff(const char* contender, Fn fn) {
  benchmark::RegisterBenchmark(HandoffName(contender).c_str(), fn)
      ->UseRealTime()
      ->MinTime(SmokeMode() ? 0.01 : 0.5);
}

}  // namespace broom::bench

#endif  // BROOM_BENCH_MICRO_SCENARIOS_H_
