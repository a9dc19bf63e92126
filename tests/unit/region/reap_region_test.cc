// Tests of ReapRegion, the allocator of actor regions: slabs and their free lists, slab
// exhaustion, empty slabs reused by other classes or given back, footprint, statistics, typed
// allocation, and misuse of the slab states.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "broom/actor_region.h"
#include "broom/check.h"
#include "broom/context.h"
#include "broom/region.h"
#include "broom/transferable_region.h"

#if BROOM_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace broom {
namespace {

using internal::BlockHeader;
using internal::BlockOf;

BlockHeader* SlabOf(const void* p) { return BlockOf(p); }

TEST(ReapRegionTest, AClassAllocatesFromOneSlabInAddressOrderUntilItIsExhausted) {
  ActorRegion a;
  std::vector<char*> objects;
  for (int i = 0; i < 64; ++i) objects.push_back(static_cast<char*>(a.Allocate(64)));
  // The first slab is the smallest block that holds one object (1 KiB: 15 objects of 64 B);
  // every object of it comes before any object of the next slab, in address order.
  BlockHeader* first = SlabOf(objects[0]);
  ASSERT_EQ(first->size, 1024u);
  size_t in_first = 0;
  while (in_first < objects.size() && SlabOf(objects[in_first]) == first) ++in_first;
  EXPECT_EQ(in_first, (1024 - sizeof(BlockHeader)) / 64);
  for (size_t i = 1; i < in_first; ++i) EXPECT_EQ(objects[i], objects[i - 1] + 64);
  // The next slab doubles.
  EXPECT_EQ(SlabOf(objects[in_first])->size, 2048u);
  for (size_t i = in_first; i < objects.size(); ++i) EXPECT_NE(SlabOf(objects[i]), first);
}

// The locality the per-slab free lists exist for: after a batch is freed in an order unrelated
// to allocation, the next allocations come from one slab at a time, not in the order of the
// frees scattered over every slab (what one free list per class for the whole region did).
TEST(ReapRegionTest, AllocationsAfterRandomFreesStayInOneSlabUntilItIsExhausted) {
  constexpr int kObjects = 20000;
  ActorRegion a;
  std::vector<void*> objects(kObjects);
  for (auto& p : objects) p = a.Allocate(48);
  std::set<BlockHeader*> slabs;
  for (void* p : objects) slabs.insert(SlabOf(p));
  std::mt19937 rng(7);
  std::shuffle(objects.begin(), objects.end(), rng);
  for (void* p : objects) a.Free(p);
  size_t switches = 0;
  BlockHeader* last = nullptr;
  for (auto& p : objects) {
    p = a.Allocate(48);
    if (SlabOf(p) != last) ++switches;
    last = SlabOf(p);
  }
  // One switch per slab (slabs emptied by the frees come back as well), never one per object.
  EXPECT_LE(switches, slabs.size() + 2) << "slabs: " << slabs.size();
  EXPECT_GT(slabs.size(), 10u);
}

// Slabs are carved into free lists a few KiB at a time (Carve): across those steps a class still
// hands out every object of a slab, each once, in address order, before it takes another slab.
TEST(ReapRegionTest, CarvingStepsHandOutEverySlabObjectOnceInAddressOrder) {
  for (const size_t size : {16, 48, 256, 1024, 4096, 8192}) {
    ActorRegion a;
    std::vector<char*> objects;
    // Enough objects for several slabs, the later ones 64 KiB or more (many carving steps).
    for (size_t i = 0; i < (size_t{1} << 20) / size; ++i) {
      objects.push_back(static_cast<char*>(a.Allocate(size)));
    }
    std::set<char*> distinct(objects.begin(), objects.end());
    ASSERT_EQ(distinct.size(), objects.size()) << size;
    size_t i = 0;
    while (i < objects.size()) {
      BlockHeader* slab = SlabOf(objects[i]);
      size_t k = 0;
      for (; i + k < objects.size() && SlabOf(objects[i + k]) == slab; ++k) {
        ASSERT_EQ(objects[i + k], slab->begin() + k * size) << size << " object " << k;
      }
      const size_t capacity = (slab->size - sizeof(BlockHeader)) / size;
      if (i + k < objects.size()) {
        EXPECT_EQ(k, capacity) << size << ": slab left early";
      }
      i += k;
    }
    for (char* p : objects) a.Free(p);
    EXPECT_EQ(a.stats().bytes_freed, a.stats().bytes_requested);
  }
}

// The inline path's class lookup: every size up to the table's end gets the smallest class that
// holds it.
TEST(ReapRegionTest, EverySizeGetsTheSmallestClassThatHoldsIt) {
  ActorRegion a;
  for (size_t size = 1; size <= internal::kReapTableMax + 16; ++size) {
    void* p = a.Allocate(size);
    const size_t usable = a.UsableSize(p);
    const int c = internal::ReapSizeClassSlow(size);
    EXPECT_EQ(usable, internal::ReapClassSize(c)) << size;
    EXPECT_GE(usable, size);
    if (c > 0) {
      EXPECT_LT(internal::ReapClassSize(c - 1), size) << size;
    }
    a.Free(p);
  }
}

TEST(ReapRegionTest, AFreeGoesBackToItsOwnSlab) {
  ActorRegion a;
  std::vector<void*> objects;
  for (int i = 0; i < 200; ++i) objects.push_back(a.Allocate(32));
  // Free one object of an early (full, not current) slab: the next allocation still comes from
  // the current slab, and the freed object is handed out again once that slab is exhausted.
  void* early = objects[3];
  BlockHeader* early_slab = SlabOf(early);
  a.Free(early);
  void* next = a.Allocate(32);
  EXPECT_NE(SlabOf(next), early_slab);
  bool reused = false;
  for (int i = 0; i < 2000 && !reused; ++i) reused = a.Allocate(32) == early;
  EXPECT_TRUE(reused);
}

// Free's lookup: a slab's header for its objects, null (the slow path) for everything else.
TEST(ReapRegionTest, FreesLookupFindsSlabsAndRefusesEverythingElse) {
  ActorRegion a;
  void* small = a.Allocate(64);
  EXPECT_EQ(internal::CarvedBlockOfOrNull(small), BlockOf(small));
  EXPECT_NE(BlockOf(small), nullptr);
  void* run = a.Allocate(size_t{1} << 20);  // a run of chunks: its map words hold the header
  ASSERT_NE(BlockOf(run), nullptr);
  EXPECT_EQ(internal::CarvedBlockOfOrNull(run), nullptr);
  EXPECT_EQ(internal::CarvedBlockOfOrNull(static_cast<char*>(run) + (size_t{600} << 10)), nullptr);
  std::vector<char> heap(64);
  EXPECT_EQ(internal::CarvedBlockOfOrNull(heap.data()), nullptr);
  // A chunk never used (map word 0).
  const size_t chunks = internal::g_space.size >> internal::kChunkShift;
  size_t unused = chunks;
  while (unused > 0 && internal::g_space.chunk_map[unused - 1].load() != 0) --unused;
  ASSERT_GT(unused, 0u);
  const void* never = reinterpret_cast<const void*>(internal::g_space.base +
                                                    ((unused - 1) << internal::kChunkShift) + 64);
  EXPECT_EQ(internal::CarvedBlockOfOrNull(never), nullptr);
  // A carved chunk marked by quarantine.
  EnableQuarantine({.duration_ms = 60000});
  void* gone;
  {
    TransferableRegion t;
    gone = t.Allocate(100);
  }
  EXPECT_EQ(internal::CarvedBlockOfOrNull(gone), nullptr);
  DisableQuarantine();
  a.Free(run);
  a.Free(small);
}

// A class that allocates and frees one object at a time (a pair) in a slab of a few objects
// moves to larger slabs until one holds at least kOutgrowCapacity objects, giving the small ones
// back: its allocation list then lasts that many allocations.
TEST(ReapRegionTest, AClassCyclingASmallSlabMovesToALargerOne) {
  ActorRegion a;
  BlockHeader* first = nullptr;
  BlockHeader* last = nullptr;
  for (int i = 0; i < 1000; ++i) {
    void* p = a.Allocate(256);
    if (first == nullptr) first = SlabOf(p);
    last = SlabOf(p);
    a.Free(p);
  }
  EXPECT_EQ(first->size, size_t{1} << 10);
  const size_t capacity = (last->size - sizeof(BlockHeader)) / 256;
  EXPECT_GE(capacity, ReapRegion::kOutgrowCapacity);
  EXPECT_LE(last->size, ReapRegion::kOutgrowBytes);
  // The outgrown slabs went back: the header block and the current slab remain.
  EXPECT_LE(a.stats().block_bytes, size_t{2} * 1024 + last->size);
  a.region().Validate();
  // A slab with a live object is not outgrown.
  ActorRegion b;
  void* keep = b.Allocate(256);
  for (int i = 0; i < 100; ++i) b.Free(b.Allocate(256));
  EXPECT_EQ(SlabOf(keep)->size, size_t{1} << 10);
  EXPECT_EQ(SlabOf(b.Allocate(256)), SlabOf(keep));
}

// Under a budget with no room for a larger slab the class keeps its small one: every
// allocation succeeds and nothing is charged or recorded as an error.
TEST(ReapRegionTest, ASmallSlabIsKeptWhenABudgetLeavesNoRoomForALargerOne) {
  ActorRegion a;
  void* p = a.Allocate(256);
  BlockHeader* slab = SlabOf(p);
  a.Free(p);
  const size_t bytes = a.stats().block_bytes;
  a.region().SetBudget(bytes);
  for (int i = 0; i < 100; ++i) {
    p = a.Allocate(256);
    ASSERT_NE(p, nullptr) << i;
    EXPECT_EQ(SlabOf(p), slab);
    a.Free(p);
  }
  EXPECT_EQ(a.stats().block_bytes, bytes);
  EXPECT_EQ(a.region().last_error(), AllocError::kNone);
  a.region().Validate();
}

TEST(ReapRegionTest, AnEmptySlabIsReusedByAnotherSizeClass) {
  ActorRegion a;
  std::vector<void*> small;
  for (int i = 0; i < 3000; ++i) small.push_back(a.Allocate(16));
  std::set<BlockHeader*> small_slabs;
  for (void* p : small) small_slabs.insert(SlabOf(p));
  for (void* p : small) a.Free(p);
  const size_t after_free = a.stats().block_bytes;
  // Objects of a class the region never used land in the emptied slabs.
  std::vector<void*> large;
  size_t reused = 0;
  for (int i = 0; i < 40; ++i) {
    large.push_back(a.Allocate(1000));
    reused += small_slabs.count(SlabOf(large.back()));
  }
  EXPECT_GT(reused, 0u);
  EXPECT_LE(a.stats().block_bytes, after_free + 4096);
}

TEST(ReapRegionTest, EmptySlabsBeyondTheBoundGoBackToTheThreadCache) {
  ActorRegion a;
  std::vector<void*> objects;
  for (int i = 0; i < 100000; ++i) objects.push_back(a.Allocate(64));
  const RegionStats full = a.stats();
  ASSERT_GT(full.block_bytes, size_t{6} << 20);
  for (void* p : objects) a.Free(p);
  const RegionStats empty = a.stats();
  // Kept: the first block, the class's current slab (256 KiB at most) and empty slabs up to the
  // bound (at most a quarter of the blocks, at least 256 KiB, at most retain_bytes = 1 MiB).
  EXPECT_LE(empty.block_bytes, 2048 + (256 << 10) + (size_t{1} << 20)) << empty.block_bytes;
  EXPECT_EQ(empty.bytes_freed, full.bytes_requested);
}

TEST(ReapRegionTest, RetainBytesZeroGivesBackEveryEmptySlab) {
  ActorRegion a(RegionOptions{.retain_bytes = 0});
  std::vector<void*> objects;
  for (int i = 0; i < 20000; ++i) objects.push_back(a.Allocate(100));
  for (void* p : objects) a.Free(p);
  EXPECT_LE(a.stats().block_bytes, 2048u + (256 << 10));  // the header and the current slab
}

// Under a budget, a class that grew to large slabs refills from the small empty slabs it left
// rather than failing for want of room for a large one.
TEST(ReapRegionTest, UnderABudgetEveryEmptySlabIsReused) {
  ActorRegion a(RegionOptions{.budget_bytes = size_t{160} << 10});
  std::vector<void*> objects;
  while (void* p = a.Allocate(64)) objects.push_back(p);
  const size_t n = objects.size();
  ASSERT_GT(n, 1000u);
  for (void* p : objects) a.Free(p);
  objects.clear();
  for (size_t i = 0; i < n; ++i) {
    void* p = a.Allocate(64);
    ASSERT_NE(p, nullptr) << i << " of " << n;
    objects.push_back(p);
  }
  for (void* p : objects) a.Free(p);
  a.region().Validate();
}

// Issue 11's footprint target: a small operator state costs little.
TEST(ReapRegionTest, NineObjectsOfNineClassesHoldAtMost16KiBOfBlocks) {
  ActorRegion a;
  size_t live = 0;
  std::set<size_t> classes;
  for (size_t size : {24, 48, 80, 160, 320, 640, 1000, 1200, 1500}) {
    void* p = a.Allocate(size);
    ASSERT_NE(p, nullptr);
    std::memset(p, 1, size);
    live += size;
    classes.insert(a.UsableSize(p));
  }
  EXPECT_EQ(classes.size(), 9u);
  EXPECT_GT(live, size_t{4800});
  EXPECT_LE(a.stats().block_bytes, size_t{16} << 10) << a.stats().block_bytes;
}

// A long-lived region whose size mix shifts: phase 1 in small objects, then (once those die)
// phase 2 in larger ones. Memory follows what is live instead of summing each class's peak.
TEST(ReapRegionTest, PhaseShiftPeakBlockBytesStayNearThePeakOfLiveBytes) {
  ActorRegion a;
  std::mt19937 rng(3);
  size_t live = 0;
  size_t peak_live = 0;
  std::vector<void*> objects;
  auto phase = [&](size_t lo, size_t hi, size_t target) {
    while (live < target) {
      void* p = a.Allocate(lo + rng() % (hi - lo + 1));
      live += a.UsableSize(p);
      objects.push_back(p);
    }
    peak_live = std::max(peak_live, live);
    std::shuffle(objects.begin(), objects.end(), rng);
    for (void* p : objects) {
      live -= a.UsableSize(p);
      a.Free(p);
    }
    objects.clear();
  };
  phase(16, 128, size_t{8} << 20);
  phase(256, 2048, size_t{8} << 20);
  phase(16, 128, size_t{8} << 20);
  const double ratio = static_cast<double>(a.stats().peak_block_bytes) / peak_live;
  EXPECT_LE(ratio, 1.25) << a.stats().peak_block_bytes << " / " << peak_live;
}

// A class that went quiet keeps its current slab; another class needing a slab takes it over
// (with no empty slab kept, retain_bytes = 0), and the statistics stay exact across the move:
// the quiet class's unallocated list is not counted as handed out.
TEST(ReapRegionTest, AQuietClasssCurrentSlabIsTakenOverAndStatsStayExact) {
  ActorRegion a(RegionOptions{.retain_bytes = 0});
  std::vector<void*> small;
  for (int i = 0; i < 2000; ++i) small.push_back(a.Allocate(64));
  BlockHeader* current = SlabOf(small.back());
  ASSERT_GE(current->size, size_t{16} << 10);
  for (void* p : small) a.Free(p);
  EXPECT_EQ(a.stats().bytes_freed, size_t{64} * 2000);
  void* big = a.Allocate(1000);
  EXPECT_EQ(SlabOf(big), current);
  const size_t big_size = a.UsableSize(big);
  void* again = a.Allocate(64);  // the quiet class needs a slab of its own again
  EXPECT_NE(SlabOf(again), current);
  RegionStats s = a.stats();
  EXPECT_EQ(s.bytes_requested, size_t{64} * 2001 + big_size);
  EXPECT_EQ(s.bytes_freed, size_t{64} * 2000);
  a.Free(big);
  a.Free(again);
  s = a.stats();
  EXPECT_EQ(s.bytes_freed, s.bytes_requested);
  a.region().Validate();
}

// The checksum an emptied slab is checked with: the sum of its objects' terms is the full
// checksum, and any one object listed twice in place of another changes it.
TEST(ReapRegionTest, TheSlabChecksumMatchesOnlyWhenEachObjectIsListedOnce) {
  std::mt19937 rng(5);
  for (int c = 0; c < internal::kReapNumClasses; ++c) {
    const size_t csize = internal::kReapClasses.size[c];
    for (size_t block : {size_t{1} << 10, size_t{64} << 10, internal::kChunkSize}) {
      if (block < sizeof(BlockHeader) + csize) continue;
      const size_t n = (block - sizeof(BlockHeader)) / csize;
      uint64_t sum = 0;
      for (size_t i = 0; i < n; ++i) sum += internal::ReapChecksumTerm(i * csize);
      ASSERT_EQ(sum, internal::ReapFullChecksum(n, csize)) << csize << " " << n;
      for (int k = 0; k < 64 && n > 1; ++k) {
        const size_t x = rng() % n;
        const size_t y = (x + 1 + rng() % (n - 1)) % n;
        EXPECT_NE(
            sum - internal::ReapChecksumTerm(y * csize) + internal::ReapChecksumTerm(x * csize),
            sum);
      }
    }
  }
}

TEST(ReapRegionTest, StatsCountClassBytesFreesAndDestructors) {
  ActorRegion a;
  void* p = a.Allocate(40);   // class 48
  void* q = a.Allocate(100);  // class 112
  RegionStats s = a.stats();
  EXPECT_EQ(s.bytes_requested, 48u + 112u);
  EXPECT_EQ(s.bytes_freed, 0u);
  a.Free(p);
  s = a.stats();
  EXPECT_EQ(s.bytes_freed, 48u);
  EXPECT_EQ(s.bytes_requested, 48u + 112u);
  // Objects with destructors made by New count as cleanups until deleted.
  auto* str = NewIn<std::string>(a.region(), "a string too long for the small-string buffer");
  EXPECT_EQ(a.stats().cleanups, 1u);
  Delete(str);
  EXPECT_EQ(a.stats().cleanups, 0u);
  a.Free(q);
}

TEST(ReapRegionTest, AlignmentsUpTo64AreServedFromSlabs) {
  ActorRegion a;
  for (size_t align : {32, 64}) {
    for (size_t size : {1, 24, 100, 700, 5000}) {
      void* p = a.Allocate(size, align);
      ASSERT_NE(p, nullptr);
      EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % align, 0u);
      EXPECT_FALSE(SlabOf(p)->dedicated) << size << " " << align;
      EXPECT_EQ(a.UsableSize(p) % align, 0u);
      a.Free(p);
    }
  }
}

