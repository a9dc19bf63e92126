// Copyright Broom authors.
#include "alloc/region/actor_heap.h"

#include <cstring>

#include "broom/internal/base.h"

namespace broom::internal {

namespace {
constexpr uintptr_t kFreedTag = 0x5bd1e9955bd1e995ull;
static_assert(ActorHeap::ClassSize(ActorHeap::kNumClasses - 1) == ActorHeap::kMaxSmall);

uintptr_t Tag(const void* p) { return kFreedTag ^ reinterpret_cast<uintptr_t>(p); }

// x % ClassSize(c) == 0 without a division: q = floor(x / d) by multiplying with
// ceil(2^32 / d), exact for x * d < 2^32 (x < 256 KiB within a slab, d <= 8 KiB).
constexpr auto kReciprocal = [] {
  struct {
    uint64_t v[ActorHeap::kNumClasses];
  } t{};
  for (int c = 0; c < ActorHeap::kNumClasses; ++c) {
    uint64_t d = ActorHeap::ClassSize(c);
    t.v[c] = ((uint64_t{1} << 32) + d - 1) / d;
  }
  return t;
}();
static_assert(kChunkSize * ActorHeap::kMaxSmall <= (uint64_t{1} << 32));

bool IsMultiple(size_t x, int c) {
  uint64_t q = (static_cast<uint64_t>(x) * kReciprocal.v[c]) >> 32;
  return q * ActorHeap::ClassSize(c) == x;
}

// Smallest class >= size whose objects are all aligned to `align`, or kNumClasses.
int ClassFor(size_t size, size_t align) {
  int c = ActorHeap::SizeClass(size);
  if (align <= 16) return c;
  for (; c < ActorHeap::kNumClasses; ++c) {
    if (ActorHeap::ClassSize(c) % align == 0 && ActorHeap::SlabStart(c) % align == 0) return c;
  }
  return ActorHeap::kNumClasses;
}
}  // namespace

void* ActorHeap::AllocateSlowPath(Region* r, size_t size, size_t align) {
  if (size == 0) size = 1;  // a unique, freeable object
  if (BROOM_UNLIKELY(align == 0 || (align & (align - 1)) != 0)) {
    RegionAccess::set_error(r, AllocError::kBadAlignment);
    return nullptr;
  }
  int c = size <= kMaxSmall && align <= 4096 ? ClassFor(size, align) : kNumClasses;
  if (BROOM_UNLIKELY(c == kNumClasses)) return AllocateLarge(r, size, align);
  ClassState& s = classes_[c];
  auto* p = static_cast<uintptr_t*>(s.free_list);
  if (p != nullptr) {
    UnpoisonMemory(p, ClassSize(c));
    s.free_list = reinterpret_cast<void*>(p[0]);
  } else if (s.cursor != s.limit) {
    p = reinterpret_cast<uintptr_t*>(s.cursor);
    s.cursor += ClassSize(c);
  } else {
    p = static_cast<uintptr_t*>(AllocateSlow(r, c));
    if (p == nullptr) return nullptr;
  }
  p[1] = 0;
  RegionAccess::NoteRequested(r, ClassSize(c));
  return p;
}

void* ActorHeap::AllocateSlow(Region* r, int c) {
  ClassState& s = classes_[c];
  const size_t csize = ClassSize(c);
  const size_t start = SlabStart(c);
  int bc = 0;
  while (bc < kNumBlockClasses - 1 && (BlockClassSize(bc) - start) / csize < 8) ++bc;
  bc += static_cast<int>(s.slabs);
  if (bc > kNumBlockClasses - 1) bc = kNumBlockClasses - 1;
  BlockHeader* b = RegionAccess::TakeBlock(r, BlockClassSize(bc), /*link=*/true);
  if (b == nullptr) {
    // Under a budget, fall back to the smallest slab that holds one object.
    int min_bc = BlockClassFor(start + csize);
    if (r->last_error() != AllocError::kRegionBudget || bc == min_bc) return nullptr;
    b = RegionAccess::TakeBlock(r, BlockClassSize(min_bc), /*link=*/true);
    if (b == nullptr) return nullptr;
  }
  b->object_class = static_cast<uint16_t>(c);
  ++s.slabs;
  char* first = reinterpret_cast<char*>(b) + start;
  size_t n = (b->size - start) / csize;
  s.cursor = first + csize;
  s.limit = first + n * csize;
  return first;
}

void* ActorHeap::AllocateLarge(Region* r, size_t size, size_t align) {
  if (size > (SIZE_MAX >> 2) || align > (SIZE_MAX >> 2)) {
    RegionAccess::set_error(r, AllocError::kBadSize);
    return nullptr;
  }
  size_t pad = align > 64 ? align - 64 : 0;  // the header keeps begin() 64-aligned
  BlockHeader* b = RegionAccess::TakeBlock(r, sizeof(BlockHeader) + pad + size, /*link=*/false);
  if (b == nullptr) return nullptr;
  b->dedicated = 1;
  b->object_class = kLargeObject;
  b->object = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(b->begin()) + align - 1) &
                                      ~(uintptr_t{align} - 1));
  b->used_end = b->object + size;
  b->prev = nullptr;
  b->next = large_;
  if (large_ != nullptr) large_->prev = b;
  large_ = b;
  RegionAccess::NoteRequested(r, static_cast<size_t>(b->end() - b->object));
  return b->object;
}

