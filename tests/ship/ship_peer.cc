// Copyright Broom authors.
//
// ship_peer: another process of a job, driven by tests/ship/ship_test.cc (not a test by
// itself). Its address plan comes from the environment, as an engine's worker's does. Modes:
//   ship_peer where            prints "PLAN ok=1 base=<hex> slice=<bytes> processes=<n>
//                              index=<n> block=<hex>" (block: the first block of a fresh
//                              region) or "PLAN ok=0 error=<message>"
//   ship_peer occupy <hex>     maps a page at <hex> first (before any region), then as `where`
#include <sys/mman.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "broom/region.h"
#include "broom/ship.h"
#include "broom/transferable_region.h"

namespace {

int Where() {
  broom::AddressPlan plan;
  std::string error;
  if (!broom::GetAddressPlan(&plan, &error)) {
    std::printf("PLAN ok=0 error=%s\n", error.c_str());
    return 0;
  }
  broom::TransferableRegion r;
  std::printf("PLAN ok=1 base=%#" PRIxPTR " slice=%zu processes=%u index=%u block=%p\n", plan.base,
              plan.slice_bytes, plan.processes, plan.index, r.Allocate(16));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  const std::string mode = argv[1];
  if (mode == "where") return Where();
  if (mode == "occupy" && argc > 2) {
    void* at = reinterpret_cast<void*>(std::strtoull(argv[2], nullptr, 16));
    if (mmap(at, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) != at) {
      std::printf("cannot occupy %p\n", at);
      return 1;
    }
    return Where();
  }
  std::fprintf(stderr, "ship_peer: unknown mode %s\n", mode.c_str());
  return 2;
}
