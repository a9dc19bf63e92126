// Copyright Broom authors.
#include "broom/lifecycle/graph.h"

#include <sys/resource.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <sstream>

namespace broom::lifecycle {

int Graph::total_instances() const {
  int n = 0;
  for (const Stage& s : stages_) n += s.instances;
  return n;
}

void Graph::AddEdge(Edge e) {
  int n = static_cast<int>(stages_.size());
  BROOM_CHECK(e.from_stage >= 0 && e.from_stage < n && e.to_stage >= 0 && e.to_stage < n,
              "Graph::Connect: stage index out of range");
  Stage& from = stages_[e.from_stage];
  Stage& to = stages_[e.to_stage];
  BROOM_CHECK(
      e.from_port >= 0 && e.from_port < from.num_outputs && from.out_edges[e.from_port] == -1,
      "Graph::Connect: output %d of stage '%s' is out of range or already connected", e.from_port,
      from.name.c_str());
  BROOM_CHECK(e.to_port >= 0 && e.to_port < to.num_inputs && to.in_edges[e.to_port] == -1,
              "Graph::Connect: input %d of stage '%s' is out of range or already connected",
              e.to_port, to.name.c_str());
  BROOM_CHECK(e.exchange || from.instances == to.instances,
              "Graph::Connect: pipeline edge '%s' -> '%s' joins stages of %d and %d instances "
              "(use Exchange)",
              from.name.c_str(), to.name.c_str(), from.instances, to.instances);
  BROOM_CHECK(e.from_stage < e.to_stage,
              "Graph::Connect: edges must go to a later stage "
              "(graphs are acyclic, stages added in topological order)");
  int idx = static_cast<int>(edges_.size());
  from.out_edges[e.from_port] = idx;
  to.in_edges[e.to_port] = idx;
  edges_.push_back(std::move(e));
}

void Graph::Validate() const {
  for (const Stage& s : stages_) {
    for (int p = 0; p < s.num_inputs; ++p) {
      BROOM_CHECK(s.in_edges[p] >= 0, "stage '%s': input %d is not connected", s.name.c_str(), p);
    }
    for (int p = 0; p < s.num_outputs; ++p) {
      BROOM_CHECK(s.out_edges[p] >= 0, "stage '%s': output %d is not connected", s.name.c_str(), p);
    }
  }
}

JobParams JobParams::Parse(const std::string& s) {
  JobParams p;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    auto eq = item.find('=');
    if (item.empty() || eq == std::string::npos) continue;
    p.kv_[item.substr(0, eq)] = item.substr(eq + 1);
  }
  return p;
}

std::string JobParams::ToString() const {
  std::string out;
  for (const auto& [k, v] : kv_) {
    if (!out.empty()) out += ',';
    out += k + "=" + v;
  }
  return out;
}

uint64_t JobParams::Get(const std::string& k, uint64_t def) const {
  auto it = kv_.find(k);
  if (it == kv_.end()) return def;
  const std::string& v = it->second;
  char* end = nullptr;
  errno = 0;
  unsigned long long n = std::strtoull(v.c_str(), &end, 10);
  BROOM_CHECK(!v.empty() && v[0] != '-' && *end == '\0' && errno == 0,
              "job parameter %s=%s is not a non-negative integer", k.c_str(), v.c_str());
  return n;
}

std::string JobParams::GetString(const std::string& k, const std::string& def) const {
  auto it = kv_.find(k);
  return it == kv_.end() ? def : it->second;
}

namespace {
std::mutex g_jobs_mu;
std::map<std::string, JobBuilder>& Jobs() {
  static auto* jobs = new std::map<std::string, JobBuilder>();
  return *jobs;
}
}  // namespace

void RegisterJob(const std::string& name, JobBuilder builder) {
  std::lock_guard<std::mutex> lock(g_jobs_mu);
  Jobs()[name] = std::move(builder);
}

std::optional<Graph> BuildJob(const std::string& name, const JobParams& params) {
  JobBuilder b;
  {
    std::lock_guard<std::mutex> lock(g_jobs_mu);
    auto it = Jobs().find(name);
    if (it == Jobs().end()) return std::nullopt;
    b = it->second;
  }
  Graph g = b(params);
  g.Validate();
  return g;
}

std::vector<std::string> RegisteredJobs() {
  std::lock_guard<std::mutex> lock(g_jobs_mu);
  std::vector<std::string> names;
  for (const auto& [k, v] : Jobs()) names.push_back(k);
  return names;
}

long PeakRssKb() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

