// Copyright Broom authors. Part of broom/region.h (include that, not this): ReapRegion.
//
// Structure (free-list sharding, as in mimalloc, without any atomics: only the owner touches an
// actor region):
//   * Objects up to 8 KiB come from slabs: blocks of one size class, objects from begin() on.
//     Each slab has its own free list; a class allocates from one slab, its "current" slab,
//     until that slab is exhausted, so consecutive allocations come from one block (cache- and
//     TLB-local) and a freed object goes back to the slab it belongs to, found from its address
//     alone (BlockOf: the chunk map and a mask).
//   * The current slab's allocation list lives in the class table (ClassState), so the fast
//     path is a table load, a pop and two stores, with no access to the slab header. Every free,
//     into the current slab or any other, goes to the slab's own list in its header, which the
//     class takes over when its allocation list runs out (as mimalloc's page does): Free does not
//     ask which slab is current (a branch no predictor can learn when frees scatter) and never
//     reads the object.
//   * Other slabs of a class are full (region-wide list `full_`) or partial (the class's
//     `partial_` list, where the slow path finds them). A slab whose last object is freed goes
//     to the region's empty slabs, reusable by any class; beyond a bound it goes back to the
//     thread's block cache. So a region's memory follows what is live.
//   * A class's first slab is the smallest block that holds one object (1 KiB for most
//     classes); each further slab doubles per slab the class has held at most at once (so it
//     refills at its old size after a batch is freed), up to 64 KiB (256 KiB above 4 KiB). A
//     class takes empty slabs of the size it wants or half of it, not smaller ones, and a small
//     current slab (under kOutgrowCapacity objects) whose objects are all free when the class
//     refills is replaced by a larger one.
//   * Larger objects get a block of their own, released when freed.
//   * Free always checks its pointer: it must belong to this region and be the start of an
//     object. A freed object carries a tag word. A second free is caught at once if the object
//     is the one freed last into its slab or its slab has no live object left; any other when
//     the object is handed out again (the tag must be there) or when its slab, not current,
//     empties or, small and current, is outgrown (a checksum: its free list must be exactly its
//     objects), always before its memory is reused.
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
  // A current slab of fewer objects than this, below kOutgrowBytes, whose objects are all free
  // when its class refills from it is replaced by a larger one (OutgrowSlab): a class that
  // cycles a few objects would otherwise run its allocation list dry every few allocations.
  static constexpr uint16_t kOutgrowCapacity = 16;
  static constexpr size_t kOutgrowBytes = size_t{16} << 10;

  // Allocates from the size class of `size`: pops the class's allocation list (17
  // instructions with a size from memory, counted in reap_batch's pair loop, fewer with a size
  // known at compile time: the class table lookup, two loads, the tag check, three stores and
  // the count). Alignments up to 64 are served from slabs (a class whose size is a multiple of
  // the alignment), larger ones from a block of their own. When the list is empty, the current
  // slab's own list is taken over inline; otherwise an empty list, sizes above 1 KiB with a
  // runtime size, and errors take one out-of-line call.
  inline void* Allocate(size_t size, size_t align = kDefaultAlignment);

  // Frees one object for reuse; null is ignored. Fatal (always checked), naming this region and
  // the pointer's owner: `p` not owned by this region (heap, another region, freed region), not
  // the start of an object, or already free (double free). A double free is reported at the
  // second Free when no other object of its slab was freed in between, or when its slab holds
  // no live object; otherwise (Free does not read the object) when the object would be handed
  // out again or its slab, not current, empties, always before its memory is reused.
  // Inline: the lookup of p's slab, the checks and the push take about 40 instructions and touch
  // only the slab header and the object's first line, written, never read; a slab that changes
  // list (full to partial, emptied), a large object, checked mode and every error take one
  // out-of-line call.
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

  // The class table entry: the current slab and its allocation list. Allocation pops `free`;
  // frees go to the slab's own list (BlockHeader::free_list), taken over when `free` runs out,
  // so consecutive allocations keep walking the slab in order instead of reusing what was just
  // freed. The slab's live_objects counts the objects on `free` as if allocated (they are added
  // when the class takes a list) plus one, the class table's hold, so it never reaches 0 while
  // the slab is current: its true live count is live_objects - nfree - 1, and Free updates the
  // same header fields for every slab with no call unless a double free took it too low.
  struct ClassState {
    void* free;                   // intrusive: word 0 = next, word 1 = kReapFreedTag ^ address
    internal::BlockHeader* slab;  // the current slab, or null
    uint32_t nfree;               // objects on `free`
    uint32_t carved;              // objects of the current slab carved so far
    uint32_t slabs;               // slabs the class holds
    // The current slab's capacity: its header's is 0 while it is current, so that Free's one
    // compare (with the class table's hold) calls MoveSlab only for a double free.
    uint16_t capacity;
    // Slab growth (each step doubles the next slab): the most slabs the class has held at once,
    // plus one per small slab it outgrew (OutgrowSlab), at most 255.
    uint16_t growth;
  };
  static_assert(sizeof(ClassState) == 32);

  static ReapRegion* Create(const RegionOptions& options);
  void Destroy(const char* op);
  static void DestroyOwned(ReapRegion* r, const char* handle);

  ReapRegion(uint64_t id, const RegionOptions& options, internal::BlockHeader* first);
  ~ReapRegion() override = default;

  BROOM_NOINLINE void* AllocateSlow(size_t size, size_t align);
  BROOM_NOINLINE void FreeSlow(void* p);
  // A free took slab `b` of class c from `live_before` (its live_objects) to one fewer, and
  // live_before was 0, 1 or the slab's capacity: moves a slab that is not current from the full
  // list to its class's partial list, or to the empty slabs; reports the double free that took
  // a count too low (0, or 1 for a current slab).
  BROOM_NOINLINE void MoveSlab(internal::BlockHeader* b, int c, uint16_t live_before);
  [[noreturn]] BROOM_NOINLINE void DieLostTag(const void* p) const;
  [[noreturn]] void DieChecksum(const internal::BlockHeader* b) const;
  // ASan builds: makes a freed object unaddressable but for its two list words.
  static void PoisonFreed(uintptr_t* words, size_t c);
  void* AllocateLarge(size_t size, size_t align);
  // Gives class `c` a non-empty current free list (carving, or the next partial, empty or new
  // slab). Returns false, with the error recorded, if no block can be had.
  bool Refill(int c);
  internal::BlockHeader* TakeSlab(int c);
  internal::BlockHeader* TakeEmptySlab(int c, int want, int lowest);
  bool OutgrowSlab(int c);
  void InstallSlab(int c, internal::BlockHeader* b);
  int WantedBlockClass(int c) const;
  // A slab header keeps its capacity less 2 (BlockHeader::capacity_less_2), for Free's compare.
  static uint16_t SlabCapacity(const internal::BlockHeader* b) {
    return static_cast<uint16_t>(b->capacity_less_2 + 2);
  }
  static void SetSlabCapacity(internal::BlockHeader* b, uint16_t capacity) {
    b->capacity_less_2 = static_cast<uint16_t>(capacity - 2);
  }
  static void MakeCurrent(ClassState& s, internal::BlockHeader* b, uint16_t capacity) {
    s.slab = b;
    s.capacity = capacity;
    s.carved = capacity;
    SetSlabCapacity(b, 0);
    ++b->live_objects;  // the class table's hold: the count never reaches 0 while current
  }
  // Objects on the current slab's own list (freed into it since the class last took it).
  static uint32_t FreedIntoCurrent(const ClassState& s) {
    return s.carved + 1 - s.slab->live_objects;
  }
  // Makes b's free list (n objects) class c's allocation list and returns its head.
  void* TakeList(size_t c, internal::BlockHeader* b, uint32_t n) {
    ClassState& s = classes_[c];
    listed_bytes_ += size_t{n} * internal::kReapClasses.size[c];
    void* head = b->free_list;
    s.free = head;
    s.nfree = n;
    b->live_objects = static_cast<uint16_t>(b->live_objects + n);  // counted as if allocated
    b->free_list = nullptr;
    b->freed_checksum = 0;  // the checksum is over b->free_list, empty now
    return head;
  }
  void Carve(ClassState& s, internal::BlockHeader* b, size_t c);
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
  // Bytes of the objects ever put on a class's allocation list (carved or taken over), less
  // those of a stolen slab's list: what was handed out is this less what the lists still hold,
  // so stats() derives the bytes freed and Free counts nothing. (Large objects: bytes_freed_.)
  size_t listed_bytes_ = 0;
  size_t retain_bytes_;
  // kNumClasses, or 0 if checked mode was on at creation: then every free takes FreeSlow, which
  // zeroes the freed object (no stale words for scans).
  const uint16_t fast_free_classes_;
  internal::ActorCleanupNode* nodes_ = nullptr;  // objects with destructors, newest first
  size_t node_count_ = 0;
};

