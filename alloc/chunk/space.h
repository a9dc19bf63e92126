// Copyright Broom authors. Layer 1 (chunk): the space, the bottom piece of the chunk layer.
//
//   Space   one reserved address range cut into 256 KiB chunks: the chunk map behind BlockOf
//           (include/broom/internal/block.h), and carving of fresh chunks at the frontier,
//           committing memory 64 MiB at a time. It also forwards the OS services the pool needs
//           (purge, a clock, zeroed metadata), so the pool has one layer below it, which tests
//           replace with a fake (tests/unit/chunk/fake_space.h).
//
// The process's space is reserved at its address plan (address_plan.h): the range is the whole
// plan, at the same address in every process of a job, and this process carves only in its own
// slice of it. The chunk map covers the whole range, so blocks of other slices installed here
// (regions received from other processes) are found by BlockOf like any other. base(), size()
// and chunks() describe the whole range; the frontier and the commit step move within the slice.
// A space built from a byte count (tests, and a process whose plan range is taken) is a range
// of one slice, at whatever address the kernel chooses.
// With plan.shared, the own slice is a MAP_SHARED mapping of a memfd the size of the slice
// (inaccessible until committed, as the rest of the range): other processes of the job on this
// machine map it at the same addresses to receive regions without copying (loans.h). Purge then
// frees the file's pages (MADV_REMOVE), which MADV_DONTNEED would not.
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

#include "alloc/chunk/address_plan.h"
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
  // Reserves the plan's whole range at its base. If the plan is invalid or the range cannot be
  // reserved there (EEXIST: something is mapped inside it), reserves one slice's worth anywhere
  // as Space(bytes) does, and plan() reads processes == 0; plan_problem() and plan_errno() say
  // why. Never reserves the range elsewhere.
  explicit Space(const AddressPlan& plan);
  ~Space();
  Space(const Space&) = delete;
  Space& operator=(const Space&) = delete;

  static constexpr size_t kMinReserve = size_t{256} << 20;
  static constexpr size_t kCommitStep = size_t{64} << 20;

  // Makes this space the one BlockOf and InSpace see (g_space). Once per process.
  void Publish() const;

  // The whole reserved range (every slice of the plan).
  char* base() const { return base_; }
  size_t size() const { return size_; }
  size_t chunks() const { return size_ >> kChunkShift; }
  // This process's slice: where Carve hands out chunks.
  char* slice_base() const { return slice_base_; }
  size_t slice_bytes() const { return slice_bytes_; }
  bool InOwnSlice(const void* p) const {
    return reinterpret_cast<uintptr_t>(p) - reinterpret_cast<uintptr_t>(slice_base_) < slice_bytes_;
  }
  // The plan the range was reserved at (processes == 0 if none), and why not.
  const AddressPlan& plan() const { return plan_; }
  const char* plan_problem() const { return plan_problem_; }
  int plan_errno() const { return plan_errno_; }
  // The plan this space was asked for (whether or not it could be placed).
  const AddressPlan& requested_plan() const { return requested_; }
  // The memfd behind the own slice (-1 if plan().shared is false), and why there is none
  // although the plan asked for one (null otherwise; shared_errno() is the errno).
  int shared_fd() const { return shared_fd_; }
  const char* shared_problem() const { return shared_problem_; }
  int shared_errno() const { return shared_errno_; }
  // In a child after fork(): the slices shared with other processes (the own slice if it is
  // memfd-backed, and each slice i with mapped(i), other processes' memfds mapped here) become
  // inaccessible reservations, so the child cannot write into memory its parent or a peer still
  // uses. See docs/design.md, "Shared memory".
  void DetachSharedAfterFork(bool (*mapped)(uint32_t slice));

  // The first chunk never carved; [slice_base, frontier) has been handed out at least once.
  // (Readable from any thread: relaxed snapshots; only Carve writes them.)
  char* frontier() const { return frontier_.load(std::memory_order_relaxed); }
  size_t carved_bytes() const { return static_cast<size_t>(frontier() - slice_base_); }
  size_t committed_bytes() const {
    return static_cast<size_t>(committed_end_.load(std::memory_order_relaxed) - slice_base_);
  }

  // Carves `chunks` fresh chunks at the frontier (contiguous, reading as zero). Returns null
  // with *error = kOutOfMemory if the slice is exhausted or the kernel refuses to commit.
  char* Carve(size_t chunks, AllocError* error);

  // Off by default (BROOM_HUGE_PAGES turns it on for the process's space): when on, every
  // commit step Carve commits from now on is advised for transparent huge pages
  // (os::AdviseHugePages; advice only, so a kernel that refuses changes nothing). Steps
  // committed before stay as they are. Blocks borrowed from other slices are not advised.
  void set_huge_pages(bool on) { huge_pages_ = on; }
  bool huge_pages() const { return huge_pages_; }

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
  void Purge(void* p, size_t bytes) {
    if (shared_fd_ >= 0) {
      os::PurgeShared(p, bytes);  // the pool purges only the own slice
    } else {
      os::Purge(p, bytes);
    }
  }
  uint64_t NowMs() const { return os::NowMs(); }
  // Zeroed memory charged only when touched (the pool's per-chunk records); never freed.
  void* MapZeroed(size_t bytes);

 private:
  // Reserves `bytes` anywhere (halving as the constructor comment says) and sets base_/size_.
  void ReserveAnywhere(size_t bytes);
  // Replaces the own slice's reservation with a memfd mapping (still inaccessible); on failure
  // keeps the reservation, clears plan_.shared and says why in shared_problem_.
  void BackSliceWithSharedMemory();
  // Maps the chunk map for size_ and starts the frontier at slice_base_.
  void Init();

  char* base_;
  size_t size_;
  char* slice_base_;
  size_t slice_bytes_;
  std::atomic<uintptr_t>* map_;
  // INVARIANT: base_ <= slice_base_ <= frontier_ <= committed_end_ <= slice_base_ +
  // slice_bytes_ <= base_ + size_.
  std::atomic<char*> frontier_;
  std::atomic<char*> committed_end_;
  AddressPlan plan_;
  AddressPlan requested_;
  const char* plan_problem_ = nullptr;
  int plan_errno_ = 0;
  int shared_fd_ = -1;
  bool huge_pages_ = false;
  const char* shared_problem_ = nullptr;
  int shared_errno_ = 0;
};

}  // namespace broom::internal

#endif  // BROOM_ALLOC_CHUNK_SPACE_H_
