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
//   ship_loopback [--batches N] [--records R] [--rounds K] [--only ship|encode]
//                 (defaults 400, 256, 9; --only runs one path, for profiling)
//   ship_loopback --peer PORT                                (the receiver; started by the above)
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

struct Batch {
  using allocator_type = std::pmr::polymorphic_allocator<std::byte>;
  explicit Batch(const allocator_type& a) : docs(a) {}
  std::pmr::vector<Document> docs;
};

uint64_t Touch(const Batch& b) {
  uint64_t sum = 0;
  for (const Document& d : b.docs) sum += d.id + d.title.size() + static_cast<uint8_t>(d.title[0]);
  return sum;
}

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
      auto m = broom::Message<Batch>::Create();
      {
        auto open = m.Open();
        broom::lifecycle::ByteReader r(bytes.data(), bytes.size());
        const uint32_t count = r.Get<uint32_t>();
        m->docs.reserve(count);
        for (uint32_t i = 0; i < count; ++i) {
          m->docs.push_back(Document::BroomDecode(r, m.region().region().resource()));
        }
      }
      sink += Touch(*m);
    } else if (tag == 'S') {
      auto m = wire::ReceiveRegion<Batch>(fd, 0, &error);
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

std::vector<broom::Message<Batch>> Build(size_t batches, size_t records, uint64_t* data_bytes) {
  broom::examples::DataSpec spec;
  std::vector<broom::Message<Batch>> out;
  *data_bytes = 0;
  for (size_t b = 0; b < batches; ++b) {
    auto m = broom::Message<Batch>::Create();
    {
      auto open = m.Open();
      m->docs.reserve(records);
      for (size_t j = 0; j < records; ++j) {
        Document& d = m->docs.emplace_back(broom::examples::MakeDocument(spec, 0, b * records + j));
        d.title.assign(broom::examples::TitleOf(spec, d.id));
        *data_bytes += 24 + d.title.size();
      }
    }
    out.push_back(std::move(m));
  }
  return out;
}

// Sends every batch (tag 'E' or 'S') and waits for the last acknowledgement; seconds taken.
double Round(int fd, char tag, std::vector<broom::Message<Batch>>& batches) {
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
  for (broom::Message<Batch>& m : batches) {
    if (tag == 'E') {
      bytes.clear();
      broom::lifecycle::ByteWriter w(bytes);
      w.Put<uint32_t>(static_cast<uint32_t>(m->docs.size()));
      for (const Document& d : m->docs) d.BroomEncode(w);
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

}  // namespace

int main(int argc, char** argv) {
  if (argc > 2 && std::strcmp(argv[1], "--peer") == 0) return Peer(std::atoi(argv[2]));
  size_t batches = 400, records = 256, rounds = 9;
  std::string only;  // --only ship|encode: one path (for profiling)
  for (int i = 1; i + 1 < argc; i += 2) {
    const size_t v = std::strtoull(argv[i + 1], nullptr, 10);
    if (std::strcmp(argv[i], "--batches") == 0) batches = v;
    if (std::strcmp(argv[i], "--records") == 0) records = v;
    if (std::strcmp(argv[i], "--rounds") == 0) rounds = v;
    if (std::strcmp(argv[i], "--only") == 0) only = argv[i + 1];
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
    execl("/proc/self/exe", argv[0], "--peer", std::to_string(port).c_str(), nullptr);
    _exit(127);
  }
  const int fd = wire::Accept(listener);
  if (fd < 0) return 1;
  std::vector<double> t_encode, t_ship;
  uint64_t data_bytes = 0;
  for (size_t r = 0; r < rounds; ++r) {
    for (int k = 0; k < 2; ++k) {
      const bool ship = (k == 0) == (r % 2 == 0);
      if (!only.empty() && only != (ship ? "ship" : "encode")) continue;
      std::vector<broom::Message<Batch>> set = Build(batches, records, &data_bytes);
      const double s = Round(fd, ship ? 'S' : 'E', set);
      (ship ? t_ship : t_encode).push_back(s);
      std::printf("round %zu %-6s %8.1f MB/s %10.0f records/s\n", r, ship ? "ship" : "encode",
                  data_bytes / s / 1e6, batches * records / s);
    }
  }
  const char quit = 'Q';
  wire::WriteAll(fd, &quit, 1);
  waitpid(pid, nullptr, 0);
  if (t_encode.empty()) t_encode.push_back(0);
  if (t_ship.empty()) t_ship.push_back(0);
  const double e = Median(t_encode), s = Median(t_ship);
  std::printf(
      "median encode %.1f MB/s %.0f records/s | ship %.1f MB/s %.0f records/s | "
      "ship/encode %.2fx (%zu batches of %zu records, %.1f MB, %zu rounds)\n",
      data_bytes / e / 1e6, batches * records / e, data_bytes / s / 1e6, batches * records / s,
      e / s, batches, records, data_bytes / 1e6, rounds);
  const broom::ShipStats st = broom::GetShipStats();
  std::printf("loaned bytes at the end: %zu (0: every shipped block came back)\n", st.loaned_bytes);
  return st.loaned_bytes == 0 ? 0 : 1;
}
