// Copyright Broom authors.
//
// The region object: creation in its first block, the bump slow path, cleanups, marks,
// reset and bulk destruction. Kind-specific code lives in actor_heap.cc and the handle files.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <new>

#include "alloc/os/os.h"
#include "alloc/region/actor_heap.h"
#include "alloc/region/region_internal.h"
#include "broom/region.h"

namespace broom {

namespace internal {
namespace {
thread_local constinit AllocError t_last_error = AllocError::kNone;

constexpr size_t kRegionHeaderBytes =
    (sizeof(BlockHeader) + sizeof(Region) + sizeof(ActorHeap) + 15) & ~size_t{15};
static_assert(kRegionHeaderBytes < 2048, "region headers must leave most of the first block");
// The bump pointer starts every block 16-aligned (Region's cursor_ invariant).
static_assert(kRegionHeaderBytes % kDefaultAlignment == 0 &&
              sizeof(BlockHeader) % kDefaultAlignment == 0 &&
              BlockClassSize(0) % kDefaultAlignment == 0 && kChunkSize % kDefaultAlignment == 0);
// Requests larger than the largest block class get a dedicated run of their own (transferable
// regions free it when the object is deallocated). Anything smaller starts a new block that
// becomes the bump block, so a medium object (a batch's 64 KiB record vector) shares its block
// with what follows instead of wasting the rest of a block of its own.
constexpr size_t kDedicatedThreshold = BlockClassSize(kNumBlockClasses - 1);

char* AlignUp(char* p, size_t align) {
  return reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(p) + align - 1) & ~(align - 1));
}
}  // namespace

void SetLastError(AllocError e) { t_last_error = e; }

char* RegionAccess::FirstObjectByte(BlockHeader* first) {
  return reinterpret_cast<char*>(first) + kRegionHeaderBytes;
}

const char* Describe(const Region* r, char* buf, size_t n) {
  std::snprintf(buf, n, "region #%llu%s%s%s (%s)", static_cast<unsigned long long>(r->id()),
                r->name()[0] ? " '" : "", r->name(), r->name()[0] ? "'" : "", KindName(r->kind()));
  return buf;
}

void InitCheckModeFromEnv();  // outlives.cc

Region* RegionAccess::Create(RegionKind kind, const RegionOptions& options) {
  static const bool checks_initialized = (InitCheckModeFromEnv(), true);
  (void)checks_initialized;
  AllocError error = AllocError::kNone;
  BlockHeader* b = AcquireBlock(BlockClassSize(0), nullptr, &error);
  if (b == nullptr) {
    SetLastError(error);
    return nullptr;
  }
  ClearIfChecked(b->begin(), b->size - sizeof(BlockHeader));  // no stale words for scans
  auto* r = ::new (b->begin()) Region(kind, NextRegionId(), options, b);
  if (kind == RegionKind::kActor) {
    r->actor_ = ::new (b->begin() + sizeof(Region)) ActorHeap();
  }
  if (kind == RegionKind::kTemporary) r->owner_tid_ = os::ThreadId();
  b->owner.store(r, std::memory_order_release);
  NoteRegionCreated(kind);
  return r;
}

}  // namespace internal

using internal::BlockHeader;
using internal::RegionAccess;

Region::Region(RegionKind kind, uint64_t id, const RegionOptions& options, BlockHeader* first)
    : cursor_(reinterpret_cast<char*>(first) + internal::kRegionHeaderBytes),
      limit_(first->end()),
      kind_(kind),
      current_(first),
      current_base_(cursor_),
      blocks_(first),
      spare_(nullptr),
      block_bytes_(first->size),
      blocks_held_(1),
      peak_block_bytes_(first->size),
      budget_(options.budget_bytes),
      retain_bytes_(options.retain_bytes),
      id_(id),
      name_(options.name) {
  first->prev = nullptr;
  if (kind == RegionKind::kActor) cursor_ = current_base_ = limit_;  // actor objects: slabs
}

