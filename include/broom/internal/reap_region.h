// Copyright Broom authors. Part of broom/region.h (include that, not this): ReapRegion.
//
// Structure (free-list sharding, as in mimalloc, without any atomics: only the owner touches an
// actor region):
//   * Objects up to 8 KiB come from slabs: blocks of one size class, objects from begin() on.
//     Each slab has its own free list; a class allocates from one slab, its "current" slab,
//     until that slab is exhausted, so consecutive allocations come from one block (cache- and
//     TLB-local) and a freed object goes back to the slab it belongs to, found from its address
//     alone (BlockOf: the chunk map and a mask).
//   * The current slab's free lists live in the class table (ClassState), so the fast path is
//     a table load, a pop and two stores, with no access to the slab header. Objects freed into
//     the current slab wait on a second list until the first runs out.
//   * Other slabs of a class are full (region-wide list `full_`) or partial (the class's
//     `partial_` list, where the slow path finds them). A slab whose last object is freed goes
//     to the region's empty slabs, reusable by any class; beyond a bound it goes back to the
//     thread's block cache. So a region's memory follows what is live.
//   * A class's first slab is the smallest block that holds one object (1 KiB for most
//     classes); each further slab doubles, up to 64 KiB (256 KiB for objects above 4 KiB).
//   * Larger objects get a block of their own, released when freed.
//   * Free always checks its pointer: it must belong to this region and be the start of an
//     object. A freed object carries a tag word; a second free is caught at once in the current
//     slab (a tagged object is confirmed on the free lists), and for objects of older slabs,
//     whose memory Free does not read, when the object is handed out again (the tag must be
//     there) or its slab empties (its free list must be exactly its objects).
#ifndef BROOM_INTERNAL_REAP_REGION_H_
#define BROOM_INTERNAL_REAP_REGION_H_

#ifndef BROOM_REGION_H_
#error "include broom/region.h"
#endif

#include "broom/internal/owned_region.h"

namespace broom {

class ActorRegion;

// The allocator of actor regions: size-class slabs with per-slab free lists (see the file
// comment), and large objects in blocks of their own.
//
// Ownership and lifetime: owned by an ActorRegion; see Region. Destroying it runs the
// destructors of objects made with New and never deleted, then releases every block at once.
// Thread-safety: owner only, never shared (see ActorRegion).
class ReapRegion final : public Region {
 public:
  static constexpr int kNumClasses = internal::kReapNumClasses;
  static constexpr size_t kMaxSmall = internal::kReapMaxSmall;  // larger: a block of its own

  // Allocates from the size class of `size`: pops the class's current free list (about 10
  // instructions: a table load, two loads, three stores). Alignments up to 64 are served from
  // slabs (a class whose size is a multiple of the alignment), larger ones from a block of
  // their own. An empty free list, sizes above 1 KiB with a runtime size, and errors take one
  // out-of-line call.
  inline void* Allocate(size_t size, size_t align = kDefaultAlignment);

  // Frees one object for reuse; null is ignored. Fatal (always checked), naming this region and
  // the pointer's owner: `p` not owned by this region (heap, another region, freed region), not
  // the start of an object, or already free (double free). A double free is reported at the
  // second Free when the object's slab is current for its class or has just emptied; otherwise
  // (an older slab that still holds live objects, whose objects Free does not read) when the
  // object would be handed out again or its slab empties, always before its memory is reused.
  // Inline: the lookup of p's slab, the checks and the push take about 40 instructions; a slab
  // that becomes full-to-partial or empty, a large object, checked mode and every error take
  // one out-of-line call.
  inline void Free(void* p);
  void Deallocate(void* p, size_t /*size*/, size_t /*align*/ = kDefaultAlignment) { Free(p); }

  // The usable size of an allocated object (its size class, or the rest of its block for a
  // large object). REQUIRES: as Free.
  size_t UsableSize(const void* p) const;

  // O(slabs): live bytes are counted per slab, keeping counters off the fast path.
  RegionStats stats() const;
  void ForEachLiveRange(RangeVisitor fn, void* ctx) const;

  // Walks every slab list, free list and counter and checks the invariants below (fatal, with a
  // message, on the first violation). O(slabs + free objects): for tests, the fuzz driver and
  // BROOM_DEBUG >= 3.
  void Validate() const;

