// Tests of the address plan (alloc/chunk/address_plan.h) and of a space reserved at one
// (alloc/chunk/space.h): the range at its exact address, carving only in the own slice, a taken
// range never reserved elsewhere, invalid plans named. Each test reserves a space of its own at
// a plan of its own (never published to g_space), above the process's default range.
#include "alloc/chunk/address_plan.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include "alloc/chunk/space.h"

namespace broom::internal {
namespace {

// 4 slices of 1 GiB at 48 TiB (ThreadSanitizer builds: in its high application range, above the
// process's own plan).
#if defined(__SANITIZE_THREAD__)
constexpr uintptr_t kTestBase = 0x7ec000000000;
#else
constexpr uintptr_t kTestBase = 0x300000000000;
#endif
constexpr size_t kGiB = size_t{1} << 30;

AddressPlan TestPlan(uint32_t index) { return {kTestBase, kGiB, 4, index}; }

TEST(AddressPlanTest, SliceOfNamesTheProcessOfAnAddress) {
  AddressPlan p = TestPlan(1);
  EXPECT_EQ(p.range_bytes(), 4 * kGiB);
  EXPECT_EQ(p.SliceBase(2), kTestBase + 2 * kGiB);
  EXPECT_EQ(p.SliceOf(kTestBase), 0);
  EXPECT_EQ(p.SliceOf(kTestBase + 3 * kGiB - 1), 2);
  EXPECT_EQ(p.SliceOf(kTestBase + 4 * kGiB), -1);
  EXPECT_EQ(p.SliceOf(kTestBase - 1), -1);
}

TEST(AddressPlanTest, InvalidPlansAreNamed) {
  EXPECT_EQ(PlanProblem(TestPlan(3)), nullptr);
  EXPECT_NE(PlanProblem(TestPlan(4)), nullptr);  // slice index out of range
  EXPECT_NE(std::strstr(PlanProblem(TestPlan(4)), "BROOM_PLAN_INDEX"), nullptr);
  EXPECT_NE(PlanProblem({kTestBase + 4096, kGiB, 4, 0}), nullptr);      // not whole GiB
  EXPECT_NE(PlanProblem({kUserSpaceEnd - kGiB, kGiB, 2, 0}), nullptr);  // ends above user space
  EXPECT_NE(std::strstr(PlanProblem({kUserSpaceEnd - kGiB, kGiB, 2, 0}), "128 TiB"), nullptr);
  EXPECT_NE(PlanProblem({kTestBase, kGiB, 0, 0}), nullptr);
}

TEST(AddressPlanTest, TheProcessPlanHasDefaultsForTensOfProcesses) {
  AddressPlan p = PlanFromOptions();  // the test runs without BROOM_PLAN_* set
  EXPECT_EQ(PlanProblem(p), nullptr);
#if !defined(__SANITIZE_THREAD__)
  EXPECT_GE(p.processes, 32u);
#endif
  EXPECT_EQ(p.slice_bytes, size_t{64} << 30);
  EXPECT_EQ(p.index, 0u);
}

TEST(SpaceAtPlanTest, ReservesTheWholeRangeAtItsAddressAndCarvesOnlyInItsSlice) {
  Space space(TestPlan(2));
  ASSERT_EQ(space.plan(), TestPlan(2)) << space.plan_problem();
  EXPECT_EQ(reinterpret_cast<uintptr_t>(space.base()), kTestBase);
  EXPECT_EQ(space.size(), 4 * kGiB);
  EXPECT_EQ(space.chunks(), 4 * kGiB / kChunkSize);  // the map covers every slice
  EXPECT_EQ(reinterpret_cast<uintptr_t>(space.slice_base()), kTestBase + 2 * kGiB);
  EXPECT_EQ(space.slice_bytes(), kGiB);
  AllocError error = AllocError::kNone;
  char* first = space.Carve(1, &error);
  EXPECT_EQ(first, space.slice_base());
  EXPECT_TRUE(space.InOwnSlice(first));
  EXPECT_FALSE(space.InOwnSlice(space.base()));
  first[0] = 1;  // committed
  // The slice runs out at its end, not at the range's.
  EXPECT_NE(space.Carve(kGiB / kChunkSize - 1, &error), nullptr);
  EXPECT_EQ(space.Carve(1, &error), nullptr);
  EXPECT_EQ(error, AllocError::kOutOfMemory);
  EXPECT_EQ(space.carved_bytes(), kGiB);
  // Map words of any slice can be set (blocks installed from other processes).
  space.SetMap(space.base() + kChunkSize, 1, 0x1234);
  EXPECT_EQ(space.MapWord(space.base() + kChunkSize + 5), 0x1234u);
}

TEST(SpaceAtPlanTest, ATakenRangeIsNeverReservedElsewhereAndSaysWhy) {
  // Something else sits inside slice 3.
  void* squatter = mmap(reinterpret_cast<void*>(kTestBase + 3 * kGiB + 4096), 4096, PROT_READ,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  ASSERT_NE(squatter, MAP_FAILED) << std::strerror(errno);
  {
    Space space(TestPlan(0));
    EXPECT_EQ(space.plan().processes, 0u);  // not at a plan
    EXPECT_EQ(space.requested_plan(), TestPlan(0));
    EXPECT_EQ(space.plan_errno(), EEXIST);
    ASSERT_NE(space.plan_problem(), nullptr);
    // A usable space of one slice, and none of it inside the plan's range.
    EXPECT_EQ(space.slice_bytes(), kGiB);
    EXPECT_EQ(TestPlan(0).SliceOf(reinterpret_cast<uintptr_t>(space.base())), -1);
    EXPECT_EQ(TestPlan(0).SliceOf(reinterpret_cast<uintptr_t>(space.base()) + kGiB - 1), -1);
    AllocError error = AllocError::kNone;
    EXPECT_NE(space.Carve(1, &error), nullptr);
  }
  munmap(squatter, 4096);
  Space again(TestPlan(0));  // free again: placed
  EXPECT_EQ(again.plan(), TestPlan(0));
}

TEST(SpaceAtPlanTest, AnInvalidPlanFallsBackWithItsProblem) {
  Space space(TestPlan(7));
  EXPECT_EQ(space.plan().processes, 0u);
  EXPECT_EQ(space.plan_errno(), 0);
  EXPECT_STREQ(space.plan_problem(), PlanProblem(TestPlan(7)));
}

}  // namespace
}  // namespace broom::internal
