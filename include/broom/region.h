// Copyright Broom authors.
//
// region.h: the region object shared by all three kinds, and pointer-to-region lookup.
//
//   Region        the state of one region: its blocks, bump pointer, budget, stats and
//                 destructor list. It is also a std::pmr::memory_resource that allocates in it.
//                 Users never construct one; they hold a handle (TemporaryRegion, ActorRegion,
//                 TransferableRegion, SharedRegion) that owns it, and get `Region&` from it.
//   RegionOf(p)   the live region that owns address p, or null. O(1): a range check, one load
//                 of the chunk map and one of the block header.
//   RegionKind, AllocError, RegionOptions, RegionStats: plain value types.
//
// Errors: the raw allocation functions never throw and never call malloc. They return null and
// record why in `last_error()` (and in the thread's broom::LastAllocError()). Sizes that cannot
// be represented (size + alignment padding overflows) give kBadSize; an alignment that is not a
// power of two gives kBadAlignment; a budget exceeded gives kRegionBudget/kProcessBudget; the OS
// refusing memory or the reserved space running out gives kOutOfMemory. Nothing already
// allocated is affected by a failure.
//
// Rounding: transferable and temporary regions hand out every object as a multiple of
// kDefaultAlignment (16) bytes, as malloc does, so their bump pointer is always 16-aligned. A
// 1-byte or 0-byte object therefore takes 16 bytes, a 24-byte one 32, and
// RegionStats::bytes_requested counts the rounded sizes. In exchange the fast path needs no
// padding and one bound check. Alignments above 16 are padded in the out-of-line path.
#ifndef BROOM_REGION_H_
#define BROOM_REGION_H_

#include <cstddef>
#include <cstdint>
#include <memory_resource>

#include "broom/internal/base.h"
#include "broom/internal/block.h"

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
  // Bytes of blocks a region keeps for reuse across TemporaryRegion scopes and Reset(); the
  // rest go back to the thread's cache (still warm).
  size_t retain_bytes = size_t{1} << 20;
  // A name for diagnostics. Must outlive the region (use a string literal).
  const char* name = nullptr;
};

struct RegionStats {
  size_t bytes_requested = 0;   // bytes handed out since creation or last Reset (bump regions:
                                // sizes rounded up to 16, plus padding for alignments above
                                // 16; actor regions: size classes)
  size_t bytes_freed = 0;       // sizes given back with Free (actor regions) or large objects
                                // released early (transferable regions)
  size_t block_bytes = 0;       // bytes of blocks held now (the region's real footprint)
  size_t blocks = 0;            // blocks held now
  size_t peak_block_bytes = 0;  // high-water mark of block_bytes
  size_t cleanups = 0;          // destructors registered and not yet run
};

namespace internal {
struct Cleanup;
class ActorHeap;
class RegionAccess;
// A position in a region, for LIFO rewinding (TemporaryRegion::Scope).
struct RegionMark {
  BlockHeader* current;
  char* cursor;
  char* current_base;
  BlockHeader* head;
  Cleanup* cleanups;
  size_t bytes_requested;
  size_t cleanup_count;
};
}  // namespace internal

// One region. See the file comment.
//
// Ownership and lifetime: owned by exactly one handle (or, for SharedRegion, by its last copy).
// The Region object itself lives inside the region's first block, so a region that holds a few
// hundred bytes costs one 4 KiB block. It is destroyed by its handle; afterwards the object and
// every pointer into the region are invalid, and RegionOf() on them returns null.
//
// Thread-safety: not thread-safe. Only the region's current owner may allocate in it; see the
// handle classes for who the owner is and how ownership moves. RegionOf() and stats() of a
// region owned by another thread are racy snapshots.
class Region : public std::pmr::memory_resource {
 public:
  Region(const Region&) = delete;
  Region& operator=(const Region&) = delete;

  RegionKind kind() const { return kind_; }
  uint64_t id() const { return id_; }
  const char* name() const { return name_ != nullptr ? name_ : ""; }
  RegionStats stats() const;
  AllocError last_error() const { return last_error_; }

  // Budget in bytes of blocks; 0 = unlimited. Lowering it below the current footprint keeps
  // everything allocated and fails the next allocation that needs a new block.
  size_t budget() const { return budget_; }
  void SetBudget(size_t bytes) { budget_ = bytes; }

  // Allocates `size` bytes aligned to `align` (a power of two). Returns null on failure (see
  // the file comment). Size 0 is served as size 1: a unique pointer. Transferable and
  // temporary regions bump-allocate, taking `size` rounded up to 16 (see "Rounding" in the
  // file comment); with `align` <= 16 that is one compare, one add and one store (7
  // instructions when size and align are compile-time constants, as in New<T>: two loads, a
  // subtraction, compare-and-branch, an add and the store). Alignments above 16, size 0,
  // oversized and malformed requests, and a full block take one out-of-line call. Actor
  // regions miss the bump path (their bump space is empty) and use size classes in one
  // out-of-line call.
  inline void* Allocate(size_t size, size_t align = kDefaultAlignment);