  // For broom::NewIn/Delete: an object with a cleanup node in front, so Delete can run its
  // destructor and the region can run the destructors of objects never deleted.
  void* AllocateWithCleanup(size_t size, size_t align, void (*destroy)(void*), size_t count);
  // Frees an object made by AllocateWithCleanup, running its destroy function first if
  // `run_destructor`. Fatal on a double free.
  void FreeWithCleanup(void* object, size_t align, bool run_destructor);

 protected:
  void* do_allocate(size_t bytes, size_t alignment) final;
  void do_deallocate(void* p, size_t, size_t) final { Free(p); }

 private:
  friend class ActorRegion;
  template <class R, const char* kName>
  friend class internal::OwnedRegion;

  // The class table entry: the current slab and its two free lists. Allocation pops `free`;
  // objects freed into the current slab go to `local_free`, taken over only when `free` runs
  // out (as mimalloc's page does), so consecutive allocations keep walking the slab in order
  // instead of reusing what was just freed.
  struct ClassState {
    void* free;                   // intrusive: word 0 = next, word 1 = kReapFreedTag ^ address
    void* local_free;             // the same, for objects freed since `free` was last refilled
    internal::BlockHeader* slab;  // the current slab, or null
    uint32_t used;                // objects of the current slab allocated and not freed
    uint32_t slabs;               // slabs the class holds (drives slab growth)
  };
  static_assert(sizeof(ClassState) == 32);

  static ReapRegion* Create(const RegionOptions& options);
  void Destroy(const char* op);
  static void DestroyOwned(ReapRegion* r, const char* handle);

  ReapRegion(uint64_t id, const RegionOptions& options, internal::BlockHeader* first);
  ~ReapRegion() override = default;

  BROOM_NOINLINE void* AllocateSlow(size_t size, size_t align);
  BROOM_NOINLINE void FreeSlow(void* p);
  // A free took slab `b` of class c (not current) from `live_before` live objects to one fewer:
  // moves it from the full list to its class's partial list, or to the empty slabs.
  BROOM_NOINLINE void MoveSlab(internal::BlockHeader* b, int c, uint16_t live_before);
  [[noreturn]] BROOM_NOINLINE void DieLostTag(const void* p) const;
  // ASan builds: makes a freed object unaddressable but for its two list words.
  static void PoisonFreed(uintptr_t* words, int c);
  void* AllocateLarge(size_t size, size_t align);
  // Gives class `c` a non-empty current free list (carving, or the next partial, empty or new
  // slab). Returns false, with the error recorded, if no block can be had.
  bool Refill(int c);
  internal::BlockHeader* TakeSlab(int c);
  void Carve(ClassState& s, internal::BlockHeader* b, size_t csize);
  void SlabEmptied(internal::BlockHeader* b, int c);
  void FreeLarge(internal::BlockHeader* b, void* p);
  void DieIfFreed(internal::BlockHeader* b, const void* p) const;
  [[noreturn]] void DieBadFree(const void* p, const char* why) const;
  size_t EmptyBound() const;
  template <class F>
  void ForEachSlab(F&& f) const;

