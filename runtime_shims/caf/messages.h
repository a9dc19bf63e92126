// Copyright Broom authors.
//
// messages.h (internal to the CAF shim; includes CAF, so only the shim's .cc files include it):
// the CAF message types of the lifecycle protocol (see lifecycle/instance.h) and their
// serialization, registered under the same names in every process of a job.
//
//   WireBatch    batch(to_port, from, handle)      the batch travels in a BatchHandle
//   WirePunct    punctuation(to_port, from, epoch)
//   WireCredit   credit(out_port, from, n)
//   WireSetup    the actor of every instance (stage-major) and the driver; starts an instance
//   WireDone     an instance finished: its stage, index and Context::Report totals
//
// A WireBatch that crosses processes is written as: record type name, epoch, count, then one
// byte sequence (begin_sequence + apply_raw: one copy per side). On the receiver it is rebuilt
// into a fresh message arena of ReceivePolicy(): raw records are read straight into the
// batch's vector; coded records are decoded from a temporary buffer with BroomDecode.
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

namespace broom::caf_shim {

using produce_atom = caf::atom_constant<caf::atom("bproduce")>;
using stats_atom = caf::atom_constant<caf::atom("bstats")>;

struct WireBatch {
  int32_t to_port = 0;
  int32_t from = 0;
  BatchHandle batch;
};
struct WirePunct {
  int32_t to_port = 0;
  int32_t from = 0;
  uint64_t epoch = 0;
};
struct WireCredit {
  int32_t out_port = 0;
  int32_t from = 0;
  uint32_t n = 0;
};
struct WireSetup {
  std::vector<caf::actor> actors;  // stage-major: all instances of stage 0, then stage 1, ...
  caf::actor driver;
};
struct WireDone {
  int32_t stage = 0;
  int32_t index = 0;
  std::vector<std::pair<std::string, uint64_t>> report;
};

caf::error inspect(caf::serializer& f, BatchHandle& h);
caf::error inspect(caf::deserializer& f, BatchHandle& h);
// Any other inspector (CAF's to_string): a summary.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, BatchHandle& h) {
  std::string summary = h ? HeaderOf(h.batch()).type : std::string("empty");
  return f(caf::meta::type_name("BatchHandle"), summary);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, WireBatch& x) {
  return f(caf::meta::type_name("WireBatch"), x.to_port, x.from, x.batch);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, WirePunct& x) {
  return f(caf::meta::type_name("WirePunct"), x.to_port, x.from, x.epoch);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, WireCredit& x) {
  return f(caf::meta::type_name("WireCredit"), x.out_port, x.from, x.n);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, WireSetup& x) {
  return f(caf::meta::type_name("WireSetup"), x.actors, x.driver);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, WireDone& x) {
  return f(caf::meta::type_name("WireDone"), x.stage, x.index, x.report);
}

}  // namespace broom::caf_shim

#endif  // BROOM_RUNTIME_SHIMS_CAF_MESSAGES_H_
