// Copyright Broom authors.
//
// Real programs under LD_PRELOAD=libbroom_preload.so: each must print exactly what it prints
// without the preload. Paths come from CMake (BROOM_PRELOAD_LIB, BROOM_TEST_*); system programs
// are skipped only when truly absent.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace {

struct Result {
  int status = -1;
  std::string out;
  std::string err;
};

std::string TempDir() {
  static std::string dir = [] {
    std::string d = ::testing::TempDir() + "/broom_preload_" + std::to_string(getpid());
    mkdir(d.c_str(), 0755);
    return d;
  }();
  return dir;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs `cmd` with /bin/sh. `env` is a list of NAME=value words exported first (so every
// process of a pipeline or script sees them).
Result RunShell(const std::string& cmd, const std::string& env = "") {
  static int counter = 0;
  std::string err_path = TempDir() + "/stderr_" + std::to_string(counter++);
  std::string full = env.empty() ? cmd : "export " + env + "; " + cmd;
  full = "{ " + full + "; } 2>" + err_path;
  Result r;
  FILE* f = popen(full.c_str(), "r");
  if (f == nullptr) return r;
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), f)) > 0) r.out.append(buf, n);
  int status = pclose(f);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.err = Slurp(err_path);
  return r;
}

std::string Preload(const std::string& conf = "") {
  std::string env = std::string("LD_PRELOAD=") + BROOM_PRELOAD_LIB;
  if (!conf.empty()) env += " BROOM_CONF=" + conf;
  return env;
}

bool Exists(const char* path) { return access(path, X_OK) == 0; }

// Runs `cmd` without and with the preload and expects identical stdout and success.
void ExpectSameOutput(const std::string& cmd, const std::string& conf = "") {
  Result plain = RunShell(cmd);
  ASSERT_EQ(plain.status, 0) << cmd << "\n" << plain.err;
  Result pre = RunShell(cmd, Preload(conf));
  EXPECT_EQ(pre.status, 0) << cmd << "\n" << pre.err;
  EXPECT_EQ(pre.out.size(), plain.out.size()) << cmd;
  EXPECT_TRUE(pre.out == plain.out) << cmd;
  EXPECT_EQ(pre.err.find("broom: warning"), std::string::npos) << pre.err;
}

TEST(PreloadProgramsTest, PythonAllocationHeavyScript) {
  if (!Exists("/usr/bin/python3")) GTEST_SKIP() << "/usr/bin/python3 absent";
  ExpectSameOutput(std::string("/usr/bin/python3 ") + BROOM_TEST_SCRIPTS + "/alloc_heavy.py");
}

TEST(PreloadProgramsTest, PythonUnderStatsChecksAndProfiler) {
  if (!Exists("/usr/bin/python3")) GTEST_SKIP() << "/usr/bin/python3 absent";
  std::string cmd = std::string("/usr/bin/python3 ") + BROOM_TEST_SCRIPTS + "/alloc_heavy.py";
  std::string profile = TempDir() + "/py_%p.json";
  Result plain = RunShell(cmd);
  Result pre = RunShell(cmd, Preload("stats:1,checks:1,profile:" + profile));
  ASSERT_EQ(pre.status, 0) << pre.err;
  EXPECT_EQ(pre.out, plain.out);
  EXPECT_NE(pre.err.find("broom: stats"), std::string::npos) << pre.err;
  // The profile is valid JSON with ranked sites and a readable summary next to it.
  Result check =
      RunShell("for f in " + TempDir() +
               "/py_*.json; do /usr/bin/python3 -c "
               "'import json,sys; d=json.load(open(sys.argv[1])); "
               "assert d[\"sites\"] and d[\"sites\"][0][\"rank\"]==1; print(\"ok\")' \"$f\"; "
               "test -s \"$f.txt\"; done");
  EXPECT_EQ(check.status, 0) << check.err;
  EXPECT_NE(check.out.find("ok"), std::string::npos);
}

// ---- the lifetime profiler on programs whose answers are known --------------------------------

