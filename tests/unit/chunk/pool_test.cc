// Tests of the pool (alloc/chunk/pool.h) on a fake space: refills, run reuse and coalescing,
// class chunks merged back into runs, decay, the retention target and its cap.
#include <gtest/gtest.h>

#include <vector>

#include "alloc/chunk/pool_impl.h"
#include "tests/unit/chunk/fake_space.h"

namespace broom::internal {
namespace {

constexpr int k1K = 0;
constexpr int k4K = kPageBlockClass;
constexpr int k256K = kNumBlockClasses - 1;

class PoolTest : public testing::Test {
 protected:
  explicit PoolTest(size_t chunks = 64) : space_(chunks), pool_(&space_) {
    // Everything stays warm unless a test asks otherwise (or calls ReleaseFreeMemory(true)).
    pool_.SetRetention({.retained_cap_bytes = size_t{1} << 30,
                        .retained_min_bytes = size_t{1} << 30,
                        .decay_ms = 1000000,
                        .peak_window_ms = 0});
  }

  std::vector<BlockHeader*> Take(int c, int n) {
    std::vector<BlockHeader*> got;
    BlockHeader* out[Pool<FakeSpace>::kMaxBatch];
    while (static_cast<int>(got.size()) < n) {
      AllocError error = AllocError::kNone;
      const int want = std::min(n - static_cast<int>(got.size()), Pool<FakeSpace>::kMaxBatch);
      const int k = pool_.AcquireBlocks(c, out, want, &error);
      EXPECT_GT(k, 0) << ErrorName(error);
      if (k == 0) break;
      for (int i = k; i-- > 0;) got.push_back(out[i]);  // in the order they are handed out
    }
    return got;
  }
  void Give(int c, const std::vector<BlockHeader*>& blocks) {
    pool_.ReleaseBlocks(c, blocks.data(), static_cast<int>(blocks.size()));
  }
  BlockHeader* Run(size_t chunks) {
    AllocError error = AllocError::kNone;
    BlockHeader* b = pool_.AcquireRun(chunks, &error);
    if (b != nullptr) b->size = chunks * kChunkSize;  // as AcquireBlock's header init does
    return b;
  }
  // Each release may run decay: the fake clock moves past the pool's check interval first.
  void GiveRun(BlockHeader* b) {
    space_.now_ms += Pool<FakeSpace>::kDecayCheckMs;
    pool_.ReleaseRun(b);
  }
  char* At(const BlockHeader* b) { return reinterpret_cast<char*>(const_cast<BlockHeader*>(b)); }

  FakeSpace space_;
  Pool<FakeSpace> pool_;
};

TEST_F(PoolTest, ARefillCarvesOneChunkAndHandsOutItsLowestBlockFirst) {
  std::vector<BlockHeader*> got = Take(k4K, 32);
  ASSERT_EQ(got.size(), 32u);
  EXPECT_EQ(space_.carves(), 1u);
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(At(got[i]), space_.chunk(0) + i * 4096) << i;
    EXPECT_EQ(got[i]->owner.load(), nullptr);
  }
  EXPECT_EQ(space_.map_word(space_.chunk(0)), CarvedMapWord(4096));
}

TEST_F(PoolTest, FreeBlocksAreReusedBeforeAnyChunkIsCarved) {
  std::vector<BlockHeader*> got = Take(k4K, 64);
  Give(k4K, got);
  std::vector<BlockHeader*> again = Take(k4K, 64);
  EXPECT_EQ(space_.carves(), 1u);
  EXPECT_EQ(again.front(), got.front());
}

TEST_F(PoolTest, TheChunkThatGotABlockBackLastIsRefilledFromFirst) {
  std::vector<BlockHeader*> got = Take(k4K, 128);  // two chunks, all handed out
  ASSERT_EQ(space_.carves(), 2u);
  Give(k4K, {got[3]});   // chunk 0
  Give(k4K, {got[70]});  // chunk 1
  Give(k4K, {got[9]});   // chunk 0 again, most recently
  EXPECT_EQ(Take(k4K, 1).front(), got[3]);
  EXPECT_EQ(Take(k4K, 1).front(), got[9]);
  EXPECT_EQ(Take(k4K, 1).front(), got[70]);
}

TEST_F(PoolTest, ResidentBlocksAreHandedOutBeforePurgedOnes) {
  std::vector<BlockHeader*> got = Take(k4K, 64);
  Give(k4K, std::vector<BlockHeader*>(got.begin(), got.begin() + 10));
  EXPECT_EQ(pool_.ReleaseFreeMemory(/*all=*/true), 10u * 4096);  // blocks 0..9, one call
  ASSERT_EQ(space_.purges().size(), 1u);
  EXPECT_EQ(space_.purges()[0].first, At(got[0]));
  Give(k4K, {got[10], got[11]});
  std::vector<BlockHeader*> again = Take(k4K, 3);
  EXPECT_EQ(again[0], got[10]);
  EXPECT_EQ(again[1], got[11]);
  EXPECT_EQ(again[2], got[0]);
}

TEST_F(PoolTest, RunsFreedInTheMiddleOfTheSetAreMerged) {
  BlockHeader* a = Run(2);
  BlockHeader* b = Run(2);
  BlockHeader* c = Run(2);
  BlockHeader* guard = Run(1);  // keeps c off the frontier
  GiveRun(a);
  GiveRun(c);
  EXPECT_EQ(pool_.Stats().free_runs, 2u);
  GiveRun(b);  // between two free runs
  EXPECT_EQ(pool_.Stats().free_runs, 1u);
  const size_t carves = space_.carves();
  EXPECT_EQ(Run(6), a);
  EXPECT_EQ(space_.carves(), carves);
  (void)guard;
}

TEST_F(PoolTest, ARunRequestTakesTheBestFit) {
  BlockHeader* big = Run(5);
  Run(1);
  BlockHeader* small = Run(3);
  Run(1);
  GiveRun(big);
  GiveRun(small);
  EXPECT_EQ(Run(3), small);
  EXPECT_EQ(Run(5), big);
}

TEST_F(PoolTest, ARunMapsEveryChunkToItsHeaderAndReleaseUnmapsThem) {
  BlockHeader* r = Run(3);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(space_.map_word(At(r) + i * kChunkSize), reinterpret_cast<uintptr_t>(r));
  }
  GiveRun(r);
  EXPECT_EQ(space_.map_word(At(r) + kChunkSize), 0u);
}