namespace internal {
// The end of slab b's carved part; c is its class (object_class, or for an empty slab whose
// free list is intact, the class that list is of).
inline const char* ReapCarvedEnd(const BlockHeader* b, size_t c) {
  return b->begin() + ReapCarvedCount(b->carved_key, c) * kReapClasses.size[c];
}
}  // namespace internal

// ---- inline fast path ----------------------------------------------------------------------

inline void* ReapRegion::Allocate(size_t size, size_t align) {
  BROOM_OWNER_CHECK_FAST(this, "Allocate");
  // align in {1, 2, 4, 8, 16}: one shift of a mask of those bits; size 0 wraps to the slow path.
  if (BROOM_LIKELY(size - 1 < internal::kReapTableMax && align <= kDefaultAlignment &&
                   ((0x10116u >> align) & 1) != 0)) {
    // (size + 15) >> 4 as ((size - 1) >> 4) + 1: size - 1 is in a register from the bound
    // test, and the + 1 folds into the load's displacement (one instruction fewer).
    const size_t c4 = internal::kReapClasses.class_of_x4[((size - 1) >> 4) + 1];
    ClassState& s = *reinterpret_cast<ClassState*>(reinterpret_cast<char*>(classes_) + c4 * 8);
    const size_t c = c4 >> 2;
    auto* p = static_cast<uintptr_t*>(s.free);
    if (BROOM_UNLIKELY(p == nullptr) && s.slab != nullptr && s.slab->free_list != nullptr &&
        (s.capacity >= kOutgrowCapacity || s.slab->live_objects != 1)) {
      p = static_cast<uintptr_t*>(TakeList(c, s.slab, FreedIntoCurrent(s)));
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
      const uintptr_t next = p[0];
      s.free = reinterpret_cast<void*>(next);
      // Overwrite the freed tag with a value it never equals, already in a register: a
      // pointer (kReapFreedTag).
      p[1] = next;
      --s.nfree;
      return p;
    }
  }
  return AllocateSlow(size, align);
}

