// Copyright Broom authors.
//
// ReapRegion: slabs with per-slab free lists (see the comment of reap_region.h), the slow path
// that refills a class, Free and its checks, large objects, statistics and destruction.
#include <algorithm>
#include <array>
#include <cstdio>
#include <new>

#include "alloc/region/region_internal.h"
#include "broom/region.h"

namespace broom {

using internal::BlockHeader;
using internal::kReapClasses;

namespace {
constexpr size_t kHeaderBytes = internal::kRegionHeaderBytes<ReapRegion>;
// The first block holds only the header: the smallest block class that does.
constexpr int kFirstBlockClass = [] {
  int c = 0;
  while (internal::BlockClassSize(c) < kHeaderBytes) ++c;
  return c;
}();
// Slabs double per slab a class has held at most at once, up to 64 KiB (16 pages: TLB-friendly),
// or 256 KiB for classes above 4 KiB so a slab holds several objects. (Larger slabs for busy
// small classes would mean fewer blocks to release in bulk; measured before Free stopped reading
// the object, scattered frees of 16-256 B objects took 1.5x as long with them. Not re-measured.)
constexpr int kMaxSlabClass = 6;       // 64 KiB
constexpr int kMaxLargeSlabClass = 8;  // 256 KiB
// Carving a fresh slab into a free list touches at most this much at once (in address order).
constexpr size_t kCarveBytes = 4096;
// Empty slabs kept for any class: at most a quarter of the region's blocks, at least this much
// (and never more than RegionOptions::retain_bytes).
constexpr size_t kMinEmptyKeep = size_t{256} << 10;
// The smallest quiet current slab another class may take over (see TakeSlab).
constexpr size_t kMinStolenSlab = size_t{16} << 10;

static_assert(internal::BlockClassSize(kMaxLargeSlabClass) <= internal::kChunkSize);
static_assert(sizeof(BlockHeader) % 64 == 0, "slab objects start 64-aligned");

uintptr_t Tag(const void* p) { return internal::kReapFreedTag ^ reinterpret_cast<uintptr_t>(p); }
bool LooksFreed(const void* p) { return static_cast<const uintptr_t*>(p)[1] == Tag(p); }

static_assert(internal::kChunkSize < (uint64_t{1} << 24),
              "ReapObjectKey and ReapChecksumTerm are exact for every offset in a slab");
static_assert(
    [] {
      for (int c = 0; c < internal::kReapNumClasses; ++c) {
        if (internal::kReapClasses.size[c] % 16 != 0) return false;
      }
      return true;
    }(),
    "slab objects are 16-aligned");

// Smallest class >= size whose objects are all aligned to `align` (objects start at a slab's
// begin(), 64-aligned), or kReapNumClasses.
int ClassFor(size_t size, size_t align) {
  int c = internal::ReapSizeClass(size);
  if (align <= kDefaultAlignment) return c;
  if (align > sizeof(BlockHeader)) return internal::kReapNumClasses;
  for (; c < internal::kReapNumClasses; ++c) {
    if (kReapClasses.size[c] % align == 0) return c;
  }
  return internal::kReapNumClasses;
}

uint16_t Capacity(size_t block_size, size_t csize) {
  return static_cast<uint16_t>((block_size - sizeof(BlockHeader)) / csize);
}

// The smallest block class whose slab holds one object of `csize`.
int FirstSlabClass(size_t csize) {
  int bc = 0;
  while (Capacity(internal::BlockClassSize(bc), csize) == 0) ++bc;
  return bc;
}

// Doubly linked slab lists (next/prev).
void Push(BlockHeader*& head, BlockHeader* b) {
  b->prev = nullptr;
  b->next = head;
  if (head != nullptr) head->prev = b;
  head = b;
}
void Unlink(BlockHeader*& head, BlockHeader* b) {
  if (b->prev != nullptr) {
    b->prev->next = b->next;
  } else {
    head = b->next;
  }
  if (b->next != nullptr) b->next->prev = b->prev;
}
}  // namespace

ReapRegion* ReapRegion::Create(const RegionOptions& options) {
  return internal::CreateRegion<ReapRegion>(
      RegionKind::kActor, internal::BlockClassSize(kFirstBlockClass),
      [&](uint64_t id, BlockHeader* b) { return ::new (b->begin()) ReapRegion(id, options, b); });
}

ReapRegion::ReapRegion(uint64_t id, const RegionOptions& options, BlockHeader* first)
    : Region(RegionKind::kActor, id, options, first),
      retain_bytes_(options.retain_bytes),
      fast_free_classes_(internal::ChecksEnabled() ? 0 : kNumClasses) {}

// ---- allocation ----------------------------------------------------------------------------

void* ReapRegion::AllocateSlow(size_t size, size_t align) {
  CheckThread("Allocate");
  if (size == 0) size = 1;  // a unique, freeable object
  if (BROOM_UNLIKELY(align == 0 || (align & (align - 1)) != 0)) {
    SetError(AllocError::kBadAlignment);
    return nullptr;
  }
  const int c = size <= kMaxSmall ? ClassFor(size, align) : kNumClasses;
  if (BROOM_UNLIKELY(c == kNumClasses)) return AllocateLarge(size, align);
  ClassState& s = classes_[c];
  if (s.free == nullptr && !Refill(c)) return nullptr;
  auto* p = static_cast<uintptr_t*>(s.free);
  internal::UnpoisonMemory(p, kReapClasses.size[c]);
  if (BROOM_UNLIKELY(!LooksFreed(p))) DieLostTag(p);
  s.free = reinterpret_cast<void*>(p[0]);
  p[1] = 0;
  --s.nfree;
  return p;
}

bool ReapRegion::Refill(int c) {
  ClassState& s = classes_[c];
  BROOM_ASSERT(s.free == nullptr && s.nfree == 0);
  if (BlockHeader* cur = s.slab; cur != nullptr && cur->free_list != nullptr) {
    // Objects freed into the current slab since the last refill.
    const bool small_and_free = cur->live_objects == 1 && s.capacity < kOutgrowCapacity &&
                                cur->size < kOutgrowBytes && s.carved == s.capacity;
    if (!small_and_free || !OutgrowSlab(c)) TakeList(c, cur, FreedIntoCurrent(s));
    return true;
  }
  if (BlockHeader* cur = s.slab) {
    if (s.carved < s.capacity) {
      Carve(s, cur, static_cast<size_t>(c));
      return true;
    }
    // Exhausted: every object is carved and none is free, so all are allocated.
    BROOM_ASSERT(cur->live_objects == s.capacity + 1 && cur->freed_checksum == 0);
    SetSlabCapacity(cur, s.capacity);
    cur->live_objects = s.capacity;  // the class table's hold ends
    Push(full_, cur);
    s.slab = nullptr;
  }
  if (((classes_used_ >> c) & 1) == 0) {
    classes_used_ |= uint32_t{1} << c;
    partial_[c] = nullptr;
  } else if (BlockHeader* b = partial_[c]) {
    Unlink(partial_[c], b);
    TakeList(c, b, static_cast<uint32_t>(SlabCapacity(b) - b->live_objects));
    MakeCurrent(s, b, SlabCapacity(b));
    return true;
  }
  BlockHeader* b = TakeSlab(c);
  if (b == nullptr) return false;
  InstallSlab(c, b);
  return true;
}

// Makes `b` (from TakeSlab) class c's current slab, with a non-empty allocation list.
void ReapRegion::InstallSlab(int c, BlockHeader* b) {
  ClassState& s = classes_[c];
  const size_t csize = kReapClasses.size[c];
  BROOM_ASSERT(b->owner.load(std::memory_order_relaxed) == this && !b->dedicated);
  b->next = b->prev = nullptr;
  if (++s.slabs > s.growth) s.growth = static_cast<uint16_t>(std::min<uint32_t>(s.slabs, 255));
  if (b->object_class == internal::kEmptySlab && b->live_objects == c) {
    // An empty slab of this very class, intact: its free list holds all its objects already.
    b->object_class = static_cast<uint16_t>(c);
    b->live_objects = 0;
    TakeList(c, b, SlabCapacity(b));
    MakeCurrent(s, b, SlabCapacity(b));
    return;
  }
  b->object_class = static_cast<uint16_t>(c);
  b->live_objects = 0;
  b->freed_checksum = 0;
  b->carved_key = 0;
  b->free_list = nullptr;
  MakeCurrent(s, b, Capacity(b->size, csize));
  s.carved = 0;  // nothing carved yet
  Carve(s, b, static_cast<size_t>(c));
}

// An empty slab of this region (the wanted size first, then half of it, then larger), else
// another class's current slab if it holds no live object, else a new block. Under a budget
// that a block of the wanted size would exceed: any empty slab that holds an object, else the
// smallest block that does. Otherwise smaller empty slabs are left to the classes that
// want them: a class whose objects cycle through its slabs (a ring, FIFO) and kept refilling
// from small ones took its slow path about five times as often (callgrind: 0.41 mispredicted
// branches per pair on the ring row, 0.07 without).
BlockHeader* ReapRegion::TakeSlab(int c) {
  const size_t csize = kReapClasses.size[c];
  const int first = FirstSlabClass(csize);
  const int want = WantedBlockClass(c);
  const bool room = budget_ == 0 || block_bytes_ + internal::BlockClassSize(want) <= budget_;
  if (empty_bytes_ != 0) {
    if (BlockHeader* b = TakeEmptySlab(c, want, room ? std::max(first, want - 1) : first)) {
      return b;
    }
  }
  // The current slab of another class that has no live object (a class that went quiet keeps
  // its current slab, so it is not on the empty lists), if it is large enough to matter: small
  // first slabs stay with their class, so classes that take turns with a single live object
  // each do not steal each other's slab on every allocation.
  int steal = -1;
  for (uint32_t used = classes_used_; used != 0; used &= used - 1) {
    const int o = __builtin_ctz(used);
    const BlockHeader* cur = classes_[o].slab;
    if (o == c || cur == nullptr || cur->live_objects != classes_[o].nfree + 1 ||
        cur->block_class < first || cur->size < kMinStolenSlab) {
      continue;
    }
    if (steal < 0 || cur->block_class == want) steal = o;
    if (cur->block_class == want) break;
  }
  if (steal >= 0) {
    ClassState& o = classes_[steal];
    BlockHeader* b = o.slab;
    o.slab = nullptr;
    listed_bytes_ -= size_t{o.nfree} * kReapClasses.size[steal];  // never handed out
    o.free = nullptr;
    o.nfree = 0;
    --o.slabs;
    internal::UnpoisonMemory(b->begin(), b->size - sizeof(BlockHeader));
    internal::ClearIfChecked(b->begin(), b->size - sizeof(BlockHeader));
    return b;
  }
  BlockHeader* b = AcquireBlock(internal::BlockClassSize(want));
  if (b == nullptr && want > first && last_error() == AllocError::kRegionBudget) {
    b = AcquireBlock(internal::BlockClassSize(first));
  }
  return b;
}

// The block class of class c's next slab: the smallest that holds one object, doubled per step
// of the class's growth, up to 64 KiB (256 KiB above 4 KiB).
int ReapRegion::WantedBlockClass(int c) const {
  const size_t csize = kReapClasses.size[c];
  const int first = FirstSlabClass(csize);
  const int max = csize > 4096 ? kMaxLargeSlabClass : kMaxSlabClass;
  return std::min<int>(first + static_cast<int>(classes_[c].growth), std::max(first, max));
}

// Class c's current slab is small, fully carved and has no live object: all its objects are on
// its own list. A slab of the next size replaces it, if one can be had, and it goes back to the
// thread's block cache (among this region's empty slabs it would only be handed back). Returns
// false, changing nothing, if none can be had: the class keeps refilling from the small slab, and
// the allocation does not fail.
bool ReapRegion::OutgrowSlab(int c) {
  ClassState& s = classes_[c];
  BlockHeader* old = s.slab;
  BROOM_ASSERT(s.free == nullptr && s.nfree == 0 && old->live_objects == 1 &&
               s.carved == s.capacity);
  if (BROOM_UNLIKELY(old->freed_checksum !=
                     internal::ReapFullChecksum(s.capacity, kReapClasses.size[c]))) {
    DieChecksum(old);
  }
  const uint16_t growth = s.growth;
  if (s.growth < 255) ++s.growth;
  // Under a budget with no room for the larger slab, TakeSlab would settle for a small one.
  if (budget_ != 0 && block_bytes_ + internal::BlockClassSize(WantedBlockClass(c)) > budget_) {
    s.growth = growth;
    return false;
  }
  const AllocError region_error = last_error();
  const AllocError thread_error = LastAllocError();
  BlockHeader* b = TakeSlab(c);  // not `old`: it is in no list, and TakeSlab steals from others
  if (b == nullptr) {            // the OS refused: not an error of this allocation, which goes on
    s.growth = growth;
    last_error_ = region_error;
    internal::SetLastError(thread_error);
    return false;
  }
  SetSlabCapacity(old, s.capacity);
  old->live_objects = 0;
  s.slab = nullptr;
  --s.slabs;
  ReleaseBlock(old);
  InstallSlab(c, b);
  return true;
}

// An empty slab of block class `want` down to `lowest`, else the smallest larger one, else
// null; among the first few of that size, one that class c emptied (it needs no carving).
BlockHeader* ReapRegion::TakeEmptySlab(int c, int want, int lowest) {
  int pick = -1;
  for (int bc = want; bc >= lowest && pick < 0; --bc) {
    if (empty_[bc] != nullptr) pick = bc;
  }
  for (int bc = want + 1; bc < internal::kNumBlockClasses && pick < 0; ++bc) {
    if (empty_[bc] != nullptr) pick = bc;
  }
  if (pick < 0) return nullptr;
  BlockHeader** link = &empty_[pick];
  BlockHeader** l = link;
  for (int n = 0; n < 8 && *l != nullptr; ++n, l = &(*l)->next) {
    if ((*l)->live_objects == c) {
      link = l;
      break;
    }
  }
  BlockHeader* b = *link;
  *link = b->next;
  empty_bytes_ -= b->size;
  internal::UnpoisonMemory(b->begin(), b->size - sizeof(BlockHeader));
  if (internal::ChecksEnabled()) {
    std::memset(b->begin(), 0, b->size - sizeof(BlockHeader));  // no stale words for scans
    b->object_class = internal::kNoObjectClass;  // its free list is gone: carve again
  }
  return b;
}

// Threads the next objects of `b` (at most kCarveBytes, at least one) onto the class's free
// list in address order, writing them in that order too: the first object handed out is the
// first line written, so its line is the first to arrive when the slab's memory is cold (a slab
// taken back from the thread's cache). Each carries the freed tag, so scans skip it and freeing
// it before it is handed out is reported. No division: the count comes from the class's carved
// count and a per-class table.
void ReapRegion::Carve(ClassState& s, BlockHeader* b, size_t c) {
  static constexpr auto kCarveCount = [] {
    std::array<uint16_t, kNumClasses> n{};
    for (int i = 0; i < kNumClasses; ++i) {
      n[i] = static_cast<uint16_t>(std::max<size_t>(kCarveBytes / kReapClasses.size[i], 1));
    }
    return n;
  }();
  const size_t csize = kReapClasses.size[c];
  const uint32_t n = std::min<uint32_t>(kCarveCount[c], s.capacity - s.carved);
  BROOM_ASSERT(n > 0 && internal::ReapCarvedCount(b->carved_key, c) == s.carved);
  char* const first = b->begin() + size_t{s.carved} * csize;
  char* const last = first + (n - 1) * csize;
  for (char* p = first; p != last; p += csize) {
    auto* obj = reinterpret_cast<uintptr_t*>(p);
    obj[0] = reinterpret_cast<uintptr_t>(p + csize);
    obj[1] = Tag(obj);
    if (csize > 16) internal::PoisonMemory(obj + 2, csize - 16);
  }
  auto* obj = reinterpret_cast<uintptr_t*>(last);
  obj[0] = reinterpret_cast<uintptr_t>(s.free);  // empty when called, but keep anything there
  obj[1] = Tag(obj);
  if (csize > 16) internal::PoisonMemory(obj + 2, csize - 16);
  s.free = first;
  s.nfree += n;
  s.carved += n;
  listed_bytes_ += n * csize;
  b->live_objects = static_cast<uint16_t>(b->live_objects + n);  // counted as if allocated
  b->carved_key = internal::ReapCarvedKey(s.carved, c);
}

void* ReapRegion::AllocateLarge(size_t size, size_t align) {
  if (size > (SIZE_MAX >> 2) || align > (SIZE_MAX >> 2)) {
    SetError(AllocError::kBadSize);
    return nullptr;
  }
  const size_t pad = align > sizeof(BlockHeader) ? align - sizeof(BlockHeader) : 0;
  BlockHeader* b = AcquireBlock(sizeof(BlockHeader) + pad + size);
  if (b == nullptr) return nullptr;
  b->dedicated = 1;
  b->object_class = internal::kLargeObject;
  b->object = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(b->begin()) + align - 1) &
                                      ~(uintptr_t{align} - 1));
  b->used_end = b->object + size;
  LinkBlock(b);
  return b->object;
}