TEST(ReapRegionTest, ErrorsLeaveTheRegionUsable) {
  ActorRegion a;
  EXPECT_EQ(a.Allocate(16, 3), nullptr);
  EXPECT_EQ(a.region().last_error(), AllocError::kBadAlignment);
  EXPECT_EQ(a.Allocate(SIZE_MAX - 8), nullptr);
  EXPECT_EQ(a.region().last_error(), AllocError::kBadSize);
  void* p = a.Allocate(0);  // size 0: a unique, freeable object
  ASSERT_NE(p, nullptr);
  EXPECT_NE(a.Allocate(0), p);
  a.Free(p);
}

TEST(ReapRegionTest, ActorAllocatorCallsTheRegionDirectlyAndFreesIntoIt) {
  ActorRegion a;
  using Map = std::unordered_map<int, std::string, std::hash<int>, std::equal_to<int>,
                                 ActorAllocator<std::pair<const int, std::string>>>;
  {
    Map m(16, std::hash<int>(), std::equal_to<int>(), ActorAllocator<int>(a.region()));
    for (int round = 0; round < 20; ++round) {
      for (int i = 0; i < 1000; ++i) m[i].push_back('v');
      for (auto& [k, v] : m) EXPECT_EQ(RegionOf(&v), &a.region());
      m.clear();
    }
    EXPECT_GT(a.stats().bytes_freed, 0u);
  }
  const RegionStats s = a.stats();
  EXPECT_EQ(s.bytes_requested, s.bytes_freed);  // the map gave everything back
}

