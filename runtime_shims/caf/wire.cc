// Copyright Broom authors.
//
// Serialization of BatchHandle for batches that cross processes (see messages.h).
#include <caf/make_message.hpp>

#include "runtime_shims/caf/messages.h"

namespace broom::caf_shim {

using lifecycle::AnyEnvelope;
using lifecycle::ArenaScope;
using lifecycle::BatchOps;
namespace counters = lifecycle::internal;

caf::error inspect(caf::serializer& f, BatchHandle& h) {
  if (!h) return caf::make_error(caf::sec::invalid_argument, "serializing an empty BatchHandle");
  const AnyEnvelope& b = h.batch();
  const BatchOps* ops = b.ops();
  if (ops->encode == nullptr) {
    return caf::make_error(caf::sec::invalid_argument,
                           std::string("record type cannot cross processes: ") + ops->name);
  }
  WireHeader hdr = HeaderOf(b);
  if (auto err = f(hdr.type, hdr.epoch, hdr.count)) return err;
  std::vector<char> bytes;
  const void* data;
  size_t n;
  if (ops->raw_resize != nullptr) {  // raw records: straight from the region, no staging copy
    data = b.raw_data();
    n = hdr.count * ops->record_size;
  } else {
    b.EncodeRecords(bytes);
    data = bytes.data();
    n = bytes.size();
  }
  if (auto err = f.begin_sequence(n)) return err;
  if (n > 0) {
    if (auto err = f.apply_raw(n, const_cast<void*>(data))) return err;
  }
  counters::AddTo(counters::g_shim_counters.remote_batches_out);
  counters::AddTo(counters::g_shim_counters.remote_bytes_out, n);
  return f.end_sequence();
}

caf::error inspect(caf::deserializer& f, BatchHandle& h) {
  WireHeader hdr;
  if (auto err = f(hdr.type, hdr.epoch, hdr.count)) return err;
  const BatchOps* ops = lifecycle::FindBatchOps(hdr.type);
  if (ops == nullptr || ops->decode == nullptr) {
    return caf::make_error(caf::sec::unknown_type,
                           "batch of unknown record type " + hdr.type +
                               " (not used by any graph built in this process)");
  }
  lifecycle::MemoryPolicy* policy = ReceivePolicy();
  if (policy == nullptr) {
    return caf::make_error(caf::sec::runtime_error, "batch received before any job started");
  }
  size_t n = 0;
  if (auto err = f.begin_sequence(n)) return err;
  AnyEnvelope env;
  if (ops->raw_resize != nullptr) {
    if (hdr.count > SIZE_MAX / ops->record_size || n != hdr.count * ops->record_size) {
      return caf::make_error(caf::sec::invalid_argument, "batch size does not match its header");
    }
    // Rebuild in a fresh message arena and read the bytes straight into the records.
    env = AnyEnvelope::Create(*policy, *ops, hdr.epoch, 0);
    void* dst;
    {
      ArenaScope open(env.arena());
      dst = ops->raw_resize(env.root(), hdr.count);
    }
    if (n > 0) {
      if (auto err = f.apply_raw(n, dst)) return err;
    }
  } else {
    std::vector<char> bytes(n);
    if (n > 0) {
      if (auto err = f.apply_raw(n, bytes.data())) return err;
    }
    lifecycle::ByteReader in(bytes.data(), bytes.size());
    env = AnyEnvelope::Decode(*policy, *ops, hdr.epoch, hdr.count, in);
    if (!env) return caf::make_error(caf::sec::invalid_argument, "malformed batch of " + hdr.type);
  }
  counters::AddTo(counters::g_shim_counters.remote_batches_in);
  counters::AddTo(counters::g_shim_counters.remote_bytes_in, n);
  env.Transfer();  // the middleman thread hands the rebuilt batch to the receiving actor
  h = BatchHandle(std::move(env));
  return f.end_sequence();
}

}  // namespace broom::caf_shim
