// Copyright Broom authors.
#include "alloc/chunk/space.h"

#include <algorithm>
#include <memory>

#include "broom/internal/base.h"

namespace broom::internal {

constinit SpaceBounds g_space = {0, 0, 0, nullptr};

Space::Space(size_t bytes) {
  ReserveAnywhere(bytes);
  Init();
}

Space::Space(const AddressPlan& plan) : requested_(plan) {
  plan_problem_ = PlanProblem(plan);
  if (plan_problem_ == nullptr &&
      os::ReserveAt(reinterpret_cast<void*>(plan.base), plan.range_bytes(), &plan_errno_)) {
    plan_ = plan;
    base_ = reinterpret_cast<char*>(plan.base);
    size_ = plan.range_bytes();
    slice_base_ = reinterpret_cast<char*>(plan.SliceBase(plan.index));
    slice_bytes_ = plan.slice_bytes;
    if (plan.shared) BackSliceWithSharedMemory();
  } else {
    if (plan_problem_ == nullptr) plan_problem_ = "the plan's range cannot be reserved";
    ReserveAnywhere(plan.slice_bytes != 0 ? plan.slice_bytes : kMinReserve);
  }
  Init();
}

void Space::BackSliceWithSharedMemory() {
  const int fd = os::CreateSharedFile(slice_bytes_, &shared_errno_);
  if (fd < 0) {
    shared_problem_ = "memfd_create or ftruncate failed";
  } else if (!os::MapSharedAt(slice_base_, slice_bytes_, fd, 0, /*accessible=*/false,
                              &shared_errno_)) {
    shared_problem_ = "mapping the memfd over the slice failed";
    os::CloseFile(fd);
    BROOM_CHECK(os::ReserveOver(slice_base_, slice_bytes_),
                "cannot restore the slice's reservation");
  } else {
    shared_fd_ = fd;
    return;
  }
  plan_.shared = false;
}

void Space::DetachSharedAfterFork(bool (*mapped)(uint32_t slice)) {
  if (shared_fd_ >= 0) os::ReserveOver(slice_base_, slice_bytes_);
  for (uint32_t i = 0; i < plan_.processes; ++i) {
    if (mapped(i)) os::ReserveOver(reinterpret_cast<void*>(plan_.SliceBase(i)), plan_.slice_bytes);
  }
}

void Space::ReserveAnywhere(size_t bytes) {
  const size_t floor = std::max(std::min(bytes, kMinReserve) & ~(kChunkSize - 1), kChunkSize);
  size_t size = std::max(bytes & ~(kChunkSize - 1), floor);
  void* base = nullptr;
  for (; size >= floor; size = (size / 2) & ~(kChunkSize - 1)) {
    base = os::Reserve(size, kChunkSize);
    if (base != nullptr) break;
  }
  BROOM_CHECK(base != nullptr, "cannot reserve address space for regions (even %zu MiB)",
              floor >> 20);
  base_ = static_cast<char*>(base);
  size_ = size;
  slice_base_ = base_;
  slice_bytes_ = size;
}

void Space::Init() {
  const size_t map_bytes = (size_ >> kChunkShift) * sizeof(std::atomic<uintptr_t>);
  void* map = os::MapLazyZeroed(map_bytes);
  BROOM_CHECK(map != nullptr, "cannot map the chunk map (%zu bytes)", map_bytes);
  map_ = static_cast<std::atomic<uintptr_t>*>(map);
  frontier_.store(slice_base_, std::memory_order_relaxed);
  committed_end_.store(slice_base_, std::memory_order_relaxed);
}

Space::~Space() {
  os::Unmap(map_, chunks() * sizeof(std::atomic<uintptr_t>));
  os::Unmap(base_, size_);
  if (shared_fd_ >= 0) os::CloseFile(shared_fd_);
}

void Space::Publish() const {
  const uintptr_t base = reinterpret_cast<uintptr_t>(base_);
  std::construct_at(&g_space, SpaceBounds{base, base + size_, size_, map_});
}

char* Space::Carve(size_t chunks, AllocError* error) {
  const size_t bytes = chunks * kChunkSize;
  char* const p = frontier();
  char* const end = slice_base_ + slice_bytes_;
  char* committed_end = committed_end_.load(std::memory_order_relaxed);
  if (chunks > (slice_bytes_ >> kChunkShift) || static_cast<size_t>(end - p) < bytes) {
    *error = AllocError::kOutOfMemory;
    return nullptr;
  }
  if (p + bytes > committed_end) {
    const size_t need = static_cast<size_t>(p + bytes - committed_end);
    size_t step = (need + kCommitStep - 1) / kCommitStep * kCommitStep;
    step = std::min(step, static_cast<size_t>(end - committed_end));
    if (!os::Commit(committed_end, step)) {
      *error = AllocError::kOutOfMemory;
      return nullptr;
    }
    if (huge_pages_) os::AdviseHugePages(committed_end, step);
    committed_end_.store(committed_end + step, std::memory_order_relaxed);
  }
  frontier_.store(p + bytes, std::memory_order_relaxed);
  return p;
}

void Space::SetMap(char* chunk, size_t chunks, uintptr_t word) {
  const size_t first = static_cast<size_t>(chunk - base_) >> kChunkShift;
  for (size_t i = 0; i < chunks; ++i) map_[first + i].store(word, std::memory_order_release);
}

void Space::OrMap(const void* p, uintptr_t bits) {
  const size_t i =
      (reinterpret_cast<uintptr_t>(p) - reinterpret_cast<uintptr_t>(base_)) >> kChunkShift;
  map_[i].fetch_or(bits, std::memory_order_release);
}

void* Space::MapZeroed(size_t bytes) { return os::MapLazyZeroed(bytes); }

}  // namespace broom::internal
