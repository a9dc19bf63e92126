// Copyright Broom authors.
#include "runtime_shims/preload/profiler.h"

#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime_shims/preload/call_stack.h"
#include "runtime_shims/preload/shim.h"
#include "runtime_shims/preload/symbolize.h"

extern "C" {
void* broom_malloc(size_t);
void broom_free(void*);
}

namespace broom::preload::profiler {
namespace {

// Fake call sites: distinct addresses in this binary. The prefixed build records the site
// alone (no unwinding), with no scope tracking.
char g_site_a, g_site_b, g_site_c, g_site_d, g_site_e;

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// What the report makes of one single-frame site whose only user frame is itself.
SiteSummary Summarize(const SiteCounts& c) {
  SiteSummary s;
  s.count = c.count;
  s.bytes = c.bytes;
  s.internal = c.replaced;
  s.freed = c.freed - c.replaced;
  s.at_exit = c.at_exit;
  s.cross_thread = c.cross_thread;
  s.long_lived = c.long_lived;
  for (int b = 0; b < kBuckets; ++b) s.lifetime_hist[b] = c.lifetime_hist[b];
  return s;
}

class ProfilerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = ::testing::TempDir() + "/broom_profile_" + std::to_string(getpid()) + ".json";
    Config c;
    std::strcpy(c.profile_path, path_.c_str());
    c.group_window_us = 2000;
    Configure(c);
  }
  void TearDown() override { Configure(Config{}); }
  std::string path_;
};

TEST_F(ProfilerTest, ObjectsFreedSoonByAnotherThreadAreTransferable) {
  // "Long-lived" is relative to the run so far: let the run age, so that a slow thread start on
  // a loaded machine cannot make these objects look long-lived.
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  std::vector<void*> ptrs;
  for (int i = 0; i < 100; ++i) {
    void* p = broom_malloc(32);
    OnAlloc(p, 32, &g_site_a);
    ptrs.push_back(p);
  }
  std::thread other([&] {
    for (void* p : ptrs) {
      OnFree(p);
      broom_free(p);
    }
  });
  other.join();
  SiteCounts c;
  ASSERT_TRUE(CountsFor(&g_site_a, &c));
  EXPECT_EQ(c.count, 100u);
  EXPECT_EQ(c.bytes, 3200u);
  EXPECT_EQ(c.freed, 100u);
  EXPECT_EQ(c.cross_thread, 100u);
  EXPECT_STREQ(Classify(Summarize(c)).lifetime, "transferable");
}

TEST_F(ProfilerTest, ShortLivedSameThreadObjectsAreTemporaryByLifetimeWhenScopeIsUntracked) {
  for (int i = 0; i < 1000; ++i) {
    void* p = broom_malloc(64);
    OnAlloc(p, 64, &g_site_b);
    OnFree(p);
    broom_free(p);
  }
  SiteCounts c;
  ASSERT_TRUE(CountsFor(&g_site_b, &c));
  EXPECT_EQ(c.freed, 1000u);
  EXPECT_EQ(c.cross_thread, 0u);
  EXPECT_EQ(c.replaced, 0u);                    // each object is freed before the next one exists
  EXPECT_EQ(c.scope[kScopeFrames + 1], 1000u);  // not tracked in the prefixed build
  EXPECT_GT(c.lifetime_hist[0] + c.lifetime_hist[1] + c.lifetime_hist[2], 900u);
  Verdict v = Classify(Summarize(c));
  EXPECT_STREQ(v.lifetime, "temporary");
  EXPECT_STREQ(v.region, "temporary");
}

