// Copyright Broom authors.
#include "broom/lifecycle/direct_driver.h"

#include <chrono>
#include <deque>
#include <memory>

#include "broom/lifecycle/instance.h"

namespace broom::lifecycle {
namespace {

struct Delivery {
  enum Kind : uint8_t { kBatch, kPunctuation, kCredit, kProduce } kind;
  Address to;
  int port;
  int from;
  Epoch epoch;
  uint32_t n;
  AnyEnvelope batch;
};

class DirectJob;

class DirectTransport final : public Transport {
 public:
  DirectTransport(DirectJob& job, Address self) : job_(job), self_(self) {}
  void SendBatch(Address to, int to_port, AnyEnvelope&& batch) override;
  void SendPunctuation(Address to, int to_port, Epoch closed) override;
  void SendCredit(Address to, int out_port, uint32_t n) override;
  void ScheduleProduce() override;
  void Finished(const std::map<std::string, uint64_t>& report) override;

 private:
  DirectJob& job_;
  Address self_;
};

class DirectJob {
 public:
  // `checks`: options.state_checks, resolved.
  DirectJob(const Graph& graph, MemoryPolicy& policy, const JobOptions& options, StateChecks checks)
      : graph_(graph) {
    InstanceOptions io{options.credits, options.batch_size, checks};
    for (int s = 0; s < static_cast<int>(graph.stages().size()); ++s) {
      int n = graph.stages()[s].instances;
      base_.push_back(static_cast<int>(instances_.size()));
      for (int i = 0; i < n; ++i) {
        transports_.push_back(std::make_unique<DirectTransport>(*this, Address{s, i}));
        instances_.push_back(
            std::make_unique<Instance>(graph, s, i, policy, *transports_.back(), io));
      }
    }
  }

  void Push(Delivery d) { queue_.push_back(std::move(d)); }
  void NoteFinished(const std::map<std::string, uint64_t>& report) {
    ++finished_;
    for (const auto& [k, v] : report) totals_[k] += v;
  }

  // Runs to completion; false if the queue ran dry before every instance finished.
  bool Run() {
    for (auto& i : instances_) i->Start();
    while (!queue_.empty()) {
      Delivery d = std::move(queue_.front());
      queue_.pop_front();
      Instance& in = *instances_[base_[d.to.stage] + d.to.instance];
      switch (d.kind) {
        case Delivery::kBatch:
          in.OnBatch(d.port, d.from, std::move(d.batch));
          break;
        case Delivery::kPunctuation:
          in.OnPunctuation(d.port, d.from, d.epoch);
          break;
        case Delivery::kCredit:
          in.OnCredit(d.port, d.from, d.n);
          break;
        case Delivery::kProduce:
          in.Produce();
          break;
      }
    }
    return finished_ == instances_.size();
  }

  std::map<std::string, uint64_t>& totals() { return totals_; }
  void DestroyInstances() { instances_.clear(); }

 private:
  const Graph& graph_;
  std::vector<int> base_;  // stage -> index of its first instance
  std::vector<std::unique_ptr<DirectTransport>> transports_;
  std::vector<std::unique_ptr<Instance>> instances_;
  std::deque<Delivery> queue_;
  size_t finished_ = 0;
  std::map<std::string, uint64_t> totals_;
};

void DirectTransport::SendBatch(Address to, int to_port, AnyEnvelope&& batch) {
  job_.Push({Delivery::kBatch, to, to_port, self_.instance, 0, 0, std::move(batch)});
}
void DirectTransport::SendPunctuation(Address to, int to_port, Epoch closed) {
  job_.Push({Delivery::kPunctuation, to, to_port, self_.instance, closed, 0, {}});
}
void DirectTransport::SendCredit(Address to, int out_port, uint32_t n) {
  job_.Push({Delivery::kCredit, to, out_port, self_.instance, 0, n, {}});
}
void DirectTransport::ScheduleProduce() { job_.Push({Delivery::kProduce, self_, 0, 0, 0, 0, {}}); }
void DirectTransport::Finished(const std::map<std::string, uint64_t>& report) {
  job_.NoteFinished(report);
}

}  // namespace

JobResult RunDirect(const Graph& graph, const JobOptions& options) {
  JobResult r;
  std::unique_ptr<MemoryPolicy> policy = MakePolicy(options.policy);
  if (policy == nullptr) {
    r.error =
        "unknown memory policy '" + options.policy + "' (use regions, heap, heap-glibc or gc)";
    return r;
  }
  std::string error;
  StateChecks checks = ResolveStateChecks(options.state_checks, &error);
  if (!error.empty()) {
    r.error = error;
    return r;
  }
  ResetShimStats();  // counters describe this job (one job at a time per process)
  r.broom_before = GetGlobalStats();
  auto t0 = std::chrono::steady_clock::now();
  {
    DirectJob job(graph, *policy, options, checks);
    r.ok = job.Run();
    if (!r.ok) r.error = "the job stalled: some instance never finished (a bug in the graph?)";
    r.totals = std::move(job.totals());
    job.DestroyInstances();
  }
  ReleaseThreadScratch();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.broom_after = GetGlobalStats();
  r.peak_rss_kb = PeakRssKb();
  r.shim = GetShimStats();
  return r;
}

}  // namespace broom::lifecycle
