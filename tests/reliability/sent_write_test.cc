// Copyright Broom authors.
//
// Use-after-send writes (check.h, CheckOptions::sent_writes; issue 13, mistake 4): with checked
// mode on and the option set, a region transferred from one handle to another stays read-only
// until the new handle is first used, so a sender writing through a pointer it kept is stopped
// with a message naming the region and the offset; everything the new owner does through its
// handle works as before.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory_resource>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "broom/check.h"
#include "broom/context.h"
#include "broom/message.h"
#include "broom/transferable_region.h"
#include "tests/reliability/check_scope.h"

namespace broom {
namespace {

struct Counter {
  int64_t value = 0;
};

struct Batch {
  using allocator_type = std::pmr::polymorphic_allocator<std::byte>;
  explicit Batch(const allocator_type& a) : values(a) {}
  std::pmr::vector<int64_t> values;
};

// kFatal checked mode with sent writes caught, restored after the test.
class SentWriteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    checks_.emplace(
        CheckMode::kFatal,
        CheckOptions{.heap_pointers = GetCheckOptions().heap_pointers, .sent_writes = true});
  }

 private:
  std::optional<testing::CheckScope> checks_;  // restores mode and options after the test
};

// The report's pattern, with the offset of `p` from the start of its region's 4 KiB first block
// (blocks are aligned to their size). The death test's child re-runs the test, so the region's
// id and the address may differ there; the name and the offset do not.
std::string ExpectedReport(const Region& r, const void* p) {
  char buf[256];
  std::snprintf(buf, sizeof(buf),
                "broom: fatal: write to transferable region #[0-9]+ '%s' \\+0x%zx "
                "\\(0x[0-9a-f]+\\) after it was transferred",
                r.name(), static_cast<size_t>(reinterpret_cast<uintptr_t>(p) & 4095));
  return buf;
}

TEST_F(SentWriteTest, AWriteThroughAPointerKeptAfterTheTransferIsFatal) {
  TransferableRegion message(RegionOptions{.name = "out"});
  Counter* kept = NewIn<Counter>(message.region());
  const std::string expected = ExpectedReport(message.region(), kept);
  EXPECT_DEATH(
      {
        TransferableRegion sent = message.Transfer();
        kept->value = 1;  // the sender's stale write
      },
      expected);
}

TEST_F(SentWriteTest, AWriteThroughAKeptMessageRootIsFatalAndNamesTheOffset) {
  auto message = Message<Batch>::CreateWith(RegionOptions{.name = "batch"});
  for (int64_t i = 0; i < 3000; ++i) message->values.push_back(i);  // a second, larger block
  int64_t* kept = &message->values[2500];
  EXPECT_DEATH(
      {
        Message<Batch> sent = std::move(message);
        *kept = -1;
      },
      "broom: fatal: write to transferable region #[0-9]+ 'batch' \\+0x[0-9a-f]+ \\(0x[0-9a-f]+\\) "
      "after it was transferred");
}

TEST_F(SentWriteTest, ForwardingWithoutUseKeepsTheRegionSealed) {
  TransferableRegion message(RegionOptions{.name = "hop"});
  Counter* kept = NewIn<Counter>(message.region());
  const std::string expected = ExpectedReport(message.region(), kept);
  EXPECT_DEATH(
      {
        TransferableRegion first = std::move(message);
        TransferableRegion second = first.Transfer();
        std::vector<TransferableRegion> queue;
        queue.push_back(std::move(second));
        kept->value = 1;
      },
      expected);
}

