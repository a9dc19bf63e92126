// Copyright Broom authors.
//
// Regions across processes (broom/ship.h), with the processes of a job played by
// tests/ship/ship_peer.cc: the address plan in several processes (the same range everywhere,
// each its own slice; a taken range is a clear error).
#include "broom/ship.h"

#include <gtest/gtest.h>

#include <cinttypes>
#include <cstdio>
#include <string>

#include "broom/transferable_region.h"
#include "tests/ship/peer_process.h"

namespace broom {
namespace {

using testing::PeerProcess;

std::vector<std::string> PlanEnv(const AddressPlan& plan, uint32_t index) {
  return {"BROOM_PLAN_BASE_GB=" + std::to_string(plan.base >> 30),
          "BROOM_RESERVE_GB=" + std::to_string(plan.slice_bytes >> 30),
          "BROOM_PLAN_PROCESSES=" + std::to_string(plan.processes),
          "BROOM_PLAN_INDEX=" + std::to_string(index)};
}

AddressPlan OwnPlan() {
  AddressPlan plan;
  std::string error;
  EXPECT_TRUE(GetAddressPlan(&plan, &error)) << error;
  return plan;
}

TEST(AddressPlanProcessTest, EveryProcessReservesTheRangeAtTheSameAddressAndUsesItsSlice) {
  AddressPlan plan = OwnPlan();
  TransferableRegion mine;
  EXPECT_EQ(plan.SliceOf(mine.Allocate(16)), 0);
  for (uint32_t index : {1u, plan.processes - 1}) {
    PeerProcess peer(SHIP_PEER, {"where"}, PlanEnv(plan, index));
    std::string line = peer.ReadLine();
    uintptr_t base = 0, block = 0;
    unsigned processes = 0, got_index = 0;
    size_t slice = 0;
    ASSERT_EQ(
        std::sscanf(line.c_str(),
                    "PLAN ok=1 base=%" SCNxPTR " slice=%zu processes=%u index=%u block=%" SCNxPTR,
                    &base, &slice, &processes, &got_index, &block),
        5)
        << line;
    EXPECT_EQ(base, plan.base);
    EXPECT_EQ(slice, plan.slice_bytes);
    EXPECT_EQ(processes, plan.processes);
    EXPECT_EQ(got_index, index);
    EXPECT_EQ(plan.SliceOf(reinterpret_cast<void*>(block)), static_cast<int>(index)) << line;
  }
}

TEST(AddressPlanProcessTest, ATakenRangeIsAClearErrorNotAReservationElsewhere) {
  AddressPlan plan = OwnPlan();
  char at[32];
  std::snprintf(at, sizeof(at), "%" PRIxPTR, plan.SliceBase(1) + (size_t{5} << 20));
  PeerProcess peer(SHIP_PEER, {"occupy", at}, PlanEnv(plan, 1));
  std::string line = peer.ReadLine();
  EXPECT_EQ(line.rfind("PLAN ok=0 error=", 0), 0u) << line;
  for (const char* part :
       {"not at its address plan", "File exists", "already mapped there", "BROOM_PLAN_BASE_GB"}) {
    EXPECT_NE(line.find(part), std::string::npos) << part << " in: " << line;
  }
}

TEST(AddressPlanTest, ConfiguringAnotherPlanAfterTheFirstRegionIsAnError) {
  AddressPlan plan = OwnPlan();  // the space exists now
  std::string error;
  EXPECT_TRUE(ConfigureAddressPlan(plan, &error)) << error;  // the same one: fine
  AddressPlan other = plan;
  other.base += plan.slice_bytes * plan.processes;
  EXPECT_FALSE(ConfigureAddressPlan(other, &error));
  EXPECT_NE(error.find("already exists at another address plan"), std::string::npos) << error;
  other = plan;
  other.index = plan.processes;
  EXPECT_FALSE(ConfigureAddressPlan(other, &error));
  EXPECT_NE(error.find("invalid address plan"), std::string::npos) << error;
}

TEST(AddressPlanTest, TheBuildIdNamesThisBinary) {
  std::string id = ExecutableBuildId();
  EXPECT_GE(id.size(), 16u) << id;
  EXPECT_EQ(id, ExecutableBuildId());
}

}  // namespace
}  // namespace broom
