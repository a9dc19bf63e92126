// Copyright Broom authors.
//
// The shipping soak: BROOM_SHIP_SOAK_REGIONS small regions (tests/ship/soak.h) bounce between
// this process (slice 0) and a peer (slice 1, ship_peer bounce) over 127.0.0.1: each side ships
// a fresh region for every one it receives and frees, notes flow back every 64 regions. Memory
// stays bounded on both sides (resident set; bytes on loan) and the loans balance to zero at the
// end. Built three times (tests/ship/CMakeLists.txt): 20k regions in the default run, 1M as
// `stress`, and 20k in shared mode (BROOM_SHIP_SOAK_SHARED: both slices shared memory, only
// manifests travel).
#include <gtest/gtest.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

#include "broom/check.h"
#include "broom/ship.h"
#include "tests/ship/peer_process.h"
#include "tests/ship/soak.h"
#include "tests/ship/wire.h"

#ifndef BROOM_SHIP_SOAK_REGIONS
#define BROOM_SHIP_SOAK_REGIONS 20000
#endif
// The builds' tests have their own names in ctest.
#if defined(BROOM_SHIP_SOAK_SHARED)
#define BROOM_SHIP_SOAK_SUITE ShipSharedSoakTest
constexpr bool kShared = true;
#elif BROOM_SHIP_SOAK_REGIONS >= 1000000
#define BROOM_SHIP_SOAK_SUITE ShipSoakStressTest
constexpr bool kShared = false;
#else
#define BROOM_SHIP_SOAK_SUITE ShipSoakTest
constexpr bool kShared = false;
#endif

int ShipPeerMain(int argc, char** argv);  // ship_peer.cc

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "--peer") == 0) return ShipPeerMain(argc - 2, argv + 2);
  if (kShared) setenv("BROOM_PLAN_SHARED", "1", 1);  // before the first region
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}

namespace broom {
namespace {

TEST(BROOM_SHIP_SOAK_SUITE,
     SmallRegionsBounceBetweenTwoProcessesInBoundedMemoryAndTheLoansBalance) {
  const uint64_t n = BROOM_SHIP_SOAK_REGIONS;
  SetCheckMode(CheckMode::kOff);  // the soak measures the protocol, not the checks
  AddressPlan plan;
  std::string error;
  ASSERT_TRUE(GetAddressPlan(&plan, &error)) << error;
  uint16_t port = 0;
  const int listener = testing::Listen(&port);
  ASSERT_GE(listener, 0);
  const ShipMode mode = kShared ? ShipMode::kShared : ShipMode::kCopy;
  testing::PeerProcess peer("/proc/self/exe",
                            {"--peer", "bounce", std::to_string(port), kShared ? "shared" : "copy"},
                            testing::PlanEnv(plan, 1, kShared));
  const int fd = testing::Accept(listener);
  ASSERT_GE(fd, 0);
  const ShipStats before = GetShipStats();
  long rss_start = -1, committed_start = -1;
  size_t max_loaned = 0, max_borrowed = 0;
  for (uint64_t i = 0; i < n; ++i) {
    Message<testing::Small> m = testing::MakeSmall(i, 0);
    ASSERT_TRUE(testing::SendRegion(fd, 'B', m, 1, &error, mode))
        << "region " << i << ": " << error;
    char tag;
    while ((tag = testing::ReadTag(fd)) == 'N') ASSERT_GE(testing::ReceiveNotes(fd), 0);
    ASSERT_EQ(tag, 'B') << "region " << i << ": " << peer.ReadLine(1);
    std::optional<Message<testing::Small>> back =
        testing::ReceiveRegion<testing::Small>(fd, 1, &error);
    ASSERT_TRUE(back) << "region " << i << ": " << error;
    ASSERT_TRUE(testing::SmallIsIntact(*back, i, 1)) << "region " << i;
    const ShipStats s = GetShipStats();  // two short locks: sampled every round
    max_loaned = std::max(max_loaned, s.loaned_bytes);
    max_borrowed = std::max(max_borrowed, s.borrowed_bytes);
    back.reset();
    if ((i + 1) % 64 == 0) {
      ASSERT_TRUE(testing::SendNotes(fd, 1));
    }
    if (i == 1000) {
      rss_start = testing::ResidentKb();
      committed_start = testing::CommittedKb();
    }
  }
  const char quit = 'Q';
  ASSERT_TRUE(testing::SendNotes(fd, 1));
  ASSERT_TRUE(testing::WriteAll(fd, &quit, 1));
  char tag;
  while ((tag = testing::ReadTag(fd)) == 'N') ASSERT_GE(testing::ReceiveNotes(fd), 0);
  EXPECT_EQ(tag, 'E');
  const std::string stats = peer.ReadLine(30);
  unsigned long peer_loaned = 1, peer_borrowed = 1;
  long peer_growth = -1, peer_committed = -1;
  ASSERT_EQ(std::sscanf(stats.c_str(),
                        "STATS loaned=%lu borrowed=%lu rss_growth_kb=%ld committed_growth_kb=%ld",
                        &peer_loaned, &peer_borrowed, &peer_growth, &peer_committed),
            4)
      << stats;
  EXPECT_EQ(peer.Wait(), 0);

  const ShipStats after = GetShipStats();
  EXPECT_EQ(after.loaned_bytes, 0u);  // every region this side shipped was returned by note
  EXPECT_EQ(after.loaned_blocks, 0u);
  EXPECT_EQ(after.borrowed_bytes, 0u);
  EXPECT_EQ(after.regions_shipped - before.regions_shipped, n);
  EXPECT_EQ(after.regions_received - before.regions_received, n);
  EXPECT_EQ(after.stale_notes, before.stale_notes);
  EXPECT_EQ(peer_loaned, 0u);
  EXPECT_EQ(peer_borrowed, 0u);
  if (kShared) {  // nothing copied this side (the peer's side: ship_shared_test)
    EXPECT_EQ(after.payload_bytes_sent, before.payload_bytes_sent);
    EXPECT_EQ(after.payload_bytes_received, before.payload_bytes_received);
    EXPECT_GT(after.mapped_bytes_received, before.mapped_bytes_received);
  }
  // Bounded: at most about 64 regions' blocks out between two rounds of notes, and the region
  // space committed and the resident set flat after warm-up (growth below 16 MiB on each side,
  // whatever n is; the resident set is not checked under ASan, whose quarantine holds freed
  // heap memory).
  EXPECT_LE(max_loaned, size_t{4} << 20);
  EXPECT_LE(max_borrowed, size_t{4} << 20);
  const long growth = testing::ResidentKb() - rss_start;
  const long committed = testing::CommittedKb() - committed_start;
  std::printf("soak: %" PRIu64
              " regions each way; at most %zu bytes on loan, %zu borrowed; growth here: %ld KiB "
              "committed, %ld KiB resident; in the peer: %ld KiB committed, %ld KiB resident; "
              "%" PRIu64 " notes accepted\n",
              n, max_loaned, max_borrowed, committed, growth, peer_committed, peer_growth,
              after.notes_accepted - before.notes_accepted);
  EXPECT_LE(committed, 16 << 10) << "KiB of region space committed here over " << n << " regions";
  EXPECT_LE(peer_committed, 16 << 10) << "KiB of region space committed in the peer";
  if (testing::kResidentIsMeaningful) {
    EXPECT_LE(growth, 16 << 10) << "KiB of resident growth here over " << n << " regions";
    EXPECT_LE(peer_growth, 16 << 10) << "KiB of resident growth in the peer";
  }
  close(fd);
  close(listener);
}

}  // namespace
}  // namespace broom
