// Copyright Broom authors.
//
// graph.h: an acyclic dataflow graph, the parameters of a job, and the job registry.
//
//   Graph           stages (an operator type, a name and a number of instances) and edges.
//                   Each output port feeds exactly one input port; each input port is fed by
//                   exactly one output port. An edge is a pipeline (instance i to instance i;
//                   both stages need the same number of instances) or Exchange(key): a record
//                   goes to instance hash(key(record)) % n, as in Timely's Exchange pact.
//   JobParams       string key=value parameters ("epochs=40,docs=500000"), the same in every
//                   process of a job.
//   RegisterJob / BuildJob   named graph builders, so a worker process can rebuild the graph
//                   (and find its operators by stage index) from the job's name and params.
//   JobOptions / JobResult   what every driver (direct, CAF, CAF multi-process) takes and
//                   returns.
//   StateChecks     when checked mode scans each operator's state (JobOptions::state_checks,
//                   or the environment variable BROOM_STATE_CHECKS).
//
// Thread-safety: a Graph is immutable once built and may be shared by the instances of a job;
// RegisterJob/BuildJob are thread-safe.
#ifndef BROOM_LIFECYCLE_GRAPH_H_
#define BROOM_LIFECYCLE_GRAPH_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broom/lifecycle/operator.h"
#include "broom/lifecycle/stats.h"
#include "broom/memory.h"
#include "broom/ship.h"

namespace broom::lifecycle {

template <class R>
struct Partition {
  using KeyFn = uint64_t (*)(const R&);
  KeyFn key = nullptr;  // null: pipeline
};
template <class R>
Partition<R> Pipeline() {
  return {};
}
template <class R>
Partition<R> Exchange(uint64_t (*key)(const R&)) {
  return {key};
}

// A constructed operator: its state arena (owning the object) and the object's base.
struct BuiltOperator {
  OwnedState state;
  OperatorBase* op = nullptr;
};

class Graph {
 public:
  struct Edge {
    int from_stage, from_port, to_stage, to_port;
    bool exchange;
    const BatchOps* ops;
    std::function<std::unique_ptr<OutputBase>(Emitter&, MemoryPolicy&, int self, int dests,
                                              size_t batch_size)>
        make_output;
  };
  struct Stage {
    std::string name;
    int instances;
    int num_inputs;
    int num_outputs;
    std::function<BuiltOperator(MemoryPolicy&)> make;
    std::vector<int> in_edges;   // by input port: edge index
    std::vector<int> out_edges;  // by output port: edge index
  };

  // Adds a stage of `instances` copies of Op, each built as Op(args...) in its own
  // operator-state arena. Returns the stage index.
  template <class Op, class... Args>
  int AddStage(std::string name, int instances, int num_inputs, int num_outputs, Args... args) {
    Stage s{std::move(name),
            instances,
            num_inputs,
            num_outputs,
            [args...](MemoryPolicy& policy) {
              BuiltOperator b;
              b.state = OwnedState::Make<Op>(policy, ArenaUse::kOperatorState, "operator", args...);
              b.op = static_cast<Op*>(b.state.get());
              return b;
            },
            std::vector<int>(num_inputs, -1),
            std::vector<int>(num_outputs, -1)};
    stages_.push_back(std::move(s));
    return static_cast<int>(stages_.size()) - 1;
  }

  // Connects output `from_port` of stage `from` to input `to_port` of stage `to`. Fatal on a
  // port out of range or already connected, or a pipeline between stages of different sizes.
  template <class R>
  void Connect(int from, int from_port, int to, int to_port, Partition<R> p) {
    typename Partition<R>::KeyFn key = p.key;
    Edge e{from,
           from_port,
           to,
           to_port,
           key != nullptr,
           &BatchOpsFor<R>(),
           [key, from_port](Emitter& em, MemoryPolicy& pol, int self, int dests, size_t bs) {
             return std::make_unique<Output<R>>(em, pol, from_port, self, dests, bs, key);
           }};
    AddEdge(std::move(e));
  }

