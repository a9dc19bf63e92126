// Copyright Broom authors.
//
// Checked mode covers operator state (issue 13): with checks on, the lifecycle scans each
// operator's state region and its open per-timestamp states after callbacks
// (JobOptions::state_checks / BROOM_STATE_CHECKS) and stops the job on a pointer the points-to
// rules forbid, naming the operator, the callback, the regions and the offset. The mistakes are
// the ones users make (storing &input.records()[i] or a string_view of a record's title in
// state); the legitimate patterns (a kept envelope, a per-timestamp index into operator state)
// pass; every example job runs clean.
#include <gtest/gtest.h>

#include <cstdlib>
#include <memory_resource>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "broom/check.h"
#include "broom/lifecycle/direct_driver.h"
#include "broom/memory.h"
#include "broom/region.h"
#include "runtime_shims/examples/jobs.h"
#include "tests/reliability/check_scope.h"

namespace broom::lifecycle {
namespace {

using examples::Document;

using broom::testing::CheckScope;

struct Tick {
  uint64_t v;
};
uint64_t TickKey(const Tick& t) { return t.v; }

class Ticks final : public Source {
 public:
  explicit Ticks(Epoch epochs) : Source(epochs) {}
  bool Produce(Epoch t, Context& ctx) override {
    for (uint64_t i = 0; i < 8; ++i) ctx.output<Tick>(0).Give(t, Tick{t * 100 + i});
    return true;
  }
};

// Documents with titles of 40 bytes (longer than any small-string buffer: the title's bytes are
// in the batch's region, next to the records).
class Docs final : public Source {
 public:
  explicit Docs(Epoch epochs) : Source(epochs) {}
  bool Produce(Epoch t, Context& ctx) override {
    for (uint64_t i = 0; i < 8; ++i) {
      ctx.output<Document>(0).Give(t, Document(t * 100 + i, i % 3, 1, static_cast<uint32_t>(t)),
                                   [](Document& d) { d.title.assign(40, 't'); });
    }
    return true;
  }
};
uint64_t DocKey(const Document& d) { return d.id; }

// Where the first bad pointer was stored, recorded by the operators below for the tests.
struct Stored {
  uint64_t state_region = 0;
  uint64_t input_region = 0;
  size_t offset = 0;  // from the start of the block holding the word
  const void* value = nullptr;
};
Stored g_stored;

void Record(const void* word_address, const void* value) {
  if (g_stored.state_region != 0) return;
  g_stored.state_region = RegionOf(word_address)->id();
  g_stored.input_region = RegionOf(value)->id();
  g_stored.offset =
      static_cast<size_t>(static_cast<const char*>(word_address) -
                          reinterpret_cast<const char*>(broom::internal::BlockOf(word_address)));
  g_stored.value = value;
}

// Mistake 1: the operator keeps a pointer to a record of its input batch in its state (a member
// of the operator object, in its operator-state region). After the callback the batch is freed
// and the pointer reads whatever reuses that memory.
class KeepRecordPointer final : public Unary<Tick> {
 public:
  void OnRecv(Envelope<Tick>& batch, Context&) override {
    last_ = &batch.records()[0];
    Record(&last_, last_);
  }

