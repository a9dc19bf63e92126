// Copyright Broom authors.
//
// The engine-neutral lifecycle, driven by the single-threaded direct driver: region actions
// happen at the documented engine events, jobs equal their reference computations under both
// memory policies, and every region created is freed.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory_resource>
#include <string>
#include <vector>

#include "broom/check.h"
#include "broom/lifecycle/direct_driver.h"
#include "broom/lifecycle/instance.h"
#include "broom/memory.h"
#include "broom/region.h"
#include "broom/transferable_region.h"
#include "runtime_shims/examples/jobs.h"

namespace broom::lifecycle {
namespace {

using examples::ReferenceTotals;
using examples::RegisterExampleJobs;

JobParams SmallParams(int workers) {
  JobParams p = JobParams::Parse("epochs=5,docs=3000,lines=400,vocabulary=300");
  p.Set("workers", static_cast<uint64_t>(workers));
  return p;
}

class DirectJobTest : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(DirectJobTest, EqualsReferenceAndFreesEveryRegion) {
  RegisterExampleJobs();
  auto [job, policy] = GetParam();
  JobParams params = SmallParams(3);
  auto graph = BuildJob(job, params);
  ASSERT_TRUE(graph.has_value());
  JobOptions opt;
  opt.policy = policy;
  opt.batch_size = 64;  // many batches even at small scale
  opt.credits = 4;
  JobResult r = RunDirect(*graph, opt);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.totals, ReferenceTotals(job, params)) << r.Summary();
  EXPECT_GT(r.totals["records"], 0u);
  for (RegionKind k : {RegionKind::kTransferable, RegionKind::kActor, RegionKind::kTemporary}) {
    EXPECT_EQ(r.RegionsCreated(k), r.RegionsDestroyed(k)) << KindName(k) << "\n" << r.Summary();
  }
  if (policy == "regions") {
    // Every stage instance has an actor region; every batch a transferable one.
    EXPECT_EQ(r.RegionsCreated(RegionKind::kActor),
              static_cast<uint64_t>(graph->total_instances()));
    EXPECT_GE(r.RegionsCreated(RegionKind::kTransferable), r.shim.messages().created);
    EXPECT_EQ(r.RegionsCreated(RegionKind::kTemporary), 1u);  // one scratch region for the thread
  } else {
    EXPECT_EQ(r.RegionsCreated(RegionKind::kTransferable) + r.RegionsCreated(RegionKind::kActor) +
                  r.RegionsCreated(RegionKind::kTemporary),
              0u);
  }
}

INSTANTIATE_TEST_SUITE_P(AllJobs, DirectJobTest,
                         ::testing::Combine(::testing::Values("select", "aggregate", "join",
                                                              "wjoin", "wordcount"),
                                            ::testing::Values("regions", "heap", "heap-glibc")),
                         [](const auto& info) {
                           std::string name =
                               std::get<0>(info.param) + "_" + std::get<1>(info.param);
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

// ---- the region actions of each engine event, observed from inside an operator ----------------

struct Probe {
  // What the operator saw, recorded in plain heap memory owned by the test.
  std::vector<RegionKind> scratch_kind;  // CurrentRegion() kind inside each OnRecv
  int scratch_null = 0;                  // callbacks with no region open
  std::vector<std::string> events;
  bool state_in_actor_region = false;
  bool epoch_state_in_transferable = false;
  bool stale_epoch_state_seen = false;
  bool stale_short_state_seen = false;  // a kEpochWindow = 1 state outlived its OnNotify
  bool short_state_missing = false;     // ... or was gone before its OnNotify
};
Probe* g_probe = nullptr;

struct Ticks {
  uint64_t v;
};
uint64_t TickKey(const Ticks& t) { return t.v; }

class TickSource final : public Source {
 public:
  explicit TickSource(Epoch epochs) : Source(epochs) {}
  bool Produce(Epoch t, Context& ctx) override {
    for (uint64_t i = 0; i < 10; ++i) ctx.output<Ticks>(0).Give(t, Ticks{t * 100 + i});
    return true;
  }
};

struct PerEpoch {
  using allocator_type = std::pmr::polymorphic_allocator<std::byte>;
  explicit PerEpoch(const allocator_type& a) : seen(a) {}
  std::pmr::vector<uint64_t> seen;
};

// A second state type of the same operator with its own lifetime: freed right after OnNotify(t)
// whatever the operator's window.
struct ShortLived {
  static constexpr Epoch kEpochWindow = 1;
  using allocator_type = std::pmr::polymorphic_allocator<std::byte>;
  explicit ShortLived(const allocator_type& a) : seen(a) {}
  std::pmr::vector<uint64_t> seen;
};

class ProbeOp final : public Unary<Ticks> {
 public:
  explicit ProbeOp(Epoch window) : window_(window) {
    // Built with the operator-state arena open: a default broom::Allocator binds to it.
    total_.push_back(0);
  }
  Epoch EpochStateWindow() const override { return window_; }
  void OnRecv(Envelope<Ticks>& batch, Context& ctx) override {
    Region* r = CurrentRegion();
    if (r == nullptr) {
      ++g_probe->scratch_null;
    } else {
      g_probe->scratch_kind.push_back(r->kind());
    }
    Region* state_region = RegionOf(total_.data());
    g_probe->state_in_actor_region =
        state_region != nullptr && state_region->kind() == RegionKind::kActor;
    PerEpoch& e = ctx.EpochState<PerEpoch>(batch->epoch);
    Region* er = RegionOf(e.seen.data() == nullptr ? static_cast<void*>(&e) : e.seen.data());
    g_probe->epoch_state_in_transferable = er != nullptr && er->kind() == RegionKind::kTransferable;
    for (const Ticks& t : batch.records()) e.seen.push_back(t.v);
    ctx.EpochState<ShortLived>(batch->epoch).seen.push_back(batch->epoch);
    total_[0] += batch.records().size();
    g_probe->events.push_back("recv " + std::to_string(batch->epoch));
  }
  void OnNotify(Epoch t, Context& ctx) override {
    g_probe->events.push_back("notify " + std::to_string(t));
    EXPECT_NE(ctx.FindEpochState<PerEpoch>(t), nullptr);
    if (ctx.FindEpochState<ShortLived>(t) == nullptr) g_probe->short_state_missing = true;
    for (Epoch e = 0; e < t; ++e) {
      if (ctx.FindEpochState<ShortLived>(e) != nullptr) g_probe->stale_short_state_seen = true;
    }
    // States older than the window must be gone by now; those inside it must be alive.
    for (Epoch e = 0; e + window_ <= t; ++e) {
      if (ctx.FindEpochState<PerEpoch>(e) != nullptr) g_probe->stale_epoch_state_seen = true;
    }
    for (Epoch e = t + 1 >= window_ ? t + 1 - window_ : 0; e <= t; ++e) {
      EXPECT_NE(ctx.FindEpochState<PerEpoch>(e), nullptr) << "epoch " << e << " at notify " << t;
    }
    ctx.Report("notified", 1);
  }
  void OnFinish(Context& ctx) override { ctx.Report("records", total_[0]); }

 private:
  Epoch window_;
  std::vector<uint64_t, broom::Allocator<uint64_t>> total_;
};

Graph ProbeGraph(Epoch epochs, Epoch window) {
  Graph g;
  int src = g.AddStage<TickSource>("ticks", 1, 0, 1, epochs);
  int op = g.AddStage<ProbeOp>("probe", 1, 1, 0, window);
  g.Connect<Ticks>(src, 0, op, 0, Exchange<Ticks>(&TickKey));
  return g;
}

TEST(LifecycleTest, RegionsPolicyMapsEachEngineEventToItsRegion) {
  Probe probe;
  g_probe = &probe;
  JobOptions opt;
  opt.batch_size = 4;
  JobResult r = RunDirect(ProbeGraph(4, 1), opt);
  g_probe = nullptr;
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.totals["records"], 40u);
  EXPECT_EQ(r.totals["notified"], 4u);
  ASSERT_FALSE(probe.scratch_kind.empty());
  for (RegionKind k : probe.scratch_kind) EXPECT_EQ(k, RegionKind::kTemporary);
  EXPECT_EQ(probe.scratch_null, 0);
  EXPECT_TRUE(probe.state_in_actor_region);
  EXPECT_TRUE(probe.epoch_state_in_transferable);
  EXPECT_FALSE(probe.stale_epoch_state_seen);
  // Every epoch is notified exactly once, in order.
  std::vector<std::string> notifies;
  for (auto& e : probe.events) {
    if (e.rfind("notify", 0) == 0) notifies.push_back(e);
  }
  EXPECT_EQ(notifies, (std::vector<std::string>{"notify 0", "notify 1", "notify 2", "notify 3"}));
  // 3 batches (4+4+2 records) per epoch, plus two per-epoch regions each (PerEpoch and
  // ShortLived: one arena per state type).
  EXPECT_EQ(r.broom_after.regions_created[0] - r.broom_before.regions_created[0], 4u * 3 + 4 * 2);
  EXPECT_EQ(r.broom_after.live(RegionKind::kTransferable), 0u);
}

// ---- the ECOOP 2018 bug, in an operator ------------------------------------------------------
// An operator whose output records point at records of its input batch, which is freed after
// the callback. Broom's checked mode scans each batch when it is sent and stops the job.
struct TickRef {
  const Ticks* in;  // the bug: a pointer into the input message
};
uint64_t TickRefKey(const TickRef&) { return 0; }
struct TickCopy {
  uint64_t v;  // the cure: the value, copied (cloned) into the output message
};
uint64_t TickCopyKey(const TickCopy& c) { return c.v; }

class ForwardByPointer final : public Unary<Ticks> {
 public:
  void OnRecv(Envelope<Ticks>& batch, Context& ctx) override {
    for (const Ticks& t : batch.records()) ctx.output<TickRef>(0).Give(batch->epoch, TickRef{&t});
  }
};
class ForwardByValue final : public Unary<Ticks> {
 public:
  void OnRecv(Envelope<Ticks>& batch, Context& ctx) override {
    for (const Ticks& t : batch.records())
      ctx.output<TickCopy>(0).Give(batch->epoch, TickCopy{t.v});
  }
};
template <class R>
class CountSink final : public Unary<R> {
 public:
  void OnRecv(Envelope<R>& batch, Context& ctx) override {
    ctx.Report("records", batch.records().size());
  }
};

template <class Forward, class R>
Graph ForwardGraph(uint64_t (*key)(const R&)) {
  Graph g;
  int src = g.AddStage<TickSource>("ticks", 1, 0, 1, Epoch{2});
  int fwd = g.AddStage<Forward>("forward", 1, 1, 1);
  int sink = g.AddStage<CountSink<R>>("sink", 1, 1, 0);
  g.Connect<Ticks>(src, 0, fwd, 0, Exchange<Ticks>(&TickKey));
  g.Connect<R>(fwd, 0, sink, 0, Exchange<R>(key));
  return g;
}

TEST(LifecycleCheckTest, OperatorThatClonesPassesCheckedTransfers) {
  CheckMode old = GetCheckMode();
  SetCheckMode(CheckMode::kFatal);
  JobResult r = RunDirect(ForwardGraph<ForwardByValue, TickCopy>(&TickCopyKey), JobOptions{});
  SetCheckMode(old);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.totals["records"], 20u);
}

// ---- Output::Send on an exchange edge -----------------------------------------------------------

// Keeps every batch an output emits, with its destination.
class KeepingEmitter final : public Emitter {
 public:
  struct Sent {
    int dest;
    Envelope<Ticks> batch;
  };
  void Emit(int, int dest, AnyEnvelope&& batch) override {
    sent.push_back({dest, Envelope<Ticks>(std::move(batch))});
  }
  std::vector<Sent> sent;
};

// n tick values that an exchange on TickKey routes to destination d of `dests` (Output::Route).
std::vector<uint64_t> ValuesRoutedTo(int d, int dests, size_t n) {
  std::vector<uint64_t> v;
  for (uint64_t x = 0; v.size() < n; ++x) {
    if (MixHash(x) % static_cast<uint64_t>(dests) == static_cast<uint64_t>(d)) v.push_back(x);
  }
  return v;
}

Envelope<Ticks> BatchOf(MemoryPolicy& policy, Epoch t, const std::vector<uint64_t>& values) {
  Envelope<Ticks> b = Envelope<Ticks>::Create(policy, t, values.size());
  for (uint64_t v : values) b.records().push_back(Ticks{v});
  return b;
}

std::vector<uint64_t> ValuesOf(const Envelope<Ticks>& b) {
  std::vector<uint64_t> v;
  for (const Ticks& t : b.records()) v.push_back(t.v);
  return v;
}

TEST(LifecycleOutputTest, ABatchWhoseRecordsAllRouteToOneDestinationMovesAsIs) {
  std::unique_ptr<MemoryPolicy> policy = MakePolicy("regions");
  KeepingEmitter emitter;
  Output<Ticks> out(emitter, *policy, 0, 0, 4, 16, &TickKey);
  const std::vector<uint64_t> to2 = ValuesRoutedTo(2, 4, 12);
  out.Give(7, Ticks{to2[0]});  // pending for destination 2: it must arrive before the batch
  Envelope<Ticks> batch = BatchOf(*policy, 7, {to2.begin() + 1, to2.end()});
  const Ticks* records = batch.records().data();
  out.Send(std::move(batch));
  ASSERT_EQ(emitter.sent.size(), 2u);
  EXPECT_EQ(emitter.sent[0].dest, 2);
  EXPECT_EQ(ValuesOf(emitter.sent[0].batch), std::vector<uint64_t>{to2[0]});
  EXPECT_EQ(emitter.sent[1].dest, 2);
  EXPECT_EQ(emitter.sent[1].batch.records().data(), records);  // the same envelope, not a copy
  EXPECT_EQ(ValuesOf(emitter.sent[1].batch), std::vector<uint64_t>(to2.begin() + 1, to2.end()));
  EXPECT_EQ(emitter.sent[1].batch->epoch, Epoch{7});
  out.Flush();
  EXPECT_EQ(emitter.sent.size(), 2u);  // nothing was left open
}

TEST(LifecycleOutputTest, ABatchForSeveralDestinationsIsPartitionedInOrderAndFreed) {
  std::unique_ptr<MemoryPolicy> policy = MakePolicy("regions");
  KeepingEmitter emitter;
  Output<Ticks> out(emitter, *policy, 0, 0, 4, 16, &TickKey);
  const std::vector<uint64_t> to1 = ValuesRoutedTo(1, 4, 3);
  const std::vector<uint64_t> to3 = ValuesRoutedTo(3, 4, 3);
  // A leading run to destination 1, then the destinations mixed.
  Envelope<Ticks> batch = BatchOf(*policy, 3, {to1[0], to1[1], to3[0], to1[2], to3[1], to3[2]});
  const uint64_t live_before = GetGlobalStats().live(RegionKind::kTransferable);
  out.Send(std::move(batch));
  EXPECT_EQ(emitter.sent.size(), 0u);  // copied into the open batches, which are not full
  // The sent batch is freed; the two open ones are alive.
  EXPECT_EQ(GetGlobalStats().live(RegionKind::kTransferable), live_before + 1);
  out.Send(Envelope<Ticks>::Create(*policy, 3, 1));  // empty: freed, nothing sent
  out.Flush();
  ASSERT_EQ(emitter.sent.size(), 2u);
  std::sort(
      emitter.sent.begin(), emitter.sent.end(),
      [](const KeepingEmitter::Sent& a, const KeepingEmitter::Sent& b) { return a.dest < b.dest; });
  EXPECT_EQ(emitter.sent[0].dest, 1);
  EXPECT_EQ(ValuesOf(emitter.sent[0].batch), to1);
  EXPECT_EQ(emitter.sent[1].dest, 3);
  EXPECT_EQ(ValuesOf(emitter.sent[1].batch), to3);
}

TEST(LifecycleCheckDeathTest, OutputPointingIntoTheInputMessageIsCaughtWhenSent) {
  EXPECT_DEATH(
      {
        SetCheckMode(CheckMode::kFatal);
        RunDirect(ForwardGraph<ForwardByPointer, TickRef>(&TickRefKey), JobOptions{});
      },
      // The engine sends the output after the callback, when the input batch is already freed:
      // the pointers dangle.
      "transfer of region #[0-9]+ 'batch' \\(transferable\\): not self-contained .*points to "
      "0x[0-9a-f]+ in freed region memory: breaks no dangling pointers");
}

TEST(LifecycleTest, WindowedStateLivesExactlyWindowEpochs) {
  Probe probe;
  g_probe = &probe;
  JobOptions opt;
  JobResult r = RunDirect(ProbeGraph(8, 3), opt);
  g_probe = nullptr;
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.totals["notified"], 8u);
  EXPECT_FALSE(probe.stale_epoch_state_seen);
  // A state type with kEpochWindow = 1 lives through its own OnNotify only.
  EXPECT_FALSE(probe.short_state_missing);
  EXPECT_FALSE(probe.stale_short_state_seen);
}