TEST_F(PoolTest, AFreeRunEndingAtTheFrontierIsExtended) {
  BlockHeader* a = Run(2);
  GiveRun(a);
  EXPECT_EQ(Run(5), a);
  EXPECT_EQ(space_.carved_chunks(), 5u);
}

TEST_F(PoolTest, AChunkWhoseBlocksAreAllFreeBecomesRunSpace) {
  std::vector<BlockHeader*> pages = Take(k4K, 64);   // chunk 0
  std::vector<BlockHeader*> small = Take(k1K, 256);  // chunk 1
  ASSERT_EQ(space_.carves(), 2u);
  Give(k4K, pages);
  Give(k1K, small);
  BlockHeader* r = Run(2);  // both idle chunks, merged with each other
  EXPECT_EQ(At(r), space_.chunk(0));
  EXPECT_EQ(space_.carves(), 2u);
  EXPECT_EQ(space_.map_word(space_.chunk(1)), reinterpret_cast<uintptr_t>(r));
}

TEST_F(PoolTest, IdleChunksOfOneClassServeAnother) {
  Give(k4K, Take(k4K, 64));
  std::vector<BlockHeader*> big = Take(k256K, 1);
  EXPECT_EQ(At(big[0]), space_.chunk(0));
  EXPECT_EQ(space_.carves(), 1u);
  EXPECT_EQ(space_.map_word(space_.chunk(0)), CarvedMapWord(kChunkSize));
}

TEST_F(PoolTest, SmallBlocksArePurgedByWholePagesAndWithTheirChunk) {
  std::vector<BlockHeader*> got = Take(k1K, 8);                 // pages 0 and 1 of a fresh chunk
  Give(k1K, {got[0], got[1], got[2], got[3], got[4], got[5]});  // page 0, half of page 1
  EXPECT_EQ(pool_.ReleaseFreeMemory(/*all=*/true), 4096u);
  ASSERT_EQ(space_.purges().size(), 1u);
  EXPECT_EQ(space_.purges()[0], std::make_pair(space_.chunk(0), size_t{4096}));
  EXPECT_EQ(pool_.Stats().dirty_bytes, 2048u);  // blocks 4 and 5 share a page with 6 and 7
  Give(k1K, {got[6], got[7]});                  // now the whole chunk is free
  pool_.ReleaseFreeMemory(/*all=*/true);
  EXPECT_EQ(space_.purges().back(), std::make_pair(space_.chunk(0), kChunkSize));
  EXPECT_EQ(pool_.Stats().dirty_bytes, 0u);
  EXPECT_EQ(pool_.Stats().free_runs, 1u);  // returned as a run, reusable by any class
}

TEST_F(PoolTest, GrowingTheSpacePurgesAsMuchWarmMemoryAsDidNotFit) {
  pool_.SetRetention({.retained_cap_bytes = size_t{1} << 30,
                      .retained_min_bytes = kChunkSize,
                      .decay_ms = 1000000,
                      .peak_window_ms = 60000});
  BlockHeader* a = Run(2);
  Run(1);
  BlockHeader* b = Run(2);
  Run(1);
  GiveRun(a);
  GiveRun(b);
  ASSERT_EQ(space_.purged(), 0u);              // under the retention target: kept warm
  Run(3);                                      // fits neither: the space grows by 3 chunks
  EXPECT_EQ(space_.purged(), 3 * kChunkSize);  // a, then the top of b; one chunk stays warm
  EXPECT_EQ(pool_.Stats().dirty_bytes, kChunkSize);
  Run(1);  // from the warm chunk left: no growth, no purge
  EXPECT_EQ(space_.purged(), 3 * kChunkSize);
}

