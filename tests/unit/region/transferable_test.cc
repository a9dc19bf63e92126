// Tests of TransferableRegion, SharedRegion and Message: typestate, ownership moves, bulk free.
#include <gtest/gtest.h>

#include <cstring>
#include <memory_resource>
#include <thread>
#include <vector>

#include "broom/memory.h"
#include "broom/message.h"
#include "broom/temporary_region.h"
#include "broom/transferable_region.h"

namespace broom {
namespace {

using State = TransferableRegion::State;

TEST(TransferableRegionTest, AllocatesAlignedDisjointMemoryOwnedByTheRegion) {
  TransferableRegion t;
  std::vector<char*> ptrs;
  for (size_t i = 0; i < 10000; ++i) {
    size_t size = 1 + (i * 37) % 300;
    size_t align = size_t{1} << (i % 7);
    auto* p = static_cast<char*>(t.Allocate(size, align));
    ASSERT_NE(p, nullptr);
    ASSERT_EQ(reinterpret_cast<uintptr_t>(p) % align, 0u);
    std::memset(p, static_cast<int>(i), size);
    ASSERT_EQ(RegionOf(p), &t.region());
    ASSERT_EQ(RegionOf(p + size - 1), &t.region());
    ptrs.push_back(p);
  }
  // Every allocation kept its fill: none overlapped another.
  for (size_t i = 0; i < ptrs.size(); ++i) {
    size_t size = 1 + (i * 37) % 300;
    ASSERT_EQ(static_cast<unsigned char>(ptrs[i][size - 1]), static_cast<unsigned char>(i));
  }
  EXPECT_GE(t.stats().block_bytes, t.stats().bytes_requested);
}

TEST(TransferableRegionTest, LargeObjectsGetTheirOwnBlocksAndAreFreedWithTheRegion) {
  TransferableRegion t;
  void* big = t.Allocate(size_t{3} << 20);
  ASSERT_NE(big, nullptr);
  std::memset(big, 1, size_t{3} << 20);
  EXPECT_EQ(RegionOf(static_cast<char*>(big) + (size_t{3} << 20) - 1), &t.region());
  void* small = t.Allocate(16);
  EXPECT_EQ(RegionOf(small), &t.region());
  t.Free();
  EXPECT_EQ(RegionOf(big), nullptr);
  EXPECT_EQ(RegionOf(small), nullptr);
}

TEST(TransferableRegionTest, DeallocatingALargeObjectReleasesItsBlockAtOnce) {
  TransferableRegion t;
  void* keep = t.Allocate(100);
  const size_t base = t.stats().block_bytes;
  // A growing vector: each reallocation frees the previous (large) buffer.
  std::pmr::vector<uint64_t> v(&t.region());
  for (uint64_t i = 0; i < (uint64_t{1} << 20); ++i) v.push_back(i);
  const size_t final_bytes = v.capacity() * sizeof(uint64_t);
  EXPECT_LT(t.stats().block_bytes, base + final_bytes + final_bytes / 4)
      << "old buffers of the vector were kept";
  EXPECT_GT(t.stats().bytes_freed, final_bytes / 2);
  // The region's other memory and the live buffer are intact.
  EXPECT_EQ(RegionOf(keep), &t.region());
  EXPECT_EQ(v[12345], 12345u);
  EXPECT_EQ(RegionOf(v.data() + v.size() - 1), &t.region());
  // Releasing the last large object leaves only the small blocks.
  void* big = t.Allocate(size_t{1} << 20);
  size_t with_big = t.stats().block_bytes;
  t.region().Deallocate(big, size_t{1} << 20);
  EXPECT_LT(t.stats().block_bytes, with_big);
  EXPECT_EQ(RegionOf(big), nullptr);
  // A pointer that is not a large object's start is left to the bulk free.
  void* big2 = t.Allocate(size_t{1} << 20);
  t.region().Deallocate(static_cast<char*>(big2) + 64, (size_t{1} << 20) - 64);
  EXPECT_EQ(RegionOf(big2), &t.region());
}

TEST(TemporaryRegionTest, LargeObjectsStayUntilTheScopeExits) {
  TemporaryRegion tmp;
  TemporaryRegion::Scope outer(tmp);
  void* big = tmp.Allocate(size_t{1} << 20);
  {
    TemporaryRegion::Scope inner(tmp);
    void* inner_big = tmp.Allocate(size_t{1} << 20);
    tmp.region().Deallocate(big, size_t{1} << 20);  // a scope's mark may name this block
    EXPECT_EQ(RegionOf(big), &tmp.region());
    EXPECT_EQ(RegionOf(inner_big), &tmp.region());
  }
  EXPECT_EQ(RegionOf(big), &tmp.region());
}

TEST(TransferableRegionTest, RegionOfIsNullForHeapStackAndFreedMemory) {
  int on_stack = 0;
  auto heap = std::make_unique<int>(1);
  EXPECT_EQ(RegionOf(&on_stack), nullptr);
  EXPECT_EQ(RegionOf(heap.get()), nullptr);
  EXPECT_EQ(RegionOf(nullptr), nullptr);
  void* p;
  {
    TransferableRegion t;
    p = t.Allocate(8);
  }
  EXPECT_EQ(RegionOf(p), nullptr);
}

TEST(TransferableRegionTest, TypestateFollowsOpenTransferAndFree) {
  TransferableRegion t;
  EXPECT_EQ(t.state(), State::kClosed);
  {
    auto s1 = t.Open();
    EXPECT_EQ(t.state(), State::kOpen);
    auto s2 = t.Open();  // re-entrant
    EXPECT_EQ(CurrentRegion(), &t.region());
  }
  EXPECT_EQ(t.state(), State::kClosed);
  TransferableRegion u = t.Transfer();
  EXPECT_EQ(t.state(), State::kTransferred);
  EXPECT_EQ(u.state(), State::kClosed);
  u.Free();
  EXPECT_EQ(u.state(), State::kFreed);
}

TEST(TransferableRegionTest, ZeroSizeGivesNonNullPointer) {
  TransferableRegion t;
  EXPECT_NE(t.Allocate(0), nullptr);
}

TEST(TransferableRegionTest, OverflowingSizesAndBadAlignmentsFailCleanly) {
  TransferableRegion t;
  void* before = t.Allocate(32);
  std::memset(before, 7, 32);
  EXPECT_EQ(t.Allocate(SIZE_MAX), nullptr);
  EXPECT_EQ(t.region().last_error(), AllocError::kBadSize);
  EXPECT_EQ(LastAllocError(), AllocError::kBadSize);
  EXPECT_EQ(t.Allocate(SIZE_MAX - 8, 64), nullptr);
  EXPECT_EQ(t.Allocate(16, 3), nullptr);
  EXPECT_EQ(t.region().last_error(), AllocError::kBadAlignment);
  EXPECT_EQ(t.Allocate(16, 0), nullptr);
  EXPECT_EQ(static_cast<unsigned char*>(before)[31], 7);  // nothing lost
  EXPECT_NE(t.Allocate(16), nullptr);                     // still usable
}

TEST(TransferableRegionTest, SizesAreRoundedUpToSixteenBytes) {
  TransferableRegion t;
  size_t base = t.stats().bytes_requested;
  auto* a = static_cast<char*>(t.Allocate(1, 1));
  auto* b = static_cast<char*>(t.Allocate(24, 8));
  auto* c = static_cast<char*>(t.Allocate(0));
  auto* d = static_cast<char*>(t.Allocate(16));
  EXPECT_EQ(b - a, 16);
  EXPECT_EQ(c - b, 32);
  EXPECT_EQ(d - c, 16);  // size 0 takes one granule: a unique pointer
  for (char* p : {a, b, c, d}) EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % kDefaultAlignment, 0u);
  EXPECT_EQ(t.stats().bytes_requested - base, 16u + 32u + 16u + 16u);
}

TEST(TransferableRegionTest, LargeAlignmentsArePaddedInTheCurrentBlock) {
  TransferableRegion t;
  t.Allocate(16);
  size_t blocks = t.stats().blocks;
  auto* p = static_cast<char*>(t.Allocate(40, 256));
  auto* q = static_cast<char*>(t.Allocate(8));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 256, 0u);
  EXPECT_EQ(q - p, 48);                 // 40 rounded to 48; the bump pointer stays 16-aligned
  EXPECT_EQ(t.stats().blocks, blocks);  // fitted in the block it was in
}

