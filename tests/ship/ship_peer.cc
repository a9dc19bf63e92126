// Copyright Broom authors.
//
// ship_peer.cc: another process of a job, driven by tests/ship/ship_test.cc. It is linked into
// ship_test, which runs itself as the peer (`ship_test --peer MODE ...`, ShipPeerMain): every
// process of a job must run the same binary. Its address plan comes from the environment, as an
// engine's worker's does. Modes:
//   ship_peer where            prints "PLAN ok=1 base=<hex> slice=<bytes> processes=<n>
//                              index=<n> block=<hex>" (block: the first block of a fresh
//                              region) or "PLAN ok=0 error=<message>"
//   ship_peer occupy <hex>     maps a page at <hex> first (before any region), then as `where`,
//                              and then tries to ship a region: "SHIP error=<message>"
//   ship_peer echo <port>      connects to 127.0.0.1:<port> (tests/ship/wire.h) and serves
//                              frames from process 0: 'S' region: prints "GOT <digest>", grows
//                              it (Grow(seed 99, 50 nodes)) and ships it back; 'F' region:
//                              prints "GOT <digest>" and frees it; after each, an 'N' frame
//                              with the notes for process 0; 'N': applies the notes;
//                              'Q': prints "STATS loaned=<bytes> borrowed=<bytes>" and exits.
//                              'H' region: prints "HELD <n>" and keeps it (n: regions
//                              held), for the tests that kill a holder.
//                              Errors print "ERR <message>".
//                              `echo <port> shared` ships 'S' regions back in shared mode; 'P'
//                              prints "PAYLOAD sent=.. received=.. mapped_sent=..
//                              mapped_received=.. mapped_slices=.." (ShipStats).
//   ship_peer give <port> <mode>  connects, ships a graph (seed 70, 1500 nodes, 300000 big
//                              bytes) to process 0 as 'F' in <mode> (copy or shared), prints
//                              "SENT <digest>" and waits 30 s (the test kills it).
//   ship_peer shipshared       tries to ship a region to process 0 in shared mode: "SHIP ok" or
//                              "SHIP error=<message>".
//   ship_peer half <port> <s>  connects, ships a graph to process 0 but writes only the frame's
//                              manifest and half its payload, prints "HALF", then waits <s>
//                              seconds without writing (the test kills it, or times out).
//   ship_peer relay <port>     process 1 of a chain 0 -> 1 -> 2: connects to process 0, listens
//                              on a port the OS chooses and prints "PORT <port>", accepts
//                              process 2. 'S' or 'H' from 0: prints "GOT <digest>", grows the
//                              graph (seed 99, 50 nodes, 300000 big bytes) and ships it on to 2
//                              ('F' or 'H'), then sends 0 its notes (the move notes); after an 'F',
//                              it waits for 2's notes, applies them (relaying those for 0) and
//                              sends 0 its notes again. `relay <port> shared` ships on in
//                              shared mode and then prints PAYLOAD as echo does; if Ship refuses,
//                              it prints "REFUSED <error>" and ships in copy mode. 'K':
//                              ForgetPeer(2), prints "FORGOT <blocks>". 'Q': quits 2 too, prints
//                              "STATS loaned=.. borrowed=.. relayed=..".
//   ship_peer sink <port>      process 2 of the chain: connects to 127.0.0.1:<port> (process
//                              1); 'F' from 1: prints "GOT <digest>", frees it and sends 1 its
//                              notes for 0 and for 1 (it has no connection to 0); 'H': keeps it,
//                              prints "HELD <n>"; 'Q': prints STATS as echo does. `sink <port>
//                              shared` prints PAYLOAD after each GOT; `sink <port> <mode> <from>`
//                              receives from process <from> (default 1).
//   ship_peer bounce <port> [shared]   the soak's other side (tests/ship/soak.h): each 'B' region
//   from
//                              0 is checked (or "ERR") and freed, and a fresh Small of the same
//                              sequence number goes back as 'B'; notes for 0 every 64 regions;
//                              'Q': the last notes and an 'E' frame, then "STATS loaned=..
//                              borrowed=.. rss_growth_kb=.. committed_growth_kb=.." (VmRSS and
//                              the region space's committed bytes at the end minus at the 1000th
//                              region).
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "broom/region.h"
#include "broom/ship.h"
#include "broom/transferable_region.h"
#include "tests/ship/graph.h"
#include "tests/ship/soak.h"
#include "tests/ship/wire.h"