TEST(LifecycleTest, HeapPolicyRunsTheSameOperatorWithoutRegions) {
  Probe probe;
  g_probe = &probe;
  JobOptions opt;
  opt.policy = "heap";
  JobResult r = RunDirect(ProbeGraph(4, 1), opt);
  g_probe = nullptr;
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.totals["records"], 40u);
  EXPECT_TRUE(probe.scratch_kind.empty());
  EXPECT_GT(probe.scratch_null, 0);
  EXPECT_FALSE(probe.state_in_actor_region);
  EXPECT_FALSE(probe.epoch_state_in_transferable);
}

// ---- a third policy plugs in without touching operator code ------------------------------------

// Counts every byte the operators allocate: stands in for a garbage-collected resource.
class CountingResource final : public std::pmr::memory_resource {
 public:
  size_t allocations = 0, live_bytes = 0;

 private:
  void* do_allocate(size_t n, size_t a) override {
    ++allocations;
    live_bytes += n;
    return HeapResource()->allocate(n, a);
  }
  void do_deallocate(void* p, size_t n, size_t a) override {
    live_bytes -= n;
    HeapResource()->deallocate(p, n, a);
  }
  bool do_is_equal(const std::pmr::memory_resource& o) const noexcept override {
    return this == &o;
  }
};