void* ReapRegion::do_allocate(size_t bytes, size_t alignment) {
  void* p = Allocate(bytes, alignment);
  if (BROOM_UNLIKELY(p == nullptr)) internal::ThrowBadAlloc();
  return p;
}

// ---- free ----------------------------------------------------------------------------------

void ReapRegion::DieBadFree(const void* p, const char* why) const {
  char buf[128];
  char other[128] = "no region (heap, stack or freed memory)";
  if (Region* o = RegionOf(p)) internal::Describe(o, other, sizeof(other));
  internal::Fatal(__FILE__, __LINE__, "ActorRegion::Free(%p) on %s: %s; the pointer belongs to %s",
                  p, internal::Describe(this, buf, sizeof(buf)), why, other);
}

// Everything Free's inline path leaves: null, errors, large objects, checked mode, and slabs
// that change list (full to partial, partial or full to empty). Checks from scratch.
void ReapRegion::FreeSlow(void* p) {
  if (p == nullptr) return;
  CheckThread("ActorRegion::Free");
  BlockHeader* b = internal::BlockOf(p);
  if (BROOM_UNLIKELY(b == nullptr || b->owner.load(std::memory_order_relaxed) != this)) {
    DieBadFree(p, "pointer not owned by this region");
  }
  const uint16_t c = b->object_class;
  if (BROOM_UNLIKELY(c >= kNumClasses)) {
    if (c == internal::kLargeObject) return FreeLarge(b, p);
    DieBadFree(p, c == internal::kEmptySlab ? "double free (its slab holds no live object)"
                                            : "not an object (region metadata)");
  }
  const size_t csize = kReapClasses.size[c];
  const size_t offset = reinterpret_cast<uintptr_t>(p) - reinterpret_cast<uintptr_t>(b->begin());
  if (BROOM_UNLIKELY(internal::ReapObjectKey(offset, c) >= b->carved_key)) {
    DieBadFree(p, "not the start of an object");
  }
  auto* words = static_cast<uintptr_t*>(p);
  if (BROOM_UNLIKELY(words[1] == Tag(p))) DieIfFreed(b, p);
  if (fast_free_classes_ == 0) std::memset(words + 2, 0, csize - 16);  // no stale words for scans
  const uint16_t live = b->live_objects;
  words[0] = reinterpret_cast<uintptr_t>(b->free_list);
  words[1] = Tag(p);
  b->free_list = p;
  b->live_objects = static_cast<uint16_t>(live - 1);
  b->freed_checksum += internal::ReapChecksumTerm(offset);
  if (csize > 16) internal::PoisonMemory(words + 2, csize - 16);
  if (live <= 1 || live == SlabCapacity(b)) MoveSlab(b, c, live);  // last: see Free
}

