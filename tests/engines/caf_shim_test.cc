// Copyright Broom authors.
//
// The CAF shim: jobs as stateful actors equal their reference computations, free every region,
// move batches without copying handles, bound in-flight batches by credits, give the same result
// over two and four processes on 127.0.0.1, ship a batch sent on whole to a third process and
// home, and report a killed worker process within seconds. Its worker processes run this test
// binary (main below): every process of a job runs one binary.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "broom/caf/runtime.h"
#include "broom/check.h"
#include "broom/memory.h"
#include "broom/region.h"
#include "broom/ship.h"
#include "runtime_shims/caf/batch_handle.h"
#include "runtime_shims/caf/messages.h"
#include "runtime_shims/examples/jobs.h"

namespace broom::caf_shim {
namespace {

using lifecycle::JobOptions;
using lifecycle::JobParams;
using lifecycle::JobResult;

// Sanitizer builds run jobs about 10x slower; job time limits scale with it.
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr double kSlowdown = 10;
#else
constexpr double kSlowdown = 1;
#endif

JobParams Params(const std::string& s, int workers) {
  JobParams p = JobParams::Parse(s);
  p.Set("workers", static_cast<uint64_t>(workers));
  return p;
}

JobOptions Options(const std::string& policy = "regions") {
  JobOptions o;
  o.policy = policy;
  o.threads = 2;
  o.batch_size = 64;
  o.credits = 4;
  o.timeout_seconds = 60 * kSlowdown;
  return o;  // worker_exe: this test binary (see main)
}

uint64_t Created(const JobResult& r, RegionKind k) {
  return r.broom_after.regions_created[static_cast<int>(k)] -
         r.broom_before.regions_created[static_cast<int>(k)];
}
uint64_t Destroyed(const JobResult& r, RegionKind k) {
  return r.broom_after.regions_destroyed[static_cast<int>(k)] -
         r.broom_before.regions_destroyed[static_cast<int>(k)];
}

constexpr const char* kSmall = "epochs=5,docs=3000,lines=400,vocabulary=300";

class CafJobTest : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(CafJobTest, EqualsReferenceAndFreesEveryRegion) {
  examples::RegisterExampleJobs();
  auto [job, policy] = GetParam();
  JobParams params = Params(kSmall, 3);
  JobResult r = RunJob(job, params, Options(policy));
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.totals, examples::ReferenceTotals(job, params)) << r.Summary();
  for (RegionKind k : {RegionKind::kTransferable, RegionKind::kActor, RegionKind::kTemporary}) {
    EXPECT_EQ(Created(r, k), Destroyed(r, k)) << KindName(k) << "\n" << r.Summary();
  }
  EXPECT_EQ(r.shim.messages().created, r.shim.messages().freed);
  if (policy == "regions") {
    EXPECT_GT(Created(r, RegionKind::kTransferable), 0u);
    EXPECT_GT(Created(r, RegionKind::kActor), 0u);
    EXPECT_GT(Created(r, RegionKind::kTemporary), 0u);  // one per scheduler thread used
  }
}

INSTANTIATE_TEST_SUITE_P(
    AllJobs, CafJobTest,
    ::testing::Combine(::testing::Values("select", "aggregate", "join", "wjoin", "wordcount"),
                       ::testing::Values("regions", "heap")),
    [](const auto& info) { return std::get<0>(info.param) + "_" + std::get<1>(info.param); });

// Zero false positives on CAF: every example job in checked mode (fatal), with operator state
// scanned after every callback, on 2 scheduler threads and on 2 processes (the worker checks
// as its driver does: its counters show the scans).
class CafCheckedJobTest : public ::testing::TestWithParam<std::string> {};

TEST_P(CafCheckedJobTest, PassesEveryStateCheckOnThreadsAndProcesses) {
  examples::RegisterExampleJobs();
  CheckMode old = GetCheckMode();
  SetCheckMode(CheckMode::kFatal);
  JobParams params = Params("epochs=3,docs=2000,lines=300,vocabulary=300", 2);
  for (int processes : {1, 2}) {
    JobOptions o = Options();
    o.processes = processes;
    o.state_checks = lifecycle::StateChecks::kEveryCallback;
    JobResult r = RunJob(GetParam(), params, o);
    ASSERT_TRUE(r.ok) << processes << " processes: " << r.error;
    EXPECT_EQ(r.totals, examples::ReferenceTotals(GetParam(), params)) << processes;
    EXPECT_GT(r.shim.state_checks, 0u) << processes;
    if (processes == 2) {
      ASSERT_EQ(r.workers.size(), 1u);
      EXPECT_GT(r.workers[0].shim.state_checks, 0u) << r.Summary();
    }
  }
  SetCheckMode(old);
}

INSTANTIATE_TEST_SUITE_P(AllJobs, CafCheckedJobTest,
                         ::testing::Values("select", "aggregate", "join", "wjoin", "wordcount"));

TEST(CafShimTest, LinearPipelineMovesBatchesWithoutCopyingHandles) {
  examples::RegisterExampleJobs();
  JobResult r = RunJob("select", Params("epochs=4,docs=20000,select_keep=500", 2), Options());
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_GT(r.shim.batches_sent, 100u);
  EXPECT_EQ(r.shim.handle_copies, 0u) << r.Summary();
  EXPECT_EQ(r.shim.handle_shared_takes, 0u);
  // SELECT forwards its input batch: fewer arenas than batches sent over both edges.
  EXPECT_LT(r.shim.messages().created, r.shim.batches_sent);
}

TEST(CafShimTest, AShippedHandlePrintsItsTypeAndGivesItsBlocksBackIfNeverWritten) {
  auto policy = lifecycle::MakePolicy("regions");
  auto docs = lifecycle::Envelope<examples::Document>::Create(*policy, 3, 4);
  {
    lifecycle::ArenaScope open(docs.arena());
    docs.records().emplace_back(1, 2, 3, 3).title.assign(64, 't');
  }
  lifecycle::AnyEnvelope any = std::move(docs).Erase();
  const WireHeader header = HeaderOf(any);
  const size_t loaned_before = GetShipStats().loaned_bytes;
  std::string error;
  std::optional<Shipment> s = any.Ship(1, ShipMode::kCopy, &error);
  ASSERT_TRUE(s) << error;
  EXPECT_FALSE(any);  // the batch left with the shipment
  EXPECT_GT(GetShipStats().loaned_bytes, loaned_before);
  {
    BatchHandle h(std::move(*s), header, 0);
    ASSERT_TRUE(h);
    ASSERT_NE(h.shipment(), nullptr);
    const std::string text = caf::deep_to_string(WireBatch{0, 0, h});
    EXPECT_NE(text.find(header.type + " (shipped)"), std::string::npos) << text;
  }  // the message was never written: its blocks came back
  EXPECT_EQ(GetShipStats().loaned_bytes, loaned_before);
}

TEST(CafShimTest, CopiedHandleIsCountedAndSharedTakeGivesEachReceiverItsOwnBatch) {
  lifecycle::ResetShimStats();
  auto policy = lifecycle::MakePolicy("regions");
  auto b = lifecycle::Envelope<examples::Document>::Create(*policy, 3, 4);
  b.records().push_back(examples::Document{1, 2, 3, 3});
  BatchHandle h(std::move(b).Erase());
  BatchHandle copy = h;  // what CAF does when one message goes to two actors
  EXPECT_EQ(lifecycle::GetShimStats().handle_copies, 1u);
  lifecycle::AnyEnvelope first = copy.Take();  // shared: deep copy into a fresh region
  EXPECT_EQ(lifecycle::GetShimStats().handle_shared_takes, 1u);
  lifecycle::AnyEnvelope second = h.Take();  // now unique: moves out
  EXPECT_EQ(lifecycle::GetShimStats().handle_shared_takes, 1u);
  ASSERT_TRUE(first && second);
  EXPECT_NE(first.root(), second.root());
  using Docs = lifecycle::Envelope<examples::Document>;
  EXPECT_EQ(Docs(std::move(first)).records()[0].id, 1u);
  EXPECT_EQ(Docs(std::move(second)).records()[0].id, 1u);
  EXPECT_FALSE(static_cast<bool>(h));
}

// ---- credits ---------------------------------------------------------------------------------

struct Tick {
  uint64_t v;
};
uint64_t TickKey(const Tick& t) { return t.v; }

class FastSource final : public lifecycle::Source {
 public:
  FastSource() : Source(100) {}
  bool Produce(lifecycle::Epoch t, lifecycle::Context& ctx) override {
    for (uint64_t i = 0; i < 8; ++i) ctx.output<Tick>(0).Give(t, Tick{t * 8 + i});  // 1 batch
    return ++calls_ % 4 == 0;  // 4 batches per epoch
  }