TEST(ReapRegionTest, GenericRegionCallsDispatchToTheReap) {
  ActorRegion a;
  Region& r = a.region();
  void* p = r.Allocate(200);
  EXPECT_EQ(a.UsableSize(p), 224u);
  r.Deallocate(p, 200);
  EXPECT_EQ(a.stats().bytes_freed, 224u);
  EXPECT_EQ(&r.AsReap(), &a.region());
  auto* n = NewIn<int>(r, 7);  // Region& overload: dispatches on kind()
  EXPECT_EQ(RegionOf(n), &r);
}

using ReapRegionDeathTest = ::testing::Test;

TEST(ReapRegionDeathTest, FreeOfAnObjectWhoseSlabIsAlreadyEmptyIsADoubleFree) {
  EXPECT_DEATH(
      {
        ActorRegion a;
        std::vector<void*> objects;
        for (int i = 0; i < 100; ++i) objects.push_back(a.Allocate(64));
        void* p = objects[0];
        // Empty the first slab (not current any more), then free p again.
        for (int i = 0; i < 15; ++i) a.Free(objects[i]);
        a.Free(p);
      },
      "double free");
}

// Free does not read the object: a second free of an object that is not the head of its slab's
// list is not caught at that Free, but before the memory can be handed out twice: when the slab
// empties (older slabs here; the current slab below)...
TEST(ReapRegionDeathTest, DoubleFreeInAnOlderSlabIsCaughtWhenTheSlabEmpties) {
  EXPECT_DEATH(
      {
        ActorRegion a;
        std::vector<void*> objects;
        for (int i = 0; i < 200; ++i) objects.push_back(a.Allocate(64));  // slabs of 15, 31, ...
        a.Free(objects[0]);
        a.Free(objects[1]);
        a.Free(objects[0]);  // not the head of its slab's list: not caught here
        // 12 more frees take the first slab's (15 objects) live count to 0 with objects[14]
        // still live: the checksum over its free list (objects[0] twice, no objects[14]) does
        // not match.
        for (int i = 2; i < 14; ++i) a.Free(objects[i]);
      },
      "double free: an object was freed twice \\(its emptied slab's free list");
}