const char* KindName(RegionKind kind) {
  switch (kind) {
    case RegionKind::kTransferable: return "transferable";
    case RegionKind::kActor: return "actor";
    case RegionKind::kTemporary: return "temporary";
  }
  return "?";
}

const char* ErrorName(AllocError error) {
  switch (error) {
    case AllocError::kNone: return "none";
    case AllocError::kBadSize: return "size overflows";
    case AllocError::kBadAlignment: return "alignment is not a power of two";
    case AllocError::kRegionBudget: return "region budget exceeded";
    case AllocError::kProcessBudget: return "process budget exceeded";
    case AllocError::kOutOfMemory: return "out of memory";
  }
  return "?";
}

AllocError LastAllocError() { return internal::t_last_error; }

RegionStats Region::stats() const {
  RegionStats s;
  s.bytes_requested = bytes_requested_ + static_cast<size_t>(cursor_ - current_base_);
  s.bytes_freed = bytes_freed_;
  s.block_bytes = block_bytes_;
  s.blocks = blocks_held_;
  s.peak_block_bytes = peak_block_bytes_;
  s.cleanups = cleanup_count_;
  return s;
}

bool Region::Contains(const void* p) const { return RegionOf(p) == this; }

BlockHeader* RegionAccess::TakeBlock(Region* r, size_t bytes, bool link) {
  int c = internal::BlockClassFor(bytes);
  size_t size = c >= 0 ? internal::BlockClassSize(c)
                       : (bytes + internal::kChunkSize - 1) & ~(internal::kChunkSize - 1);
  if (r->budget_ != 0 && r->block_bytes_ + size > r->budget_) {
    set_error(r, AllocError::kRegionBudget);
    return nullptr;
  }
  AllocError error = AllocError::kNone;
  BlockHeader* b = internal::AcquireBlock(bytes, r, &error);
  if (b == nullptr) {
    set_error(r, error);
    return nullptr;
  }
  internal::ClearIfChecked(b->begin(), b->size - sizeof(BlockHeader));
  r->block_bytes_ += b->size;
  ++r->blocks_held_;
  if (r->block_bytes_ > r->peak_block_bytes_) r->peak_block_bytes_ = r->block_bytes_;
  if (link) LinkBlock(r, b);
  return b;
}

void RegionAccess::LinkBlock(Region* r, BlockHeader* b) {
  b->next = r->blocks_;
  b->prev = nullptr;
  if (b->next != nullptr) b->next->prev = b;
  r->blocks_ = b;
}

void RegionAccess::FreeDedicated(Region* r, void* p) {
  BlockHeader* b = internal::BlockOf(p);
  if (b == nullptr || !b->dedicated || b->object != p ||
      b->owner.load(std::memory_order_relaxed) != r) {
    return;  // not a large object of this region: freed in bulk like any other
  }
  if (b->prev != nullptr) {
    b->prev->next = b->next;
  } else {
    r->blocks_ = b->next;
  }
  if (b->next != nullptr) b->next->prev = b->prev;
  r->bytes_freed_ += static_cast<size_t>(b->used_end - b->object);
  GiveBackBlock(r, b);
}

void RegionAccess::GiveBackBlock(Region* r, BlockHeader* b) {
  internal::SetReleasingRegion(r->id_, r->name_, r->kind_);
  r->block_bytes_ -= b->size;
  --r->blocks_held_;
  internal::ReleaseBlock(b);
}

