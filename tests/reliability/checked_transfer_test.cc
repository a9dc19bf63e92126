// Copyright Broom authors.
//
// The dynamic outlives check (check.h) against memory the program never wrote. A conservative
// scan reads every aligned word of a region, including alignment padding and bytes of reused
// blocks that no allocation wrote, so a stale pointer left there by a region freed earlier is
// reported as if the program had stored it. Found by the fuzz harness (CheckOutlivesOp counts
// such reports as "violations from stale bytes").
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>

#include "broom/actor_region.h"
#include "broom/check.h"
#include "broom/temporary_region.h"
#include "broom/transferable_region.h"

namespace broom {
namespace {

struct Link {
  const int* target;
};

// Leaves words pointing into `actor` in a block, then frees the block to this thread's cache.
void LeaveStalePointersIn(ActorRegion& actor) {
  TemporaryRegion scratch(RegionOptions{.retain_bytes = 0});
  const int* into_actor = NewIn<int>(actor.region(), 5);
  for (int i = 0; i < 200; ++i) NewIn<Link>(scratch.region(), Link{into_actor});  // legal
}

TEST(CheckedTransferTest, ARegionWithoutPointersPassesTheCheck) {
  ActorRegion actor;
  TransferableRegion message;
  for (int i = 0; i < 100; ++i) *NewIn<int64_t>(message.region(), 0) = i;
  EXPECT_TRUE(CheckOutlives(message.region()).ok()) << CheckOutlives(message.region()).ToString();
}

// Padding skipped by an aligned allocation is scanned although nothing was written there: the
// stale words from the temporary region that used the block before are reported as pointers
// from the message into the actor region. A correct program is aborted by a checked transfer
// (kFatal). Failing today: see docs/reliability.md, known failure 6.
TEST(CheckedTransferTest, DISABLED_StaleBytesInPaddingAreNotReported) {
  ActorRegion actor;
  LeaveStalePointersIn(actor);
  TransferableRegion message;  // takes the hot block the temporary region just gave back
  char* first = static_cast<char*>(message.Allocate(1, 1));
  char* aligned = static_cast<char*>(message.Allocate(8, 2048));  // padding over stale words
  ASSERT_NE(first, nullptr);
  ASSERT_NE(aligned, nullptr);
  std::memset(first, 0, 1);
  std::memset(aligned, 0, 8);
  OutlivesReport report = CheckOutlives(message.region());
  EXPECT_TRUE(report.ok()) << report.ToString();
}

}  // namespace
}  // namespace broom