void ReapRegion::MoveSlab(BlockHeader* b, int c, uint16_t live_before) {
  // Below zero (0), or a current slab (Free calls only at live 0 or 1 for it, and its count
  // holds one more than its live and listed objects): an object that was free was freed again.
  if (BROOM_UNLIKELY(live_before == 0 || b == classes_[c].slab)) {
    DieBadFree(b->free_list, "double free (its slab held no live object)");
  }
  BROOM_ASSERT(live_before <= SlabCapacity(b));
  if (live_before == SlabCapacity(b)) {  // it was full
    Unlink(full_, b);
    if (live_before == 1) {
      SlabEmptied(b, c);
    } else {
      Push(partial_[c], b);
    }
  } else {
    Unlink(partial_[c], b);
    SlabEmptied(b, c);
  }
}

size_t ReapRegion::EmptyBound() const {
  return std::min(retain_bytes_, std::max(kMinEmptyKeep, block_bytes_ / 4));
}

void ReapRegion::DieLostTag(const void* p) const {
  DieBadFree(p,
             "double free: a free object lost its free tag before it was handed out again (it "
             "was freed twice, or written after it was freed)");
}

// `b` (in no list now) has no live object: keep it for any class, or give it back.
void ReapRegion::SlabEmptied(BlockHeader* b, int c) {
  // Its list must hold each of its objects once: a second free of an object of an older slab,
  // not caught at that Free, leaves it twice (and a live object off the list).
  if (BROOM_UNLIKELY(b->freed_checksum !=
                     internal::ReapFullChecksum(SlabCapacity(b), kReapClasses.size[c]))) {
    DieChecksum(b);
  }
  BROOM_ASSERT(b->live_objects == 0 && classes_[c].slab != b && classes_[c].slabs > 0);
  --classes_[c].slabs;
  if (empty_bytes_ + b->size <= EmptyBound()) {
    // Its free list (every object, each once) stays: if its class takes it back it needs no
    // carving. live_objects remembers that class.
    b->object_class = internal::kEmptySlab;
    b->live_objects = static_cast<uint16_t>(c);
    b->next = empty_[b->block_class];
    empty_[b->block_class] = b;
    empty_bytes_ += b->size;
    internal::PoisonMemory(b->begin(), b->size - sizeof(BlockHeader));
  } else {
    ReleaseBlock(b);
  }
}

