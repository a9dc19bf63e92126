// Copyright Broom authors.
#include "alloc/chunk/address_plan.h"

#include "alloc/os/options.h"

namespace broom::internal {

AddressPlan PlanFromOptions() {
  AddressPlan plan;
  plan.base = static_cast<uintptr_t>(GetOption(Option::kPlanBaseGb)) << 30;
  plan.slice_bytes = static_cast<size_t>(GetOption(Option::kReserveGb)) << 30;
  plan.processes = static_cast<uint32_t>(GetOption(Option::kPlanProcesses));
  plan.index = static_cast<uint32_t>(GetOption(Option::kPlanIndex));
  plan.shared = GetOption(Option::kPlanShared) != 0;
  return plan;
}

const char* PlanProblem(const AddressPlan& plan) {
  if (plan.processes == 0 || plan.slice_bytes == 0) return "the plan has no slices";
  if (plan.index >= plan.processes) {
    return "this process's slice (BROOM_PLAN_INDEX) is not below the number of slices "
           "(BROOM_PLAN_PROCESSES)";
  }
  if ((plan.base & ((uintptr_t{1} << 30) - 1)) != 0 ||
      (plan.slice_bytes & ((size_t{1} << 30) - 1)) != 0) {
    return "the plan's base and slice size must be whole GiB";
  }
  if (plan.base >= kUserSpaceEnd || plan.slice_bytes > kUserSpaceEnd ||
      plan.processes > kUserSpaceEnd / plan.slice_bytes ||
      plan.range_bytes() > kUserSpaceEnd - plan.base) {
    return "the plan's range (BROOM_PLAN_BASE_GB + BROOM_PLAN_PROCESSES x BROOM_RESERVE_GB) "
           "ends above user space (128 TiB)";
  }
  return nullptr;
}

}  // namespace broom::internal