// One site of the profiler's JSON report (the fields the tests read).
struct ProfiledSite {
  std::string file, function, lifetime, region;
  int line = 0;
};

// The string value of "key" in `obj` (a JSON object written by profile_report.cc, whose strings
// need no unescaping for the keys read here), or "".
std::string JsonString(const std::string& obj, const std::string& key) {
  size_t at = obj.find("\"" + key + "\": \"");
  if (at == std::string::npos) return "";
  at += key.size() + 5;
  std::string out;
  for (; at < obj.size() && obj[at] != '"'; ++at) {
    if (obj[at] == '\\' && at + 1 < obj.size()) ++at;
    out += obj[at];
  }
  return out;
}

std::vector<ProfiledSite> ParseProfile(const std::string& json) {
  std::vector<ProfiledSite> sites;
  size_t at = 0;
  while ((at = json.find("{\"rank\": ", at)) != std::string::npos) {
    size_t end = json.find("\"action\": ", at);
    std::string obj = json.substr(at, end == std::string::npos ? std::string::npos : end - at);
    ProfiledSite s;
    s.file = JsonString(obj, "file");
    s.function = JsonString(obj, "function");
    s.lifetime = JsonString(obj, "lifetime_class");
    s.region = JsonString(obj, "region");
    size_t line = obj.find("\"line\": ");
    if (line != std::string::npos) s.line = std::atoi(obj.c_str() + line + 8);
    sites.push_back(s);
    at += 8;
  }
  return sites;
}

