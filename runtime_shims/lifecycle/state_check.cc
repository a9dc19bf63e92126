// Copyright Broom authors.
//
// Checked mode for operator state: Instance::CheckState scans an instance's operator-state
// region and its open per-timestamp states with broom::CheckOutlives and reports what the
// points-to rules forbid (see StateChecks in broom/lifecycle/graph.h), and the StateChecks knob
// (JobOptions::state_checks, BROOM_STATE_CHECKS).
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "broom/check.h"
#include "broom/lifecycle/instance.h"

namespace broom::lifecycle {

namespace {

constexpr const char* kStateChecksEnv = "BROOM_STATE_CHECKS";

std::string RegionName(const Region& r) {
  std::string name = std::string(KindName(r.kind())) + " region #" + std::to_string(r.id());
  if (r.name()[0] != '\0') name += std::string(" '") + r.name() + "'";
  return name;
}

// One scanned region: the operator-state region (epoch == kEndOfStream) or the state of
// `epoch`.
struct Scanned {
  const Region* region;
  Epoch epoch;
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

// The report: `headline`, then the lines of each region with violations (OutlivesReport's
// format) under a heading, then one hint per kind of mistake found. `input` is OnRecv's batch
// (or null); `every_callback` says whether the check runs after every OnRecv.
std::string Describe(const std::string& headline, const std::vector<Scanned>& scanned,
                     const Region* input, bool every_callback) {
  std::string text = headline + "\n";
  bool into_input = false, into_scratch = false, stale = false;
  for (const Scanned& s : scanned) {
    if (s.report.ok()) continue;
    text += s.epoch == kEndOfStream ? "  operator state, "
                                    : "  state of epoch " + std::to_string(s.epoch) + ", ";
    text += RegionName(*s.region) + ":\n" + s.report.ToString(8);
    for (const Violation& v : s.report.violations) {
      into_input |= input != nullptr && v.rule != Rule::kDangling && v.target_id == input->id();
      into_scratch |= v.rule == Rule::kActorToTemporary;
      // Freed, or perhaps reused by a later message.
      stale |= v.rule == Rule::kDangling || v.target_kind == RegionKind::kTransferable;
    }
  }
  if (into_input) {
    text += "  " + RegionName(*input) +
            " is the message this OnRecv received; it is freed when the callback returns: copy "
            "what the state keeps into the state (a pmr container in the state copies into its "
            "arena), or keep the whole Envelope\n";
  }
  if (into_scratch) {
    text +=
        "  a temporary region is callback scratch, rewound when the callback returns: build what "
        "the state keeps with the state's resource (ctx.state_resource())\n";
  }
  if (stale && !every_callback) {
    text += std::string(
                "  a pointer kept from a message freed earlier points to freed memory or to "
                "whatever reuses it now; with ") +
            kStateChecksEnv +
            "=callback (JobOptions::state_checks) the state is also checked after every OnRecv, "
            "before its message is freed, naming that message\n";
  }
  return text;
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
  if (state != nullptr) scanned.push_back({state, kEndOfStream, CheckOutlives(*state)});
  for (const auto& [key, slot] : epoch_states_) {
    const Region* r = slot.state.arena().region();
    if (r == nullptr) continue;
    scanned.push_back({r, key.first, CheckOutlives(*r)});
    AllowPointersIntoOperatorState(scanned.back().report, state);
  }
  if (scanned.empty()) return;  // not a region policy: nothing to scan
  size_t violations = 0, bytes = 0;
  for (const Scanned& s : scanned) {
    violations += s.report.violation_count;
    bytes += s.report.bytes_scanned;
  }
  internal::AddTo(internal::g_shim_counters.state_checks);
  internal::AddTo(internal::g_shim_counters.state_bytes_scanned, bytes);
  if (violations == 0) return;

  char args[64] = "";  // the callback's arguments
  if (port >= 0 && t != kEndOfStream) {
    std::snprintf(args, sizeof(args), "(port %d, epoch %llu)", port, (unsigned long long)t);
  } else if (t != kEndOfStream) {
    std::snprintf(args, sizeof(args), "(%llu)", (unsigned long long)t);
  }
  std::string where = "state check of operator '" + stage_name() + "' (instance " +
                      std::to_string(instance_) + " of " + std::to_string(instances_) + ") after " +
                      callback + args;
  std::string text = Describe(where + ": the operator's state breaks the points-to rules (" +
                                  std::to_string(violations) + " violations)",
                              scanned, input != nullptr ? input->arena().region() : nullptr,
                              options_.state_checks >= StateChecks::kEveryCallback);
  std::fprintf(stderr, "broom: check: %s", text.c_str());
  if (GetCheckMode() == CheckMode::kLog) return;
  broom::internal::Fatal(__FILE__, __LINE__,
                         "%s: %zu points-to violations in the operator's state (listed above)",
                         where.c_str(), violations);
}

}  // namespace broom::lifecycle