 private:
  const Tick* last_ = nullptr;
};

// Mistake 1, with a string_view: the titles of an epoch's documents kept, as views, in that
// epoch's per-timestamp state. The views point into the input batches.
struct Titles {
  using allocator_type = std::pmr::polymorphic_allocator<std::byte>;
  explicit Titles(const allocator_type& a) : views(a) {}
  std::pmr::vector<std::string_view> views;
};
class KeepTitleViews final : public Unary<Document> {
 public:
  void OnRecv(Envelope<Document>& batch, Context& ctx) override {
    Titles& t = ctx.EpochState<Titles>(batch->epoch);
    for (const Document& d : batch.records()) t.views.emplace_back(d.title);
  }
  void OnNotify(Epoch t, Context& ctx) override {
    ctx.Report("titles", ctx.FindEpochState<Titles>(t)->views.size());
  }
};

// The cure: the titles copied into the state (a pmr string in the state's vector is built in
// the state's arena).
struct TitleCopies {
  using allocator_type = std::pmr::polymorphic_allocator<std::byte>;
  explicit TitleCopies(const allocator_type& a) : titles(a) {}
  std::pmr::vector<std::pmr::string> titles;
};
class CopyTitles final : public Unary<Document> {
 public:
  void OnRecv(Envelope<Document>& batch, Context& ctx) override {
    TitleCopies& t = ctx.EpochState<TitleCopies>(batch->epoch);
    for (const Document& d : batch.records()) t.titles.emplace_back(d.title);
  }
  void OnNotify(Epoch t, Context& ctx) override {
    ctx.Report("titles", ctx.FindEpochState<TitleCopies>(t)->titles.size());
  }
};

template <class Op, class R, class Src>
Graph OneOperator(uint64_t (*key)(const R&), Epoch epochs = 2) {
  Graph g;
  int src = g.AddStage<Src>("source", 1, 0, 1, epochs);
  int op = g.AddStage<Op>("keep", 1, 1, 0);
  g.Connect<R>(src, 0, op, 0, Exchange<R>(key));
  return g;
}

JobOptions Options(StateChecks checks) {
  JobOptions o;
  o.state_checks = checks;
  o.batch_size = 4;
  return o;
}

// ---- mistake 1, caught after the callback that made it ----------------------------------------

// The state checks are chosen through the environment here (the way a user turns them on for a
// job they cannot rebuild) so that this test also compiles against the code before issue 13.
TEST(StateCheckDeathTest, PointerToAnInputRecordInOperatorStateStopsTheJobNamingTheMessage) {
  EXPECT_DEATH(
      {
        setenv("BROOM_STATE_CHECKS", "callback", 1);
        SetCheckMode(CheckMode::kFatal);
        RunDirect(OneOperator<KeepRecordPointer, Tick, Ticks>(&TickKey), JobOptions{});
      },
      "state check of operator 'keep' \\(instance 0 of 1\\) after OnRecv\\(port 0, epoch 0\\): "
      "the operator's state breaks the points-to rules \\(1 violations\\)\n"
      "  operator state, actor region #[0-9]+ 'operator':\n"
      "  actor region #[0-9]+ 'operator' \\+0x[0-9a-f]+ points to 0x[0-9a-f]+ in transferable "
      "region #[0-9]+ 'batch': breaks actor state holds handles of transferable regions, never "
      "pointers into them\n"
      "  transferable region #[0-9]+ 'batch' is the message this OnRecv received");
}

TEST(StateCheckDeathTest, TitleViewsIntoTheInputInPerTimestampStateStopTheJob) {
  EXPECT_DEATH(
      {
        setenv("BROOM_STATE_CHECKS", "callback", 1);
        SetCheckMode(CheckMode::kFatal);
        RunDirect(OneOperator<KeepTitleViews, Document, Docs>(&DocKey), JobOptions{});
      },
      "after OnRecv\\(port 0, epoch 0\\): the operator's state breaks the points-to rules "
      "\\([0-9]+ violations\\)\n"
      "  state of epoch 0, transferable region #[0-9]+ 'epoch-state':\n"
      "  transferable region #[0-9]+ 'epoch-state' \\+0x[0-9a-f]+ points to 0x[0-9a-f]+ in "
      "transferable region #[0-9]+ 'batch': breaks self-contained.*"
      "transferable region #[0-9]+ 'batch' is the message this OnRecv received.*"
      "broom: fatal: state check of operator 'keep'");
}

// The report names exactly the state region, the input message's region and the offset of the
// word (kLog: the job goes on, so the test can compare with what the operator recorded).
TEST(StateCheckTest, ReportNamesTheStateRegionTheMessageRegionAndTheOffset) {
  g_stored = {};
  CheckScope mode(CheckMode::kLog);
  ::testing::internal::CaptureStderr();
  JobResult r = RunDirect(OneOperator<KeepRecordPointer, Tick, Ticks>(&TickKey),
                          Options(StateChecks::kEveryCallback));
  std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(r.ok) << r.error;
  ASSERT_NE(g_stored.state_region, 0u);
  char expected[256];
  std::snprintf(expected, sizeof(expected),
                "  actor region #%llu 'operator' +0x%zx points to %p in transferable region #%llu "
                "'batch': breaks",
                (unsigned long long)g_stored.state_region, g_stored.offset, g_stored.value,
                (unsigned long long)g_stored.input_region);
  size_t first = log.find("after OnRecv(port 0, epoch 0)");
  ASSERT_NE(first, std::string::npos) << log;
  EXPECT_EQ(log.find(expected), log.find('\n', log.find('\n', first) + 1) + 1) << log;
  EXPECT_GT(r.shim.state_checks, 0u);
}

// ---- mistake 1 under the default frequency: caught at OnNotify / shutdown ----------------------

TEST(StateCheckDeathTest, DefaultChecksCatchAKeptPointerAtShutdown) {
  EXPECT_DEATH(
      {
        unsetenv("BROOM_STATE_CHECKS");
        SetCheckMode(CheckMode::kFatal);
        RunDirect(OneOperator<KeepRecordPointer, Tick, Ticks>(&TickKey), JobOptions{});
      },
      "state check of operator 'keep' \\(instance 0 of 1\\) after OnFinish: .*"
      "  actor region #[0-9]+ 'operator' \\+0x[0-9a-f]+ points to 0x[0-9a-f]+ in .*"
      "with BROOM_STATE_CHECKS=callback");
}

TEST(StateCheckDeathTest, DefaultChecksCatchTitleViewsAtOnNotify) {
  EXPECT_DEATH(
      {
        unsetenv("BROOM_STATE_CHECKS");
        SetCheckMode(CheckMode::kFatal);
        RunDirect(OneOperator<KeepTitleViews, Document, Docs>(&DocKey), JobOptions{});
      },
      "after OnNotify\\(0\\): .*  state of epoch 0, transferable region #[0-9]+ 'epoch-state':\n"
      "  transferable region #[0-9]+ 'epoch-state' \\+0x[0-9a-f]+ points to 0x[0-9a-f]+ in ");
}

TEST(StateCheckTest, CopyingTheTitlesIntoTheStatePasses) {
  CheckScope mode(CheckMode::kFatal);
  for (StateChecks c : {StateChecks::kAtNotify, StateChecks::kEveryCallback}) {
    JobResult r = RunDirect(OneOperator<CopyTitles, Document, Docs>(&DocKey), Options(c));
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.totals["titles"], 16u);
    EXPECT_GT(r.shim.state_checks, 0u);
    EXPECT_GT(r.shim.state_bytes_scanned, 0u);
  }
}

// ---- the knob ---------------------------------------------------------------------------------

TEST(StateCheckTest, FrequencyDecidesWhenStateIsScanned) {
  CheckScope mode(CheckMode::kFatal);
  auto scans = [](StateChecks c) {
    JobResult r = RunDirect(OneOperator<CopyTitles, Document, Docs>(&DocKey), Options(c));
    EXPECT_TRUE(r.ok) << r.error;
    return r.shim.state_checks;
  };
  // 2 epochs of 8 documents in batches of 4: the source completes 2 epochs; the operator gets
  // 4 batches, 2 OnNotify and an OnFinish.
  EXPECT_EQ(scans(StateChecks::kOff), 0u);
  EXPECT_EQ(scans(StateChecks::kAtNotify), 2u + 2 + 1);
  EXPECT_EQ(scans(StateChecks::kEveryCallback), 2u + 4 + 2 + 1);
  {
    CheckScope off(CheckMode::kOff);  // the check mode gates everything
    EXPECT_EQ(scans(StateChecks::kEveryCallback), 0u);
  }
  setenv("BROOM_STATE_CHECKS", "callback", 1);
  EXPECT_EQ(scans(StateChecks::kDefault), 2u + 4 + 2 + 1);
  EXPECT_EQ(scans(StateChecks::kAtNotify), 2u + 2 + 1);  // the option wins over the variable
  unsetenv("BROOM_STATE_CHECKS");
  EXPECT_EQ(scans(StateChecks::kDefault), 2u + 2 + 1);
}

TEST(StateCheckTest, MalformedEnvironmentValueIsAJobError) {
  setenv("BROOM_STATE_CHECKS", "always", 1);
  JobResult r = RunDirect(OneOperator<CopyTitles, Document, Docs>(&DocKey), JobOptions{});
  unsetenv("BROOM_STATE_CHECKS");
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error, "BROOM_STATE_CHECKS='always': use off, notify or callback");
  StateChecks c = StateChecks::kOff;
  for (const char* name : {"off", "notify", "callback", "default"}) {
    ASSERT_TRUE(ParseStateChecks(name, &c)) << name;
    EXPECT_STREQ(StateChecksName(c), name);
  }
  EXPECT_FALSE(ParseStateChecks("Callback", &c));
}

