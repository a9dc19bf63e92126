// Copyright Broom authors.
//
// operator.h: the operator API, in the manner of Naiad and Timely Dataflow.
//
//   OperatorBase     the callbacks an engine calls: OnRecvAny (a batch arrived on an input
//                    port), OnNotify(t) (no more input at times <= t can arrive), OnFinish,
//                    and Produce for sources.
//   Unary<In>        one input port: OnRecv(Envelope<In>&, Context&).
//   Binary<In1,In2>  two input ports: OnRecv1 / OnRecv2.
//   Source           no input ports: Produce(t, ctx) is called until it reports epoch t done.
//   Context          what a callback may do: ctx.output<R>(port).Give(t, record) or .Send(batch),
//                    NotifyAt(t), EpochState<S>(t), state_resource(), Report(key, value).
//   Output<R>        per output port: builds batches in fresh message arenas and hands them to
//                    the engine, partitioned by the edge (pipeline or Exchange(key)).
//
// Memory (see docs/lifecycle.md for the full mapping):
//   - The operator object is constructed in its own operator-state arena (an ActorRegion under
//     the "regions" policy) with that arena open, so members using broom::Allocator<T> (default
//     constructed) or built with broom::CurrentResource() live there until the operator stops.
//   - Every callback runs with the thread's scratch open (a TemporaryRegion scope under
//     "regions"): std::pmr containers built with CurrentResource() and broom::New<T> inside a
//     callback are scratch, freed when the callback returns. Never keep them.
//   - The input batch is owned by the callee for the callback. It may be forwarded (Send, by
//     move, zero copy on pipeline edges) or kept by moving the envelope into operator state;
//     otherwise it is freed in bulk when the callback returns.
//   - EpochState<S>(t) builds S in a per-timestamp arena (a transferable region) on first use
//     and calls NotifyAt(t); the arena is freed after OnNotify(t), or, for an operator whose
//     EpochStateWindow() is w (or a state type with S::kEpochWindow = w), after
//     OnNotify(t + w - 1).
//   - Outputs are timestamped: Give(t, r) and Send(batch) REQUIRE t >= the time of the current
//     callback (the batch's epoch, or the notified t), since punctuation for earlier times may
//     already have gone downstream (a downstream EpochState/NotifyAt would then be fatal).
//   - Records given to an output are copied into the output batch's arena (allocator-aware
//     records, i.e. with a pmr allocator_type, are cloned member by member), so the outgoing
//     batch is self-contained.
//
// Threading: an engine calls every callback of one operator instance on one thread at a time
// (in CAF: the scheduler thread that runs the actor for that message, which may differ from
// one message to the next). Operators must not keep thread-local state. Context and Output are
// owner-thread only and valid only inside callbacks.
#ifndef BROOM_LIFECYCLE_OPERATOR_H_
#define BROOM_LIFECYCLE_OPERATOR_H_

#include <cstdint>
#include <map>
#include <memory>
#include <memory_resource>
#include <string>
#include <typeindex>
#include <typeinfo>
#include <utility>
#include <vector>

#include "broom/lifecycle/envelope.h"

namespace broom::lifecycle {

class Context;

class OperatorBase {
 public:
  virtual ~OperatorBase() = default;
  // A batch arrived on input `port`. `batch` is owned by the callee for the callback (Unary and
  // Binary move it into the typed Envelope their OnRecv sees, and back if OnRecv neither
  // forwarded nor kept it); whatever is left in `batch` when this returns the engine frees,
  // after the state check of checked mode.
  virtual void OnRecvAny(int port, AnyEnvelope& batch, Context& ctx) = 0;
  // All inputs are complete for every time <= t (after NotifyAt(t) or EpochState(t)).
  virtual void OnNotify(Epoch /*t*/, Context& /*ctx*/) {}
  // Every input has closed for good; the last chance to emit. Per-timestamp state is gone.
  virtual void OnFinish(Context& /*ctx*/) {}
  // Per-timestamp state of epoch t is freed after OnNotify(t + window - 1).
  virtual Epoch EpochStateWindow() const { return 1; }

  // Sources only (Source<> overrides these).
  virtual bool is_source() const { return false; }
  virtual Epoch num_epochs() const { return 0; }
  virtual bool ProduceAny(Epoch /*t*/, Context& /*ctx*/) { return true; }
};

template <class In>
class Unary : public OperatorBase {
 public:
  virtual void OnRecv(Envelope<In>& batch, Context& ctx) = 0;

 private:
  void OnRecvAny(int, AnyEnvelope& batch, Context& ctx) final {
    Envelope<In> typed(std::move(batch));  // fatal if the batch does not hold In records
    OnRecv(typed, ctx);
    if (typed) batch = std::move(typed).Erase();  // not forwarded or kept: the engine frees it
  }
};

template <class In1, class In2>
class Binary : public OperatorBase {
 public:
  virtual void OnRecv1(Envelope<In1>& batch, Context& ctx) = 0;
  virtual void OnRecv2(Envelope<In2>& batch, Context& ctx) = 0;

