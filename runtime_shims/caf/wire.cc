// Copyright Broom authors.
//
// Serialization of BatchHandle for batches that cross processes (see messages.h).
#include <caf/make_message.hpp>
#include <optional>

#include "runtime_shims/caf/messages.h"

namespace broom::caf_shim {

using lifecycle::AnyEnvelope;
using lifecycle::ArenaScope;
using lifecycle::BatchOps;
namespace counters = lifecycle::internal;

namespace {

// How the records follow the header on the wire.
enum WirePath : uint8_t {
  kBytes = 0,    // one byte sequence: raw records, or the records' codec output
  kAddress = 1,  // the sender's slice, the shipment's manifest, then its payload (ship.h)
};

caf::error WriteShipment(caf::serializer& f, BatchHandle& h) {
  Shipment& s = *h.shipment();
  WireHeader hdr = h.header();
  uint8_t path = kAddress;
  uint32_t from = h.from();
  std::string manifest = s.manifest();
  if (auto err = f(hdr.type, hdr.epoch, hdr.count, path, from, manifest)) return err;
  size_t n = s.payload_bytes();
  if (auto err = f.begin_sequence(n)) return err;
  for (const Shipment::Range& r : s.payload()) {
    if (r.size == 0) continue;
    if (auto err = f.apply_raw(r.size, const_cast<void*>(r.data))) return err;
  }
  if (auto err = f.end_sequence()) return err;
  s.Sent();
  counters::AddTo(counters::g_shim_counters.remote_batches_out);
  counters::AddTo(counters::g_shim_counters.remote_bytes_out, s.payload_bytes() + manifest.size());
  return caf::none;
}

// Installs a batch shipped by address and adopts it as `env`.
caf::error ReadShipment(caf::deserializer& f, const WireHeader& hdr, const BatchOps& ops,
                        lifecycle::MemoryPolicy& policy, AnyEnvelope& env) {
  uint32_t from = 0;
  std::string manifest;
  if (auto err = f(from, manifest)) return err;
  // "a batch of <type> from process <from> <what>" (the receipt, if open, is undone on return).
  auto refuse = [&](const std::string& what) {
    return caf::make_error(caf::sec::invalid_argument, "a batch of " + hdr.type + " from process " +
                                                           std::to_string(from) + " " + what);
  };
  std::string error;
  std::optional<Receipt> receipt = Receipt::Open(manifest, from, &error);
  if (!receipt) return refuse("cannot be installed: " + error);
  size_t n = 0;
  if (auto err = f.begin_sequence(n)) return err;
  if (n != receipt->payload_bytes()) {
    return refuse("brings " + std::to_string(n) + " payload bytes, its manifest says " +
                  std::to_string(receipt->payload_bytes()));
  }
  for (const Receipt::Range& r : receipt->payload()) {
    if (r.size == 0) continue;
    if (auto err = f.apply_raw(r.size, r.data)) return err;
  }
  if (auto err = f.end_sequence()) return err;
  std::optional<TransferableRegion> region = receipt->Finish(&error);
  if (!region) return refuse("is corrupt: " + error);
  void* root = reinterpret_cast<void*>(receipt->root());
  if (RegionOf(root) != &region->region()) return refuse("has its root outside its region");
  env = AnyEnvelope::Adopt(policy, ops, std::move(*region), root);
  counters::AddTo(counters::g_shim_counters.remote_bytes_in, n + manifest.size());
  return caf::none;
}

}  // namespace

caf::error inspect(caf::serializer& f, BatchHandle& h) {
  if (!h) return caf::make_error(caf::sec::invalid_argument, "serializing an empty BatchHandle");
  if (h.shipment() != nullptr) return WriteShipment(f, h);
  const AnyEnvelope& b = h.batch();
  const BatchOps* ops = b.ops();
  if (ops->encode == nullptr) {
    return caf::make_error(caf::sec::invalid_argument,
                           std::string("record type cannot cross processes as bytes: ") +
                               ops->name +
                               " has no codec (it travels by address, under policy regions)");
  }
  WireHeader hdr = HeaderOf(b);
  uint8_t path = kBytes;
  if (auto err = f(hdr.type, hdr.epoch, hdr.count, path)) return err;
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
  uint8_t path = kBytes;
  if (auto err = f(hdr.type, hdr.epoch, hdr.count, path)) return err;
  const BatchOps* ops = lifecycle::FindBatchOps(hdr.type);
  if (ops == nullptr) {
    return caf::make_error(caf::sec::unknown_type,
                           "batch of unknown record type " + hdr.type +
                               " (not used by any graph built in this process)");
  }
  lifecycle::MemoryPolicy* policy = ReceivePolicy();
  if (policy == nullptr) {
    return caf::make_error(caf::sec::runtime_error, "batch received before any job started");
  }
  AnyEnvelope env;
  if (path == kAddress) {
    if (auto err = ReadShipment(f, hdr, *ops, *policy, env)) return err;
    counters::AddTo(counters::g_shim_counters.remote_batches_in);
    env.Transfer();  // the middleman thread hands the installed batch to the receiving actor
    h = BatchHandle(std::move(env));
    return caf::none;
  }
  if (path != kBytes || ops->decode == nullptr) {
    return caf::make_error(caf::sec::invalid_argument,
                           "batch of " + hdr.type + " arrived as bytes, but the type has no codec");
  }
  size_t n = 0;
  if (auto err = f.begin_sequence(n)) return err;
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