// The current slab emptying is not checksummed (it empties every few pairs in a steady
// alloc/free cycle): its 30 objects all allocated, 0 freed twice (not at the head), 29 still
// live when its count reaches 0; the second hand-out of 0 is caught.
TEST(ReapRegionDeathTest, DoubleFreeInTheCurrentSlabIsCaughtWhenHandedOutAgain) {
  EXPECT_DEATH(
      {
        ActorRegion a;
        std::vector<void*> objects;
        for (int i = 0; i < 30; ++i) objects.push_back(a.Allocate(32));  // the first slab, whole
        a.Free(objects[0]);
        a.Free(objects[1]);
        a.Free(objects[0]);
        for (int i = 2; i < 29; ++i) a.Free(objects[i]);
        for (int i = 0; i < 30; ++i) (void)a.Allocate(32);
      },
      "double free: a free object lost its free tag");
}

// The same in a current slab too small to keep (fewer than kOutgrowCapacity objects): its count
// says no object is live when the class refills, so its list must hold each object once.
TEST(ReapRegionDeathTest, DoubleFreeInASmallCurrentSlabIsCaughtWhenItIsOutgrown) {
  EXPECT_DEATH(
      {
        ActorRegion a;
        std::vector<void*> objects;
        for (int i = 0; i < 15; ++i) objects.push_back(a.Allocate(64));  // the first slab, whole
        a.Free(objects[0]);
        a.Free(objects[1]);
        a.Free(objects[0]);
        for (int i = 2; i < 14; ++i) a.Free(objects[i]);
        (void)a.Allocate(64);
      },
      "double free: an object was freed twice");
}

