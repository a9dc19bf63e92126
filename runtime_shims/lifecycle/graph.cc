// Copyright Broom authors.
#include "broom/lifecycle/graph.h"

#include <sys/resource.h>

#include <cstdio>
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
  return it == kv_.end() ? def : std::stoull(it->second);
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

std::string JobResult::Summary() const {
  std::ostringstream o;
  o << (ok ? "ok" : "FAILED: " + error) << "\n";
  for (const auto& [k, v] : totals) o << "  " << k << " = " << v << "\n";
  char buf[256];
  std::snprintf(buf, sizeof(buf), "  time = %.3f s, peak RSS = %ld KiB\n", seconds, peak_rss_kb);
  o << buf;
  for (int k = 0; k < kNumRegionKinds; ++k) {
    std::snprintf(
        buf, sizeof(buf), "  regions %-12s created %llu freed %llu (live after: %llu)\n",
        KindName(static_cast<RegionKind>(k)),
        (unsigned long long)(broom_after.regions_created[k] - broom_before.regions_created[k]),
        (unsigned long long)(broom_after.regions_destroyed[k] - broom_before.regions_destroyed[k]),
        (unsigned long long)broom_after.live(static_cast<RegionKind>(k)));
    o << buf;
  }
  std::snprintf(buf, sizeof(buf), "  region bytes: peak %zu, held after %zu\n",
                broom_after.peak_block_bytes, broom_after.block_bytes);
  o << buf;
  o << "  shim: " << shim.ToString() << "\n";
  for (const ProcessStats& w : workers) {
    o << "  worker pid " << w.pid << ":";
    for (int k = 0; k < kNumRegionKinds; ++k) {
      o << " " << KindName(static_cast<RegionKind>(k)) << " created " << w.broom.regions_created[k]
        << " freed " << w.broom.regions_destroyed[k] << ";";
    }
    o << " handle_copies " << w.shim.handle_copies << ", remote batches in "
      << w.shim.remote_batches_in << " out " << w.shim.remote_batches_out << "\n";
  }
  return o.str();
}

}  // namespace broom::lifecycle