void ReapRegion::DieChecksum(const BlockHeader* b) const {
  DieBadFree(b->free_list,
             "double free: an object was freed twice (its emptied slab's free list does not "
             "hold each object once)");
}

void ReapRegion::FreeLarge(BlockHeader* b, void* p) {
  if (BROOM_UNLIKELY(p != b->object)) DieBadFree(p, "not the start of an object");
  UnlinkBlock(b);
  bytes_freed_ += static_cast<size_t>(b->end() - b->object);
  ReleaseBlock(b);
}

void ReapRegion::DieIfFreed(BlockHeader* b, const void* p) const {
  // The tag says "probably free": confirm on the slab's free list (the class's two, if current).
  const ClassState& s = classes_[b->object_class];
  auto on = [p](const void* list) {
    for (const void* q = list; q != nullptr; q = *static_cast<void* const*>(q)) {
      if (q == p) return true;
    }
    return false;
  };
  if ((b == s.slab && on(s.free)) || on(b->free_list)) {
    DieBadFree(p, "double free");
  }
}

size_t ReapRegion::UsableSize(const void* p) const {
  BlockHeader* b = internal::BlockOf(p);
  if (b == nullptr || b->owner.load(std::memory_order_relaxed) != this) {
    DieBadFree(p, "UsableSize of a pointer not owned by this region");
  }
  if (b->object_class == internal::kLargeObject) {
    return static_cast<size_t>(b->end() - static_cast<const char*>(p));
  }
  if (b->object_class >= kNumClasses) DieBadFree(p, "UsableSize of region metadata");
  return kReapClasses.size[b->object_class];
}