TEST_F(PoolTest, OutOfMemoryWhenNothingFitsAndTheSpaceCannotGrow) {
  space_.set_limit(2);
  AllocError error = AllocError::kNone;
  EXPECT_EQ(pool_.AcquireRun(3, &error), nullptr);
  EXPECT_EQ(error, AllocError::kOutOfMemory);
  EXPECT_NE(Run(2), nullptr);
  BlockHeader* out[1];
  error = AllocError::kNone;
  EXPECT_EQ(pool_.AcquireBlocks(k4K, out, 1, &error), 0);
  EXPECT_EQ(error, AllocError::kOutOfMemory);
}

TEST_F(PoolTest, FreeMemoryAboveTheTargetIsPurgedOnlyOnceItHasDecayed) {
  pool_.SetRetention(
      {.retained_cap_bytes = 0, .retained_min_bytes = 0, .decay_ms = 100, .peak_window_ms = 0});
  BlockHeader* a = Run(4);
  Run(1);  // in use between the free runs, so they stay apart
  BlockHeader* b = Run(1);
  Run(1);
  BlockHeader* c = Run(1);
  GiveRun(a);
  space_.now_ms += 50;
  GiveRun(b);
  EXPECT_EQ(space_.purged(), 0u);  // a is 60 ms old
  space_.now_ms += 60;
  GiveRun(c);  // a is 130 ms old, b 70, c 0
  EXPECT_EQ(space_.purged(), 4 * kChunkSize);
  space_.now_ms += 100;
  pool_.ReleaseFreeMemory(/*all=*/false);  // ignores age: everything above the target
  EXPECT_EQ(space_.purged(), 6 * kChunkSize);
}

TEST_F(PoolTest, TheRetentionTargetFollowsTheRecentPeak) {
  pool_.SetRetention({.retained_cap_bytes = size_t{1} << 30,
                      .retained_min_bytes = 0,
                      .decay_ms = 0,
                      .peak_window_ms = 1000});
  std::vector<BlockHeader*> runs;
  for (int i = 0; i < 8; ++i) runs.push_back(Run(1));  // the peak: 8 chunks in use
  for (int i = 0; i < 7; ++i) GiveRun(runs[i]);
  // Getting back to the peak needs the 7 free chunks: they stay warm although decay is 0.
  EXPECT_EQ(space_.purged(), 0u);
  EXPECT_EQ(pool_.Stats().retain_target_bytes, 7 * kChunkSize);
  space_.now_ms += 2000;  // the peak leaves the window
  GiveRun(runs[7]);
  EXPECT_EQ(space_.purged(), 8 * kChunkSize);
  EXPECT_EQ(pool_.Stats().dirty_bytes, 0u);
}

TEST_F(PoolTest, TheRetainedCapBoundsWhatStaysWarm) {
  pool_.SetRetention({.retained_cap_bytes = 2 * kChunkSize,
                      .retained_min_bytes = 0,
                      .decay_ms = 0,
                      .peak_window_ms = 60000});
  std::vector<BlockHeader*> runs;
  for (int i = 0; i < 8; ++i) runs.push_back(Run(1));
  for (BlockHeader* r : runs) GiveRun(r);
  EXPECT_EQ(pool_.Stats().retain_target_bytes, 2 * kChunkSize);  // the peak would keep 8
  EXPECT_EQ(pool_.Stats().dirty_bytes, 2 * kChunkSize);
  EXPECT_EQ(space_.purged(), 6 * kChunkSize);
}

TEST_F(PoolTest, TheRetainedMinimumStaysWarmWhateverThePeak) {
  pool_.SetRetention({.retained_cap_bytes = size_t{1} << 30,
                      .retained_min_bytes = 3 * kChunkSize,
                      .decay_ms = 0,
                      .peak_window_ms = 0});
  std::vector<BlockHeader*> runs;
  for (int i = 0; i < 8; ++i) runs.push_back(Run(1));
  for (BlockHeader* r : runs) GiveRun(r);
  EXPECT_EQ(pool_.Stats().dirty_bytes, 3 * kChunkSize);
}

TEST_F(PoolTest, StatsCountFreeBytesByState) {
  std::vector<BlockHeader*> blocks = Take(k4K, 40);  // of a fresh chunk: 24 untouched remain
  BlockHeader* r = Run(3);
  Give(k4K, std::vector<BlockHeader*>(blocks.begin(), blocks.begin() + 20));
  PoolStats s = pool_.Stats();
  EXPECT_EQ(s.dirty_bytes, 20u * 4096);
  EXPECT_EQ(s.purged_bytes, 24u * 4096);
  EXPECT_EQ(s.in_use_bytes, 20 * 4096 + 3 * kChunkSize);
  GiveRun(r);
  s = pool_.Stats();
  EXPECT_EQ(s.dirty_bytes, 20 * 4096 + 3 * kChunkSize);
  EXPECT_EQ(s.in_use_bytes, 20u * 4096);
}

}  // namespace
}  // namespace broom::internal