// ---- legitimate patterns pass -----------------------------------------------------------------

// Keeps whole envelopes in its state (a vector in the operator-state region) and sends them at
// the end of each epoch; keeps a per-epoch index of pointers into a dictionary in its operator
// state (which outlives every per-timestamp state); and points into its own state.
struct Index {
  using allocator_type = std::pmr::polymorphic_allocator<std::byte>;
  explicit Index(const allocator_type& a) : entries(a) {}
  std::pmr::vector<const uint64_t*> entries;  // into the operator's dictionary
};
class KeepEnvelopes final : public Unary<Tick> {
 public:
  KeepEnvelopes() : dictionary_(broom::CurrentResource()), kept_(broom::CurrentResource()) {
    dictionary_.resize(1000);
    first_ = &dictionary_[0];
  }
  void OnRecv(Envelope<Tick>& batch, Context& ctx) override {
    Index& index = ctx.EpochState<Index>(batch->epoch);
    for (const Tick& t : batch.records()) index.entries.push_back(&dictionary_[t.v % 1000]);
    kept_.push_back(std::move(batch));
  }
  void OnNotify(Epoch t, Context& ctx) override {
    for (const uint64_t* e : ctx.FindEpochState<Index>(t)->entries) ++*const_cast<uint64_t*>(e);
    for (Envelope<Tick>& b : kept_) ctx.output<Tick>(0).Send(std::move(b));
    kept_.clear();
    ctx.Report("first", *first_);
  }