 private:
  uint64_t calls_ = 0;
};

class SlowSink final : public lifecycle::Unary<Tick> {
 public:
  void OnRecv(lifecycle::Envelope<Tick>& batch, lifecycle::Context&) override {
    std::this_thread::sleep_for(std::chrono::microseconds(300));
    n_ += batch.records().size();
  }
  void OnFinish(lifecycle::Context& ctx) override { ctx.Report("records", n_); }

 private:
  uint64_t n_ = 0;
};

void RegisterSlowJob() {
  lifecycle::RegisterJob("test_slow_sink", [](const JobParams&) {
    lifecycle::Graph g;
    int src = g.AddStage<FastSource>("fast", 1, 0, 1);
    int sink = g.AddStage<SlowSink>("slow", 1, 1, 0);
    g.Connect<Tick>(src, 0, sink, 0, lifecycle::Exchange<Tick>(&TickKey));
    return g;
  });
}

TEST(CafShimTest, CreditsBoundBatchesInFlightPerEdge) {
  RegisterSlowJob();
  JobOptions o = Options();
  o.batch_size = 8;
  o.credits = 4;
  JobResult r = RunJob("test_slow_sink", JobParams(), o);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.totals["records"], 3200u);
  EXPECT_LE(r.shim.peak_in_flight, 4u);
  // Independent of the credit bookkeeping: batches alive at once (in the mailbox, queued or
  // being processed, plus the one being filled) stay near the window.
  EXPECT_LE(r.shim.messages().peak_live, 4u + 3u) << r.Summary();
  EXPECT_GT(r.shim.credit_stalls, 0u);
}