  // Hot: the class table, one entry per size class (1 KiB).
  ClassState classes_[kNumClasses] = {};
  // INVARIANT: every slab of this region is in exactly one of: classes_[c].slab, partial_[c]
  // (0 < live_objects < capacity), full_ (live_objects == capacity), empty_[block class]
  // (object_class == kEmptySlab). Lists are doubly linked through next/prev, empty_ singly.
  uint32_t classes_used_ = 0;  // bit c: class c has had a slab (partial_[c] is initialized)
  internal::BlockHeader* partial_[kNumClasses];  // set when the class's bit is set
  internal::BlockHeader* full_ = nullptr;
  internal::BlockHeader* empty_[internal::kNumBlockClasses] = {};
  size_t empty_bytes_ = 0;
  size_t retain_bytes_;
  // kNumClasses, or 0 if checked mode was on at creation: then every free takes FreeSlow, which
  // zeroes the freed object (no stale words for scans).
  const uint16_t fast_free_classes_;
  internal::ActorCleanupNode* nodes_ = nullptr;  // objects with destructors, newest first
  size_t node_count_ = 0;
};

// ---- inline fast path ----------------------------------------------------------------------

inline void* ReapRegion::Allocate(size_t size, size_t align) {
  BROOM_OWNER_CHECK_FAST(this, "Allocate");
  // align in {1, 2, 4, 8, 16}: one shift of a mask of those bits; size 0 wraps to the slow path.
  if (BROOM_LIKELY(size - 1 < internal::kReapTableMax && align <= kDefaultAlignment &&
                   ((0x10116u >> align) & 1) != 0)) {
    const int c = internal::kReapClasses.class_of[(size + 15) >> 4];
    ClassState& s = classes_[c];
    auto* p = static_cast<uintptr_t*>(s.free);
    if (BROOM_UNLIKELY(p == nullptr)) {  // take over what was freed into the current slab
      p = static_cast<uintptr_t*>(s.local_free);
      s.local_free = nullptr;
    }
    if (BROOM_LIKELY(p != nullptr)) {
#if BROOM_ASAN
      internal::UnpoisonMemory(p, internal::kReapClasses.size[c]);
#endif
      // A free object carries its tag (always checked: word 1 is on the line word 0 is read
      // from). Without it the object was freed twice or written after it was freed.
      if (BROOM_UNLIKELY(p[1] != (internal::kReapFreedTag ^ reinterpret_cast<uintptr_t>(p)))) {
        DieLostTag(p);
      }
      s.free = reinterpret_cast<void*>(p[0]);
      p[1] = 0;  // clear the freed tag
      ++s.used;
      return p;
    }
  }
  return AllocateSlow(size, align);
}

inline void ReapRegion::Free(void* p) {
  BROOM_OWNER_CHECK_FAST(this, "Free");
  internal::BlockHeader* b = internal::BlockOfOrNull(p);  // null for null, heap pointers...
  // fast_free_classes_ is 0 in checked mode: every free takes the slow path.
  if (BROOM_LIKELY(b != nullptr && b->owner.load(std::memory_order_relaxed) == this &&
                   b->object_class < fast_free_classes_)) {
    const int c = b->object_class;
    const size_t offset = static_cast<size_t>(static_cast<char*>(p) - b->begin());
    auto* words = static_cast<uintptr_t*>(p);
    const uintptr_t tag = internal::kReapFreedTag ^ reinterpret_cast<uintptr_t>(p);
    uint32_t index;
    // One compare bounds p to the carved objects (below begin() wraps around).
    if (BROOM_LIKELY(offset < static_cast<size_t>(b->used_end - b->begin()) &&
                     internal::IsReapObjectOffset(offset, c, &index))) {
      ClassState& s = classes_[c];
      if (b == s.slab) {
        // A freed object carries its tag: the slow path confirms the double free.
        if (BROOM_UNLIKELY(words[1] == tag)) return FreeSlow(p);
        words[0] = reinterpret_cast<uintptr_t>(s.local_free);
        words[1] = tag;
        s.local_free = p;
        --s.used;
        bytes_freed_ += internal::kReapClasses.size[c];
        PoisonFreed(words, c);
        return;
      }
      // The object is not read here (a scattered free would miss on it): a second free of it is
      // caught when it is handed out again (Allocate checks the tag) or when the slab empties
      // (the checksum over its list does not match; SlabEmptied).
      const uint16_t live = b->live_objects;
      BROOM_ASSERT_FAST(live >= 1 && live <= b->capacity);
      words[0] = reinterpret_cast<uintptr_t>(b->free_list);
      words[1] = tag;
      b->free_list = p;
      b->live_objects = static_cast<uint16_t>(live - 1);
      b->freed_checksum += internal::ReapChecksumTerm(index);
      bytes_freed_ += internal::kReapClasses.size[c];
      PoisonFreed(words, c);
      // Full to partial (live was capacity) or emptied (live was 1), in one unsigned compare: the
      // slab changes list, in one out-of-line call, last (an emptied slab may go back to the
      // thread cache, so nothing in it is written after).
      if (BROOM_UNLIKELY(static_cast<uint16_t>(live - 2) >=
                         static_cast<uint16_t>(b->capacity - 2))) {
        MoveSlab(b, c, live);
      }
      return;
    }
  }
  FreeSlow(p);
}

inline void ReapRegion::PoisonFreed([[maybe_unused]] uintptr_t* words, [[maybe_unused]] int c) {
#if BROOM_ASAN
  if (internal::kReapClasses.size[c] > 16) {
    internal::PoisonMemory(words + 2, internal::kReapClasses.size[c] - 16);
  }
#endif
}

}  // namespace broom

#endif  // BROOM_INTERNAL_REAP_REGION_H_