  const std::vector<Stage>& stages() const { return stages_; }
  const std::vector<Edge>& edges() const { return edges_; }
  int total_instances() const;
  // Fatal if a port is left unconnected.
  void Validate() const;

 private:
  void AddEdge(Edge e);
  std::vector<Stage> stages_;
  std::vector<Edge> edges_;
};

class JobParams {
 public:
  JobParams() = default;
  // "k=v,k=v"; later keys override earlier ones.
  static JobParams Parse(const std::string& s);
  std::string ToString() const;
  void Set(const std::string& k, const std::string& v) { kv_[k] = v; }
  void Set(const std::string& k, uint64_t v) { kv_[k] = std::to_string(v); }
  // The value of `k` as a number, or `def` if absent. Fatal if the value is not a
  // non-negative decimal integer.
  uint64_t Get(const std::string& k, uint64_t def) const;
  std::string GetString(const std::string& k, const std::string& def) const;

 private:
  std::map<std::string, std::string> kv_;
};

using JobBuilder = std::function<Graph(const JobParams&)>;
void RegisterJob(const std::string& name, JobBuilder builder);
// The graph of job `name`, or nullopt if no such job is registered.
std::optional<Graph> BuildJob(const std::string& name, const JobParams& params);
std::vector<std::string> RegisteredJobs();

// When checked mode (broom::GetCheckMode() != kOff: BROOM_CHECKS=1 or log, or
// broom::SetCheckMode) scans an operator's state, that is its operator-state arena and its open
// per-timestamp states, for pointers the points-to rules forbid (broom/check.h): into messages,
// scratch, other operators' state, freed region memory, and (for a per-timestamp state)
// anywhere but itself and its operator's state. A violation stops the job (kFatal) or is logged
// (kLog), naming the operator, the callback, the regions and the offset. Only the "regions"
// policy has regions to scan; with the check mode kOff nothing is scanned whatever this says.
// Cost: each scan reads the whole state (docs/lifecycle.md, "Checked mode: operator state").
enum class StateChecks : uint8_t {
  kOff = 0,       // never (messages are still scanned when sent)
  kAtNotify = 1,  // after each OnNotify(t), before the states it ends are freed; after a source
                  // completes an epoch; at shutdown (after OnFinish, or a source's last Produce)
  kEveryCallback = 2,  // also after every OnRecv, before its input batch is freed (so a pointer
                       // kept into the input is reported naming that message), and every Produce
  kDefault = 3,        // BROOM_STATE_CHECKS if set (off | notify | callback), else kAtNotify
};
// "off" | "notify" | "callback" | "default"; false (and *out unchanged) for anything else.
bool ParseStateChecks(std::string_view name, StateChecks* out);
const char* StateChecksName(StateChecks checks);
// `checks`, or for kDefault the value of BROOM_STATE_CHECKS (read at each call), else kAtNotify.
// A value ParseStateChecks rejects gives kAtNotify and, if `error` is not null, a message.
StateChecks ResolveStateChecks(StateChecks checks, std::string* error = nullptr);

struct JobOptions {
  std::string policy = "regions";  // MakePolicy name
  int threads = 0;                 // engine worker threads; 0 = engine default
  uint32_t credits = 16;           // batches in flight per edge; 0 = unlimited
  size_t batch_size = 1024;        // records per batch
  int processes = 1;               // CAF: processes (1 = single process)
  // CAF multi-process: the binary each worker process runs as `<worker_exe> --broom-worker`
  // (its main must call broom::caf_shim::WorkerMain then; see broom/caf/runtime.h). Default:
  // the running executable.
  std::string worker_exe = "/proc/self/exe";
  // CAF multi-process, several machines: worker process i (1 <= i < processes) runs on host
  // worker_hosts[i - 1] when that is given and not empty, else on this machine. A worker on a
  // host is started by `<worker_launcher...> <host> <command>`, the command one shell string
  // (as ssh takes it) that sets the job's BROOM_* variables and runs worker_exe (the same binary
  // at the same path there; /proc/self/exe stands for this executable's path); the worker listens
  // on every interface and the driver connects to <host>:<the port it reports>. Batches to and
  // from a worker on a host travel in copy mode (shared memory works within one machine); a
  // host counts as another machine even when it names this one.
  std::vector<std::string> worker_hosts;
  std::vector<std::string> worker_launcher = {"ssh", "-o", "BatchMode=yes"};
  double timeout_seconds = 300;  // driver gives up (and reports) after this long
  // Testing hook (multi-process): after this many seconds, SIGKILL worker 1 (0 = never).
  double kill_worker_after_seconds = 0;
  // CAF multi-process: the job's address plan (broom/ship.h): every process reserves one range
  // at the same address and carves in its own slice, so batches cross processes by address.
  // All zero: the driver's own plan (BROOM_PLAN_BASE_GB, BROOM_RESERVE_GB, BROOM_PLAN_PROCESSES,
  // read when its region space was first used). Set: the driver applies it before its first
  // region (broom::ConfigureAddressPlan), and the job fails with JobResult::error if the
  // driver's space already sits at another plan. Each worker gets the driver's plan and its own
  // slice (BROOM_PLAN_INDEX) in its environment. `processes` must not exceed plan_processes.
  uint64_t plan_base = 0;         // bytes, a multiple of 1 GiB
  uint64_t plan_slice_bytes = 0;  // bytes, a multiple of 1 GiB
  uint32_t plan_processes = 0;
  // When checked mode scans operator state (see StateChecks). Drivers reject a bad
  // BROOM_STATE_CHECKS with JobResult::error. Worker processes use the driver's value and the
  // driver's check mode.
  StateChecks state_checks = StateChecks::kDefault;
};

// Counters of one worker process of a multi-process job, read after the job.
struct ProcessStats {
  long pid = 0;
  GlobalStats broom;  // region counters of that process (its whole life; workers run one job)
  ShimStats shim;     // its shim counters (its whole life)
  ShipStats ship;     // regions it shipped and received by address, its loans (its whole life)
};

struct JobResult {
  bool ok = false;
  std::string error;                       // why !ok, in words a user can act on
  std::map<std::string, uint64_t> totals;  // Context::Report sums over all instances
  double seconds = 0;
  long peak_rss_kb = 0;      // getrusage(RUSAGE_SELF) of the driver process
  ShimStats shim;            // driver process counters (drivers reset them at job start)
  GlobalStats broom_before;  // broom::GetGlobalStats() before and after the job (driver)
  GlobalStats broom_after;
  // broom::GetShipStats() of the driver process before and after the job (after: once it has
  // forgotten its workers, so their loans are back; ship.h).
  ShipStats ship_before;
  ShipStats ship_after;
  // CAF multi-process: one entry per worker process, read after its instances stopped (its
  // scheduler threads' callback scratch is still alive then: it is freed when the worker exits).
  std::vector<ProcessStats> workers;
  // Regions of kind k the driver process created (destroyed) during the job: broom_after minus
  // broom_before.
  uint64_t RegionsCreated(RegionKind k) const {
    return broom_after.regions_created[static_cast<int>(k)] -
           broom_before.regions_created[static_cast<int>(k)];
  }
  uint64_t RegionsDestroyed(RegionKind k) const {
    return broom_after.regions_destroyed[static_cast<int>(k)] -
           broom_before.regions_destroyed[static_cast<int>(k)];
  }
  // A report for people: the totals, time and peak RSS, then for each process what was created
  // and freed there (batches, operator state, per-timestamp state, callback scratch, regions by
  // kind, region bytes), with what is still alive and why.
  std::string Summary() const;
};

long PeakRssKb();

}  // namespace broom::lifecycle

#endif  // BROOM_LIFECYCLE_GRAPH_H_