class CountingPolicy final : public MemoryPolicy {
 public:
  explicit CountingPolicy(CountingResource& r) : r_(r) {}
  std::string_view name() const override { return "counting"; }
  Arena CreateArena(ArenaUse use, const char*) override { return Arena::OnHeap(use, &r_); }
  std::unique_ptr<ScratchSpace> CreateScratch() override {
    struct Scratch final : ScratchSpace {
      explicit Scratch(CountingResource& r) : r(r) {}
      void Enter() override { scopes.emplace_back(std::make_unique<FallbackResourceScope>(&r)); }
      void Exit() override { scopes.pop_back(); }
      CountingResource& r;
      std::vector<std::unique_ptr<FallbackResourceScope>> scopes;
    };
    return std::make_unique<Scratch>(r_);
  }

 private:
  CountingResource& r_;
};

class NullTransport final : public Transport {
 public:
  void SendBatch(Address, int, AnyEnvelope&&) override { ++batches; }
  void SendPunctuation(Address, int, Epoch) override {}
  void SendCredit(Address, int, uint32_t) override {}
  void ScheduleProduce() override {}
  void Finished(const std::map<std::string, uint64_t>&) override {}
  int batches = 0;
};

TEST(LifecycleTest, AnotherPolicyRedirectsOperatorAllocationsWithoutCodeChanges) {
  RegisterExampleJobs();
  CountingResource counting;
  CountingPolicy policy(counting);
  NullTransport transport;
  auto graph = BuildJob("wordcount", SmallParams(1));
  ASSERT_TRUE(graph.has_value());
  {
    // Stage 1 (tokenize): feed it one batch of lines built through the same policy.
    Instance tok(*graph, 1, 0, policy, transport, InstanceOptions{0, 16});
    auto lines = Envelope<examples::Line>::Create(policy, 0, 4);
    {
      ArenaScope open(lines.arena());
      lines.records().emplace_back("alpha beta gamma");
      lines.records().emplace_back("delta epsilon");
    }
    size_t before = counting.allocations;
    tok.Start();
    tok.OnBatch(0, 0, std::move(lines).Erase());
    tok.OnPunctuation(0, 0, kEndOfStream);
    EXPECT_GT(counting.allocations, before);  // scratch and output batches came from the policy
    EXPECT_GE(transport.batches, 1);
  }
  ReleaseThreadScratch();
  EXPECT_EQ(counting.live_bytes, 0u);  // and everything went back through it
}