TEST(CafShimTest, WithoutCreditsAFastSourceFloodsTheSlowSink) {
  // The counter-test: the bound above is due to credits, not to the workload.
  RegisterSlowJob();
  JobOptions o = Options();
  o.batch_size = 8;
  o.credits = 0;
  JobResult r = RunJob("test_slow_sink", JobParams(), o);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.totals["records"], 3200u);
  EXPECT_GT(r.shim.messages().peak_live, 100u) << r.Summary();
}

// ---- allocation context per callback ------------------------------------------------------------

struct ContextLog {
  std::mutex mu;
  std::set<std::thread::id> threads;  // scheduler threads that ran a callback
  int not_scratch = 0;                // callbacks whose context was not a temporary region
  int foreign_scratch = 0;            // ... or a temporary region another thread opened
};
ContextLog g_log;
thread_local Region* t_seen_scratch = nullptr;

class ContextProbe final : public lifecycle::Unary<Tick> {
 public:
  void OnRecv(lifecycle::Envelope<Tick>& batch, lifecycle::Context& ctx) override {
    Region* r = CurrentRegion();
    std::lock_guard<std::mutex> lock(g_log.mu);
    g_log.threads.insert(std::this_thread::get_id());
    if (r == nullptr || r->kind() != RegionKind::kTemporary) {
      ++g_log.not_scratch;
    } else {
      // Each thread has exactly one scratch region: the same one every time on this thread.
      if (t_seen_scratch == nullptr) t_seen_scratch = r;
      if (t_seen_scratch != r) ++g_log.foreign_scratch;
    }
    std::pmr::vector<uint64_t> tmp(CurrentResource());  // scratch, freed after the callback
    for (const Tick& t : batch.records()) tmp.push_back(t.v);
    ctx.output<Tick>(0).Send(std::move(batch));
  }
};

TEST(CafShimTest, AllocationContextIsSetPerCallbackOnTheThreadRunningIt) {
  lifecycle::RegisterJob("test_context", [](const JobParams&) {
    lifecycle::Graph g;
    int src = g.AddStage<FastSource>("fast", 4, 0, 1);
    int probe = g.AddStage<ContextProbe>("probe", 4, 1, 1);
    int sink = g.AddStage<SlowSink>("sink", 4, 1, 0);
    g.Connect<Tick>(src, 0, probe, 0, lifecycle::Exchange<Tick>(&TickKey));
    g.Connect<Tick>(probe, 0, sink, 0, lifecycle::Pipeline<Tick>());
    return g;
  });
  JobOptions o = Options();
  o.batch_size = 8;
  JobResult r = RunJob("test_context", JobParams(), o);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.totals["records"], 4u * 3200u);
  std::lock_guard<std::mutex> lock(g_log.mu);
  EXPECT_EQ(g_log.not_scratch, 0);
  EXPECT_EQ(g_log.foreign_scratch, 0);
  EXPECT_GE(g_log.threads.size(), 2u);  // the probes really ran on several scheduler threads
}

// ---- several processes -------------------------------------------------------------------------