 private:
  void OnRecvAny(int port, AnyEnvelope& batch, Context& ctx) final {
    if (port == 0) {
      Envelope<In1> typed(std::move(batch));
      OnRecv1(typed, ctx);
      if (typed) batch = std::move(typed).Erase();
    } else {
      Envelope<In2> typed(std::move(batch));
      OnRecv2(typed, ctx);
      if (typed) batch = std::move(typed).Erase();
    }
  }
};

// A source: the engine calls Produce(t, ctx) for t = 0, 1, ... until it returns true (epoch t
// is complete), then closes t downstream. Each call should emit about one batch per output
// destination, so flow control can interleave.
class Source : public OperatorBase {
 public:
  explicit Source(Epoch epochs) : epochs_(epochs) {}
  virtual bool Produce(Epoch t, Context& ctx) = 0;

 private:
  void OnRecvAny(int, AnyEnvelope&, Context&) final {}
  bool is_source() const final { return true; }
  Epoch num_epochs() const final { return epochs_; }
  bool ProduceAny(Epoch t, Context& ctx) final { return Produce(t, ctx); }
  Epoch epochs_;
};

// Receives flushed batches from outputs; implemented by the engine-neutral Instance.
class Emitter {
 public:
  virtual void Emit(int port, int dest, AnyEnvelope&& batch) = 0;

 protected:
  ~Emitter() = default;
};

class OutputBase {
 public:
  OutputBase(Emitter& emitter, MemoryPolicy& policy, int port, int self, int dests,
             size_t batch_size)
      : emitter_(emitter),
        policy_(policy),
        port_(port),
        self_(self),
        dests_(dests),
        batch_size_(batch_size) {}
  virtual ~OutputBase() = default;
  // Hands every partial batch to the engine.
  virtual void Flush() = 0;
  virtual const BatchOps& ops() const = 0;