TEST(LifecycleTest, FallbackResourceScopeRedirectsCurrentResourceOnlyWithoutARegion) {
  CountingResource counting;
  EXPECT_EQ(CurrentResource(), HeapResource());
  {
    FallbackResourceScope f(&counting);
    EXPECT_EQ(CurrentResource(), &counting);
    void* p = ContextResource()->allocate(32, 8);
    EXPECT_EQ(counting.allocations, 1u);
    ContextResource()->deallocate(p, 32, 8);
    EXPECT_EQ(counting.live_bytes, 0u);
    TransferableRegion region;
    {
      auto open = region.Open();
      EXPECT_EQ(CurrentResource(), &region.region());  // a region still wins
    }
  }
  EXPECT_EQ(CurrentResource(), HeapResource());
}

// A record that brings its own codec (record.h's explicit fallback): it crosses processes as
// bytes, never by address.
struct Named {
  using allocator_type = std::pmr::polymorphic_allocator<std::byte>;
  Named(std::string_view n, uint64_t c, const allocator_type& a = {}) : name(n, a), count(c) {}
  Named(const Named& o, const allocator_type& a) : name(o.name, a), count(o.count) {}
  Named(Named&& o, const allocator_type& a) : name(std::move(o.name), a), count(o.count) {}
  Named(const Named&) = default;
  Named(Named&&) = default;
  std::pmr::string name;
  uint64_t count;

