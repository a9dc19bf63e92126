// Copyright Broom authors.
//
// Typed arenas (broom/lifecycle/arena.h) and envelopes: each policy hands out the handle it
// documents, the core typestate guards every arena, a batch sent once is transferred (and, in
// checked mode, scanned) exactly once, and Envelope<R> refuses a batch of another type.
#include "broom/lifecycle/arena.h"

#include <gtest/gtest.h>

#include <memory_resource>
#include <string>
#include <vector>

#include "broom/check.h"
#include "broom/lifecycle/direct_driver.h"
#include "broom/lifecycle/envelope.h"
#include "broom/lifecycle/graph.h"
#include "broom/memory.h"

namespace broom::lifecycle {
namespace {

TEST(ArenaTest, RegionsPolicyHandsOutTheCoreHandlesOfEachUse) {
  auto policy = MakePolicy("regions");
  Arena message = policy->CreateArena(ArenaUse::kMessage, "m");
  Arena state = policy->CreateArena(ArenaUse::kOperatorState, "s");
  Arena epoch = policy->CreateArena(ArenaUse::kEpochState, "e");
  ASSERT_NE(message.transferable(), nullptr);
  EXPECT_EQ(message.transferable()->state(), TransferableRegion::State::kClosed);
  EXPECT_EQ(message.region()->kind(), RegionKind::kTransferable);
  EXPECT_STREQ(message.region()->name(), "m");
  ASSERT_NE(state.actor(), nullptr);
  EXPECT_EQ(state.transferable(), nullptr);
  EXPECT_EQ(state.region()->kind(), RegionKind::kActor);
  EXPECT_EQ(epoch.region()->kind(), RegionKind::kTransferable);
  // The resource is the region itself: what an operator allocates there, the region owns.
  void* p = message.resource()->allocate(64, 16);
  EXPECT_EQ(RegionOf(p), message.region());
  EXPECT_GT(message.bytes(), 0u);
}

TEST(ArenaTest, HeapPolicyArenasAreTheHeapAndOwnNothing) {
  auto policy = MakePolicy("heap");
  Arena a = policy->CreateArena(ArenaUse::kMessage, "m");
  EXPECT_TRUE(a);
  EXPECT_EQ(a.region(), nullptr);
  EXPECT_EQ(a.transferable(), nullptr);
  EXPECT_EQ(a.resource(), std::pmr::new_delete_resource());
  EXPECT_EQ(a.bytes(), 0u);
  a.Transfer();  // nothing to transfer
  EXPECT_TRUE(a);
}

TEST(ArenaTest, MovingAnArenaMovesNoCoreHandleAndTransferMovesOne) {
  GlobalStats before = GetGlobalStats();
  Arena a = Arena::NewTransferable(ArenaUse::kMessage);
  TransferableRegion* handle = a.transferable();
  Region* region = a.region();
  Arena b = std::move(a);
  Arena c = std::move(b);
  EXPECT_FALSE(a);
  EXPECT_FALSE(b);
  EXPECT_EQ(c.transferable(), handle);  // the handle stayed where it was
  c.Transfer();
  EXPECT_NE(c.transferable(), handle);  // a new owner handle, of the same region
  EXPECT_EQ(c.region(), region);
  EXPECT_EQ(c.transferable()->state(), TransferableRegion::State::kClosed);
  c.Reset();
  EXPECT_FALSE(c);
  GlobalStats after = GetGlobalStats();
  EXPECT_EQ(after.regions_created[0] - before.regions_created[0], 1u);
  EXPECT_EQ(after.regions_destroyed[0] - before.regions_destroyed[0], 1u);
}

TEST(ArenaTest, TakingOverACoreHandleIsOneTransfer) {
  TransferableRegion mine;
  Region* region = &mine.region();
  Arena a(ArenaUse::kMessage, std::move(mine));
  EXPECT_EQ(mine.state(), TransferableRegion::State::kTransferred);
  EXPECT_EQ(a.region(), region);
  ActorRegion state;
  Region* actor = &state.region();
  Arena b(ArenaUse::kOperatorState, std::move(state));
  EXPECT_EQ(b.region(), actor);
  EXPECT_EQ(&b.actor()->region(), actor);
}

TEST(ArenaTest, ArenaScopeOpensTheRegionOrInstallsTheHeapAsFallback) {
  Arena region_arena = Arena::NewTransferable(ArenaUse::kMessage);
  {
    ArenaScope open(region_arena);
    EXPECT_EQ(CurrentRegion(), region_arena.region());
    EXPECT_EQ(region_arena.transferable()->state(), TransferableRegion::State::kOpen);
  }
  EXPECT_EQ(region_arena.transferable()->state(), TransferableRegion::State::kClosed);
  std::pmr::monotonic_buffer_resource heap;
  Arena heap_arena = Arena::OnHeap(ArenaUse::kEpochState, &heap);
  {
    ArenaScope open(heap_arena);
    EXPECT_EQ(CurrentRegion(), nullptr);
    EXPECT_EQ(CurrentResource(), &heap);
  }
  EXPECT_NE(CurrentResource(), &heap);
}

TEST(ArenaDeathTest, FreeingOrTransferringAnOpenArenaIsFatal) {
  EXPECT_DEATH(
      {
        Arena a = Arena::NewTransferable(ArenaUse::kMessage);
        ArenaScope open(a);
        a.Transfer();
      },
      "TransferableRegion::Transfer on .* while it is OPEN");
  EXPECT_DEATH(
      {
        Arena a = Arena::NewTransferable(ArenaUse::kMessage);
        ArenaScope open(a);
        a.Reset();
      },
      "TransferableRegion::Free on .* while it is OPEN");
}

// A backend of a policy of one's own: its Destroy runs exactly once, when the arena is freed.
struct CountingBackend final : ArenaBackend {
  std::pmr::memory_resource* resource() override { return std::pmr::new_delete_resource(); }
  void AttachRoot(void* r) override { root = r; }
  void Destroy() override { ++*destroyed; }
  void* root = nullptr;
  int* destroyed = nullptr;
};

TEST(ArenaTest, BackendIsToldTheRootAndDestroyedOnceWhenTheArenaIsFreed) {
  int destroyed = 0;
  CountingBackend backend;
  backend.destroyed = &destroyed;
  {
    Arena a = Arena::WithBackend(ArenaUse::kOperatorState, &backend);
    int root = 0;
    a.AttachRoot(&root);
    EXPECT_EQ(backend.root, &root);
    EXPECT_EQ(a.resource(), std::pmr::new_delete_resource());
    Arena moved = std::move(a);
    EXPECT_EQ(destroyed, 0);
  }
  EXPECT_EQ(destroyed, 1);
}

TEST(EnvelopeTest, TypedEnvelopeRoundTripsThroughTheErasedHandle) {
  auto policy = MakePolicy("regions");
  Envelope<uint64_t> e = Envelope<uint64_t>::Create(*policy, 7, 4);
  e.records().push_back(41);
  e.records().push_back(1);
  Batch<uint64_t>* batch = &*e;
  AnyEnvelope any = std::move(e).Erase();
  EXPECT_FALSE(e);
  EXPECT_TRUE(any.Holds<uint64_t>());
  EXPECT_FALSE(any.Holds<int>());
  EXPECT_EQ(any.epoch(), 7u);
  EXPECT_EQ(any.size(), 2u);
  Envelope<uint64_t> back(std::move(any));
  EXPECT_FALSE(any);
  EXPECT_EQ(&*back, batch);  // the same batch: nothing was copied
  EXPECT_EQ(back.records()[0] + back.records()[1], 42u);
  EXPECT_EQ(RegionOf(back.records().data()), back.arena().region());
  Envelope<uint64_t> empty{AnyEnvelope()};
  EXPECT_FALSE(empty);
}

TEST(EnvelopeDeathTest, ABatchOfAnotherRecordTypeIsRefused) {
  EXPECT_DEATH(
      {
        auto policy = MakePolicy("regions");
        AnyEnvelope any = Envelope<uint64_t>::Create(*policy, 0, 1).Erase();
        Envelope<double> wrong(std::move(any));
      },
      "batch holds records of type .*, not ");
}

// ---- one core transfer per handoff --------------------------------------------------------------
// In checked mode (log) every core transfer of a batch that points out of itself prints one
// "broom: check: transfer of ..." report. Records here point into the operator's own state (an
// actor region), which a message may not: so the reports count the transfers.
struct Tick {
  uint64_t v;
};
struct TickAt {
  const uint64_t* state;  // points into the sender's actor region
};
uint64_t TickKey(const Tick& t) { return t.v; }
uint64_t TickAtKey(const TickAt&) { return 0; }

class Ticks final : public Source {
 public:
  Ticks() : Source(3) {}
  bool Produce(Epoch t, Context& ctx) override {
    for (uint64_t i = 0; i < 10; ++i) ctx.output<Tick>(0).Give(t, Tick{t * 100 + i});
    return true;
  }
};
class PointIntoState final : public Unary<Tick> {
 public:
  PointIntoState() { state_.push_back(1); }  // built with the operator's actor region open
  void OnRecv(Envelope<Tick>& batch, Context& ctx) override {
    for (size_t i = 0; i < batch.size(); ++i) {
      ctx.output<TickAt>(0).Give(batch.epoch(), TickAt{state_.data()});
    }
  }

