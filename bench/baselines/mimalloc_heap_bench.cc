// Copyright Broom authors.
//
// broom_mimalloc_heap_bench: mimalloc's region-like API, side by side with broom_micro_bench.
//
// A mimalloc heap (mi_heap_new) is allocated from with mi_heap_malloc and freed in bulk with
// mi_heap_destroy (mimalloc 2.0.9: only the creating thread may allocate in or destroy it).
// This binary links libmimalloc, which makes mimalloc the process's malloc too (reported as
// the `malloc` context field); it does not link libbroom. Names match broom_micro_bench's:
//   alloc_free/size:<16|64|256|mixed>/n:<4096|100000>/mimalloc_heap   new, fill, destroy
//   bulk_free/n:<1000|100000|1000000>/size:64/mimalloc_heap            mi_heap_destroy (timed)
//   bulk_free/n:<1000|100000|1000000>/size:64/mimalloc_heap_free_each  mi_free each (timed)
#include <mimalloc.h>

#include <string>

#include "bench/baselines/malloc_identity.h"
#include "bench/micro/scenarios.h"

namespace broom::bench {
namespace {

class MimallocHeap {
 public:
  static constexpr const char* kName = "mimalloc_heap";
  using Handle = mi_heap_t*;
  explicit MimallocHeap(size_t) {}
  Handle Begin() { return heap_ = mi_heap_new(); }
  static void* Allocate(Handle h, size_t size) { return mi_heap_malloc(h, size); }
  template <size_t kSize>
  void End(void**, size_t) {
    mi_heap_destroy(heap_);
    heap_ = nullptr;
  }
  void Teardown() {}

 protected:
  mi_heap_t* heap_ = nullptr;
};

// mi_free on each object; the (then empty) heap is deleted in Teardown, untimed.
class MimallocHeapFreeEach : public MimallocHeap {
 public:
  static constexpr const char* kName = "mimalloc_heap_free_each";
  explicit MimallocHeapFreeEach(size_t bytes) : MimallocHeap(bytes) {}
  template <size_t kSize>
  void End(void** ptrs, size_t n) {
    for (size_t i = 0; i < n; ++i) mi_free(ptrs[i]);
  }
  void Teardown() {
    mi_heap_delete(heap_);
    heap_ = nullptr;
  }
};

}  // namespace
}  // namespace broom::bench

int main(int argc, char** argv) {
  using namespace broom::bench;  // NOLINT(google-build-using-namespace): main only
  RegisterAllocFreeSize<MimallocHeap, 16>("16");
  RegisterAllocFreeSize<MimallocHeap, 64>("64");
  RegisterAllocFreeSize<MimallocHeap, 256>("256");
  RegisterAllocFreeSize<MimallocHeap, 0>("mixed");
  RegisterBulkFree<MimallocHeap>();
  RegisterBulkFree<MimallocHeapFreeEach>();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  std::string path;
  MallocName(&path);
  benchmark::AddCustomContext("malloc", path);
  benchmark::AddCustomContext("mimalloc", std::to_string(mi_version()));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