// The documents and words of `r` (a job on several processes) crossed processes by address: regions
// went both ways with no record code, every block lent came back to its lender through loan notes
// before the workers' stats were read (none had to be taken back) and every borrowed one was
// freed, in the driver and in every worker; with shared memory
// (this binary run with BROOM_PLAN_SHARED=1, as ctest does once) not one payload byte was copied,
// without it every shipped block's used bytes were.
void ExpectShippedByAddress(const JobResult& r, const std::string& job) {
  const ShipStats& b = r.ship_before;
  const ShipStats& a = r.ship_after;
  const ShipStats& w = r.workers.at(0).ship;
  EXPECT_GT(a.regions_shipped - b.regions_shipped, 0u) << job;
  EXPECT_GT(w.regions_received, 0u) << job;
  EXPECT_GT(a.notes_accepted - b.notes_accepted, 0u) << job;  // notes really flowed back
  EXPECT_EQ(a.loaned_bytes, 0u) << job << "\n" << r.Summary();
  EXPECT_EQ(a.borrowed_bytes, b.borrowed_bytes) << job;
  EXPECT_EQ(w.borrowed_bytes, 0u) << job << "\n" << r.Summary();
  // Both sides balance before the workers exit: nothing of any worker is on loan, no note is left
  // queued in one, and neither the driver nor a worker had to take a loan back.
  for (const lifecycle::ProcessStats& p : r.workers) {
    EXPECT_EQ(p.ship.loaned_bytes, 0u) << job << " pid " << p.pid << "\n" << r.Summary();
    EXPECT_EQ(p.ship.loaned_blocks, 0u) << job << " pid " << p.pid;
    EXPECT_EQ(p.ship.notes_pending, 0u) << job << " pid " << p.pid;
    EXPECT_EQ(p.ship.reclaimed_blocks, 0u) << job << " pid " << p.pid;
  }
  EXPECT_EQ(a.reclaimed_blocks - b.reclaimed_blocks, 0u) << job << "\n" << r.Summary();
  AddressPlan plan;
  ASSERT_TRUE(GetAddressPlan(&plan));
  if (plan.shared_memory) {
    EXPECT_EQ(a.payload_bytes_sent - b.payload_bytes_sent, 0u) << job;
    EXPECT_EQ(w.payload_bytes_received + w.payload_bytes_sent, 0u) << job;
    EXPECT_GT(a.mapped_bytes_sent - b.mapped_bytes_sent, 0u) << job;
  } else {
    EXPECT_GT(a.payload_bytes_sent - b.payload_bytes_sent, 0u) << job;
    // Every byte one process sent, another received.
    uint64_t sent = a.payload_bytes_sent - b.payload_bytes_sent;
    uint64_t received = a.payload_bytes_received - b.payload_bytes_received;
    for (const lifecycle::ProcessStats& p : r.workers) {
      sent += p.ship.payload_bytes_sent;
      received += p.ship.payload_bytes_received;
    }
    EXPECT_EQ(sent, received) << job;
    EXPECT_EQ(a.mapped_bytes_sent - b.mapped_bytes_sent, 0u) << job;
  }
}

TEST(CafShimTest, TwoProcessesOverLoopbackEqualOneProcess) {
  examples::RegisterExampleJobs();
  for (const char* job : {"join", "wordcount", "aggregate"}) {
    JobParams params = Params(kSmall, 2);
    JobOptions one = Options();
    JobResult single = RunJob(job, params, one);
    ASSERT_TRUE(single.ok) << single.error;
    JobOptions two = Options();
    two.processes = 2;
    two.timeout_seconds = 30 * kSlowdown;
    JobResult multi = RunJob(job, params, two);
    ASSERT_TRUE(multi.ok) << job << ": " << multi.error;
    EXPECT_EQ(multi.totals, single.totals) << job;
    EXPECT_EQ(multi.totals, examples::ReferenceTotals(job, params)) << job;
    EXPECT_GT(multi.shim.remote_batches_out, 0u) << job;  // really crossed processes
    EXPECT_GT(multi.shim.remote_batches_in, 0u) << job;
    for (RegionKind k : {RegionKind::kTransferable, RegionKind::kActor, RegionKind::kTemporary}) {
      EXPECT_EQ(Created(multi, k), Destroyed(multi, k)) << job << " " << KindName(k);
    }
    // The worker process freed every batch and operator region too, and copied no handle.
    ASSERT_EQ(multi.workers.size(), 1u) << job;
    const lifecycle::ProcessStats& w = multi.workers[0];
    for (RegionKind k : {RegionKind::kTransferable, RegionKind::kActor}) {
      int i = static_cast<int>(k);
      EXPECT_GT(w.broom.regions_created[i], 0u) << job << " " << KindName(k);
      EXPECT_EQ(w.broom.regions_created[i], w.broom.regions_destroyed[i])
          << job << " " << KindName(k) << "\n"
          << multi.Summary();
    }
    EXPECT_EQ(w.shim.handle_copies, 0u) << job;
    EXPECT_GT(w.shim.remote_batches_in, 0u) << job;
    ExpectShippedByAddress(multi, job);
    EXPECT_EQ(w.shim.messages().created, w.shim.messages().freed) << job;
    // What the worker still holds is the callback scratch of its scheduler threads (alive until
    // the worker exits), and its summary says so instead of reading as a leak.
    EXPECT_GT(w.shim.scratch_live(), 0u) << job;
    EXPECT_EQ(w.broom.live(RegionKind::kTemporary), w.shim.scratch_live()) << job;
    std::string summary = multi.Summary();
    EXPECT_NE(summary.find(std::to_string(w.shim.scratch_live()) +
                           " alive: its scheduler threads are still running; freed when the "
                           "worker exits"),
              std::string::npos)
        << summary;
    EXPECT_EQ(summary.find("STILL ALIVE"), std::string::npos) << summary;
  }
}

