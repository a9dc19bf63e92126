// Copyright Broom authors. Layer 1 (chunk): the job-wide address plan.
//
//   AddressPlan   one address range shared by every process of a job, reserved at the same
//                 virtual address in each, cut into one slice per process. A process carves
//                 blocks only in its own slice, so a block's address names its process, and a
//                 region shipped to another process can be installed at the very addresses it
//                 had (alloc/region/ship.cc): every pointer inside it stays valid.
//   PlanFromOptions()   the plan of this process, from the options table (alloc/os/options.h):
//                 BROOM_PLAN_BASE_GB, BROOM_RESERVE_GB (the slice), BROOM_PLAN_PROCESSES,
//                 BROOM_PLAN_INDEX, BROOM_PLAN_SHARED. A worker process gets the values of its
//                 driver in its environment (the CAF shim sets them).
//
// Thread-safety: plain values and pure functions.
#ifndef BROOM_ALLOC_CHUNK_ADDRESS_PLAN_H_
#define BROOM_ALLOC_CHUNK_ADDRESS_PLAN_H_

#include <cstddef>
#include <cstdint>

namespace broom::internal {

// x86-64 and AArch64 Linux user space with 4-level page tables: addresses below 128 TiB.
inline constexpr uintptr_t kUserSpaceEnd = uintptr_t{1} << 47;

struct AddressPlan {
  uintptr_t base = 0;      // the range's first byte; a multiple of the slice alignment (1 GiB)
  size_t slice_bytes = 0;  // each process's slice
  uint32_t processes = 0;  // slices; 0: no plan (the space was reserved anywhere)
  uint32_t index = 0;      // this process's slice
  bool shared = false;     // this process's slice is backed by shared memory (a memfd)
  // INVARIANT (a valid plan): index < processes, base + slice_bytes * processes <= kUserSpaceEnd

  size_t range_bytes() const { return slice_bytes * processes; }
  uintptr_t end() const { return base + range_bytes(); }
  uintptr_t SliceBase(uint32_t i) const { return base + slice_bytes * i; }
  // The slice holding address `a`, or -1 if `a` is outside the range.
  int SliceOf(uintptr_t a) const {
    return a - base < range_bytes() ? static_cast<int>((a - base) / slice_bytes) : -1;
  }
  bool operator==(const AddressPlan& o) const {
    return base == o.base && slice_bytes == o.slice_bytes && processes == o.processes &&
           index == o.index && shared == o.shared;
  }
};

// The plan the options table describes (see the file comment).
AddressPlan PlanFromOptions();

// Null if `plan` is valid, else what is wrong with it (a static string).
const char* PlanProblem(const AddressPlan& plan);

}  // namespace broom::internal

#endif  // BROOM_ALLOC_CHUNK_ADDRESS_PLAN_H_
