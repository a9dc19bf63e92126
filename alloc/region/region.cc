// Copyright Broom authors.
//
// The common part of every region: names, errors, block accounting, cleanups, and the
// dispatch of the kind-independent calls to BumpRegion (bump_region.cc) or ReapRegion
// (reap_region.cc).
#include "broom/region.h"

#include <cstdio>
#include <new>

#include "alloc/os/os.h"
#include "alloc/region/region_internal.h"

namespace broom {

namespace internal {
namespace {
thread_local constinit AllocError t_last_error = AllocError::kNone;
}  // namespace

thread_local constinit uint32_t t_thread_id = 0;

uint32_t InitThreadId() {
  t_thread_id = os::ThreadId();
  return t_thread_id;
}

void SetLastError(AllocError e) { t_last_error = e; }

const char* Describe(const Region* r, char* buf, size_t n) {
  std::snprintf(buf, n, "region #%llu%s%s%s (%s)", static_cast<unsigned long long>(r->id()),
                r->name()[0] ? " '" : "", r->name(), r->name()[0] ? "'" : "", KindName(r->kind()));
  return buf;
}

void DieMovedFrom(const char* handle) {
  Fatal(__FILE__, __LINE__, "use of a moved-from %s", handle);
}

void CheckNotOpen(const Region* r, uint32_t scope_depth, const char* op) {
  if (BROOM_UNLIKELY(r->open_count() != 0 || scope_depth != 0)) {
    char buf[128];
    Fatal(__FILE__, __LINE__, "%s of %s while it is open (typestate OPEN): close every scope first",
          op, Describe(r, buf, sizeof(buf)));
  }
}

}  // namespace internal

using internal::BlockHeader;

const char* KindName(RegionKind kind) {
  switch (kind) {
    case RegionKind::kTransferable:
      return "transferable";
    case RegionKind::kActor:
      return "actor";
    case RegionKind::kTemporary:
      return "temporary";
  }
  return "?";
}

const char* ErrorName(AllocError error) {
  switch (error) {
    case AllocError::kNone:
      return "none";
    case AllocError::kBadSize:
      return "size overflows";
    case AllocError::kBadAlignment:
      return "alignment is not a power of two";
    case AllocError::kRegionBudget:
      return "region budget exceeded";
    case AllocError::kProcessBudget:
      return "process budget exceeded";
    case AllocError::kOutOfMemory:
      return "out of memory";
  }
  return "?";
}

AllocError LastAllocError() { return internal::t_last_error; }

Region::Region(RegionKind kind, uint64_t id, const RegionOptions& options, BlockHeader* first)
    : kind_(kind),
      id_(id),
      name_(options.name),
      budget_(options.budget_bytes),
      block_bytes_(first->size),
      peak_block_bytes_(first->size),
      blocks_(first) {
  first->next = nullptr;
  first->prev = nullptr;
}

RegionStats Region::stats() const {
  if (kind_ == RegionKind::kActor) return static_cast<const ReapRegion*>(this)->stats();
  return static_cast<const BumpRegion*>(this)->stats();
}

void Region::ForEachLiveRange(RangeVisitor fn, void* ctx) const {
  if (kind_ == RegionKind::kActor) {
    static_cast<const ReapRegion*>(this)->ForEachLiveRange(fn, ctx);
  } else {
    static_cast<const BumpRegion*>(this)->ForEachLiveRange(fn, ctx);
  }
}

BumpRegion& Region::AsBump() {
  if (BROOM_UNLIKELY(kind_ == RegionKind::kActor)) {
    char buf[128];
    internal::Fatal(__FILE__, __LINE__, "%s is not a bump region (transferable or temporary)",
                    internal::Describe(this, buf, sizeof(buf)));
  }
  return *static_cast<BumpRegion*>(this);
}

ReapRegion& Region::AsReap() {
  if (BROOM_UNLIKELY(kind_ != RegionKind::kActor)) {
    char buf[128];
    internal::Fatal(__FILE__, __LINE__, "%s is not an actor region",
                    internal::Describe(this, buf, sizeof(buf)));
  }
  return *static_cast<ReapRegion*>(this);
}

bool Region::Contains(const void* p) const { return RegionOf(p) == this; }

void Region::DieWrongThread(const char* op) const {
  char buf[128];
  const uint32_t owner = owner_thread();
  internal::Fatal(__FILE__, __LINE__, "%s on %s from thread %u; %s thread %u (%s)", op,
                  internal::Describe(this, buf, sizeof(buf)), internal::CurrentThreadId(),
                  kind_ == RegionKind::kTemporary ? "it belongs to" : "it is open on", owner,
                  kind_ == RegionKind::kTemporary
                      ? "temporary regions are owner-thread only"
                      : "a region is used only by the thread that has it open");
}

void Region::SetError(AllocError e) {
  last_error_ = e;
  internal::SetLastError(e);
}

BlockHeader* Region::AcquireBlock(size_t bytes) {
  const int c = internal::BlockClassFor(bytes);
  const size_t size = c >= 0 ? internal::BlockClassSize(c)
                             : (bytes + internal::kChunkSize - 1) & ~(internal::kChunkSize - 1);
  if (budget_ != 0 && block_bytes_ + size > budget_) {
    SetError(AllocError::kRegionBudget);
    return nullptr;
  }
  AllocError error = AllocError::kNone;
  BlockHeader* b = internal::AcquireBlock(bytes, this, &error);
  if (b == nullptr) {
    SetError(error);
    return nullptr;
  }
  internal::ClearIfChecked(b->begin(), b->size - sizeof(BlockHeader));
  block_bytes_ += b->size;
  ++blocks_held_;
  if (block_bytes_ > peak_block_bytes_) peak_block_bytes_ = block_bytes_;
  return b;
}

void Region::ReleaseBlock(BlockHeader* b) {
  NoteReleasing();
  block_bytes_ -= b->size;
  --blocks_held_;
  internal::ReleaseBlock(b);
}

void Region::LinkBlock(BlockHeader* b) {
  b->next = blocks_;
  b->prev = nullptr;
  if (b->next != nullptr) b->next->prev = b;
  blocks_ = b;
}

void Region::UnlinkBlock(BlockHeader* b) {
  if (b->prev != nullptr) {
    b->prev->next = b->next;
  } else {
    blocks_ = b->next;
  }
  if (b->next != nullptr) b->next->prev = b->prev;
}

void Region::DestroyAndRelease(BlockHeader* blocks) {
  const RegionKind kind = kind_;
  this->~Region();
  internal::ReleaseBlockList(blocks);
  internal::NoteRegionDestroyed(kind);
}

void Region::NoteReleasing() const { internal::SetReleasingRegion(id_, name_, KindName(kind_)); }

bool Region::AddCleanup(void (*fn)(void*), void* obj) {
  auto* node = static_cast<internal::Cleanup*>(
      Allocate(sizeof(internal::Cleanup), alignof(internal::Cleanup)));
  if (node == nullptr) return false;
  node->fn = fn;
  node->obj = obj;
  node->next = cleanups_;
  cleanups_ = node;
  ++cleanup_count_;
  return true;
}

void Region::RunCleanups(internal::Cleanup* until) {
  // Each cleanup may allocate in or register more cleanups on the region; re-read the head.
  while (cleanups_ != until) {
    internal::Cleanup* c = cleanups_;
    cleanups_ = c->next;
    --cleanup_count_;
    c->fn(c->obj);
  }
}

}  // namespace broom
