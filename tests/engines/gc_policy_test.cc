// Copyright Broom authors.
//
// The Boehm GC memory policy ("gc"): the same operator code on a collected heap gives the
// reference results on both engines, the collector really runs, and what the shim holds (batch
// and state roots kept in uncollected memory) survives collections.
#include "broom/lifecycle/gc_policy.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "broom/caf/runtime.h"
#include "broom/lifecycle/direct_driver.h"
#include "broom/lifecycle/envelope.h"
#include "runtime_shims/examples/jobs.h"
#include "runtime_shims/examples/records.h"

namespace broom::lifecycle {
namespace {

class GcPolicyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    RegisterGcPolicy();
    examples::RegisterExampleJobs();
  }
};

JobParams Small(int workers) {
  JobParams p = JobParams::Parse("epochs=4,docs=20000,lines=4000,vocabulary=300");
  p.Set("workers", static_cast<uint64_t>(workers));
  return p;
}

TEST_F(GcPolicyTest, EveryJobOnTheDirectDriverEqualsItsReferenceAndCollects) {
  for (const char* job : {"select", "aggregate", "join", "wjoin", "wordcount"}) {
    uint64_t before = GcCollections();
    JobParams params = Small(3);
    auto graph = BuildJob(job, params);
    ASSERT_TRUE(graph.has_value());
    JobOptions opt;
    opt.policy = "gc";
    opt.batch_size = 64;
    JobResult r = RunDirect(*graph, opt);
    ASSERT_TRUE(r.ok) << job << ": " << r.error;
    EXPECT_EQ(r.totals, examples::ReferenceTotals(job, params)) << job << "\n" << r.Summary();
    EXPECT_GT(GcCollections(), before) << job << ": the collector never ran";
  }
}

TEST_F(GcPolicyTest, JobsOnCafWorkerThreadsEqualTheirReference) {
  for (const char* job : {"join", "wordcount"}) {
    JobParams params = Small(2);
    JobOptions opt;
    opt.policy = "gc";
    opt.threads = 2;
    opt.batch_size = 64;
    opt.credits = 4;
    opt.timeout_seconds = 60;
    JobResult r = caf_shim::RunJob(job, params, opt);
    ASSERT_TRUE(r.ok) << job << ": " << r.error;
    EXPECT_EQ(r.totals, examples::ReferenceTotals(job, params)) << job << "\n" << r.Summary();
  }
}

TEST_F(GcPolicyTest, BatchesHeldOnlyThroughTheShimSurviveCollections) {
  std::unique_ptr<MemoryPolicy> policy = MakePolicy("gc");
  ASSERT_NE(policy, nullptr);
  examples::DataSpec spec;
  // The envelopes live in the general heap, which the collector does not scan: only the
  // policy's anchors keep their batches alive.
  auto held = std::make_unique<std::vector<Envelope<examples::Document>>>();
  for (uint64_t b = 0; b < 64; ++b) {
    held->push_back(Envelope<examples::Document>::Create(*policy, b, 256));
    auto& recs = held->back().records();
    for (uint64_t i = 0; i < 256; ++i) {
      recs.emplace_back(b * 256 + i, b, 7, static_cast<uint32_t>(b));
      recs.back().title.assign(examples::TitleOf(spec, b * 256 + i));
    }
  }
  for (int round = 0; round < 3; ++round) {
    GcCollectNow();
    // Garbage that would reuse wrongly collected memory.
    Arena garbage = policy->CreateArena(ArenaUse::kMessage, "garbage");
    std::pmr::memory_resource* heap = garbage.resource();
    for (int i = 0; i < 20000; ++i) std::memset(heap->allocate(64), 0xAB, 64);
  }
  for (uint64_t b = 0; b < held->size(); ++b) {
    const auto& recs = (*held)[b].records();
    ASSERT_EQ(recs.size(), 256u);
    for (uint64_t i = 0; i < 256; ++i) {
      ASSERT_EQ(recs[i].id, b * 256 + i);
      ASSERT_EQ(recs[i].title, examples::TitleOf(spec, b * 256 + i)) << "batch " << b;
    }
  }
}

}  // namespace
}  // namespace broom::lifecycle
