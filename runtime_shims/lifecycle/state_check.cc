// Copyright Broom authors.
//
// Checked mode for operator state: Instance::CheckState scans an instance's operator-state
// region and its open per-timestamp states with broom::CheckOutlives and reports what the
// points-to rules forbid (see StateChecks in broom/lifecycle/graph.h), and the StateChecks knob
// (JobOptions::state_checks, BROOM_STATE_CHECKS).
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "broom/check.h"
#include "broom/lifecycle/instance.h"

namespace broom::lifecycle {

namespace {

constexpr const char* kStateChecksEnv = "BROOM_STATE_CHECKS";

std::string Printf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string Printf(const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  return buf;
}

std::string RegionName(RegionKind kind, uint64_t id, const char* name) {
  return Printf("%s region #%" PRIu64 "%s%s%s", KindName(kind), id, name[0] ? " '" : "", name,
                name[0] ? "'" : "");
}
std::string RegionName(const Region& r) { return RegionName(r.kind(), r.id(), r.name()); }

// One scanned region and what it is to the operator.
struct Scanned {
  const Region* region;
  std::string what;  // "operator state" or "state of epoch 3"
  OutlivesReport report;
};

// A per-timestamp state may also point into its operator's state: the operator-state region
// outlives every per-timestamp state of the instance (ECOOP's general rule), and the engine
// never sends a per-timestamp state, so the transferable rule's "self-contained" is stricter
// than needed there. Drops those violations.
void AllowPointersIntoOperatorState(OutlivesReport& report, const Region* state) {
  if (state == nullptr) return;
  size_t kept = 0;
  for (const Violation& v : report.violations) {
    if (v.rule == Rule::kSelfContained && v.target_id == state->id()) continue;
    report.violations[kept++] = v;
  }
  report.violation_count -= report.violations.size() - kept;
  report.violations.resize(kept);
}

}  // namespace

bool ParseStateChecks(std::string_view name, StateChecks* out) {
  static constexpr StateChecks kAll[] = {StateChecks::kOff, StateChecks::kAtNotify,
                                         StateChecks::kEveryCallback, StateChecks::kDefault};
  for (StateChecks c : kAll) {
    if (name == StateChecksName(c)) {
      *out = c;
      return true;
    }
  }
  return false;
}

const char* StateChecksName(StateChecks checks) {
  switch (checks) {
    case StateChecks::kOff:
      return "off";
    case StateChecks::kAtNotify:
      return "notify";
    case StateChecks::kEveryCallback:
      return "callback";
    case StateChecks::kDefault:
      return "default";
  }
  return "?";
}

StateChecks ResolveStateChecks(StateChecks checks, std::string* error) {
  if (checks != StateChecks::kDefault) return checks;
  const char* env = std::getenv(kStateChecksEnv);
  if (env == nullptr || env[0] == '\0') return StateChecks::kAtNotify;
  StateChecks c;
  if (!ParseStateChecks(env, &c)) {
    if (error != nullptr) {
      *error = std::string(kStateChecksEnv) + "='" + env + "': use off, notify or callback";
    }
    return StateChecks::kAtNotify;
  }
  return c == StateChecks::kDefault ? StateChecks::kAtNotify : c;
}

void Instance::CheckState(const char* callback, int port, Epoch t, const AnyEnvelope* input) {
  std::vector<Scanned> scanned;
  const Region* state = op_.state.arena().region();
  if (state != nullptr) scanned.push_back({state, "operator state", CheckOutlives(*state)});
  for (const auto& [key, slot] : epoch_states_) {
    const Region* r = slot.state.arena().region();
    if (r == nullptr) continue;
    OutlivesReport report = CheckOutlives(*r);
    AllowPointersIntoOperatorState(report, state);
    scanned.push_back(
        {r, Printf("state of epoch %llu", static_cast<unsigned long long>(key.first)), report});
  }
  if (scanned.empty()) return;  // not a region policy: nothing to scan
  size_t violations = 0, bytes = 0;
  for (const Scanned& s : scanned) {
    violations += s.report.violation_count;
    bytes += s.report.bytes_scanned;
  }
  internal::Bump(internal::g_shim_counters.state_checks);
  internal::Bump(internal::g_shim_counters.state_bytes_scanned, bytes);
  if (violations == 0) return;

  std::string where = Printf("state check of operator '%s' (instance %d of %d) after %s",
                             stage_name().c_str(), instance_, instances_, callback);
  if (port >= 0 && t != kEndOfStream) {
    where += Printf("(port %d, epoch %llu)", port, static_cast<unsigned long long>(t));
  } else if (t != kEndOfStream) {
    where += Printf("(%llu)", static_cast<unsigned long long>(t));
  }
  std::string text =
      Printf("%s: the operator's state breaks the points-to rules (%zu violations)\n",
             where.c_str(), violations);
  const Region* in = input != nullptr ? input->arena().region() : nullptr;
  bool into_input = false, into_scratch = false, stale = false;
  for (const Scanned& s : scanned) {
    if (s.report.ok()) continue;
    text += "  " + s.what + ", " + RegionName(*s.region) + ":\n" + s.report.ToString(8);
    for (const Violation& v : s.report.violations) {
      into_input |= in != nullptr && v.rule != Rule::kDangling && v.target_id == in->id();
      into_scratch |= v.rule == Rule::kActorToTemporary;
      // Freed, or perhaps reused by a later message.
      stale |= v.rule == Rule::kDangling || v.target_kind == RegionKind::kTransferable;
    }
  }
  if (into_input) {
    text += "  " + RegionName(*in) +
            " is the message this OnRecv received; it is freed when the callback returns: copy "
            "what the state keeps into the state (a pmr container in the state copies into its "
            "arena), or keep the whole Envelope\n";
  }
  if (into_scratch) {
    text +=
        "  a temporary region is callback scratch, rewound when the callback returns: build what "
        "the state keeps with the state's resource (ctx.state_resource())\n";
  }
  if (stale && options_.state_checks < StateChecks::kEveryCallback) {
    text += Printf(
        "  a pointer kept from a message freed earlier points to freed memory or to whatever "
        "reuses it now; with %s=callback (JobOptions::state_checks) the state is also checked "
        "after every OnRecv, before its message is freed, naming that message\n",
        kStateChecksEnv);
  }
  if (GetCheckMode() == CheckMode::kLog) {
    std::fprintf(stderr, "broom: check: %s", text.c_str());
    return;
  }
  std::fprintf(stderr, "broom: check: %s", text.c_str());
  broom::internal::Fatal(__FILE__, __LINE__,
                         "%s: %zu points-to violations in the operator's state (listed above)",
                         where.c_str(), violations);
}

}  // namespace broom::lifecycle
