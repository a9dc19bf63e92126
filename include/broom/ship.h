// Copyright Broom authors.
//
// ship.h: transferable regions that cross process boundaries by address.
//
//   AddressPlan            every process of a job reserves one common address range at the
//                          same virtual address, cut into one slice per process; a process
//                          carves blocks only in its own slice (docs/design.md).
//   GetAddressPlan()       the plan this process's region space sits at, or why it is not at
//                          one (the range was taken).
//   ConfigureAddressPlan() chooses the plan before the process's first region.
//   ExecutableBuildId()    what every process of a job must agree on: the same binary.
//
// Environment (read once, when the region space is first used; docs/tuning.md):
//   BROOM_PLAN_BASE_GB     where the range starts, in GiB (default 17408: 17 TiB)
//   BROOM_RESERVE_GB       each slice, GiB (default 64)
//   BROOM_PLAN_PROCESSES   slices (default 32; ThreadSanitizer builds: 4 from 0x7e8000000000)
//   BROOM_PLAN_INDEX       this process's slice (default 0; engines set it for their workers)
//
// Thread-safety: every function here is thread-safe unless its comment says otherwise.
#ifndef BROOM_SHIP_H_
#define BROOM_SHIP_H_

#include <cstddef>
#include <cstdint>
#include <string>

namespace broom {

// The job-wide address plan. See the file comment.
struct AddressPlan {
  uintptr_t base = 0;      // first byte of the range (whole GiB)
  size_t slice_bytes = 0;  // each process's slice (whole GiB)
  uint32_t processes = 0;  // slices
  uint32_t index = 0;      // this process's slice

  uintptr_t end() const { return base + slice_bytes * processes; }
  uintptr_t SliceBase(uint32_t i) const { return base + slice_bytes * i; }
  // The slice holding `p`, or -1 outside the range.
  int SliceOf(const void* p) const {
    const uintptr_t a = reinterpret_cast<uintptr_t>(p);
    return processes != 0 && a - base < slice_bytes * processes
               ? static_cast<int>((a - base) / slice_bytes)
               : -1;
  }
  bool operator==(const AddressPlan&) const = default;
};

// The plan this process's region space was reserved at (creating the space if needed). Returns
// false if the space could not be placed at its plan (then this process cannot ship regions):
// *error (if not null) names the range, the reason (the errno and, for EEXIST, the mapping
// found inside the range) and the variable to change; *plan is then the plan that was asked for.
bool GetAddressPlan(AddressPlan* plan, std::string* error = nullptr);

// Makes `plan` the one this process's region space is reserved at, instead of the
// environment's. Only before the process's first region (or first GetAddressPlan); afterwards it
// succeeds only if `plan` is the active plan already. Returns false with *error set otherwise,
// or if the plan is invalid. Not thread-safe against a concurrent first use of regions.
bool ConfigureAddressPlan(const AddressPlan& plan, std::string* error);

// The running executable's identity: its GNU build id in hex, or, for an executable linked
// without one, "file:" and the device, inode, size and modification time of /proc/self/exe.
// Regions travel with the layout of their records and the code addresses of their destructors,
// so every process of a job must run the same binary; engines compare this at connect.
std::string ExecutableBuildId();

}  // namespace broom

#endif  // BROOM_SHIP_H_
