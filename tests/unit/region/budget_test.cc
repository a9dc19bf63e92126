// Tests of per-region and process-wide budgets.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "broom/actor_region.h"
#include "broom/context.h"
#include "broom/memory.h"
#include "broom/transferable_region.h"

namespace broom {
namespace {

TEST(BudgetTest, RegionBudgetFailsCleanlyAndKeepsEverything) {
  TransferableRegion t(RegionOptions{.budget_bytes = 1 << 20});
  std::vector<int*> ptrs;
  for (;;) {
    auto* p = static_cast<int*>(t.Allocate(1000));
    if (p == nullptr) break;
    *p = static_cast<int>(ptrs.size());
    ptrs.push_back(p);
  }
  EXPECT_EQ(t.region().last_error(), AllocError::kRegionBudget);
  EXPECT_LE(t.stats().block_bytes, size_t{1} << 20);
  EXPECT_GT(ptrs.size(), 900u);  // most of the budget was usable
  for (size_t i = 0; i < ptrs.size(); ++i) ASSERT_EQ(*ptrs[i], static_cast<int>(i));
  struct Big {
    char bytes[2000];
  };
  EXPECT_THROW(NewIn<Big>(t.region()), std::bad_alloc);
  t.region().SetBudget(0);  // lifting the budget makes it usable again
  EXPECT_NE(t.Allocate(1000), nullptr);
}

TEST(BudgetTest, ActorRegionBudget) {
  ActorRegion a(RegionOptions{.budget_bytes = 256 << 10});
  size_t n = 0;
  while (a.Allocate(100) != nullptr) ++n;
  EXPECT_EQ(a.region().last_error(), AllocError::kRegionBudget);
  EXPECT_LE(a.stats().block_bytes, 256u << 10);
  EXPECT_GT(n, 1000u);
}

TEST(BudgetTest, ProcessBudgetLimitsAllRegionsTogether) {
  size_t held = GetGlobalStats().block_bytes;
  SetProcessBudget(held + (size_t{4} << 20));
  std::vector<TransferableRegion> regions;
  AllocError error = AllocError::kNone;
  for (int i = 0; i < 100 && error == AllocError::kNone; ++i) {
    regions.emplace_back();
    if (regions.back().Allocate(200 << 10) == nullptr) error = regions.back().region().last_error();
  }
  SetProcessBudget(0);
  EXPECT_EQ(error, AllocError::kProcessBudget);
  EXPECT_LE(GetGlobalStats().block_bytes, held + (size_t{4} << 20));
}

}  // namespace
}  // namespace broom
