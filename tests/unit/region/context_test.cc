// Tests of the allocation context and typed helpers.
#include "broom/context.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "broom/actor_region.h"
#include "broom/clone.h"
#include "broom/temporary_region.h"
#include "broom/transferable_region.h"

namespace broom {
namespace {

TEST(ContextTest, StackNestsAndUnwinds) {
  EXPECT_EQ(CurrentRegion(), nullptr);
  TransferableRegion a;
  ActorRegion b;
  {
    ContextScope sa(a.region());
    EXPECT_EQ(CurrentRegion(), &a.region());
    {
      ContextScope sb(b.region());
      EXPECT_EQ(CurrentRegion(), &b.region());
      EXPECT_EQ(CurrentResource(), b.region().resource());
    }
    EXPECT_EQ(CurrentRegion(), &a.region());
  }
  EXPECT_EQ(CurrentRegion(), nullptr);
  EXPECT_EQ(CurrentResource(), HeapResource());
}

TEST(ContextTest, NewAllocatesInTheTopRegionOrOnTheHeap) {
  int* heap = New<int>(1);
  EXPECT_EQ(RegionOf(heap), nullptr);
  Delete(heap);
  TransferableRegion t;
  auto open = t.Open();
  int* in = New<int>(2);
  EXPECT_EQ(RegionOf(in), &t.region());
  Delete(in);  // no-op in a transferable region
  EXPECT_EQ(*in, 2);
}

template <class Map>
void FillAndCheck(Map& m, Region& r) {
  for (int i = 0; i < 5000; ++i) m[i] = i * 2;
  for (int i = 0; i < 5000; ++i) ASSERT_EQ(m[i], i * 2);
  (void)r;
}

TEST(ContextTest, AllocatorWorksWithStdAndAbslContainers) {
  TransferableRegion t;
  auto open = t.Open();
  std::vector<int, Allocator<int>> v;
  for (int i = 0; i < 10000; ++i) v.push_back(i);
  EXPECT_EQ(RegionOf(v.data()), &t.region());

  std::unordered_map<int, int, std::hash<int>, std::equal_to<int>,
                     Allocator<std::pair<const int, int>>>
      um;
  FillAndCheck(um, t.region());

  absl::flat_hash_map<int, int, absl::Hash<int>, std::equal_to<int>,
                      Allocator<std::pair<const int, int>>>
      fm;
  FillAndCheck(fm, t.region());

  std::map<int, int, std::less<int>, Allocator<std::pair<const int, int>>> om;
  FillAndCheck(om, t.region());
  EXPECT_GT(t.stats().bytes_requested, 10000 * sizeof(int));
}

TEST(ContextTest, ContainerCopyLandsInTheRegionOpenAtTheCopy) {
  TransferableRegion a, b;
  std::vector<int, Allocator<int>> va(Allocator<int>(a.region()));
  va.assign(100, 7);
  auto open = b.Open();
  std::vector<int, Allocator<int>> vb = va;  // select_on_container_copy_construction
  EXPECT_EQ(RegionOf(vb.data()), &b.region());
  EXPECT_EQ(RegionOf(va.data()), &a.region());
}

TEST(ContextTest, ContextResourceFollowsTheTopAndFreesIntoTheOwner) {
  std::pmr::memory_resource* r = ContextResource();
  ActorRegion actor;
  void* p;
  {
    ContextScope s(actor.region());
    p = r->allocate(64, 16);
    EXPECT_EQ(RegionOf(p), &actor.region());
  }
  r->deallocate(p, 64, 16);  // freed into the actor region although it is no longer on top
  EXPECT_EQ(actor.stats().bytes_freed, 64u);
  void* h = r->allocate(64, 16);
  EXPECT_EQ(RegionOf(h), nullptr);
  r->deallocate(h, 64, 16);
}

TEST(ContextTest, NewArrayChecksOverflowAndRunsDestructors) {
  TransferableRegion t;
  EXPECT_THROW(NewArrayIn<uint64_t>(t.region(), SIZE_MAX / 4), std::bad_alloc);
  static int destroyed = 0;
  destroyed = 0;
  struct D {
    D() noexcept {}
    ~D() { ++destroyed; }
  };
  {
    TransferableRegion u;
    D* a = NewArrayIn<D>(u.region(), 5);
    EXPECT_NE(a, nullptr);
  }
  EXPECT_EQ(destroyed, 5);
  destroyed = 0;
  {
    ActorRegion actor;
    D* a = NewArrayIn<D>(actor.region(), 4);
    ContextScope s(actor.region());
    DeleteArray(a);
    EXPECT_EQ(destroyed, 4);
    NewArrayIn<D>(actor.region(), 3);
  }
  EXPECT_EQ(destroyed, 7);
}

TEST(ContextTest, CopyStringIsNulTerminatedInTheRegion) {
  TemporaryRegion scratch;
  TemporaryRegion::Scope s(scratch);
  std::string_view c = CopyString("hello");
  EXPECT_EQ(c, "hello");
  EXPECT_EQ(c.data()[5], '\0');
  EXPECT_EQ(RegionOf(c.data()), &scratch.region());
}

struct Doc {
  std::string_view title;
  long id;
};
Doc* BroomClone(const Doc& d, Region& target) {
  return NewIn<Doc>(target, CopyStringIn(target, d.title), d.id);
}

TEST(CloneTest, UsesAdlCustomizationContainersAndTrivialCopies) {
  TransferableRegion src, dst;
  Doc* d = NewIn<Doc>(src.region(), CopyStringIn(src.region(), "title"), 7);
  Doc* c = Clone(*d, dst.region());
  EXPECT_EQ(RegionOf(c), &dst.region());
  EXPECT_EQ(RegionOf(c->title.data()), &dst.region());
  EXPECT_EQ(c->title, "title");

  std::pmr::vector<int> v({1, 2, 3}, src.region().resource());
  auto* vc = Clone(v, dst.region());
  EXPECT_EQ(RegionOf(vc->data()), &dst.region());
  EXPECT_EQ((*vc)[2], 3);

  struct Pod {
    int a, b;
  } pod{1, 2};
  Pod* pc = Clone(pod, dst.region());
  EXPECT_EQ(pc->b, 2);
}

TEST(ContextDeathTest, OverflowingTheStackIsFatal) {
  EXPECT_DEATH(
      {
        TransferableRegion t;
        std::vector<std::unique_ptr<ContextScope>> scopes;
        for (int i = 0; i < 65; ++i) scopes.push_back(std::make_unique<ContextScope>(t.region()));
      },
      "allocation context overflow");
}

TEST(ContextDeathTest, CopyStringWithoutARegionIsFatal) {
  EXPECT_DEATH(CopyString("x"), "CopyString with no region open");
}

}  // namespace
}  // namespace broom
