// Tests of TemporaryRegion and its scopes.
#include <gtest/gtest.h>

#include <memory_resource>
#include <thread>
#include <vector>

#include "broom/temporary_region.h"

namespace broom {
namespace {

TEST(TemporaryRegionTest, ScopeFreesEverythingAndKeepsBlocksForTheNextScope) {
  TemporaryRegion scratch;
  size_t held_after_first = 0;
  for (int round = 0; round < 100; ++round) {
    TemporaryRegion::Scope s(scratch);
    EXPECT_EQ(CurrentRegion(), &scratch.region());
    std::pmr::vector<int> v(CurrentResource());
    for (int i = 0; i < 50000; ++i) v.push_back(i);
    if (round == 0) held_after_first = scratch.stats().block_bytes;
    // Later rounds reuse the kept blocks instead of growing.
    EXPECT_LE(scratch.stats().block_bytes, held_after_first);
  }
  EXPECT_EQ(CurrentRegion(), nullptr);
  EXPECT_EQ(scratch.stats().bytes_requested, 0u);
}

TEST(TemporaryRegionTest, NestedScopesRewindInLifoOrder) {
  TemporaryRegion scratch;
  TemporaryRegion::Scope outer(scratch);
  int* a = NewIn<int>(scratch.region(), 1);
  size_t outer_bytes = scratch.stats().bytes_requested;
  {
    TemporaryRegion::Scope inner(scratch);
    for (int i = 0; i < 10000; ++i) NewIn<int>(scratch.region(), i);
    EXPECT_GT(scratch.stats().bytes_requested, outer_bytes);
  }
  EXPECT_EQ(scratch.stats().bytes_requested, outer_bytes);
  EXPECT_EQ(*a, 1);  // outer allocations survive the inner scope
  int* b = NewIn<int>(scratch.region(), 2);
  EXPECT_EQ(*b, 2);
}

TEST(TemporaryRegionTest, DestructorsRegisteredInAScopeRunAtItsExit) {
  static int destroyed = 0;
  destroyed = 0;
  struct D {
    ~D() { ++destroyed; }
  };
  TemporaryRegion scratch;
  {
    TemporaryRegion::Scope s(scratch);
    New<D>();
    New<D>();
    EXPECT_EQ(destroyed, 0);
  }
  EXPECT_EQ(destroyed, 2);
}

TEST(TemporaryRegionTest, LargeAllocationsInAScopeAreReleasedAtExit) {
  TemporaryRegion scratch(RegionOptions{.retain_bytes = size_t{1} << 20});
  size_t base = scratch.stats().block_bytes;
  {
    TemporaryRegion::Scope s(scratch);
    ASSERT_NE(scratch.Allocate(size_t{16} << 20), nullptr);
    EXPECT_GT(scratch.stats().block_bytes, size_t{16} << 20);
  }
  EXPECT_LE(scratch.stats().block_bytes, base + (size_t{1} << 20));
}

TEST(TemporaryRegionTest, ResetKeepsAtMostRetainBytes) {
  TemporaryRegion scratch(RegionOptions{.retain_bytes = 64 << 10});
  for (int i = 0; i < 100000; ++i) scratch.Allocate(100);
  scratch.Reset();
  EXPECT_LE(scratch.stats().block_bytes, (64u << 10) + 4096);
}

// A Scope opened on another thread is tested in tests/reliability/misuse_death_test.cc.
using TemporaryRegionDeathTest = ::testing::Test;

TEST(TemporaryRegionDeathTest, ResetInsideAScopeIsFatal) {
  EXPECT_DEATH(
      {
        TemporaryRegion scratch;
        TemporaryRegion::Scope s(scratch);
        scratch.Reset();
      },
      "TemporaryRegion::Reset of region .* while it is open");
}

}  // namespace
}  // namespace broom