void ActorHeap::DieBadFree(Region* r, const void* p, const char* why) {
  char buf[128];
  char other[128] = "no region (heap, stack or freed memory)";
  if (Region* o = RegionOf(p)) Describe(o, other, sizeof(other));
  Fatal(__FILE__, __LINE__, "ActorRegion::Free(%p) on %s: %s; the pointer belongs to %s", p,
        Describe(r, buf, sizeof(buf)), why, other);
}

void ActorHeap::Free(Region* r, void* p) {
  if (p == nullptr) return;
  BlockHeader* b = BlockOf(p);
  if (BROOM_UNLIKELY(b == nullptr || b->owner.load(std::memory_order_relaxed) != r)) {
    DieBadFree(r, p, "pointer not owned by this region");
  }
  uint16_t c = b->object_class;
  if (c == kLargeObject) {
    if (BROOM_UNLIKELY(p != b->object)) DieBadFree(r, p, "not the start of an object");
    if (b->prev != nullptr) b->prev->next = b->next; else large_ = b->next;
    if (b->next != nullptr) b->next->prev = b->prev;
    RegionAccess::NoteFreed(r, static_cast<size_t>(b->end() - b->object));
    RegionAccess::GiveBackBlock(r, b);
    return;
  }
  if (BROOM_UNLIKELY(c >= kNumClasses)) DieBadFree(r, p, "not an object (region metadata)");
  const size_t csize = ClassSize(static_cast<int>(c));
  size_t offset = static_cast<size_t>(static_cast<char*>(p) - reinterpret_cast<char*>(b));
  if (BROOM_UNLIKELY(offset < SlabStart(c) || !IsMultiple(offset - SlabStart(c), c))) {
    DieBadFree(r, p, "not the start of an object");
  }
  ClassState& s = classes_[c];
  auto* words = static_cast<uintptr_t*>(p);
  if (BROOM_UNLIKELY(words[1] == Tag(p))) DieIfFreed(r, p);
  ClearIfChecked(words + 2, csize - 16);  // no stale words for scans
  words[0] = reinterpret_cast<uintptr_t>(s.free_list);
  words[1] = Tag(p);
  s.free_list = p;
  if (csize > 16) PoisonMemory(static_cast<char*>(p) + 16, csize - 16);
  RegionAccess::NoteFreed(r, csize);
}

void ActorHeap::DieIfFreed(Region* r, void* p) {
  // The tag says "probably free": confirm by walking the class's free list.
  BlockHeader* b = BlockOf(p);
  if (b == nullptr || b->object_class >= kNumClasses) return;
  for (void* q = classes_[b->object_class].free_list; q != nullptr;
       q = reinterpret_cast<void*>(static_cast<uintptr_t*>(q)[0])) {
    if (q == p) DieBadFree(r, p, "double free");
  }
}

