// Copyright Broom authors.
//
// The CAF shim: instance actors, the driver, and worker processes. See broom/caf/runtime.h.
#include "broom/caf/runtime.h"

#include <signal.h>
#include <unistd.h>

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <tuple>
#include <type_traits>
#include <vector>

#include "broom/lifecycle/instance.h"
#include "broom/ship.h"
#include "runtime_shims/caf/messages.h"
#include "runtime_shims/caf/worker_process.h"

namespace broom::caf_shim {

using ::broom::AddressPlan;
using lifecycle::Address;
using lifecycle::AnyEnvelope;
using lifecycle::Epoch;
using lifecycle::Graph;
using lifecycle::Instance;
using lifecycle::JobOptions;
using lifecycle::JobParams;
using lifecycle::JobResult;
using lifecycle::MemoryPolicy;

namespace {

constexpr const char* kInstanceActorName = "broom.instance";

// ---- process-wide caches: graphs and policies outlive every actor that uses them -----------

std::mutex g_cache_mu;

std::shared_ptr<const Graph> CachedGraph(const std::string& job, const std::string& params) {
  static auto* cache = new std::map<std::string, std::shared_ptr<const Graph>>();
  std::lock_guard<std::mutex> lock(g_cache_mu);
  std::string key = job + "|" + params;
  auto it = cache->find(key);
  if (it != cache->end()) return it->second;
  auto g = lifecycle::BuildJob(job, JobParams::Parse(params));
  if (!g) return nullptr;
  auto sp = std::make_shared<const Graph>(std::move(*g));
  cache->emplace(key, sp);
  return sp;
}

MemoryPolicy* ProcessPolicy(const std::string& name) {
  static auto* policies = new std::map<std::string, std::unique_ptr<MemoryPolicy>>();
  std::lock_guard<std::mutex> lock(g_cache_mu);
  auto it = policies->find(name);
  if (it != policies->end()) return it->second.get();
  auto p = lifecycle::MakePolicy(name);
  if (p == nullptr) return nullptr;
  return policies->emplace(name, std::move(p)).first->second.get();
}

void AddMessageTypes(caf::actor_system_config& cfg) {
  cfg.add_message_type<WireBatch>("broom.WireBatch");
  cfg.add_message_type<WirePunct>("broom.WirePunct");
  cfg.add_message_type<WireCredit>("broom.WireCredit");
  cfg.add_message_type<WireSetup>("broom.WireSetup");
  cfg.add_message_type<WireDone>("broom.WireDone");
  cfg.add_message_type<std::vector<uint64_t>>("broom.Counters");
  cfg.add_message_type<std::vector<LoanNote>>("broom.LoanNotes");
}

// ---- the instance actor ----------------------------------------------------------------------

// Bit of process p in LendersWithLoanNotes().
uint64_t LenderBit(int32_t p) { return uint64_t{1} << (p < 63 ? p : 63); }

// The loan notes queued here for process `p` (empty for this process, or when none are).
std::vector<LoanNote> NotesFor(int32_t p, int32_t self) {
  std::vector<LoanNote> notes;
  if (p == self || (LendersWithLoanNotes() & LenderBit(p)) == 0) return notes;
  LoanNote buf[256];
  size_t n;
  while ((n = TakeLoanNotes(static_cast<uint32_t>(p), buf, 256)) > 0) {
    notes.insert(notes.end(), buf, buf + n);
  }
  return notes;
}

// Every loan note queued here, for whichever process (notes for other processes than the
// receiver's are relayed there: ship.h, AcceptLoanNotes).
std::vector<LoanNote> AllNotes(int32_t self) {
  std::vector<LoanNote> notes;
  AddressPlan plan;
  if (!GetAddressPlan(&plan)) return notes;
  for (uint32_t p = 0; p < plan.processes; ++p) {
    std::vector<LoanNote> n = NotesFor(static_cast<int32_t>(p), self);
    notes.insert(notes.end(), n.begin(), n.end());
  }
  return notes;
}

void Accept(const std::vector<LoanNote>& notes) {
  if (!notes.empty()) AcceptLoanNotes(notes.data(), notes.size());
}

class CafTransport final : public lifecycle::Transport {
 public:
  // `regions`: the job's policy is "regions" (its batches are transferable regions).
  CafTransport(caf::event_based_actor* self, const Graph& graph, int stage, int index, bool regions)
      : self_(self), stage_(stage), index_(index), regions_(regions) {
    int base = 0;
    for (const auto& s : graph.stages()) {
      base_.push_back(base);
      base += s.instances;
    }
  }
  void Wire(WireSetup& setup) {
    actors_ = std::move(setup.actors);
    processes_ = std::move(setup.processes);
    machines_ = std::move(setup.machines);
    driver_ = std::move(setup.driver);
    process_ = processes_[base_[stage_] + index_];
    AddressPlan plan;
    shared_ = GetAddressPlan(&plan) && plan.shared_memory;
  }
  // To another process, records without a codec go by address; raw records too when both
  // slices are shared memory (nothing copied; in copy mode their raw bytes measured as fast and
  // carry no unused capacity: bench/README.md, "The CAF shim ships batches by address").
  void SendBatch(Address to, int to_port, AnyEnvelope&& batch) override {
    const int32_t p = ProcessOf(to);
    const lifecycle::BatchOps* ops = batch.ops();
    const bool raw = ops->raw_resize != nullptr;
    if (p != process_ && ops->by_address && (!raw || (SharedWith(p) && regions_))) {
      WireHeader header = HeaderOf(batch);
      std::string error;
      if (std::optional<Shipment> s = ShipTo(p, batch, &error)) {
        self_->send(At(to), WireBatch{to_port, index_,
                                      BatchHandle(std::move(*s), std::move(header),
                                                  static_cast<uint32_t>(process_))});
        return;
      }
      // Raw records fall back on their bytes; others have nothing to fall back on.
      BROOM_CHECK(raw, "cannot send a batch of %s to process %d by address: %s",
                  header.type.c_str(), p, error.c_str());
    }
    // Moved into the message: the handle is never copied on this path.
    self_->send(At(to), WireBatch{to_port, index_, BatchHandle(std::move(batch))});
  }
  void SendPunctuation(Address to, int to_port, Epoch closed) override {
    self_->send(At(to), WirePunct{to_port, index_, closed, NotesFor(ProcessOf(to), process_)});
  }
  void SendCredit(Address to, int out_port, uint32_t n) override {
    self_->send(At(to), WireCredit{out_port, index_, n, NotesFor(ProcessOf(to), process_)});
  }
  void ScheduleProduce() override { self_->send(self_, produce_atom::value); }
  void Finished(const std::map<std::string, uint64_t>& report) override {
    WireDone done{stage_, index_, {report.begin(), report.end()}, NotesFor(0, process_)};
    self_->send(driver_, std::move(done));
    // The actor stays up until the driver stops it (stop_atom) once every instance is done, so
    // that credits and punctuation still on their way to it arrive and it applies their loan
    // notes (a message to an actor that has quit is dropped, and the notes with it).
  }