TEST(CafShimTest, FourProcessesEqualOneProcessAndEveryLoanComesBack) {
  examples::RegisterExampleJobs();
  for (const char* job : {"join", "wordcount"}) {
    JobParams params = Params(kSmall, 4);
    JobOptions o = Options();
    o.processes = 4;
    o.timeout_seconds = 60 * kSlowdown;
    JobResult r = RunJob(job, params, o);
    ASSERT_TRUE(r.ok) << job << ": " << r.error;
    EXPECT_EQ(r.totals, examples::ReferenceTotals(job, params)) << job;
    ASSERT_EQ(r.workers.size(), 3u) << job;
    ExpectShippedByAddress(r, job);
    for (const lifecycle::ProcessStats& w : r.workers) {
      EXPECT_GT(w.ship.regions_received, 0u) << job;
      EXPECT_EQ(w.ship.borrowed_bytes, 0u) << job << "\n" << r.Summary();
    }
  }
}

// A worker "on another host": JobOptions::worker_hosts names 127.0.0.1 for worker 2, and a
// stand-in for ssh (fake_launcher.sh: it logs the host and runs the command here, as ssh would
// run it there) starts it. The job equals its reference; the launcher ran once, for that host;
// that worker received its batches in copy mode even when the slices are shared memory (a host
// counts as another machine), and gave every loan back. Run with and without shared slices.
TEST(CafShimTest, AWorkerOnAnotherHostIsStartedByTheLauncherAndReachedThere) {
  examples::RegisterExampleJobs();
  char log[] = "/tmp/broom_launch_XXXXXX";
  const int log_fd = mkstemp(log);
  ASSERT_GE(log_fd, 0);
  close(log_fd);
  ASSERT_EQ(setenv("BROOM_TEST_LAUNCH_LOG", log, 1), 0);
  JobParams params = Params(kSmall, 3);
  JobOptions o = Options();
  o.processes = 3;
  o.worker_hosts = {"", "127.0.0.1"};
  o.worker_launcher = {BROOM_FAKE_LAUNCHER};
  JobResult r = RunJob("wordcount", params, o);
  unsetenv("BROOM_TEST_LAUNCH_LOG");
  std::string launched;
  if (FILE* f = std::fopen(log, "r")) {
    char buf[256];
    while (std::fgets(buf, sizeof(buf), f) != nullptr) launched += buf;
    std::fclose(f);
  }
  std::remove(log);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.totals, examples::ReferenceTotals("wordcount", params));
  EXPECT_EQ(launched, "127.0.0.1\n");  // worker 2 only, through the launcher
  ASSERT_EQ(r.workers.size(), 2u);
  const lifecycle::ProcessStats& remote = r.workers[1];
  EXPECT_GT(remote.ship.regions_received, 0u) << r.Summary();
  EXPECT_GT(remote.ship.payload_bytes_received, 0u) << r.Summary();
  EXPECT_EQ(remote.ship.mapped_bytes_received, 0u) << r.Summary();
  EXPECT_EQ(remote.ship.mapped_bytes_sent, 0u) << r.Summary();
  EXPECT_EQ(remote.ship.borrowed_bytes, 0u) << r.Summary();
  AddressPlan plan;
  if (GetAddressPlan(&plan) && plan.shared_memory) {  // worker 1 shares this machine's memory
    EXPECT_GT(r.workers[0].ship.mapped_bytes_received, 0u) << r.Summary();
  }
}

