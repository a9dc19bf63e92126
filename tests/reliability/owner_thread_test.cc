// Copyright Broom authors.
//
// Use of a region from a thread that does not own it (issue 13, mistake 3): a temporary region
// belongs to its creating thread; any other region to the thread that has it open. Each misuse
// is fatal with a message naming the region, the operation and both threads; legitimate
// handoffs (a message moved to another thread, an actor region opened on one thread and then on
// another, as a migrating actor's is) stay silent. Rows of docs/reliability.md.
#include <gtest/gtest.h>

#include <thread>
#include <utility>

#include "broom/actor_region.h"
#include "broom/check.h"
#include "broom/context.h"
#include "broom/message.h"
#include "broom/temporary_region.h"
#include "broom/transferable_region.h"

namespace broom {
namespace {

// A request too large for the current block: always the slow path, which checks the thread in
// every build.
constexpr size_t kSlowPathBytes = 64 << 10;

#define EXPECT_WRONG_THREAD(statement, op, owner_phrase)                                     \
  EXPECT_DEATH(statement,                                                                    \
               "broom: fatal: " op " on region #[0-9]+ .* from thread [0-9]+; " owner_phrase \
               " thread [0-9]+")

TEST(OwnerThreadDeathTest, ResetOfATemporaryRegionFromAnotherThreadIsFatal) {
  EXPECT_WRONG_THREAD(
      {
        TemporaryRegion scratch(RegionOptions{.name = "scratch"});
        std::thread([&] { scratch.Reset(); }).join();
      },
      "TemporaryRegion::Reset", "it belongs to");
}

TEST(OwnerThreadDeathTest, RawAllocateInATemporaryRegionFromAnotherThreadIsFatal) {
  EXPECT_WRONG_THREAD(
      {
        TemporaryRegion scratch;
        std::thread([&] { scratch.Allocate(kSlowPathBytes); }).join();
      },
      "Allocate", "it belongs to");
}

// In checked mode a bump region sends every allocation through the slow path, so even a small
// raw allocation from the wrong thread is caught in a release build.
TEST(OwnerThreadDeathTest, InCheckedModeEveryAllocationIsChecked) {
  EXPECT_WRONG_THREAD(
      {
        SetCheckMode(CheckMode::kFatal);
        TemporaryRegion scratch;
        void* mine = scratch.Allocate(16);  // the owner: fine
        (void)mine;
        std::thread([&] { scratch.Allocate(16); }).join();
      },
      "Allocate", "it belongs to");
}

TEST(OwnerThreadDeathTest, AllocatingInAMessageAnotherThreadHasOpenIsFatal) {
  EXPECT_WRONG_THREAD(
      {
        auto m = Message<int>::Create(7);
        auto open = m.Open();  // this thread fills it
        std::thread([&] { m.region().Allocate(kSlowPathBytes); }).join();
      },
      "Allocate", "it is open on");
}

TEST(OwnerThreadDeathTest, FreeingAMessageAnotherThreadHasOpenIsFatal) {
  EXPECT_WRONG_THREAD(
      {
        TransferableRegion t(RegionOptions{.name = "batch"});
        auto open = t.Open();
        std::thread([&] { t.Free(); }).join();
      },
      "Free", "it is open on");
}

TEST(OwnerThreadDeathTest, OpeningARegionOpenOnAnotherThreadIsFatal) {
  EXPECT_WRONG_THREAD(
      {
        ActorRegion state(RegionOptions{.name = "state"});
        ContextScope open(state.region());
        std::thread([&] { ContextScope again(state.region()); }).join();
      },
      "open", "it is open on");
}

TEST(OwnerThreadDeathTest, FreeingActorStateWhileAnotherThreadRunsTheActorIsFatal) {
  EXPECT_WRONG_THREAD(
      {
        SetCheckMode(CheckMode::kFatal);  // every actor free takes the checked path
        ActorRegion state(RegionOptions{.name = "state"});
        void* p = state.Allocate(48);
        ContextScope callback(state.region());
        std::thread([&] { state.Free(p); }).join();
      },
      "ActorRegion::Free", "it is open on");
}

TEST(OwnerThreadTest, HandoffsAndMigrationsAreNotReported) {
  SetCheckMode(CheckMode::kFatal);
  // A message built here, moved to another thread, filled and freed there.
  auto m = Message<int>::Create(1);
  { auto open = m.Open(); }
  std::thread([msg = std::move(m)]() mutable {
    auto open = msg.Open();
    EXPECT_NE(msg.region().Allocate(kSlowPathBytes), nullptr);
  }).join();
  // An actor's state opened on one thread per callback, then on another (a migrating actor).
  ActorRegion state;
  for (int hop = 0; hop < 4; ++hop) {
    std::thread([&] {
      ContextScope callback(state.region());
      void* p = state.Allocate(kSlowPathBytes);
      state.Free(p);
      EXPECT_NE(New<int>(hop), nullptr);
    }).join();
  }
  EXPECT_EQ(state.region().owner_thread(), 0u);
  SetCheckMode(CheckMode::kOff);
}

}  // namespace
}  // namespace broom
