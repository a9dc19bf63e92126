// Copyright Broom authors.
//
// ship_loopback: batches of records with pmr strings (examples::Document) sent from process 0 to
// process 1 of a job over 127.0.0.1, two ways, side by side:
//   encode   today's path: BroomEncode each record into flat bytes, send, BroomDecode into a
//            fresh region on the receiver (what the CAF shim does for a CodedRecord batch);
//   ship     by address (broom/ship.h, copy mode): send the batch's region as its blocks, which
//            the receiver installs at the same addresses (no per-record code at all).
// Batches are built before timing; a round times sending `batches` batches until the receiver
// has acknowledged the last (the receiver frees each batch; for `ship` its acknowledgement
// carries the loan notes that return the blocks). Rounds alternate the order of the two paths.
// Prints each round and the medians, as MB/s of record data (8+8+4+4 bytes plus the title per
// record, the same count for both paths) and records/s, and the ratio ship / encode.
//
//   ship_loopback [--batches N] [--records R] [--rounds K] [--tags T] [--only ship|encode]
//     defaults 400, 256, 9, 0. --tags T > 0: records carry T short pmr strings in a pmr vector
//     besides their title (Tagged), so decoding allocates T + 2 objects per record; --only runs
//     one path, for profiling.
//   ship_loopback --peer PORT TAGS   the receiver, started by the above
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "broom/message.h"
#include "broom/ship.h"
#include "broom/transferable_region.h"
#include "runtime_shims/examples/records.h"
#include "tests/ship/wire.h"  // the loopback framing shared with tests/ship

namespace {

using broom::examples::Document;
namespace wire = broom::testing;

// A document with `tags` short pmr strings in a pmr vector (--tags N): a record whose decoding
// allocates one object per tag.
struct Tagged {
  using allocator_type = std::pmr::polymorphic_allocator<std::byte>;
  explicit Tagged(const allocator_type& a) : title(a), tags(a) {}
  Tagged(const Tagged& o, const allocator_type& a) : id(o.id), title(o.title, a), tags(o.tags, a) {}
  Tagged(Tagged&& o, const allocator_type& a)
      : id(o.id), title(std::move(o.title), a), tags(std::move(o.tags), a) {}
  uint64_t id = 0;
  std::pmr::string title;
  std::pmr::vector<std::pmr::string> tags;