// A launcher that fails, or a host where no worker starts, is a clear error naming the host.
TEST(CafShimTest, AWorkerThatCannotStartOnItsHostGivesAClearError) {
  examples::RegisterExampleJobs();
  JobOptions o = Options();
  o.processes = 2;
  o.worker_hosts = {"nowhere.invalid"};
  o.worker_launcher = {"/bin/false"};
  JobResult r = RunJob("wordcount", Params(kSmall, 2), o);
  ASSERT_FALSE(r.ok);
  for (const char* part :
       {"worker 1 on host nowhere.invalid", "started by /bin/false", "before reporting a port"}) {
    EXPECT_NE(r.error.find(part), std::string::npos) << part << " in: " << r.error;
  }
  o.worker_launcher.clear();
  r = RunJob("wordcount", Params(kSmall, 2), o);
  ASSERT_FALSE(r.ok);
  EXPECT_NE(r.error.find("JobOptions::worker_launcher is empty"), std::string::npos) << r.error;
}

// A source of words (records with a string: they cross processes by address in both ship
// modes), 8 per batch, 4 batches per epoch, 100 epochs.
class WordSource final : public lifecycle::Source {
 public:
  WordSource() : Source(100) {}
  bool Produce(lifecycle::Epoch t, lifecycle::Context& ctx) override {
    char text[48];
    for (uint64_t i = 0; i < 8; ++i) {
      std::snprintf(text, sizeof(text), "word number %" PRIu64 " of a held batch", calls_ * 8 + i);
      ctx.output<examples::Word>(0).Give(t, examples::Word(text, CurrentResource()));
    }
    return ++calls_ % 4 == 0;
  }

 private:
  uint64_t calls_ = 0;
};
uint64_t WordTextKey(const examples::Word& w) { return std::hash<std::string_view>()(w.text); }

// A sink that keeps every batch it receives until the job tears it down: the blocks of batches
// lent by the other process come back only when the instance is destroyed, after its last
// credit and punctuation went out, so only the stats requests at the end of the job can carry
// their loan notes home.
class HoldingSink final : public lifecycle::Unary<examples::Word> {
 public:
  void OnRecv(lifecycle::Envelope<examples::Word>& batch, lifecycle::Context&) override {
    n_ += batch.records().size();
    held_.push_back(std::move(batch));
  }
  void OnFinish(lifecycle::Context& ctx) override {
    ctx.Report("records", n_);
    ctx.Report("held_batches", held_.size());
  }

 private:
  uint64_t n_ = 0;
  std::vector<lifecycle::Envelope<examples::Word>> held_;
};

// The options of the word jobs below: batches of 8 words on `processes` processes.
JobOptions WordJobOptions(int processes) {
  JobOptions o = Options();
  o.batch_size = 8;
  o.processes = processes;
  o.timeout_seconds = 30 * kSlowdown;
  return o;
}

// Registered in the test and in the worker processes (main).
void RegisterHoldingJob() {
  lifecycle::RegisterJob("test_hold", [](const JobParams&) {
    lifecycle::Graph g;
    int src = g.AddStage<WordSource>("words", 2, 0, 1);
    int sink = g.AddStage<HoldingSink>("hold", 2, 1, 0);
    g.Connect<examples::Word>(src, 0, sink, 0, lifecycle::Exchange<examples::Word>(&WordTextKey));
    return g;
  });
}

TEST(CafShimTest, BatchesHeldUntilAnOperatorIsDestroyedStillGoHome) {
  RegisterHoldingJob();
  JobResult r = RunJob("test_hold", JobParams(), WordJobOptions(2));
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.totals["records"], 2u * 3200u);
  EXPECT_GE(r.totals["held_batches"], 2u * 400u);  // an exchange splits batches
  EXPECT_GT(r.shim.remote_batches_out, 0u);
  ASSERT_EQ(r.workers.size(), 1u);
  EXPECT_GT(r.workers[0].shim.remote_batches_in, 0u);
  ExpectShippedByAddress(r, "test_hold");
}

// ---- a batch sent on whole: shipped on to a third process, and home -----------------------------
// One source instance (process 0) sends words by an exchange to three relays (relay i runs in
// process i); each relay sends every batch it receives on, whole, by an exchange whose key puts
// every word of that batch on sink (i + 1) % 3. So each batch's region goes 0 -> 0 -> 1,
// 0 -> 1 -> 2 (shipped on to a third process) or 0 -> 2 -> 0 (home), never copied on the way.
int RelayOf(const examples::Word& w) {
  return static_cast<int>(lifecycle::MixHash(WordTextKey(w)) % 3);
}
uint64_t NextSinkKey(const examples::Word& w) {
  const uint64_t want = static_cast<uint64_t>(RelayOf(w) + 1) % 3;
  uint64_t k = 0;
  while (lifecycle::MixHash(k) % 3 != want) ++k;
  return k;
}