inline void ReapRegion::Free(void* p) {
  BROOM_OWNER_CHECK_FAST(this, "Free");
  // Null for null, heap pointers, runs (large objects): those take FreeSlow.
  internal::BlockHeader* b = internal::CarvedBlockOfOrNull(p);
  // fast_free_classes_ is 0 in checked mode: every free takes the slow path.
  if (BROOM_LIKELY(b != nullptr && b->owner.load(std::memory_order_relaxed) == this)) {
    const size_t c = b->object_class;
    const size_t offset = static_cast<size_t>(static_cast<char*>(p) - b->begin());
    auto* words = static_cast<uintptr_t*>(p);
    const uintptr_t tag = internal::kReapFreedTag ^ reinterpret_cast<uintptr_t>(p);
    // One multiply and one compare: p is the start of a carved object (ReapObjectKey; below
    // begin() included).
    if (BROOM_LIKELY(c < fast_free_classes_ &&
                     internal::ReapObjectKey(offset, c) < b->carved_key)) {
      // The object is not read here (a scattered free would miss on it): a second free of it is
      // caught here if it is still the head of its slab's list, else when it is handed out again
      // (Allocate checks the tag) or when its slab empties (the checksum over its list does not
      // match; MoveSlab).
      void* const head = b->free_list;
      if (BROOM_UNLIKELY(p == head)) return FreeSlow(p);
      const uint16_t live = b->live_objects;
      *static_cast<void**>(p) = head;  // as a pointer: two plain stores, not a packed vector
      words[1] = tag;
      b->free_list = p;
      b->live_objects = static_cast<uint16_t>(live - 1);
      b->freed_checksum += internal::ReapChecksumTerm(offset);
      PoisonFreed(words, c);
      // live was capacity (full to partial), 1 (emptied) or 0 (a double free took it below
      // zero; for a current slab, whose capacity reads 0, 1 and 0 are both double frees), in one
      // unsigned compare of live - 2 with the stored capacity - 2: one out-of-line call, last
      // (an emptied slab may go back to the thread cache, so nothing in it is written after).
      if (BROOM_UNLIKELY(static_cast<uint16_t>(live - 2) >= b->capacity_less_2)) {
        MoveSlab(b, static_cast<int>(c), live);
      }
      return;
    }
  }
  FreeSlow(p);
}

inline void ReapRegion::PoisonFreed([[maybe_unused]] uintptr_t* words, [[maybe_unused]] size_t c) {
#if BROOM_ASAN
  if (internal::kReapClasses.size[c] > 16) {
    internal::PoisonMemory(words + 2, internal::kReapClasses.size[c] - 16);
  }
#endif
}

}  // namespace broom

#endif  // BROOM_INTERNAL_REAP_REGION_H_
