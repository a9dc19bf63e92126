// Tests of the space (alloc/chunk/space.h): carving at the frontier, commit steps, running out,
// map words. Each test reserves a small space of its own (never published to g_space).
#include "alloc/chunk/space.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstdio>
#include <cstring>
#include <string>

namespace broom::internal {
namespace {

// The VmFlags line of the mapping of /proc/self/smaps that holds `p` ("" if none).
std::string VmFlagsOf(const void* p) {
  FILE* f = std::fopen("/proc/self/smaps", "r");
  if (f == nullptr) return "";
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  bool inside = false;
  std::string flags;
  char line[512];
  while (std::fgets(line, sizeof(line), f) != nullptr) {
    unsigned long lo = 0, hi = 0;  // NOLINT(runtime/int): sscanf's %lx
    if (std::sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {
      inside = lo <= a && a < hi;
    } else if (inside && std::strncmp(line, "VmFlags:", 8) == 0) {
      flags = line;
      break;
    }
  }
  std::fclose(f);
  return flags;
}

TEST(SpaceTest, CarvesContiguousZeroedChunksUntilTheSpaceRunsOut) {
  Space space(16 * kChunkSize);
  ASSERT_EQ(space.chunks(), 16u);
  AllocError error = AllocError::kNone;
  char* a = space.Carve(4, &error);
  ASSERT_EQ(a, space.base());
  EXPECT_EQ(a[0], 0);
  a[kChunkSize] = 1;  // committed: writable
  char* b = space.Carve(12, &error);
  EXPECT_EQ(b, a + 4 * kChunkSize);
  EXPECT_EQ(space.carved_bytes(), 16 * kChunkSize);
  EXPECT_EQ(space.Carve(1, &error), nullptr);
  EXPECT_EQ(error, AllocError::kOutOfMemory);
  EXPECT_EQ(space.carved_bytes(), 16 * kChunkSize);  // a failure changes nothing
}

TEST(SpaceTest, CommitsInSteps) {
  Space space(2 * Space::kCommitStep);
  AllocError error = AllocError::kNone;
  EXPECT_EQ(space.committed_bytes(), 0u);
  space.Carve(1, &error);
  EXPECT_EQ(space.committed_bytes(), Space::kCommitStep);
  space.Carve(Space::kCommitStep / kChunkSize, &error);  // one chunk past the first step
  EXPECT_EQ(space.committed_bytes(), 2 * Space::kCommitStep);
}

TEST(SpaceTest, MapWordsAreSetPerChunkAndATestSpaceIsNotPublished) {
  const uintptr_t published = g_space.base;
  Space space(8 * kChunkSize);
  AllocError error = AllocError::kNone;
  char* p = space.Carve(4, &error);
  space.SetMap(p + kChunkSize, 2, 0x1234);
  EXPECT_EQ(space.MapWord(p), 0u);
  EXPECT_EQ(space.MapWord(p + kChunkSize + 100), 0x1234u);
  EXPECT_EQ(space.MapWord(p + 3 * kChunkSize - 1), 0x1234u);
  EXPECT_EQ(space.MapWord(p + 3 * kChunkSize), 0u);
  space.OrMap(p, kMapQuarantined);
  EXPECT_EQ(space.MapWord(p), kMapQuarantined);
  EXPECT_EQ(g_space.base, published);
  EXPECT_FALSE(InSpace(p));
}

TEST(SpaceTest, HugePagesAdviseOnlyTheStepsCommittedWhileOn) {
  Space space(3 * Space::kCommitStep);
  AllocError error = AllocError::kNone;
  char* off = space.Carve(1, &error);  // the first step, committed with the advice off
  ASSERT_NE(off, nullptr);
  EXPECT_EQ(VmFlagsOf(off).find(" hg"), std::string::npos) << VmFlagsOf(off);
  if (!os::AdviseHugePages(off, Space::kCommitStep)) {
    GTEST_SKIP() << "this kernel has no transparent huge pages";
  }
  madvise(off, Space::kCommitStep, MADV_NOHUGEPAGE);  // undo the probe
  EXPECT_FALSE(space.huge_pages());
  space.set_huge_pages(true);
  char* on = space.Carve(Space::kCommitStep / kChunkSize, &error);  // commits the second step
  ASSERT_NE(on, nullptr);
  char* second = space.slice_base() + Space::kCommitStep;
  EXPECT_NE(VmFlagsOf(second).find(" hg"), std::string::npos) << VmFlagsOf(second);
  EXPECT_EQ(VmFlagsOf(off).find(" hg"), std::string::npos) << VmFlagsOf(off);
  second[0] = 1;  // still ordinary committed memory
}

}  // namespace
}  // namespace broom::internal