 private:
  std::pmr::vector<uint64_t> dictionary_;
  std::pmr::vector<Envelope<Tick>> kept_;
  uint64_t* first_;
};
class CountTicks final : public Unary<Tick> {
 public:
  void OnRecv(Envelope<Tick>& batch, Context& ctx) override {
    ctx.Report("records", batch.records().size());
  }
};

TEST(StateCheckTest, KeptEnvelopesAndPointersIntoOperatorStatePass) {
  CheckScope mode(CheckMode::kFatal);
  Graph g;
  int src = g.AddStage<Ticks>("source", 1, 0, 1, Epoch{3});
  int keep = g.AddStage<KeepEnvelopes>("keep", 1, 1, 1);
  int sink = g.AddStage<CountTicks>("sink", 1, 1, 0);
  g.Connect<Tick>(src, 0, keep, 0, Exchange<Tick>(&TickKey));
  g.Connect<Tick>(keep, 0, sink, 0, Pipeline<Tick>());
  JobResult r = RunDirect(g, Options(StateChecks::kEveryCallback));
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.totals["records"], 24u);
  EXPECT_GT(r.shim.state_checks, 0u);
}

// Scratch kept in operator state: the pointer is into the callback's temporary region.
class KeepScratch final : public Unary<Tick> {
 public:
  void OnRecv(Envelope<Tick>&, Context&) override {
    auto* scratch = static_cast<uint64_t*>(broom::CurrentResource()->allocate(64, 8));
    if (kept_ == nullptr) kept_ = scratch;
  }

 private:
  uint64_t* kept_ = nullptr;
};

TEST(StateCheckDeathTest, ScratchKeptInOperatorStateIsCaught) {
  EXPECT_DEATH(
      {
        SetCheckMode(CheckMode::kFatal);
        RunDirect(OneOperator<KeepScratch, Tick, Ticks>(&TickKey),
                  Options(StateChecks::kEveryCallback));
      },
      "after OnRecv\\(port 0, epoch 0\\): .* points to 0x[0-9a-f]+ in temporary region #[0-9]+"
      ".*: breaks actor state never points into a temporary region\n"
      ".*a temporary region is callback scratch");
}

// ---- zero false positives: every example job, checked after every callback -----------------

class ExampleJobCheckedTest : public ::testing::TestWithParam<const char*> {};

TEST_P(ExampleJobCheckedTest, PassesEveryStateCheckWithTheRightResult) {
  examples::RegisterExampleJobs();
  CheckScope mode(CheckMode::kFatal);
  JobParams params = JobParams::Parse("epochs=4,docs=3000,lines=300,vocabulary=300,workers=2");
  auto graph = BuildJob(GetParam(), params);
  ASSERT_TRUE(graph.has_value());
  JobOptions opt = Options(StateChecks::kEveryCallback);
  opt.batch_size = 64;
  JobResult r = RunDirect(*graph, opt);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.totals, examples::ReferenceTotals(GetParam(), params));
  EXPECT_GT(r.shim.state_checks, r.shim.batches_received);  // after every callback
  EXPECT_GT(r.shim.state_bytes_scanned, 0u);
}

INSTANTIATE_TEST_SUITE_P(AllJobs, ExampleJobCheckedTest,
                         ::testing::Values("select", "aggregate", "join", "wjoin", "wordcount"));

}  // namespace
}  // namespace broom::lifecycle
