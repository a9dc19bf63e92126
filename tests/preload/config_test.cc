// Copyright Broom authors.
#include "runtime_shims/preload/config.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace broom::preload {
namespace {

struct Warnings {
  std::vector<std::string> lines;
  static void Sink(void* ctx, const char* m) { static_cast<Warnings*>(ctx)->lines.push_back(m); }
};

TEST(ParseConfTest, ParsesEveryKnownKey) {
  Config c;
  Warnings w;
  EXPECT_TRUE(c.bind);  // on by default
  EXPECT_EQ(ParseConf("stats:1,checks:1,bind:0,profile:out.json,group_window_us:250,profile_top:7",
                      &c, &Warnings::Sink, &w),
            0);
  EXPECT_TRUE(c.stats);
  EXPECT_TRUE(c.checks);
  EXPECT_FALSE(c.bind);
  EXPECT_STREQ(c.profile_path, "out.json");
  EXPECT_EQ(c.group_window_us, 250u);
  EXPECT_EQ(c.profile_top, 7u);
  EXPECT_TRUE(w.lines.empty());
}

TEST(ParseConfTest, NullAndEmptyLeaveDefaults) {
  Config c;
  EXPECT_EQ(ParseConf(nullptr, &c, nullptr, nullptr), 0);
  EXPECT_EQ(ParseConf("", &c, nullptr, nullptr), 0);
  EXPECT_EQ(ParseConf(",,, ,", &c, nullptr, nullptr), 0);
  EXPECT_FALSE(c.stats);
  EXPECT_EQ(c.profile_path[0], '\0');
}

TEST(ParseConfTest, AcceptsEqualsSpacesAndWords) {
  Config c;
  EXPECT_EQ(ParseConf(" stats=true , checks:on ", &c, nullptr, nullptr), 0);
  EXPECT_TRUE(c.stats);
  EXPECT_TRUE(c.checks);
  EXPECT_EQ(ParseConf("stats:0,checks:no", &c, nullptr, nullptr), 0);
  EXPECT_FALSE(c.stats);
  EXPECT_FALSE(c.checks);
}

TEST(ParseConfTest, UnknownKeyGivesOneWarningAndKeepsTheRest) {
  Config c;
  Warnings w;
  EXPECT_EQ(ParseConf("bogus:3,stats:1", &c, &Warnings::Sink, &w), 1);
  ASSERT_EQ(w.lines.size(), 1u);
  EXPECT_NE(w.lines[0].find("unknown key"), std::string::npos);
  EXPECT_NE(w.lines[0].find("'bogus'"), std::string::npos);
  EXPECT_TRUE(c.stats);
}

TEST(ParseConfTest, MalformedEntriesWarnAndNeverCrash) {
  Config c;
  Warnings w;
  EXPECT_EQ(ParseConf("stats,checks:maybe,group_window_us:-1,profile:,profile_top:99999999999", &c,
                      &Warnings::Sink, &w),
            5);
  EXPECT_FALSE(c.stats);
  EXPECT_FALSE(c.checks);
  EXPECT_EQ(c.group_window_us, 1000u);
  std::string huge(5000, 'x');
  EXPECT_EQ(ParseConf(("profile:" + huge).c_str(), &c, &Warnings::Sink, &w), 1);
  EXPECT_EQ(ParseConf(":::,=,:1", &c, &Warnings::Sink, &w), 3);
}

}  // namespace
}  // namespace broom::preload
