// Copyright Broom authors.
//
// broom_malloc_bench: the malloc rivals of broom_micro_bench, one allocator per process.
//
// This binary does not link libbroom (which links jemalloc, replacing malloc process-wide) nor
// any allocator: it calls plain malloc/free, and the allocator is chosen by LD_PRELOAD:
//   broom_malloc_bench                                                    glibc
//   LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 broom_malloc_bench         jemalloc
//   LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libmimalloc.so.2 broom_malloc_bench         mimalloc
//   LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 broom_malloc_bench tcmalloc
// The contender is named malloc_<winner> after the library that really defines `malloc` here
// (malloc_identity.h), and the benchmark names match broom_micro_bench's, so format_micro.py
// merges both outputs into one table:
//   alloc_free/size:<16|64|256|mixed>/n:<4096|100000>/malloc_<name>   malloc each, free each
//   bulk_free/n:<1000|100000|1000000>/size:64/malloc_<name>           free each (timed part)
//   handoff/records:256/size:64/malloc_<name>   producer mallocs, consumer frees each record
#include <cstdlib>
#include <string>

#include "bench/baselines/malloc_identity.h"
#include "bench/micro/scenarios.h"

namespace broom::bench {
namespace {

std::string g_name;  // malloc_<winner>; set before registration, outlives the benchmarks

// malloc + free, each object.
class Malloc {
 public:
  static const char* Name() { return g_name.c_str(); }
  struct Handle {};
  explicit Malloc(size_t) {}
  Handle Begin() { return {}; }
  static void* Allocate(Handle, size_t size) { return std::malloc(size); }
  template <size_t kSize>
  void End(void** ptrs, size_t n) {
    for (size_t i = 0; i < n; ++i) std::free(ptrs[i]);
  }
  void Teardown() {}
};

// scenarios.h wants a constexpr kName; the name is known only at run time, so register by hand.
template <size_t kSize>
void RegisterSize(const std::string& size_name) {
  for (int64_t n : {kSmallBatch, kLargeBatch}) {
    const std::string name =
        "alloc_free/size:" + size_name + "/n:" + std::to_string(n) + "/" + g_name;
    benchmark::RegisterBenchmark(name.c_str(), &BM_AllocFree<Malloc, kSize>,
                                 static_cast<size_t>(n));
  }
}

void* MallocAlloc(size_t size) { return std::malloc(size); }
void MallocFree(void* p, size_t) { std::free(p); }

}  // namespace
}  // namespace broom::bench

int main(int argc, char** argv) {
  using namespace broom::bench;  // NOLINT(google-build-using-namespace): main only
  std::string path;
  g_name = "malloc_" + MallocName(&path);
  RegisterSize<16>("16");
  RegisterSize<64>("64");
  RegisterSize<256>("256");
  RegisterSize<0>("mixed");
  for (int64_t n : {int64_t{1000}, int64_t{100000}, int64_t{1000000}}) {
    const std::string name =
        "bulk_free/n:" + std::to_string(n) + "/size:" + std::to_string(kBulkSize) + "/" + g_name;
    benchmark::RegisterBenchmark(name.c_str(), &BM_BulkFree<Malloc>, static_cast<size_t>(n))
        ->UseManualTime()
        ->Iterations(SmokeMode() ? 1 : 5);
  }
  RegisterHandoff(g_name.c_str(), &BM_HandoffMalloc<&MallocAlloc, &MallocFree>);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("malloc", path);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