 private:
  int ActorIndex(Address a) const { return base_[a.stage] + a.instance; }
  const caf::actor& At(Address a) const { return actors_[ActorIndex(a)]; }
  int32_t ProcessOf(Address a) const { return processes_[ActorIndex(a)]; }
  // This process's slice is shared memory and process p is on this machine.
  bool SharedWith(int32_t p) const {
    return shared_ && machines_[static_cast<size_t>(p)] == machines_[static_cast<size_t>(process_)];
  }
  // Ships `batch` to `p`: in shared mode when SharedWith(p) and the batch's blocks can be mapped
  // by `p`, else in copy mode. Null with *error set, the batch unchanged, if it cannot be shipped
  // at all (checked mode found pointers out of it).
  std::optional<Shipment> ShipTo(int32_t p, AnyEnvelope& batch, std::string* error) {
    std::optional<Shipment> s;
    if (SharedWith(p)) s = batch.Ship(static_cast<uint32_t>(p), ShipMode::kShared, error);
    if (!s) s = batch.Ship(static_cast<uint32_t>(p), ShipMode::kCopy, error);
    return s;
  }
  caf::event_based_actor* self_;
  int stage_, index_;
  std::vector<int> base_;
  std::vector<caf::actor> actors_;
  std::vector<int32_t> processes_;
  std::vector<int32_t> machines_;  // by process (WireSetup::machines)
  caf::actor driver_;
  int32_t process_ = 0;
  bool regions_;
  bool shared_ = false;
};

// Actor state. Members are destroyed in reverse order: the transport first, then the instance
// (whose first member is the operator-state arena, an ActorRegion under "regions", so the
// region dies last of all the instance's memory), then the graph it refers to. CAF destroys the
// state when the actor quits or is killed, on the thread running it.
struct InstanceState {
  std::shared_ptr<const Graph> graph;
  std::unique_ptr<Instance> instance;
  std::unique_ptr<CafTransport> transport;
  static inline const char* name = "broom.instance";
};

caf::behavior InstanceActor(caf::stateful_actor<InstanceState>* self, std::string job,
                            std::string params, std::string policy_name, int32_t stage,
                            int32_t index, uint32_t credits, uint64_t batch_size,
                            int32_t state_checks, int32_t check_mode) {
  auto& st = self->state;
  st.graph = CachedGraph(job, params);
  MemoryPolicy* policy = ProcessPolicy(policy_name);
  if (st.graph == nullptr || policy == nullptr || stage < 0 ||
      stage >= static_cast<int32_t>(st.graph->stages().size())) {
    self->quit(caf::make_error(caf::sec::invalid_argument,
                               "cannot build instance: unknown job, policy or stage"));
    return {};
  }
  SetReceivePolicy(policy);
  // A worker process checks as its driver does (a no-op in the driver's own process).
  if (GetCheckMode() != static_cast<CheckMode>(check_mode)) {
    SetCheckMode(static_cast<CheckMode>(check_mode));
  }
  st.transport =
      std::make_unique<CafTransport>(self, *st.graph, stage, index, policy->name() == "regions");
  st.instance = std::make_unique<Instance>(
      *st.graph, stage, index, *policy, *st.transport,
      lifecycle::InstanceOptions{credits, batch_size,
                                 static_cast<lifecycle::StateChecks>(state_checks)});
  // Every handler keeps CAF's exact parameter types; the Instance opens the callback's
  // allocation context (scratch) on whatever thread runs this message.
  return {
      [=](WireSetup& setup) {
        self->state.transport->Wire(setup);
        self->state.instance->Start();
      },
      [=](WireBatch& m) { self->state.instance->OnBatch(m.to_port, m.from, m.batch.Take()); },
      [=](WirePunct& m) {
        Accept(m.notes);
        if (!self->state.instance->finished()) {
          self->state.instance->OnPunctuation(m.to_port, m.from, m.epoch);
        }
      },
      [=](WireCredit& m) {
        Accept(m.notes);
        if (!self->state.instance->finished()) {
          self->state.instance->OnCredit(m.out_port, m.from, m.n);
        }
      },
      [=](produce_atom) {
        if (!self->state.instance->finished()) self->state.instance->Produce();
      },
      // State (and the operator's region) is destroyed after this handler.
      [=](stop_atom) { self->quit(); },
  };
}

// Every counter of a ProcessStats, in the order the stats actor sends them.
template <class P, class F>
void ForEachCounter(P& p, F&& f) {
  for (auto& c : p.broom.regions_created) f(c);
  for (auto& c : p.broom.regions_destroyed) f(c);
  f(p.broom.block_bytes);
  f(p.broom.peak_block_bytes);
  auto& s = p.shim;
  for (auto* c :
       {&s.handle_copies, &s.handle_shared_takes, &s.batches_sent, &s.batches_received,
        &s.remote_batches_out, &s.remote_batches_in, &s.remote_bytes_out, &s.remote_bytes_in,
        &s.credit_stalls, &s.peak_in_flight, &s.state_checks, &s.state_bytes_scanned,
        &s.scratch_created, &s.scratch_destroyed, &s.scratch_cleanups}) {
    f(*c);
  }
  for (auto& a : s.arenas) {
    for (auto* c : {&a.created, &a.freed, &a.peak_live, &a.peak_bytes, &a.cleanups}) f(*c);
  }
  auto& x = p.ship;
  for (auto* c :
       {&x.regions_shipped, &x.regions_received, &x.payload_bytes_sent, &x.payload_bytes_received,
        &x.manifest_bytes_sent, &x.mapped_bytes_sent, &x.mapped_bytes_received,
        &x.installed_warm_bytes, &x.installed_cold_bytes, &x.notes_queued, &x.notes_accepted,
        &x.stale_notes, &x.reclaimed_blocks, &x.notes_relayed}) {
    f(*c);
  }
  for (auto* c :
       {&x.loaned_bytes, &x.loaned_blocks, &x.borrowed_bytes, &x.borrowed_blocks,
        &x.warm_borrowed_bytes, &x.warm_borrowed_cap, &x.notes_pending, &x.shared_slices_mapped}) {
    f(*c);
  }
}

// Spawned by name on a worker after a job. Given the loan notes the driver has for this worker,
// applies them, takes every note queued here (for the driver, or for another worker through
// it), and answers with the worker's counters (ForEachCounter order), its pid, and those notes.
// The counters are read after both, so they show what the worker holds once the notes are in.
caf::behavior StatsActor(caf::event_based_actor*) {
  return {
      [](stats_atom, std::vector<LoanNote>& in) {
        Accept(in);
        AddressPlan plan;
        GetAddressPlan(&plan);
        std::vector<LoanNote> out = AllNotes(static_cast<int32_t>(plan.index));
        lifecycle::ProcessStats p;
        p.broom = GetGlobalStats();
        p.shim = lifecycle::GetShimStats();
        p.ship = GetShipStats();
        std::vector<uint64_t> v;
        ForEachCounter(p, [&v](auto c) { v.push_back(static_cast<uint64_t>(c)); });
        v.push_back(static_cast<uint64_t>(getpid()));
        return std::make_tuple(std::move(v), std::move(out));
      },
  };
}

void ConfigureSystem(caf::actor_system_config& cfg, int threads) {
  AddMessageTypes(cfg);
  if (threads > 0) cfg.set("scheduler.max-threads", static_cast<size_t>(threads));
  cfg.add_actor_type(kInstanceActorName, InstanceActor);
  cfg.add_actor_type("broom.stats", StatsActor);
}

// Reads the counters of worker `process` once its instances are gone (AwaitInstances waits up to
// 2 s for them to go down; poll briefly, too, until no actor region is live there). Each request
// carries the loan notes queued here for the worker, and the notes it answers with are applied
// here (or queued here for the worker they are for).
bool ReadWorkerStats(caf::actor_system& system, caf::scoped_actor& self, const caf::node_id& node,
                     int32_t process, lifecycle::ProcessStats& out) {
  auto a = system.middleman().remote_spawn<caf::actor>(node, "broom.stats", caf::make_message(),
                                                       std::chrono::seconds(5));
  if (!a) return false;
  bool ok = false;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  do {
    std::vector<uint64_t> v;
    self->request(*a, std::chrono::seconds(2), stats_atom::value, NotesFor(process, 0))
        .receive(
            [&](std::vector<uint64_t>& r, std::vector<LoanNote>& notes) {
              v = std::move(r);
              Accept(notes);
            },
            [&](caf::error&) {});
    size_t n = 0;
    ForEachCounter(out, [&n](auto&) { ++n; });
    if (v.size() != n + 1) break;
    size_t i = 0;
    ForEachCounter(out,
                   [&](auto& c) { c = static_cast<std::remove_reference_t<decltype(c)>>(v[i++]); });
    out.pid = static_cast<long>(v[i]);
    ok = true;
    if (out.broom.live(RegionKind::kActor) == 0 && out.broom.live(RegionKind::kTransferable) == 0) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  } while (std::chrono::steady_clock::now() < deadline);
  self->send_exit(*a, caf::exit_reason::user_shutdown);
  return ok;
}

// ---- the job's address plan ----------------------------------------------------------------

// The address plan of a job on `procs` processes (JobOptions::plan_*, or the driver's own),
// checked: the driver sits at it, as slice 0, and it has a slice per process. Empty on success.
std::string JobPlan(const JobOptions& o, int procs, AddressPlan* plan) {
  std::string error;
  if (o.plan_base != 0 || o.plan_slice_bytes != 0 || o.plan_processes != 0) {
    AddressPlan want{static_cast<uintptr_t>(o.plan_base), static_cast<size_t>(o.plan_slice_bytes),
                     o.plan_processes, 0};
    if (!ConfigureAddressPlan(want, &error)) return "JobOptions' address plan: " + error;
  }
  if (!GetAddressPlan(plan, &error)) {
    return "cannot run on " + std::to_string(procs) + " processes: " + error;
  }
  if (plan->index != 0) {
    return "the driver of a multi-process job must be slice 0 of its address plan (this process "
           "has BROOM_PLAN_INDEX=" +
           std::to_string(plan->index) + ")";
  }
  if (static_cast<uint32_t>(procs) > plan->processes) {
    return "the job needs " + std::to_string(procs) + " processes but the address plan has " +
           std::to_string(plan->processes) +
           " slices (raise BROOM_PLAN_PROCESSES or JobOptions::plan_processes)";
  }
  return {};
}

}  // namespace

int WorkerMain(int argc, char** argv) {
  int threads = 0;
  std::string listen = "127.0.0.1";  // a worker on another host: 0.0.0.0 (RemoteWorkerCommand)
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--threads=", 10) == 0) threads = std::atoi(argv[i] + 10);
    if (std::strncmp(argv[i], "--broom-listen=", 15) == 0) listen = argv[i] + 15;
  }
  signal(SIGPIPE, SIG_IGN);
  // Before anything else: the worker's region space must sit at the job's address plan.
  AddressPlan plan;
  std::string plan_error;
  if (!GetAddressPlan(&plan, &plan_error)) {
    std::printf("BROOM_WORKER_ERROR %s\n", plan_error.c_str());
    std::fflush(stdout);
    return 1;
  }
  caf::actor_system_config cfg;
  ConfigureSystem(cfg, threads);
  cfg.load<caf::io::middleman>();
  caf::actor_system system{cfg};
  auto port = system.middleman().open(0, listen.c_str());
  if (!port) {
    std::fprintf(stderr, "broom worker: cannot open a port: %s\n",
                 system.render(port.error()).c_str());
    return 1;
  }
  std::printf("BROOM_WORKER_PORT %u %s\n", static_cast<unsigned>(*port),
              WorkerIdentity(plan).c_str());
  std::fflush(stdout);
  char buf[256];
  while (read(0, buf, sizeof(buf)) > 0) {
  }
  // The driver is gone or done. Instances of a finished job have quit already; after a failure
  // they would wait forever for input, so leave without waiting for them.
  std::fflush(nullptr);
  _exit(0);
}

