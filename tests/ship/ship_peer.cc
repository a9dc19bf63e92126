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
//                              Errors print "ERR <message>".
#include <sys/mman.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "broom/region.h"
#include "broom/ship.h"
#include "broom/transferable_region.h"
#include "tests/ship/graph.h"
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

int Echo(uint16_t port) {
  using broom::testing::Graph;
  int fd = broom::testing::Connect(port);
  if (fd < 0) {
    std::printf("ERR cannot connect to port %u\n", port);
    return 1;
  }
  std::string error;
  for (;;) {
    const char tag = broom::testing::ReadTag(fd);
    if (tag == 'S' || tag == 'F') {
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
        if (!broom::testing::SendRegion(fd, 'S', *m, 0, &error)) {
          std::printf("ERR %s\n", error.c_str());
          return 1;
        }
      }
      m.reset();  // 'F': frees it here (its blocks go back to process 0: notes)
      if (!broom::testing::SendNotes(fd, 0)) return 1;
    } else if (tag == 'N') {
      if (broom::testing::ReceiveNotes(fd) < 0) return 1;
    } else {
      const broom::ShipStats s = broom::GetShipStats();
      std::printf("STATS loaned=%zu borrowed=%zu\n", s.loaned_bytes, s.borrowed_bytes);
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
  if (mode == "echo" && argc > 0) return Echo(static_cast<uint16_t>(std::atoi(argv[0])));
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
