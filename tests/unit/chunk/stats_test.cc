// Tests of the block counters (alloc/chunk/stats.h): per-thread shares, folding, the peak and the
// process budget. Two Locals stand for two threads.
#include "alloc/chunk/stats.h"

#include <gtest/gtest.h>

namespace broom::internal {
namespace {

constexpr size_t kKiB = 1024;

TEST(BlockStatsTest, ThePeakIsExactForOneThreadBelowTheFoldThreshold) {
  BlockStats stats;
  BlockStats::Local mine;
  AllocError error = AllocError::kNone;
  ASSERT_TRUE(stats.Charge(&mine, 300 * kKiB, &error));
  stats.Uncharge(&mine, 300 * kKiB);
  ASSERT_TRUE(stats.Charge(&mine, 100 * kKiB, &error));
  EXPECT_EQ(stats.held(&mine), 100 * kKiB);
  EXPECT_EQ(stats.peak(&mine), 300 * kKiB);  // nothing folded yet: the thread's own peak
  stats.Fold(&mine);                         // as at thread exit
  EXPECT_EQ(stats.peak(nullptr), 300 * kKiB);
  EXPECT_EQ(stats.held(nullptr), 100 * kKiB);
}

TEST(BlockStatsTest, SharesFoldEveryMiBEitherWay) {
  BlockStats stats;
  BlockStats::Local a;
  BlockStats::Local b;
  AllocError error = AllocError::kNone;
  stats.Charge(&a, 512 * kKiB, &error);
  EXPECT_EQ(stats.held(&b), 0u);  // not folded: another thread does not see it yet
  stats.Charge(&a, 600 * kKiB, &error);
  EXPECT_EQ(stats.held(&b), 1112 * kKiB);
  stats.Uncharge(&b, 1112 * kKiB);  // b frees what a allocated (a handed its region over)
  EXPECT_EQ(stats.held(&a), 0u);
  EXPECT_EQ(stats.peak(nullptr), 1112 * kKiB);
}

TEST(BlockStatsTest, TheBudgetIsExactAcrossThreadsAndAFailedChargeChargesNothing) {
  BlockStats stats;
  BlockStats::Local a;
  BlockStats::Local b;
  AllocError error = AllocError::kNone;
  stats.set_budget(1024 * kKiB);
  ASSERT_TRUE(stats.Charge(&a, 600 * kKiB, &error));
  EXPECT_FALSE(stats.Charge(&b, 600 * kKiB, &error));
  EXPECT_EQ(error, AllocError::kProcessBudget);
  EXPECT_EQ(stats.held(nullptr), 600 * kKiB);
  EXPECT_TRUE(stats.Charge(&b, 424 * kKiB, &error));  // exactly up to the budget
  stats.Uncharge(&a, 600 * kKiB);
  EXPECT_TRUE(stats.Charge(&b, 600 * kKiB, &error));
  stats.set_budget(0);
  EXPECT_TRUE(stats.Charge(&a, 64 * 1024 * kKiB, &error));  // unlimited again
}

}  // namespace
}  // namespace broom::internal
