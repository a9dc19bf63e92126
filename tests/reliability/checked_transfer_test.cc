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

// Under ASan, CheckOutlives reads whole 8-byte words of bump regions, including the partly
// addressable tail of an object whose size is not a multiple of 8 and the poisoned gaps left by
// rewinds and actor frees; ASan stops the process ("unknown-crash" in outlives.cc Scan). The scan
// needs __attribute__((no_sanitize_address)) or to skip poisoned words. Passes trivially without
// ASan. Failing today under the asan preset: see docs/reliability.md, known failure 7.
TEST(CheckedTransferTest, DISABLED_CheckOutlivesReadsOnlyAddressableBytesUnderAsan) {
  // After Reset (or a scope exit) the rewound bytes are poisoned; new objects are unpoisoned to
  // their exact size, so a 5-byte object followed by an 8-aligned one leaves a partly addressable
  // word between them.
  TransferableRegion message;
  (void)message.Allocate(3000);
  message.Reset();
  std::memset(message.Allocate(5, 1), 0, 5);
  std::memset(message.Allocate(8, 8), 0, 8);
  EXPECT_TRUE(CheckOutlives(message.region()).ok());
  TemporaryRegion scratch;
  {
    TemporaryRegion::Scope s(scratch);
    (void)scratch.Allocate(3000);
  }
  std::memset(scratch.Allocate(13, 1), 0, 13);
  std::memset(scratch.Allocate(16, 16), 0, 16);
  EXPECT_TRUE(CheckOutlives(scratch.region()).ok());
}

}  // namespace
}  // namespace broom
