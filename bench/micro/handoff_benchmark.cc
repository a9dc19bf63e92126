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
//   (mimalloc, tcmalloc and plain malloc under LD_PRELOAD: bench/baselines/malloc_bench.)
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
#include "bench/micro/scenarios.h"
#include "broom/transferable_region.h"

namespace broom::bench {
namespace {

constexpr int64_t kRecords = kHandoffRecords;
constexpr size_t kRecordSize = kHandoffRecordSize;
constexpr size_t kQueueCapacity = kHandoffQueueCapacity;

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

void* GlibcAlloc(size_t size) { return LibcMalloc(size); }
void GlibcFree(void* p, size_t) { LibcFree(p); }
#if BROOM_BENCH_HAVE_JEMALLOC
void* JemallocAlloc(size_t size) { return mallocx(size, 0); }
void JemallocFree(void* p, size_t size) { sdallocx(p, size, 0); }
#endif

}  // namespace

void RegisterHandoffBenchmarks() {
  RegisterHandoff("broom_transferable", &BM_HandoffBroom);
#if BROOM_BENCH_HAVE_JEMALLOC
  RegisterHandoff("jemalloc", &BM_HandoffMalloc<&JemallocAlloc, &JemallocFree>);
#endif
  RegisterHandoff("glibc", &BM_HandoffMalloc<&GlibcAlloc, &GlibcFree>);
}

}  // namespace broom::bench
