// Tests of the chunk layer as the process wires it (alloc/chunk/chunk_space.cc), through the
// public API: lookup, reuse, retention and decay, thread exit, the global counters. The pieces
// have their own tests on fakes (space_test, pool_test, thread_cache_test, stats_test).
#include <gtest/gtest.h>
#include <unistd.h>

#include <thread>
#include <vector>

#include "broom/memory.h"
#include "broom/region.h"
#include "broom/temporary_region.h"
#include "broom/transferable_region.h"

namespace broom {
namespace {

TEST(ChunkSpaceTest, TinyRegionCostsOneSmallBlockNotAChunk) {
  TransferableRegion t;
  for (int i = 0; i < 10; ++i) t.Allocate(30);
  EXPECT_EQ(t.stats().blocks, 1u);
  EXPECT_EQ(t.stats().block_bytes, 4096u);
}

TEST(ChunkSpaceTest, RegionOfFindsTheOwnerOfEveryByteOfEveryBlockKind) {
  TransferableRegion t;
  std::vector<std::pair<char*, size_t>> allocs;
  for (size_t size : {16, 3000, 12000, 60000, 200000, 1000000, 5000000}) {
    auto* p = static_cast<char*>(t.Allocate(size));
    ASSERT_NE(p, nullptr);
    allocs.emplace_back(p, size);
  }
  for (auto [p, size] : allocs) {
    EXPECT_EQ(RegionOf(p), &t.region());
    EXPECT_EQ(RegionOf(p + size / 2), &t.region());
    EXPECT_EQ(RegionOf(p + size - 1), &t.region());
  }
}

TEST(ChunkSpaceTest, FreedBlocksAreReusedHot) {
  void* first;
  {
    TransferableRegion t;
    first = t.Allocate(100);
  }
  TransferableRegion u;
  void* again = u.Allocate(100);
  // The same block comes back from the thread cache.
  EXPECT_EQ(reinterpret_cast<uintptr_t>(first) >> 12, reinterpret_cast<uintptr_t>(again) >> 12);
}

TEST(ChunkSpaceTest, MemoryAboveTheRetainedCapReturnsToTheOsAfterDecay) {
  RetentionPolicy old = GetRetention();
  SetRetention({.retained_cap_bytes = 1 << 20, .decay_ms = 0});
  uint64_t purges_before = GetGlobalStats().purges;
  {
    std::vector<TransferableRegion> regions(8);
    for (auto& t : regions) t.Allocate(8 << 20);  // runs: released to the pool, above the cap
  }
  // Decay is checked on pool operations at most every 10 ms; trigger one after that.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  {
    TransferableRegion t;
    t.Allocate(1 << 20);
  }
  FlushThreadCache();
  GlobalStats s = GetGlobalStats();
  EXPECT_GT(s.purges, purges_before);
  EXPECT_GT(s.purged_bytes, 0u);
  EXPECT_LE(s.cached_bytes, (size_t{1} << 20) + (size_t{16} << 20));  // cap + thread caches
  SetRetention(old);
}

TEST(ChunkSpaceTest, MemoryUnderTheCapStaysWarm) {
  RetentionPolicy old = GetRetention();
  SetRetention({.retained_cap_bytes = size_t{1} << 30, .decay_ms = 0});
  ReleaseFreeMemory(true);
  uint64_t purges_before = GetGlobalStats().purges;
  for (int i = 0; i < 50; ++i) {
    TransferableRegion t;
    for (int j = 0; j < 1000; ++j) t.Allocate(1000);
  }
  FlushThreadCache();
  EXPECT_EQ(GetGlobalStats().purges, purges_before);
  EXPECT_GT(ReleaseFreeMemory(true), 0u);
  SetRetention(old);
}

TEST(ChunkSpaceTest, ThreadExitReturnsItsCacheToThePool) {
  const GlobalStats before = GetGlobalStats();
  size_t cached_by_thread = 0;
  std::thread([&] {
    for (int i = 0; i < 10; ++i) {
      TransferableRegion t;
      t.Allocate(100000);
    }
    const GlobalStats during = GetGlobalStats();
    EXPECT_EQ(during.threads, before.threads + 1);
    cached_by_thread = during.thread_cache_bytes - before.thread_cache_bytes;
  }).join();
  ASSERT_GT(cached_by_thread, 0u);  // the thread's blocks were in its own cache
  const GlobalStats after = GetGlobalStats();
  EXPECT_EQ(after.threads, before.threads) << "the exited thread's state is still registered";
  EXPECT_EQ(after.thread_cache_bytes, before.thread_cache_bytes);
  // Not lost: in the pool now, warm (or purged if above the retention target).
  EXPECT_GE(after.cached_bytes + after.purged_bytes, before.cached_bytes + cached_by_thread);
}

// Runs `body` in a fresh process (a re-executed test binary, not a fork of this one, whose
// counters and pool earlier tests have filled); it exits 0 on success.
template <class Body>
void InAFreshProcess(Body body) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(body(), testing::ExitedWithCode(0), "");
}

TEST(ChunkSpaceTest, PeakBlockBytesIsRightForASmallProgram) {
  // Nothing is folded into the global counters yet (each thread folds per MiB).
  InAFreshProcess([] {
    {
      TransferableRegion t;
      t.Allocate(200000);
    }
    const GlobalStats s = GetGlobalStats();
    _exit(s.peak_block_bytes >= 200000 && s.block_bytes == 0 ? 0 : 1);
  });
  InAFreshProcess([] {
    std::thread([] {
      TransferableRegion t;
      t.Allocate(200000);
    }).join();
    _exit(GetGlobalStats().peak_block_bytes >= 200000 ? 0 : 1);
  });
}

TEST(ChunkSpaceTest, TheSpaceGrowsByThePeakNotTheSumWhenALargeObjectKeepsGrowing) {
  // A vector doubling in its own region each time: each freed run is extended (or merged with
  // its free neighbours) for the next, so carving follows the largest (64 MiB), not the sum
  // (124 MiB).
  InAFreshProcess([] {
    for (int round = 0; round < 2; ++round) {
      for (size_t mib = 4; mib <= 64; mib *= 2) {
        TransferableRegion t;
        if (t.Allocate(mib << 20) == nullptr) _exit(2);
      }
    }
    const GlobalStats s = GetGlobalStats();
    _exit(s.block_bytes + s.cached_bytes + s.purged_bytes <= (size_t{66} << 20) ? 0 : 1);
  });
}

TEST(ChunkSpaceTest, CountsRegionsByKind) {
  GlobalStats before = GetGlobalStats();
  {
    TransferableRegion a;
    TemporaryRegion b;
    GlobalStats during = GetGlobalStats();
    EXPECT_EQ(during.live(RegionKind::kTransferable), before.live(RegionKind::kTransferable) + 1);
    EXPECT_EQ(during.live(RegionKind::kTemporary), before.live(RegionKind::kTemporary) + 1);
  }
  GlobalStats after = GetGlobalStats();
  EXPECT_EQ(after.live(RegionKind::kTransferable), before.live(RegionKind::kTransferable));
  EXPECT_EQ(after.regions_created[0], before.regions_created[0] + 1);
}

}  // namespace
}  // namespace broom