// What RunJob needs of a job, resolved and checked before anything starts.
struct JobSetup {
  std::string job;
  std::string params;
  std::shared_ptr<const Graph> graph;
  MemoryPolicy* policy = nullptr;
  int32_t state_checks = 0;
  int32_t check_mode = 0;
  int procs = 1;
  AddressPlan plan;
};

// Fills `s`; returns the error a user can act on, or "".
std::string ResolveJob(const std::string& job, const JobParams& params, const JobOptions& options,
                       JobSetup* s) {
  s->job = job;
  s->params = params.ToString();
  s->graph = CachedGraph(job, s->params);
  if (s->graph == nullptr) return "unknown job '" + job + "'";
  s->policy = ProcessPolicy(options.policy);
  if (s->policy == nullptr) {
    return "unknown memory policy '" + options.policy + "' (use regions, heap, heap-glibc or gc)";
  }
  std::string error;
  s->state_checks =
      static_cast<int32_t>(lifecycle::ResolveStateChecks(options.state_checks, &error));
  if (!error.empty()) return error;
  s->check_mode = static_cast<int32_t>(GetCheckMode());
  s->procs = std::max(1, options.processes);
  if (s->procs == 1) return {};
  for (const Graph::Edge& e : s->graph->edges()) {
    const lifecycle::BatchOps& ops = *e.ops;
    if (ops.raw_resize != nullptr || ops.encode != nullptr) continue;  // they travel as bytes
    const std::string where = "'" + s->graph->stages()[e.from_stage].name + "' -> '" +
                              s->graph->stages()[e.to_stage].name + "'";
    if (!ops.by_address) {
      return std::string("records of type ") + ops.name + " (edge " + where +
             ") cannot cross processes: they are polymorphic (a vtable pointer is valid in one "
             "process only) and have no codec (record.h)";
    }
    if (s->policy->name() != "regions") {
      return std::string("records of type ") + ops.name + " (edge " + where +
             ") cross processes by address, which needs the \"regions\" policy (this job runs "
             "under \"" +
             std::string(s->policy->name()) +
             "\"); run it on one process, or give the type a codec (record.h)";
    }
  }
  return JobPlan(options, s->procs, &s->plan);
}