// A free that takes the current slab's count below zero is a double free, reported at once.
TEST(ReapRegionDeathTest, FreeInACurrentSlabWithNoLiveObjectIsFatal) {
  EXPECT_DEATH(
      {
        ActorRegion a;
        std::vector<void*> objects;
        for (int i = 0; i < 15; ++i) objects.push_back(a.Allocate(64));
        for (int i = 0; i < 15; ++i) a.Free(objects[i]);  // the slab, current, empties
        a.Free(objects[3]);                               // not the head
      },
      "double free \\(its slab held no live object\\)");
}

// ... or when the object would be handed out again.
TEST(ReapRegionDeathTest, DoubleFreeInAnOlderSlabIsCaughtWhenItIsHandedOutAgain) {
  EXPECT_DEATH(
      {
        ActorRegion a;
        std::vector<void*> objects;
        for (int i = 0; i < 200; ++i) objects.push_back(a.Allocate(64));
        a.Free(objects[0]);
        a.Free(objects[1]);
        a.Free(objects[0]);
        for (int i = 0; i < 400; ++i) a.Allocate(64);  // the slab becomes current again
      },
      "double free");
}

// ReapObjectKey, Free's one bound-and-start test, against the plain arithmetic at every byte
// offset a slab of any class can hold, from 64 bytes before begin() (the header) to the end of
// the largest slab, for every carved count the slab can have.
TEST(ReapRegionTest, TheObjectKeyAdmitsExactlyTheCarvedObjectStarts) {
  for (int c = 0; c < internal::kReapNumClasses; ++c) {
    const size_t csize = internal::kReapClasses.size[c];
    const int64_t span = static_cast<int64_t>(internal::kChunkSize - sizeof(BlockHeader));
    const uint64_t most = static_cast<uint64_t>(span) / csize;
    const uint64_t all = internal::ReapCarvedKey(most, c);
    ASSERT_EQ(internal::ReapCarvedCount(all, c), most) << csize;
    ASSERT_LT(all, uint64_t{1} << 30) << csize;
    for (int64_t x = -64; x < span; ++x) {
      const uint64_t key = internal::ReapObjectKey(static_cast<size_t>(x), c);
      if (x >= 0 && x % static_cast<int64_t>(csize) == 0) {
        // The start of object k: admitted by exactly the carved counts above k.
        const uint64_t k = static_cast<uint64_t>(x) / csize;
        ASSERT_EQ(key, internal::ReapCarvedKey(k, c)) << csize << " " << x;
      } else {
        ASSERT_GE(key, all) << csize << " " << x;  // no carved count admits it
      }
    }
  }
}

