// Copyright Broom authors.
//
// The shim's logic through the prefixed build (broom_malloc, broom_free, ...): nothing is
// interposed, so these tests run inside an ordinary test binary.
#include "runtime_shims/preload/shim.h"

#include <errno.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <new>
#include <set>
#include <thread>

#include "broom/c/broom.h"
#include "gtest/gtest.h"
#include "runtime_shims/preload/backend.h"
#include "runtime_shims/preload/operators.h"

extern "C" {
void* broom_malloc(size_t);
void broom_free(void*);
void* broom_calloc(size_t, size_t);
void* broom_realloc(void*, size_t);
void* broom_reallocarray(void*, size_t, size_t);
int broom_posix_memalign(void**, size_t, size_t);
void* broom_aligned_alloc(size_t, size_t);
void* broom_memalign(size_t, size_t);
void* broom_valloc(size_t);
void* broom_pvalloc(size_t);
size_t broom_malloc_usable_size(void*);
}

namespace {

bool Aligned(const void* p, size_t a) { return reinterpret_cast<uintptr_t>(p) % a == 0; }

class ShimTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // As the library constructor does: jemalloc's own malloc/realloc/... instead of the boot
    // wrappers over mallocx (whose errno and alignment behaviour differ).
    broom::preload::ResolveBackend();
    ASSERT_TRUE(broom::preload::BackendResolved());
    broom::preload::Configure(broom::preload::Config{});
  }
};

TEST_F(ShimTest, MallocZeroReturnsUniquePointers) {
  std::set<void*> seen;
  for (int i = 0; i < 100; ++i) {
    void* p = broom_malloc(0);
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(seen.insert(p).second);
  }
  for (void* p : seen) broom_free(p);
}

