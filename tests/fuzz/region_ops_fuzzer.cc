// Copyright Broom authors.
//
// libFuzzer entry point for the region-operations harness (built only with clang and
// -DBROOM_BUILD_FUZZERS=ON; see scripts/run-fuzz.sh).
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/region_ops_harness.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  broom::fuzz::RunRegionOps(data, size);
  return 0;
}