 protected:
  Emitter& emitter_;
  MemoryPolicy& policy_;
  int port_;
  int self_;   // this instance's index (the pipeline destination)
  int dests_;  // instances of the downstream stage
  size_t batch_size_;
};

inline uint64_t MixHash(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

template <class R>
class Output final : public OutputBase {
 public:
  using KeyFn = uint64_t (*)(const R&);
  // key == null: pipeline edge (everything goes to the same instance index downstream).
  Output(Emitter& emitter, MemoryPolicy& policy, int port, int self, int dests, size_t batch_size,
         KeyFn key)
      : OutputBase(emitter, policy, port, self, dests, batch_size), key_(key), open_(dests) {}

  // Copies `r` into the open batch for (t, destination), flushing it when full.
  template <class Rec>
  void Give(Epoch t, Rec&& r) {
    const int d = Route(r);
    GiveTo(t, std::forward<Rec>(r), d);
  }
  // Like Give(t, r), then calls fill(record) on the record where it now lives in the open batch,
  // before the batch can be flushed: members that allocate (strings) are built directly in the
  // batch's arena instead of in a temporary that is copied. `fill` must not change the record's
  // routing key.
  template <class Fill>
  void Give(Epoch t, R&& r, Fill&& fill) {
    int d = Route(r);
    std::pmr::vector<R>& records = Open(t, d);
    records.push_back(std::move(r));
    fill(records.back());
    if (records.size() >= batch_size_) FlushOne(d);
  }
  // Sends a whole batch. The envelope moves as is (no copy; to an instance in another process
  // its region ships by address) on a pipeline edge, to a one-instance stage, and on an
  // exchange edge when every record routes to one destination (a batch already partitioned
  // by the key, such as one an exchange delivered, sent on to fewer instances or to another
  // key of the same partition). Otherwise its records are partitioned into the open batches
  // (copied), and it is freed; an empty batch on an exchange edge is freed. Either way what
  // was given before to a destination arrives there first.
  void Send(Envelope<R>&& batch) {
    int d = key_ == nullptr ? self_ : 0;
    if (key_ != nullptr && dests_ != 1) {
      const std::pmr::vector<R>& records = batch.records();
      size_t same = 0;  // the leading records that route to d
      if (!records.empty()) {
        d = Route(records[0]);
        same = 1;
        while (same < records.size() && Route(records[same]) == d) ++same;
      }
      if (same == 0 || same < records.size()) {
        const Epoch t = batch->epoch;
        for (size_t i = 0; i < same; ++i) GiveTo(t, records[i], d);
        for (size_t i = same; i < records.size(); ++i) Give(t, records[i]);
        batch.Reset();
        return;
      }
    }
    FlushOne(d);  // keep order within the destination
    emitter_.Emit(port_, d, std::move(batch).Erase());
  }
  // A fresh, empty batch in a new message arena (for building a batch in place and Send-ing it).
  Envelope<R> NewBatch(Epoch t) { return Envelope<R>::Create(policy_, t, batch_size_); }

  void Flush() override {
    for (int d = 0; d < dests_; ++d) FlushOne(d);
  }
  const BatchOps& ops() const override { return BatchOpsFor<R>(); }

 private:
  template <class Rec>
  void GiveTo(Epoch t, Rec&& r, int d) {
    std::pmr::vector<R>& records = Open(t, d);
    records.push_back(std::forward<Rec>(r));
    if (records.size() >= batch_size_) FlushOne(d);
  }
  int Route(const R& r) const {
    if (key_ == nullptr) return self_;
    return static_cast<int>(MixHash(key_(r)) % static_cast<uint64_t>(dests_));
  }
  // The records of the open batch for (t, d), opening one if needed. The fast path (a batch of
  // epoch t is open) is a load and a compare; OpenSlow flushes and creates.
  std::pmr::vector<R>& Open(Epoch t, int d) {
    Envelope<R>& b = open_[d];
    if (BROOM_LIKELY(b && b->epoch == t)) return b.records();
    return OpenSlow(t, d);
  }
  BROOM_NOINLINE std::pmr::vector<R>& OpenSlow(Epoch t, int d) {
    Envelope<R>& b = open_[d];
    if (b) FlushOne(d);  // another epoch's batch
    if (!b) b = Envelope<R>::Create(policy_, t, batch_size_);
    return b.records();
  }
  void FlushOne(int d) {
    Envelope<R>& b = open_[d];
    if (!b) return;
    if (b.records().empty()) {
      b.Reset();
      return;
    }
    emitter_.Emit(port_, d, std::move(b).Erase());
  }

  KeyFn key_;
  std::vector<Envelope<R>> open_;  // per destination; empty when nothing is pending
};

class Context {
 public:
  int instance() const { return instance_; }
  int instances() const { return instances_; }
  MemoryPolicy& policy() const { return *policy_; }
  // The operator-state arena's resource (an ActorRegion under "regions").
  std::pmr::memory_resource* state_resource() const { return state_resource_; }

  // The output for `port`. REQUIRES: the graph declared port with record type R (fatal
  // otherwise).
  template <class R>
  Output<R>& output(int port) {
    OutputBase* o =
        port >= 0 && static_cast<size_t>(port) < outputs_.size() ? outputs_[port].get() : nullptr;
    if (BROOM_UNLIKELY(o == nullptr || &o->ops() != &BatchOpsFor<R>())) {
      DieBadOutput(port, BatchOpsFor<R>().name);
    }
    return static_cast<Output<R>&>(*o);
  }

  // Requests OnNotify(t). REQUIRES: t is not yet complete (fatal otherwise).
  void NotifyAt(Epoch t);

  // The per-timestamp state of type S for epoch t, created on first use (in a fresh arena, with
  // NotifyAt(t)) and freed after OnNotify(t + w - 1), where w is S::kEpochWindow if S declares
  // one (e.g. 1 for data needed only until OnNotify(t)) and else EpochStateWindow(). An operator
  // may keep states of several types per epoch, each in its own arena with its own lifetime.
  template <class S, class... Args>
  S& EpochState(Epoch t, Args&&... args) {
    if (S* s = FindEpochState<S>(t)) return *s;
    NotifyAt(t);
    OwnedState st = OwnedState::Make<S>(*policy_, ArenaUse::kEpochState, "epoch-state",
                                        std::forward<Args>(args)...);
    S* s = static_cast<S*>(st.get());
    Epoch window = 0;  // 0: the operator's EpochStateWindow()
    if constexpr (requires { S::kEpochWindow; }) window = S::kEpochWindow;
    epoch_states_.emplace(EpochKey{t, typeid(S)}, EpochSlot{std::move(st), window});
    return *s;
  }
  // The state of type S for epoch t if it exists (and has not been freed), else null.
  template <class S>
  S* FindEpochState(Epoch t) {
    auto it = epoch_states_.find(EpochKey{t, typeid(S)});
    return it == epoch_states_.end() ? nullptr : static_cast<S*>(it->second.state.get());
  }

  // Adds `value` (wrapping) to the job-wide total `key`, summed over all instances.
  void Report(const std::string& key, uint64_t value) { report_[key] += value; }

 protected:
  Context() = default;
  ~Context() = default;
  [[noreturn]] void DieBadOutput(int port, const char* type) const;

  using EpochKey = std::pair<Epoch, std::type_index>;  // ordered by epoch first
  struct EpochSlot {
    OwnedState state;
    Epoch window;  // 0: the operator's EpochStateWindow()
  };
  MemoryPolicy* policy_ = nullptr;
  std::pmr::memory_resource* state_resource_ = nullptr;
  int instance_ = 0;
  int instances_ = 1;
  Epoch frontier_ = 0;  // every epoch < frontier_ is complete on all inputs
  std::vector<std::unique_ptr<OutputBase>> outputs_;
  std::map<EpochKey, EpochSlot> epoch_states_;
  std::vector<Epoch> notify_;  // requested, sorted ascending, unique
  std::map<std::string, uint64_t> report_;
};

}  // namespace broom::lifecycle

#endif  // BROOM_LIFECYCLE_OPERATOR_H_
