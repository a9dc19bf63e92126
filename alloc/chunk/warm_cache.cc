// Copyright Broom authors.
#include "alloc/chunk/warm_cache.h"

#include <algorithm>
#include <iterator>

namespace broom::internal {

WarmCache::AddressMap<WarmCache::Entry>::iterator WarmCache::Live(
    AddressMap<Entry>& map, const std::pair<uintptr_t, uint64_t>& e) {
  auto it = map.find(e.first);
  return it != map.end() && it->second.seq == e.second ? it : map.end();
}

void WarmCache::DropStale(AddressMap<Entry>& map, Order& order) {
  if (order.size() <= 2 * map.size() + 64) return;
  Order kept(order.get_allocator());
  for (const auto& e : order) {
    if (Live(map, e) != map.end()) kept.push_back(e);
  }
  order.swap(kept);
}

bool WarmCache::Drop(uintptr_t block, size_t size) {
  bool whole = false;
  auto it = warm_.lower_bound(block);
  if (it != warm_.begin() && std::prev(it)->first + std::prev(it)->second.size > block) --it;
  while (it != warm_.end() && it->first < block + size) {
    whole = whole || (it->first == block && it->second.size == size);
    const uintptr_t a = it->first, end = it->first + it->second.size;
    if (a < block) purge_(reinterpret_cast<void*>(a), block - a);
    if (end > block + size) purge_(reinterpret_cast<void*>(block + size), end - (block + size));
    bytes_ -= it->second.size;
    it = warm_.erase(it);  // its order entry is stale now
  }
  return whole;
}

bool WarmCache::Take(uintptr_t block, size_t size, uint64_t now_ms) {
  if (Drop(block, size)) return true;
  auto g = ghosts_.find(block);
  if (g != ghosts_.end()) {  // the cap was too small for this lender's cycle
    cap_ = std::min(kMaxCap, cap_ + g->second.size);
    cap_changed_ms_ = now_ms;
    ghost_bytes_ -= g->second.size;
    ghosts_.erase(g);
  }
  return false;
}

void WarmCache::Add(uintptr_t block, size_t size, uint64_t now_ms) {
  const uint64_t seq = ++seq_;
  warm_[block] = {size, seq, now_ms};  // not warm before: Take dropped any overlap
  warm_order_.push_back({block, seq});
  bytes_ += size;
  if (cap_ > kMinCap && now_ms - cap_changed_ms_ > kDecayMs) {
    while (Live(warm_, warm_order_.front()) == warm_.end()) warm_order_.pop_front();  // stale
    if (now_ms - Live(warm_, warm_order_.front())->second.freed_ms > kDecayMs) {
      cap_ = std::max(kMinCap, cap_ / 2);
      cap_changed_ms_ = now_ms;
    }
  }
  while (bytes_ > cap_ && !warm_order_.empty()) {
    auto it = Live(warm_, warm_order_.front());
    warm_order_.pop_front();
    if (it == warm_.end()) continue;  // installed again since
    purge_(reinterpret_cast<void*>(it->first), it->second.size);
    AddGhost(it->first, it->second.size);
    bytes_ -= it->second.size;
    warm_.erase(it);
  }
  DropStale(warm_, warm_order_);
  DropStale(ghosts_, ghost_order_);
}

void WarmCache::AddGhost(uintptr_t block, size_t size) {
  const uint64_t seq = ++seq_;
  if (!ghosts_.insert({block, Entry{size, seq, 0}}).second) return;
  ghost_order_.push_back({block, seq});
  ghost_bytes_ += size;
  while (ghost_bytes_ > kMaxCap && !ghost_order_.empty()) {
    auto g = Live(ghosts_, ghost_order_.front());
    ghost_order_.pop_front();
    if (g == ghosts_.end()) continue;  // installed again since
    ghost_bytes_ -= g->second.size;
    ghosts_.erase(g);
  }
}

}  // namespace broom::internal