// Starts worker processes 1..n-1 and connects to each. Returns the first error, or "".
std::string ConnectWorkers(caf::actor_system& system, const JobOptions& options,
                           const JobSetup& setup, std::vector<Worker>& workers) {
  for (size_t i = 0; i < workers.size(); ++i) {
    WorkerPlace place;
    if (i < options.worker_hosts.size()) place = {options.worker_hosts[i], options.worker_launcher};
    std::string error = LaunchWorker(options.worker_exe, options.threads, setup.plan,
                                     static_cast<uint32_t>(i + 1), place, workers[i]);
    if (!error.empty()) return error;
    const std::string host = place.host.empty() ? "127.0.0.1" : place.host;
    auto node = system.middleman().connect(host, workers[i].port);
    if (!node) {
      return "cannot connect to worker " + std::to_string(i + 1) + " at " + host + ":" +
             std::to_string(workers[i].port) + ": " + system.render(node.error());
    }
    workers[i].node = *node;
  }
  return {};
}

// The job's instances in stage order: instance i of a stage runs in process i % procs.
struct Instances {
  std::vector<caf::actor> actors;
  std::vector<std::pair<int, int>> who;  // actor index -> (stage, instance)
  std::vector<int> where;                // actor index -> process
};

std::string SpawnInstances(caf::actor_system& system, const JobOptions& options,
                           const JobSetup& setup, const std::vector<Worker>& workers,
                           Instances* out) {
  const auto& stages = setup.graph->stages();
  for (int s = 0; s < static_cast<int>(stages.size()); ++s) {
    for (int i = 0; i < stages[s].instances; ++i) {
      int p = i % setup.procs;
      caf::actor a;
      if (p == 0) {
        a = system.spawn(InstanceActor, setup.job, setup.params, options.policy, s, i,
                         options.credits, static_cast<uint64_t>(options.batch_size),
                         setup.state_checks, setup.check_mode);
      } else {
        auto res = system.middleman().remote_spawn<caf::actor>(
            workers[p - 1].node, kInstanceActorName,
            caf::make_message(setup.job, setup.params, options.policy, int32_t{s}, int32_t{i},
                              options.credits, static_cast<uint64_t>(options.batch_size),
                              setup.state_checks, setup.check_mode),
            std::chrono::seconds(10));
        if (!res) {
          return "remote_spawn on worker " + std::to_string(p) +
                 " failed: " + system.render(res.error());
        }
        a = std::move(*res);
      }
      out->actors.push_back(a);
      out->who.emplace_back(s, i);
      out->where.push_back(p);
    }
  }
  return {};
}