TEST(ReapRegionDeathTest, FreeOfAPointerIntoASlabHeaderIsFatal) {
  // Offsets below begin() that are multiples of the class size: -16, -32, -48, -64.
  for (int back : {16, 32, 48, 64}) {
    EXPECT_DEATH(
        {
          ActorRegion a;
          char* p = static_cast<char*>(a.Allocate(16));
          a.Free(BlockOf(p)->begin() - back);
        },
        "not the start of an object");
  }
}

TEST(ReapRegionDeathTest, FreeOfACarvedObjectNeverHandedOutIsFatal) {
  EXPECT_DEATH(
      {
        ActorRegion a;
        char* p = static_cast<char*>(a.Allocate(64));
        a.Free(p + 64);  // the next object of the slab, carved but not allocated
        // Free does not read the object: caught when it is handed out (twice).
        for (int i = 0; i < 40; ++i) (void)a.Allocate(64);
      },
      "double free");
}

TEST(ReapRegionDeathTest, FreeBeyondTheCarvedPartOfASlabIsFatal) {
  // Slabs of class 16 double (1, 2, 4, 8 KiB); an 8 KiB slab is carved 4 KiB (256 objects) at a
  // time: object 256 is the first one not carved.
  for (int index : {256, 300}) {
    EXPECT_DEATH(
        {
          ActorRegion a;
          char* p;
          do {
            p = static_cast<char*>(a.Allocate(16));
          } while (BlockOf(p)->size < 8192);
          a.Free(BlockOf(p)->begin() + index * 16);
        },
        "not the start of an object");
  }
}

