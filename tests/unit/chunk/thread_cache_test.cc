// Tests of a thread's block cache (alloc/chunk/thread_cache.h) in front of a fake pool: refill on
// a miss, hot reuse, overflow to the pool, flush.
#include "alloc/chunk/thread_cache.h"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

namespace broom::internal {
namespace {

constexpr int k4K = kPageBlockClass;

// Counts calls; hands out fresh headers; keeps what comes back.
class FakePool {
 public:
  int AcquireBlocks(int c, BlockHeader** out, int want, AllocError* error) {
    ++acquire_calls;
    last_want = want;
    if (empty) {
      *error = AllocError::kOutOfMemory;
      return 0;
    }
    for (int i = 0; i < want; ++i) out[i] = New(c);
    return want;
  }
  void ReleaseBlocks(int, BlockHeader* const* blocks, int n) {
    ++release_calls;
    released.insert(released.end(), blocks, blocks + n);
  }
  BlockHeader* New(int c) {
    blocks_.push_back(std::make_unique<BlockHeader>());
    blocks_.back()->size = BlockClassSize(c);
    return blocks_.back().get();
  }

  int acquire_calls = 0;
  int release_calls = 0;
  int last_want = 0;
  bool empty = false;
  std::vector<BlockHeader*> released;

 private:
  std::vector<std::unique_ptr<BlockHeader>> blocks_;
};

class ThreadCacheTest : public testing::Test {
 protected:
  FakePool pool_;
  ThreadCache<FakePool> cache_{&pool_};
  AllocError error_ = AllocError::kNone;
};

TEST_F(ThreadCacheTest, AMissRefillsHalfTheLimitInOneCall) {
  ASSERT_NE(cache_.Acquire(k4K, &error_), nullptr);
  EXPECT_EQ(pool_.acquire_calls, 1);
  EXPECT_EQ(pool_.last_want, kCacheLimit[k4K] / 2);
  EXPECT_EQ(cache_.count(k4K), kCacheLimit[k4K] / 2 - 1);
  EXPECT_EQ(cache_.cached_bytes(), static_cast<size_t>(kCacheLimit[k4K] / 2 - 1) * 4096);
}

TEST_F(ThreadCacheTest, HitsNeverCallThePoolAndTheLastReleasedBlockComesBackFirst) {
  std::vector<BlockHeader*> got;
  for (int i = 0; i < kCacheLimit[k4K] / 2; ++i) got.push_back(cache_.Acquire(k4K, &error_));
  EXPECT_EQ(pool_.acquire_calls, 1);
  cache_.Release(got[5], k4K);
  cache_.Release(got[9], k4K);
  EXPECT_EQ(cache_.Acquire(k4K, &error_), got[9]);
  EXPECT_EQ(cache_.Acquire(k4K, &error_), got[5]);
  EXPECT_EQ(pool_.acquire_calls, 1);
  EXPECT_EQ(pool_.release_calls, 0);
}

TEST_F(ThreadCacheTest, AFullStackMovesItsOlderHalfToThePool) {
  std::vector<BlockHeader*> blocks;
  for (int i = 0; i <= kCacheLimit[k4K]; ++i) blocks.push_back(pool_.New(k4K));
  for (int i = 0; i < kCacheLimit[k4K]; ++i) cache_.Release(blocks[i], k4K);
  EXPECT_EQ(pool_.release_calls, 0);
  cache_.Release(blocks.back(), k4K);  // one more than the limit
  EXPECT_EQ(pool_.release_calls, 1);
  ASSERT_EQ(pool_.released.size(), static_cast<size_t>(kCacheLimit[k4K] / 2));
  for (int i = 0; i < kCacheLimit[k4K] / 2; ++i) EXPECT_EQ(pool_.released[i], blocks[i]);
  EXPECT_EQ(cache_.count(k4K), kCacheLimit[k4K] / 2 + 1);
  EXPECT_EQ(cache_.Acquire(k4K, &error_), blocks.back());  // the hottest stayed
  EXPECT_EQ(cache_.Acquire(k4K, &error_), blocks[kCacheLimit[k4K] - 1]);
}

TEST_F(ThreadCacheTest, FlushGivesEveryBlockOfEveryClassBack) {
  cache_.Release(pool_.New(0), 0);
  cache_.Release(pool_.New(k4K), k4K);
  cache_.Release(pool_.New(kNumBlockClasses - 1), kNumBlockClasses - 1);
  EXPECT_EQ(cache_.cached_bytes(), 1024u + 4096 + kChunkSize);
  cache_.Flush();
  EXPECT_EQ(pool_.released.size(), 3u);
  EXPECT_EQ(cache_.cached_bytes(), 0u);
  for (int c = 0; c < kNumBlockClasses; ++c) EXPECT_EQ(cache_.count(c), 0);
}

TEST_F(ThreadCacheTest, AFailedRefillReportsThePoolsError) {
  pool_.empty = true;
  EXPECT_EQ(cache_.Acquire(k4K, &error_), nullptr);
  EXPECT_EQ(error_, AllocError::kOutOfMemory);
  EXPECT_EQ(cache_.cached_bytes(), 0u);
}

}  // namespace
}  // namespace broom::internal