// ---- objects with destructors --------------------------------------------------------------

namespace {
size_t CleanupOffset(size_t align) {
  return align > sizeof(internal::ActorCleanupNode) ? align : sizeof(internal::ActorCleanupNode);
}
}  // namespace

void* ReapRegion::AllocateWithCleanup(size_t size, size_t align, void (*destroy)(void*),
                                      size_t count) {
  const size_t off = CleanupOffset(align);
  if (size > SIZE_MAX - off) {
    SetError(AllocError::kBadSize);
    return nullptr;
  }
  char* raw = static_cast<char*>(Allocate(off + size, align > 16 ? align : 16));
  if (raw == nullptr) return nullptr;
  auto* node =
      reinterpret_cast<internal::ActorCleanupNode*>(raw + off - sizeof(internal::ActorCleanupNode));
  node->destroy = destroy;
  node->count = count;
  node->prev = nullptr;
  node->next = nodes_;
  if (nodes_ != nullptr) nodes_->prev = node;
  nodes_ = node;
  ++node_count_;
  return raw + off;
}

void ReapRegion::FreeWithCleanup(void* object, size_t align, bool run_destructor) {
  char* obj = static_cast<char*>(object);
  char* raw = obj - CleanupOffset(align);
  // A second Delete finds the allocation on a free list (its tag word is set); report it
  // before running the destructor twice or unlinking through overwritten links.
  if (BROOM_UNLIKELY(LooksFreed(raw))) {
    if (BlockHeader* b = internal::BlockOf(raw); b != nullptr && b->object_class < kNumClasses) {
      DieIfFreed(b, raw);
    }
  }
  auto* node =
      reinterpret_cast<internal::ActorCleanupNode*>(obj - sizeof(internal::ActorCleanupNode));
  if (run_destructor) node->destroy(obj);
  if (node->prev != nullptr) {
    node->prev->next = node->next;
  } else {
    nodes_ = node->next;
  }
  if (node->next != nullptr) node->next->prev = node->prev;
  --node_count_;
  Free(raw);
}