class Relay final : public lifecycle::Unary<examples::Word> {
 public:
  void OnRecv(lifecycle::Envelope<examples::Word>& batch, lifecycle::Context& ctx) override {
    ctx.Report("relayed", batch.records().size());
    for (const examples::Word& w : batch.records()) {
      if (RelayOf(w) != ctx.instance()) ctx.Report("misrouted", 1);
    }
    ctx.output<examples::Word>(0).Send(std::move(batch));
  }
};

// Counts the words whose text is still in the memory of the process that made them (the
// source's, process 0: the address plan's slice 0).
class OriginSink final : public lifecycle::Unary<examples::Word> {
 public:
  void OnRecv(lifecycle::Envelope<examples::Word>& batch, lifecycle::Context& ctx) override {
    AddressPlan plan;
    ASSERT_TRUE(GetAddressPlan(&plan));
    for (const examples::Word& w : batch.records()) {
      ++words_;
      if ((RelayOf(w) + 1) % 3 != ctx.instance()) ctx.Report("misrouted", 1);
      if (plan.SliceOf(w.text.data()) == 0) ++from_origin_;
    }
  }
  void OnFinish(lifecycle::Context& ctx) override {
    ctx.Report("sunk", words_);
    ctx.Report("from_origin", from_origin_);
  }

 private:
  uint64_t words_ = 0;
  uint64_t from_origin_ = 0;
};

void RegisterOnwardJob() {
  lifecycle::RegisterJob("test_onward", [](const JobParams&) {
    lifecycle::Graph g;
    int src = g.AddStage<WordSource>("words", 1, 0, 1);
    int relay = g.AddStage<Relay>("relay", 3, 1, 1);
    int sink = g.AddStage<OriginSink>("sink", 3, 1, 0);
    g.Connect<examples::Word>(src, 0, relay, 0, lifecycle::Exchange<examples::Word>(&WordTextKey));
    g.Connect<examples::Word>(relay, 0, sink, 0, lifecycle::Exchange<examples::Word>(&NextSinkKey));
    return g;
  });
}

TEST(CafShimTest, ABatchSentOnWholeShipsOnToAThirdProcessAndHomeWithoutACopy) {
  RegisterOnwardJob();
  JobResult r = RunJob("test_onward", JobParams(), WordJobOptions(3));
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.totals["relayed"], 3200u);
  EXPECT_EQ(r.totals["sunk"], 3200u);
  EXPECT_EQ(r.totals["misrouted"], 0u);
  // Every word reached its sink in the region the source built it in: the relays in processes 1
  // and 2 shipped on what they received (to process 2, and home to process 0) instead of copying.
  EXPECT_EQ(r.totals["from_origin"], 3200u);
  ASSERT_EQ(r.workers.size(), 2u);
  for (const lifecycle::ProcessStats& w : r.workers) {
    EXPECT_GT(w.ship.regions_received, 0u) << r.Summary();
    EXPECT_GT(w.ship.regions_shipped, 0u) << r.Summary();
  }
  ExpectShippedByAddress(r, "test_onward");
}

TEST(CafShimTest, RecordsWithoutACodecCrossProcessesOnlyUnderTheRegionsPolicy) {
  examples::RegisterExampleJobs();
  JobOptions o = Options("heap");
  o.processes = 2;
  JobResult r = RunJob("join", Params(kSmall, 2), o);
  EXPECT_FALSE(r.ok);
  for (const char* part : {"Document", "cross processes by address, which needs the \"regions\"",
                           "this job runs under \"heap\"", "give the type a codec"}) {
    EXPECT_NE(r.error.find(part), std::string::npos) << part << " in: " << r.error;
  }
  // On one process the same job runs under that policy.
  o.processes = 1;
  EXPECT_TRUE(RunJob("join", Params(kSmall, 2), o).ok);
}

TEST(CafShimTest, AWorkerBinaryThatCannotServeGivesAClearError) {
  examples::RegisterExampleJobs();
  JobOptions o = Options();
  o.processes = 2;
  o.worker_exe = "/nonexistent/broom_worker";
  JobResult r = RunJob("select", Params(kSmall, 2), o);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("JobOptions::worker_exe '/nonexistent/broom_worker' is not an "
                         "executable"),
            std::string::npos)
      << r.error;
  o.worker_exe = "/bin/true";  // runs, but is no Broom worker
  auto t0 = std::chrono::steady_clock::now();
  r = RunJob("select", Params(kSmall, 2), o);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("exited with status 0 before reporting a port"), std::string::npos)
      << r.error;
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 5.0);
}

