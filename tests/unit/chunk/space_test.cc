// Tests of the space (alloc/chunk/space.h): carving at the frontier, commit steps, running out,
// map words. Each test reserves a small space of its own (never published to g_space).
#include "alloc/chunk/space.h"

#include <gtest/gtest.h>

namespace broom::internal {
namespace {

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

}  // namespace
}  // namespace broom::internal