  void BroomEncode(ByteWriter& w) const {
    w.PutString(name);
    w.Put(count);
  }
  static Named BroomDecode(ByteReader& r, std::pmr::memory_resource* m) {
    std::string_view n = r.GetString();
    return Named(n, r.Get<uint64_t>(), allocator_type(m));
  }
};

struct Polymorphic {
  virtual ~Polymorphic() = default;
  uint64_t id = 0;
};

TEST(LifecycleTest, EachRecordTypeSaysHowItCanCrossProcesses) {
  // pmr records without a codec (the example records): by address.
  const BatchOps& words = BatchOpsFor<examples::WordCount>();
  EXPECT_TRUE(words.by_address);
  EXPECT_EQ(words.encode, nullptr);
  EXPECT_EQ(words.raw_resize, nullptr);
  EXPECT_NE(words.copy, nullptr);
  // A record with a codec: as bytes, through it.
  const BatchOps& named = BatchOpsFor<Named>();
  EXPECT_FALSE(named.by_address);
  EXPECT_NE(named.encode, nullptr);
  EXPECT_NE(named.decode, nullptr);
  // Trivially copyable records: as raw bytes, or by address (the engine chooses).
  const BatchOps& authors = BatchOpsFor<examples::Author>();
  EXPECT_TRUE(authors.by_address);
  EXPECT_NE(authors.raw_resize, nullptr);
  // A vtable pointer is valid in one process only: not by address, and no codec.
  const BatchOps& poly = BatchOpsFor<Polymorphic>();
  EXPECT_FALSE(poly.by_address);
  EXPECT_EQ(poly.encode, nullptr);
}