 private:
  std::vector<uint64_t, Allocator<uint64_t>> state_;
};
class CountBatches final : public Unary<TickAt> {
 public:
  void OnRecv(Envelope<TickAt>&, Context& ctx) override { ctx.Report("batches", 1); }
};

TEST(ArenaCheckTest, EachBatchIsTransferredAndCheckedOncePerHandoff) {
  Graph g;
  int src = g.AddStage<Ticks>("ticks", 1, 0, 1);
  int fwd = g.AddStage<PointIntoState>("point", 1, 1, 1);
  int sink = g.AddStage<CountBatches>("sink", 1, 1, 0);
  g.Connect<Tick>(src, 0, fwd, 0, Exchange<Tick>(&TickKey));
  g.Connect<TickAt>(fwd, 0, sink, 0, Exchange<TickAt>(&TickAtKey));
  JobOptions opt;
  opt.batch_size = 4;  // 3 batches per epoch on each edge
  CheckMode old = GetCheckMode();
  SetCheckMode(CheckMode::kLog);
  testing::internal::CaptureStderr();
  JobResult r = RunDirect(g, opt);
  std::string log = testing::internal::GetCapturedStderr();
  SetCheckMode(old);
  ASSERT_TRUE(r.ok) << r.error;
  uint64_t reports = 0;
  for (size_t at = log.find("broom: check: transfer of"); at != std::string::npos;
       at = log.find("broom: check: transfer of", at + 1)) {
    ++reports;
  }
  EXPECT_EQ(r.totals["batches"], 9u);
  EXPECT_EQ(reports, r.totals["batches"]) << log.substr(0, 2000);
  EXPECT_EQ(r.shim.batches_sent, 18u);  // both edges; the Tick batches are clean
}

}  // namespace
}  // namespace broom::lifecycle
