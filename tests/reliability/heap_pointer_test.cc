// Copyright Broom authors.
//
// Strict self-containment (check.h, CheckOptions::heap_pointers): a transferable region that
// holds pointers to heap memory is not self-contained. The three ways users get there (issue 13,
// mistake 2): a std::string in a record, a pmr container member that was not given the
// allocator, broom::New with no region open. Each must be reported, by a checked transfer and
// by CheckOutlives, naming the region, the offset of the word and the heap block's size; words
// that are not heap pointers (stack, code, globals, integers, unmapped addresses) must never be,
// and must never crash the scan.
#include <gtest/gtest.h>
#include <malloc.h>
#include <sys/mman.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory_resource>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "broom/actor_region.h"
#include "broom/check.h"
#include "broom/context.h"
#include "broom/message.h"
#include "broom/transferable_region.h"
#include "tests/reliability/check_scope.h"

namespace broom {
namespace {

struct TitledRecord {  // the mistake: std::string, not std::pmr::string
  int64_t id;
  std::string title;
};

struct ForgetfulBatch {  // region-aware, but does not hand the allocator to its member
  using allocator_type = std::pmr::polymorphic_allocator<std::byte>;
  explicit ForgetfulBatch(const allocator_type& /*forgotten*/) {}
  std::pmr::vector<int64_t> values;  // the default resource: the heap
};

struct Payload {
  int64_t v[4];
};
struct Holder {
  Payload* payload = nullptr;
};

// The fixture turns checked mode on (kLog: reports go to stderr, tests read the report from
// CheckOutlives) with heap pointers checked, which starts heap recognition and binds this thread.
class HeapPointerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    checks_.emplace(CheckMode::kLog, CheckOptions{.heap_pointers = true});
    if (GetHeapRecognition() == HeapRecognition::kNone) {
      GTEST_SKIP() << "this build cannot recognise heap pointers";
    }
  }

 private:
  std::optional<testing::CheckScope> checks_;  // restores mode and options after the test
};

// The address of the word inside `object` that holds `value` (a container's data pointer).
template <class T>
const void* WordHolding(const T& object, const void* value) {
  const auto* words = reinterpret_cast<const void* const*>(&object);
  for (size_t i = 0; i < sizeof(T) / sizeof(void*); ++i) {
    if (words[i] == value) return &words[i];
  }
  ADD_FAILURE() << "no word of the object holds " << value;
  return nullptr;
}

// The one violation of `report` whose word lies at `word`, or null.
const Violation* ViolationAt(const OutlivesReport& report, const void* word) {
  for (const Violation& v : report.violations) {
    if (v.source_address == word) return &v;
  }
  return nullptr;
}

// Checks that `report` holds exactly one violation, a heap pointer stored at `word` (inside the
// 4 KiB first block of `region`, which is aligned to its size) pointing to `heap`, with the heap
// block's size as malloc reports it, and that the report's text names all of that.
void ExpectOneHeapPointer(const OutlivesReport& report, const Region& region, const void* word,
                          const void* heap) {
  ASSERT_EQ(report.violation_count, 1u) << report.ToString();
  const Violation* v = ViolationAt(report, word);
  ASSERT_NE(v, nullptr) << report.ToString();
  EXPECT_EQ(v->rule, Rule::kHeapPointer);
  EXPECT_EQ(v->source_id, region.id());
  EXPECT_EQ(v->target_address, heap);
  const uintptr_t block = reinterpret_cast<uintptr_t>(word) & ~uintptr_t{4095};
  EXPECT_EQ(v->source_offset, reinterpret_cast<uintptr_t>(word) - block);
  EXPECT_EQ(v->target_size, malloc_usable_size(const_cast<void*>(heap)));
  char expected[256];
  std::snprintf(expected, sizeof(expected),
                "transferable region #%llu '%s' +0x%zx points to %p in a heap block of %zu "
                "bytes: breaks self-contained, strictly",
                static_cast<unsigned long long>(region.id()), region.name(), v->source_offset, heap,
                v->target_size);
  EXPECT_NE(report.ToString().find(expected), std::string::npos)
      << "expected: " << expected << "\nreport: " << report.ToString();
}

TEST_F(HeapPointerTest, AStdStringInARecordIsReportedWithOffsetAndSize) {
  TransferableRegion message(RegionOptions{.name = "batch"});
  TitledRecord* record;
  {
    ContextScope open = message.Open();
    record = New<TitledRecord>(TitledRecord{7, std::string(100, 't')});  // longer than SSO
  }
  ExpectOneHeapPointer(CheckOutlives(message.region()), message.region(),
                       WordHolding(record->title, record->title.data()), record->title.data());
}