TEST(LifecycleTest, CodedRecordsRoundTripThroughFlatBytes) {
  auto policy = MakePolicy("regions");
  auto named = Envelope<Named>::Create(*policy, 7, 2);
  {
    ArenaScope open(named.arena());
    named.records().emplace_back("a-rather-long-name-that-is-not-inline", 3);
    named.records().emplace_back("b", 1);
  }
  std::vector<char> bytes;
  named.any().EncodeRecords(bytes);
  ByteReader in(bytes.data(), bytes.size());
  const BatchOps& ops = BatchOpsFor<Named>();
  Envelope<Named> b(AnyEnvelope::Decode(*policy, ops, 7, 2, in));
  ASSERT_TRUE(b);
  ASSERT_EQ(b.records().size(), 2u);
  EXPECT_EQ(b.records()[0].name, "a-rather-long-name-that-is-not-inline");
  EXPECT_EQ(b.records()[1].count, 1u);
  // Self-contained: the decoded string lives in the new batch's region.
  EXPECT_EQ(RegionOf(b.records()[0].name.data()), RegionOf(&b.records()[0]));
  // Truncated input is rejected, not half-built.
  ByteReader cut(bytes.data(), bytes.size() - 3);
  EXPECT_FALSE(AnyEnvelope::Decode(*policy, ops, 7, 2, cut));
}

