// Copyright Broom authors.
//
// reap_footprint: the memory an actor's state costs, as a whole program built once per heap
// (heaps.h), for bench/tools/specs/reap_footprint.json.
//
//   1. A tiny state: a new heap holding 9 objects of 9 size classes (16, 32, 64, 128, 256, 512,
//      1024, 1536 and 2048 B: 5,616 B). tiny_bytes = the heap's HeapBytes() then (broom: the
//      region's block bytes; pmr_pool: bytes taken from upstream; mimalloc_heap: committed
//      bytes of its pages; the mallocs cannot tell, so it is not reported for them).
//   2. A shifting size mix in one long-lived heap: phase 1 allocates objects of `--small` sizes
//      until `--phase_bytes` are live, then frees them all in a random order; phase 2 allocates
//      objects of `--large` sizes until as many bytes are live, then frees them all likewise. A
//      heap whose memory follows what is live needs about phase_bytes at its peak; one whose
//      memory stays with the size classes that first took it needs twice that.
//
// Each object's size is written into its first word, where the free reads it (so the program
// keeps only an array of pointers: `harness_kib`, counted in every heap's RSS alike).
//
// Output: `RESULT policy=... tiny_bytes=... peak_live_bytes=<most bytes live at once, sizes as
// requested> peak_heap_bytes=... heap_over_live=<peak_heap_bytes / peak_live_bytes>
// rss_phase1_kib=... rss_freed_kib=<after phase 1's frees> rss_phase2_kib=... peak_rss_kib=...
// cpu_seconds=...`. peak_heap_bytes: broom the region's peak_block_bytes, pmr_pool its peak
// upstream bytes, mimalloc_heap the larger HeapBytes() at the end of each phase (sampled);
// absent for the mallocs (their peak_rss_kib is the comparison). broom also reports
// peak_class_bytes (live bytes rounded up to their size classes, at the end of each phase) and
// heap_over_class.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <string>
#include <vector>

#include "bench/workloads/heaps.h"
#include "bench/workloads/program_common.h"

namespace broom::bench {
namespace {

constexpr uint32_t kTinySizes[] = {16, 32, 64, 128, 256, 512, 1024, 1536, 2048};

size_t TinyBytes() {
  Heap heap;
  void* objects[std::size(kTinySizes)];
  for (size_t i = 0; i < std::size(kTinySizes); ++i) {
    objects[i] = heap.Allocate(kTinySizes[i]);
    std::memset(objects[i], 1, kTinySizes[i]);
  }
  const size_t bytes = heap.HeapBytes();
  for (size_t i = 0; i < std::size(kTinySizes); ++i) heap.Free(objects[i], kTinySizes[i]);
  return bytes;
}

// Allocates objects of `mix` sizes into `objects` until at least `bytes` are live; returns the
// bytes live.
size_t Fill(Heap& heap, const SizeMix& mix, size_t bytes, Rng& rng, std::vector<void*>& objects) {
  size_t live = 0;
  while (live < bytes) {
    const size_t size = mix.Next(rng);
    void* p = heap.Allocate(size);
    *static_cast<uint64_t*>(p) = size;
    objects.push_back(p);
    live += size;
  }
  return live;
}

// Frees every object in a random order.
void FreeAll(Heap& heap, Rng& rng, std::vector<void*>& objects) {
  for (size_t i = objects.size(); i > 1; --i) std::swap(objects[i - 1], objects[rng.Below(i)]);
  for (void* p : objects) heap.Free(p, static_cast<size_t>(*static_cast<uint64_t*>(p)));
  objects.clear();
}

int Main(int argc, char** argv) {
  Flags flags(argc, argv);
  const size_t phase_bytes = static_cast<size_t>(flags.Int("phase_bytes", 64 << 20, 1));
  const SizeMix small = SizeMix::Parse(flags.Str("small", "16-64"));
  const SizeMix large = SizeMix::Parse(flags.Str("large", "256-2048"));
  flags.CheckAllUsed();
  if (small.min() < sizeof(uint64_t) || large.min() < sizeof(uint64_t)) {
    std::fprintf(stderr, "--small, --large: sizes of at least 8 bytes (the size word)\n");
    return 2;
  }

  const double start = ProcessCpuSeconds();
  const size_t tiny_bytes = TinyBytes();

  Heap heap;
  Rng rng(3);
  std::vector<void*> objects;
  objects.reserve(phase_bytes / std::min(small.min(), large.min()) + 1);  // pages touched as used
  size_t peak_live = 0, sampled_heap = 0;
#if BROOM_BENCH_POLICY == BROOM_BENCH_POLICY_BROOM
  size_t peak_class = 0;
  auto sample_class = [&] {
    const RegionStats s = heap.Stats();
    peak_class = std::max(peak_class, s.bytes_requested - s.bytes_freed);
  };
#else
  auto sample_class = [] {};
#endif
  peak_live = Fill(heap, small, phase_bytes, rng, objects);
  sampled_heap = heap.HeapBytes();
  sample_class();
  const long rss_phase1 = CurrentRssKiB();
  size_t harness_kib = objects.size() * sizeof(void*) / 1024;
  FreeAll(heap, rng, objects);
  const long rss_freed = CurrentRssKiB();
  peak_live = std::max(peak_live, Fill(heap, large, phase_bytes, rng, objects));
  sampled_heap = std::max(sampled_heap, heap.HeapBytes());
  sample_class();
  const long rss_phase2 = CurrentRssKiB();
  harness_kib = std::max(harness_kib, objects.size() * sizeof(void*) / 1024);
  FreeAll(heap, rng, objects);
  const double cpu_seconds = ProcessCpuSeconds() - start;

  Result result;
  result.Add("policy", Heap::Name()).Add("phase_bytes", static_cast<double>(phase_bytes));
  if (tiny_bytes > 0) result.Add("tiny_bytes", static_cast<double>(tiny_bytes));
  result.Add("peak_live_bytes", static_cast<double>(peak_live));
  const size_t peak_heap = std::max(heap.PeakHeapBytes(), sampled_heap);
  if (peak_heap > 0) {
    result.Add("peak_heap_bytes", static_cast<double>(peak_heap))
        .Add("heap_over_live", static_cast<double>(peak_heap) / static_cast<double>(peak_live));
  }
#if BROOM_BENCH_POLICY == BROOM_BENCH_POLICY_BROOM
  result.Add("peak_class_bytes", static_cast<double>(peak_class))
      .Add("heap_over_class", static_cast<double>(peak_heap) / static_cast<double>(peak_class));
#endif
  result.Add("rss_phase1_kib", static_cast<double>(rss_phase1))
      .Add("rss_freed_kib", static_cast<double>(rss_freed))
      .Add("rss_phase2_kib", static_cast<double>(rss_phase2))
      .Add("harness_kib", static_cast<double>(harness_kib))
      .Add("cpu_seconds", cpu_seconds)
      .Add("peak_rss_kib", static_cast<double>(PeakRssKiB()));
  return FinishRun("reap_footprint", heap, result);
}

}  // namespace
}  // namespace broom::bench

int main(int argc, char** argv) { return broom::bench::Main(argc, argv); }