TEST(TransferableRegionTest, DeallocateOfTheLastObjectUndoesItsRoundedSize) {
  TransferableRegion t;
  t.Allocate(16);
  void* p = t.Allocate(20);
  t.region().Deallocate(p, 20);
  EXPECT_EQ(t.Allocate(20), p);
  void* z = t.Allocate(0);
  t.region().Deallocate(z, 0);
  EXPECT_EQ(t.Allocate(1), z);
  void* r = t.Allocate(20);
  t.region().Deallocate(r, 40);  // not the size it was allocated with: nothing undone
  EXPECT_NE(t.Allocate(20), r);
}

TEST(TransferableRegionTest, ResetKeepsBlocksForReuse) {
  TransferableRegion t(RegionOptions{.retain_bytes = size_t{8} << 20});
  for (int i = 0; i < 20000; ++i) t.Allocate(64);
  size_t held = t.stats().block_bytes;
  t.Reset();
  EXPECT_EQ(t.stats().bytes_requested, 0u);
  EXPECT_EQ(t.stats().block_bytes, held);  // kept, within retain_bytes
  for (int i = 0; i < 20000; ++i) t.Allocate(64);
  EXPECT_EQ(t.stats().block_bytes, held);  // refilled without new blocks
}

TEST(TransferableRegionTest, DestructorsRunAtBulkFreeInReverseOrder) {
  static std::vector<int> order;
  order.clear();
  struct Tracked {
    int id;
    ~Tracked() { order.push_back(id); }
  };
  {
    TransferableRegion t;
    for (int i = 0; i < 3; ++i) NewIn<Tracked>(t.region(), i);
    EXPECT_EQ(t.stats().cleanups, 3u);
  }
  EXPECT_EQ(order, (std::vector<int>{2, 1, 0}));
}

