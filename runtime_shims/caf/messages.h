// Copyright Broom authors.
//
// messages.h (internal to the CAF shim; includes CAF, so only the shim's .cc files include it):
// the CAF message types of the lifecycle protocol (see lifecycle/instance.h) and their
// serialization, registered under the same names in every process of a job.
//
//   WireBatch    batch(to_port, from, handle)      the batch travels in a BatchHandle
//   WirePunct    punctuation(to_port, from, epoch, notes)
//   WireCredit   credit(out_port, from, n, notes)
//   WireSetup    the actor of every instance (stage-major), the process each runs in, the
//                machine of each process, and the driver; starts an instance
//   WireDone     an instance finished: its stage, index, Context::Report totals and notes
//
// `notes` are broom::LoanNotes for the receiving process: blocks it lent that were freed (or
// shipped on) in the sending process (ship.h, "Loan notes"); the handlers apply them. After a
// job the driver's stats request to a worker (stats_atom, notes) and its answer (counters,
// notes) carry the notes left; stop_atom ends an instance that has reported done.
//
// A WireBatch that crosses processes is written as: record type name, epoch, count, a path
// byte, then
//  - by address (records that bring no codec, policy "regions"; raw records only when the
//    slices are shared memory): the
//    sender's slice of the address plan, the shipment's manifest, and one byte sequence of the
//    blocks' used bytes (broom::Ship's payload: one copy per side, straight from the sender's
//    blocks into the receiver's installed blocks). The receiver installs the blocks at their
//    addresses (broom::Receipt) and adopts the region as the batch: no record code runs.
//  - as bytes: one byte sequence (begin_sequence + apply_raw: one copy per side), rebuilt into
//    a fresh message arena of ReceivePolicy(): raw records are read straight into the batch's
//    vector; records with a codec (record.h) are decoded with BroomDecode.
#ifndef BROOM_RUNTIME_SHIMS_CAF_MESSAGES_H_
#define BROOM_RUNTIME_SHIMS_CAF_MESSAGES_H_

#include <caf/actor.hpp>
#include <caf/atom.hpp>
#include <caf/deserializer.hpp>
#include <caf/error.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/sec.hpp>
#include <caf/serializer.hpp>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "runtime_shims/caf/batch_handle.h"

namespace broom {
// Found by argument-dependent lookup for broom::LoanNote.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, LoanNote& x) {
  return f(caf::meta::type_name("LoanNote"), x.block, x.generation, x.holder);
}
}  // namespace broom

namespace broom::caf_shim {

using produce_atom = caf::atom_constant<caf::atom("bproduce")>;
using stats_atom = caf::atom_constant<caf::atom("bstats")>;
using stop_atom = caf::atom_constant<caf::atom("bstop")>;

struct WireBatch {
  int32_t to_port = 0;
  int32_t from = 0;
  BatchHandle batch;
};
struct WirePunct {
  int32_t to_port = 0;
  int32_t from = 0;
  uint64_t epoch = 0;
  std::vector<LoanNote> notes;
};
struct WireCredit {
  int32_t out_port = 0;
  int32_t from = 0;
  uint32_t n = 0;
  std::vector<LoanNote> notes;
};
struct WireSetup {
  std::vector<caf::actor> actors;  // stage-major: all instances of stage 0, then stage 1, ...
  std::vector<int32_t> processes;  // the process (slice of the address plan) of each actor
  // By process: 0 for this machine's, another number per host of JobOptions::worker_hosts.
  // Shared memory works only between processes of one machine.
  std::vector<int32_t> machines;
  caf::actor driver;
};
struct WireDone {
  int32_t stage = 0;
  int32_t index = 0;
  std::vector<std::pair<std::string, uint64_t>> report;
  std::vector<LoanNote> notes;
};

caf::error inspect(caf::serializer& f, BatchHandle& h);
caf::error inspect(caf::deserializer& f, BatchHandle& h);
// Any other inspector (CAF's to_string): a summary.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, BatchHandle& h) {
  std::string summary = !h                        ? std::string("empty")
                        : h.shipment() != nullptr ? h.header().type + " (shipped)"
                                                  : HeaderOf(h.batch()).type;
  return f(caf::meta::type_name("BatchHandle"), summary);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, WireBatch& x) {
  return f(caf::meta::type_name("WireBatch"), x.to_port, x.from, x.batch);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, WirePunct& x) {
  return f(caf::meta::type_name("WirePunct"), x.to_port, x.from, x.epoch, x.notes);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, WireCredit& x) {
  return f(caf::meta::type_name("WireCredit"), x.out_port, x.from, x.n, x.notes);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, WireSetup& x) {
  return f(caf::meta::type_name("WireSetup"), x.actors, x.processes, x.machines, x.driver);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, WireDone& x) {
  return f(caf::meta::type_name("WireDone"), x.stage, x.index, x.report, x.notes);
}

}  // namespace broom::caf_shim

#endif  // BROOM_RUNTIME_SHIMS_CAF_MESSAGES_H_