void* Region::AllocateSlow(size_t size, size_t align) {
  if (kind_ == RegionKind::kActor) return actor_->Allocate(this, size, align);
  if (size == 0) size = 1;  // unique pointers for zero-size requests
  if (align == 0 || (align & (align - 1)) != 0) {
    RegionAccess::set_error(this, AllocError::kBadAlignment);
    return nullptr;
  }
  if (size > (SIZE_MAX >> 2) || align > (SIZE_MAX >> 2)) {
    RegionAccess::set_error(this, AllocError::kBadSize);
    return nullptr;
  }
  // Size 0 and alignments above 16 land here even when the current block has room.
  if (void* p = BumpAligned(size, align)) return p;
  size_t needed = size + (align > 16 ? align : 0) + sizeof(BlockHeader);
  if (needed > internal::kDedicatedThreshold) {
    BlockHeader* b = RegionAccess::TakeBlock(this, needed, /*link=*/true);
    if (b == nullptr) return nullptr;
    b->dedicated = 1;
    b->object = internal::AlignUp(b->begin(), align);
    b->used_end = b->object + size;
    bytes_requested_ += size;
    return b->object;
  }
  BlockHeader* b = nullptr;
  if (spare_ != nullptr && spare_->size >= needed) {
    b = spare_;
    spare_ = b->next;
    spare_bytes_ -= b->size;
    internal::UnpoisonMemory(b->begin(), b->size - sizeof(BlockHeader));
    internal::ClearIfChecked(b->begin(), b->size - sizeof(BlockHeader));
    RegionAccess::LinkBlock(this, b);
  } else {
    // Geometric growth: each growth block two classes (4x) larger than the last, up to a chunk,
    // but no larger than the budget allows. A request too big for that class gets the smallest
    // block that holds it, which becomes the bump block but does not advance the growth: a
    // region whose first object is medium-sized (a batch's record vector) does not jump to the
    // largest class for the small objects after it.
    int min_c = internal::BlockClassFor(needed);
    int c = std::min<int>(growth_class_ + 2, internal::kNumBlockClasses - 1);
    if (c < min_c) {
      c = min_c;
    } else {
      growth_class_ = static_cast<uint8_t>(c);
    }
    while (budget_ != 0 && c > min_c && block_bytes_ + internal::BlockClassSize(c) > budget_) --c;
    b = RegionAccess::TakeBlock(this, internal::BlockClassSize(c), /*link=*/true);
    if (b == nullptr) return nullptr;
  }
  current_->used_end = cursor_;
  bytes_requested_ += static_cast<size_t>(cursor_ - current_base_);
  current_ = b;
  current_base_ = b->begin();
  cursor_ = b->begin();
  limit_ = b->end();
  // Fits: the block has at least size + align bytes (align > 16) or size bytes, a multiple of
  // 16 at least BumpSize(size), after its header; padding is at most align - 16.
  return BumpAligned(size, align);
}

void* Region::BumpAligned(size_t size, size_t align) {
  const size_t pad = (0 - reinterpret_cast<uintptr_t>(cursor_)) & (align - 1);
  const size_t left = static_cast<size_t>(limit_ - cursor_);
  const size_t bump = BumpSize(size);
  if (pad > left || bump > left - pad) return nullptr;
  char* p = cursor_ + pad;
  cursor_ = p + bump;
  internal::UnpoisonMemory(p, size);
  return p;
}

void Region::Deallocate(void* p, size_t size, size_t /*align*/) {
  if (p == nullptr) return;
  if (kind_ == RegionKind::kActor) {
    actor_->Free(this, p);
    return;
  }
  // Bump allocations took BumpSize(size) bytes (size 0 as 1); a bogus huge size never matches.
  char* c = static_cast<char*>(p);
  if (c >= current_base_ && c < cursor_ && size <= (SIZE_MAX >> 2) &&
      BumpSize(size == 0 ? 1 : size) == static_cast<size_t>(cursor_ - c)) {
    cursor_ = c;
  } else if (size >= internal::kDedicatedThreshold / 2 && kind_ == RegionKind::kTransferable) {
    // (A cheap filter: dedicated objects are over kDedicatedThreshold minus a header.)
    // A large object in its own block goes back at once (the old buffer of a growing vector).
    // Temporary regions keep theirs until the scope exits: a scope's mark may name the block.
    RegionAccess::FreeDedicated(this, p);
  }
}

void* Region::do_allocate(size_t bytes, size_t alignment) {
  void* p = Allocate(bytes, alignment);
  if (BROOM_UNLIKELY(p == nullptr)) throw std::bad_alloc();
  return p;
}

