// Tests of the dynamic outlives check: each rule with a positive and a negative case, checked
// transfers, and the ECOOP bug (an output message pointing into the input message).
#include <gtest/gtest.h>

#include <memory_resource>

#include "broom/actor_region.h"
#include "broom/check.h"
#include "broom/message.h"
#include "broom/temporary_region.h"
#include "broom/transferable_region.h"

namespace broom {
namespace {

struct Ref {
  const void* target;
};

class CheckModeGuard {
 public:
  explicit CheckModeGuard(CheckMode m) : old_(GetCheckMode()) { SetCheckMode(m); }
  ~CheckModeGuard() { SetCheckMode(old_); }

 private:
  CheckMode old_;
};

TEST(OutlivesTest, SelfContainedTransferableRegionPasses) {
  TransferableRegion t;
  int* a = NewIn<int>(t.region(), 1);
  NewIn<Ref>(t.region(), Ref{a});
  auto heap = std::make_unique<int>(2);
  NewIn<Ref>(t.region(), Ref{heap.get()});  // heap is not a region: not reported
  // Without strict self-containment (heap_pointer_test.cc checks it with the option on).
  OutlivesReport r = CheckOutlives(t.region(), CheckOptions{.heap_pointers = false});
  EXPECT_TRUE(r.ok()) << r.ToString();
  EXPECT_GT(r.bytes_scanned, 0u);
}

TEST(OutlivesTest, TransferablePointingIntoAnotherRegionIsReportedWithOffsetAndTarget) {
  TransferableRegion in(RegionOptions{.name = "in"});
  TransferableRegion out(RegionOptions{.name = "out"});
  int* payload = NewIn<int>(in.region(), 7);
  Ref* ref = NewIn<Ref>(out.region(), Ref{payload});
  OutlivesReport r = CheckOutlives(out.region());
  ASSERT_EQ(r.violations.size(), 1u) << r.ToString();
  const Violation& v = r.violations[0];
  EXPECT_EQ(v.rule, Rule::kSelfContained);
  EXPECT_EQ(v.source_address, ref);
  EXPECT_EQ(v.target_address, payload);
  EXPECT_EQ(v.target_id, in.region().id());
  EXPECT_EQ(v.target_kind, RegionKind::kTransferable);
  EXPECT_NE(r.ToString().find("region #"), std::string::npos);
  EXPECT_NE(r.ToString().find("'in'"), std::string::npos);
}

TEST(OutlivesTest, ActorMayHoldHandlesButNotPointersIntoTransferableRegions) {
  ActorRegion actor;
  // A Message kept in actor state is a handle: allowed.
  auto kept = NewIn<Message<int>>(actor.region(), Message<int>::Create(5));
  EXPECT_TRUE(CheckOutlives(actor.region()).ok()) << CheckOutlives(actor.region()).ToString();
  // A raw pointer into the message is not.
  NewIn<Ref>(actor.region(), Ref{kept->get()});
  OutlivesReport r = CheckOutlives(actor.region());
  ASSERT_EQ(r.violations.size(), 1u) << r.ToString();
  EXPECT_EQ(r.violations[0].rule, Rule::kActorToTransferable);
}

TEST(OutlivesTest, ActorMustNotPointIntoTemporaryRegions) {
  ActorRegion actor;
  TemporaryRegion scratch;
  TemporaryRegion::Scope s(scratch);
  int* tmp = NewIn<int>(scratch.region(), 1);
  Ref* ok = NewIn<Ref>(actor.region(), Ref{nullptr});
  EXPECT_TRUE(CheckOutlives(actor.region()).ok());
  ok->target = tmp;
  OutlivesReport r = CheckOutlives(actor.region());
  ASSERT_EQ(r.violations.size(), 1u);
  EXPECT_EQ(r.violations[0].rule, Rule::kActorToTemporary);
}

TEST(OutlivesTest, ActorPointingIntoAnotherActorBreaksOutlives) {
  ActorRegion a(RegionOptions{.name = "a"});
  ActorRegion b(RegionOptions{.name = "b"});
  int* in_b = NewIn<int>(b.region(), 1);
  Ref* ref = NewIn<Ref>(a.region(), Ref{a.Allocate(8)});  // into itself: fine
  EXPECT_TRUE(CheckOutlives(a.region()).ok());
  ref->target = in_b;
  OutlivesReport r = CheckOutlives(a.region());
  ASSERT_EQ(r.violations.size(), 1u) << r.ToString();
  EXPECT_EQ(r.violations[0].rule, Rule::kOutlives);
  EXPECT_EQ(r.violations[0].target_kind, RegionKind::kActor);
}

TEST(OutlivesTest, FreedActorObjectsAreNotScanned) {
  ActorRegion actor;
  TransferableRegion t;
  Ref* ref = static_cast<Ref*>(actor.Allocate(sizeof(Ref) * 4));
  ref[2].target = t.Allocate(8);
  EXPECT_FALSE(CheckOutlives(actor.region()).ok());
  actor.Free(ref);
  EXPECT_TRUE(CheckOutlives(actor.region()).ok());
}

TEST(OutlivesTest, PointerIntoAFreedRegionIsReportedAsDangling) {
  TransferableRegion out;
  Ref* ref = NewIn<Ref>(out.region(), Ref{nullptr});
  {
    TransferableRegion in;
    ref->target = NewIn<int>(in.region(), 1);
  }
  OutlivesReport r = CheckOutlives(out.region());
  ASSERT_EQ(r.violations.size(), 1u) << r.ToString();
  EXPECT_EQ(r.violations[0].rule, Rule::kDangling);
  EXPECT_NE(r.ToString().find("freed region memory"), std::string::npos);
}

TEST(OutlivesTest, EndPointersAtTheEndOfABlockAreNotReported) {
  TransferableRegion t;
  // Fill the first block exactly, then keep a pointer one past its end.
  char* last = nullptr;
  while (t.stats().blocks == 1) last = static_cast<char*>(t.Allocate(16));
  TransferableRegion other;  // may own the block right after
  auto* end_ptr = NewIn<Ref>(t.region(), Ref{last + 16});
  (void)end_ptr;
  OutlivesReport r = CheckOutlives(t.region());
  for (const Violation& v : r.violations) EXPECT_NE(v.target_address, last + 16) << r.ToString();
}

TEST(OutlivesTest, TemporaryRegionsMayPointAnywhere) {
  TransferableRegion t;
  TemporaryRegion scratch;
  TemporaryRegion::Scope s(scratch);
  NewIn<Ref>(scratch.region(), Ref{t.Allocate(8)});
  EXPECT_TRUE(CheckOutlives(scratch.region()).ok());
}

TEST(OutlivesTest, LogModeReportsAndContinues) {
  CheckModeGuard mode(CheckMode::kLog);
  TransferableRegion in, out;
  NewIn<Ref>(out.region(), Ref{NewIn<int>(in.region(), 1)});
  testing::internal::CaptureStderr();
  TransferableRegion moved = out.Transfer();
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("not self-contained"), std::string::npos) << err;
  EXPECT_EQ(moved.state(), TransferableRegion::State::kClosed);
}

TEST(OutlivesTest, CorrectOperatorThatClonesPassesTheCheckedTransfer) {
  CheckModeGuard mode(CheckMode::kFatal);
  struct Doc {
    std::string_view text;
  };
  auto input = Message<Doc>::Create();
  input->text = CopyStringIn(input.region().region(), "payload");
  auto output = Message<Doc>::Create();
  output->text = CopyStringIn(output.region().region(), input->text);  // the clone
  Message<Doc> sent = std::move(output);                               // checked: passes
  EXPECT_EQ(sent->text, "payload");
}

using OutlivesDeathTest = ::testing::Test;

// The ECOOP 2018 bug: an output message that points at the payload of the input message,
// which is freed after the callback. Checked mode catches it when the output is sent.
TEST(OutlivesDeathTest, OutputMessagePointingIntoInputMessageIsCaughtAtTransfer) {
  EXPECT_DEATH(
      {
        SetCheckMode(CheckMode::kFatal);
        struct Doc {
          std::string_view text;
        };
        auto input = Message<Doc>::CreateWith(RegionOptions{.name = "input"});
        input->text = CopyStringIn(input.region().region(), "payload");
        auto output = Message<Doc>::CreateWith(RegionOptions{.name = "output"});
        output->text = input->text;  // the bug: no clone
        Message<Doc> sent = std::move(output);
      },
      "transfer of region #[0-9]+ 'output' \\(transferable\\): not self-contained \\(1 "
      "violations\\)\n.*points to 0x[0-9a-f]+ in transferable region #[0-9]+ 'input': breaks "
      "self-contained");
}

}  // namespace
}  // namespace broom