TEST(CafShimTest, AWorkerRunningAnotherBinaryIsRefusedAtConnect) {
  examples::RegisterExampleJobs();
  JobOptions o = Options();
  o.processes = 2;
  o.worker_exe = BROOM_JOB_EXE;  // serves jobs, but is another executable
  JobResult r = RunJob("join", Params(kSmall, 2), o);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("runs another binary"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("every process of a job must run the same executable"), std::string::npos)
      << r.error;
}

TEST(CafShimTest, AWorkerWhoseSliceOfTheAddressPlanIsTakenGivesAClearError) {
  examples::RegisterExampleJobs();
  JobOptions o = Options();
  o.processes = 2;
  setenv("BROOM_TEST_OCCUPY_SLICE", "1", 1);  // read by the worker's main (below)
  JobResult r = RunJob("join", Params(kSmall, 2), o);
  unsetenv("BROOM_TEST_OCCUPY_SLICE");
  EXPECT_FALSE(r.ok);
  for (const char* part : {"worker 1", "cannot take part in the job", "not at its address plan",
                           "File exists", "already mapped there"}) {
    EXPECT_NE(r.error.find(part), std::string::npos) << part << " in: " << r.error;
  }
}

TEST(CafShimTest, AJobWithMoreProcessesThanThePlanHasSlicesIsRefused) {
  examples::RegisterExampleJobs();
  AddressPlan plan;
  ASSERT_TRUE(GetAddressPlan(&plan));
  JobOptions o = Options();
  o.processes = static_cast<int>(plan.processes) + 1;
  JobResult r = RunJob("join", Params(kSmall, 2), o);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("slices (raise BROOM_PLAN_PROCESSES"), std::string::npos) << r.error;
  o.processes = 2;
  o.plan_base = plan.base + (uint64_t{1} << 40);  // not the plan the driver's space sits at
  o.plan_slice_bytes = plan.slice_bytes;
  o.plan_processes = plan.processes;
  r = RunJob("join", Params(kSmall, 2), o);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("already exists at another address plan"), std::string::npos) << r.error;
}

TEST(CafShimTest, KillingAWorkerProcessGivesAClearErrorWithinSeconds) {
  examples::RegisterExampleJobs();
  JobOptions o = Options();
  o.processes = 2;
  o.timeout_seconds = 60 * kSlowdown;
  o.kill_worker_after_seconds = 0.3;
  // Far more work than 0.3 s.
  JobParams params = Params("epochs=2000,docs=50000", 2);
  auto t0 = std::chrono::steady_clock::now();
  JobResult r = RunJob("join", params, o);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("stopped before finishing"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("process 1"), std::string::npos) << r.error;
  EXPECT_LT(s, 0.3 + 5.0) << r.error;
  // The driver's own instances were stopped and their regions freed.
  for (RegionKind k : {RegionKind::kTransferable, RegionKind::kActor}) {
    EXPECT_EQ(Created(r, k), Destroyed(r, k)) << KindName(k);
  }
  // What the dead worker held of the driver's memory came back (ForgetPeer): it had batches
  // on loan when it died.
  EXPECT_GT(r.ship_after.regions_shipped, r.ship_before.regions_shipped);
  EXPECT_GT(r.ship_after.reclaimed_blocks, r.ship_before.reclaimed_blocks);
  EXPECT_EQ(r.ship_after.loaned_bytes, 0u);
}

}  // namespace
}  // namespace broom::caf_shim

// Worker processes of the multi-process tests run this binary (JobOptions::worker_exe defaults
// to the running executable). BROOM_TEST_OCCUPY_SLICE: map a page inside this worker's slice
// of the address plan first, so that its region space cannot be placed there.
int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--broom-worker") != 0) continue;
    if (std::getenv("BROOM_TEST_OCCUPY_SLICE") != nullptr) {
      uintptr_t base = std::strtoull(std::getenv("BROOM_PLAN_BASE_GB"), nullptr, 10) << 30;
      uintptr_t slice = std::strtoull(std::getenv("BROOM_RESERVE_GB"), nullptr, 10) << 30;
      uintptr_t index = std::strtoull(std::getenv("BROOM_PLAN_INDEX"), nullptr, 10);
      mmap(reinterpret_cast<void*>(base + slice * index + (1 << 20)), 4096, PROT_READ,
           MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    }
    broom::examples::RegisterExampleJobs();
    broom::caf_shim::RegisterHoldingJob();
    broom::caf_shim::RegisterOnwardJob();
    return broom::caf_shim::WorkerMain(argc, argv);
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