// The tagged sites of programs/lifetimes.cc: "// SITE: <name> <class>" on the allocating line.
struct Tag {
  int line;
  std::string name, lifetime;
};
std::vector<Tag> ReadTags(const std::string& path) {
  std::vector<Tag> tags;
  std::ifstream in(path);
  std::string text;
  for (int line = 1; std::getline(in, text); ++line) {
    size_t at = text.find("// SITE: ");
    if (at == std::string::npos || text.find("`SITE") != std::string::npos) continue;
    std::istringstream words(text.substr(at + 9));
    Tag t{line, "", ""};
    words >> t.name >> t.lifetime;
    tags.push_back(t);
  }
  return tags;
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The program's sites resolve to the user's lines (never to _M_realloc_insert or operator new),
// the producer's record vectors and the consumer's scratch (both std::vector<int>) are separate
// sites, and each is classified as its true lifetime: scratch and a helper's result dying in
// the callback are temporary, records and batches freed by the consumer thread transferable,
// the operator's unordered_map nodes (freed on the main thread when the job ends), a sliding
// window freed one by one, a registry destroyed at exit and a leak are state, never
// transferable.
TEST(PreloadProfilerTest, GroundTruthProgramSitesAreClassifiedRight) {
  std::string profile = TempDir() + "/lifetimes.json";
  Result plain = RunShell(BROOM_TEST_LIFETIMES);
  ASSERT_EQ(plain.status, 0) << plain.err;
  Result pre = RunShell(BROOM_TEST_LIFETIMES, Preload("profile:" + profile));
  ASSERT_EQ(pre.status, 0) << pre.err;
  EXPECT_EQ(pre.out, plain.out);
  std::string json = Slurp(profile);
  std::vector<ProfiledSite> sites = ParseProfile(json);
  ASSERT_FALSE(sites.empty()) << json;
  EXPECT_NE(json.find("\"symbolizer\": \"libdw\""), std::string::npos) << json.substr(0, 400);
  std::vector<Tag> tags = ReadTags(std::string(BROOM_TEST_SCRIPTS) + "/lifetimes.cc");
  ASSERT_EQ(tags.size(), 10u);
  const std::map<std::string, std::string> region = {
      {"temporary", "temporary"}, {"transferable", "transferable"}, {"state", "actor"}};
  for (const Tag& tag : tags) {
    const ProfiledSite* found = nullptr;
    for (const ProfiledSite& s : sites) {
      if (EndsWith(s.file, "/lifetimes.cc") && s.line == tag.line) found = &s;
    }
    ASSERT_NE(found, nullptr) << "no site at lifetimes.cc:" << tag.line << " (" << tag.name << ")\n"
                              << Slurp(profile + ".txt");
    EXPECT_EQ(found->lifetime, tag.lifetime) << tag.name << " at lifetimes.cc:" << tag.line << "\n"
                                             << Slurp(profile + ".txt");
    EXPECT_EQ(found->region, region.at(tag.lifetime)) << tag.name;
  }
  for (const ProfiledSite& s : sites) {
    EXPECT_EQ(s.function.find("_M_realloc_insert"), std::string::npos) << s.function;
    EXPECT_EQ(s.function.find("operator new"), std::string::npos) << s.function;
  }
  std::string text = Slurp(profile + ".txt");
  EXPECT_NE(text.find("open a temporary region around the body of"), std::string::npos) << text;
  EXPECT_NE(text.find("lifetimes.cc:"), std::string::npos) << text;
}

// On a Python one-liner the report says why its sites are not the script's lines.
TEST(PreloadProfilerTest, PythonOneLinerReportSaysItIsAnInterpreter) {
  if (!Exists("/usr/bin/python3")) GTEST_SKIP() << "/usr/bin/python3 absent";
  std::string profile = TempDir() + "/py_one_liner.json";
  Result pre = RunShell("/usr/bin/python3 -c 'print(sum(len(str(i)) for i in range(20000)))'",
                        Preload("profile:" + profile));
  ASSERT_EQ(pre.status, 0) << pre.err;
  std::string text = Slurp(profile + ".txt");
  EXPECT_NE(text.find("is an interpreter"), std::string::npos) << text;
  EXPECT_FALSE(ParseProfile(Slurp(profile)).empty());
}

// On sort, which allocates little, the report says the heap is not where its time goes.
TEST(PreloadProfilerTest, SortReportSaysTheHeapIsNotItsCost) {
  if (!Exists("/usr/bin/sort")) GTEST_SKIP() << "/usr/bin/sort absent";
  std::string input = TempDir() + "/profile_sort_input.txt";
  {
    std::ofstream out(input);
    std::mt19937 rng(11);
    for (int i = 0; i < 100000; ++i) out << rng() << ' ' << rng() % 977 << '\n';
  }
  std::string profile = TempDir() + "/sort.json";
  Result pre = RunShell("/usr/bin/sort " + input + " >/dev/null", Preload("profile:" + profile));
  ASSERT_EQ(pre.status, 0) << pre.err;
  std::string text = Slurp(profile + ".txt");
  EXPECT_NE(text.find("the heap costs about"), std::string::npos) << text;
  EXPECT_NE(text.find("cannot make it noticeably faster"), std::string::npos) << text;
}

// A program that only allocates: under the profiler it runs many times slower, but its heap is
// still most of its own work, so the report must not call the heap negligible (the profiler's
// own time is taken out of the run's CPU time before the heap's share is judged).
TEST(PreloadProfilerTest, AllocationBoundProgramIsNotCalledHeapNegligible) {
  std::string profile = TempDir() + "/alloc_loop.json";
  Result pre = RunShell(BROOM_TEST_ALLOC_LOOP, Preload("profile:" + profile));
  ASSERT_EQ(pre.status, 0) << pre.err;
  std::string text = Slurp(profile + ".txt");
  size_t line = text.find('\n');
  ASSERT_NE(line, std::string::npos) << text;
  EXPECT_GE(std::atol(text.c_str() + line + 1), 200000) << text;  // "N heap allocations, ..."
  EXPECT_EQ(text.find("the heap costs about"), std::string::npos) << text;
}

// A program that links libjemalloc.so.2 itself and frees mallocx() memory with free(): jemalloc's
// API and Broom's malloc family reach one heap (Broom exports jemalloc's API when jemalloc is
// linked into it).
TEST(PreloadProgramsTest, ProgramLinkedWithJemallocMixesItsApiWithFree) {
  Result plain = RunShell(BROOM_TEST_USES_JEMALLOC);
  ASSERT_EQ(plain.status, 0) << plain.out << plain.err;
  for (const char* conf : {"", "bind:0", "stats:1"}) {
    Result pre = RunShell(BROOM_TEST_USES_JEMALLOC, Preload(conf));
    EXPECT_EQ(pre.status, 0) << conf << "\n" << pre.out << pre.err;
    EXPECT_EQ(pre.out, "ok\n") << conf;
  }
}

TEST(PreloadProgramsTest, Perl) {
  if (!Exists("/usr/bin/perl")) GTEST_SKIP() << "/usr/bin/perl absent";
  ExpectSameOutput(std::string("/usr/bin/perl ") + BROOM_TEST_SCRIPTS + "/alloc_heavy.pl");
}

TEST(PreloadProgramsTest, SortOfALargeGeneratedFile) {
  if (!Exists("/usr/bin/sort")) GTEST_SKIP() << "/usr/bin/sort absent";
  std::string path = TempDir() + "/sort_input.txt";
  {
    std::ofstream out(path);
    std::mt19937 rng(7);
    for (int i = 0; i < 400000; ++i) {
      int len = 4 + static_cast<int>(rng() % 20);
      for (int j = 0; j < len; ++j) out << static_cast<char>('a' + rng() % 26);
      out << ' ' << rng() % 100000 << '\n';
    }
  }
  // -S forces an external merge through temporary files; --parallel uses threads.
  ExpectSameOutput("LC_ALL=C /usr/bin/sort --parallel=2 -S 8M -k2,2n -k1,1 " + path);
  ExpectSameOutput("LC_ALL=en_US.UTF-8 /usr/bin/sort -u " + path + " | /usr/bin/head -c 2000000");
}

TEST(PreloadProgramsTest, GitOnAGeneratedRepository) {
  if (!Exists("/usr/bin/git")) GTEST_SKIP() << "/usr/bin/git absent";
  std::string script = TempDir() + "/git_script.sh";
  {
    std::ofstream s(script);
    s << "set -e\n"
         "d=$1; rm -rf \"$d\"; mkdir -p \"$d\"; cd \"$d\"\n"
         "export HOME=\"$d\" GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null\n"
         "export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.com GIT_COMMITTER_NAME=t\n"
         "export GIT_COMMITTER_EMAIL=t@example.com GIT_AUTHOR_DATE=2020-01-01T00:00:00Z\n"
         "export GIT_COMMITTER_DATE=2020-01-01T00:00:00Z\n"
         "git init -q -b main repo; cd repo\n"
         "mkdir dir0 dir1 dir2 dir3 dir4 dir5 dir6\n"
         "for c in 1 2 3 4 5; do\n"
         "  awk -v c=$c 'BEGIN { for (f = 1; f <= 80; f++) { d = \"dir\" (f % 7);"
         " out = d \"/file\" f \".txt\";"
         " for (i = c; i <= f * 40 + c; i++) print \"line \" f \" \" c \" \" i > out;"
         " close(out) } }'\n"
         "  git add -A; git commit -q -m \"commit $c\"\n"
         "done\n"
         "git log --stat --format='%H %s' | head -400\n"
         "git diff HEAD~4 --stat | tail -3\n"
         "git grep -c 'line 17 3' HEAD~3 | head -5\n"
         "git gc -q; git fsck --no-progress --no-dangling\n"
         "git rev-list --all --objects | wc -l\n"
         "git blame -s dir3/file10.txt | head -20\n";
  }
  Result plain = RunShell("/bin/sh " + script + " " + TempDir() + "/git_plain");
  ASSERT_EQ(plain.status, 0) << plain.err;
  Result pre = RunShell("/bin/sh " + script + " " + TempDir() + "/git_preload", Preload());
  EXPECT_EQ(pre.status, 0) << pre.err;
  EXPECT_EQ(pre.out, plain.out);
  EXPECT_GT(plain.out.size(), 1000u);
}

TEST(PreloadProgramsTest, CrossThreadFreesOfOurOwnProgram) {
  Result plain = RunShell(BROOM_TEST_XTHREAD);
  ASSERT_EQ(plain.status, 0) << plain.err;
  Result heap = RunShell(BROOM_TEST_XTHREAD, Preload());
  Result region = RunShell(std::string(BROOM_TEST_XTHREAD) + " region", Preload("checks:1"));
  Result region_plain = RunShell(std::string(BROOM_TEST_XTHREAD) + " region");
  EXPECT_EQ(heap.status, 0) << heap.err;
  EXPECT_EQ(region.status, 0) << region.err;
  EXPECT_EQ(heap.out, plain.out);
  EXPECT_EQ(region.out, plain.out);
  EXPECT_EQ(region_plain.out, plain.out);
}

TEST(PreloadProgramsTest, ForkFromSeveralThreads) {
  Result plain = RunShell(std::string("timeout 120 ") + BROOM_TEST_FORKER);
  ASSERT_EQ(plain.status, 0) << plain.err;
  Result pre = RunShell(std::string("timeout 120 ") + BROOM_TEST_FORKER, Preload());
  EXPECT_EQ(pre.status, 0) << pre.out << pre.err;  // 124 would be a hang
  EXPECT_EQ(pre.out, plain.out);
}

// Alignment at every size and errno on every failure (programs/conformance.cc), plain (glibc) and
// under the preload: pass-through (direct binding), bind:0, stats (the slow paths), and with a
// region of each kind pushed.
TEST(PreloadProgramsTest, AlignmentAndErrnoConformance) {
  Result plain = RunShell(BROOM_TEST_CONFORMANCE);
  EXPECT_EQ(plain.status, 0) << plain.out;
  for (const char* conf : {"", "bind:0", "stats:1"}) {
    Result pre = RunShell(BROOM_TEST_CONFORMANCE, Preload(conf));
    EXPECT_EQ(pre.status, 0) << conf << "\n" << pre.out << pre.err;
    EXPECT_EQ(pre.out, "conformance: 0 failures\n") << conf;
  }
  Result regions = RunShell(std::string(BROOM_TEST_CONFORMANCE) + " regions", Preload());
  EXPECT_EQ(regions.status, 0) << regions.out << regions.err;
  EXPECT_EQ(regions.out, "conformance: 0 failures\n");
}

// ---- fork (runtime_shims/preload/fork.h) ---------------------------------------------------
// Each program runs plain (glibc) and under the preload, under `timeout` (status 124: a hang).
// BROOM_TEST_SCALE multiplies the iterations (the `stress` label runs them 10 times longer).

std::string Scaled(int n) {
  const char* scale = std::getenv("BROOM_TEST_SCALE");
  int k = scale != nullptr ? std::atoi(scale) : 1;
  return std::to_string(n * (k > 0 ? k : 1));
}

void ExpectForkProgramPasses(const std::string& args, bool also_plain = true) {
  std::string cmd = "timeout -s KILL 300 " + args;
  if (also_plain) {
    Result plain = RunShell(cmd);
    EXPECT_EQ(plain.status, 0) << "glibc: " << args << "\n" << plain.out << plain.err;
  }
  Result pre = RunShell(cmd, Preload());
  EXPECT_EQ(pre.status, 0) << args << "\n" << pre.out << pre.err;
  EXPECT_NE(pre.out.find("failed=0"), std::string::npos) << pre.out;
}

// glibc's fork takes its stdio list lock after the prepare handlers: an allocator that locks
// its arenas in a prepare handler deadlocks against fflush(NULL) and getline.
TEST(PreloadForkTest, ForkWhileOtherThreadsUseStdioAndMalloc) {
  ExpectForkProgramPasses(std::string(BROOM_TEST_FORK_SAFETY) + " stdio " + Scaled(150));
}

// The same with the readers' allocations in regions (the region space's lock; its fork handler
// is registered at the first region, after Broom's own).
TEST(PreloadForkTest, ForkWhileOtherThreadsUseStdioInRegions) {
  ExpectForkProgramPasses(
      std::string(BROOM_TEST_FORK_SAFETY) + " stdio " + Scaled(150) + " regions",
      /*also_plain=*/false);
}

TEST(PreloadForkTest, ForkFromASignalHandlerWhileThreadsAllocateAndUseStdio) {
  ExpectForkProgramPasses(std::string(BROOM_TEST_FORK_SAFETY) + " signal " + Scaled(150));
}

// A signal handler's fork nested in the thread's own fork (whose handlers hold every lock).
TEST(PreloadForkTest, ForkFromASignalHandlerWhileTheForkHandlersRun) {
  ExpectForkProgramPasses(std::string(BROOM_TEST_FORK_SAFETY) + " nested " + Scaled(300));
}

// The older fork test (forker.cc) with BROOM_CONF modes: the profiler and stats hold their own
// locks across fork.
TEST(PreloadForkTest, ForkFromSeveralThreadsWithProfilerAndStats) {
  std::string profile = TempDir() + "/forker_%p.json";
  Result pre = RunShell(std::string("timeout -s KILL 300 ") + BROOM_TEST_FORKER,
                        Preload("stats:1,profile:" + profile));
  EXPECT_EQ(pre.status, 0) << pre.out << pre.err;
  EXPECT_NE(pre.out.find("failed=0"), std::string::npos) << pre.out;
}

TEST(PreloadProgramsTest, CProgramUsingTheRegionApiThroughWeakSymbols) {
  Result plain = RunShell(BROOM_TEST_C_API_DEMO);
  ASSERT_EQ(plain.status, 0) << plain.err;
  EXPECT_NE(plain.err.find("mode: heap"), std::string::npos);
  Result pre = RunShell(BROOM_TEST_C_API_DEMO, Preload("stats:1"));
  EXPECT_EQ(pre.status, 0) << pre.err;
  EXPECT_NE(pre.err.find("mode: regions"), std::string::npos) << pre.err;
  EXPECT_EQ(pre.out, plain.out);
  // stats:1 reports the regions the program made (one transferable, one actor, one temporary).
  EXPECT_NE(pre.err.find("transferable         1         1      0"), std::string::npos) << pre.err;
}

// Direct binding (runtime_shims/preload/bind.h): until the first region, the program's PLT slots
// for malloc/calloc/free call jemalloc itself; broom_region_create puts Broom's exports back
// (while another thread keeps allocating) and the region then receives malloc and calloc.
constexpr const char* kBoundToJemalloc =
    "before malloc=jemalloc calloc=jemalloc free=jemalloc\n"
    "after malloc=broom calloc=broom free=broom\n"
    "routed 1\n";

TEST(PreloadProgramsTest, DirectBindingWithLazyAndImmediateBinding) {
  for (const char* probe :
       {BROOM_TEST_BIND_PROBE, BROOM_TEST_BIND_PROBE_NOW, BROOM_TEST_BIND_PROBE_NOPIE}) {
    Result plain = RunShell(probe);
    ASSERT_EQ(plain.status, 0) << probe << plain.err;
    EXPECT_EQ(plain.out.find("libbroom"), std::string::npos) << plain.out;
    for (const char* bind_now : {"", " LD_BIND_NOW=1"}) {
      Result pre = RunShell(probe, Preload() + bind_now);
      EXPECT_EQ(pre.status, 0) << probe << bind_now << "\n" << pre.err;
      EXPECT_EQ(pre.out, kBoundToJemalloc) << probe << bind_now;
    }
  }
}

TEST(PreloadProgramsTest, NoDirectBindingWhenTurnedOffOrWithAMode) {
  // The -z now probe's slots are bound at start-up, so they show Broom's exports.
  const std::string through_broom =
      "before malloc=broom calloc=broom free=broom\n"
      "after malloc=broom calloc=broom free=broom\n"
      "routed 1\n";
  for (const char* conf : {"bind:0", "stats:1", "profile:"}) {
    std::string c = conf;
    if (c == "profile:") c += TempDir() + "/bind_probe_profile.json";
    Result pre = RunShell(BROOM_TEST_BIND_PROBE_NOW, Preload(c));
    EXPECT_EQ(pre.status, 0) << c << "\n" << pre.err;
    EXPECT_EQ(pre.out, through_broom) << c;
  }
}

TEST(PreloadProgramsTest, ASlotRewrittenBySomeoneElseDisablesRegions) {
  for (const char* probe : {BROOM_TEST_BIND_PROBE, BROOM_TEST_BIND_PROBE_NOW}) {
    std::string cmd = std::string(probe) + " hook";
    Result pre = RunShell(cmd, Preload());
    EXPECT_EQ(pre.status, 0) << cmd << "\n" << pre.err;
    EXPECT_NE(pre.out.find("regions disabled"), std::string::npos) << cmd << "\n" << pre.out;
    EXPECT_NE(pre.err.find("regions are disabled"), std::string::npos) << pre.err;
    // Without direct binding the hook only wraps Broom's export: regions work.
    Result unbound = RunShell(cmd, Preload("bind:0"));
    EXPECT_EQ(unbound.status, 0) << unbound.err;
    EXPECT_NE(unbound.out.find("region created"), std::string::npos) << unbound.out;
  }
}

// A library constructor that ran before the preload's dlopen()ed a plugin: binding pins it, so
// closing it before the first region leaves no dangling slot, and an RTLD_DEEPBIND plugin whose
// malloc is glibc's keeps glibc's free too.
TEST(PreloadProgramsTest, PluginsOpenedBeforeThePreloadsConstructor) {
  std::string close = std::string(BROOM_TEST_DLCLOSE_PROBE) + " close";
  Result plain = RunShell(close);
  ASSERT_EQ(plain.status, 0) << plain.err;
  Result pre = RunShell(close, Preload());
  EXPECT_EQ(pre.status, 0) << pre.err;
  EXPECT_EQ(pre.out, plain.out);
  std::string deep = std::string(BROOM_TEST_DLCLOSE_PROBE) + " deep";
  Result deep_plain = RunShell(deep, "EARLY_DEEPBIND=1");
  ASSERT_EQ(deep_plain.status, 0) << deep_plain.err;
  Result deep_pre = RunShell(deep, Preload() + " EARLY_DEEPBIND=1");
  EXPECT_EQ(deep_pre.status, 0) << deep_pre.err;
  EXPECT_EQ(deep_pre.out, deep_plain.out);
}

TEST(PreloadProgramsTest, CheckedModeDiagnosesADanglingRegionPointer) {
  std::string cmd = std::string(BROOM_TEST_C_API_DEMO) + " dangling";
  Result unchecked = RunShell(cmd, Preload());
  EXPECT_EQ(unchecked.status, 0);
  EXPECT_NE(unchecked.out.find("not diagnosed"), std::string::npos);
  Result checked = RunShell(cmd, Preload("checks:1"));
  EXPECT_NE(checked.status, 0);
  EXPECT_NE(checked.err.find("free("), std::string::npos) << checked.err;
  EXPECT_NE(checked.err.find("pointer into a destroyed region"), std::string::npos) << checked.err;
}

TEST(PreloadProgramsTest, UnknownConfKeysWarnOnceAndNeverCrash) {
  Result r = RunShell("/bin/echo hi", Preload("stats:2,nonsense:1,,checks"));
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, "hi\n");
  size_t first = r.err.find("unknown key");
  ASSERT_NE(first, std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("unknown key", first + 1), std::string::npos);
  EXPECT_NE(r.err.find("'stats:2'") == std::string::npos ? r.err.find("stats expects")
                                                         : std::string::npos,
            std::string::npos);
}

}  // namespace
