// Copyright Broom authors.
//
// WarmCache (alloc/chunk/warm_cache.h) driven directly, on made-up addresses: purges are
// recorded, not made.
#include "alloc/chunk/warm_cache.h"

#include <gtest/gtest.h>

#include <utility>
#include <vector>

namespace broom::internal {
namespace {

std::vector<std::pair<uintptr_t, size_t>> g_purged;
void RecordPurge(void* p, size_t size) {
  g_purged.push_back({reinterpret_cast<uintptr_t>(p), size});
}

constexpr uintptr_t kBase = uintptr_t{1} << 40;
constexpr size_t kMiB = size_t{1} << 20;
uintptr_t Block(size_t i) { return kBase + i * kMiB; }

class WarmCacheTest : public ::testing::Test {
 protected:
  void SetUp() override { g_purged.clear(); }
  WarmCache cache{&RecordPurge};
};

TEST_F(WarmCacheTest, AFreedBlockStaysWarmForItsNextInstallWithinTheCap) {
  cache.Add(Block(0), kMiB, 10);
  EXPECT_EQ(cache.bytes(), kMiB);
  EXPECT_TRUE(cache.Take(Block(0), kMiB, 20));  // resident: no fault per page
  EXPECT_EQ(cache.bytes(), 0u);
  EXPECT_FALSE(cache.Take(Block(1), kMiB, 30));  // never warm
  EXPECT_TRUE(g_purged.empty());
  EXPECT_EQ(cache.cap(), WarmCache::kMinCap);
}

TEST_F(WarmCacheTest, DroppingAnOverlapPurgesThePartsOutsideTheNewBlock) {
  cache.Add(Block(0), 4 * kMiB, 10);
  // A 1 MiB block installed in the middle of a warm 4 MiB one: not the same block.
  EXPECT_FALSE(cache.Drop(Block(1), kMiB));
  EXPECT_EQ(cache.bytes(), 0u);
  ASSERT_EQ(g_purged.size(), 2u);
  EXPECT_EQ(g_purged[0], (std::pair{Block(0), kMiB}));
  EXPECT_EQ(g_purged[1], (std::pair{Block(2), 2 * kMiB}));
}

TEST_F(WarmCacheTest, OverTheCapTheOldestGoAndComingBackRaisesTheCap) {
  const size_t n = WarmCache::kMinCap / kMiB + 8;  // 40 blocks of 1 MiB
  for (size_t i = 0; i < n; ++i) cache.Add(Block(i), kMiB, 10);
  EXPECT_EQ(cache.bytes(), WarmCache::kMinCap);
  ASSERT_EQ(g_purged.size(), 8u);  // the 8 oldest
  for (size_t i = 0; i < 8; ++i) EXPECT_EQ(g_purged[i].first, Block(i));
  // The lender cycles: the purged ones come back first, cold, and each raises the cap.
  for (size_t i = 0; i < 8; ++i) EXPECT_FALSE(cache.Take(Block(i), kMiB, 20)) << i;
  EXPECT_EQ(cache.cap(), WarmCache::kMinCap + 8 * kMiB);
  for (size_t i = 8; i < n; ++i) EXPECT_TRUE(cache.Take(Block(i), kMiB, 20)) << i;
  // The next cycle fits: every block stays warm, none is purged.
  g_purged.clear();
  for (size_t i = 0; i < n; ++i) cache.Add(Block(i), kMiB, 30);
  EXPECT_TRUE(g_purged.empty());
  for (size_t i = 0; i < n; ++i) EXPECT_TRUE(cache.Take(Block(i), kMiB, 40)) << i;
}

TEST_F(WarmCacheTest, TheCapNeverPassesItsMaximum) {
  const size_t n = WarmCache::kMaxCap / kMiB + 64;
  for (int cycle = 0; cycle < 3; ++cycle) {
    for (size_t i = 0; i < n; ++i) cache.Take(Block(i), kMiB, 10);
    for (size_t i = 0; i < n; ++i) cache.Add(Block(i), kMiB, 10);
    EXPECT_LE(cache.cap(), WarmCache::kMaxCap);
    EXPECT_LE(cache.bytes(), cache.cap());
  }
  EXPECT_EQ(cache.cap(), WarmCache::kMaxCap);
}

TEST_F(WarmCacheTest, TheCapHalvesOnceTheOldestWarmBlockWaitedUnused) {
  const size_t n = WarmCache::kMinCap / kMiB + 16;  // 48 MiB
  for (size_t i = 0; i < n; ++i) cache.Add(Block(i), kMiB, 0);
  for (size_t i = 0; i < n; ++i) cache.Take(Block(i), kMiB, 100);  // 16 ghosts raise the cap
  ASSERT_EQ(cache.cap(), n * kMiB);
  for (size_t i = 0; i < n; ++i) cache.Add(Block(i), kMiB, 200);
  ASSERT_EQ(cache.bytes(), n * kMiB);
  // Within kDecayMs of the oldest going warm the cap stays: one more block pushes out the oldest.
  g_purged.clear();
  cache.Add(Block(n), kMiB, 200 + WarmCache::kDecayMs);
  EXPECT_EQ(cache.cap(), n * kMiB);
  ASSERT_EQ(g_purged.size(), 1u);
  EXPECT_EQ(g_purged[0].first, Block(0));
  // Later: the cap halves (not below the minimum) and the oldest go down to it.
  g_purged.clear();
  cache.Add(Block(n + 1), kMiB, 201 + WarmCache::kDecayMs);
  EXPECT_EQ(cache.cap(), WarmCache::kMinCap);
  EXPECT_EQ(cache.bytes(), WarmCache::kMinCap);
  EXPECT_EQ(g_purged.size(), n + 1 - WarmCache::kMinCap / kMiB);
  EXPECT_EQ(g_purged.front().first, Block(1));
}

}  // namespace
}  // namespace broom::internal
