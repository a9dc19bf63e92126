// Tests of quarantine mode: freed region memory faults with a report naming the region.
#include <gtest/gtest.h>

#include "broom/check.h"
#include "broom/memory.h"
#include "broom/transferable_region.h"

namespace broom {
namespace {

TEST(QuarantineTest, QuarantinedMemoryIsNotARegionAndIsReusedAfterDisable) {
  EnableQuarantine({.duration_ms = 60000, .max_bytes = size_t{64} << 20});
  void* p;
  {
    TransferableRegion t;
    p = t.Allocate(100);
  }
  EXPECT_EQ(RegionOf(p), nullptr);
  // New regions keep working while others are quarantined.
  for (int i = 0; i < 1000; ++i) {
    TransferableRegion t;
    *static_cast<int*>(t.Allocate(sizeof(int))) = i;
  }
  DisableQuarantine();
  TransferableRegion u;
  EXPECT_NE(u.Allocate(100), nullptr);
}

TEST(QuarantineTest, BoundedByMaxBytes) {
  EnableQuarantine({.duration_ms = 60000, .max_bytes = 1 << 20});
  for (int i = 0; i < 2000; ++i) {
    TransferableRegion t;
    t.Allocate(1000);
  }
  // Each release evicts the oldest once the cap is reached: the program keeps running in
  // bounded memory.
  EXPECT_LT(GetGlobalStats().committed_bytes, size_t{1} << 30);
  DisableQuarantine();
}

TEST(QuarantineDeathTest, StaleReadNamesTheFreedRegion) {
  EXPECT_DEATH(
      {
        EnableQuarantine({.duration_ms = 60000});
        volatile int* p;
        {
          TransferableRegion t(RegionOptions{.name = "batch"});
          p = static_cast<volatile int*>(t.Allocate(sizeof(int)));
          *p = 1;
        }
        int v = *p;
        (void)v;
      },
      "access to freed region memory at 0x[0-9a-f]+: transferable region #[0-9]+ 'batch' was "
      "freed [0-9]+ ms ago");
}

}  // namespace
}  // namespace broom
