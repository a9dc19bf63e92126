// Copyright Broom authors.
//
// BumpRegion: the bump slow path (alignment, growth, dedicated blocks), marks and rewinding,
// reset and bulk destruction.
#include <algorithm>
#include <cstdio>
#include <new>

#include "alloc/region/region_internal.h"
#include "broom/region.h"

namespace broom {

using internal::BlockHeader;

namespace {
constexpr size_t kHeaderBytes = internal::kRegionHeaderBytes<BumpRegion>;
constexpr size_t kFirstBlockBytes = internal::BlockClassSize(internal::kPageBlockClass);
static_assert(kHeaderBytes < kFirstBlockBytes / 2, "the header must leave most of the first block");
// The bump pointer starts every block 16-aligned (the cursor_ invariant).
static_assert(kHeaderBytes % kDefaultAlignment == 0 &&
              sizeof(BlockHeader) % kDefaultAlignment == 0);
// Requests larger than the largest block class get a dedicated run of their own (transferable
// regions free it when the object is deallocated). Anything smaller starts a new block that
// becomes the bump block, so a medium object (a batch's 64 KiB record vector) shares its block
// with what follows instead of wasting the rest of a block of its own.
constexpr size_t kDedicatedThreshold = internal::BlockClassSize(internal::kNumBlockClasses - 1);

char* AlignUp(char* p, size_t align) {
  return reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(p) + align - 1) & ~(align - 1));
}
}  // namespace

BumpRegion* BumpRegion::Create(RegionKind kind, const RegionOptions& options) {
  return internal::CreateRegion<BumpRegion>(
      kind, kFirstBlockBytes, [&](uint64_t id, BlockHeader* b) {
        return ::new (b->begin()) BumpRegion(kind, id, options, b);
      });
}

BumpRegion::BumpRegion(RegionKind kind, uint64_t id, const RegionOptions& options,
                       BlockHeader* first)
    : Region(kind, id, options, first),
      cursor_(reinterpret_cast<char*>(first) + kHeaderBytes),
      limit_(first->end()),
      current_(first),
      current_base_(cursor_),
      retain_bytes_(options.retain_bytes),
      growth_class_(static_cast<uint8_t>(first->block_class)),
      checked_(internal::ChecksEnabled()) {
  OpenWindow();
}

char* BumpRegion::FirstObjectByte() const {
  BlockHeader* first = blocks_;
  while (first->next != nullptr) first = first->next;
  return reinterpret_cast<char*>(first) + kHeaderBytes;
}

RegionStats BumpRegion::stats() const {
  RegionStats s;
  s.bytes_requested = bytes_requested_ + static_cast<size_t>(cursor_ - current_base_);
  s.bytes_freed = bytes_freed_;
  s.block_bytes = block_bytes_;
  s.blocks = blocks_held_;
  s.peak_block_bytes = peak_block_bytes_;
  s.cleanups = cleanup_count_;
  return s;
}

void BumpRegion::ForEachLiveRange(RangeVisitor fn, void* ctx) const {
  for (const BlockHeader* b = blocks_; b != nullptr; b = b->next) {
    const char* begin =
        b->next == nullptr ? reinterpret_cast<const char*>(b) + kHeaderBytes : b->begin();
    const char* end = b == current_ ? cursor_ : b->used_end;
    if (b->dedicated) begin = b->object;
    if (end != nullptr && end > begin) fn(ctx, b, begin, end);
  }
}