// ---- statistics, scans, destruction --------------------------------------------------------

// Calls f(slab, live objects) for every slab holding objects (current, partial and full).
template <class F>
void ReapRegion::ForEachSlab(F&& f) const {
  for (uint32_t used = classes_used_; used != 0; used &= used - 1) {
    const int c = __builtin_ctz(used);
    if (const BlockHeader* cur = classes_[c].slab)
      f(cur, cur->live_objects - classes_[c].nfree - 1);
    for (BlockHeader* b = partial_[c]; b != nullptr; b = b->next) f(b, b->live_objects);
  }
  for (BlockHeader* b = full_; b != nullptr; b = b->next) f(b, b->live_objects);
}

RegionStats ReapRegion::stats() const {
  size_t live = 0;
  ForEachSlab([&](const BlockHeader* b, size_t used) {
    live += used * kReapClasses.size[b->object_class];
  });
  // Small objects handed out: what the class lists ever held less what they hold now.
  size_t handed = listed_bytes_;
  for (uint32_t used = classes_used_; used != 0; used &= used - 1) {
    const int c = __builtin_ctz(used);
    handed -= size_t{classes_[c].nfree} * kReapClasses.size[c];
  }
  const size_t freed = handed - live + bytes_freed_;  // bytes_freed_: large objects only
  for (const BlockHeader* b = blocks_; b != nullptr; b = b->next) {
    if (b->dedicated)
      live += static_cast<size_t>(b->size - (b->object - reinterpret_cast<const char*>(b)));
  }
  RegionStats s;
  s.bytes_requested = live + freed;
  s.bytes_freed = freed;
  s.block_bytes = block_bytes_;
  s.blocks = blocks_held_;
  s.peak_block_bytes = peak_block_bytes_;
  s.cleanups = cleanup_count_ + node_count_;
  return s;
}