void Region::do_deallocate(void* p, size_t bytes, size_t alignment) {
  Deallocate(p, bytes, alignment);
}

bool Region::AddCleanup(void (*fn)(void*), void* obj) {
  auto* node = static_cast<internal::Cleanup*>(Allocate(sizeof(internal::Cleanup), alignof(internal::Cleanup)));
  if (node == nullptr) return false;
  node->fn = fn;
  node->obj = obj;
  node->next = cleanups_;
  cleanups_ = node;
  ++cleanup_count_;
  return true;
}

namespace internal {

namespace {
void RunCleanups(Region* r, Cleanup*& head, Cleanup* until, size_t& count) {
  // Each cleanup may allocate in or register more cleanups on the region; re-read the head.
  while (head != until) {
    Cleanup* c = head;
    head = c->next;
    --count;
    c->fn(c->obj);
  }
  (void)r;
}
}  // namespace

RegionMark RegionAccess::Mark(const Region* r) {
  return {r->current_, r->cursor_, r->current_base_, r->blocks_, r->cleanups_, r->bytes_requested_,
          r->cleanup_count_};
}

void RegionAccess::Rewind(Region* r, const RegionMark& m) {
  RunCleanups(r, r->cleanups_, m.cleanups, r->cleanup_count_);
  SetReleasingRegion(r->id_, r->name_, r->kind_);
  BlockHeader* b = r->blocks_;
  while (b != m.head) {
    BlockHeader* next = b->next;
    if (!b->dedicated && r->spare_bytes_ + b->size <= r->retain_bytes_) {
      PoisonMemory(b->begin(), b->size - sizeof(BlockHeader));
      b->next = r->spare_;
      r->spare_ = b;
      r->spare_bytes_ += b->size;
    } else {
      r->block_bytes_ -= b->size;
      --r->blocks_held_;
      ReleaseBlock(b);
    }
    b = next;
  }
  r->blocks_ = m.head;
  m.head->prev = nullptr;
  r->current_ = m.current;
  r->cursor_ = m.cursor;
  r->current_base_ = m.current_base;
  r->limit_ = m.current->end();
  r->bytes_requested_ = m.bytes_requested;
  ClearIfChecked(r->cursor_, static_cast<size_t>(r->limit_ - r->cursor_));
  PoisonMemory(r->cursor_, static_cast<size_t>(r->limit_ - r->cursor_));
}

void RegionAccess::Reset(Region* r, const char* op) {
  char buf[128];
  BROOM_CHECK(r->open_count_ == 0 && r->scope_depth_ == 0,
              "%s of %s while it is open (typestate OPEN); close it first", op,
              Describe(r, buf, sizeof(buf)));
  // The first block (which holds the region object) is the last in the list.
  BlockHeader* first = r->blocks_;
  while (first->next != nullptr) first = first->next;
  char* base = reinterpret_cast<char*>(first) + kRegionHeaderBytes;
  RegionMark m{first, base, base, first, nullptr, 0, 0};
  Rewind(r, m);
  r->bytes_freed_ = 0;
}

void RegionAccess::Destroy(Region* r, const char* op) {
  char buf[128];
  BROOM_CHECK(r->open_count_ == 0 && r->scope_depth_ == 0,
              "%s of %s while it is open (typestate OPEN): close every scope first", op,
              Describe(r, buf, sizeof(buf)));
  RunCleanups(r, r->cleanups_, nullptr, r->cleanup_count_);
  if (r->actor_ != nullptr) r->actor_->DestroyAll(r);
  RegionKind kind = r->kind_;
  SetReleasingRegion(r->id_, r->name_, kind);
  BlockHeader* spare = r->spare_;
  BlockHeader* blocks = r->blocks_;
  r->~Region();
  ReleaseBlockList(spare);
  ReleaseBlockList(blocks);  // the first block, holding *r, goes last
  NoteRegionDestroyed(kind);
}

}  // namespace internal
}  // namespace broom
