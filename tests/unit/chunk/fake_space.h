// Copyright Broom authors.
//
// FakeSpace: the layer below Pool<Below> (alloc/chunk/pool.h) for tests. A few chunks of heap
// memory, a chunk map the test can read, a clock the test sets, a log of purges (which zero the
// memory, as madvise does), and a limit on carving to make the space run out.
#ifndef BROOM_TESTS_UNIT_CHUNK_FAKE_SPACE_H_
#define BROOM_TESTS_UNIT_CHUNK_FAKE_SPACE_H_

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#include "broom/internal/block.h"
#include "broom/region.h"

namespace broom::internal {

class FakeSpace {
 public:
  explicit FakeSpace(size_t chunks)
      : chunks_(chunks),
        base_(static_cast<char*>(std::aligned_alloc(kChunkSize, chunks * kChunkSize))),
        map_(chunks, 0),
        limit_(chunks) {}
  ~FakeSpace() {
    std::free(base_);
    for (void* p : metadata_) std::free(p);
  }
  FakeSpace(const FakeSpace&) = delete;
  FakeSpace& operator=(const FakeSpace&) = delete;

  // The interface Pool needs.
  char* base() const { return base_; }
  size_t chunks() const { return chunks_; }
  char* frontier() const { return base_ + carved_ * kChunkSize; }
  size_t carved_bytes() const { return carved_ * kChunkSize; }
  char* Carve(size_t chunks, AllocError* error) {
    if (carved_ + chunks > limit_) {
      *error = AllocError::kOutOfMemory;
      return nullptr;
    }
    char* p = frontier();
    std::memset(p, 0, chunks * kChunkSize);  // fresh memory reads as zero
    carved_ += chunks;
    ++carves_;
    return p;
  }
  void SetMap(char* chunk, size_t chunks, uintptr_t word) {
    for (size_t i = 0; i < chunks; ++i) map_[Index(chunk) + i] = word;
  }
  void Purge(void* p, size_t bytes) {
    std::memset(p, 0, bytes);
    purges_.emplace_back(static_cast<char*>(p), bytes);
    purged_ += bytes;
  }
  uint64_t NowMs() const { return now_ms; }
  void* MapZeroed(size_t bytes) {
    void* p = std::calloc(1, bytes);
    metadata_.push_back(p);
    return p;
  }

  // For the test.
  uint64_t now_ms = 1000000;
  size_t carves() const { return carves_; }
  size_t carved_chunks() const { return carved_; }
  void set_limit(size_t chunks) { limit_ = chunks; }
  uintptr_t map_word(const void* p) const { return map_[Index(p)]; }
  size_t purged() const { return purged_; }
  const std::vector<std::pair<char*, size_t>>& purges() const { return purges_; }
  char* chunk(size_t i) const { return base_ + i * kChunkSize; }

 private:
  size_t Index(const void* p) const {
    return static_cast<size_t>(static_cast<const char*>(p) - base_) >> kChunkShift;
  }

  size_t chunks_;
  char* base_;
  std::vector<uintptr_t> map_;
  size_t limit_;
  size_t carved_ = 0;
  size_t carves_ = 0;
  size_t purged_ = 0;
  std::vector<std::pair<char*, size_t>> purges_;
  std::vector<void*> metadata_;
};

}  // namespace broom::internal

#endif  // BROOM_TESTS_UNIT_CHUNK_FAKE_SPACE_H_
