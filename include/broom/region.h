// Copyright Broom authors.
//
// region.h: the region objects and pointer-to-region lookup.
//
//   Region        what every region has: identity (id, kind, name), budget, statistics, the
//                 blocks it holds, destructors to run, and its place on allocation contexts. It
//                 is a std::pmr::memory_resource. Allocate/Deallocate on a plain Region& switch on
//                 kind() to one of the two allocators below.
//   BumpRegion    the allocator of transferable and temporary regions: a bump pointer in the
//                 current block, blocks growing geometrically, everything freed in bulk.
//   ReapRegion    the allocator of actor regions (a "reap": a region with per-object free):
//                 size-class slabs, each with its own free list, empty slabs reused by any class.
//   RegionOf(p)   the live region that owns address p, or null. O(1): a range check, one load
//                 of the chunk map and one of the block header.
//   RegionKind, AllocError, RegionOptions, RegionStats: plain value types.
//
// Users never construct a region object; they hold a handle (TransferableRegion, TemporaryRegion,
// ActorRegion, SharedRegion) that owns one, and get `BumpRegion&`/`ReapRegion&` from it. Code that
// knows the kind calls the typed object (its Allocate is the inline fast path, no dispatch); code
// that does not (the allocation context, RegionOf) uses `Region&`.
//
// Errors: the raw allocation functions never throw and never call malloc. They return null and
// record why in `last_error()` (and in the thread's broom::LastAllocError()). Sizes that cannot
// be represented (size + alignment padding overflows) give kBadSize; an alignment that is not a
// power of two gives kBadAlignment; a budget exceeded gives kRegionBudget/kProcessBudget; the OS
// refusing memory or the reserved space running out gives kOutOfMemory. Nothing already
// allocated is affected by a failure. Size 0 is served as size 1 (a unique pointer).
#ifndef BROOM_REGION_H_
#define BROOM_REGION_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory_resource>

#include "broom/internal/base.h"
#include "broom/internal/block.h"
#include "broom/internal/size_class.h"

namespace broom {

enum class RegionKind : uint8_t { kTransferable = 0, kActor = 1, kTemporary = 2 };
inline constexpr int kNumRegionKinds = 3;
const char* KindName(RegionKind kind);

enum class AllocError : uint8_t {
  kNone = 0,
  kBadSize,        // size (plus alignment) overflows, or count * size overflows
  kBadAlignment,   // alignment is zero or not a power of two
  kRegionBudget,   // the region's byte budget would be exceeded
  kProcessBudget,  // the process-wide region budget would be exceeded
  kOutOfMemory,    // the OS refused memory or the reserved address space is exhausted
};
const char* ErrorName(AllocError error);

// The reason for the last failed allocation on this thread (any region), or kNone.
AllocError LastAllocError();

inline constexpr size_t kDefaultAlignment = alignof(std::max_align_t);  // 16, as malloc

struct RegionOptions {
  // Bytes of blocks the region may hold; 0 means unlimited. Checked whenever the region takes a
  // new block, so block bytes never exceed it.
  size_t budget_bytes = 0;
  // Bytes of free blocks a region keeps for reuse: across TemporaryRegion scopes and Reset()
  // (bump regions), and empty slabs waiting for any size class (actor regions, which also keep
  // at most a quarter of their blocks, at least 256 KiB). The rest go back to the thread's cache.
  size_t retain_bytes = size_t{1} << 20;
  // A name for diagnostics. Must outlive the region (use a string literal).
  const char* name = nullptr;
};

struct RegionStats {
  size_t bytes_requested = 0;   // bytes handed out since creation or last Reset (bump regions:
                                // sizes rounded up to 16, plus padding for alignments above
                                // 16; actor regions: size classes, and large objects' blocks)
  size_t bytes_freed = 0;       // of those, given back with Free (actor regions) or large
                                // objects released early (transferable regions)
  size_t block_bytes = 0;       // bytes of blocks held now (the region's real footprint)
  size_t blocks = 0;            // blocks held now
  size_t peak_block_bytes = 0;  // high-water mark of block_bytes
  size_t cleanups = 0;          // destructors registered and not yet run (AddCleanup, and
                                // objects made by New with a non-trivial destructor)
};

class BumpRegion;
class ReapRegion;
class Region;

namespace internal {
struct Cleanup;
struct ActorCleanupNode;
void PushContext(Region* r);
void PopContext(Region* r);

// The calling thread's id (gettid), cached per thread.
extern thread_local constinit uint32_t t_thread_id;
uint32_t InitThreadId();
inline uint32_t CurrentThreadId() {
  const uint32_t t = t_thread_id;
  return BROOM_LIKELY(t != 0) ? t : InitThreadId();
}
}  // namespace internal

// Owner-thread checks on allocation fast paths: compiled into debug (BROOM_DEBUG >= 2) and
// checked (-DBROOM_CHECKED=ON) builds only. Slow paths and every other region operation check
// always (see Region::owner_thread()).
#if BROOM_DEBUG >= 2 || (defined(BROOM_CHECKED) && BROOM_CHECKED)
#define BROOM_OWNER_CHECK_FAST(region, op) (region)->CheckThread(op)
#else
#define BROOM_OWNER_CHECK_FAST(region, op) BROOM_INTERNAL_DISABLED((region)->CheckThread(op))
#endif

// The common part of every region. See the file comment.
//
// Ownership and lifetime: owned by exactly one handle (or, for SharedRegion, by its last copy).
// The object lives inside the region's first block, so a region that holds a few hundred bytes
// costs one small block. It is destroyed by its handle; afterwards the object and every pointer
// into the region are invalid, and RegionOf() on them returns null.
//
// Thread-safety: not thread-safe. Only the region's current owner may use it; see the handle
// classes for who the owner is and how ownership moves. RegionOf() and stats() of a region owned
// by another thread are racy snapshots.
class Region : public std::pmr::memory_resource {
 public:
  Region(const Region&) = delete;
  Region& operator=(const Region&) = delete;

