// Copyright Broom authors.
//
// broom_micro_bench: Broom against glibc, jemalloc and a bump-pointer floor, side by side in
// one run. See bench/README.md for what each benchmark measures and how to run it.
#include <gnu/libc-version.h>

#include <string>

#include "bench/micro/bench_common.h"

namespace broom::bench {
namespace {

void AddAllocatorContext() {
  benchmark::AddCustomContext("glibc", gnu_get_libc_version());
#if BROOM_BENCH_HAVE_JEMALLOC
  const char* version = nullptr;
  size_t len = sizeof(version);
  if (mallctl("version", &version, &len, nullptr, 0) == 0 && version != nullptr) {
    benchmark::AddCustomContext("jemalloc", version);
  }
#else
  benchmark::AddCustomContext("jemalloc", "not built (BROOM_WITH_JEMALLOC=OFF)");
#endif
}

}  // namespace
}  // namespace broom::bench

int main(int argc, char** argv) {
  using namespace broom::bench;  // NOLINT(google-build-using-namespace): main only
  // Registration order is output order: every scenario's contenders run next to each other.
  RegisterRegionAllocBenchmarks();
  RegisterBulkFreeBenchmarks();
  RegisterRegionCreateBenchmarks();
  RegisterHandoffBenchmarks();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  AddAllocatorContext();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
