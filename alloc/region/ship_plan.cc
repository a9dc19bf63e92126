// Copyright Broom authors.
//
// The address plan as users see it (broom/ship.h): the plan this process sits at, choosing it
// before the first region, the executable's identity, and the message that says why a process
// is not at its plan (also Ship's and Receipt::Open's).
#include <sys/stat.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>

#include "alloc/chunk/chunk_space.h"
#include "alloc/os/os.h"
#include "alloc/region/ship_internal.h"
#include "broom/ship.h"

namespace broom {

namespace {

AddressPlan ToPublic(const internal::AddressPlan& p) {
  return {p.base, p.slice_bytes, p.processes, p.index, p.shared};
}

internal::AddressPlan ToInternal(const AddressPlan& p) {
  return {p.base, p.slice_bytes, p.processes, p.index, p.shared_memory};
}

}  // namespace

namespace internal {

// "the address plan's range [0x.., 0x..) (N slices of M GiB) ..." for error messages.
std::string DescribePlanFailure(const internal::PlanState& s) {
  const internal::AddressPlan& p = s.requested;
  char buf[1024];
  int n = std::snprintf(buf, sizeof(buf),
                        "this process's region space is not at its address plan: the range "
                        "[%#" PRIxPTR ", %#" PRIxPTR
                        ") (%u slices of %zu GiB, this process's "
                        "slice %u): %s",
                        p.base, p.end(), p.processes, p.slice_bytes >> 30, p.index,
                        s.problem != nullptr ? s.problem : "unknown");
  if (s.error != 0 && n > 0 && static_cast<size_t>(n) < sizeof(buf)) {
    n += std::snprintf(buf + n, sizeof(buf) - n, " (%s)", std::strerror(s.error));
  }
  if (s.error == EEXIST && n > 0 && static_cast<size_t>(n) < sizeof(buf)) {
    char line[256];
    internal::os::DescribeMapping(p.base, p.end(), line, sizeof(line));
    if (line[0] != '\0') {
      n += std::snprintf(buf + n, sizeof(buf) - n, "; already mapped there: %s", line);
    }
  }
  if (n > 0 && static_cast<size_t>(n) < sizeof(buf)) {
    std::snprintf(buf + n, sizeof(buf) - n, "; %s",
                  s.error != 0 ? "choose a free range with BROOM_PLAN_BASE_GB (and "
                                 "BROOM_PLAN_PROCESSES, BROOM_RESERVE_GB), the same in every "
                                 "process of the job"
                               : "fix BROOM_PLAN_BASE_GB, BROOM_PLAN_PROCESSES, "
                                 "BROOM_PLAN_INDEX or BROOM_RESERVE_GB");
  }
  return buf;
}

}  // namespace internal

using internal::DescribePlanFailure;

bool GetAddressPlan(AddressPlan* plan, std::string* error) {
  const internal::PlanState s = internal::GetPlanState();
  if (s.active.processes != 0) {
    *plan = ToPublic(s.active);
    return true;
  }
  *plan = ToPublic(s.requested);
  if (error != nullptr) *error = DescribePlanFailure(s);
  return false;
}

std::string ExecutableBuildId() {
  uint8_t id[64];
  const size_t n = internal::os::ExecutableBuildId(id, sizeof(id));
  std::string out;
  if (n > 0) {
    static const char kHex[] = "0123456789abcdef";
    for (size_t i = 0; i < n && i < sizeof(id); ++i) {
      out.push_back(kHex[id[i] >> 4]);
      out.push_back(kHex[id[i] & 15]);
    }
    return out;
  }
  struct stat st;
  if (stat("/proc/self/exe", &st) != 0) return "unknown";
  char buf[128];
  std::snprintf(buf, sizeof(buf), "file:%llu:%llu:%lld:%lld",
                static_cast<unsigned long long>(st.st_dev),
                static_cast<unsigned long long>(st.st_ino), static_cast<long long>(st.st_size),
                static_cast<long long>(st.st_mtime));
  return buf;
}

bool ConfigureAddressPlan(const AddressPlan& plan, std::string* error) {
  const internal::AddressPlan p = ToInternal(plan);
  if (const char* problem = internal::PlanProblem(p)) {
    if (error != nullptr) *error = std::string("invalid address plan: ") + problem;
    return false;
  }
  if (internal::ConfigurePlan(p)) return true;
  const internal::PlanState s = internal::GetPlanState();
  if (s.active == p) return true;
  if (error != nullptr && s.active.processes == 0) {
    *error = "the region space of this process already exists, and not at an address plan (" +
             DescribePlanFailure(s) + ")";
  } else if (error != nullptr) {
    char buf[512];
    std::snprintf(buf, sizeof(buf),
                  "the region space of this process already exists at another address plan "
                  "(base %#" PRIxPTR
                  ", %u slices of %zu GiB, slice %u): the plan is chosen "
                  "before the first region (set BROOM_PLAN_BASE_GB, BROOM_PLAN_PROCESSES, "
                  "BROOM_RESERVE_GB in the environment, or call ConfigureAddressPlan first)",
                  s.active.base, s.active.processes, s.active.slice_bytes >> 30, s.active.index);
    *error = buf;
  }
  return false;
}

}  // namespace broom
