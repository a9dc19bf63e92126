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
#include "runtime_shims/preload/shim.h"

extern "C" {
void* broom_malloc(size_t);
void broom_free(void*);
}

namespace broom::preload::profiler {
namespace {

// Fake call sites: distinct addresses in this binary.
char g_site_a, g_site_b, g_site_c, g_site_d;

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
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

TEST_F(ProfilerTest, CountsCrossThreadFrees) {
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
  EXPECT_STREQ(Suggest(c, nullptr), "transferable");
}

TEST_F(ProfilerTest, ShortLivedSameThreadObjectsAreTemporaryCandidates) {
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
  EXPECT_EQ(c.grouped, 0u);  // they never lived longer than the window
  EXPECT_GT(c.lifetime_hist[0] + c.lifetime_hist[1] + c.lifetime_hist[2], 900u);
  EXPECT_STREQ(Suggest(c, nullptr), "temporary");
}

TEST_F(ProfilerTest, ObjectsDyingTogetherAreGroupDeaths) {
  std::vector<void*> batch;
  for (int i = 0; i < 50; ++i) {
    void* p = broom_malloc(16);
    OnAlloc(p, 16, &g_site_c);
    batch.push_back(p);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // live longer than the window
  for (void* p : batch) {
    OnFree(p);
    broom_free(p);
  }
  SiteCounts c;
  ASSERT_TRUE(CountsFor(&g_site_c, &c));
  EXPECT_GE(c.grouped, 45u);  // all but the first of the batch
  EXPECT_STREQ(Suggest(c, nullptr), "transferable");
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
  EXPECT_NE(json.find("\"live_at_exit\": 40"), std::string::npos);
  EXPECT_NE(json.find("\"suggestion\": \"actor\""), std::string::npos);
  EXPECT_EQ(json.back(), '\n');
  std::string text = Slurp(path_ + ".txt");
  EXPECT_NE(text.find("Candidates, by region kind"), std::string::npos);
  EXPECT_NE(text.find("actor"), std::string::npos);
}

TEST(SuggestTest, FewAllocationsStayOnTheHeap) {
  SiteCounts c = {};
  c.count = 3;
  const char* why = nullptr;
  EXPECT_STREQ(Suggest(c, &why), "heap");
  EXPECT_NE(why, nullptr);
}

TEST(SuggestTest, LongLivedIndividuallyFreedIsActor) {
  SiteCounts c = {};
  c.count = 100;
  c.freed = 100;
  c.lifetime_hist[6] = 100;  // < 1 s
  EXPECT_STREQ(Suggest(c, nullptr), "actor");
}

}  // namespace
}  // namespace broom::preload::profiler