TEST_F(SentWriteTest, TheNewOwnerUsesTheRegionThroughItsHandle) {
  auto message = Message<Batch>::CreateWith(RegionOptions{.name = "batch"});
  for (int64_t i = 0; i < 3000; ++i) message->values.push_back(i);
  Message<Batch> received = std::move(message);
  received->values[0] = 42;  // operator-> is the first use: writable again
  for (int64_t i = 0; i < 3000; ++i) received->values.push_back(i);
  EXPECT_EQ(received->values.size(), 6000u);
  EXPECT_EQ(received->values[0], 42);

  TransferableRegion raw(RegionOptions{.name = "raw"});
  Counter* c = NewIn<Counter>(raw.region());
  TransferableRegion moved = std::move(raw);
  EXPECT_EQ(moved.state(), TransferableRegion::State::kClosed);  // does not unseal
  {
    ContextScope open = moved.Open();  // Open is a use
    c->value = 7;
    New<Counter>()->value = 8;
  }
  TransferableRegion again = std::move(moved);
  again.Reset();  // writes the region: unseals first
  TransferableRegion third = std::move(again);
  third.Free();
  TransferableRegion fourth(RegionOptions{.name = "destroyed sealed"});
  NewIn<Counter>(fourth.region());
  { TransferableRegion dropped = std::move(fourth); }  // destroyed while sealed
  TransferableRegion fifth(RegionOptions{.name = "assigned over"});
  NewIn<Counter>(fifth.region());
  TransferableRegion target = std::move(fifth);
  target = TransferableRegion();  // frees the sealed region it held
  SharedRegion shared = std::move(target).Share();
  EXPECT_EQ(shared.use_count(), 1u);
}

TEST_F(SentWriteTest, AHandoffToAnotherThreadWorks) {
  auto message = Message<Batch>::CreateWith(RegionOptions{.name = "batch"});
  for (int64_t i = 0; i < 100; ++i) message->values.push_back(i);
  Message<Batch> in_flight = std::move(message);
  int64_t sum = 0;
  std::thread receiver([&] {
    Message<Batch> mine = std::move(in_flight);
    mine->values.push_back(100);
    for (int64_t v : mine->values) sum += v;
  });
  receiver.join();
  EXPECT_EQ(sum, 5050);
}

TEST_F(SentWriteTest, ARawReleaseIsNotSealed) {
  TransferableRegion message(RegionOptions{.name = "raw"});
  Counter* c = NewIn<Counter>(message.region());
  TransferableRegion sealed = std::move(message);
  BumpRegion* r = sealed.Release();  // unseals: the new owner uses it without a handle
  c->value = 3;
  TransferableRegion adopted = TransferableRegion::Adopt(r);
  EXPECT_EQ(c->value, 3);
}

void ExitOnFault(int) { _exit(42); }

// Faults that are not writes to a sealed region go to the handler installed before ours.
TEST_F(SentWriteTest, OtherFaultsStillReachThePreviousHandler) {
  auto install_then_seal = [] {
    signal(SIGSEGV, &ExitOnFault);  // before the first seal installs Broom's handler
    TransferableRegion m;
    NewIn<Counter>(m.region());
    return TransferableRegion(std::move(m));
  };
  EXPECT_EXIT(
      {
        TransferableRegion sealed = install_then_seal();
        volatile uintptr_t nowhere = 16;
        *reinterpret_cast<volatile int*>(nowhere) = 1;  // unmapped
      },
      ::testing::ExitedWithCode(42), "");
  EXPECT_EXIT(
      {
        TransferableRegion sealed = install_then_seal();
        void* page = mmap(nullptr, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        *static_cast<volatile int*>(page) = 1;  // read-only, but no region's
      },
      ::testing::ExitedWithCode(42), "");
}

TEST(SentWriteOffTest, WithoutTheOptionTransfersDoNotSeal) {
  const CheckMode previous_mode = GetCheckMode();
  const CheckOptions previous = GetCheckOptions();
  SetCheckOptions({.heap_pointers = previous.heap_pointers, .sent_writes = false});
  SetCheckMode(CheckMode::kFatal);
  TransferableRegion message;
  Counter* kept = NewIn<Counter>(message.region());
  TransferableRegion sent = std::move(message);
  kept->value = 1;  // not caught: the option is off
  EXPECT_EQ(kept->value, 1);
  SetCheckMode(previous_mode);
  SetCheckOptions(previous);
}

}  // namespace
}  // namespace broom
