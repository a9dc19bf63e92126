// Copyright Broom authors. Layer 1 (chunk).
//
// WarmCache: the holder side's memory of freed borrowed blocks (loans.h). A block of another
// process that this process copied in and then freed keeps its pages resident, so that the next
// install at the same address (a lender reuses its hottest blocks) copies its bytes in without a
// page fault per page. Up to a cap, the oldest purged first. The cap starts at kMinCap; a block
// installed again after the cap purged it (a lender cycling through more blocks than the cap
// holds) raises it by that block's size, up to kMaxCap; once the oldest warm block has waited
// kDecayMs unused, and the cap has not changed for as long, the next Add halves the cap, back
// toward kMinCap, and purges the excess.
//
// Ownership: a plain value (loans.cc's Holder has one). Its maps use the metadata heap.
// Thread-safety: none; the holder calls it under its lock, so that a purge never hits the same
// addresses being installed again meanwhile.
#ifndef BROOM_ALLOC_CHUNK_WARM_CACHE_H_
#define BROOM_ALLOC_CHUNK_WARM_CACHE_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <utility>

#include "alloc/os/heap.h"

namespace broom::internal {

class WarmCache {
 public:
  static constexpr size_t kMinCap = size_t{32} << 20;
  static constexpr size_t kMaxCap = size_t{256} << 20;
  static constexpr uint64_t kDecayMs = 1000;
  // Returns the pages of [p, p + size) to the OS (os::Purge; tests record instead).
  using PurgeFn = void (*)(void* p, size_t size);

  explicit WarmCache(PurgeFn purge) : purge_(purge) {}
  WarmCache(const WarmCache&) = delete;
  WarmCache& operator=(const WarmCache&) = delete;

  // Forgets the warm ranges overlapping [block, block + size), purging their parts outside it.
  // Returns true if one of them was the block itself (its pages are resident).
  bool Drop(uintptr_t block, size_t size);
  // [block, block + size) is being installed: Drop, and if the block was not warm but the cap
  // purged it lately, raises the cap by its size. Returns Drop's answer.
  bool Take(uintptr_t block, size_t size, uint64_t now_ms);
  // The block [block, block + size), not warm now, was freed here: its pages stay resident.
  // Then halves the cap if the oldest warm block has waited kDecayMs unused, and purges the
  // oldest warm blocks while over the cap.
  void Add(uintptr_t block, size_t size, uint64_t now_ms);

  size_t bytes() const { return bytes_; }  // warm now
  size_t cap() const { return cap_; }

 private:
  struct Entry {
    size_t size;
    uint64_t seq;       // its entry in the order list (an older entry of the block is stale)
    uint64_t freed_ms;  // when it went warm (0 for a ghost)
  };
  template <class V>
  using AddressMap =
      std::map<uintptr_t, V, std::less<>, MetaAllocator<std::pair<const uintptr_t, V>>>;
  using Order = std::deque<std::pair<uintptr_t, uint64_t>,
                           MetaAllocator<std::pair<uintptr_t, uint64_t>>>;  // (block, seq)

  // Remembers a block the cap purged; forgets the oldest beyond kMaxCap bytes of them.
  void AddGhost(uintptr_t block, size_t size);
  // The entry `e` of an order list still names, or end().
  static AddressMap<Entry>::iterator Live(AddressMap<Entry>& map,
                                          const std::pair<uintptr_t, uint64_t>& e);
  // Drops stale entries of `order` once they outnumber the live ones (amortized O(1)).
  static void DropStale(AddressMap<Entry>& map, Order& order);

  PurgeFn purge_;
  AddressMap<Entry> warm_;  // by address
  Order warm_order_;        // oldest first
  size_t bytes_ = 0;
  size_t cap_ = kMinCap;
  uint64_t cap_changed_ms_ = 0;
  AddressMap<Entry> ghosts_;  // blocks the cap purged, at most kMaxCap bytes of them
  Order ghost_order_;         // oldest first
  size_t ghost_bytes_ = 0;
  uint64_t seq_ = 0;
};

}  // namespace broom::internal

#endif  // BROOM_ALLOC_CHUNK_WARM_CACHE_H_
