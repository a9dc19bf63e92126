// Copyright Broom authors.
//
// Misuse that Broom stops with a "broom: fatal:" message (never a bare segfault): foreign
// pointers and double frees in actor regions, moved-from and destroyed handles, opening freed or
// transferred regions. Rows of docs/reliability.md. Each death test also checks, in the dying
// process, that the bystander regions were intact right up to the misuse.
#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <thread>
#include <utility>

#include "broom/actor_region.h"
#include "broom/context.h"
#include "broom/message.h"
#include "broom/region.h"
#include "broom/temporary_region.h"
#include "broom/transferable_region.h"
#include "tests/reliability/witness.h"

namespace broom {
namespace {

using testing::Witness;

// Runs `misuse` after checking the bystanders; the misuse must abort with a Broom message.
template <class F>
void WithWitness(F&& misuse) {
  Witness witness;
  if (!witness.Intact()) std::_Exit(3);  // would show as "died with exit code 3", not matched
  misuse(witness);
}

#define EXPECT_BROOM_FATAL(statement, regex) \
  EXPECT_DEATH(WithWitness([&](Witness& w) { \
                 (void)w;                    \
                 statement;                  \
               }),                           \
               "broom: fatal: .*" regex)

// ---- foreign pointers and double frees in actor regions ----------------------------------------

TEST(ActorFreeDeathTest, HeapPointerIsFatal) {
  EXPECT_BROOM_FATAL(
      {
        ActorRegion a;
        auto heap = std::make_unique<char[]>(64);
        a.Free(heap.get());
      },
      "ActorRegion::Free.*not owned by this region.*belongs to no region");
}

TEST(ActorFreeDeathTest, StackPointerIsFatal) {
  EXPECT_BROOM_FATAL(
      {
        ActorRegion a;
        char on_stack[32];
        a.Free(on_stack);
      },
      "ActorRegion::Free.*not owned by this region");
}

TEST(ActorFreeDeathTest, PointerFromAnotherActorRegionNamesItsOwner) {
  EXPECT_BROOM_FATAL(
      {
        ActorRegion a;
        a.Free(w.actor().Allocate(32));
      },
      "ActorRegion::Free.*not owned by this region; the pointer belongs to region #[0-9]+ "
      "\\(actor\\)");
}

TEST(ActorFreeDeathTest, PointerFromATransferableRegionNamesItsOwner) {
  EXPECT_BROOM_FATAL(
      {
        ActorRegion a;
        a.Free(w.transferable().Allocate(32));
      },
      "not owned by this region; the pointer belongs to region #[0-9]+ \\(transferable\\)");
}

TEST(ActorFreeDeathTest, PointerIntoAFreedRegionIsFatal) {
  EXPECT_BROOM_FATAL(
      {
        ActorRegion a;
        void* stale;
        {
          ActorRegion gone;
          stale = gone.Allocate(48);
        }
        a.Free(stale);
      },
      "not owned by this region.*belongs to no region");
}

TEST(ActorFreeDeathTest, RegionMetadataIsFatal) {
  EXPECT_BROOM_FATAL(
      {
        ActorRegion a;
        a.Free(&a.region());
      },
      "not an object \\(region metadata\\)");
}

TEST(ActorFreeDeathTest, InteriorPointerIsFatal) {
  EXPECT_BROOM_FATAL(
      {
        ActorRegion a;
        char* p = static_cast<char*>(a.Allocate(64));
        a.Free(p + 16);
      },
      "not the start of an object");
}

TEST(ActorFreeDeathTest, InteriorPointerOfALargeObjectIsFatal) {
  EXPECT_BROOM_FATAL(
      {
        ActorRegion a;
        char* p = static_cast<char*>(a.Allocate(100000));
        a.Free(p + 4096);
      },
      "not the start of an object");
}

TEST(ActorFreeDeathTest, DoubleFreeIsFatal) {
  EXPECT_BROOM_FATAL(
      {
        ActorRegion a;
        void* p = a.Allocate(40);
        (void)a.Allocate(40);
        a.Free(p);
        a.Free(p);
      },
      "double free");
}

TEST(ActorFreeDeathTest, DoubleFreeAfterOtherFreesIsFatal) {
  EXPECT_BROOM_FATAL(
      {
        ActorRegion a;
        void* p = a.Allocate(100);
        void* q = a.Allocate(100);
        void* r = a.Allocate(100);
        a.Free(p);
        a.Free(q);
        a.Free(r);
        a.Free(p);  // not at the head of the free list: caught when handed out again
        for (int i = 0; i < 40; ++i) (void)a.Allocate(100);
      },
      "double free");
}

TEST(ActorFreeDeathTest, DoubleFreeOfALargeObjectIsFatal) {
  EXPECT_BROOM_FATAL(
      {
        ActorRegion a;
        void* p = a.Allocate(1 << 20);
        a.Free(p);
        a.Free(p);  // its block went back to the pool
      },
      "ActorRegion::Free.*not owned by this region");
}

TEST(ActorFreeDeathTest, DoubleDeleteOfATrivialObjectIsFatal) {
  EXPECT_BROOM_FATAL(
      {
        ActorRegion a;
        int* o = NewIn<int>(a.region(), 1);
        (void)NewIn<int>(a.region(), 2);
        Delete(o);
        Delete(o);
      },
      "double free");
}

// Delete of an object with a destructor used to unlink its cleanup node before the double-free
// check: the second Delete ran the destructor again and unlinked a node whose links the first
// free had overwritten, crashing with SIGSEGV and no message (known failure 3, fixed in 3dbfdf6).
TEST(ActorFreeDeathTest, DoubleDeleteOfAnObjectWithADestructorIsFatal) {
  struct Obj {
    ~Obj() { v = 0; }
    int v = 1;
  };
  EXPECT_BROOM_FATAL(
      {
        ActorRegion a;
        Obj* o = NewIn<Obj>(a.region());
        (void)NewIn<Obj>(a.region());
        Delete(o);
        Delete(o);
      },
      "(double free|broom::Delete)");
}

// ---- moved-from and destroyed handles ----------------------------------------------------------

TEST(HandleDeathTest, MovedFromActorRegionIsFatal) {
  EXPECT_BROOM_FATAL(
      {
        ActorRegion a;
        ActorRegion b(std::move(a));
        (void)a.Allocate(8);  // NOLINT(bugprone-use-after-move): the point of the test
      },
      "use of a moved-from ActorRegion");
  EXPECT_BROOM_FATAL(
      {
        ActorRegion a;
        void* p = a.Allocate(8);
        ActorRegion b(std::move(a));
        a.Free(p);  // NOLINT(bugprone-use-after-move)
      },
      "use of a moved-from ActorRegion");
}

TEST(HandleDeathTest, MovedFromTemporaryRegionIsFatal) {
  EXPECT_BROOM_FATAL(
      {
        TemporaryRegion t;
        TemporaryRegion u(std::move(t));
        (void)t.Allocate(8);  // NOLINT(bugprone-use-after-move)
      },
      "use of a moved-from TemporaryRegion");
  EXPECT_BROOM_FATAL(
      {
        TemporaryRegion t;
        TemporaryRegion u(std::move(t));
        TemporaryRegion::Scope s(t);  // NOLINT(bugprone-use-after-move)
      },
      "use of a moved-from TemporaryRegion");
  EXPECT_BROOM_FATAL(
      {
        TemporaryRegion t;
        TemporaryRegion u(std::move(t));
        t.Reset();  // NOLINT(bugprone-use-after-move)
      },
      "use of a moved-from TemporaryRegion");
}

TEST(HandleDeathTest, MovedFromTransferableRegionNamesTheRegion) {
  EXPECT_BROOM_FATAL(
      {
        TransferableRegion t;
        TransferableRegion u(std::move(t));
        (void)t.Allocate(8);  // NOLINT(bugprone-use-after-move)
      },
      "TransferableRegion::Allocate on transferable region #[0-9]+ after Transfer \\(typestate "
      "TRANSFERRED\\)");
  EXPECT_BROOM_FATAL(
      {
        TransferableRegion t;
        TransferableRegion u(std::move(t));
        (void)t.stats();  // NOLINT(bugprone-use-after-move)
      },
      "TransferableRegion::stats on transferable region #[0-9]+ after Transfer");
}

TEST(HandleDeathTest, FreedTransferableRegionNamesTheRegion) {
  EXPECT_BROOM_FATAL(
      {
        TransferableRegion t;
        t.Free();
        (void)t.Allocate(8);
      },
      "TransferableRegion::Allocate on transferable region #[0-9]+ after Free \\(typestate "
      "FREED\\)");
  EXPECT_BROOM_FATAL(
      {
        TransferableRegion t;
        t.Free();
        t.Free();
      },
      "TransferableRegion::Free on transferable region #[0-9]+ after Free");
  EXPECT_BROOM_FATAL(
      {
        TransferableRegion t;
        t.Free();
        t.Reset();
      },
      "TransferableRegion::Reset on transferable region #[0-9]+ after Free");
}

// A freed or transferred region can never be transferred again (ECOOP typestate: Transfer is
// legal only from CLOSED). Transfer() of a dead handle used to return another dead handle
// silently (known failure 4, fixed in 3dbfdf6).
TEST(HandleDeathTest, TransferOfAFreedRegionIsFatal) {
  EXPECT_BROOM_FATAL(
      {
        TransferableRegion t;
        t.Free();
        TransferableRegion u = t.Transfer();
      },
      "Transfer.*after Free");
}

TEST(HandleDeathTest, UseAfterShareIsFatal) {
  EXPECT_BROOM_FATAL(
      {
        TransferableRegion t;
        SharedRegion s = std::move(t).Share();
        (void)t.Allocate(8);  // NOLINT(bugprone-use-after-move)
      },
      "TransferableRegion::Allocate on transferable region #[0-9]+ after Transfer");
}

TEST(HandleDeathTest, EmptyMessageIsFatal) {
  struct Root {
    int v = 0;
  };
  EXPECT_BROOM_FATAL(
      {
        auto m = Message<Root>::Create();
        auto n = std::move(m);
        m->v = 1;  // NOLINT(bugprone-use-after-move)
      },
      "use of an empty, moved-from or freed broom::Message");
}

// ---- opening freed or transferred regions ------------------------------------------------------

TEST(OpenDeathTest, OpeningAFreedRegionIsFatal) {
  EXPECT_BROOM_FATAL(
      {
        TransferableRegion t;
        t.Free();
        auto scope = t.Open();
      },
      "TransferableRegion::Open on transferable region #[0-9]+ after Free \\(typestate FREED\\)");
}

TEST(OpenDeathTest, OpeningATransferredRegionIsFatal) {
  EXPECT_BROOM_FATAL(
      {
        TransferableRegion t;
        TransferableRegion u = t.Transfer();
        auto scope = t.Open();
      },
      "TransferableRegion::Open on transferable region #[0-9]+ after Transfer");
}

TEST(OpenDeathTest, OpeningARegionHandedToAnotherThreadIsFatal) {
  EXPECT_BROOM_FATAL(
      {
        TransferableRegion t;
        std::thread([moved = t.Transfer()]() mutable { moved.Free(); }).join();
        auto scope = t.Open();
      },
      "TransferableRegion::Open on transferable region #[0-9]+ after Transfer");
}

TEST(OpenDeathTest, FreeOrTransferWhileOpenIsFatal) {
  EXPECT_BROOM_FATAL(
      {
        TransferableRegion t;
        auto scope = t.Open();
        t.Free();
      },
      "TransferableRegion::Free on region #[0-9]+ .*while it is OPEN");
  EXPECT_BROOM_FATAL(
      {
        TransferableRegion t;
        auto scope = t.Open();
        TransferableRegion u = t.Transfer();
      },
      "TransferableRegion::Transfer on region #[0-9]+ .*while it is OPEN");
}

TEST(OpenDeathTest, AdoptingSomethingThatIsNotATransferableRegionIsFatal) {
  EXPECT_BROOM_FATAL({ auto t = TransferableRegion::Adopt(nullptr); }, "Adopt of null");
  EXPECT_BROOM_FATAL({ auto t = TransferableRegion::Adopt(&w.actor().region()); },
                     "Adopt of a non-transferable region");
}

TEST(OpenDeathTest, ScopesClosedOutOfOrderAreFatal) {
  EXPECT_BROOM_FATAL(
      {
        auto outer = std::make_unique<ContextScope>(w.transferable().region());
        auto inner = std::make_unique<ContextScope>(w.actor().region());
        outer.reset();
      },
      "allocation context closed out of order");
}

TEST(OpenDeathTest, ATemporaryScopeOnAnotherThreadIsFatal) {
  EXPECT_BROOM_FATAL(
      { std::thread([&] { TemporaryRegion::Scope s(w.temporary()); }).join(); },
      "TemporaryRegion::Scope on region #[0-9]+ .*from thread [0-9]+; it belongs to thread");
}

}  // namespace
}  // namespace broom
