// Copyright Broom authors.
#include "alloc/chunk/stats.h"

#include <algorithm>

namespace broom::internal {

void BlockStats::Fold(Local* local) {
  const int64_t before = held_.fetch_add(local->delta, std::memory_order_relaxed);
  RaisePeak(before + local->max_delta);
  local->delta = 0;
  local->max_delta = 0;
}

bool BlockStats::ChargeWithBudget(Local* local, size_t bytes, AllocError* error) {
  Fold(local);
  const int64_t budget = static_cast<int64_t>(budget_.load(std::memory_order_relaxed));
  const int64_t add = static_cast<int64_t>(bytes);
  int64_t cur = held_.load(std::memory_order_relaxed);
  do {
    if (cur + add > budget) {
      *error = AllocError::kProcessBudget;
      return false;
    }
  } while (!held_.compare_exchange_weak(cur, cur + add, std::memory_order_relaxed));
  RaisePeak(cur + add);
  return true;
}

void BlockStats::RaisePeak(int64_t v) {
  int64_t peak = peak_.load(std::memory_order_relaxed);
  while (v > peak && !peak_.compare_exchange_weak(peak, v, std::memory_order_relaxed)) {
  }
}

size_t BlockStats::held(const Local* caller) const {
  const int64_t v = held_.load(std::memory_order_relaxed) + (caller ? caller->delta : 0);
  return v > 0 ? static_cast<size_t>(v) : 0;
}

size_t BlockStats::peak(const Local* caller) const {
  const int64_t v =
      std::max(peak_.load(std::memory_order_relaxed),
               held_.load(std::memory_order_relaxed) + (caller ? caller->max_delta : 0));
  return v > 0 ? static_cast<size_t>(v) : 0;
}

}  // namespace broom::internal
