// Copyright Broom authors.
#include "broom/lifecycle/instance.h"

#include <algorithm>
#include <string>

namespace broom::lifecycle {

namespace {
Epoch MinOf(const std::vector<Epoch>& v) {
  Epoch m = kEndOfStream;
  for (Epoch e : v) m = std::min(m, e);
  return m;
}
}  // namespace

void Context::NotifyAt(Epoch t) {
  BROOM_CHECK(t >= frontier_, "NotifyAt(%llu) but epochs < %llu are already complete",
              (unsigned long long)t, (unsigned long long)frontier_);
  auto it = std::lower_bound(notify_.begin(), notify_.end(), t);
  if (it == notify_.end() || *it != t) notify_.insert(it, t);
}

void Context::DieBadOutput(int port, const char* type) const {
  broom::internal::Fatal(__FILE__, __LINE__,
                         "output(%d) with record type %s: no such output port, or the graph "
                         "declared it with another record type",
                         port, type);
}

Instance::Instance(const Graph& graph, int stage, int index, MemoryPolicy& policy,
                   Transport& transport, const InstanceOptions& options)
    : graph_(graph), stage_(stage), transport_(transport), options_(options) {
  const Graph::Stage& s = graph.stages()[stage];
  policy_ = &policy;
  instance_ = index;
  instances_ = s.instances;
  credit_batch_ = std::max<uint32_t>(1, options.credits / 4);
  {
    // The operator is built on the engine thread that runs the instance, with scratch open
    // (its constructor may use temporaries) and its own state arena open inside that.
    ScratchScope scratch(ThreadScratch(policy));
    op_ = s.make(policy);
  }
  state_resource_ = op_.state.resource();
  if (options_.state_checks == StateChecks::kDefault) {
    std::string error;
    options_.state_checks = ResolveStateChecks(StateChecks::kDefault, &error);
    BROOM_CHECK(error.empty(), "%s", error.c_str());
  }
  for (int p = 0; p < s.num_inputs; ++p) {
    const Graph::Edge& e = graph.edges()[s.in_edges[p]];
    InPort in;
    in.upstream_stage = e.from_stage;
    in.upstream_port = e.from_port;
    int n = graph.stages()[e.from_stage].instances;
    in.next_open.assign(n, 0);
    in.to_credit.assign(n, 0);
    in_ports_.push_back(std::move(in));
  }
  for (int p = 0; p < s.num_outputs; ++p) {
    const Graph::Edge& e = graph.edges()[s.out_edges[p]];
    int dests = graph.stages()[e.to_stage].instances;
    outputs_.push_back(e.make_output(*this, policy, index, dests, options.batch_size));
    channels_.emplace_back(dests);
    for (Channel& c : channels_.back()) c.credits = options.credits;
    out_dest_stage_.push_back(e.to_stage);
    out_dest_port_.push_back(e.to_port);
  }
  if (s.num_inputs == 0) frontier_ = 0;
}

Instance::~Instance() {
  // Everything that may point into the operator's state goes before it (base-class members
  // would otherwise be destroyed after op_).
  ScratchScope scratch(ThreadScratch(*policy_));
  inputs_.clear();
  channels_.clear();
  outputs_.clear();
  epoch_states_.clear();
  op_.op = nullptr;
  op_.state.Reset();
}

void Instance::Start() {
  started_ = true;
  if (op_.op->is_source()) {
    if (op_.op->num_epochs() == 0) {
      CloseOutputs(kEndOfStream);
    } else {
      ScheduleProduceOnce();
    }
  }
  Pump();
}

void Instance::OnBatch(int to_port, int from_instance, AnyEnvelope&& batch) {
  internal::AddTo(internal::g_shim_counters.batches_received);
  inputs_.push_back(Pending{to_port, from_instance, true, 0, std::move(batch)});
  Pump();
}

void Instance::OnPunctuation(int to_port, int from_instance, Epoch closed) {
  inputs_.push_back(Pending{to_port, from_instance, false, closed, AnyEnvelope()});
  Pump();
}

void Instance::OnCredit(int out_port, int dest_instance, uint32_t n) {
  Channel& c = channels_[out_port][dest_instance];
  c.credits += n;
  c.outstanding -= std::min(c.outstanding, n);
  Drain(out_port, dest_instance);
  Pump();
}

void Instance::ScheduleProduceOnce() {
  if (produce_scheduled_ || closed_) return;
  produce_scheduled_ = true;
  transport_.ScheduleProduce();
}

void Instance::Produce() {
  produce_scheduled_ = false;
  if (closed_) return;
  if (Blocked()) return;  // resumed by OnCredit -> Pump
  bool epoch_done;
  {
    ScratchScope scratch(ThreadScratch(*policy_));
    epoch_done = op_.op->ProduceAny(next_epoch_, *this);
    // A source's epoch completing stands for OnNotify; its last epoch, for shutdown.
    if (ChecksState(epoch_done ? StateChecks::kAtNotify : StateChecks::kEveryCallback)) {
      CheckState("Produce", -1, next_epoch_, nullptr);
    }
  }
  if (epoch_done) {
    Epoch t = next_epoch_++;
    FlushOutputs();
    CloseOutputs(next_epoch_ == op_.op->num_epochs() ? kEndOfStream : t);
  }
  Pump();
}

void Instance::Pump() {
  if (pumping_ || !started_) return;
  pumping_ = true;
  while (!Blocked() && !inputs_.empty()) {
    Pending p = std::move(inputs_.front());
    inputs_.pop_front();
    if (p.is_batch) {
      ProcessBatch(p);
    } else {
      ProcessPunctuation(p.port, p.from, p.epoch);
    }
  }
  if (Blocked()) {
    internal::AddTo(internal::g_shim_counters.credit_stalls);
  } else if (op_.op->is_source() && !closed_) {
    ScheduleProduceOnce();
  }
  pumping_ = false;
  MaybeFinish();
}

void Instance::ProcessBatch(Pending& p) {
  {
    ScratchScope scratch(ThreadScratch(*policy_));
    Epoch t = ChecksState(StateChecks::kEveryCallback) ? p.batch.epoch() : 0;
    (void)p.batch.resource();  // the receiver's first use (BROOM_CHECK_SENT: makes it writable)
    op_.op->OnRecvAny(p.port, p.batch, *this);
    // Before the batch is freed, so a pointer kept into it names it.
    if (ChecksState(StateChecks::kEveryCallback)) {
      CheckState("OnRecv", p.port, t, p.batch ? &p.batch : nullptr);
    }
    p.batch.Reset();  // not forwarded or kept: freed in bulk now
  }
  FlushOutputs();
  if (options_.credits == 0) return;
  InPort& in = in_ports_[p.port];
  if (++in.to_credit[p.from] >= credit_batch_) {
    transport_.SendCredit({in.upstream_stage, p.from}, in.upstream_port, in.to_credit[p.from]);
    in.to_credit[p.from] = 0;
  }
}

void Instance::ProcessPunctuation(int port, int from, Epoch closed) {
  InPort& in = in_ports_[port];
  in.next_open[from] = closed == kEndOfStream ? kEndOfStream : closed + 1;
  Epoch f = kEndOfStream;
  for (const InPort& i : in_ports_) f = std::min(f, MinOf(i.next_open));
  if (f > frontier_) AdvanceTo(f);
}

void Instance::AdvanceTo(Epoch f) {
  while (!notify_.empty() && notify_.front() < f) {
    Epoch t = notify_.front();
    notify_.erase(notify_.begin());
    {
      ScratchScope scratch(ThreadScratch(*policy_));
      op_.op->OnNotify(t, *this);
      if (ChecksState(StateChecks::kAtNotify)) CheckState("OnNotify", -1, t, nullptr);
    }
    FreeEpochStatesBefore(std::min(f, t + 1));
  }
  frontier_ = f;
  FreeEpochStatesBefore(f);
  if (f == kEndOfStream) {
    ScratchScope scratch(ThreadScratch(*policy_));
    op_.op->OnFinish(*this);
    if (ChecksState(StateChecks::kAtNotify)) CheckState("OnFinish", -1, kEndOfStream, nullptr);
  }
  FlushOutputs();
  CloseOutputs(f == kEndOfStream ? kEndOfStream : f - 1);
}

void Instance::FreeEpochStatesBefore(Epoch f) {
  // The state of epoch e lives through OnNotify(e + window - 1): free it once
  // e + window - 1 < f, i.e. e + window <= f.
  Epoch op_window = std::max<Epoch>(1, op_.op->EpochStateWindow());
  for (auto it = epoch_states_.begin(); it != epoch_states_.end();) {
    Epoch e = it->first.first;
    if (f != kEndOfStream && e > f) break;  // ordered by epoch: nothing later is done
    Epoch w = it->second.window != 0 ? it->second.window : op_window;
    if (f == kEndOfStream || f - e >= w) {
      it = epoch_states_.erase(it);
    } else {
      ++it;
    }
  }
}

void Instance::FlushOutputs() {
  for (auto& o : outputs_) o->Flush();
}

void Instance::CloseOutputs(Epoch closed) {
  if (closed_) return;
  for (size_t p = 0; p < channels_.size(); ++p) {
    for (size_t d = 0; d < channels_[p].size(); ++d) {
      channels_[p][d].queue.push_back(Outgoing{false, closed, AnyEnvelope()});
      Drain(static_cast<int>(p), static_cast<int>(d));
    }
  }
  if (closed == kEndOfStream) closed_ = true;
}

void Instance::Emit(int port, int dest, AnyEnvelope&& batch) {
  channels_[port][dest].queue.push_back(Outgoing{true, 0, std::move(batch)});
  Drain(port, dest);
}

void Instance::Drain(int port, int dest) {
  Channel& c = channels_[port][dest];
  Address to{out_dest_stage_[port], dest};
  while (!c.queue.empty()) {
    Outgoing& o = c.queue.front();
    if (o.is_batch) {
      if (options_.credits != 0) {
        if (c.credits == 0) break;
        --c.credits;
        ++c.outstanding;
        internal::RaiseTo(internal::g_shim_counters.peak_in_flight, c.outstanding);
      }
      internal::AddTo(internal::g_shim_counters.batches_sent);
      o.batch.Transfer();  // the one core transfer of this handoff (typestate, checked mode)
      transport_.SendBatch(to, out_dest_port_[port], std::move(o.batch));
    } else {
      transport_.SendPunctuation(to, out_dest_port_[port], o.epoch);
    }
    c.queue.pop_front();
  }
  // blocked_channels_ counts channels with a non-empty queue.
  bool now_blocked = !c.queue.empty();
  if (now_blocked && !c.counted_blocked) {
    c.counted_blocked = true;
    ++blocked_channels_;
  } else if (!now_blocked && c.counted_blocked) {
    c.counted_blocked = false;
    --blocked_channels_;
  }
}

void Instance::MaybeFinish() {
  if (finished_ || !closed_ || Blocked()) return;
  finished_ = true;
  transport_.Finished(report_);
}

}  // namespace broom::lifecycle