namespace {

std::string Format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string Format(const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  return buf;
}

unsigned long long U(uint64_t v) { return static_cast<unsigned long long>(v); }

// What one process created and freed. `before` is zero for a worker (its whole life).
void AppendProcess(std::ostringstream& o, const GlobalStats& before, const GlobalStats& after,
                   const ShimStats& shim, const char* scratch_fate) {
  static constexpr const char* kWhat[kNumArenaUses] = {"batches (message arenas)", "operator state",
                                                       "per-timestamp state"};
  static constexpr const char* kWhen[kNumArenaUses] = {
      "each freed by its last owner, after its callback", "freed when its instance stopped",
      "freed after OnNotify of the last epoch that needs it"};
  for (int u = 0; u < kNumArenaUses; ++u) {
    const ArenaCounts& a = shim.arenas[u];
    if (a.created == 0) continue;
    o << Format("    %-26s created %llu, freed %llu (%s); at most %llu alive", kWhat[u],
                U(a.created), U(a.freed), kWhen[u], U(a.peak_live));
    if (a.peak_bytes > 0) o << Format("; largest %llu B", U(a.peak_bytes));
    if (a.cleanups > 0) o << Format("; destructors run by freeing: %llu", U(a.cleanups));
    if (a.live() > 0) o << Format("; %llu STILL ALIVE", U(a.live()));
    o << "\n";
  }
  if (shim.scratch_created > 0) {
    o << Format(
        "    %-26s created %llu, freed %llu (one per thread that ran callbacks, reused "
        "by every callback on it)",
        "callback scratch", U(shim.scratch_created), U(shim.scratch_destroyed));
    if (shim.scratch_cleanups > 0) {
      o << Format("; destructors run at callback exits: %llu", U(shim.scratch_cleanups));
    }
    if (shim.scratch_live() > 0)
      o << Format("; %llu alive: %s", U(shim.scratch_live()), scratch_fate);
    o << "\n";
  }
  o << "    regions";
  for (int k = 0; k < kNumRegionKinds; ++k) {
    uint64_t created = after.regions_created[k] - before.regions_created[k];
    uint64_t freed = after.regions_destroyed[k] - before.regions_destroyed[k];
    o << Format("%s %s created %llu freed %llu", k == 0 ? "" : ",",
                KindName(static_cast<RegionKind>(k)), U(created), U(freed));
    if (after.live(static_cast<RegionKind>(k)) > 0) {
      o << Format(" (%llu live)", U(after.live(static_cast<RegionKind>(k))));
    }
  }
  o << Format("; region bytes peak %llu, held now %llu\n", U(after.peak_block_bytes),
              U(after.block_bytes));
}

// One line on regions shipped by address (broom/ship.h) between `before` and `after`, if any.
void AppendShipping(std::ostringstream& o, const ShipStats& before, const ShipStats& after) {
  const uint64_t out = after.regions_shipped - before.regions_shipped;
  const uint64_t in = after.regions_received - before.regions_received;
  if (out == 0 && in == 0) return;
  o << Format(
      "    shipped by address: %llu regions out, %llu in; payload bytes copied %llu out, %llu in "
      "(into resident pages %llu, fresh %llu); mapped (shared memory) %llu out, %llu in; loan "
      "notes accepted %llu",
      U(out), U(in), U(after.payload_bytes_sent - before.payload_bytes_sent),
      U(after.payload_bytes_received - before.payload_bytes_received),
      U(after.installed_warm_bytes - before.installed_warm_bytes),
      U(after.installed_cold_bytes - before.installed_cold_bytes),
      U(after.mapped_bytes_sent - before.mapped_bytes_sent),
      U(after.mapped_bytes_received - before.mapped_bytes_received),
      U(after.notes_accepted - before.notes_accepted));
  if (after.reclaimed_blocks > before.reclaimed_blocks) {
    o << Format(", blocks taken back from finished workers %llu",
                U(after.reclaimed_blocks - before.reclaimed_blocks));
  }
  o << Format("; on loan now %llu B, borrowed now %llu B\n", U(after.loaned_bytes),
              U(after.borrowed_bytes));
}

}  // namespace

std::string JobResult::Summary() const {
  std::ostringstream o;
  o << (ok ? "ok" : "FAILED: " + error) << "\n";
  for (const auto& [k, v] : totals) o << "  " << k << " = " << v << "\n";
  o << Format("  time = %.3f s, peak RSS = %ld KiB\n", seconds, peak_rss_kb);
  o << (workers.empty() ? "  this process:\n" : "  driver process (this one):\n");
  AppendProcess(o, broom_before, broom_after, shim, "threads still running");
  AppendShipping(o, ship_before, ship_after);
  o << "  shim: " << shim.ToString() << "\n";
  for (const ProcessStats& w : workers) {
    o << "  worker process pid " << w.pid << " (read after its instances stopped):\n";
    AppendProcess(o, GlobalStats{}, w.broom, w.shim,
                  "its scheduler threads are still running; freed when the worker exits");
    AppendShipping(o, ShipStats{}, w.ship);
    o << "  shim: " << w.shim.ToString() << "\n";
  }
  return o.str();
}

}  // namespace broom::lifecycle