  RegionKind kind() const { return kind_; }
  uint64_t id() const { return id_; }
  const char* name() const { return name_ != nullptr ? name_ : ""; }
  AllocError last_error() const { return last_error_; }
  RegionStats stats() const;

  // Budget in bytes of blocks; 0 = unlimited. Lowering it below the current footprint keeps
  // everything allocated and fails the next allocation that needs a new block.
  size_t budget() const { return budget_; }
  void SetBudget(size_t bytes) { budget_ = bytes; }

  // Allocates `size` bytes aligned to `align` (a power of two) with the region's allocator
  // (BumpRegion::Allocate or ReapRegion::Allocate: one predictable branch on kind() in front of
  // that fast path). Returns null on failure (see the file comment).
  inline void* Allocate(size_t size, size_t align = kDefaultAlignment);
  // Gives memory back; see BumpRegion::Deallocate and ReapRegion::Free. `p` must come from this
  // region and `size` be the size it was allocated with.
  inline void Deallocate(void* p, size_t size, size_t align = kDefaultAlignment);

  // Registers `fn(obj)` to run when the region is freed or reset (or, in a temporary region,
  // when the innermost open scope exits), in reverse order of registration. Returns false, with
  // nothing registered, if the region cannot allocate the 24-byte record.
  bool AddCleanup(void (*fn)(void*), void* obj);

  // True if `p` points into a block of this region.
  bool Contains(const void* p) const;

  std::pmr::memory_resource* resource() { return this; }

  // Times the region is open on an allocation context now (typestate OPEN while > 0).
  uint32_t open_count() const { return open_count_; }

  // The thread that owns the region now, or 0 if none does: a temporary region belongs to the
  // thread that created it, for good; any other region is owned by the thread that has it open
  // on its allocation context, while it is open (an engine opens an operator's regions for each
  // callback, so an actor that migrates between threads takes its regions along). Opening,
  // allocating on a slow path, freeing an actor object on a slow path, Reset, Free, Transfer and
  // Share from another thread are fatal, naming both threads, as is destroying a region open on
  // another thread (a closed one may be destroyed anywhere). Allocation fast paths check it in
  // debug and checked builds (BROOM_OWNER_CHECK_FAST), and in checked mode (check.h) a bump
  // region sends every allocation through its slow path and an actor region every free.
  uint32_t owner_thread() const { return owner_tid_.load(std::memory_order_relaxed); }

