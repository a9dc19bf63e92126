// Copyright Broom authors.
//
// The region-operations harness: decoding, allocation, frees, scopes, budgets, Reset, destruction
// and the end-of-input balance. Transfers live in region_ops_transfer.cc. See
// region_ops_harness.h for what is checked.
#include "tests/fuzz/region_ops_harness.h"

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <memory_resource>
#include <new>
#include <set>

#include "broom/memory.h"
#include "tests/fuzz/region_ops_model.h"

namespace broom::fuzz {
namespace internal {

int g_op_index = -1;
HarnessCounters g_counters = {};

void Fail(const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  std::fprintf(stderr, "region_ops: invariant broken at operation %d: %s\n", g_op_index, buf);
  std::fflush(stderr);
  std::abort();
}

void FillPattern(const Alloc& a) {
  if (a.tracked) return;
  ForEachPatternOffset(a.size, [&](size_t i) { a.p[i] = static_cast<char>(PatternByte(a.id, i)); });
}

void VerifyAlloc(const Alloc& a, const Region* owner, int* counter) {
  if (a.tracked) {
    const auto* t = reinterpret_cast<const Tracked*>(a.p);
    HARNESS_CHECK(t->id == a.id && t->counter == counter,
                  "Tracked object #%llu at %p was overwritten",
                  static_cast<unsigned long long>(a.id), static_cast<void*>(a.p));
  } else {
    ForEachPatternOffset(a.size, [&](size_t i) {
      if (static_cast<uint8_t>(a.p[i]) != PatternByte(a.id, i)) {
        Fail("allocation #%llu (%p, %zu bytes) corrupted at offset %zu: %02x != %02x",
             static_cast<unsigned long long>(a.id), static_cast<void*>(a.p), a.size, i,
             static_cast<uint8_t>(a.p[i]), PatternByte(a.id, i));
      }
    });
  }
  if (owner != nullptr) {
    const size_t span = a.size > 0 ? a.size : 1;
    HARNESS_CHECK(RegionOf(a.p) == owner && RegionOf(a.p + span - 1) == owner,
                  "allocation #%llu (%p, %zu bytes) is owned by %p, expected region %p",
                  static_cast<unsigned long long>(a.id), static_cast<void*>(a.p), a.size,
                  static_cast<void*>(RegionOf(a.p)), static_cast<const void*>(owner));
  }
}

void VerifyAll(const std::vector<Alloc>& allocs, const Region* owner, int* counter) {
  for (const Alloc& a : allocs) VerifyAlloc(a, owner, counter);
}

size_t Harness::PickSize(bool* huge) {
  *huge = false;
  switch (in_.U8() % 16) {
    case 0:
    case 1:
    case 2:
    case 3:
    case 4:
    case 5:
    case 6:
    case 7:
      return in_.U8();
    case 8:
    case 9:
    case 10:
      return in_.U16() % 8193;
    case 11:
    case 12:
      return in_.U32() % (300 << 10);
    case 13:
      return 0;
    case 14: {
      *huge = true;
      static constexpr size_t kHuge[] = {SIZE_MAX,        SIZE_MAX - 15,
                                         SIZE_MAX / 2,    (SIZE_MAX >> 2) + 1,
                                         size_t{1} << 40, SIZE_MAX - 4096};
      return kHuge[in_.U8() % std::size(kHuge)];
    }
    default:
      return in_.U32() % (size_t{2} << 20);
  }
}

size_t Harness::PickAlign(bool* bad) {
  *bad = false;
  switch (in_.U8() % 16) {
    case 10:
    case 11:
    case 12:
      return size_t{1} << (in_.U8() % 13);
    case 13:
      return size_t{1} << (12 + in_.U8() % 9);  // 4 KiB .. 1 MiB
    case 14: {
      *bad = true;
      static constexpr size_t kBad[] = {0, 3, 24, 4097, SIZE_MAX};
      return kBad[in_.U8() % std::size(kBad)];
    }
    case 15:
      return kDefaultAlignment;
    default:
      return size_t{1} << (in_.U8() % 5);
  }
}

int Harness::FindEmpty(int hint) const {
  for (int i = 0; i < kSlots; ++i) {
    int s = (hint + i) % kSlots;
    if (slots_[s].kind == Kind::kEmpty) return s;
  }
  return -1;
}

void Harness::Record(Slot& slot, char* p, size_t size, bool tracked) {
  Alloc a{p, size, next_id_++, slot.level, tracked};
  {
    // A zero-size allocation holds one byte of its own (region.h: unique pointers).
    const size_t span = size > 0 ? size : 1;
    uintptr_t start = reinterpret_cast<uintptr_t>(p);
    auto next = live_.lower_bound(start);
    if (next != live_.end()) {
      HARNESS_CHECK(start + span <= next->first,
                    "new allocation [%p, +%zu) overlaps live allocation #%llu at %#lx", p, size,
                    static_cast<unsigned long long>(next->second.second),
                    static_cast<unsigned long>(next->first));
    }
    if (next != live_.begin()) {
      auto prev = std::prev(next);
      HARNESS_CHECK(prev->first + prev->second.first <= start,
                    "new allocation [%p, +%zu) overlaps live allocation #%llu at %#lx (+%zu)", p,
                    size, static_cast<unsigned long long>(prev->second.second),
                    static_cast<unsigned long>(prev->first), prev->second.first);
    }
    live_.emplace(start, std::make_pair(span, a.id));
  }
  live_bytes_ += size;
  FillPattern(a);
  slot.allocs.push_back(a);
}

void Harness::Forget(const Alloc& a) {
  live_.erase(reinterpret_cast<uintptr_t>(a.p));
  live_bytes_ -= a.size;
}

void Harness::Create() {
  int s = FindEmpty(in_.U8() % kSlots);
  uint8_t how = in_.U8();
  if (s < 0) return;
  Slot& slot = slots_[s];
  RegionOptions options;
  if (how & 0x10) options.budget_bytes = (1 + in_.U8() % 64) * size_t{16} << 10;
  static constexpr size_t kRetain[] = {0, 4096, 64 << 10, size_t{1} << 20};
  options.retain_bytes = kRetain[(how >> 5) & 3];
  options.name = "fuzz";
  try {
    switch (how % 3) {
      case 0:
        slot.t.emplace(options);
        slot.kind = Kind::kTransferable;
        slot.region = &slot.t->region();
        break;
      case 1:
        slot.a.emplace(options);
        slot.kind = Kind::kActor;
        slot.region = &slot.a->region();
        break;
      default:
        slot.tmp.emplace(options);
        slot.kind = Kind::kTemporary;
        slot.region = &slot.tmp->region();
        break;
    }
  } catch (const std::bad_alloc&) {
    HARNESS_CHECK(process_budget_ != 0 && LastAllocError() == AllocError::kProcessBudget,
                  "region creation failed (%s) with no process budget set",
                  ErrorName(LastAllocError()));
    return;
  }
  slot.budget = options.budget_bytes;
  slot.retain = options.retain_bytes;
  slot.level = 0;
  ++g_counters.creates;
  HARNESS_CHECK(RegionOf(slot.region) == slot.region, "a region object is not inside its region");
  HARNESS_CHECK(slot.region->stats().block_bytes == FirstBlockBytes(slot.kind),
                "a new region holds %zu block bytes", slot.region->stats().block_bytes);
}

void Harness::CheckFailure(Slot& slot, size_t size, bool huge, bool bad_align,
                           size_t before_blocks) {
  AllocError e = slot.region->last_error();
  HARNESS_CHECK(LastAllocError() == e, "LastAllocError() %s != region last_error() %s",
                ErrorName(LastAllocError()), ErrorName(e));
  if (bad_align) {
    HARNESS_CHECK(e == AllocError::kBadAlignment, "invalid alignment failed with %s", ErrorName(e));
  } else if (huge) {
    // A size that fits in the address arithmetic but not in memory meets the budgets first.
    HARNESS_CHECK(e == AllocError::kBadSize || e == AllocError::kOutOfMemory ||
                      (e == AllocError::kRegionBudget && slot.budget != 0) ||
                      (e == AllocError::kProcessBudget && process_budget_ != 0),
                  "huge size %zu failed with %s", size, ErrorName(e));
  } else if (e == AllocError::kRegionBudget) {
    HARNESS_CHECK(slot.budget != 0, "kRegionBudget with no region budget");
  } else if (e == AllocError::kProcessBudget) {
    HARNESS_CHECK(process_budget_ != 0, "kProcessBudget with no process budget");
  } else {
    Fail("allocation of %zu bytes failed with %s", size, ErrorName(e));
  }
  HARNESS_CHECK(slot.region->stats().block_bytes == before_blocks,
                "a failed allocation changed the region's block bytes (%zu -> %zu)", before_blocks,
                slot.region->stats().block_bytes);
}

void Harness::Allocate(int s) {
  Slot& slot = slots_[s];
  bool huge, bad_align;
  size_t size = PickSize(&huge);
  size_t align = PickAlign(&bad_align);
  if (slot.kind == Kind::kEmpty) return;
  if (!huge && !bad_align && live_bytes_ + size + align > options_.max_live_bytes) return;
  size_t before = slot.region->stats().block_bytes;
  void* p = slot.region->Allocate(size, align);
  if (huge || bad_align) {
    HARNESS_CHECK(p == nullptr, "Allocate(%zu, %zu) should have failed", size, align);
  }
  if (p == nullptr) {
    ++g_counters.allocs_failed;
    CheckFailure(slot, size, huge, bad_align, before);
    return;
  }
  ++g_counters.allocs_ok;
  HARNESS_CHECK(reinterpret_cast<uintptr_t>(p) % align == 0, "Allocate(%zu, %zu) gave %p", size,
                align, p);
  // Zero-size allocations are unique and owned too (one byte, never written).
  HARNESS_CHECK(RegionOf(p) == slot.region, "Allocate(%zu, %zu) gave %p, not in the region", size,
                align, p);
  size_t after = slot.region->stats().block_bytes;
  if (slot.budget != 0 && after > before) {
    HARNESS_CHECK(after <= slot.budget, "block bytes %zu exceed the budget %zu", after,
                  slot.budget);
  }
  if (slot.kind == Kind::kActor) {
    HARNESS_CHECK(slot.a->UsableSize(p) >= size, "UsableSize %zu < %zu", slot.a->UsableSize(p),
                  size);
  }
  Record(slot, static_cast<char*>(p), size, false);
}

void Harness::AllocateInContext() {
  size_t size = in_.U16() % 2048;
  size_t align = size_t{1} << (in_.U8() % 8);
  Region* top = CurrentRegion();
  if (scopes_.empty()) {
    HARNESS_CHECK(top == nullptr, "CurrentRegion() is not null with no scope open");
    return;
  }
  Slot& slot = slots_[scopes_.back().slot];
  HARNESS_CHECK(top == slot.region, "CurrentRegion() is not the innermost open region");
  if (live_bytes_ + size + align > options_.max_live_bytes) return;
  void* p;
  try {
    p = CurrentResource()->allocate(size, align);
  } catch (const std::bad_alloc&) {
    CheckFailure(slot, size, false, false, slot.region->stats().block_bytes);
    return;
  }
  HARNESS_CHECK(p != nullptr && reinterpret_cast<uintptr_t>(p) % align == 0,
                "CurrentResource()->allocate(%zu, %zu) gave %p", size, align, p);
  HARNESS_CHECK(RegionOf(p) == slot.region, "context allocation in the wrong region");
  Record(slot, static_cast<char*>(p), size, false);
}

void Harness::NewTrackedObject(int s) {
  Slot& slot = slots_[s];
  if (slot.kind == Kind::kEmpty) return;
  Tracked* t;
  uint64_t id = next_id_;
  try {
    t = NewIn<Tracked>(*slot.region, slot.tracked_live.get(), id);
  } catch (const std::bad_alloc&) {
    CheckFailure(slot, sizeof(Tracked), false, false, slot.region->stats().block_bytes);
    return;
  }
  HARNESS_CHECK(RegionOf(t) == slot.region, "NewIn put the object outside the region");
  ++g_counters.tracked_objects;
  Record(slot, reinterpret_cast<char*>(t), sizeof(Tracked), true);
  HARNESS_CHECK(*slot.tracked_live == slot.TrackedInModel(), "Tracked count %d != model %d",
                *slot.tracked_live, slot.TrackedInModel());
}

void Harness::FreeOne(int s) {
  Slot& slot = slots_[s];
  uint16_t pick = in_.U16();
  if (slot.kind == Kind::kEmpty || slot.allocs.empty()) return;
  size_t k = pick % slot.allocs.size();
  Alloc a = slot.allocs[k];
  if (slot.kind != Kind::kActor && a.tracked) return;  // bump regions free objects in bulk
  if (slot.kind == Kind::kTemporary && a.scope < slot.level) return;  // keep scopes simple
  VerifyAlloc(a, slot.region, slot.tracked_live.get());
  ++g_counters.frees;
  slot.allocs.erase(slot.allocs.begin() + static_cast<ptrdiff_t>(k));
  Forget(a);
  if (slot.kind == Kind::kActor) {
    if (a.tracked) {
      Delete(reinterpret_cast<Tracked*>(a.p));
    } else {
      slot.a->Free(a.p);
    }
  } else {
    slot.region->Deallocate(a.p, a.size);
  }
  HARNESS_CHECK(*slot.tracked_live == slot.TrackedInModel(), "Tracked count %d != model %d",
                *slot.tracked_live, slot.TrackedInModel());
}

// Many objects of one size: exhausts slabs (actor regions) and blocks (bump regions).
void Harness::Burst(int s) {
  Slot& slot = slots_[s];
  const size_t size = 1 + in_.U16() % 1024;
  const size_t count = 1 + in_.U16() % 600;
  if (slot.kind == Kind::kEmpty) return;
  for (size_t i = 0; i < count && live_bytes_ + size <= options_.max_live_bytes; ++i) {
    size_t before = slot.region->stats().block_bytes;
    void* p = slot.region->Allocate(size);
    if (p == nullptr) {
      ++g_counters.allocs_failed;
      CheckFailure(slot, size, false, false, before);
      return;
    }
    ++g_counters.allocs_ok;
    HARNESS_CHECK(RegionOf(p) == slot.region, "Burst: %p not in the region", p);
    Record(slot, static_cast<char*>(p), size, false);
  }
}

// Frees a random share of an actor region's objects in random order: slabs go from full to
// partial to empty and are reused by other classes.
void Harness::FreeMany(int s) {
  Slot& slot = slots_[s];
  const uint8_t share = in_.U8();
  const uint32_t seed = in_.U32();
  if (slot.kind != Kind::kActor || slot.allocs.empty()) return;
  std::vector<Alloc> order = slot.allocs;
  uint32_t x = seed | 1;
  for (size_t i = order.size(); i > 1; --i) {  // xorshift Fisher-Yates: deterministic per input
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    std::swap(order[i - 1], order[x % i]);
  }
  order.resize(order.size() * (share % 5 + 1) / 5);
  std::set<uint64_t> freed;
  for (const Alloc& a : order) {
    VerifyAlloc(a, slot.region, slot.tracked_live.get());
    ++g_counters.frees;
    Forget(a);
    freed.insert(a.id);
    if (a.tracked) {
      Delete(reinterpret_cast<Tracked*>(a.p));
    } else {
      slot.a->Free(a.p);
    }
  }
  std::erase_if(slot.allocs, [&](const Alloc& a) { return freed.count(a.id) != 0; });
  HARNESS_CHECK(*slot.tracked_live == slot.TrackedInModel(), "Tracked count %d != model %d",
                *slot.tracked_live, slot.TrackedInModel());
  Check(s);
}

void Harness::OpenScope(int s) {
  Slot& slot = slots_[s];
  if (slot.kind == Kind::kEmpty || scopes_.size() >= 60) return;
  ScopeEntry e{s, nullptr, nullptr};
  switch (slot.kind) {
    case Kind::kTemporary:
      e.scope = std::make_unique<TemporaryRegion::Scope>(*slot.tmp);
      ++slot.level;
      break;
    case Kind::kTransferable:
      e.context.reset(new ContextScope(slot.t->Open()));
      HARNESS_CHECK(slot.t->state() == TransferableRegion::State::kOpen, "Open() left state %s",
                    StateName(slot.t->state()));
      break;
    default:
      e.context = std::make_unique<ContextScope>(*slot.region);
      break;
  }
  ++slot.open;
  ++g_counters.scopes;
  scopes_.push_back(std::move(e));
  HARNESS_CHECK(CurrentRegion() == slot.region, "the opened region is not on top of the context");
}

void Harness::CloseScope() {
  if (scopes_.empty()) return;
  ScopeEntry e = std::move(scopes_.back());
  scopes_.pop_back();
  Slot& slot = slots_[e.slot];
  if (e.scope != nullptr) {
    uint32_t level = slot.level;
    // Everything allocated at this level dies; check it first.
    std::vector<Alloc> keep;
    for (const Alloc& a : slot.allocs) {
      VerifyAlloc(a, slot.region, slot.tracked_live.get());
      if (a.scope >= level) {
        Forget(a);
      } else {
        keep.push_back(a);
      }
    }
    slot.allocs.swap(keep);
    e.scope.reset();
    --slot.level;
    HARNESS_CHECK(*slot.tracked_live == slot.TrackedInModel(),
                  "scope exit left %d Tracked objects alive, model says %d", *slot.tracked_live,
                  slot.TrackedInModel());
    VerifyAll(slot.allocs, slot.region, slot.tracked_live.get());
  } else {
    e.context.reset();
  }
  --slot.open;
  if (slot.kind == Kind::kTransferable && slot.open == 0) {
    HARNESS_CHECK(slot.t->state() == TransferableRegion::State::kClosed,
                  "closing the last scope left state %s", StateName(slot.t->state()));
  }
  Region* expected = scopes_.empty() ? nullptr : slots_[scopes_.back().slot].region;
  HARNESS_CHECK(CurrentRegion() == expected, "closing a scope did not restore the context");
}

void Harness::SetBudget(int s) {
  Slot& slot = slots_[s];
  uint8_t how = in_.U8();
  if (slot.kind == Kind::kEmpty) return;
  size_t held = slot.region->stats().block_bytes;
  switch (how % 4) {
    case 0:
      slot.budget = 0;
      break;
    case 1:
      slot.budget = held / 2 + 1;
      break;  // below the footprint: the next new block fails
    default:
      slot.budget = held + (how >> 2) * size_t{4096};
      break;
  }
  slot.region->SetBudget(slot.budget);
  HARNESS_CHECK(slot.region->budget() == slot.budget, "budget() does not return what was set");
}

void Harness::SetProcessBudgetOp() {
  uint8_t how = in_.U8();
  if (how % 3 == 0) {
    process_budget_ = 0;
  } else {
    process_budget_ = GetGlobalStats().block_bytes + (how >> 2) * (size_t{64} << 10) + 1;
  }
  SetProcessBudget(process_budget_);
}

void Harness::Reset(int s) {
  Slot& slot = slots_[s];
  if (slot.open != 0 || (slot.kind != Kind::kTransferable && slot.kind != Kind::kTemporary)) {
    return;
  }
  VerifyAll(slot.allocs, slot.region, slot.tracked_live.get());
  ++g_counters.resets;
  ForgetAll(slot.allocs);
  slot.allocs.clear();
  if (slot.kind == Kind::kTransferable) {
    slot.t->Reset();
  } else {
    slot.tmp->Reset();
  }
  HARNESS_CHECK(*slot.tracked_live == 0, "Reset left %d destructors unrun", *slot.tracked_live);
  RegionStats st = slot.region->stats();
  HARNESS_CHECK(st.bytes_requested == 0, "Reset left bytes_requested %zu", st.bytes_requested);
  HARNESS_CHECK(st.block_bytes <= 4096 + slot.retain,
                "Reset kept %zu block bytes (retain_bytes %zu)", st.block_bytes, slot.retain);
}

void Harness::DestroySlot(Slot& slot) {
  VerifyAll(slot.allocs, slot.region, slot.tracked_live.get());
  GlobalStats before = GetGlobalStats();
  ++g_counters.destroys;
  RegionKind kind = slot.region->kind();
  switch (slot.kind) {
    case Kind::kTransferable:
      slot.t->Free();
      HARNESS_CHECK(slot.t->state() == TransferableRegion::State::kFreed, "Free left state %s",
                    StateName(slot.t->state()));
      slot.t.reset();
      break;
    case Kind::kActor:
      slot.a.reset();
      break;
    case Kind::kTemporary:
      slot.tmp.reset();
      break;
    case Kind::kEmpty:
      return;
  }
  GlobalStats after = GetGlobalStats();
  HARNESS_CHECK(after.live(kind) + 1 == before.live(kind), "destroying a %s region did not count",
                KindName(kind));
  HARNESS_CHECK(*slot.tracked_live == 0, "destruction left %d destructors unrun",
                *slot.tracked_live);
  for (const Alloc& a : slot.allocs) {
    HARNESS_CHECK(RegionOf(a.p) == nullptr, "memory of a destroyed region is still owned by %p",
                  static_cast<void*>(RegionOf(a.p)));
  }
  ForgetAll(slot.allocs);
  slot.allocs.clear();
  slot.kind = Kind::kEmpty;
  slot.region = nullptr;
  slot.level = 0;
}

void Harness::Destroy(int s) {
  Slot& slot = slots_[s];
  if (slot.kind == Kind::kEmpty || slot.open != 0) return;
  DestroySlot(slot);
}

void Harness::Check(int s) {
  Slot& slot = slots_[s];
  if (slot.kind == Kind::kEmpty) return;
  VerifyAll(slot.allocs, slot.region, slot.tracked_live.get());
  HARNESS_CHECK(*slot.tracked_live == slot.TrackedInModel(), "Tracked count %d != model %d",
                *slot.tracked_live, slot.TrackedInModel());
  RegionStats st = slot.region->stats();
  HARNESS_CHECK(st.peak_block_bytes >= st.block_bytes &&
                    st.block_bytes >= FirstBlockBytes(slot.kind) && st.blocks >= 1,
                "inconsistent stats: block_bytes %zu peak %zu blocks %zu", st.block_bytes,
                st.peak_block_bytes, st.blocks);
  if (slot.kind == Kind::kTransferable) {
    HARNESS_CHECK(slot.t->state() == (slot.open ? TransferableRegion::State::kOpen
                                                : TransferableRegion::State::kClosed),
                  "state %s with %d open scopes", StateName(slot.t->state()), slot.open);
  }
  if (slot.kind == Kind::kActor) {
    // Every slab list, free list and counter (fatal with a message if broken), then the byte
    // accounting against the model: live bytes are the size classes of the live objects.
    slot.a->region().Validate();
    size_t live = 0;
    for (const Alloc& a : slot.allocs) {
      live += a.tracked ? TrackedClassBytes() : slot.a->UsableSize(a.p);
    }
    HARNESS_CHECK(st.bytes_requested - st.bytes_freed == live,
                  "actor region accounts %zu live bytes, the model %zu",
                  st.bytes_requested - st.bytes_freed, live);
    HARNESS_CHECK(st.cleanups == static_cast<size_t>(slot.TrackedInModel()),
                  "actor region counts %zu cleanups, the model %d Tracked objects", st.cleanups,
                  slot.TrackedInModel());
  }
}

void Harness::Run() {
  GlobalStats start = GetGlobalStats();
  for (g_op_index = 0; g_op_index < options_.max_ops && !in_.done(); ++g_op_index) {
    uint8_t op = in_.U8();
    if (options_.verbose) std::fprintf(stderr, "op %d: %u\n", g_op_index, op % 27);
    switch (op % 27) {
      case 0:
      case 1:
      case 2:
      case 3:
      case 4:
      case 5:
      case 6:
        Allocate(PickSlot());
        break;
      case 7:
      case 8:
        FreeOne(PickSlot());
        break;
      case 9:
      case 10:
        Create();
        break;
      case 11:
        Destroy(PickSlot());
        break;
      case 12:
      case 13:
        OpenScope(PickSlot());
        break;
      case 14:
      case 15:
        CloseScope();
        break;
      case 16:
        Transfer(PickSlot());
        break;
      case 17:
        SetBudget(PickSlot());
        break;
      case 18:
        Reset(PickSlot());
        break;
      case 19:
        NewTrackedObject(PickSlot());
        break;
      case 20:
        AllocateInContext();
        break;
      case 21:
        if (in_.U8() % 4 == 0) SetProcessBudgetOp();
        break;
      case 22:
        ShareAndDrop(PickSlot());
        break;
      case 23:
        CheckOutlivesOp(PickSlot());
        break;
      case 25:
        Burst(PickSlot());
        break;
      case 26:
        FreeMany(PickSlot());
        break;
      default:
        Check(PickSlot());
        break;
    }
  }
  g_op_index = -1;  // teardown
  while (!scopes_.empty()) CloseScope();
  process_budget_ = 0;
  SetProcessBudget(0);
  for (Slot& slot : slots_) {
    if (slot.kind != Kind::kEmpty) DestroySlot(slot);
  }
  HARNESS_CHECK(live_.empty() && live_bytes_ == 0, "the model still has %zu live allocations",
                live_.size());
  GlobalStats end = GetGlobalStats();
  for (int k = 0; k < kNumRegionKinds; ++k) {
    HARNESS_CHECK(end.live(static_cast<RegionKind>(k)) == start.live(static_cast<RegionKind>(k)),
                  "%llu %s regions were lost",
                  static_cast<unsigned long long>(end.live(static_cast<RegionKind>(k)) -
                                                  start.live(static_cast<RegionKind>(k))),
                  KindName(static_cast<RegionKind>(k)));
  }
  HARNESS_CHECK(end.block_bytes == start.block_bytes,
                "block accounting does not balance: %zu block bytes held before, %zu after",
                start.block_bytes, end.block_bytes);
}

}  // namespace internal

HarnessCounters GetHarnessCounters() { return internal::g_counters; }

void RunRegionOps(const uint8_t* data, size_t size, const HarnessOptions& options) {
  ++internal::g_counters.inputs;
  internal::Harness(data, size, options).Run();
}

}  // namespace broom::fuzz
