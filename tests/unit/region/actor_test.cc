// Tests of ActorRegion: size classes, per-object free and reuse, bounded churn, misuse.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "broom/actor_region.h"
#include "broom/context.h"
#include "broom/transferable_region.h"

namespace broom {
namespace {

TEST(ActorRegionTest, FreedObjectsAreReusedBySameSizeClass) {
  ActorRegion a;
  void* p = a.Allocate(40);
  a.Free(p);
  // Handed out again by the same class (48 bytes) once the slab's current free list runs out.
  void* q = nullptr;
  for (int i = 0; i < 100 && q != p; ++i) q = a.Allocate(48);
  EXPECT_EQ(p, q);
  EXPECT_EQ(a.UsableSize(q), 48u);
  EXPECT_EQ(a.stats().block_bytes, 2048u + 1024u);  // the header and one 1 KiB slab
}

// Blocks recycled from an earlier actor region still hold freed-object tags; objects carved
// from them must not look freed (that made every Free walk the free list: quadratic).
TEST(ActorRegionTest, FreeOfObjectsInRecycledBlocksStaysConstantTime) {
  constexpr int kObjects = 50000;
  std::vector<void*> ptrs(kObjects);
  for (int round = 0; round < 3; ++round) {
    ActorRegion a;
    for (int i = 0; i < kObjects; ++i) ptrs[i] = a.Allocate(64);  // contents never written
    for (int i = 0; i < kObjects; ++i) a.Free(ptrs[i]);
    EXPECT_EQ(a.stats().bytes_freed, size_t{64} * kObjects);
  }
}

TEST(ActorRegionTest, InsertDeleteForeverRunsInBoundedMemory) {
  ActorRegion a;
  std::mt19937 rng(1);
  std::vector<std::pair<void*, size_t>> live;
  size_t after_warmup = 0;
  for (int round = 0; round < 200; ++round) {
    while (live.size() < 2000) {
      size_t size = 8 + rng() % 1000;
      void* p = a.Allocate(size);
      ASSERT_NE(p, nullptr);
      std::memset(p, 0xab, size);
      live.emplace_back(p, size);
    }
    for (int i = 0; i < 1000; ++i) {
      size_t k = rng() % live.size();
      a.Free(live[k].first);
      live[k] = live.back();
      live.pop_back();
    }
    if (round == 20) after_warmup = a.stats().block_bytes;
  }
  // After warm-up the footprint may still grow a little as classes fill, but never in
  // proportion to the 200k allocations made.
  EXPECT_LE(a.stats().block_bytes, after_warmup * 3 / 2);
  EXPECT_LT(a.stats().block_bytes, size_t{8} << 20);
}

TEST(ActorRegionTest, HonoursAlignmentUpTo4096InSlabsAndBeyondInOwnBlocks) {
  ActorRegion a;
  for (size_t align = 1; align <= 65536; align *= 2) {
    for (size_t size : {1, 24, 100, 700, 5000, 20000}) {
      void* p = a.Allocate(size, align);
      ASSERT_NE(p, nullptr) << size << " " << align;
      EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % align, 0u) << size << " " << align;
      EXPECT_GE(a.UsableSize(p), size);
      std::memset(p, 1, size);
      a.Free(p);
    }
  }
}

TEST(ActorRegionTest, LargeObjectsAreReturnedWhenFreed) {
  ActorRegion a;
  size_t base = a.stats().block_bytes;
  void* p = a.Allocate(size_t{1} << 20);
  ASSERT_NE(p, nullptr);
  EXPECT_GE(a.stats().block_bytes, base + (size_t{1} << 20));
  a.Free(p);
  EXPECT_EQ(a.stats().block_bytes, base);
}

TEST(ActorRegionTest, NewAndDeleteRunDestructorsOnceAndTheRestAtDestruction) {
  static int destroyed = 0;
  destroyed = 0;
  struct Node {
    std::string name;
    explicit Node(std::string n) : name(std::move(n)) {}
    ~Node() { ++destroyed; }
  };
  {
    ActorRegion a;
    Node* x = NewIn<Node>(a.region(), "x");
    Node* y = NewIn<Node>(a.region(), "y");
    EXPECT_EQ(RegionOf(x), &a.region());
    Delete(x);
    EXPECT_EQ(destroyed, 1);
    (void)y;
  }
  EXPECT_EQ(destroyed, 2);
}

TEST(ActorRegionTest, StlContainersFreeIntoTheRegionThroughTheContext) {
  ActorRegion a;
  ContextScope open(a.region());
  std::unordered_map<int, int, std::hash<int>, std::equal_to<int>,
                     Allocator<std::pair<const int, int>>>
      m;
  for (int round = 0; round < 50; ++round) {
    for (int i = 0; i < 1000; ++i) m[i] = i;
    m.clear();
    m.rehash(0);
  }
  EXPECT_LT(a.stats().block_bytes, size_t{1} << 20);
  EXPECT_GT(a.stats().bytes_freed, 0u);
}

TEST(ActorRegionTest, OwnerMayChangeThreadsOverTime) {
  ActorRegion a;
  std::vector<void*> kept;
  for (int hop = 0; hop < 8; ++hop) {
    std::thread([&] {
      for (int i = 0; i < 100; ++i) kept.push_back(a.Allocate(32));
      for (int i = 0; i < 50; ++i) {
        a.Free(kept.back());
        kept.pop_back();
      }
    }).join();
  }
  EXPECT_EQ(kept.size(), 400u);
  for (void* p : kept) EXPECT_EQ(RegionOf(p), &a.region());
}

// Misuse of actor regions (foreign, interior and double frees, moved-from handles) is tested
// with its fatal messages in tests/reliability/misuse_death_test.cc, slab states in
// reap_region_test.cc.

}  // namespace
}  // namespace broom