TEST(LifecycleTest, ACopyOfABatchLivesInItsOwnRegion) {
  auto policy = MakePolicy("regions");
  auto words = Envelope<examples::WordCount>::Create(*policy, 7, 2);
  {
    ArenaScope open(words.arena());
    words.records().emplace_back("a-rather-long-word-that-is-not-inline", 3, 7);
    words.records().emplace_back("b", 1, 7);
  }
  Envelope<examples::WordCount> copy(AnyEnvelope::CopyOf(words.any()));
  ASSERT_TRUE(copy);
  EXPECT_EQ(copy.epoch(), 7u);
  ASSERT_EQ(copy.size(), 2u);
  EXPECT_EQ(copy.records()[0].word, "a-rather-long-word-that-is-not-inline");
  EXPECT_EQ(copy.records()[1].count, 1u);
  Region* r = RegionOf(&copy.records()[0]);
  ASSERT_NE(r, nullptr);
  EXPECT_NE(r, RegionOf(&words.records()[0]));
  EXPECT_EQ(RegionOf(copy.records()[0].word.data()), r);  // the string came along
  EXPECT_EQ(RegionOf(&*copy), r);                         // and the batch itself
}

TEST(LifecycleTest, ShippingABatchThatIsNotARegionOrNotByAddressIsRefused) {
  auto heap = MakePolicy("heap");
  auto words = Envelope<examples::WordCount>::Create(*heap, 7, 2);
  AnyEnvelope any = std::move(words).Erase();
  std::string error;
  EXPECT_FALSE(any.Ship(1, ShipMode::kCopy, &error));
  EXPECT_NE(error.find("only an arena that is a transferable region"), std::string::npos) << error;
  EXPECT_TRUE(any);  // unchanged
  auto regions = MakePolicy("regions");
  AnyEnvelope named = Envelope<Named>::Create(*regions, 7, 2).Erase();
  error.clear();
  EXPECT_FALSE(named.Ship(1, ShipMode::kCopy, &error));
  EXPECT_NE(error.find("do not travel by address"), std::string::npos) << error;
  EXPECT_TRUE(named);
}

}  // namespace
}  // namespace broom::lifecycle