TEST_F(HeapPointerTest, APmrVectorMemberNotGivenTheAllocatorIsReported) {
  auto message = Message<ForgetfulBatch>::CreateWith(RegionOptions{.name = "batch"});
  for (int64_t i = 0; i < 1000; ++i) message->values.push_back(i);  // 8000 bytes on the heap
  ASSERT_EQ(RegionOf(message->values.data()), nullptr);
  // The vector holds {allocator (the default resource, a global), begin, end, end of storage}:
  // begin points at the heap block, end and end of storage into it or just past it.
  OutlivesReport report = CheckOutlives(message.region().region());
  ASSERT_GE(report.violation_count, 1u) << report.ToString();
  EXPECT_LE(report.violation_count, 3u) << report.ToString();
  const Violation* begin =
      ViolationAt(report, WordHolding(message->values, message->values.data()));
  ASSERT_NE(begin, nullptr) << report.ToString();
  EXPECT_EQ(begin->rule, Rule::kHeapPointer);
  EXPECT_EQ(begin->target_address, message->values.data());
  EXPECT_EQ(begin->target_size, malloc_usable_size(message->values.data()));
  char expected[160];
  std::snprintf(expected, sizeof(expected), "'batch' +0x%zx points to %p in a heap block of %zu",
                begin->source_offset, static_cast<const void*>(message->values.data()),
                begin->target_size);
  EXPECT_NE(report.ToString().find(expected), std::string::npos) << report.ToString();
  for (const Violation& v : report.violations) EXPECT_EQ(v.rule, Rule::kHeapPointer);
}

TEST_F(HeapPointerTest, NewWithoutTheRegionOpenStoredInTheMessageIsReported) {
  auto message = Message<Holder>::CreateWith(RegionOptions{.name = "holder"});
  message->payload = New<Payload>();  // no region open: plain new, the heap
  ASSERT_EQ(RegionOf(message->payload), nullptr);
  ExpectOneHeapPointer(CheckOutlives(message.region().region()), message.region().region(),
                       WordHolding(*message, message->payload), message->payload);
  Delete(message->payload);
}

// The checked transfer applies the same rule: fatal in kFatal mode, with the report.
TEST_F(HeapPointerTest, ACheckedTransferOfAMessageWithAHeapPointerIsFatal) {
  EXPECT_DEATH(
      {
        SetCheckMode(CheckMode::kFatal);
        TransferableRegion message(RegionOptions{.name = "batch"});
        {
          ContextScope open = message.Open();
          New<TitledRecord>(TitledRecord{7, std::string(100, 't')});
        }
        TransferableRegion sent = std::move(message);
      },
      "broom: fatal: transfer of region #[0-9]+ 'batch' \\(transferable\\): not "
      "self-contained \\(1 violations\\)\n  transferable region #[0-9]+ 'batch' \\+0x[0-9a-f]+ "
      "points to 0x[0-9a-f]+ in a heap block of [0-9]+ bytes: breaks self-contained, strictly");
}

