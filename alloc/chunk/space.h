// Copyright Broom authors. Layer 1 (chunk): the space, the bottom piece of the chunk layer.
//
//   Space   one reserved address range cut into 256 KiB chunks: the chunk map behind BlockOf
//           (include/broom/internal/block.h), and carving of fresh chunks at the frontier,
//           committing memory 64 MiB at a time. It also forwards the OS services the pool needs
//           (purge, a clock, zeroed metadata), so the pool has one layer below it, which tests
//           replace with a fake (tests/unit/chunk/fake_space.h).
//
// Ownership: the process-wide space is never destroyed (threads release blocks during static
// destruction); a test may create and destroy its own, which never publishes to g_space.
// Thread-safety: thread-compatible: Carve is called under the pool's lock. Map words are atomics,
// written before a block's address is handed to another thread; reads need no lock.
#ifndef BROOM_ALLOC_CHUNK_SPACE_H_
#define BROOM_ALLOC_CHUNK_SPACE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "alloc/os/os.h"
#include "broom/internal/block.h"
#include "broom/region.h"

namespace broom::internal {

class Space {
 public:
  // Reserves `bytes` of address space (rounded down to whole chunks, at least one), halving the
  // request until the kernel accepts, down to kMinReserve (or `bytes` if smaller); fatal below
  // that (no region could ever be made). Commits nothing.
  explicit Space(size_t bytes);
  ~Space();
  Space(const Space&) = delete;
  Space& operator=(const Space&) = delete;

  static constexpr size_t kMinReserve = size_t{256} << 20;
  static constexpr size_t kCommitStep = size_t{64} << 20;

  // Makes this space the one BlockOf and InSpace see (g_space). Once per process.
  void Publish() const;

  char* base() const { return base_; }
  size_t size() const { return size_; }
  size_t chunks() const { return size_ >> kChunkShift; }
  // The first chunk never carved; [base, frontier) has been handed out at least once.
  // (Readable from any thread: relaxed snapshots; only Carve writes them.)
  char* frontier() const { return frontier_.load(std::memory_order_relaxed); }
  size_t carved_bytes() const { return static_cast<size_t>(frontier() - base_); }
  size_t committed_bytes() const {
    return static_cast<size_t>(committed_end_.load(std::memory_order_relaxed) - base_);
  }

  // Carves `chunks` fresh chunks at the frontier (contiguous, reading as zero). Returns null
  // with *error = kOutOfMemory if the space is exhausted or the kernel refuses to commit.
  char* Carve(size_t chunks, AllocError* error);

  // Stores `word` in the map words of `chunks` chunks from `chunk` (release order): a run's
  // header address, CarvedMapWord(size) for a chunk of blocks, 0 for a free run chunk.
  void SetMap(char* chunk, size_t chunks, uintptr_t word);
  uintptr_t MapWord(const void* p) const {
    return map_[(reinterpret_cast<uintptr_t>(p) - reinterpret_cast<uintptr_t>(base_)) >>
                kChunkShift]
        .load(std::memory_order_acquire);
  }
  // Sets `bits` in the map word of the chunk holding `p` (quarantine's mark).
  void OrMap(const void* p, uintptr_t bits);

  // OS services forwarded for the pool.
  void Purge(void* p, size_t bytes) { os::Purge(p, bytes); }
  uint64_t NowMs() const { return os::NowMs(); }
  // Zeroed memory charged only when touched (the pool's per-chunk records); never freed.
  void* MapZeroed(size_t bytes);

 private:
  char* base_;
  size_t size_;
  std::atomic<uintptr_t>* map_;
  // INVARIANT: base_ <= frontier_ <= committed_end_ <= base_ + size_.
  std::atomic<char*> frontier_;
  std::atomic<char*> committed_end_;
};

}  // namespace broom::internal

#endif  // BROOM_ALLOC_CHUNK_SPACE_H_