TEST(ReapRegionDeathTest, AsBumpOfAnActorRegionIsFatal) {
  EXPECT_DEATH(
      {
        ActorRegion a;
        static_cast<Region&>(a.region()).AsBump();
      },
      "region #[0-9]+ \\(actor\\) is not a bump region");
}

TEST(ReapRegionDeathTest, FreeOfRegionMetadataIsFatal) {
  EXPECT_DEATH(
      {
        ActorRegion a;
        a.Free(&a.region());
      },
      "not an object \\(region metadata\\)");
}

#if BROOM_ASAN
// ASan builds: objects carved but not handed out, and freed objects, are unaddressable past
// their two list words; a handed-out object is addressable in full. Checked for every object
// of several carving steps, in classes of one line and of several.
TEST(ReapRegionTest, AsanPoisonsCarvedAndFreedObjectsPastTheirListWords) {
  for (const size_t size : {32, 256, 4096}) {
    ActorRegion a;
    std::vector<char*> objects;
    for (size_t i = 0; i < (size_t{64} << 10) / size; ++i) {
      objects.push_back(static_cast<char*>(a.Allocate(size)));
    }
    for (char* p : objects) {
      ASSERT_EQ(__asan_region_is_poisoned(p, size), nullptr) << size;
    }
    // The rest of the last slab's carving step: carved, not handed out.
    char* next = objects.back() + size;
    if (next + size <= BlockOf(next)->end() &&
        next < internal::ReapCarvedEnd(BlockOf(next), BlockOf(next)->object_class)) {
      EXPECT_EQ(__asan_region_is_poisoned(next, 16), nullptr) << size;
      EXPECT_EQ(__asan_region_is_poisoned(next + 16, size - 16), next + 16) << size;
    }
    for (char* p : objects) {
      a.Free(p);
      EXPECT_EQ(__asan_region_is_poisoned(p + 16, size - 16), p + 16) << size;
    }
  }
}

TEST(ReapRegionDeathTest, AsanReportsAReadOfACarvedObjectNotHandedOut) {
  EXPECT_DEATH(
      {
        ActorRegion a;
        char* p = static_cast<char*>(a.Allocate(64));
        volatile char v = p[64 + 32];  // the next object of the carving step, past its list words
        (void)v;
      },
      "use-after-poison");
}
#endif  // BROOM_ASAN

}  // namespace
}  // namespace broom
