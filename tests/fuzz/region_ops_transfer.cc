// Copyright Broom authors.
//
// The region-operations harness, part 2: moving regions between slots and threads (Transfer(),
// move, Release/Adopt, a real owner on another thread, move-assignment over a live region, actor
// migration), Share(), and CheckOutlives on filled regions.
#include <cstring>
#include <thread>
#include <utility>
#include <vector>

#include "broom/check.h"
#include "broom/memory.h"
#include "tests/fuzz/region_ops_model.h"

namespace broom::fuzz::internal {

void Harness::MoveSlot(int from, int to) {
  Slot& src = slots_[from];
  Slot& dst = slots_[to];
  dst.kind = src.kind;
  dst.region = src.region;
  dst.allocs = std::move(src.allocs);
  dst.budget = src.budget;
  dst.retain = src.retain;
  dst.level = src.level;
  dst.open = 0;
  dst.tracked_live = std::move(src.tracked_live);
  src.allocs.clear();
  src.kind = Kind::kEmpty;
  src.region = nullptr;
  src.tracked_live = std::make_unique<int>(0);
}

void Harness::Transfer(int s) {
  Slot& slot = slots_[s];
  uint8_t mode = in_.U8();
  int to = FindEmpty(in_.U8() % kSlots);
  if (slot.kind == Kind::kEmpty || slot.open != 0 || to < 0) return;
  Slot& dst = slots_[to];
  Region* region = slot.region;
  bool thread_ok = threads_started_ < options_.max_threads;
  ++g_counters.transfers;

  if (slot.kind == Kind::kTemporary) {
    // Temporary regions stay on their thread; moving the handle keeps the region.
    if (slot.level != 0) return;
    dst.tmp.emplace(std::move(*slot.tmp));
    slot.tmp.reset();
    MoveSlot(s, to);
    HARNESS_CHECK(&dst.tmp->region() == region, "moving a TemporaryRegion changed its region");
    return;
  }

  if (slot.kind == Kind::kActor) {
    if (mode % 2 == 0 || !thread_ok) {
      dst.a.emplace(std::move(*slot.a));
      slot.a.reset();
      MoveSlot(s, to);
      return;
    }
    // The actor migrates to another thread, which frees some objects and allocates more.
    ++threads_started_;
    ++g_counters.thread_handoffs;
    std::vector<Alloc> allocs = std::move(slot.allocs);
    std::vector<Alloc> freed;
    std::vector<std::pair<char*, size_t>> added;
    int* counter = slot.tracked_live.get();
    ActorRegion moved(std::move(*slot.a));
    slot.a.reset();
    std::thread worker([&] {
      VerifyAll(allocs, region, counter);
      for (size_t i = 0; i < allocs.size(); i += 3) {
        if (allocs[i].tracked) continue;
        moved.Free(allocs[i].p);
        freed.push_back(allocs[i]);
      }
      for (size_t i = 0; i < 8; ++i) {
        size_t size = 16 + 40 * i;
        char* p = static_cast<char*>(moved.Allocate(size));
        if (p != nullptr) added.emplace_back(p, size);
      }
    });
    worker.join();
    slot.allocs = std::move(allocs);
    for (const Alloc& f : freed) {
      for (size_t i = 0; i < slot.allocs.size(); ++i) {
        if (slot.allocs[i].p == f.p) {
          slot.allocs.erase(slot.allocs.begin() + static_cast<ptrdiff_t>(i));
          break;
        }
      }
      Forget(f);
    }
    MoveSlot(s, to);
    dst.a.emplace(std::move(moved));
    for (auto [p, size] : added) Record(dst, p, size, false);
    VerifyAll(dst.allocs, region, dst.tracked_live.get());
    return;
  }

  // Transferable.
  TransferableRegion& src = *slot.t;
  switch (mode % 6) {
    case 0:
      dst.t.emplace(src.Transfer());
      break;
    case 1:
      dst.t.emplace(std::move(src));
      break;
    case 2: {
      Region* raw = src.Release();
      HARNESS_CHECK(raw == region, "Release() returned another region");
      dst.t.emplace(TransferableRegion::Adopt(raw));
      break;
    }
    case 3:
    case 4: {
      if (!thread_ok) {
        dst.t.emplace(src.Transfer());
        break;
      }
      // A real owner on another thread: it checks the contents, allocates more, and either hands
      // the region back (3) or frees it there (4).
      ++threads_started_;
      ++g_counters.thread_handoffs;
      bool free_there = mode % 6 == 4;
      TransferableRegion moved = src.Transfer();
      std::vector<Alloc> allocs = slot.allocs;
      int* counter = slot.tracked_live.get();
      std::vector<std::pair<char*, size_t>> added;
      std::thread worker([&] {
        VerifyAll(allocs, region, counter);
        for (size_t i = 0; i < 4; ++i) {
          size_t size = 8 + 100 * i;
          char* p = static_cast<char*>(moved.Allocate(size, 8));
          HARNESS_CHECK(p != nullptr || moved.region().last_error() != AllocError::kNone,
                        "remote allocation failed without an error");
          if (p != nullptr) {
            std::memset(p, 0x5a, size);
            added.emplace_back(p, size);
          }
        }
        if (free_there) moved.Free();
      });
      worker.join();
      HARNESS_CHECK(src.state() == TransferableRegion::State::kTransferred,
                    "a transferred handle is in state %s", StateName(src.state()));
      if (free_there) {
        HARNESS_CHECK(moved.state() == TransferableRegion::State::kFreed,
                      "a freed handle is in state %s", StateName(moved.state()));
        HARNESS_CHECK(*counter == 0, "%d destructors did not run when freed on another thread",
                      *counter);
        for (const Alloc& a : slot.allocs) {
          HARNESS_CHECK(RegionOf(a.p) == nullptr, "freed memory still owned");
        }
        ForgetAll(slot.allocs);
        slot.allocs.clear();
        slot.t.reset();
        slot.kind = Kind::kEmpty;
        slot.region = nullptr;
        *slot.tracked_live = 0;
        return;
      }
      dst.t.emplace(std::move(moved));
      MoveSlot(s, to);
      slot.t.reset();
      for (auto [p, size] : added) {
        // Give the remote allocations a pattern of their own now that they are back.
        Record(dst, p, size, false);
      }
      VerifyAll(dst.allocs, region, dst.tracked_live.get());
      return;
    }
    default: {
      // Move-assign over an existing closed transferable region, which frees that one.
      int victim = -1;
      for (int i = 0; i < kSlots; ++i) {
        if (i != s && slots_[i].kind == Kind::kTransferable && slots_[i].open == 0) victim = i;
      }
      if (victim < 0) {
        dst.t.emplace(src.Transfer());
        break;
      }
      Slot& v = slots_[victim];
      VerifyAll(v.allocs, v.region, v.tracked_live.get());
      ForgetAll(v.allocs);
      v.allocs.clear();
      *v.t = std::move(src);
      HARNESS_CHECK(*v.tracked_live == 0,
                    "move-assignment did not run the old region's destructors");
      HARNESS_CHECK(&v.t->region() == region, "move-assignment did not take the region");
      std::optional<TransferableRegion> keep = std::move(v.t);
      v.t.reset();
      v.kind = Kind::kEmpty;
      v.region = nullptr;
      MoveSlot(s, victim);
      v.t = std::move(keep);
      slot.t.reset();
      VerifyAll(v.allocs, region, v.tracked_live.get());
      return;
    }
  }
  HARNESS_CHECK(src.state() == TransferableRegion::State::kTransferred,
                "a transferred handle is in state %s", StateName(src.state()));
  HARNESS_CHECK(!src.usable(), "a transferred handle is still usable");
  HARNESS_CHECK(&dst.t->region() == region, "the new owner holds another region");
  slot.t.reset();
  MoveSlot(s, to);
  VerifyAll(dst.allocs, region, dst.tracked_live.get());
}

void Harness::ShareAndDrop(int s) {
  Slot& slot = slots_[s];
  uint8_t mode = in_.U8();
  if (slot.kind != Kind::kTransferable || slot.open != 0) return;
  Region* region = slot.region;
  ++g_counters.shares;
  SharedRegion shared = std::move(*slot.t).Share();
  HARNESS_CHECK(slot.t->state() == TransferableRegion::State::kTransferred,
                "Share() left the handle in state %s", StateName(slot.t->state()));
  HARNESS_CHECK(shared.region() == region && shared.use_count() == 1, "Share() lost the region");
  SharedRegion copy = shared;
  HARNESS_CHECK(shared.use_count() == 2, "copying a SharedRegion did not count");
  std::vector<Alloc> allocs = std::move(slot.allocs);
  int* counter = slot.tracked_live.get();
  if (mode % 2 == 1 && threads_started_ < options_.max_threads) {
    ++threads_started_;
    std::thread reader([&, mine = std::move(copy)]() mutable {
      VerifyAll(allocs, region, counter);
      mine.reset();
    });
    VerifyAll(allocs, region, counter);
    reader.join();
  } else {
    VerifyAll(allocs, region, counter);
    copy.reset();
  }
  HARNESS_CHECK(shared.use_count() == 1, "the last copy does not see a count of 1");
  int tracked = 0;
  for (const Alloc& a : allocs) tracked += a.tracked ? 1 : 0;
  HARNESS_CHECK(*counter == tracked, "destructors ran before the last SharedRegion was dropped");
  shared.reset();
  HARNESS_CHECK(*counter == 0, "destructors did not run when the last SharedRegion was dropped");
  for (const Alloc& a : allocs) {
    HARNESS_CHECK(RegionOf(a.p) == nullptr, "shared region memory still owned");
  }
  ForgetAll(allocs);
  slot.t.reset();
  slot.kind = Kind::kEmpty;
  slot.region = nullptr;
}

// CheckOutlives on a region the harness filled: it never stores region pointers, so a violation
// inside bytes it wrote is a scanner bug; one elsewhere is stale data the scan cannot tell from
// a pointer (counted, not failed: a known limit of conservative scanning). Heap words are not
// modelled (objects the harness builds may hold heap pointers): scanned without strict
// self-containment.
void Harness::CheckOutlivesOp(int s) {
  Slot& slot = slots_[s];
  if (slot.kind == Kind::kEmpty) return;
  OutlivesReport report = CheckOutlives(*slot.region, CheckOptions{.heap_pointers = false});
  ++g_counters.outlives_scans;
  if (slot.kind == Kind::kTemporary) {
    HARNESS_CHECK(report.ok(), "CheckOutlives reported %zu violations in a temporary region",
                  report.violation_count);
  }
  for (const Violation& v : report.violations) {
    uintptr_t at = reinterpret_cast<uintptr_t>(v.source_address);
    auto it = live_.upper_bound(at);
    bool written = false;
    if (it != live_.begin()) {
      --it;
      written = at >= it->first && at + 8 <= it->first + it->second.first &&
                it->second.first <= kFullFillLimit;
    }
    HARNESS_CHECK(!written, "CheckOutlives reported a word the harness wrote itself: %s",
                  report.ToString(1).c_str());
    ++g_counters.stale_violations;
  }
}

}  // namespace broom::fuzz::internal