void* BumpRegion::AllocateSlow(size_t size, size_t align) {
  CheckThread("Allocate");
  if (size == 0) size = 1;  // unique pointers for zero-size requests
  if (align == 0 || (align & (align - 1)) != 0) {
    SetError(AllocError::kBadAlignment);
    return nullptr;
  }
  if (size > (SIZE_MAX >> 2) || align > (SIZE_MAX >> 2)) {
    SetError(AllocError::kBadSize);
    return nullptr;
  }
  // Size 0 and alignments above 16 land here even when the current block has room.
  if (void* p = BumpAligned(size, align)) return p;
  const size_t needed = size + (align > 16 ? align : 0) + sizeof(BlockHeader);
  if (needed > kDedicatedThreshold) {
    BlockHeader* b = AcquireBlock(needed);
    if (b == nullptr) return nullptr;
    LinkBlock(b);
    b->dedicated = 1;
    b->object = AlignUp(b->begin(), align);
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
  } else {
    // Geometric growth: each growth block two classes (4x) larger than the last, up to a chunk,
    // but no larger than the budget allows. A request too big for that class gets the smallest
    // block that holds it, which becomes the bump block but does not advance the growth: a
    // region whose first object is medium-sized (a batch's record vector) does not jump to the
    // largest class for the small objects after it.
    const int min_c = std::max(internal::BlockClassFor(needed), internal::kPageBlockClass);
    int c = std::min<int>(growth_class_ + 2, internal::kNumBlockClasses - 1);
    if (c < min_c) {
      c = min_c;
    } else {
      growth_class_ = static_cast<uint8_t>(c);
    }
    while (budget_ != 0 && c > min_c && block_bytes_ + internal::BlockClassSize(c) > budget_) --c;
    b = AcquireBlock(internal::BlockClassSize(c));
    if (b == nullptr) return nullptr;
  }
  LinkBlock(b);
  current_->used_end = cursor_;
  bytes_requested_ += static_cast<size_t>(cursor_ - current_base_);
  BROOM_ASSERT(b->next != nullptr && b->size >= needed && b->owner.load() == this);
  current_ = b;
  current_base_ = b->begin();
  cursor_ = b->begin();
  // Fits: the block has at least size + align bytes (align > 16) or size bytes, a multiple of
  // 16 at least BumpSize(size), after its header; padding is at most align - 16.
  return BumpAligned(size, align);
}

void* BumpRegion::BumpAligned(size_t size, size_t align) {
  const size_t pad = (0 - reinterpret_cast<uintptr_t>(cursor_)) & (align - 1);
  const size_t left = static_cast<size_t>(current_->end() - cursor_);
  const size_t bump = BumpSize(size);
  if (pad > left || bump > left - pad) return nullptr;
  char* p = cursor_ + pad;
  cursor_ = p + bump;
  OpenWindow();
  internal::UnpoisonMemory(p, size);
  return p;
}

void BumpRegion::Deallocate(void* p, size_t size, size_t /*align*/) {
  if (p == nullptr) return;
  // Bump allocations took BumpSize(size) bytes (size 0 as 1); a bogus huge size never matches.
  char* c = static_cast<char*>(p);
  if (c >= current_base_ && c < cursor_ && size <= (SIZE_MAX >> 2) &&
      BumpSize(size == 0 ? 1 : size) == static_cast<size_t>(cursor_ - c)) {
    BROOM_OWNER_CHECK_FAST(this, "Deallocate");
    cursor_ = c;
    OpenWindow();
  } else if (size >= kDedicatedThreshold / 2 && kind_ == RegionKind::kTransferable) {
    // (A cheap filter: dedicated objects are over kDedicatedThreshold minus a header.)
    // A large object in its own block goes back at once (the old buffer of a growing vector).
    // Temporary regions keep theirs until the scope exits: a scope's mark may name the block.
    FreeDedicated(p);
  } else if (internal::ChecksEnabled()) {
    // Checked mode: the dead object's bytes are zeroed, so scans of the region (state checks,
    // CheckOutlives) do not read the pointers it held (an erased map node's vector header, say).
    ClearIfOwned(c, size);
  }
}

void BumpRegion::ClearIfOwned(char* p, size_t size) {
  BlockHeader* b = internal::BlockOf(p);
  if (b == nullptr || b->owner.load(std::memory_order_relaxed) != this || p < b->begin() ||
      size > static_cast<size_t>(b->end() - p)) {
    return;  // not this region's bytes: nothing to clear
  }
  std::memset(p, 0, size);
}

void BumpRegion::FreeDedicated(void* p) {
  BlockHeader* b = internal::BlockOf(p);
  if (b == nullptr || !b->dedicated || b->object != p ||
      b->owner.load(std::memory_order_relaxed) != this) {
    return;  // not a large object of this region: freed in bulk like any other
  }
  UnlinkBlock(b);
  bytes_freed_ += static_cast<size_t>(b->used_end - b->object);
  ReleaseBlock(b);
}

void* BumpRegion::do_allocate(size_t bytes, size_t alignment) {
  void* p = Allocate(bytes, alignment);
  if (BROOM_UNLIKELY(p == nullptr)) internal::ThrowBadAlloc();
  return p;
}

