// Copyright Broom authors. Part of broom/region.h (include that, not this): BumpRegion.
//
// Rounding: a bump region hands out every object as a multiple of kDefaultAlignment (16) bytes,
// as malloc does, so its bump pointer is always 16-aligned. A 1-byte or 0-byte object therefore
// takes 16 bytes, a 24-byte one 32, and RegionStats::bytes_requested counts the rounded sizes. In
// exchange the fast path needs no padding and one bound check. Alignments above 16 are padded in
// the out-of-line path.
#ifndef BROOM_INTERNAL_BUMP_REGION_H_
#define BROOM_INTERNAL_BUMP_REGION_H_

#ifndef BROOM_REGION_H_
#error "include broom/region.h"
#endif

#include "broom/internal/owned_region.h"

namespace broom {

class TransferableRegion;
class TemporaryRegion;
class SharedRegion;

namespace internal {
struct ShipAccess;  // alloc/region/ship.cc: exports and rebuilds a region shipped by address
// A position in a bump region, for LIFO rewinding (TemporaryRegion::Scope).
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

// The allocator of transferable and temporary regions: bump allocation in the current block;
// when it is full, a new block two block classes (4x) larger than the last, up to 256 KiB;
// objects too large for that get a block of their own. Nothing is freed one by one (but see
// Deallocate); the handle frees every block at once.
//
// Ownership and lifetime: owned by a TransferableRegion, TemporaryRegion or SharedRegion; see
// Region. Thread-safety: owner only (see the handles).
class BumpRegion final : public Region {
 public:
  // Bump-allocates `size` rounded up to 16 (see the file comment). With `align` <= 16 that is
  // one compare, one add and one store (7 instructions when size and align are compile-time
  // constants, as in New<T>: two loads, a subtraction, compare-and-branch, an add and the store).
  // Alignments above 16, size 0, oversized and malformed requests, and a full block take one
  // out-of-line call.
  inline void* Allocate(size_t size, size_t align = kDefaultAlignment);

  // Undoes the allocation if it was the last one (cheap vector growth); in a transferable region
  // also releases at once a large object that got a block of its own (one over 256 KiB with its
  // header: the old buffer of a growing vector). Anything else is freed in bulk; in checked mode
  // its bytes are zeroed now, so scans do not read the pointers a dead object held. `size` must
  // be the size `p` was allocated with.
  void Deallocate(void* p, size_t size, size_t align = kDefaultAlignment);

  RegionStats stats() const;
  void ForEachLiveRange(RangeVisitor fn, void* ctx) const;

 protected:
  void* do_allocate(size_t bytes, size_t alignment) final;
  void do_deallocate(void* p, size_t bytes, size_t alignment) final {
    Deallocate(p, bytes, alignment);
  }

 private:
  friend class TransferableRegion;
  friend class TemporaryRegion;
  friend class SharedRegion;
  template <class R, const char* kName>
  friend class internal::OwnedRegion;
  friend struct internal::ShipAccess;

  // Creates a region of `kind` (transferable or temporary) in a fresh 4 KiB block; returns null
  // (LastAllocError() says why) if no block can be had.
  static BumpRegion* Create(RegionKind kind, const RegionOptions& options);
  // Runs outstanding destructors and releases every block. `op` names the operation for the
  // fatal message if the region is open.
  void Destroy(const char* op);
  // Destroy for OwnedRegion: "destruction of <handle>".
  static void DestroyOwned(BumpRegion* r, const char* handle);
  // Frees all objects, keeping up to retain_bytes of blocks. Fatal if open.
  void Reset(const char* op);
  internal::RegionMark Mark() const;
  void Rewind(const internal::RegionMark& mark);
  // If `p` is the object of one of this region's dedicated blocks, releases the block.
  void FreeDedicated(void* p);
  void ClearIfOwned(char* p, size_t size);  // checked mode: zeroes a dead object of this region

  BumpRegion(RegionKind kind, uint64_t id, const RegionOptions& options,
             internal::BlockHeader* first);
  ~BumpRegion() override = default;

  static constexpr size_t BumpSize(size_t size) {
    return (size + kDefaultAlignment - 1) & ~(kDefaultAlignment - 1);
  }
  BROOM_NOINLINE void* AllocateSlow(size_t size, size_t align);
  // Bumps BumpSize(size) bytes after padding to `align` (a power of two), or returns null if
  // the current block cannot hold them. REQUIRES: 0 < size <= SIZE_MAX / 4.
  void* BumpAligned(size_t size, size_t align);
  char* FirstObjectByte() const;
  // Sets limit_ for the current block (see its invariant).
  void OpenWindow() { limit_ = checked_ ? cursor_ : current_->end(); }
  // Level 3 (BROOM_VALIDATE): every block, the bump state, the spare list and the counters.
  void Validate() const;

  // Hot fields first.
  // INVARIANT: current_->begin() <= current_base_ <= cursor_ <= limit_ <= current_->end(), and
  // limit_ == current_->end() unless checked_ (then limit_ == cursor_: the fast path always
  // misses, so every allocation takes the slow path and its owner-thread check)
  // INVARIANT: cursor_ % kDefaultAlignment == 0 && limit_ % kDefaultAlignment == 0
  char* cursor_;
  char* limit_;
  internal::BlockHeader* current_;  // block being bump-allocated
  char* current_base_;              // where bump allocation started in current_
  // Bytes handed out outside [current_base_, cursor_): earlier blocks, dedicated blocks.
  // Counting per block keeps a store off the fast path.
  size_t bytes_requested_ = 0;
  internal::BlockHeader* spare_ = nullptr;  // blocks kept for reuse (temporary scopes, Reset)
  size_t spare_bytes_ = 0;
  size_t retain_bytes_;
  uint32_t scope_depth_ = 0;  // temporary regions: open Scopes
  uint8_t growth_class_;      // class of the last block taken for growth (not for one object)
  bool checked_;              // created in checked mode (check.h): see limit_
  std::atomic<uint32_t> shared_refs_{0};  // SharedRegion reference count
};

// ---- inline fast path ----------------------------------------------------------------------

inline void* BumpRegion::Allocate(size_t size, size_t align) {
  // cursor_ and limit_ are 16-aligned, so `left` is a multiple of 16: size <= left implies
  // BumpSize(size) <= left, and an alignment up to 16 needs no padding. One compare covers
  // the rest: size 0 wraps and takes the slow path (which hands out a unique granule), and
  // sizes too large to round cannot be below `left`. The alignment test folds away for a
  // compile-time `align`.
  BROOM_OWNER_CHECK_FAST(this, "Allocate");
  const size_t left = static_cast<size_t>(limit_ - cursor_);
  if (BROOM_LIKELY(size - 1 < left && align - 1 < kDefaultAlignment &&
                   (align & (align - 1)) == 0)) {
    char* p = cursor_;
    BROOM_ASSERT_FAST(p + BumpSize(size) <= current_->end() &&
                      reinterpret_cast<uintptr_t>(p) % kDefaultAlignment == 0);
    BROOM_ASSUME(p != nullptr);  // cursor_ points into a block: callers' null checks fold away
    cursor_ = p + BumpSize(size);
#if BROOM_ASAN
    internal::UnpoisonMemory(p, size);  // rewound memory is poisoned until handed out again
#endif
    return p;
  }
  return AllocateSlow(size, align);
}

}  // namespace broom

#endif  // BROOM_INTERNAL_BUMP_REGION_H_