// The machine of each of the job's `procs` processes (WireSetup::machines): 0 for the driver and
// the workers without a host, then one number per distinct host of options.worker_hosts.
std::vector<int32_t> MachinesOf(const JobOptions& options, int procs) {
  std::vector<int32_t> machines(static_cast<size_t>(procs), 0);
  std::vector<std::string> hosts;
  for (int p = 1; p < procs; ++p) {
    const size_t i = static_cast<size_t>(p - 1);
    if (i >= options.worker_hosts.size() || options.worker_hosts[i].empty()) continue;
    auto it = std::find(hosts.begin(), hosts.end(), options.worker_hosts[i]);
    if (it == hosts.end()) it = hosts.insert(hosts.end(), options.worker_hosts[i]);
    machines[static_cast<size_t>(p)] = static_cast<int32_t>(it - hosts.begin()) + 1;
  }
  return machines;
}

// Wires the instances, waits until each reports done (adding its report to `totals`), one
// stops early, or the timeout passes; on an error, kills them all. Once all are done, stops each
// (stop_atom: behind every message sent to it before its senders reported done, since messages
// between workers pass through this process) and waits up to 2 s until every actor is down: CAF
// destroys an actor's state, and with it the regions it holds, before the actor goes down, so
// the loan notes of those last frees are queued by then. Returns the error or "".
std::string AwaitInstances(caf::actor_system& system, caf::scoped_actor& self,
                           const JobOptions& options, const JobSetup& setup,
                           const std::vector<Worker>& workers, const Instances& in,
                           std::chrono::steady_clock::time_point t0,
                           std::map<std::string, uint64_t>* totals) {
  const std::vector<caf::actor>& actors = in.actors;
  for (auto& a : actors) self->monitor(a);
  WireSetup wiring{actors,
                   {in.where.begin(), in.where.end()},
                   MachinesOf(options, setup.procs),
                   caf::actor_cast<caf::actor>(self)};
  for (auto& a : actors) self->send(a, wiring);
  std::vector<bool> done(actors.size(), false);
  size_t finished = 0;
  bool killed = false;
  std::string error;
  auto deadline = t0 + std::chrono::duration<double>(options.timeout_seconds);
  auto index_of = [&](const caf::actor_addr& addr) -> int {
    for (size_t k = 0; k < actors.size(); ++k) {
      if (actors[k].address() == addr) return static_cast<int>(k);
    }
    return -1;
  };
  auto name_of = [&](int k) {
    return "instance '" + setup.graph->stages()[in.who[k].first].name + "' #" +
           std::to_string(in.who[k].second) + " (process " + std::to_string(in.where[k]) +
           (in.where[k] > 0 ? ", pid " + std::to_string(workers[in.where[k] - 1].pid) : "") + ")";
  };
  while (finished < actors.size() && error.empty()) {
    self->receive(
        [&](WireDone& d) {
          int base = 0;
          for (int s = 0; s < d.stage; ++s) base += setup.graph->stages()[s].instances;
          size_t k = static_cast<size_t>(base + d.index);
          Accept(d.notes);
          if (k < done.size() && !done[k]) {
            done[k] = true;
            ++finished;
            for (auto& [key, v] : d.report) (*totals)[key] += v;
          }
        },
        [&](caf::down_msg& dm) {
          int k = index_of(dm.source);
          if (k < 0 || done[k]) return;
          error = name_of(k) + " stopped before finishing: " + system.render(dm.reason) +
                  (in.where[k] > 0 ? " (lost worker process?)" : "");
        },
        caf::after(std::chrono::milliseconds(50)) >>
            [&] {
              auto now = std::chrono::steady_clock::now();
              if (now > deadline) {
                error = "timed out after " + std::to_string(options.timeout_seconds) + " s with " +
                        std::to_string(actors.size() - finished) + " instances unfinished";
              }
              if (!killed && options.kill_worker_after_seconds > 0 && !workers.empty() &&
                  now - t0 > std::chrono::duration<double>(options.kill_worker_after_seconds)) {
                kill(workers[0].pid, SIGKILL);  // testing hook: lose a peer mid-job
                killed = true;
              }
            });
  }
  if (!error.empty()) {
    for (const caf::actor& a : actors) self->send_exit(a, caf::exit_reason::kill);
    return error;
  }
  for (const caf::actor& a : actors) self->send(a, stop_atom::value);
  size_t gone = 0;
  const auto down_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (gone < actors.size() && std::chrono::steady_clock::now() < down_deadline) {
    self->receive(
        [&](caf::down_msg& dm) {
          int k = index_of(dm.source);
          if (k >= 0) ++gone;
        },
        caf::after(std::chrono::milliseconds(50)) >> [] {});
  }
  return error;
}