// The complaint: state that dies all together (an operator's map at the end of the
// job) was called transferable. Objects that lived most of the run are state.
TEST_F(ProfilerTest, ObjectsLivingMostOfTheRunAndDyingTogetherAreStateNotTransferable) {
  std::vector<void*> batch;
  for (int i = 0; i < 50; ++i) {
    void* p = broom_malloc(16);
    OnAlloc(p, 16, &g_site_c);
    batch.push_back(p);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::thread other([&] {  // freed by another thread, as an engine's shutdown may
    for (void* p : batch) {
      OnFree(p);
      broom_free(p);
    }
  });
  other.join();
  SiteCounts c;
  ASSERT_TRUE(CountsFor(&g_site_c, &c));
  EXPECT_GE(c.grouped, 45u);  // all but the first of the batch died together
  EXPECT_EQ(c.long_lived, 50u);
  EXPECT_EQ(c.cross_thread, 50u);
  Verdict v = Classify(Summarize(c));
  EXPECT_STREQ(v.lifetime, "state");
  EXPECT_STREQ(v.region, "actor");
}

TEST_F(ProfilerTest, FreesAfterExitBeganCountAsLivingUntilExit) {
  std::vector<void*> ptrs;
  for (int i = 0; i < 30; ++i) {
    void* p = broom_malloc(8);
    OnAlloc(p, 8, &g_site_e);
    ptrs.push_back(p);
  }
  MarkExit();
  for (void* p : ptrs) {
    OnFree(p);
    broom_free(p);
  }
  SiteCounts c;
  ASSERT_TRUE(CountsFor(&g_site_e, &c));
  EXPECT_EQ(c.at_exit, 30u);
  EXPECT_EQ(c.freed, 0u);
  EXPECT_STREQ(Classify(Summarize(c)).lifetime, "state");
}

TEST_F(ProfilerTest, ReportWritesJsonAndSummary) {
  for (int i = 0; i < 40; ++i) {
    void* p = broom_malloc(100);
    OnAlloc(p, 100, &g_site_d);  // never freed: live at exit
  }
  Config c = g_config;
  ASSERT_TRUE(Report(c));
  std::string json = Slurp(path_);
  EXPECT_NE(json.find("\"tool\": \"broom-preload-profile\""), std::string::npos);
  EXPECT_NE(json.find("\"live_at_exit\": 40"), std::string::npos) << json;
  EXPECT_NE(json.find("\"lifetime_class\": \"state\""), std::string::npos);
  EXPECT_NE(json.find("\"region\": \"actor\""), std::string::npos);
  EXPECT_EQ(json.back(), '\n');
  std::string text = Slurp(path_ + ".txt");
  EXPECT_NE(text.find("What to do"), std::string::npos) << text;
  EXPECT_NE(text.find("actor region"), std::string::npos) << text;
}

// ---- Classify on summaries with tracked scopes ------------------------------------------------

SiteSummary Tracked(uint64_t n, uint64_t in_scope0, uint64_t in_scope1) {
  SiteSummary s;
  s.count = s.freed = s.scope_known = n;
  s.in_scope0 = in_scope0;
  s.in_scope1 = in_scope1;
  s.lifetime_hist[0] = n;
  return s;
}

TEST(ClassifyTest, FewAllocationsStayOnTheHeap) {
  SiteSummary s;
  s.count = 3;
  Verdict v = Classify(s);
  EXPECT_STREQ(v.region, "heap");
  EXPECT_NE(std::string(v.reason).find("too few"), std::string::npos);
}

TEST(ClassifyTest, DyingInTheAllocatingCallIsTemporaryOfThatCall) {
  Verdict v = Classify(Tracked(100, 90, 100));
  EXPECT_STREQ(v.lifetime, "temporary");
  EXPECT_EQ(v.scope_frame, 0);
  EXPECT_GT(v.saving_ns, 0);
}

TEST(ClassifyTest, DyingInTheCallerIsTemporaryOfTheCaller) {
  Verdict v = Classify(Tracked(100, 0, 80));
  EXPECT_STREQ(v.lifetime, "temporary");
  EXPECT_EQ(v.scope_frame, 1);
}

TEST(ClassifyTest, OutlivingItsCallOnTheSameThreadIsChurningState) {
  Verdict v = Classify(Tracked(100, 0, 10));
  EXPECT_STREQ(v.lifetime, "state");
  EXPECT_STREQ(v.region, "actor");
}

TEST(ClassifyTest, ReplacedObjectsDoNotDecide) {
  // A vector grown 6 times per batch and handed to another thread: 6 replacements, 1 transfer.
  SiteSummary s;
  s.count = 700;
  s.internal = 600;
  s.freed = 100;
  s.cross_thread = 100;
  EXPECT_STREQ(Classify(s).lifetime, "transferable");
}

TEST(ClassifyTest, LiveAtExitIsStateWhateverElse) {
  SiteSummary s;
  s.count = 100;
  s.freed = 20;
  s.cross_thread = 20;
  EXPECT_STREQ(Classify(s).lifetime, "state");
  EXPECT_EQ(s.live(), 80u);
}

// An operator's map nodes: freed by another thread (the job's owner) when the job ends, after
// living most of the run. State, never transferable.
TEST(ClassifyTest, LongLivedFreedByAnotherThreadIsStateNotTransferable) {
  SiteSummary s;
  s.count = 100;
  s.freed = 100;
  s.cross_thread = 99;
  s.long_lived = 99;
  Verdict v = Classify(s);
  EXPECT_STREQ(v.lifetime, "state");
  EXPECT_STREQ(v.region, "actor");
  s.long_lived = 0;  // the same frees soon after allocation: handed over, a message
  EXPECT_STREQ(Classify(s).lifetime, "transferable");
}

// ---- scope marks on a fake stack ------------------------------------------------------------

class ScopeMarksTest : public ::testing::Test {
 protected:
  // A stack of three frames: slot[r] (ascending) holds frame r's return address frames[r + 1].
  void SetUp() override {
    for (int r = 0; r < 3; ++r) {
      slots_[r] = reinterpret_cast<uintptr_t>(&stack_[4 + 4 * r]);
      stack_[4 + 4 * r] = frames_[r + 1];
    }
  }
  uintptr_t sp() const { return reinterpret_cast<uintptr_t>(&stack_[0]); }
  uintptr_t stack_[16] = {};
  uintptr_t frames_[4] = {0x1000, 0x2000, 0x3000, 0x4000};
  uintptr_t slots_[3];
  ScopeMarks marks_;
};

TEST_F(ScopeMarksTest, AllFramesLiveWhileNothingReturned) {
  uint32_t ids[kScopeFrames] = {};
  marks_.Enter(slots_, frames_ + 1, 3, sp(), ids);
  EXPECT_EQ(marks_.size(), 3);
  EXPECT_EQ(marks_.InnermostLive(ids, 3, frames_, 4, sp()), 0);
}

TEST_F(ScopeMarksTest, ACallFromTheSameCallerEndsTheCallee) {
  uint32_t ids[kScopeFrames] = {};
  marks_.Enter(slots_, frames_ + 1, 3, sp(), ids);
  stack_[4] = 0x2222;  // frame 1 has called something else since: frame 0 returned
  EXPECT_EQ(marks_.InnermostLive(ids, 3, frames_, 4, sp()), 1);
}

TEST_F(ScopeMarksTest, TheStackPointerAboveASlotEndsThatFrame) {
  uint32_t ids[kScopeFrames] = {};
  marks_.Enter(slots_, frames_ + 1, 3, sp(), ids);
  EXPECT_EQ(marks_.InnermostLive(ids, 3, frames_, 4, slots_[1]), 2);
  EXPECT_EQ(marks_.InnermostLive(ids, 3, frames_, 4, slots_[2]), 3);  // none live
}

TEST_F(ScopeMarksTest, AnObjectFreedInALaterCallOfItsFunctionOutlivedItsCall) {
  uint32_t first[kScopeFrames] = {};
  marks_.Enter(slots_, frames_ + 1, 3, sp(), first);
  stack_[4] = 0x2222;  // the caller (frame 1) did something else: frame 0's call ended
  marks_.Observe(sp());
  stack_[4] = frames_[1];  // ... and called the same function again from the same place
  uint32_t second[kScopeFrames] = {};
  marks_.Enter(slots_, frames_ + 1, 3, sp(), second);
  EXPECT_NE(second[0], first[0]);
  EXPECT_EQ(second[1], first[1]);
  // The first call's object, freed now: frame 1 still runs, but inside a newer call.
  EXPECT_EQ(marks_.InnermostLive(first, 3, frames_, 4, sp()), 3);
  EXPECT_EQ(marks_.InnermostLive(second, 3, frames_, 4, sp()), 0);
}

// ---- which frames a site skips -----------------------------------------------------------------

TEST(SymbolizeTest, LibraryFramesAreRecognized) {
  EXPECT_TRUE(
      IsLibraryFunction("void std::vector<int, std::allocator<int> >::_M_realloc_insert"
                        "<int const&>(__gnu_cxx::__normal_iterator<int*, "
                        "std::vector<int, std::allocator<int> > >, int const&)"));
  EXPECT_TRUE(IsLibraryFunction("std::__new_allocator<int>::allocate(unsigned long, void const*)"));
  EXPECT_TRUE(IsLibraryFunction("xmalloc"));
  EXPECT_TRUE(IsLibraryFunction("PyObject_Malloc"));
  EXPECT_FALSE(IsLibraryFunction("CountOperator::OnBatch(Batch const&)"));
  EXPECT_FALSE(IsLibraryFunction("std_like_but_mine()"));
  EXPECT_FALSE(IsLibraryFunction("Table<std::string>::Insert(int)"));
  EXPECT_TRUE(IsLibraryFile("/usr/include/c++/12/bits/stl_vector.h"));
  EXPECT_FALSE(IsLibraryFile("/home/me/engine/op.cc"));
  EXPECT_TRUE(IsLibraryModule("libjemalloc.so.2"));
  EXPECT_TRUE(IsLibraryModule("libstdc++.so.6"));
  EXPECT_FALSE(IsLibraryModule("libmyengine.so"));
}

}  // namespace
}  // namespace broom::preload::profiler
