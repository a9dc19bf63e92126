// Tests of quarantine mode: freed region memory faults with a report naming the region.
#include <gtest/gtest.h>

#include <map>

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

// Whether `p`'s block is quarantined now: its chunk carries the quarantine mark and the lookup
// refuses the block (BlockOfQuarantined: its page is protected).
bool Quarantined(const void* p) {
  if (!internal::InSpace(p)) return false;
  const uintptr_t offset = reinterpret_cast<uintptr_t>(p) - internal::g_space.base;
  const uintptr_t word = internal::g_space.chunk_map[offset >> internal::kChunkShift].load();
  return (word & internal::kMapQuarantined) != 0 && internal::BlockOf(p) == nullptr;
}

TEST(QuarantineTest, QuarantinedBytesNeverExceedMaxBytes) {
  constexpr size_t kMax = size_t{1} << 20;
  EnableQuarantine({.duration_ms = 60000, .max_bytes = kMax});
  // Blocks of freed regions, by header address (evicted blocks are reused by later regions).
  std::map<const void*, size_t> freed;
  const void* newest = nullptr;
  for (int i = 0; i < 64; ++i) {  // 64 regions of 4 KiB + 64 KiB blocks: 4.25 MiB freed
    TransferableRegion t;
    for (const void* p :
         {static_cast<const void*>(t.Allocate(60000)), static_cast<const void*>(&t.region())}) {
      internal::BlockHeader* b = internal::BlockOf(p);
      freed[b] = b->size;
      newest = b;
    }
  }
  size_t quarantined = 0;
  for (auto [block, bytes] : freed) {
    if (Quarantined(block)) quarantined += bytes;
  }
  // The newest stay, up to the bound; older ones were released as it was reached.
  EXPECT_LE(quarantined, kMax);
  EXPECT_GE(quarantined, kMax / 2);
  EXPECT_TRUE(Quarantined(newest));
  DisableQuarantine();
  for (auto [block, bytes] : freed) EXPECT_FALSE(Quarantined(block));
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