namespace {

int Where() {
  broom::AddressPlan plan;
  std::string error;
  if (!broom::GetAddressPlan(&plan, &error)) {
    std::printf("PLAN ok=0 error=%s\n", error.c_str());
    broom::TransferableRegion r;
    r.Allocate(16);
    if (broom::Ship(r, 0, {}, &error)) return 1;
    std::printf("SHIP error=%s\n", error.c_str());
    return 0;
  }
  broom::TransferableRegion r;
  std::printf("PLAN ok=1 base=%#" PRIxPTR " slice=%zu processes=%u index=%u block=%p\n", plan.base,
              plan.slice_bytes, plan.processes, plan.index, r.Allocate(16));
  return 0;
}

// Tries to ship a fresh region to process 0 in shared mode: "SHIP ok" (then cancelled) or
// "SHIP error=<message>".
int ShipShared() {
  broom::TransferableRegion r;
  r.Allocate(16);
  std::string error;
  broom::ShipOptions options;
  options.mode = broom::ShipMode::kShared;
  std::optional<broom::Shipment> s = broom::Ship(r, 0, options, &error);
  if (s) {
    std::printf("SHIP ok\n");
  } else {
    std::printf("SHIP error=%s\n", error.c_str());
  }
  return 0;
}

using broom::testing::Graph;

void PrintStats() {
  const broom::ShipStats s = broom::GetShipStats();
  std::printf("STATS loaned=%zu borrowed=%zu\n", s.loaned_bytes, s.borrowed_bytes);
  std::fflush(stdout);
}

void PrintPayload() {
  const broom::ShipStats s = broom::GetShipStats();
  std::printf("PAYLOAD sent=%" PRIu64 " received=%" PRIu64 " mapped_sent=%" PRIu64
              " mapped_received=%" PRIu64 " mapped_slices=%zu\n",
              s.payload_bytes_sent, s.payload_bytes_received, s.mapped_bytes_sent,
              s.mapped_bytes_received, s.shared_slices_mapped);
  std::fflush(stdout);
}

int Echo(uint16_t port, broom::ShipMode mode) {
  int fd = broom::testing::Connect(port);
  if (fd < 0) {
    std::printf("ERR cannot connect to port %u\n", port);
    return 1;
  }
  std::string error;
  std::vector<broom::Message<Graph>> held;
  for (;;) {
    const char tag = broom::testing::ReadTag(fd);
    if (tag == 'H') {
      auto m = broom::testing::ReceiveRegion<Graph>(fd, 0, &error);
      if (!m) return 1;
      held.push_back(std::move(*m));
      std::printf("HELD %zu\n", held.size());
      std::fflush(stdout);
    } else if (tag == 'S' || tag == 'F') {
      auto m = broom::testing::ReceiveRegion<Graph>(fd, 0, &error);
      if (!m) {
        std::printf("ERR %s\n", error.c_str());
        std::fflush(stdout);
        continue;
      }
      std::printf("GOT %s\n", broom::testing::Digest(**m, &m->region().region()).c_str());
      std::fflush(stdout);
      if (tag == 'S') {
        broom::testing::Grow(*m, 99, 50);
        if (!broom::testing::SendRegion(fd, 'S', *m, 0, &error, mode)) {
          std::printf("ERR %s\n", error.c_str());
          return 1;
        }
      }
      m.reset();  // 'F': frees it here (its blocks go back to process 0: notes)
      if (!broom::testing::SendNotes(fd, 0)) return 1;
    } else if (tag == 'N') {
      if (broom::testing::ReceiveNotes(fd) < 0) return 1;
    } else if (tag == 'P') {
      PrintPayload();
    } else {
      PrintStats();
      return tag == 'Q' ? 0 : 1;
    }
  }
}

// Ships one graph (seed 70) to process 0 in `mode`, prints "SENT <digest>" and then waits, for
// the test that kills a sender whose region the receiver still holds.
int Give(uint16_t port, broom::ShipMode mode) {
  int fd = broom::testing::Connect(port);
  if (fd < 0) return 1;
  broom::RegionOptions options;
  options.name = "given";
  auto m = broom::Message<Graph>::CreateWith(options);
  broom::testing::Grow(m, 70, 1500, 300000);
  const std::string digest = broom::testing::Digest(*m, &m.region().region());
  std::string error;
  if (!broom::testing::SendRegion(fd, 'F', m, 0, &error, mode)) {
    std::printf("ERR %s\n", error.c_str());
    return 1;
  }
  std::printf("SENT %s\n", digest.c_str());
  std::fflush(stdout);
  std::this_thread::sleep_for(std::chrono::seconds(30));
  return 0;
}

int Half(uint16_t port, int seconds) {
  int fd = broom::testing::Connect(port);
  if (fd < 0) return 1;
  broom::RegionOptions options;
  options.name = "half";
  auto m = broom::Message<Graph>::CreateWith(options);
  broom::testing::Grow(m, 5, 2000, 1 << 20);
  std::string error;
  std::optional<broom::Shipment> s = broom::ShipMessage(m, 0, broom::ShipMode::kCopy, &error);
  if (!s) return 1;
  char tag = 'F';
  uint64_t sizes[2] = {s->manifest().size(), s->payload_bytes()};
  std::vector<iovec> v = {{&tag, 1},
                          {sizes, sizeof(sizes)},
                          {const_cast<char*>(s->manifest().data()), s->manifest().size()}};
  size_t left = s->payload_bytes() / 2;
  for (const broom::Shipment::Range& r : s->payload()) {
    const size_t n = std::min(left, r.size);
    if (n == 0) break;
    v.push_back({const_cast<void*>(r.data), n});
    left -= n;
  }
  if (!broom::testing::WriteV(fd, std::move(v))) return 1;
  std::printf("HALF\n");
  std::fflush(stdout);
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  return 0;  // the shipment is cancelled: its blocks come back here
}

int Relay(uint16_t port, broom::ShipMode mode) {
  using broom::testing::ReadTag;
  int up = broom::testing::Connect(port);
  uint16_t own_port = 0;
  int listener = broom::testing::Listen(&own_port);
  if (up < 0 || listener < 0) return 1;
  std::printf("PORT %u\n", own_port);
  std::fflush(stdout);
  int down = broom::testing::Accept(listener);
  if (down < 0) return 1;
  std::string error;
  for (;;) {
    const char tag = ReadTag(up);
    if (tag == 'S' || tag == 'H') {
      auto m = broom::testing::ReceiveRegion<Graph>(up, 0, &error);
      if (!m) {
        std::printf("ERR %s\n", error.c_str());
        return 1;
      }
      std::printf("GOT %s\n", broom::testing::Digest(**m, &m->region().region()).c_str());
      std::fflush(stdout);
      broom::testing::Grow(*m, 99, 50, 300000);  // a new run block of slice 1
      const char on = tag == 'S' ? 'F' : 'H';
      bool sent = broom::testing::SendRegion(down, on, *m, 2, &error, mode);
      if (!sent && mode == broom::ShipMode::kShared && error.rfind("cannot ship", 0) == 0) {
        std::printf("REFUSED %s\n", error.c_str());  // the region is still here: copy it
        std::fflush(stdout);
        sent = broom::testing::SendRegion(down, on, *m, 2, &error);
      } else if (sent && mode == broom::ShipMode::kShared) {
        PrintPayload();
      }
      if (!sent) {
        std::printf("ERR %s\n", error.c_str());
        return 1;
      }
      if (!broom::testing::SendNotes(up, 0)) return 1;  // "moved to 2"
      if (tag == 'H') continue;
      for (int frames = 0; frames < 2; ++frames) {  // 2's notes for 0 (relayed) and for 1
        if (ReadTag(down) != 'N' || broom::testing::ReceiveNotes(down) < 0) {
          std::printf("ERR process 2 sent no notes\n");
          return 1;
        }
      }
      if (!broom::testing::SendNotes(up, 0)) return 1;
    } else if (tag == 'K') {
      std::printf("FORGOT %zu\n", broom::ForgetPeer(2));
      std::fflush(stdout);
    } else {
      const char quit = 'Q';
      broom::testing::WriteAll(down, &quit, 1);
      const broom::ShipStats s = broom::GetShipStats();
      std::printf("STATS loaned=%zu borrowed=%zu relayed=%" PRIu64 "\n", s.loaned_bytes,
                  s.borrowed_bytes, s.notes_relayed);
      return tag == 'Q' ? 0 : 1;
    }
  }
}

int Sink(uint16_t port, bool print_payload, uint32_t from) {
  int fd = broom::testing::Connect(port);
  if (fd < 0) return 1;
  std::string error;
  std::vector<broom::Message<Graph>> held;
  for (;;) {
    const char tag = broom::testing::ReadTag(fd);
    if (tag == 'F' || tag == 'H') {
      auto m = broom::testing::ReceiveRegion<Graph>(fd, from, &error);
      if (!m) {
        std::printf("ERR %s\n", error.c_str());
        std::fflush(stdout);
        return 1;
      }
      if (tag == 'H') {
        held.push_back(std::move(*m));
        std::printf("HELD %zu\n", held.size());
        std::fflush(stdout);
        continue;
      }
      std::printf("GOT %s\n", broom::testing::Digest(**m, &m->region().region()).c_str());
      std::fflush(stdout);
      if (print_payload) PrintPayload();
      m.reset();  // freed here, once: return notes for 0 and for 1
      if (!broom::testing::SendNotes(fd, 0) || !broom::testing::SendNotes(fd, 1)) return 1;
    } else {
      PrintStats();
      return tag == 'Q' ? 0 : 1;
    }
  }
}

int Bounce(uint16_t port, broom::ShipMode mode) {
  using broom::testing::Small;
  int fd = broom::testing::Connect(port);
  if (fd < 0) return 1;
  std::string error;
  uint64_t count = 0;
  long rss_start = -1, committed_start = -1;
  for (;;) {
    const char tag = broom::testing::ReadTag(fd);
    if (tag == 'B') {
      auto m = broom::testing::ReceiveRegion<Small>(fd, 0, &error);
      if (!m) {
        std::printf("ERR %s\n", error.c_str());
        return 1;
      }
      const uint64_t seq = (*m)->seq;
      if (!broom::testing::SmallIsIntact(*m, seq, 0)) {
        std::printf("ERR region %" PRIu64 " arrived damaged\n", seq);
        return 1;
      }
      m.reset();
      auto back = broom::testing::MakeSmall(seq, 1);
      if (!broom::testing::SendRegion(fd, 'B', back, 0, &error, mode)) {
        std::printf("ERR %s\n", error.c_str());
        return 1;
      }
      if (++count % 64 == 0 && !broom::testing::SendNotes(fd, 0)) return 1;
      if (count == 1000) {
        rss_start = broom::testing::ResidentKb();
        committed_start = broom::testing::CommittedKb();
      }
    } else if (tag == 'N') {
      if (broom::testing::ReceiveNotes(fd) < 0) return 1;
    } else {
      const char end = 'E';
      if (!broom::testing::SendNotes(fd, 0) || !broom::testing::WriteAll(fd, &end, 1)) return 1;
      const broom::ShipStats s = broom::GetShipStats();
      std::printf("STATS loaned=%zu borrowed=%zu rss_growth_kb=%ld committed_growth_kb=%ld\n",
                  s.loaned_bytes, s.borrowed_bytes,
                  rss_start < 0 ? 0 : broom::testing::ResidentKb() - rss_start,
                  committed_start < 0 ? 0 : broom::testing::CommittedKb() - committed_start);
      return tag == 'Q' ? 0 : 1;
    }
  }
}

}  // namespace

