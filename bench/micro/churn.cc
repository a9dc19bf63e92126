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
// The operator code is the same for every policy; only the map's allocator and the payload
// allocation differ:
//   broom    an ActorRegion owns the map (std::unordered_map with broom::ActorAllocator bound to the
//            region) and the payloads (ActorRegion::Allocate / Free): the region is the actor's
//            state, freed per object and released at once when the actor ends.
//   malloc   std::allocator and malloc/free (the malloc under LD_PRELOAD).
//   gc       Boehm GC: map nodes and buckets from GC_MALLOC, payloads from GC_MALLOC_ATOMIC;
//            erasing drops the reference and the collector reclaims it (deallocate does nothing;
//            GC_FREE is never called). Exit 1 if no collection happened.
//
// Memory is sampled after the warm-up (the first 10% of operations, at least `--live`) and at
// the end. Output: `RESULT seconds=<wall> cpu_seconds=<process CPU> ns_per_op=<CPU ns> rss_warm_kib=... rss_end_kib=...
// rss_growth=<end/warm> peak_rss_kib=...`, plus peak_block_bytes and end_block_bytes (broom:
// the region's own footprint) or gc_collections (gc). Bounded means rss_growth stays near 1.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <new>
#include <string>
#include <unordered_map>

#include "bench/micro/program_common.h"

#if BROOM_BENCH_POLICY == BROOM_BENCH_POLICY_BROOM
#include "broom/actor_region.h"
#include "broom/context.h"
#elif BROOM_BENCH_POLICY == BROOM_BENCH_POLICY_MALLOC
#include "bench/baselines/malloc_identity.h"
#elif BROOM_BENCH_POLICY == BROOM_BENCH_POLICY_GC
#include <gc/gc.h>
#else
#error "BROOM_BENCH_POLICY must be 1 (broom), 2 (malloc) or 3 (gc)"
#endif

namespace broom::bench {
namespace {

struct Payload {
  char* data;
  uint32_t size;
};

#if BROOM_BENCH_POLICY == BROOM_BENCH_POLICY_BROOM
class Policy {
 public:
  static std::string Name() { return "broom"; }
  template <class T>
  using Alloc = broom::ActorAllocator<T>;
  template <class T>
  Alloc<T> MakeAllocator() {
    return Alloc<T>(actor_.region());
  }
  char* AllocPayload(size_t size) { return static_cast<char*>(actor_.Allocate(size)); }
  void FreePayload(char* p) { actor_.Free(p); }
  void Report(Result& r) const {
    const RegionStats s = actor_.stats();
    r.Add("peak_block_bytes", static_cast<double>(s.peak_block_bytes));
    r.Add("end_block_bytes", static_cast<double>(s.block_bytes));
  }

 private:
  ActorRegion actor_;
};
#elif BROOM_BENCH_POLICY == BROOM_BENCH_POLICY_MALLOC
class Policy {
 public:
  static std::string Name() { return "malloc_" + MallocName(); }
  template <class T>
  using Alloc = std::allocator<T>;
  template <class T>
  Alloc<T> MakeAllocator() {
    return Alloc<T>();
  }
  char* AllocPayload(size_t size) { return static_cast<char*>(std::malloc(size)); }
  void FreePayload(char* p) { std::free(p); }
  void Report(Result&) const {}
};
#else
// An STL allocator over the collected heap. deallocate does nothing: the collector decides.
template <class T>
struct GcAllocator {
  using value_type = T;
  GcAllocator() = default;
  template <class U>
  GcAllocator(const GcAllocator<U>&) {}
  T* allocate(size_t n) {
    void* p = GC_MALLOC(n * sizeof(T));
    if (p == nullptr) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T*, size_t) {}
  template <class U>
  bool operator==(const GcAllocator<U>&) const {
    return true;
  }
};

class Policy {
 public:
  Policy() { GC_INIT(); }
  static std::string Name() { return "boehm_gc"; }
  template <class T>
  using Alloc = GcAllocator<T>;
  template <class T>
  Alloc<T> MakeAllocator() {
    return Alloc<T>();
  }
  char* AllocPayload(size_t size) { return static_cast<char*>(GC_MALLOC_ATOMIC(size)); }
  void FreePayload(char*) {}
  void Report(Result& r) const {
    r.Add("gc_collections", static_cast<double>(GC_get_gc_no()));
    r.Add("gc_heap_bytes", static_cast<double>(GC_get_heap_size()));
  }
};
#endif

// Payload size of operation t: 16..1024 bytes, skewed small (3 in 4 are <= 256 bytes).
size_t PayloadSize(uint64_t t) {
  uint64_t x = (t + 1) * 0x9e3779b97f4a7c15ull;
  x ^= x >> 29;
  const size_t small = 16 + static_cast<size_t>(x % 241);
  return (x >> 40) % 4 == 0 ? 16 + static_cast<size_t>((x >> 8) % 1009) : small;
}

int Main(int argc, char** argv) {
  Flags flags(argc, argv);
  const uint64_t ops = static_cast<uint64_t>(flags.Int("ops", 4000000));
  const uint64_t live = static_cast<uint64_t>(flags.Int("live", 100000));
  flags.CheckAllUsed();
  const uint64_t warm_at = std::max<uint64_t>(live, ops / 10);

  Policy policy;
  using Value = std::pair<const uint64_t, Payload>;
  using Map = std::unordered_map<uint64_t, Payload, std::hash<uint64_t>, std::equal_to<uint64_t>,
                                 typename Policy::template Alloc<Value>>;
  // The map object itself is on the stack (a GC root); its nodes and buckets use the policy.
  Map map(16, std::hash<uint64_t>(), std::equal_to<uint64_t>(),
          policy.template MakeAllocator<Value>());
  uint64_t checksum = 0;
  long rss_warm = 0;
  const double start = MonotonicSeconds();
  const double cpu_start = ProcessCpuSeconds();
  for (uint64_t t = 0; t < ops; ++t) {
    const size_t size = PayloadSize(t);
    char* data = policy.AllocPayload(size);
    data[0] = static_cast<char>(t);
    data[size - 1] = static_cast<char>(t >> 8);
    map.emplace(t, Payload{data, static_cast<uint32_t>(size)});
    if (t >= live) {
      auto it = map.find(t - live);
      checksum += static_cast<unsigned char>(it->second.data[0]) + it->second.size;
      policy.FreePayload(it->second.data);
      map.erase(it);
    }
    if (t + 1 == warm_at) rss_warm = CurrentRssKiB();
  }
  const double seconds = MonotonicSeconds() - start;
  const double cpu_seconds = ProcessCpuSeconds() - cpu_start;
  const long rss_end = CurrentRssKiB();
  Result result;
  result.Add("policy", Policy::Name())
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
  return FinishRun("churn", policy, result);
}

}  // namespace
}  // namespace broom::bench

int main(int argc, char** argv) { return broom::bench::Main(argc, argv); }