TEST_F(HeapPointerTest, SelfContainedDataAndNonHeapWordsAreNotReported) {
  static int a_global = 1;
  int on_the_stack = 2;
  TransferableRegion message(RegionOptions{.name = "batch"});
  {
    ContextScope open = message.Open();
    New<std::pmr::string>(size_t{100}, 'p');  // New passes the region as the allocator
    auto* v = New<std::pmr::vector<int64_t>>();
    for (int64_t i = 0; i < 1000; ++i) v->push_back(i);
  }
  // An inaccessible page neither Broom nor jemalloc mapped (a fixed address such as
  // 0x7f0000000000 may fall inside Broom's reserved space).
  void* page = mmap(nullptr, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(page, MAP_FAILED);
  // Words jemalloc's own lookups would crash on: stack, code, globals, rodata, unmapped and
  // kernel addresses, small and large integers.
  const uintptr_t words[] = {reinterpret_cast<uintptr_t>(&on_the_stack),
                             reinterpret_cast<uintptr_t>(&a_global),
                             reinterpret_cast<uintptr_t>(&std::malloc),
                             reinterpret_cast<uintptr_t>("a literal"),
                             uintptr_t{0x1000},
                             reinterpret_cast<uintptr_t>(page),
                             uintptr_t{0x7ffffffff000},
                             uintptr_t{0xffffffffff600000},
                             uintptr_t{0xdeadbeefcafe0000},
                             uintptr_t{12345},
                             ~uintptr_t{0}};
  for (uintptr_t w : words) *NewIn<uintptr_t>(message.region(), w) = w;
  OutlivesReport report = CheckOutlives(message.region());
  EXPECT_TRUE(report.ok()) << report.ToString();
  EXPECT_GT(report.bytes_scanned, 8000u);
  munmap(page, 4096);
}

TEST_F(HeapPointerTest, EveryWordOfAHeapObjectIsRecognisedWithoutCrashing) {
  // Interior pointers, one past the end, and words far inside a large allocation (jemalloc
  // cannot tell their block: the size may be unknown, the word is still heap memory).
  std::vector<char*> blocks;
  for (size_t size : {size_t{24}, size_t{3000}, size_t{100000}, size_t{3} << 20}) {
    blocks.push_back(static_cast<char*>(std::malloc(size)));
    ASSERT_NE(blocks.back(), nullptr);
  }
  // One past the end is heap memory only if the allocator's mapping goes on (TSan maps a large
  // block to its exact end): may be reported, need not be.
  TransferableRegion message;
  size_t inside = 0, past_end = 0;
  for (char* b : blocks) {
    const size_t size = malloc_usable_size(b);
    for (size_t off : {size_t{0}, size_t{8}, size / 2, size - 1, size}) {
      *NewIn<char*>(message.region(), b + off) = b + off;
      ++(off < size ? inside : past_end);
    }
  }
  OutlivesReport report = CheckOutlives(message.region());
  EXPECT_GE(report.violation_count, inside) << report.ToString(100);
  EXPECT_LE(report.violation_count, inside + past_end) << report.ToString(100);
  for (char* b : blocks) {
    const size_t size = malloc_usable_size(b);
    for (size_t off : {size_t{0}, size_t{8}, size / 2, size - 1}) {
      bool found = false;
      for (const Violation& v : report.violations) found |= v.target_address == b + off;
      EXPECT_TRUE(found) << "+" << off << " of a block of " << size << "\n" << report.ToString(100);
    }
  }
  for (const Violation& v : report.violations) {
    EXPECT_EQ(v.rule, Rule::kHeapPointer);
    const char* target = static_cast<const char*>(v.target_address);
    for (char* b : blocks) {
      if (target == b) {
        EXPECT_EQ(v.target_size, malloc_usable_size(b)) << report.ToString();
      }
    }
  }
  for (char* b : blocks) std::free(b);
}

TEST_F(HeapPointerTest, HeapPointersInActorStateAreAllowed) {
  ActorRegion state;
  std::string* title = NewIn<std::string>(state.region(), std::string(100, 's'));
  EXPECT_TRUE(CheckOutlives(state.region()).ok()) << CheckOutlives(state.region()).ToString();
  EXPECT_NE(title->data(), nullptr);
}

TEST_F(HeapPointerTest, TheOptionOffReportsNothing) {
  auto message = Message<Holder>::CreateWith(RegionOptions{.name = "holder"});
  message->payload = New<Payload>();
  EXPECT_TRUE(CheckOutlives(message.region().region(), {.heap_pointers = false}).ok());
  EXPECT_FALSE(CheckOutlives(message.region().region(), {.heap_pointers = true}).ok());
  Delete(message->payload);
}

TEST_F(HeapPointerTest, ARegionCreatedOnAnotherThreadBindsThatThread) {
  // A thread's first region binds it (jemalloc builds); what it allocates afterwards is
  // recognised.
  Payload* payload = nullptr;
  TransferableRegion message;
  std::thread worker([&] {
    TransferableRegion mine;  // binds this thread
    payload = new Payload{};
    *NewIn<Payload*>(message.region(), payload) = payload;  // not owner-checked: closed
  });
  worker.join();
  OutlivesReport report = CheckOutlives(message.region());
  ASSERT_EQ(report.violation_count, 1u) << report.ToString();
  EXPECT_EQ(report.violations[0].target_address, payload);
  delete payload;
}

TEST(HeapPointerEnvTest, BroomCheckHeapSetsTheOption) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        setenv("BROOM_CHECK_HEAP", "off", 1);
        _exit(GetCheckOptions().heap_pointers ? 1 : 0);
      },
      ::testing::ExitedWithCode(0), "");
  EXPECT_EXIT(
      {
        setenv("BROOM_CHECK_HEAP", "sometimes", 1);
        _exit(GetCheckOptions().heap_pointers == CheckOptions{}.heap_pointers ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "broom: warning: BROOM_CHECK_HEAP=sometimes is not valid");
}

// An engine driver asks for the mode before it creates any region (the CAF runtime passes it
// to its actors): BROOM_CHECKS must already count then. Before, the first GetCheckMode returned
// the built-in kOff and the CAF engine turned checked mode off again in its actors.
TEST(CheckModeEnvTest, TheFirstGetCheckModeReadsBroomChecks) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        setenv("BROOM_CHECKS", "1", 1);
        _exit(GetCheckMode() == CheckMode::kFatal ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

// Where nothing can recognise heap pointers (UBSan alone, no jemalloc), turning the check on
// says so, once; elsewhere it says nothing.
TEST(HeapPointerEnvTest, ABuildThatCannotRecogniseHeapPointersSaysSoOnce) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        SetCheckOptions({.heap_pointers = true});
        SetCheckMode(CheckMode::kLog);
        SetCheckMode(CheckMode::kFatal);
        TransferableRegion r;
        (void)CheckOutlives(r.region());
        if (GetHeapRecognition() != HeapRecognition::kNone) std::fprintf(stderr, "recognised\n");
        std::fprintf(stderr, "done\n");
        _exit(0);
      },
      ::testing::ExitedWithCode(0),
      "^(recognised\n|broom: warning: heap pointers cannot be recognised \\([^)]*\\): the "
      "strict self-containment check \\(BROOM_CHECK_HEAP\\) reports none\n)done\n$");
}

}  // namespace
}  // namespace broom