  // Fatal unless owner_thread() is 0 or the calling thread. `op` names the operation.
  void CheckThread(const char* op) const {
    const uint32_t owner = owner_tid_.load(std::memory_order_relaxed);
    if (BROOM_UNLIKELY(owner != 0 && owner != internal::CurrentThreadId())) DieWrongThread(op);
  }

  // The typed allocator behind this region; fatal if the kind does not match.
  BumpRegion& AsBump();
  ReapRegion& AsReap();

  // For checks and tools: calls fn(ctx, block, begin, end) for every range of bytes that may
  // hold live objects (bump regions: the used part of each block; actor regions: each allocated
  // object and large object). Owner only.
  using RangeVisitor = void (*)(void* ctx, const internal::BlockHeader* block, const char* begin,
                                const char* end);
  void ForEachLiveRange(RangeVisitor fn, void* ctx) const;

 protected:
  Region(RegionKind kind, uint64_t id, const RegionOptions& options, internal::BlockHeader* first);
  ~Region() override = default;

  bool do_is_equal(const std::pmr::memory_resource& other) const noexcept final {
    return this == &other;
  }

  // Takes a block of at least `bytes` (header included) charged to the budget, or returns null
  // with the error recorded. The block is not linked into any list.
  internal::BlockHeader* AcquireBlock(size_t bytes);
  // Gives a block that is in no list back to the thread's cache, uncharging it.
  void ReleaseBlock(internal::BlockHeader* b);
  // blocks_ is doubly linked through next/prev.
  void LinkBlock(internal::BlockHeader* b);
  void UnlinkBlock(internal::BlockHeader* b);
  void SetError(AllocError e);
  [[noreturn]] BROOM_NOINLINE void DieWrongThread(const char* op) const;
  // Runs the AddCleanup records registered after `until` (newest first); each may allocate.
  void RunCleanups(internal::Cleanup* until);
  // Names this region as the one whose blocks the thread is about to release (quarantine).
  void NoteReleasing() const;
  // The end of the region's life: destroys the object (virtually: the derived destructor runs),
  // then releases `blocks`, whose last block holds the object. *this is gone on return.
  void DestroyAndRelease(internal::BlockHeader* blocks);

  // INVARIANT: block_bytes_ == the sum of the sizes of the blocks held, <= budget_ when the
  // budget was set before they were taken; peak_block_bytes_ >= block_bytes_.
  RegionKind kind_;
  AllocError last_error_ = AllocError::kNone;
  uint16_t open_count_ = 0;  // times pushed on an allocation-context stack
  // See owner_thread(). Atomic so that the misuse it catches (another thread's access) is a
  // report, not a data race; relaxed loads and stores, as cheap as plain ones.
  std::atomic<uint32_t> owner_tid_{0};
  uint64_t id_;
  const char* name_;
  size_t budget_;
  size_t block_bytes_;
  size_t blocks_held_ = 1;
  size_t peak_block_bytes_;
  size_t bytes_freed_ = 0;
  internal::BlockHeader* blocks_;  // newest first; the first block (holding *this) is last.
                                   // Bump regions: every block; actor regions: the first block
                                   // and large objects (slabs are in the reap's own lists)
  internal::Cleanup* cleanups_ = nullptr;
  size_t cleanup_count_ = 0;

 private:
  friend void internal::PushContext(Region* r);
  friend void internal::PopContext(Region* r);
};

}  // namespace broom

#include "broom/internal/bump_region.h"
#include "broom/internal/reap_region.h"

namespace broom {

// The live region owning `p`, or null if `p` is not region memory (heap, stack, freed region).
inline Region* RegionOf(const void* p) {
  internal::BlockHeader* block = internal::BlockOf(p);
  return block != nullptr ? block->owner.load(std::memory_order_relaxed) : nullptr;
}

inline void* Region::Allocate(size_t size, size_t align) {
  if (kind_ == RegionKind::kActor) return static_cast<ReapRegion*>(this)->Allocate(size, align);
  return static_cast<BumpRegion*>(this)->Allocate(size, align);
}

inline void Region::Deallocate(void* p, size_t size, size_t align) {
  if (kind_ == RegionKind::kActor) {
    static_cast<ReapRegion*>(this)->Free(p);
  } else {
    static_cast<BumpRegion*>(this)->Deallocate(p, size, align);
  }
}

}  // namespace broom

#endif  // BROOM_REGION_H_