// argv: MODE ARGS... (without the program name and --peer).
int ShipPeerMain(int argc, char** argv) {
  if (argc < 1) return 2;
  const std::string mode = argv[0];
  ++argv;
  --argc;
  if (mode == "where") return Where();
  if (mode == "shipshared") return ShipShared();
  const uint16_t port = argc > 0 ? static_cast<uint16_t>(std::atoi(argv[0])) : 0;
  const broom::ShipMode ship_mode = argc > 1 && std::strcmp(argv[1], "shared") == 0
                                        ? broom::ShipMode::kShared
                                        : broom::ShipMode::kCopy;
  if (mode == "echo" && argc > 0) return Echo(port, ship_mode);
  if (mode == "give" && argc > 1) return Give(port, ship_mode);
  if (mode == "half" && argc > 1) return Half(port, std::atoi(argv[1]));
  if (mode == "relay" && argc > 0) return Relay(port, ship_mode);
  if (mode == "sink" && argc > 0) {
    const uint32_t from = argc > 2 ? static_cast<uint32_t>(std::atoi(argv[2])) : 1;
    return Sink(port, ship_mode == broom::ShipMode::kShared, from);
  }
  if (mode == "bounce" && argc > 0) return Bounce(port, ship_mode);
  if (mode == "occupy" && argc > 0) {
    void* at = reinterpret_cast<void*>(std::strtoull(argv[0], nullptr, 16));
    if (mmap(at, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) != at) {
      std::printf("cannot occupy %p\n", at);
      return 1;
    }
    return Where();
  }
  std::fprintf(stderr, "ship_peer: unknown mode %s\n", mode.c_str());
  return 2;
}