void ReapRegion::ForEachLiveRange(RangeVisitor fn, void* ctx) const {
  ForEachSlab([&](const BlockHeader* b, size_t) {
    const size_t csize = kReapClasses.size[b->object_class];
    const char* const end = internal::ReapCarvedEnd(b, b->object_class);
    for (const char* obj = b->begin(); obj < end; obj += csize) {
      if (!LooksFreed(obj)) fn(ctx, b, obj, obj + csize);
    }
  });
  for (const BlockHeader* b = blocks_; b != nullptr; b = b->next) {
    if (b->dedicated) fn(ctx, b, b->object, b->used_end);
  }
}

namespace {
[[noreturn]] void DieInvalid(const ReapRegion* r, const BlockHeader* b, const char* what) {
  char buf[128];
  internal::Fatal(__FILE__, __LINE__, "ReapRegion::Validate: %s: slab %p: %s",
                  internal::Describe(r, buf, sizeof(buf)), static_cast<const void*>(b), what);
}
}  // namespace

void ReapRegion::Validate() const {
  size_t bytes = 0;
  size_t blocks = 0;
  // Checks a slab of class c and counts the objects on `free` and `more` (its own list, or the
  // class's two).
  // Checks a slab of class c, its own free list and, for a current slab, the class's
  // allocation list `alloc` of `nalloc` objects; `live` is its true live count.
  auto slab = [&](const BlockHeader* b, int c, const void* alloc, size_t nalloc, size_t live) {
    const size_t csize = kReapClasses.size[c];
    const bool current = b == classes_[c].slab;
    const size_t cap = current ? classes_[c].capacity : SlabCapacity(b);
    if (b->owner.load(std::memory_order_relaxed) != this) DieInvalid(this, b, "owner");
    if (b->object_class != c) DieInvalid(this, b, "object class");
    if (cap != Capacity(b->size, csize) || (current && SlabCapacity(b) != 0)) {
      DieInvalid(this, b, "capacity");
    }
    if (b->carved_key % kReapClasses.key_step[c] != 0 ||
        internal::ReapCarvedCount(b->carved_key, c) > cap) {
      DieInvalid(this, b, "carved key");
    }
    const char* const carved_end = internal::ReapCarvedEnd(b, c);
    const size_t carved = static_cast<size_t>(carved_end - b->begin());
    if (b->live_objects != live + nalloc + current) DieInvalid(this, b, "live count");
    size_t n = 0;
    uint64_t checksum = 0;
    auto walk = [&](const void* list, bool sum) {
      for (const void* q = list; q != nullptr; q = *static_cast<void* const*>(q)) {
        const char* o = static_cast<const char*>(q);
        if (o < b->begin() || o >= carved_end || (o - b->begin()) % csize != 0 || !LooksFreed(o)) {
          DieInvalid(this, b, "free list holds a pointer that is not a free object of the slab");
        }
        if (++n > cap) DieInvalid(this, b, "free list cycles");
        if (sum) checksum += internal::ReapChecksumTerm(static_cast<size_t>(o - b->begin()));
      }
    };
    walk(b->free_list, true);
    if (n != carved / csize + current - b->live_objects) {
      DieInvalid(this, b, "slab free list length");
    }
    walk(alloc, false);
    if (n != carved / csize - live) DieInvalid(this, b, "allocation list length");
    if (checksum != b->freed_checksum) {
      DieInvalid(this, b, "the checksum over the free list does not match");
    }
    bytes += b->size;
    ++blocks;
  };
  auto list = [&](const BlockHeader* head, auto&& each) {
    const BlockHeader* prev = nullptr;
    for (const BlockHeader* b = head; b != nullptr; prev = b, b = b->next) {
      if (b->prev != prev) DieInvalid(this, b, "back link");
      each(b);
    }
  };
  for (uint32_t used = classes_used_; used != 0; used &= used - 1) {
    const int c = __builtin_ctz(used);
    const ClassState& s = classes_[c];
    if (s.slab != nullptr) {
      slab(s.slab, c, s.free, s.nfree, s.slab->live_objects - s.nfree - 1);
      if (s.carved != internal::ReapCarvedCount(s.slab->carved_key, c)) {
        DieInvalid(this, s.slab, "the class's carved count");
      }
    }
    list(partial_[c], [&](const BlockHeader* b) {
      if (b->live_objects == 0 || b->live_objects >= SlabCapacity(b))
        DieInvalid(this, b, "partial");
      if (internal::ReapCarvedCount(b->carved_key, c) != SlabCapacity(b)) {
        DieInvalid(this, b, "partial slab not fully carved");
      }
      slab(b, c, nullptr, 0, b->live_objects);
    });
  }
  list(full_, [&](const BlockHeader* b) {
    if (b->object_class >= kNumClasses || b->live_objects != SlabCapacity(b) || b->free_list) {
      DieInvalid(this, b, "full");
    }
    slab(b, b->object_class, nullptr, 0, b->live_objects);
  });
  size_t empty = 0;
  for (int bc = 0; bc < internal::kNumBlockClasses; ++bc) {
    for (const BlockHeader* b = empty_[bc]; b != nullptr; b = b->next) {
      if (b->object_class != internal::kEmptySlab || b->block_class != bc) {
        DieInvalid(this, b, "empty slab");
      }
      empty += b->size;
      bytes += b->size;
      ++blocks;
    }
  }
  if (empty != empty_bytes_) DieInvalid(this, nullptr, "empty bytes");
  list(blocks_, [&](const BlockHeader* b) {
    if (b->next != nullptr && (!b->dedicated || b->object_class != internal::kLargeObject)) {
      DieInvalid(this, b, "block list holds something other than large objects");
    }
    bytes += b->size;
    ++blocks;
  });
  if (bytes != block_bytes_ || blocks != blocks_held_) {
    DieInvalid(this, nullptr, "block bytes or count do not add up");
  }
  size_t nodes = 0;
  for (const internal::ActorCleanupNode* n = nodes_; n != nullptr; n = n->next) ++nodes;
  if (nodes != node_count_) DieInvalid(this, nullptr, "cleanup node count");
}