  void BroomEncode(broom::lifecycle::ByteWriter& w) const {
    w.Put(id);
    w.PutString(title);
    w.Put<uint32_t>(static_cast<uint32_t>(tags.size()));
    for (const auto& t : tags) w.PutString(t);
  }
  static Tagged BroomDecode(broom::lifecycle::ByteReader& r, std::pmr::memory_resource* m) {
    Tagged d{allocator_type(m)};
    d.id = r.Get<uint64_t>();
    d.title.assign(r.GetString());
    const uint32_t n = r.Get<uint32_t>();
    d.tags.reserve(n);
    for (uint32_t i = 0; i < n; ++i) d.tags.emplace_back(r.GetString());
    return d;
  }
};

// Fills record `id` of a batch; returns its data bytes (fields and characters).
size_t Fill(std::pmr::vector<Document>& docs, uint64_t id, size_t) {
  broom::examples::DataSpec spec;
  Document& d = docs.emplace_back(broom::examples::MakeDocument(spec, 0, id));
  d.title.assign(broom::examples::TitleOf(spec, d.id));
  return 24 + d.title.size();
}
size_t Fill(std::pmr::vector<Tagged>& docs, uint64_t id, size_t tags) {
  broom::examples::DataSpec spec;
  Tagged& d = docs.emplace_back();
  d.id = id;
  d.title.assign(broom::examples::TitleOf(spec, id));
  size_t bytes = 8 + d.title.size();
  d.tags.reserve(tags);
  for (size_t t = 0; t < tags; ++t) {
    d.tags.emplace_back(broom::examples::TitleOf(spec, id * 31 + t).substr(0, 16 + (id + t) % 17));
    bytes += d.tags.back().size();
  }
  return bytes;
}

uint64_t TouchOne(const Document& d) { return d.id + d.title.size(); }
uint64_t TouchOne(const Tagged& d) {
  uint64_t sum = d.id + d.title.size();
  for (const auto& t : d.tags) sum += t.size() + static_cast<uint8_t>(t[0]);
  return sum;
}

template <class Rec>
struct Batch {
  using allocator_type = std::pmr::polymorphic_allocator<std::byte>;
  explicit Batch(const allocator_type& a) : docs(a) {}
  std::pmr::vector<Rec> docs;
};

template <class Rec>
uint64_t Touch(const Batch<Rec>& b) {
  uint64_t sum = 0;
  for (const Rec& d : b.docs) sum += TouchOne(d) + static_cast<uint8_t>(d.title[0]);
  return sum;
}

template <class Rec>
int Peer(uint16_t port) {
  int fd = wire::Connect(port);
  if (fd < 0) return 1;
  std::string error;
  std::vector<char> bytes;
  uint64_t sink = 0;
  for (;;) {
    const char tag = wire::ReadTag(fd);
    if (tag == 'E') {
      uint64_t n = 0;
      if (!wire::ReadAll(fd, &n, sizeof(n))) return 1;
      bytes.resize(n);
      if (!wire::ReadAll(fd, bytes.data(), n)) return 1;
      auto m = broom::Message<Batch<Rec>>::Create();
      {
        auto open = m.Open();
        broom::lifecycle::ByteReader r(bytes.data(), bytes.size());
        const uint32_t count = r.Get<uint32_t>();
        m->docs.reserve(count);
        for (uint32_t i = 0; i < count; ++i) {
          m->docs.push_back(Rec::BroomDecode(r, m.region().region().resource()));
        }
      }
      sink += Touch(*m);
    } else if (tag == 'S') {
      auto m = wire::ReceiveRegion<Batch<Rec>>(fd, 0, &error);
      if (!m) {
        std::fprintf(stderr, "ship_loopback peer: %s\n", error.c_str());
        return 1;
      }
      sink += Touch(**m);
    } else {
      std::printf("%llu\n", static_cast<unsigned long long>(sink));  // keeps Touch alive
      return tag == 'Q' ? 0 : 1;
    }
    if (!wire::SendNotes(fd, 0)) return 1;  // the acknowledgement (empty after 'E')
  }
}

template <class Rec>
std::vector<broom::Message<Batch<Rec>>> Build(size_t batches, size_t records, size_t tags,
                                              uint64_t* data_bytes) {
  std::vector<broom::Message<Batch<Rec>>> out;
  *data_bytes = 0;
  for (size_t b = 0; b < batches; ++b) {
    auto m = broom::Message<Batch<Rec>>::Create();
    {
      auto open = m.Open();
      m->docs.reserve(records);
      for (size_t j = 0; j < records; ++j) *data_bytes += Fill(m->docs, b * records + j, tags);
    }
    out.push_back(std::move(m));
  }
  return out;
}

// Sends every batch (tag 'E' or 'S') and waits for the last acknowledgement; seconds taken.
template <class Rec>
double Round(int fd, char tag, std::vector<broom::Message<Batch<Rec>>>& batches) {
  std::string error;
  std::vector<char> bytes;
  size_t acked = 0;
  auto drain = [&](bool wait) {
    while (acked < batches.size()) {
      pollfd p{fd, POLLIN, 0};
      if (!wait && poll(&p, 1, 0) != 1) return;
      if (wire::ReadTag(fd) != 'N' || wire::ReceiveNotes(fd) < 0) std::exit(1);
      ++acked;
    }
  };
  const auto start = std::chrono::steady_clock::now();
  for (broom::Message<Batch<Rec>>& m : batches) {
    if (tag == 'E') {
      bytes.clear();
      broom::lifecycle::ByteWriter w(bytes);
      w.Put<uint32_t>(static_cast<uint32_t>(m->docs.size()));
      for (const Rec& d : m->docs) d.BroomEncode(w);
      uint64_t n = bytes.size();
      char t = tag;
      if (!wire::WriteV(fd, {{&t, 1}, {&n, sizeof(n)}, {bytes.data(), n}})) std::exit(1);
    } else if (!wire::SendRegion(fd, 'S', m, 1, &error)) {
      std::fprintf(stderr, "ship_loopback: %s\n", error.c_str());
      std::exit(1);
    }
    drain(false);
  }
  drain(true);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Params {
  size_t batches = 400, records = 256, rounds = 9, tags = 0;
  std::string only;  // --only ship|encode: one path (for profiling)
};

template <class Rec>
int Drive(int fd, const Params& p) {
  std::vector<double> t_encode, t_ship;
  uint64_t data_bytes = 0;
  for (size_t r = 0; r < p.rounds; ++r) {
    for (int k = 0; k < 2; ++k) {
      const bool ship = (k == 0) == (r % 2 == 0);
      if (!p.only.empty() && p.only != (ship ? "ship" : "encode")) continue;
      auto set = Build<Rec>(p.batches, p.records, p.tags, &data_bytes);
      const uint64_t sent = broom::GetShipStats().payload_bytes_sent;
      const double s = Round<Rec>(fd, ship ? 'S' : 'E', set);
      (ship ? t_ship : t_encode).push_back(s);
      std::printf("round %zu %-6s %8.1f MB/s %10.0f records/s", r, ship ? "ship" : "encode",
                  data_bytes / s / 1e6, p.batches * p.records / s);
      if (ship) {
        std::printf(" (%.1f MB of blocks copied)",
                    (broom::GetShipStats().payload_bytes_sent - sent) / 1e6);
      }
      std::printf("\n");
    }
  }
  if (t_encode.empty()) t_encode.push_back(0);
  if (t_ship.empty()) t_ship.push_back(0);
  const double e = Median(t_encode), s = Median(t_ship);
  const double n = static_cast<double>(p.batches * p.records);
  std::printf(
      "median encode %.1f MB/s %.0f records/s | ship %.1f MB/s %.0f records/s | "
      "ship/encode %.2fx (%zu batches of %zu records, %zu tags, %.1f MB, %zu rounds)\n",
      data_bytes / e / 1e6, n / e, data_bytes / s / 1e6, n / s, e / s, p.batches, p.records, p.tags,
      data_bytes / 1e6, p.rounds);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 3 && std::strcmp(argv[1], "--peer") == 0) {
    return std::atoi(argv[3]) > 0 ? Peer<Tagged>(std::atoi(argv[2]))
                                  : Peer<Document>(std::atoi(argv[2]));
  }
  Params p;
  for (int i = 1; i + 1 < argc; i += 2) {
    const size_t v = std::strtoull(argv[i + 1], nullptr, 10);
    if (std::strcmp(argv[i], "--batches") == 0) p.batches = v;
    if (std::strcmp(argv[i], "--records") == 0) p.records = v;
    if (std::strcmp(argv[i], "--rounds") == 0) p.rounds = v;
    if (std::strcmp(argv[i], "--tags") == 0) p.tags = v;
    if (std::strcmp(argv[i], "--only") == 0) p.only = argv[i + 1];
  }
  broom::AddressPlan plan;
  std::string error;
  if (!broom::GetAddressPlan(&plan, &error)) {
    std::fprintf(stderr, "ship_loopback: %s\n", error.c_str());
    return 1;
  }
  uint16_t port = 0;
  const int listener = wire::Listen(&port);
  const pid_t pid = fork();
  if (pid == 0) {
    setenv("BROOM_PLAN_INDEX", "1", 1);
    setenv("BROOM_PLAN_BASE_GB", std::to_string(plan.base >> 30).c_str(), 1);
    setenv("BROOM_RESERVE_GB", std::to_string(plan.slice_bytes >> 30).c_str(), 1);
    setenv("BROOM_PLAN_PROCESSES", std::to_string(plan.processes).c_str(), 1);
    execl("/proc/self/exe", argv[0], "--peer", std::to_string(port).c_str(),
          std::to_string(p.tags).c_str(), nullptr);
    _exit(127);
  }
  const int fd = wire::Accept(listener);
  if (fd < 0) return 1;
  if (p.tags > 0) {
    Drive<Tagged>(fd, p);
  } else {
    Drive<Document>(fd, p);
  }
  const char quit = 'Q';
  wire::WriteAll(fd, &quit, 1);
  waitpid(pid, nullptr, 0);
  const broom::ShipStats st = broom::GetShipStats();
  std::printf("loaned bytes at the end: %zu (0: every shipped block came back)\n", st.loaned_bytes);
  return st.loaned_bytes == 0 ? 0 : 1;
}
