// Copyright Broom authors.
//
// churn: an actor-scoped workload that inserts and deletes forever, as a whole program built
// once per memory policy (see program_common.h). It checks that memory stays bounded.
//
// The actor's state is a hash map from a 64-bit key to a payload of 16..1024 bytes (sizes from a
// fixed pseudo-random sequence). Each operation inserts key t and erases key t - live (a sliding
// window), so `--live` entries are alive at any time after the first `--live` operations, and
// payload sizes keep changing under the allocator. `--ops` operations in all.
//
// The operator code is the same for every policy; only the heap differs (heaps.h): the map's
// allocator is Heap::Alloc and the payloads come from Heap::Allocate / Heap::Free:
//   broom          an ActorRegion owns the map (std::unordered_map with broom::ActorAllocator
//                  bound to its ReapRegion) and the payloads (the reap's inline Allocate/Free):
//                  the region is the actor's state, freed per object and released at once when
//                  the actor ends.
//   malloc         std::allocator and malloc/free (the malloc under LD_PRELOAD).
//   pmr_pool       std::pmr::unsynchronized_pool_resource (polymorphic_allocator; payloads with
//                  allocate/deallocate), upstream glibc's malloc.
//   mimalloc_heap  one mi_heap_new heap: an STL allocator over mi_heap_mallocn/mi_free, payloads
//                  mi_heap_malloc/mi_free.
//   gc             Boehm GC: map nodes and buckets from GC_MALLOC, payloads from GC_MALLOC_ATOMIC;
//                  erasing drops the reference and the collector reclaims it (deallocate does
//                  nothing; GC_FREE is never called). Exit 1 if no collection happened.
//
// Memory is sampled after the warm-up (the first 10% of operations, at least `--live`) and at
// the end. Output: `RESULT seconds=<wall> cpu_seconds=<process CPU> ns_per_op=<CPU ns>
// rss_warm_kib=... rss_end_kib=... rss_growth=<end/warm> peak_rss_kib=...`, plus
// peak_block_bytes and end_block_bytes (broom: the region's own footprint), peak_upstream_bytes
// (pmr_pool) or gc_collections (gc). Bounded means rss_growth stays near 1.
#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>

#include "bench/workloads/heaps.h"
#include "bench/workloads/program_common.h"

namespace broom::bench {
namespace {

struct Payload {
  char* data;
  uint32_t size;
};

// Payload size of operation t: 16..1024 bytes, skewed small (3 in 4 are <= 256 bytes).
size_t PayloadSize(uint64_t t) {
  uint64_t x = (t + 1) * 0x9e3779b97f4a7c15ull;
  x ^= x >> 29;
  const size_t small = 16 + static_cast<size_t>(x % 241);
  return (x >> 40) % 4 == 0 ? 16 + static_cast<size_t>((x >> 8) % 1009) : small;
}

int Main(int argc, char** argv) {
  Flags flags(argc, argv);
  const uint64_t ops = static_cast<uint64_t>(flags.Int("ops", 4000000, 1));
  const uint64_t live = static_cast<uint64_t>(flags.Int("live", 100000, 1));
  flags.CheckAllUsed();
  const uint64_t warm_at = std::max<uint64_t>(live, ops / 10);

  Heap heap;
  using Value = std::pair<const uint64_t, Payload>;
  using Map = std::unordered_map<uint64_t, Payload, std::hash<uint64_t>, std::equal_to<uint64_t>,
                                 Heap::Alloc<Value>>;
  // The map object itself is on the stack (a GC root); its nodes and buckets use the heap.
  Map map(16, std::hash<uint64_t>(), std::equal_to<uint64_t>(), heap.MakeAllocator<Value>());
  uint64_t checksum = 0;
  long rss_warm = 0;
  const double start = MonotonicSeconds();
  const double cpu_start = ProcessCpuSeconds();
  for (uint64_t t = 0; t < ops; ++t) {
    const size_t size = PayloadSize(t);
    char* data = static_cast<char*>(heap.Allocate(size));
    data[0] = static_cast<char>(t);
    data[size - 1] = static_cast<char>(t >> 8);
    map.emplace(t, Payload{data, static_cast<uint32_t>(size)});
    if (t >= live) {
      auto it = map.find(t - live);
      checksum += static_cast<unsigned char>(it->second.data[0]) + it->second.size;
      heap.Free(it->second.data, it->second.size);
      map.erase(it);
    }
    if (t + 1 == warm_at) rss_warm = CurrentRssKiB();
  }
  const double seconds = MonotonicSeconds() - start;
  const double cpu_seconds = ProcessCpuSeconds() - cpu_start;
  const long rss_end = CurrentRssKiB();
  for (auto& entry : map) heap.Free(entry.second.data, entry.second.size);  // the last window
  Result result;
  result.Add("policy", Heap::Name())
      .Add("ops", static_cast<double>(ops))
      .Add("live", static_cast<double>(live))
      .Add("seconds", seconds)
      .Add("cpu_seconds", cpu_seconds)
      .Add("ns_per_op", cpu_seconds * 1e9 / static_cast<double>(ops))
      .Add("checksum", static_cast<double>(checksum % 1000000007))
      .Add("rss_warm_kib", static_cast<double>(rss_warm))
      .Add("rss_end_kib", static_cast<double>(rss_end))
      .Add("rss_growth", rss_warm > 0 ? static_cast<double>(rss_end) / rss_warm : 0.0)
      .Add("peak_rss_kib", static_cast<double>(PeakRssKiB()));
  return FinishRun("churn", heap, result);
}

}  // namespace
}  // namespace broom::bench

int main(int argc, char** argv) { return broom::bench::Main(argc, argv); }