void ReapRegion::DestroyOwned(ReapRegion* r, const char* handle) {
  // The operation's name is only needed for the error of destroying an open region: formatted
  // then, not on every destruction.
  if (BROOM_LIKELY(r->open_count_ == 0)) return r->Destroy(handle);
  char op[64];
  std::snprintf(op, sizeof(op), "destruction of %s", handle);
  r->Destroy(op);
}

void ReapRegion::Destroy(const char* op) {
  if (open_count_ != 0) CheckThread(op);  // open on another thread: name both threads
  internal::CheckNotOpen(this, 0, op);
  BROOM_VALIDATE(Validate());
  // Objects made by New and never deleted, newest first (reverse order of construction); then
  // the AddCleanup records.
  while (nodes_ != nullptr) {
    internal::ActorCleanupNode* node = nodes_;
    nodes_ = node->next;
    --node_count_;
    node->destroy(reinterpret_cast<char*>(node) + sizeof(internal::ActorCleanupNode));
  }
  RunCleanups(nullptr);
  NoteReleasing();
  for (uint32_t used = classes_used_; used != 0; used &= used - 1) {
    const int c = __builtin_ctz(used);
    if (classes_[c].slab != nullptr) {
      classes_[c].slab->next = nullptr;
      internal::ReleaseBlockList(classes_[c].slab);
    }
    if (partial_[c] != nullptr) internal::ReleaseBlockList(partial_[c]);
  }
  if (full_ != nullptr) internal::ReleaseBlockList(full_);
  if (empty_bytes_ != 0) {
    for (BlockHeader* e : empty_) internal::ReleaseBlockList(e);
  }
  DestroyAndRelease(blocks_);  // large objects, then the first block
}

}  // namespace broom
