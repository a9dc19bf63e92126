// Copyright Broom authors.
//
// oom_child: a helper process for os_refusal_test.cc (not a test by itself). It optionally lowers
// its own RLIMIT_AS before Broom reserves its space, then exhausts region memory and checks that
// Broom fails cleanly. Usage:
//   oom_child <headroom_mib>     headroom_mib > 0: RLIMIT_AS = current address space + headroom
//                                0: no limit (use BROOM_RESERVE_GB to shrink the space instead)
// Prints "reserved=<bytes> big=<n> small=<n> error=<name>" and exits 0 when every check passed;
// prints "oom_child: <what failed>" and exits 1 otherwise. If the space cannot be reserved at all,
// Broom itself aborts with "broom: fatal: cannot reserve address space ...".
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "broom/actor_region.h"
#include "broom/memory.h"
#include "broom/transferable_region.h"
#include "tests/reliability/witness.h"

namespace {

size_t AddressSpaceBytes() {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return 0;
  char line[256];
  size_t kib = 0;
  while (std::fgets(line, sizeof(line), f) != nullptr) {
    if (std::strncmp(line, "VmSize:", 7) == 0) kib = std::strtoull(line + 7, nullptr, 10);
  }
  std::fclose(f);
  return kib << 10;
}

int Fail(const char* what) {
  std::printf("oom_child: %s\n", what);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  size_t headroom_mib = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 0;
  if (headroom_mib > 0) {
    // Before anything touches Broom: its space is reserved at first use.
    rlim_t limit = AddressSpaceBytes() + (headroom_mib << 20);
    rlimit rl{limit, limit};
    if (setrlimit(RLIMIT_AS, &rl) != 0) return Fail("setrlimit failed");
  }
  using broom::AllocError;
  broom::testing::Witness witness;
  if (!witness.Intact()) return Fail("witness not filled");

  // Exhaust the space with big, untouched allocations (no physical memory is used).
  broom::TransferableRegion hog;
  int big = 0;
  while (hog.Allocate(size_t{32} << 20, 4096) != nullptr) ++big;
  AllocError error = hog.region().last_error();
  if (error != AllocError::kOutOfMemory) return Fail("big allocations did not end in kOutOfMemory");
  // Then with new regions (4 KiB each) until none can be had.
  std::vector<std::unique_ptr<broom::ActorRegion>> regions;
  int small = 0;
  for (; small < 2000000; ++small) {
    try {
      regions.push_back(std::make_unique<broom::ActorRegion>());
    } catch (const std::bad_alloc&) {
      break;
    }
  }
  if (broom::LastAllocError() != AllocError::kOutOfMemory) {
    return Fail("region creation did not end in kOutOfMemory");
  }
  if (!witness.Intact()) return Fail("witness damaged by exhaustion");
  // Everything still works after memory comes back.
  regions.clear();
  hog.Free();
  broom::TransferableRegion again;
  char* p = static_cast<char*>(again.Allocate(size_t{32} << 20));
  if (p == nullptr) return Fail("no memory after freeing the hog");
  std::memset(p, 1, 1 << 20);
  if (!witness.Intact()) return Fail("witness damaged after recovery");
  std::printf("reserved=%zu big=%d small=%d error=%s\n", broom::GetGlobalStats().reserved_bytes,
              big, small, broom::ErrorName(error));
  return 0;
}