TEST_F(ShimTest, CallocAndReallocarrayDetectOverflow) {
  errno = 0;
  EXPECT_EQ(broom_calloc(SIZE_MAX / 2, 3), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  void* p = broom_malloc(8);
  errno = 0;
  EXPECT_EQ(broom_reallocarray(p, SIZE_MAX / 4, 8), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  broom_free(p);  // untouched by the failed call
  int* z = static_cast<int*>(broom_calloc(100, sizeof(int)));
  for (int i = 0; i < 100; ++i) EXPECT_EQ(z[i], 0);
  broom_free(z);
}

TEST_F(ShimTest, HugeRequestsFailWithEnomem) {
  errno = 0;
  EXPECT_EQ(broom_malloc(SIZE_MAX - 4096), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  void* p = broom_malloc(16);
  errno = 0;
  EXPECT_EQ(broom_realloc(p, SIZE_MAX - 4096), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  broom_free(p);
}

TEST_F(ShimTest, HugeReallocsSetEnomemAndKeepTheBlock) {
  // jemalloc's realloc returns null with errno untouched for these; Broom sets ENOMEM.
  for (size_t n : {SIZE_MAX, SIZE_MAX - 4096, size_t{PTRDIFF_MAX}, size_t{PTRDIFF_MAX} + 1}) {
    char* p = static_cast<char*>(broom_malloc(16));
    std::strcpy(p, "kept");
    errno = 0;
    EXPECT_EQ(broom_realloc(p, n), nullptr) << n;
    EXPECT_EQ(errno, ENOMEM) << n;
    errno = 0;
    EXPECT_EQ(broom_reallocarray(p, 1, n), nullptr) << n;
    EXPECT_EQ(errno, ENOMEM) << n;
    errno = 0;
    EXPECT_EQ(broom_realloc(nullptr, n), nullptr) << n;
    EXPECT_EQ(errno, ENOMEM) << n;
    EXPECT_STREQ(p, "kept");
    broom_free(p);
    for (broom_kind_t kind : {BROOM_TRANSFERABLE, BROOM_ACTOR, BROOM_TEMPORARY}) {
      broom_region_t* r = broom_region_create(kind, nullptr);
      ASSERT_EQ(broom_region_push(r), 0);
      char* q = static_cast<char*>(broom_malloc(16));
      std::strcpy(q, "kept");
      errno = 0;
      void* fail = broom_realloc(q, n);
      int e = errno;
      ASSERT_EQ(broom_region_pop(r), 0);
      EXPECT_EQ(fail, nullptr) << kind << " " << n;
      EXPECT_EQ(e, ENOMEM) << kind << " " << n;
      EXPECT_STREQ(q, "kept");
      EXPECT_EQ(broom_region_destroy(r), 0);
    }
  }
}

TEST_F(ShimTest, EveryFailingAlignedEntryPointSetsErrno) {
  for (size_t n : {SIZE_MAX, size_t{PTRDIFF_MAX} + 1}) {
    errno = 0;
    EXPECT_EQ(broom_aligned_alloc(64, n), nullptr);
    EXPECT_EQ(errno, ENOMEM);
    errno = 0;
    EXPECT_EQ(broom_memalign(16, n), nullptr);
    EXPECT_EQ(errno, ENOMEM);
    errno = 0;
    EXPECT_EQ(broom_valloc(n), nullptr);
    EXPECT_EQ(errno, ENOMEM);
    errno = 0;
    EXPECT_EQ(broom_pvalloc(n), nullptr);
    EXPECT_EQ(errno, ENOMEM);
    errno = 0;
    EXPECT_EQ(broom_calloc(1, n), nullptr);
    EXPECT_EQ(errno, ENOMEM);
    // posix_memalign reports through its result only.
    errno = 1234;
    void* keep = &keep;
    EXPECT_EQ(broom_posix_memalign(&keep, 16, n), ENOMEM);
    EXPECT_EQ(errno, 1234);
    EXPECT_EQ(keep, &keep);
  }
}

// posix_memalign, memalign, aligned_alloc and aligned operator new at every power-of-two
// alignment and small sizes (0 included), on the heap and in each kind of region. Several blocks
// stay live at once: jemalloc hands back the block just freed, which would hide a misaligned
// size class (jemalloc aligns requests under 16 bytes to 8 only).
TEST_F(ShimTest, AlignedEntryPointsHonourEveryAlignmentAtEverySize) {
  auto check_all = [](const char* where) {
    constexpr int kLive = 4;
    void* live[kLive];
    for (size_t align = 1; align <= 8192; align *= 2) {
      for (size_t size : {size_t{0}, size_t{1}, size_t{7}, size_t{8}, size_t{9}, size_t{15},
                          size_t{16}, size_t{17}, size_t{24}, align - 1, align, align + 1}) {
        SCOPED_TRACE(testing::Message() << where << " align " << align << " size " << size);
        auto check = [&](void* p) {
          ASSERT_NE(p, nullptr);
          EXPECT_TRUE(Aligned(p, align)) << p;
          EXPECT_GE(broom_malloc_usable_size(p), size);
        };
        if (align >= sizeof(void*)) {
          for (void*& p : live) {
            ASSERT_EQ(broom_posix_memalign(&p, align, size), 0);
            check(p);
          }
          for (void* p : live) broom_free(p);
        }
        for (void*& p : live) check(p = broom_memalign(align, size));
        for (void* p : live) broom_free(p);
        for (void*& p : live) check(p = broom_aligned_alloc(align, size));
        for (void* p : live) broom_free(p);
        for (void*& p : live) check(p = broom::preload::OperatorNew(size, align, false, nullptr));
        for (void* p : live) broom::preload::OperatorDelete(p, size, align);  // sized
        for (void*& p : live) check(p = broom::preload::OperatorNew(size, align, true, nullptr));
        for (void* p : live) broom::preload::OperatorDelete(p, 0, align);  // unsized
      }
    }
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    for (size_t size : {size_t{0}, size_t{1}, page - 1, page, page + 1}) {
      for (void*& p : live) {
        p = broom_valloc(size);
        EXPECT_TRUE(Aligned(p, page));
        EXPECT_GE(broom_malloc_usable_size(p), size);
      }
      for (void* p : live) broom_free(p);
      for (void*& p : live) {
        p = broom_pvalloc(size);
        EXPECT_TRUE(Aligned(p, page));
        EXPECT_GE(broom_malloc_usable_size(p), size == 0 ? page : (size + page - 1) / page * page);
      }
      for (void* p : live) broom_free(p);
    }
  };
  check_all("heap");
  for (broom_kind_t kind : {BROOM_TRANSFERABLE, BROOM_ACTOR, BROOM_TEMPORARY}) {
    broom_region_t* r = broom_region_create(kind, nullptr);
    ASSERT_EQ(broom_region_push(r), 0);
    check_all(kind == BROOM_TRANSFERABLE ? "transferable"
              : kind == BROOM_ACTOR      ? "actor"
                                         : "temporary");
    ASSERT_EQ(broom_region_pop(r), 0);
    EXPECT_EQ(broom_region_destroy(r), 0);
  }
}

TEST_F(ShimTest, AlignmentErrorsAreEinval) {
  void* p = nullptr;
  EXPECT_EQ(broom_posix_memalign(&p, 3, 16), EINVAL);
  EXPECT_EQ(broom_posix_memalign(&p, 4, 16), EINVAL);  // not a multiple of sizeof(void*)
  EXPECT_EQ(broom_posix_memalign(&p, 24, 16), EINVAL);
  EXPECT_EQ(p, nullptr);
  ASSERT_EQ(broom_posix_memalign(&p, 256, 10), 0);
  EXPECT_TRUE(Aligned(p, 256));
  broom_free(p);
  errno = 0;
  EXPECT_EQ(broom_aligned_alloc(0, 16), nullptr);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(broom_aligned_alloc(48, 96), nullptr);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(broom_memalign(SIZE_MAX / 2 + 2, 16), nullptr);
  EXPECT_EQ(errno, EINVAL);
  // posix_memalign returns EINVAL and leaves errno and *memptr alone.
  errno = 1234;
  void* keep = &keep;
  EXPECT_EQ(broom_posix_memalign(&keep, 12, 16), EINVAL);
  EXPECT_EQ(errno, 1234);
  EXPECT_EQ(keep, &keep);
}

TEST_F(ShimTest, AlignedFamilyHonoursAlignment) {
  void* a = broom_aligned_alloc(4096, 100);
  void* m = broom_memalign(48, 10);  // glibc rounds 48 up to 64
  void* v = broom_valloc(1);
  void* pv = broom_pvalloc(1);
  long page = sysconf(_SC_PAGESIZE);
  EXPECT_TRUE(Aligned(a, 4096));
  EXPECT_TRUE(Aligned(m, 64));
  EXPECT_TRUE(Aligned(v, static_cast<size_t>(page)));
  EXPECT_TRUE(Aligned(pv, static_cast<size_t>(page)));
  EXPECT_GE(broom_malloc_usable_size(pv), static_cast<size_t>(page));
  for (void* p : {a, m, v, pv}) broom_free(p);
}

TEST_F(ShimTest, ReallocFollowsGlibc) {
  char* p = static_cast<char*>(broom_realloc(nullptr, 10));
  ASSERT_NE(p, nullptr);
  std::memcpy(p, "abcdefghi", 10);
  p = static_cast<char*>(broom_realloc(p, 100000));
  EXPECT_STREQ(p, "abcdefghi");
  EXPECT_EQ(broom_realloc(p, 0), nullptr);  // frees
  void* z = broom_realloc(nullptr, 0);      // malloc(0)
  EXPECT_NE(z, nullptr);
  broom_free(z);
  broom_free(nullptr);
  EXPECT_EQ(broom_malloc_usable_size(nullptr), 0u);
}

TEST_F(ShimTest, UsableSizeCoversTheRequest) {
  for (size_t n : {0u, 1u, 15u, 16u, 100u, 4096u, 100000u, 5000000u}) {
    void* p = broom_malloc(n);
    size_t u = broom_malloc_usable_size(p);
    EXPECT_GE(u, n);
    std::memset(p, 0xab, u);  // the whole usable size is writable
    broom_free(p);
  }
}

TEST_F(ShimTest, PushedTransferableRegionReceivesMallocAndFreeIsANoOp) {
  broom_region_t* r = broom_region_create(BROOM_TRANSFERABLE, nullptr);
  ASSERT_NE(r, nullptr);
  ASSERT_EQ(broom_region_push(r), 0);
  EXPECT_EQ(broom_current_region(), r);
  void* p = broom_malloc(100);
  void* q = broom_calloc(10, 10);
  broom_region_stats_t before;
  broom_region_stats(r, &before);
  broom_free(p);  // no-op: bulk free
  broom_region_stats_t after;
  broom_region_stats(r, &after);
  EXPECT_EQ(broom_region_pop(r), 0);
  EXPECT_EQ(broom_current_region(), nullptr);
  EXPECT_EQ(broom_region_of(p), r);
  EXPECT_EQ(broom_region_of(q), r);
  EXPECT_EQ(broom_malloc_usable_size(p), 100u);
  EXPECT_EQ(before.bytes_requested, after.bytes_requested);
  // bytes_requested counts bump bytes: each 116-byte request (size header included) is
  // rounded up to a multiple of 16.
  EXPECT_EQ(before.bytes_requested, 2 * 128u);
  void* h = broom_malloc(100);  // popped: heap
  EXPECT_EQ(broom_region_of(h), nullptr);
  broom_free(h);
  EXPECT_EQ(broom_region_destroy(r), 0);
}

TEST_F(ShimTest, ActorRegionFreeReusesMemory) {
  broom_region_t* r = broom_region_create(BROOM_ACTOR, nullptr);
  ASSERT_EQ(broom_region_push(r), 0);
  void* a = broom_malloc(48);
  broom_free(a);
  // Freed memory is handed out again once the slab's current free list runs out (not at once:
  // consecutive allocations walk the slab in address order).
  void* b = nullptr;
  std::vector<void*> others;
  for (int i = 0; i < 4096 && b != a; ++i) {
    b = broom_malloc(48);
    if (b != a) others.push_back(b);
  }
  EXPECT_EQ(a, b);
  for (void* o : others) broom_free(o);
  void* big = broom_aligned_alloc(256, 1000);
  EXPECT_TRUE(Aligned(big, 256));
  EXPECT_EQ(broom_malloc_usable_size(big), 1000u);
  broom_free(big);
  broom_region_stats_t s;
  broom_region_stats(r, &s);
  EXPECT_GT(s.bytes_freed, 0u);
  EXPECT_EQ(broom_region_pop(r), 0);
  broom_free(b);
  EXPECT_EQ(broom_region_destroy(r), 0);
}

TEST_F(ShimTest, TemporaryPopFreesWhatThePushAllocated) {
  broom_region_t* r = broom_region_create(BROOM_TEMPORARY, nullptr);
  broom_region_stats_t s0, s1, s2;
  broom_region_stats(r, &s0);
  ASSERT_EQ(broom_region_push(r), 0);
  for (int i = 0; i < 1000; ++i) broom_malloc(1000);
  broom_region_stats(r, &s1);
  ASSERT_EQ(broom_region_pop(r), 0);
  broom_region_stats(r, &s2);
  // Each 1016-byte request (size header included) is rounded up to 1024 bytes; block changes
  // leave tails unused (not counted), so allow up to 8 more bytes per object.
  EXPECT_GE(s1.bytes_requested - s0.bytes_requested, 1000u * 1016u);
  EXPECT_LE(s1.bytes_requested - s0.bytes_requested, 1000u * 1032u);
  EXPECT_EQ(s2.bytes_requested, s0.bytes_requested);
  EXPECT_EQ(broom_region_destroy(r), 0);
}

TEST_F(ShimTest, ReallocMovesBetweenHeapAndRegionBothWays) {
  broom_region_t* r = broom_region_create(BROOM_TRANSFERABLE, nullptr);
  char* h = static_cast<char*>(broom_malloc(32));
  std::strcpy(h, "from the heap");
  ASSERT_EQ(broom_region_push(r), 0);
  char* in = static_cast<char*>(broom_realloc(h, 64));  // heap -> region
  EXPECT_EQ(broom_region_of(in), r);
  EXPECT_STREQ(in, "from the heap");
  // Growing the last object of the current region happens in place.
  char* grown = static_cast<char*>(broom_realloc(in, 1000));
  EXPECT_EQ(grown, in);
  EXPECT_EQ(broom_malloc_usable_size(grown), 1000u);
  // Growing past the block moves it, keeping the bytes.
  char* moved = static_cast<char*>(broom_realloc(grown, 200000));
  EXPECT_STREQ(moved, "from the heap");
  EXPECT_EQ(broom_region_of(moved), r);
  EXPECT_EQ(broom_region_pop(r), 0);
  char* out = static_cast<char*>(broom_realloc(moved, 300000));  // region -> heap
  EXPECT_EQ(broom_region_of(out), nullptr);
  EXPECT_STREQ(out, "from the heap");
  broom_free(out);
  EXPECT_EQ(broom_region_destroy(r), 0);
}

TEST_F(ShimTest, MisuseReturnsErrorCodes) {
  broom_region_t* t = broom_region_create(BROOM_TRANSFERABLE, nullptr);
  broom_region_t* a = broom_region_create(BROOM_ACTOR, nullptr);
  EXPECT_EQ(broom_region_create(static_cast<broom_kind_t>(7), nullptr), nullptr);
  EXPECT_EQ(broom_region_pop(t), EINVAL);  // not pushed
  ASSERT_EQ(broom_region_push(t), 0);
  ASSERT_EQ(broom_region_push(a), 0);
  EXPECT_EQ(broom_region_pop(t), EINVAL);  // not on top
  EXPECT_EQ(broom_region_destroy(a), EBUSY);
  EXPECT_EQ(broom_region_release(a), EINVAL);  // not transferable
  EXPECT_EQ(broom_region_pop(a), 0);
  EXPECT_EQ(broom_region_release(t), EBUSY);  // pushed
  EXPECT_EQ(broom_region_pop(t), 0);
  EXPECT_EQ(broom_region_adopt(t), EINVAL);  // not released
  EXPECT_EQ(broom_region_release(t), 0);
  EXPECT_EQ(broom_region_push(t), EINVAL);  // in transit
  EXPECT_EQ(broom_region_destroy(t), EINVAL);
  EXPECT_EQ(broom_region_adopt(t), 0);
  EXPECT_EQ(broom_region_destroy(t), 0);
  EXPECT_EQ(broom_region_destroy(a), 0);
  EXPECT_EQ(broom_region_destroy(nullptr), 0);
}

TEST_F(ShimTest, TransferableRegionMovesToAnotherThread) {
  broom_region_t* r = broom_region_create(BROOM_TRANSFERABLE, nullptr);
  ASSERT_EQ(broom_region_push(r), 0);
  int* v = static_cast<int*>(broom_malloc(1000 * sizeof(int)));
  for (int i = 0; i < 1000; ++i) v[i] = i;
  ASSERT_EQ(broom_region_pop(r), 0);
  ASSERT_EQ(broom_region_release(r), 0);
  long sum = 0;
  int push_before_adopt = -1, destroy = -1;
  std::thread consumer([&] {
    push_before_adopt = broom_region_push(r);
    ASSERT_EQ(broom_region_adopt(r), 0);
    for (int i = 0; i < 1000; ++i) sum += v[i];
    broom_free(v);  // no-op on a transferable region, from any thread
    destroy = broom_region_destroy(r);
  });
  consumer.join();
  EXPECT_EQ(push_before_adopt, EINVAL);
  EXPECT_EQ(sum, 999 * 1000 / 2);
  EXPECT_EQ(destroy, 0);
}

TEST_F(ShimTest, TemporaryRegionRefusesOtherThreads) {
  broom_region_t* r = broom_region_create(BROOM_TEMPORARY, nullptr);
  int rc = 0;
  std::thread other([&] { rc = broom_region_push(r); });
  other.join();
  EXPECT_EQ(rc, EINVAL);
  EXPECT_EQ(broom_region_destroy(r), 0);
}

TEST_F(ShimTest, RegionAllocMemoryBehavesLikeMallocRoutedMemory) {
  broom_region_t* r = broom_region_create(BROOM_ACTOR, nullptr);
  void* p = broom_region_alloc(r, 40, 64);
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(Aligned(p, 64));
  EXPECT_EQ(broom_malloc_usable_size(p), 40u);
  EXPECT_EQ(broom_region_of(p), r);
  broom_free(p);
  errno = 0;
  EXPECT_EQ(broom_region_alloc(r, 8, 3), nullptr);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(broom_region_destroy(r), 0);
}

TEST_F(ShimTest, BudgetExhaustionIsEnomem) {
  broom_region_options_t o = {16384, "tiny"};
  broom_region_t* r = broom_region_create(BROOM_TRANSFERABLE, &o);
  ASSERT_EQ(broom_region_push(r), 0);
  errno = 0;
  void* p = broom_malloc(1 << 20);
  int e = errno;
  ASSERT_EQ(broom_region_pop(r), 0);
  EXPECT_EQ(p, nullptr);
  EXPECT_EQ(e, ENOMEM);
  EXPECT_EQ(broom_region_destroy(r), 0);
}

TEST_F(ShimTest, CheckPointerFindsDanglingRegionPointers) {
  broom_region_t* r = broom_region_create(BROOM_TRANSFERABLE, nullptr);
  void* p = broom_region_alloc(r, 64, 0);
  int heap = 0;
  EXPECT_EQ(broom_check_pointer(&heap), 0);
  EXPECT_EQ(broom_check_pointer(p), 1);
  EXPECT_EQ(broom_region_destroy(r), 0);
  EXPECT_EQ(broom_check_pointer(p), -1);
  EXPECT_EQ(broom_region_of(p), nullptr);
  broom_free(p);  // without checks: ignored
}

TEST_F(ShimTest, CheckedModeDiagnosesFreeOfADestroyedRegionPointer) {
  EXPECT_DEATH(
      {
        broom::preload::Config c;
        c.checks = true;
        broom::preload::Configure(c);
        broom_region_t* r = broom_region_create(BROOM_TRANSFERABLE, nullptr);
        void* p = broom_region_alloc(r, 64, 0);
        broom_region_destroy(r);
        broom_free(p);
      },
      "pointer into a destroyed region");
}

TEST_F(ShimTest, ReallocOfADestroyedRegionPointerIsAlwaysFatal) {
  EXPECT_DEATH(
      {
        broom_region_t* r = broom_region_create(BROOM_ACTOR, nullptr);
        void* p = broom_region_alloc(r, 64, 0);
        broom_region_destroy(r);
        broom_realloc(p, 128);
      },
      "realloc.*destroyed region");
}

TEST_F(ShimTest, StatsCountHeapAndRegionMallocs) {
  broom::preload::Config c;
  c.stats = true;
  broom::preload::Configure(c);
  broom_global_stats_t g0, g1;
  broom_global_stats(&g0);
  for (int i = 0; i < 10; ++i) broom_free(broom_malloc(64));
  broom_region_t* r = broom_region_create(BROOM_TEMPORARY, nullptr);
  broom_region_push(r);
  for (int i = 0; i < 5; ++i) broom_malloc(64);
  broom_region_pop(r);
  broom_global_stats(&g1);
  EXPECT_EQ(g1.heap_mallocs - g0.heap_mallocs, 10u);
  EXPECT_EQ(g1.region_mallocs[BROOM_TEMPORARY] - g0.region_mallocs[BROOM_TEMPORARY], 5u);
  EXPECT_EQ(g1.regions_live[BROOM_TEMPORARY] - g0.regions_live[BROOM_TEMPORARY], 1u);
  broom_region_destroy(r);
  broom::preload::Configure(broom::preload::Config{});
}

TEST_F(ShimTest, ThreadExitFoldsTheThreadsCounters) {
  broom::preload::Config c;
  c.stats = true;
  broom::preload::Configure(c);
  broom_global_stats_t g0, g1;
  broom_global_stats(&g0);
  for (int round = 0; round < 3; ++round) {
    std::thread t([] {
      for (int i = 0; i < 100; ++i) broom_free(broom_malloc(32));
      broom_region_t* r = broom_region_create(BROOM_ACTOR, nullptr);
      broom_region_push(r);
      broom_free(broom_malloc(32));
      broom_region_pop(r);
      broom_region_destroy(r);
    });
    t.join();
  }
  broom_global_stats(&g1);
  EXPECT_EQ(g1.heap_mallocs - g0.heap_mallocs, 300u);
  EXPECT_EQ(g1.region_mallocs[BROOM_ACTOR] - g0.region_mallocs[BROOM_ACTOR], 3u);
  EXPECT_EQ(g1.regions_live[BROOM_ACTOR], g0.regions_live[BROOM_ACTOR]);
  broom::preload::Configure(broom::preload::Config{});
}

TEST_F(ShimTest, OperatorNewThrowsOrReturnsNullAndCallsTheHandler) {
  using broom::preload::OperatorDelete;
  using broom::preload::OperatorNew;
  EXPECT_THROW(OperatorNew(SIZE_MAX - 100, 0, false, nullptr), std::bad_alloc);
  EXPECT_EQ(OperatorNew(SIZE_MAX - 100, 0, true, nullptr), nullptr);
  static int calls = 0;
  std::set_new_handler([] {
    if (++calls == 3) std::set_new_handler(nullptr);
  });
  EXPECT_EQ(OperatorNew(SIZE_MAX - 100, 64, true, nullptr), nullptr);
  EXPECT_EQ(calls, 3);
  void* p = OperatorNew(100, 128, false, nullptr);
  EXPECT_TRUE(Aligned(p, 128));
  OperatorDelete(p, 100, 128);
  void* q = OperatorNew(0, 0, false, nullptr);
  EXPECT_NE(q, nullptr);
  OperatorDelete(q, 0, 0);
}

TEST_F(ShimTest, OperatorNewRoutesIntoThePushedRegion) {
  broom_region_t* r = broom_region_create(BROOM_ACTOR, nullptr);
  broom_region_push(r);
  void* p = broom::preload::OperatorNew(24, 0, false, nullptr);
  void* q = broom::preload::OperatorNew(24, 64, false, nullptr);
  broom_region_pop(r);
  EXPECT_EQ(broom_region_of(p), r);
  EXPECT_TRUE(Aligned(q, 64));
  broom::preload::OperatorDelete(p, 24, 0);
  broom::preload::OperatorDelete(q, 24, 64);
  broom_region_stats_t s;
  broom_region_stats(r, &s);
  EXPECT_GT(s.bytes_freed, 0u);
  broom_region_destroy(r);
}

}  // namespace