size_t ActorHeap::UsableSize(Region* r, const void* p) {
  BlockHeader* b = BlockOf(p);
  if (b == nullptr || b->owner.load(std::memory_order_relaxed) != r) {
    DieBadFree(r, p, "UsableSize of a pointer not owned by this region");
  }
  if (b->object_class == kLargeObject) return static_cast<size_t>(b->end() - static_cast<const char*>(p));
  if (b->object_class >= kNumClasses) DieBadFree(r, p, "UsableSize of region metadata");
  return ClassSize(b->object_class);
}

char* ActorHeap::SlabEnd(const BlockHeader* b) const {
  const ClassState& s = classes_[b->object_class];
  const char* begin = reinterpret_cast<const char*>(b);
  if (s.limit > begin && s.limit <= begin + b->size) return s.cursor;  // the class's newest slab
  size_t csize = ClassSize(b->object_class);
  size_t start = SlabStart(b->object_class);
  return const_cast<char*>(begin) + start + (b->size - start) / csize * csize;
}

bool ActorHeap::LooksFreed(const void* p) {
  return static_cast<const uintptr_t*>(p)[1] == Tag(p);
}

void ActorHeap::LinkCleanup(ActorCleanupNode* node) {
  node->prev = nullptr;
  node->next = cleanups_;
  if (cleanups_ != nullptr) cleanups_->prev = node;
  cleanups_ = node;
}

void ActorHeap::UnlinkCleanup(ActorCleanupNode* node) {
  if (node->prev != nullptr) node->prev->next = node->next; else cleanups_ = node->next;
  if (node->next != nullptr) node->next->prev = node->prev;
}

void ActorHeap::DestroyAll(Region* r) {
  // Newest first: reverse order of construction.
  while (cleanups_ != nullptr) {
    ActorCleanupNode* node = cleanups_;
    cleanups_ = node->next;
    node->destroy(reinterpret_cast<char*>(node) + sizeof(ActorCleanupNode));
  }
  while (large_ != nullptr) {
    BlockHeader* b = large_;
    large_ = b->next;
    RegionAccess::GiveBackBlock(r, b);
  }
}

namespace {
size_t CleanupOffset(size_t align) {
  return align > sizeof(ActorCleanupNode) ? align : sizeof(ActorCleanupNode);
}
}  // namespace

void* ActorAllocateWithCleanup(Region& r, size_t size, size_t align, void (*destroy)(void*),
                               size_t count) {
  size_t off = CleanupOffset(align);
  if (size > SIZE_MAX - off) {
    RegionAccess::set_error(&r, AllocError::kBadSize);
    return nullptr;
  }
  char* raw = static_cast<char*>(r.Allocate(off + size, align > 16 ? align : 16));
  if (raw == nullptr) return nullptr;
  auto* node = reinterpret_cast<ActorCleanupNode*>(raw + off - sizeof(ActorCleanupNode));
  node->destroy = destroy;
  node->count = count;
  RegionAccess::actor(&r)->LinkCleanup(node);
  return raw + off;
}

void ActorFreeWithCleanup(void* object, size_t align, bool run_destructor) {
  Region* r = RegionOf(object);
  BROOM_CHECK(r != nullptr && r->kind() == RegionKind::kActor,
              "broom::Delete(%p): not an object of a live actor region", object);
  char* obj = static_cast<char*>(object);
  char* raw = obj - CleanupOffset(align);
  ActorHeap* heap = RegionAccess::actor(r);
  // A second Delete finds the allocation on a free list (its tag word is set); report it
  // before running the destructor twice or unlinking through overwritten links.
  if (BROOM_UNLIKELY(ActorHeap::LooksFreed(raw))) heap->DieIfFreed(r, raw);
  auto* node = reinterpret_cast<ActorCleanupNode*>(obj - sizeof(ActorCleanupNode));
  if (run_destructor) node->destroy(obj);
  heap->UnlinkCleanup(node);
  heap->Free(r, raw);
}

void ActorFree(Region& r, void* p) { RegionAccess::actor(&r)->Free(&r, p); }

}  // namespace broom::internal
