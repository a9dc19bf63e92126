// Copyright Broom authors.
//
// The plain-C++ driver of the region-operations harness: runs it over deterministic
// pseudo-random inputs and over the checked-in corpus, so every build (any compiler, ASan, TSan)
// exercises the same operations the libFuzzer target does.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "broom/internal/base.h"
#include "tests/fuzz/region_ops_harness.h"

#if defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define BROOM_DRIVER_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define BROOM_DRIVER_SANITIZED 1
#endif

namespace broom::fuzz {
namespace {

// Inputs per test; BROOM_FUZZ_DRIVER_INPUTS overrides (sanitizer builds run fewer by default).
int InputCount(int release_default) {
  if (const char* env = std::getenv("BROOM_FUZZ_DRIVER_INPUTS")) return std::atoi(env);
#ifdef BROOM_DRIVER_SANITIZED
  return release_default / 4;
#else
  return release_default;
#endif
}

std::vector<uint8_t> RandomInput(uint64_t seed, size_t min_size, size_t max_size) {
  std::mt19937_64 rng(seed);
  size_t n = min_size + rng() % (max_size - min_size + 1);
  std::vector<uint8_t> bytes(n);
  for (auto& b : bytes) b = static_cast<uint8_t>(rng());
  return bytes;
}

// Prints what the inputs reached, so a change that makes the decoder skip everything shows.
class ReachReporter : public ::testing::EmptyTestEventListener {
  void OnTestProgramEnd(const ::testing::UnitTest&) override {
    HarnessCounters c = GetHarnessCounters();
    std::printf(
        "region_ops reach: %llu inputs, %llu creates, %llu allocations (%llu failed as "
        "the model allowed), %llu frees, %llu scopes, %llu transfers (%llu to other "
        "threads), %llu shares, %llu resets, %llu destroys, %llu objects with destructors, "
        "%llu CheckOutlives scans (%llu violations from stale bytes)\n",
        U(c.inputs), U(c.creates), U(c.allocs_ok + c.allocs_failed), U(c.allocs_failed), U(c.frees),
        U(c.scopes), U(c.transfers), U(c.thread_handoffs), U(c.shares), U(c.resets), U(c.destroys),
        U(c.tracked_objects), U(c.outlives_scans), U(c.stale_violations));
  }
  static unsigned long long U(uint64_t v) { return static_cast<unsigned long long>(v); }
};
const bool kReachReporter = [] {
  ::testing::UnitTest::GetInstance()->listeners().Append(new ReachReporter);
  return true;
}();

TEST(RegionOpsFuzzDriverTest, ShortRandomInputsHoldEveryInvariant) {
  const int n = InputCount(400);
  for (int seed = 0; seed < n; ++seed) {
    SCOPED_TRACE(seed);
    std::vector<uint8_t> in = RandomInput(0x5eed0000u + static_cast<uint64_t>(seed), 1, 512);
    RunRegionOps(in.data(), in.size());
  }
}

TEST(RegionOpsFuzzDriverTest, LongRandomInputsHoldEveryInvariant) {
  const int n = InputCount(40);
  for (int seed = 0; seed < n; ++seed) {
    SCOPED_TRACE(seed);
    std::vector<uint8_t> in = RandomInput(0xb100d000u + static_cast<uint64_t>(seed), 4096, 16384);
    RunRegionOps(in.data(), in.size());
  }
}

// Inputs biased towards allocation and scopes (each byte pair "op, slot" drawn from a few hot
// operations), which reach deep scope nesting and block growth that uniform bytes rarely do.
TEST(RegionOpsFuzzDriverTest, AllocationHeavyInputsHoldEveryInvariant) {
  const int n = InputCount(60);
  for (int seed = 0; seed < n; ++seed) {
    SCOPED_TRACE(seed);
    std::mt19937_64 rng(0xa110c000u + static_cast<uint64_t>(seed));
    std::vector<uint8_t> in;
    static constexpr uint8_t kHot[] = {0, 1, 2, 9, 12, 14, 19, 20, 7, 11, 16, 18, 22, 23};
    for (int i = 0; i < 1500; ++i) {
      in.push_back(kHot[rng() % std::size(kHot)]);
      for (int k = 0; k < 6; ++k) in.push_back(static_cast<uint8_t>(rng()));
    }
    RunRegionOps(in.data(), in.size());
  }
}

TEST(RegionOpsFuzzDriverTest, EmptyAndTinyInputs) {
  RunRegionOps(nullptr, 0);
  for (int b = 0; b < 256; ++b) {
    uint8_t one = static_cast<uint8_t>(b);
    RunRegionOps(&one, 1);
    uint8_t two[2] = {one, one};
    RunRegionOps(two, 2);
  }
}

// Every file under tests/fuzz/corpus (seeds and any crash reproducers saved from libFuzzer runs).
TEST(RegionOpsFuzzDriverTest, CheckedInCorpus) {
  namespace fs = std::filesystem;
  fs::path dir(BROOM_FUZZ_CORPUS_DIR);
  if (!fs::exists(dir)) GTEST_SKIP() << "no corpus at " << dir;
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream f(entry.path(), std::ios::binary);
    std::vector<uint8_t> in((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    SCOPED_TRACE(entry.path().string());
    RunRegionOps(in.data(), in.size());
    ++files;
  }
  EXPECT_GT(files, 0);
}

}  // namespace
}  // namespace broom::fuzz
