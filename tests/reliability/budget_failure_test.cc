// Copyright Broom authors.
//
// Budgets exceeded, per region and for the process: allocation fails cleanly (null with
// kRegionBudget / kProcessBudget, std::bad_alloc from typed helpers and region constructors),
// nothing already allocated is touched, and lifting the budget makes everything work again.
// Rows of docs/reliability.md.
#include <gtest/gtest.h>

#include <cstring>
#include <new>
#include <vector>

#include "broom/actor_region.h"
#include "broom/context.h"
#include "broom/memory.h"
#include "broom/region.h"
#include "broom/temporary_region.h"
#include "broom/transferable_region.h"
#include "tests/reliability/witness.h"

namespace broom {
namespace {

using testing::Witness;

// Fills `r` with 1000-byte patterned objects until an allocation fails; returns them.
std::vector<char*> FillUntilFailure(Region& r, size_t limit = 100000) {
  std::vector<char*> out;
  for (size_t i = 0; i < limit; ++i) {
    auto* p = static_cast<char*>(r.Allocate(1000));
    if (p == nullptr) break;
    std::memset(p, static_cast<int>(i & 0xff), 1000);
    out.push_back(p);
  }
  return out;
}

bool StillFilled(const std::vector<char*>& objects) {
  for (size_t i = 0; i < objects.size(); ++i) {
    for (size_t k = 0; k < 1000; ++k) {
      if (static_cast<unsigned char>(objects[i][k]) != (i & 0xff)) return false;
    }
  }
  return true;
}

struct ProcessBudgetGuard {
  ~ProcessBudgetGuard() { SetProcessBudget(0); }
};

TEST(BudgetFailureTest, RegionBudgetExceededFailsCleanlyInEveryKind) {
  Witness witness;
  constexpr size_t kBudget = 256 << 10;
  TransferableRegion t(RegionOptions{.budget_bytes = kBudget});
  ActorRegion a(RegionOptions{.budget_bytes = kBudget});
  TemporaryRegion tmp(RegionOptions{.budget_bytes = kBudget});
  for (Region* r : std::initializer_list<Region*>{&t.region(), &a.region(), &tmp.region()}) {
    std::vector<char*> objects = FillUntilFailure(*r);
    EXPECT_GT(objects.size(), 100u) << KindName(r->kind());
    EXPECT_EQ(r->last_error(), AllocError::kRegionBudget) << KindName(r->kind());
    EXPECT_EQ(LastAllocError(), AllocError::kRegionBudget);
    EXPECT_LE(r->stats().block_bytes, kBudget);
    // Every route into the region fails the same way.
    EXPECT_EQ(r->Allocate(size_t{1} << 20), nullptr);
    EXPECT_THROW(NewArrayIn<char>(*r, 100000), std::bad_alloc);
    {
      ContextScope open(*r);
      EXPECT_THROW(NewArray<char>(100000), std::bad_alloc);
    }
    EXPECT_TRUE(StillFilled(objects)) << KindName(r->kind());
    // Lifting the budget makes the region usable again.
    r->SetBudget(0);
    EXPECT_NE(r->Allocate(size_t{1} << 20), nullptr) << KindName(r->kind());
    EXPECT_TRUE(StillFilled(objects));
  }
  EXPECT_TRUE(witness.Intact());
}

TEST(BudgetFailureTest, LoweringABudgetBelowTheFootprintKeepsEverything) {
  Witness witness;
  TransferableRegion t;
  std::vector<char*> objects = FillUntilFailure(t.region(), 500);
  ASSERT_EQ(objects.size(), 500u);
  size_t held = t.stats().block_bytes;
  t.region().SetBudget(held / 2);
  std::vector<char*> more = FillUntilFailure(t.region(), 10000);
  EXPECT_EQ(t.region().last_error(), AllocError::kRegionBudget);
  EXPECT_EQ(t.stats().block_bytes, held);  // no block was given up, none taken
  EXPECT_TRUE(StillFilled(objects));
  EXPECT_TRUE(witness.Intact());
}

TEST(BudgetFailureTest, ProcessBudgetExceededFailsCleanlyAndRegionCreationThrows) {
  Witness witness;
  ProcessBudgetGuard guard;
  TransferableRegion t;
  SetProcessBudget(GetGlobalStats().block_bytes + (size_t{2} << 20));
  std::vector<char*> objects = FillUntilFailure(t.region());
  EXPECT_EQ(t.region().last_error(), AllocError::kProcessBudget);
  EXPECT_GT(objects.size(), 1000u);
  // New regions cannot be had either: the constructors throw and say why.
  std::vector<ActorRegion> actors;
  bool threw = false;
  for (int i = 0; i < 100000 && !threw; ++i) {
    try {
      actors.emplace_back();
    } catch (const std::bad_alloc&) {
      threw = true;
      EXPECT_EQ(LastAllocError(), AllocError::kProcessBudget);
    }
  }
  EXPECT_TRUE(threw);
  EXPECT_LE(GetGlobalStats().block_bytes, ProcessBudget());
  EXPECT_TRUE(StillFilled(objects));
  EXPECT_TRUE(witness.Intact());
  // Freeing memory makes room again, even with the budget still set.
  actors.clear();
  t.Free();
  EXPECT_NO_THROW({ TransferableRegion again; });
  SetProcessBudget(0);
  TransferableRegion after;
  EXPECT_NE(after.Allocate(size_t{8} << 20), nullptr);
  EXPECT_TRUE(witness.Intact());
}

}  // namespace
}  // namespace broom