TEST(TransferableRegionTest, FreedOnAnotherThreadByTheLastOwner) {
  GlobalStats before = GetGlobalStats();
  TransferableRegion t;
  auto* p = static_cast<int*>(t.Allocate(sizeof(int) * 1000));
  for (int i = 0; i < 1000; ++i) p[i] = i;
  std::thread consumer([r = t.Transfer()]() mutable {
    auto* q = static_cast<int*>(r.Allocate(4));
    *q = 5;
    r.Free();
  });
  consumer.join();
  GlobalStats after = GetGlobalStats();
  EXPECT_EQ(after.live(RegionKind::kTransferable), before.live(RegionKind::kTransferable));
  EXPECT_EQ(RegionOf(p), nullptr);
}

TEST(SharedRegionTest, FreesOnTheLastReleaseOnAnyThread) {
  TransferableRegion t;
  auto* p = static_cast<int*>(t.Allocate(sizeof(int)));
  *p = 42;
  SharedRegion shared = std::move(t).Share();
  EXPECT_EQ(t.state(), State::kTransferred);
  std::vector<std::thread> readers;
  std::atomic<int> sum{0};
  for (int i = 0; i < 4; ++i) {
    readers.emplace_back([copy = shared, p, &sum] { sum += *p; });
  }
  EXPECT_GE(shared.use_count(), 1u);
  shared.reset();
  for (auto& th : readers) th.join();
  EXPECT_EQ(sum.load(), 4 * 42);
  EXPECT_EQ(RegionOf(p), nullptr);
}

struct Batch {
  using allocator_type = std::pmr::polymorphic_allocator<std::byte>;
  explicit Batch(const allocator_type& a) : values(a) {}
  Batch(const Batch& o, const allocator_type& a) : values(o.values, a) {}
  std::pmr::vector<long> values;
};

TEST(MessageTest, RootAndNestedDataLiveInTheMessageRegion) {
  auto m = Message<Batch>::Create();
  {
    auto open = m.Open();
    for (long i = 0; i < 1000; ++i) m->values.push_back(i);
  }
  EXPECT_EQ(RegionOf(m.get()), &m.region().region());
  EXPECT_EQ(RegionOf(m->values.data()), &m.region().region());
  Message<Batch> moved = std::move(m);
  EXPECT_FALSE(m);
  EXPECT_EQ(moved->values.size(), 1000u);
}

TEST(MessageTest, CloneOfCopiesIntoAFreshSelfContainedRegion) {
  auto in = Message<Batch>::Create();
  for (long i = 0; i < 10; ++i) in->values.push_back(i);
  auto out = Message<Batch>::CloneOf(*in);
  EXPECT_EQ(RegionOf(out->values.data()), &out.region().region());
  in.region().Free();
  EXPECT_EQ(out->values[9], 9);
}

TEST(MessageTest, ReleaseAndAdoptCarryTheRegionThroughRawPointers) {
  auto m = Message<Batch>::Create();
  m->values.push_back(3);
  auto [region, root] = m.Release();
  auto back = Message<Batch>::Adopt(region, root);
  EXPECT_EQ(back->values[0], 3);
}

// The typestate's fatal misuse (free, transfer or open in the wrong state, use after move or
// free, empty messages) is tested in tests/reliability/misuse_death_test.cc.
using TransferableRegionDeathTest = ::testing::Test;

TEST(TransferableRegionDeathTest, DestroyingAnOpenRegionIsFatal) {
  EXPECT_DEATH(
      {
        auto* t = new TransferableRegion();
        ContextScope s(t->region());
        delete t;
      },
      "destruction of TransferableRegion of region .* while it is open");
}

}  // namespace
}  // namespace broom

#if BROOM_ASAN
namespace broom {
namespace {
// ASan builds poison region memory when it is freed in bulk or rewound.
TEST(TransferableRegionDeathTest, AsanReportsReadAfterBulkFree) {
  EXPECT_DEATH(
      {
        auto* t = new TransferableRegion();
        auto* p = static_cast<volatile int*>(t->Allocate(64));
        *p = 1;
        delete t;
        int v = *p;
        (void)v;
      },
      "use-after-poison");
}

TEST(TemporaryRegionDeathTest, AsanReportsReadAfterScopeExit) {
  EXPECT_DEATH(
      {
        TemporaryRegion scratch;
        volatile int* p;
        {
          TemporaryRegion::Scope s(scratch);
          p = NewIn<int>(scratch.region(), 5);
        }
        int v = *p;
        (void)v;
      },
      "use-after-poison");
}
}  // namespace
}  // namespace broom
#endif
