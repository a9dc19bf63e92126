// Copyright Broom authors.
//
// Cross-thread handoff of a message: a producer thread (the benchmark thread) builds a batch
// of 256 records of 64 bytes and passes it through a bounded SPSC queue (SpscQueue, capacity
// 16) to a consumer thread, which reads one word of every record and frees the batch.
//
//   broom_transferable   the batch is a TransferableRegion holding a 256-pointer array and the
//                        records; the handle moves through the queue; the consumer Frees it
//   jemalloc             pointer array and records from mallocx; the consumer sdallocx's each
//   glibc                pointer array and records from __libc_malloc; the consumer frees each
//
// Every contender does the same reads and writes; only where the memory comes from and how it
// is freed differ. Time is wall-clock per record over the producer's loop; the consumer runs
// concurrently, and the queue bound keeps the producer at most 16 messages ahead (those last
// frees fall outside the timed loop; with thousands of iterations that is well under 1%).
//
// Names: handoff/records:256/size:64/<contender>.
#include <cstdint>
#include <string>
#include <thread>

#include "bench/micro/bench_common.h"
#include "broom/transferable_region.h"

namespace broom::bench {
namespace {

constexpr int64_t kRecords = 256;
constexpr size_t kRecordSize = 64;
constexpr size_t kQueueCapacity = 16;

uint64_t ReadBatch(void* const* records) {
  uint64_t sum = 0;
  for (int64_t i = 0; i < kRecords; ++i) sum += *static_cast<const uint64_t*>(records[i]);
  return sum;
}

struct BroomBatch {
  TransferableRegion region;
  void** records;  // null: end of stream
};

void BM_HandoffBroom(benchmark::State& state) {
  SpscQueue<BroomBatch, kQueueCapacity> queue;
  std::thread consumer([&queue] {
    uint64_t sum = 0;
    for (;;) {
      BroomBatch batch = queue.Pop();
      if (batch.records == nullptr) break;
      sum += ReadBatch(batch.records);
      batch.region.Free();
    }
    benchmark::DoNotOptimize(sum);
  });
  for (auto _ : state) {
    TransferableRegion region;
    Region& r = region.region();
    auto** records = static_cast<void**>(r.Allocate(kRecords * sizeof(void*)));
    for (int64_t i = 0; i < kRecords; ++i) {
      void* p = r.Allocate(kRecordSize);
      Touch(p, static_cast<uint64_t>(i));
      records[i] = p;
    }
    queue.Push(BroomBatch{std::move(region), records});
  }
  queue.Push(BroomBatch{TransferableRegion(), nullptr});
  consumer.join();
  ReportObjects(state, kRecords);
}

// A general allocator as a pair of functions: Alloc(size) and Free(p, size).
template <void* (*Alloc)(size_t), void (*Free)(void*, size_t)>
void BM_HandoffMalloc(benchmark::State& state) {
  SpscQueue<void**, kQueueCapacity> queue;
  std::thread consumer([&queue] {
    uint64_t sum = 0;
    for (;;) {
      void** records = queue.Pop();
      if (records == nullptr) break;
      sum += ReadBatch(records);
      for (int64_t i = 0; i < kRecords; ++i) Free(records[i], kRecordSize);
      Free(records, kRecords * sizeof(void*));
    }
    benchmark::DoNotOptimize(sum);
  });
  for (auto _ : state) {
    auto** records = static_cast<void**>(Alloc(kRecords * sizeof(void*)));
    for (int64_t i = 0; i < kRecords; ++i) {
      void* p = Alloc(kRecordSize);
      Touch(p, static_cast<uint64_t>(i));
      records[i] = p;
    }
    queue.Push(records);
  }
  queue.Push(nullptr);
  consumer.join();
  ReportObjects(state, kRecords);
}

void* GlibcAlloc(size_t size) { return LibcMalloc(size); }
void GlibcFree(void* p, size_t) { LibcFree(p); }
#if BROOM_BENCH_HAVE_JEMALLOC
void* JemallocAlloc(size_t size) { return mallocx(size, 0); }
void JemallocFree(void* p, size_t size) { sdallocx(p, size, 0); }
#endif

}  // namespace

void RegisterHandoffBenchmarks() {
  const std::string prefix = "handoff/records:" + std::to_string(kRecords) +
                             "/size:" + std::to_string(kRecordSize) + "/";
  auto add = [&](const char* name, auto fn) {
    // Wall-clock time over two busy threads on a shared 2-core VM is noisy: a longer minimum
    // time than the rest (it overrides --benchmark_min_time) steadies the median.
    benchmark::RegisterBenchmark((prefix + name).c_str(), fn)->UseRealTime()->MinTime(0.5);
  };
  add("broom_transferable", &BM_HandoffBroom);
#if BROOM_BENCH_HAVE_JEMALLOC
  add("jemalloc", &BM_HandoffMalloc<&JemallocAlloc, &JemallocFree>);
#endif
  add("glibc", &BM_HandoffMalloc<&GlibcAlloc, &GlibcFree>);
}

}  // namespace broom::bench
