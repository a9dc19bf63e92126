// Copyright Broom authors.
//
// A thread exiting while it owns regions. Regions belong to handles, not threads: a thread's exit
// frees nothing it handed on, the regions stay usable by whoever holds them, thread_local handles
// free theirs at exit, and the exited thread's cached blocks go back to the pool. At the end of
// each test the global counters balance. Rows of docs/reliability.md.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "broom/actor_region.h"
#include "broom/memory.h"
#include "broom/message.h"
#include "broom/temporary_region.h"
#include "broom/transferable_region.h"
#include "tests/reliability/witness.h"

namespace broom {
namespace {

using testing::Witness;

uint64_t LiveRegions() {
  GlobalStats s = GetGlobalStats();
  return s.live(RegionKind::kTransferable) + s.live(RegionKind::kActor) +
         s.live(RegionKind::kTemporary);
}

struct Payload {
  int values[64];
};

TEST(ThreadExitTest, RegionsHandedOnByAnExitingThreadStayUsable) {
  Witness witness;
  const uint64_t live_before = LiveRegions();
  const size_t held_before = GetGlobalStats().block_bytes;
  std::unique_ptr<TransferableRegion> t;
  std::unique_ptr<ActorRegion> a;
  std::vector<int*> actor_objects;
  Message<Payload> m;
  std::thread([&] {
    auto mine = std::make_unique<TransferableRegion>();
    for (int i = 0; i < 1000; ++i) *NewIn<int>(mine->region(), i) = i;
    auto actor = std::make_unique<ActorRegion>();
    for (int i = 0; i < 1000; ++i) actor_objects.push_back(NewIn<int>(actor->region(), i));
    auto msg = Message<Payload>::Create();
    for (int i = 0; i < 64; ++i) msg->values[i] = i * 3;
    t = std::move(mine);  // the thread's own handles are moved out; then it exits
    a = std::move(actor);
    m = std::move(msg);
  }).join();
  EXPECT_EQ(LiveRegions(), live_before + 3) << "a thread's exit freed regions it handed on";
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(*actor_objects[static_cast<size_t>(i)], i);
  for (int i = 0; i < 64; ++i) ASSERT_EQ(m->values[i], i * 3);
  // The new owner allocates and frees as if it had created them.
  for (int i = 0; i < 1000; i += 2) a->Free(actor_objects[static_cast<size_t>(i)]);
  EXPECT_NE(t->Allocate(100000), nullptr);
  EXPECT_NE(a->Allocate(100), nullptr);
  t->Free();
  a.reset();
  m = Message<Payload>();
  EXPECT_EQ(LiveRegions(), live_before);
  EXPECT_EQ(GetGlobalStats().block_bytes, held_before);
  EXPECT_TRUE(witness.Intact());
}

TEST(ThreadExitTest, RegionsStillOwnedByAnExitedThreadAreNotFreedAndCanBeAdopted) {
  Witness witness;
  const uint64_t live_before = LiveRegions();
  const size_t held_before = GetGlobalStats().block_bytes;
  Region* orphan = nullptr;
  int* value = nullptr;
  std::thread([&] {
    TransferableRegion t;
    value = NewIn<int>(t.region(), 42);
    orphan = t.Release();  // the handle dies with the thread; the region does not
  }).join();
  EXPECT_EQ(LiveRegions(), live_before + 1);
  EXPECT_EQ(RegionOf(value), orphan);
  EXPECT_EQ(*value, 42);
  TransferableRegion adopted = TransferableRegion::Adopt(orphan);
  EXPECT_NE(adopted.Allocate(64), nullptr);
  adopted.Free();
  EXPECT_EQ(LiveRegions(), live_before);
  EXPECT_EQ(GetGlobalStats().block_bytes, held_before);
  EXPECT_TRUE(witness.Intact());
}

TEST(ThreadExitTest, ThreadLocalHandlesFreeTheirRegionsAtThreadExit) {
  Witness witness;
  const uint64_t live_before = LiveRegions();
  const size_t held_before = GetGlobalStats().block_bytes;
  for (int round = 0; round < 8; ++round) {
    std::thread([] {
      thread_local TemporaryRegion scratch;
      thread_local ActorRegion state;
      thread_local TransferableRegion pending;
      {
        TemporaryRegion::Scope s(scratch);
        ASSERT_NE(scratch.Allocate(300000), nullptr);
        ASSERT_NE(scratch.Allocate(1000), nullptr);
      }
      ASSERT_NE(scratch.Allocate(20000), nullptr);  // outlives the scope, freed at thread exit
      for (int i = 0; i < 5000; ++i) ASSERT_NE(state.Allocate(24), nullptr);
      ASSERT_NE(pending.Allocate(500000), nullptr);
    }).join();
  }
  EXPECT_EQ(LiveRegions(), live_before);
  EXPECT_EQ(GetGlobalStats().block_bytes, held_before);
  EXPECT_TRUE(witness.Intact());
}

TEST(ThreadExitTest, ManyShortLivedThreadsReturnTheirCachesToThePool) {
  const uint64_t live_before = LiveRegions();
  const size_t held_before = GetGlobalStats().block_bytes;
  std::vector<std::thread> threads;
  for (int i = 0; i < 16; ++i) {
    threads.emplace_back([] {
      for (int k = 0; k < 200; ++k) {
        TransferableRegion t;
        for (int j = 0; j < 20; ++j) ASSERT_NE(t.Allocate(2000), nullptr);
      }
    });
  }
  for (auto& th : threads) th.join();
  GlobalStats after = GetGlobalStats();
  EXPECT_EQ(LiveRegions(), live_before);
  EXPECT_EQ(after.block_bytes, held_before);
  // The exited threads' warm blocks are reused by this one instead of new address space.
  size_t committed = after.committed_bytes;
  for (int k = 0; k < 200; ++k) {
    TransferableRegion t;
    for (int j = 0; j < 20; ++j) ASSERT_NE(t.Allocate(2000), nullptr);
  }
  EXPECT_EQ(GetGlobalStats().committed_bytes, committed);
}

TEST(ThreadExitTest, TemporaryRegionOfAnExitedThreadCanBeDestroyedElsewhere) {
  const uint64_t live_before = LiveRegions();
  std::unique_ptr<TemporaryRegion> left_behind;
  std::thread([&] {
    left_behind = std::make_unique<TemporaryRegion>();
    ASSERT_NE(left_behind->Allocate(5000), nullptr);
  }).join();
  EXPECT_EQ(LiveRegions(), live_before + 1);
  left_behind.reset();
  EXPECT_EQ(LiveRegions(), live_before);
}

TEST(ThreadExitDeathTest, TemporaryRegionOfAnExitedThreadCannotBeOpenedElsewhere) {
  EXPECT_DEATH(
      {
        std::unique_ptr<TemporaryRegion> left_behind;
        std::thread([&] { left_behind = std::make_unique<TemporaryRegion>(); }).join();
        TemporaryRegion::Scope s(*left_behind);
      },
      "broom: fatal: TemporaryRegion::Scope on region #[0-9]+ .*from thread [0-9]+; it belongs "
      "to thread [0-9]+");
}

}  // namespace
}  // namespace broom
