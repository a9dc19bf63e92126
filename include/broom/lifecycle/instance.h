// Copyright Broom authors.
//
// instance.h: one running operator instance, independent of the engine that hosts it.
//
//   Address     (stage, instance index) of an instance in a Graph.
//   Transport   what the engine provides: deliver a batch / punctuation / credit to another
//               instance, schedule a Produce step, report completion.
//   Instance    runs an operator: owns its state arena and the operator, opens scratch around
//               each callback, tracks progress (epoch punctuation per upstream instance), fires
//               OnNotify, frees per-timestamp state, partitions outputs, enforces credit
//               flow control per edge, and in checked mode scans the operator's state after
//               its callbacks (InstanceOptions::state_checks; see StateChecks in graph.h).
//
// Protocol (engine messages, FIFO per pair of instances, as actor mailboxes are):
//   batch(to_port, from_instance, envelope)   consumes one credit of edge (from -> to)
//   punctuation(to_port, from_instance, t)    "from has sent everything at epochs <= t";
//                                             t == kEndOfStream closes the channel
//   credit(out_port, from_instance, n)        the receiver processed n batches of that edge
// An instance processes a batch only when none of its outputs is waiting for credit, and
// returns credit only after processing, so each edge holds at most `credits` batches in
// mailboxes and input queues.
//
// Ownership and lifetime: the engine owns the Instance for the lifetime of the operator
// (in CAF the actor state holds it). Its first member is the operator-state arena, so it is
// destroyed last. Thread-safety: owner-thread only; the engine calls its methods from one
// thread at a time (the thread running the actor), and Transport methods are called back on
// that same thread.
#ifndef BROOM_LIFECYCLE_INSTANCE_H_
#define BROOM_LIFECYCLE_INSTANCE_H_

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "broom/check.h"
#include "broom/lifecycle/graph.h"
#include "broom/lifecycle/operator.h"

namespace broom::lifecycle {

struct Address {
  int stage = 0;
  int instance = 0;
};

class Transport {
 public:
  virtual ~Transport() = default;
  virtual void SendBatch(Address to, int to_port, AnyEnvelope&& batch) = 0;
  virtual void SendPunctuation(Address to, int to_port, Epoch closed) = 0;
  virtual void SendCredit(Address to, int out_port, uint32_t n) = 0;
  // Ask the engine to call Instance::Produce() soon (sources; at most one pending request).
  virtual void ScheduleProduce() = 0;
  // The instance has closed every output; the engine may stop it after this returns.
  virtual void Finished(const std::map<std::string, uint64_t>& report) = 0;
};

struct InstanceOptions {
  uint32_t credits = 16;  // per edge; 0 = unlimited
  size_t batch_size = 1024;
  // kDefault is resolved (ResolveStateChecks) when the instance is built; fatal if
  // BROOM_STATE_CHECKS is malformed then (drivers reject it earlier, as a JobResult::error).
  StateChecks state_checks = StateChecks::kDefault;
};

class Instance final : public Context, private Emitter {
 public:
  // Builds the operator (in its state arena). `graph` and `policy` must outlive the instance.
  Instance(const Graph& graph, int stage, int index, MemoryPolicy& policy, Transport& transport,
           const InstanceOptions& options);
  ~Instance();
  Instance(const Instance&) = delete;
  Instance& operator=(const Instance&) = delete;

  Address address() const { return {stage_, instance_}; }
  const std::string& stage_name() const { return graph_.stages()[stage_].name; }
  bool finished() const { return finished_; }

  // Engine events. Each runs callbacks with scratch open on the calling thread.
  void Start();  // once, after all instances exist and can receive
  void OnBatch(int to_port, int from_instance, AnyEnvelope&& batch);
  void OnPunctuation(int to_port, int from_instance, Epoch closed);
  void OnCredit(int out_port, int dest_instance, uint32_t n);
  void Produce();  // sources: one step, after ScheduleProduce()

 private:
  struct Pending {  // an input not yet processed
    int port;
    int from;
    bool is_batch;
    Epoch epoch;  // punctuation
    AnyEnvelope batch;
  };
  struct Outgoing {
    bool is_batch;
    Epoch epoch;
    AnyEnvelope batch;
  };
  struct Channel {  // one output port -> one downstream instance
    uint32_t credits = 0;
    uint32_t outstanding = 0;
    std::deque<Outgoing> queue;    // waiting for credit (or behind a batch that is)
    bool counted_blocked = false;  // INVARIANT: counted_blocked == !queue.empty() after Drain
  };
  struct InPort {
    int upstream_stage = 0;
    int upstream_port = 0;
    std::vector<Epoch> next_open;     // per upstream instance: epochs < next_open are closed
    std::vector<uint32_t> to_credit;  // per upstream instance: processed, not yet credited
  };

  void Emit(int port, int dest, AnyEnvelope&& batch) override;
  void Pump();
  bool Blocked() const { return blocked_channels_ > 0; }
  void Drain(int port, int dest);
  void ProcessBatch(Pending& p);
  void ProcessPunctuation(int port, int from, Epoch closed);
  void AdvanceTo(Epoch frontier);
  void FlushOutputs();
  void CloseOutputs(Epoch closed);
  void FreeEpochStatesBefore(Epoch frontier);
  void MaybeFinish();
  void ScheduleProduceOnce();
  // True if checked mode is on and state checks are at least `level`.
  bool ChecksState(StateChecks level) const {
    return options_.state_checks >= level && GetCheckMode() != CheckMode::kOff;
  }
  // Scans the operator's state (its state arena and open per-timestamp states) and reports
  // what the points-to rules forbid, fatal or logged by the check mode (state_check.cc).
  // `callback` names the callback that just returned; `port` is its input port (or -1) and `t`
  // its epoch (kEndOfStream: none); `input` is OnRecv's batch if it is still alive, else null.
  void CheckState(const char* callback, int port, Epoch t, const AnyEnvelope* input);

  BuiltOperator op_;  // first: the operator-state arena outlives everything below
  const Graph& graph_;
  int stage_;
  Transport& transport_;
  InstanceOptions options_;
  uint32_t credit_batch_ = 1;  // credits returned in groups of this many
  std::vector<InPort> in_ports_;
  std::vector<std::vector<Channel>> channels_;  // [out port][dest instance]
  std::vector<int> out_dest_stage_;             // [out port]
  std::vector<int> out_dest_port_;
  int blocked_channels_ = 0;  // channels whose queue is non-empty
  std::deque<Pending> inputs_;
  bool started_ = false;
  bool pumping_ = false;
  bool closed_ = false;    // end of stream sent on every output
  bool finished_ = false;  // Finished() reported
  // Sources.
  Epoch next_epoch_ = 0;
  bool produce_scheduled_ = false;
};

}  // namespace broom::lifecycle

#endif  // BROOM_LIFECYCLE_INSTANCE_H_