void BumpRegion::Validate() const {
  auto die = [this](const char* what) {
    char buf[128];
    internal::Fatal(__FILE__, __LINE__, "BumpRegion::Validate: %s: %s",
                    internal::Describe(this, buf, sizeof(buf)), what);
  };
  size_t bytes = 0;
  size_t blocks = 0;
  bool current_found = false;
  const BlockHeader* prev = nullptr;
  for (const BlockHeader* b = blocks_; b != nullptr; prev = b, b = b->next) {
    if (b->owner.load(std::memory_order_relaxed) != this) die("a block has another owner");
    if (b->prev != prev) die("block list back link");
    if (b->size != (b->block_class == internal::kRunClass
                        ? b->size
                        : internal::BlockClassSize(b->block_class))) {
      die("block size does not match its class");
    }
    if (b == current_) current_found = true;
    if (b != current_ && !b->dedicated && b->next != nullptr &&
        (b->used_end < b->begin() || b->used_end > b->end())) {
      die("used end outside its block");
    }
    bytes += b->size;
    ++blocks;
  }
  if (!current_found) die("the current block is not in the block list");
  if (current_base_ < current_->begin() || cursor_ < current_base_ || cursor_ > current_->end() ||
      limit_ < cursor_ || limit_ > current_->end() ||
      reinterpret_cast<uintptr_t>(cursor_) % kDefaultAlignment != 0) {
    die("bump cursor outside the current block");
  }
  size_t spare = 0;
  for (const BlockHeader* b = spare_; b != nullptr; b = b->next) {
    spare += b->size;
    bytes += b->size;
    ++blocks;
  }
  if (spare != spare_bytes_ || spare_bytes_ > retain_bytes_) die("spare bytes");
  if (bytes != block_bytes_ || blocks != blocks_held_) die("block bytes or count do not add up");
  size_t cleanups = 0;
  for (const internal::Cleanup* c = cleanups_; c != nullptr; c = c->next) ++cleanups;
  if (cleanups != cleanup_count_) die("cleanup count");
}

internal::RegionMark BumpRegion::Mark() const {
  return {current_, cursor_, current_base_, blocks_, cleanups_, bytes_requested_, cleanup_count_};
}

void BumpRegion::Rewind(const internal::RegionMark& m) {
  RunCleanups(m.cleanups);
  NoteReleasing();
  BlockHeader* b = blocks_;
  while (b != m.head) {
    BlockHeader* next = b->next;
    if (!b->dedicated && spare_bytes_ + b->size <= retain_bytes_) {
      internal::PoisonMemory(b->begin(), b->size - sizeof(BlockHeader));
      b->next = spare_;
      spare_ = b;
      spare_bytes_ += b->size;
    } else {
      block_bytes_ -= b->size;
      --blocks_held_;
      internal::ReleaseBlock(b);
    }
    b = next;
  }
  blocks_ = m.head;
  m.head->prev = nullptr;
  current_ = m.current;
  cursor_ = m.cursor;
  current_base_ = m.current_base;
  OpenWindow();
  bytes_requested_ = m.bytes_requested;
  const size_t rest = static_cast<size_t>(current_->end() - cursor_);
  internal::ClearIfChecked(cursor_, rest);
  internal::PoisonMemory(cursor_, rest);
  BROOM_VALIDATE(Validate());
}

void BumpRegion::Reset(const char* op) {
  CheckThread(op);
  internal::CheckNotOpen(this, scope_depth_, op);
  // The first block (which holds the region object) is the last in the list.
  BlockHeader* first = blocks_;
  while (first->next != nullptr) first = first->next;
  char* base = reinterpret_cast<char*>(first) + kHeaderBytes;
  Rewind({first, base, base, first, nullptr, 0, 0});
  bytes_freed_ = 0;
}

void BumpRegion::DestroyOwned(BumpRegion* r, const char* handle) {
  // The operation's name is only needed for the error of destroying an open region: formatted
  // then, not on every destruction.
  if (BROOM_LIKELY(r->open_count_ == 0 && r->scope_depth_ == 0)) return r->Destroy(handle);
  char op[64];
  std::snprintf(op, sizeof(op), "destruction of %s", handle);
  r->Destroy(op);
}

void BumpRegion::Destroy(const char* op) {
  // A closed region may be destroyed on any thread (a temporary region of an exited thread
  // too); one open on another thread names both threads.
  if (open_count_ != 0) CheckThread(op);
  internal::CheckNotOpen(this, scope_depth_, op);
  BROOM_VALIDATE(Validate());
  RunCleanups(nullptr);
  NoteReleasing();
  internal::ReleaseBlockList(spare_);
  DestroyAndRelease(blocks_);  // the first block, holding *this, goes last
}

}  // namespace broom