JobResult RunJob(const std::string& job, const JobParams& params, const JobOptions& options) {
  JobResult r;
  JobSetup setup;
  r.error = ResolveJob(job, params, options, &setup);
  if (!r.error.empty()) return r;
  SetReceivePolicy(setup.policy);
  signal(SIGPIPE, SIG_IGN);
  lifecycle::ResetShimStats();  // counters describe this job (one job at a time per process)
  r.broom_before = GetGlobalStats();
  r.ship_before = GetShipStats();
  auto t0 = std::chrono::steady_clock::now();
  std::vector<Worker> workers(setup.procs - 1);
  {
    caf::actor_system_config cfg;
    ConfigureSystem(cfg, options.threads);
    if (setup.procs > 1) cfg.load<caf::io::middleman>();
    caf::actor_system system{cfg};
    Instances instances;
    r.error = ConnectWorkers(system, options, setup, workers);
    if (r.error.empty()) r.error = SpawnInstances(system, options, setup, workers, &instances);
    if (r.error.empty()) {
      caf::scoped_actor self{system};
      r.error = AwaitInstances(system, self, options, setup, workers, instances, t0, &r.totals);
      // Twice over the workers: the first pass brings each worker the notes the driver owes it
      // and brings back the notes it owes (to the driver, or relayed through it to another
      // worker); the second delivers the relayed ones. The second pass's counters are reported.
      for (int pass = 0; pass < 2 && r.error.empty(); ++pass) {
        r.workers.clear();
        for (size_t i = 0; i < workers.size(); ++i) {
          lifecycle::ProcessStats ps;
          if (ReadWorkerStats(system, self, workers[i].node, static_cast<int32_t>(i + 1), ps)) {
            r.workers.push_back(ps);
          }
        }
      }
    }
    instances.actors.clear();
    StopWorkers(workers);
  }  // the actor system waits here for every local actor to be gone
  // The workers are gone: what they still held of this process's memory comes back (nothing
  // after a finished job: the stats requests carried the last notes), and notes still queued
  // for them are dropped (ship.h, ForgetPeer).
  for (int p = 1; p < setup.procs; ++p) ForgetPeer(static_cast<uint32_t>(p));
  r.ok = r.error.empty();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.broom_after = GetGlobalStats();
  r.ship_after = GetShipStats();
  r.peak_rss_kb = lifecycle::PeakRssKb();
  r.shim = lifecycle::GetShimStats();
  return r;
}

}  // namespace broom::caf_shim