  // Gives memory back. Actor regions free the object for reuse; other kinds undo the allocation
  // if it was the last one (cheap vector growth), and transferable regions also release at once
  // a large object that got a block of its own (one over 256 KiB with its header: the old
  // buffer of a growing vector). Anything else is a no-op: the memory is freed in bulk. `p` must
  // come from this region and `size` be the size it was allocated with.
  void Deallocate(void* p, size_t size, size_t align = kDefaultAlignment);

  // Registers `fn(obj)` to run when the region is freed or reset (or, in a temporary region,
  // when the innermost open scope exits), in reverse order of registration. Returns false, with
  // nothing registered, if the region cannot allocate the 24-byte record.
  bool AddCleanup(void (*fn)(void*), void* obj);

  // True if `p` points into a block of this region.
  bool Contains(const void* p) const;

  std::pmr::memory_resource* resource() { return this; }

 protected:
  void* do_allocate(size_t bytes, size_t alignment) override;
  void do_deallocate(void* p, size_t bytes, size_t alignment) override;
  bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }

 private:
  friend class internal::RegionAccess;
  friend class internal::ActorHeap;
  friend class TransferableRegion;  // call AllocateBump directly: their kind is known
  friend class TemporaryRegion;
  Region(RegionKind kind, uint64_t id, const RegionOptions& options, internal::BlockHeader* first);
  ~Region() override = default;

  // Rounds a bump allocation's size up to the granule that keeps cursor_ aligned.
  static constexpr size_t BumpSize(size_t size) {
    return (size + kDefaultAlignment - 1) & ~(kDefaultAlignment - 1);
  }
  void* AllocateBump(size_t size, size_t align);
  BROOM_NOINLINE void* AllocateSlow(size_t size, size_t align);
  // Bumps BumpSize(size) bytes after padding to `align` (a power of two), or returns null if
  // the current block cannot hold them. REQUIRES: 0 < size <= SIZE_MAX / 4.
  void* BumpAligned(size_t size, size_t align);

  // Hot fields first.
  // INVARIANT: current_->begin() <= current_base_ <= cursor_ <= limit_ == current_->end()
  // INVARIANT: cursor_ % kDefaultAlignment == 0 && limit_ % kDefaultAlignment == 0
  char* cursor_;
  char* limit_;
  RegionKind kind_;
  AllocError last_error_ = AllocError::kNone;
  uint16_t open_count_ = 0;  // times pushed on an allocation-context stack (typestate OPEN > 0)
  uint32_t scope_depth_ = 0;  // temporary regions: open Scopes
  internal::BlockHeader* current_;  // block being bump-allocated
  char* current_base_;              // where bump allocation started in current_
  // Bytes handed out outside [current_base_, cursor_): earlier blocks, dedicated blocks, actor
  // objects. Counting per block keeps a store off the bump fast path.
  size_t bytes_requested_ = 0;
  internal::BlockHeader* blocks_;   // all blocks held, newest first; the last is the first block
  internal::BlockHeader* spare_;    // blocks kept for reuse (temporary scopes, Reset)
  internal::Cleanup* cleanups_ = nullptr;
  internal::ActorHeap* actor_ = nullptr;  // actor regions only
  size_t block_bytes_;
  size_t blocks_held_;
  size_t peak_block_bytes_;
  size_t spare_bytes_ = 0;
  size_t budget_;
  size_t retain_bytes_;
  size_t cleanup_count_ = 0;
  size_t bytes_freed_ = 0;
  uint64_t id_;
  const char* name_;
  std::atomic<uint32_t> shared_refs_{0};  // SharedRegion reference count
  uint8_t growth_class_ = 0;  // class of the last block taken for bump growth (not for one object)
  uint32_t owner_tid_ = 0;                // temporary regions: creating thread
};

// The live region owning `p`, or null if `p` is not region memory (heap, stack, freed region).
inline Region* RegionOf(const void* p) {
  internal::BlockHeader* block = internal::BlockOf(p);
  return block != nullptr ? block->owner.load(std::memory_order_relaxed) : nullptr;
}

// ---- inline fast paths ---------------------------------------------------------------------

inline void* Region::AllocateBump(size_t size, size_t align) {
  // cursor_ and limit_ are 16-aligned, so `left` is a multiple of 16: size <= left implies
  // BumpSize(size) <= left, and an alignment up to 16 needs no padding. One compare covers
  // the rest: size 0 wraps and takes the slow path (which hands out a unique granule), sizes
  // too large to round cannot be below `left`, and actor regions, whose cursor_ == limit_,
  // always miss (the slow path dispatches to their size classes). The alignment test folds
  // away for a compile-time `align`.
  const size_t left = static_cast<size_t>(limit_ - cursor_);
  if (BROOM_LIKELY(size - 1 < left && align - 1 < kDefaultAlignment &&
                   (align & (align - 1)) == 0)) {
    char* p = cursor_;
    BROOM_ASSUME(p != nullptr);  // cursor_ points into a block: callers' null checks fold away
    cursor_ = p + BumpSize(size);
#if BROOM_ASAN
    internal::UnpoisonMemory(p, size);  // rewound memory is poisoned until handed out again
#endif
    return p;
  }
  return AllocateSlow(size, align);
}

inline void* Region::Allocate(size_t size, size_t align) { return AllocateBump(size, align); }

}  // namespace broom

#endif  // BROOM_REGION_H_
