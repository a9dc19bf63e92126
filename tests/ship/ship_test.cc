// Copyright Broom authors.
//
// Regions across processes (broom/ship.h), with the processes of a job played by
// tests/ship/ship_peer.cc: the address plan in several processes (the same range everywhere,
// each its own slice; a taken range is a clear error), and pointer-rich regions shipped by
// address between two processes over 127.0.0.1 (tests/ship/wire.h), their content compared,
// their loans balanced; processes killed mid-transfer or while holding loans (a clear error
// within seconds, the loans taken back, nothing left installed); a chain of three processes
// (tests/ship/ship_peer.cc relay and sink) with notes relayed back to the first; what checked
// mode refuses to ship; malformed manifests.
#include "broom/ship.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "alloc/region/ship_internal.h"
#include "broom/check.h"
#include "broom/memory.h"
#include "broom/transferable_region.h"
#include "tests/ship/graph.h"
#include "tests/ship/peer_process.h"
#include "tests/ship/ship_test_util.h"
#include "tests/ship/wire.h"

int main(int argc, char** argv) { return broom::testing::RunShipTests(argc, argv, false); }

namespace broom {
namespace {

using testing::Build;
using testing::Digest;
using testing::ExpectNotes;
using testing::Graph;
using testing::Grow;
using testing::Node;
using testing::OwnPlan;
using testing::PeerProcess;
using testing::PlanEnv;

const char kSelf[] = "/proc/self/exe";

TEST(AddressPlanProcessTest, EveryProcessReservesTheRangeAtTheSameAddressAndUsesItsSlice) {
  AddressPlan plan = OwnPlan();
  TransferableRegion mine;
  EXPECT_EQ(plan.SliceOf(mine.Allocate(16)), 0);
  for (uint32_t index : {1u, plan.processes - 1}) {
    PeerProcess peer(kSelf, {"--peer", "where"}, PlanEnv(plan, index));
    std::string line = peer.ReadLine();
    uintptr_t base = 0, block = 0;
    unsigned processes = 0, got_index = 0;
    size_t slice = 0;
    ASSERT_EQ(
        std::sscanf(line.c_str(),
                    "PLAN ok=1 base=%" SCNxPTR " slice=%zu processes=%u index=%u block=%" SCNxPTR,
                    &base, &slice, &processes, &got_index, &block),
        5)
        << line;
    EXPECT_EQ(base, plan.base);
    EXPECT_EQ(slice, plan.slice_bytes);
    EXPECT_EQ(processes, plan.processes);
    EXPECT_EQ(got_index, index);
    EXPECT_EQ(plan.SliceOf(reinterpret_cast<void*>(block)), static_cast<int>(index)) << line;
  }
}

TEST(AddressPlanProcessTest, ATakenRangeIsAClearErrorNotAReservationElsewhere) {
  AddressPlan plan = OwnPlan();
  char at[32];
  std::snprintf(at, sizeof(at), "%" PRIxPTR, plan.SliceBase(1) + (size_t{5} << 20));
  PeerProcess peer(kSelf, {"--peer", "occupy", at}, PlanEnv(plan, 1));
  std::string line = peer.ReadLine();
  EXPECT_EQ(line.rfind("PLAN ok=0 error=", 0), 0u) << line;
  for (const char* part :
       {"not at its address plan", "File exists", "already mapped there", "BROOM_PLAN_BASE_GB"}) {
    EXPECT_NE(line.find(part), std::string::npos) << part << " in: " << line;
  }
  line = peer.ReadLine();  // and it cannot ship
  EXPECT_EQ(line.rfind("SHIP error=cannot ship: ", 0), 0u) << line;
  EXPECT_NE(line.find("not at its address plan"), std::string::npos) << line;
}

// Process 0 (this test) and process 1 (ship_peer echo) on 127.0.0.1.
class ShipProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SetCheckMode(CheckMode::kFatal);  // every shipment is checked for self-containment
    plan_ = OwnPlan();
    uint16_t port = 0;
    listener_ = testing::Listen(&port);
    ASSERT_GE(listener_, 0);
    peer_.emplace(kSelf, std::vector<std::string>{"--peer", "echo", std::to_string(port)},
                  PlanEnv(plan_, 1));
    fd_ = testing::Accept(listener_);
    ASSERT_GE(fd_, 0) << "the peer did not connect: " << peer_->ReadLine(1);
  }
  void TearDown() override {
    peer_.reset();
    if (fd_ >= 0) close(fd_);
    if (listener_ >= 0) close(listener_);
  }

  AddressPlan plan_;
  int listener_ = -1;
  int fd_ = -1;
  std::optional<PeerProcess> peer_;
};

TEST_F(ShipProcessTest, PointerRichGraphsTravelBothWaysByAddressWithTheSameContent) {
  const ShipStats before = GetShipStats();
  // Small, multi-block, and with a run of several chunks (a 3 MiB string).
  const std::vector<std::vector<std::array<int, 3>>> cases = {
      {{1, 3, 0}}, {{2, 400, 0}}, {{3, 2000, 0}, {4, 10, 3 << 20}}};
  for (const auto& steps : cases) {
    Message<Graph> m = Build(steps);
    const std::string sent = Digest(*m, &m.region().region());
    ASSERT_NE(sent.find("outside=0"), std::string::npos) << sent;
    const void* root = m.get();
    const size_t blocks = m.region().stats().block_bytes;
    std::string error;
    ASSERT_TRUE(testing::SendRegion(fd_, 'S', m, 1, &error)) << error;
    EXPECT_GE(GetShipStats().loaned_bytes, blocks);  // out of reuse here while away
    EXPECT_EQ(peer_->ReadLine(), "GOT " + sent);     // same content there, every pointer inside

    // It comes back grown by the peer (new blocks of the peer's slice): the same as growing a
    // graph here, at the same root address.
    ASSERT_EQ(testing::ReadTag(fd_), 'S');
    std::optional<Message<Graph>> back = testing::ReceiveRegion<Graph>(fd_, 1, &error);
    ASSERT_TRUE(back) << error;
    ExpectNotes(fd_);
    EXPECT_EQ(back->get(), root);
    std::vector<std::array<int, 3>> grown = steps;
    grown.push_back({99, 50, 0});
    Message<Graph> expect = Build(grown);
    EXPECT_EQ(Digest(**back, &back->region().region()), Digest(*expect, &expect.region().region()));
    EXPECT_EQ(RegionOf(back->get()), &back->region().region());
    EXPECT_STREQ(back->region().region().name(), "graph");  // rebuilt here
    EXPECT_EQ(back->region().state(), TransferableRegion::State::kClosed);
    EXPECT_GE(back->region().stats().block_bytes, blocks);
    EXPECT_EQ(CheckOutlives(back->region().region()).violation_count, 0u);
    Grow(*back, 5, 20);  // usable as any other region: it grows here too
    back.reset();        // frees blocks of both slices: the peer's go back to it as notes
    ASSERT_TRUE(testing::SendNotes(fd_, 1));
  }
  // One more freed over there: its blocks (all of this slice) come back as notes.
  Message<Graph> m = Build({{7, 300, 100000}});
  const std::string sent = Digest(*m, &m.region().region());
  std::string error;
  ASSERT_TRUE(testing::SendRegion(fd_, 'F', m, 1, &error)) << error;
  EXPECT_EQ(peer_->ReadLine(), "GOT " + sent);
  ExpectNotes(fd_);

  const ShipStats after = GetShipStats();
  EXPECT_EQ(after.loaned_bytes, 0u);  // every block lent came back
  EXPECT_EQ(after.borrowed_bytes, 0u);
  EXPECT_EQ(after.regions_shipped - before.regions_shipped, 4u);
  EXPECT_EQ(after.regions_received - before.regions_received, 3u);
  EXPECT_GT(after.payload_bytes_sent, before.payload_bytes_sent + (3u << 20));
  const char quit = 'Q';
  ASSERT_TRUE(testing::WriteAll(fd_, &quit, 1));
  EXPECT_EQ(peer_->ReadLine(), "STATS loaned=0 borrowed=0");
  EXPECT_EQ(peer_->Wait(), 0);
}

TEST_F(ShipProcessTest, AShipmentTheReceiverRefusesIsAClearErrorAndTheConnectionLivesOn) {
  // A region the peer already holds cannot arrive twice: ship it, then replay its frame.
  Message<Graph> m = Build({{11, 50, 0}});
  std::optional<Shipment> s = ShipMessage(m, 1, ShipMode::kCopy, nullptr);
  ASSERT_TRUE(s);
  std::string frame(1, 'F');
  const uint64_t sizes[2] = {s->manifest().size(), s->payload_bytes()};
  frame.append(reinterpret_cast<const char*>(sizes), sizeof(sizes));
  frame += s->manifest();
  for (const Shipment::Range& r : s->payload()) {
    frame.append(static_cast<const char*>(r.data), r.size);
  }
  std::string corrupt = frame;
  corrupt[1 + sizeof(sizes) + 4] ^= 0x7f;  // the manifest's version
  ASSERT_TRUE(testing::WriteAll(fd_, corrupt.data(), corrupt.size()));
  std::string line = peer_->ReadLine();
  EXPECT_NE(line.find("ERR malformed or unusable shipment from process 0"), std::string::npos)
      << line;
  ASSERT_TRUE(testing::WriteAll(fd_, frame.data(), frame.size()));
  s->Sent();
  EXPECT_EQ(peer_->ReadLine().rfind("GOT digest=", 0), 0u);
  ExpectNotes(fd_);
  EXPECT_EQ(GetShipStats().loaned_bytes, 0u);
  const char quit = 'Q';
  ASSERT_TRUE(testing::WriteAll(fd_, &quit, 1));
  EXPECT_EQ(peer_->ReadLine(), "STATS loaned=0 borrowed=0");
}

// ---- processes that die, and a chain of three ---------------------------------------------------

double SecondsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

TEST_F(ShipProcessTest, AReceiverKilledWhileHoldingLoansIsSeenWithinSecondsAndItsLoansComeBack) {
  const ShipStats before = GetShipStats();
  std::vector<const void*> objects;  // where the shipped regions' objects were (first blocks)
  for (int i = 0; i < 3; ++i) {
    Message<Graph> m = Build({{20 + i, 300, i == 2 ? 1 << 20 : 0}});
    objects.push_back(&m.region().region());
    std::string error;
    ASSERT_TRUE(testing::SendRegion(fd_, 'H', m, 1, &error)) << error;
    ASSERT_EQ(peer_->ReadLine(), "HELD " + std::to_string(i + 1));
  }
  const ShipStats holding = GetShipStats();
  const size_t lent = holding.loaned_blocks - before.loaned_blocks;
  ASSERT_GT(lent, 3u);
  EXPECT_GT(holding.loaned_bytes, size_t{1} << 20);

  ASSERT_EQ(kill(peer_->pid(), SIGKILL), 0);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(testing::ReadTag(fd_), 0);  // the connection ends: the survivor learns of the death
  EXPECT_LT(SecondsSince(t0), 5.0);
  // Shipping to it now fails with a clear error (the first writes may still be buffered: those
  // shipments count as lent to the dead process, and are taken back below).
  std::string error;
  bool failed = false;
  for (int i = 0; i < 20 && !failed; ++i) {
    Message<Graph> m = Build({{40 + i, 10, 0}});
    failed = !testing::SendRegion(fd_, 'H', m, 1, &error);
    if (!failed) usleep(20000);
  }
  ASSERT_TRUE(failed);
  EXPECT_NE(error.find("connection failed while sending"), std::string::npos) << error;
  EXPECT_LT(SecondsSince(t0), 5.0);

  EXPECT_GE(ForgetPeer(1), lent);
  const ShipStats after = GetShipStats();
  EXPECT_EQ(after.loaned_bytes, 0u);
  EXPECT_EQ(after.loaned_blocks, 0u);
  EXPECT_GE(after.reclaimed_blocks - before.reclaimed_blocks, lent);
  EXPECT_EQ(ForgetPeer(1), 0u);  // nothing twice
  // The addresses are this process's to carve again: new regions land on them.
  std::vector<Message<Graph>> fresh;
  bool reused = false;
  for (int i = 0; i < 512 && !reused; ++i) {
    fresh.push_back(Build({{60, 1, 0}}));
    const void* at = &fresh.back().region().region();
    reused = std::find(objects.begin(), objects.end(), at) != objects.end();
  }
  EXPECT_TRUE(reused) << "no new region reused a block taken back from the dead process";
}

// Receives the frame the `half` peer sends (its tag, sizes and manifest whole, half its
// payload), with `kill_it` the peer is killed mid-payload, else it stalls and the read times out.
void ExpectHalfShipmentCleanedUp(bool kill_it) {
  SetCheckMode(CheckMode::kFatal);
  const AddressPlan plan = OwnPlan();
  uint16_t port = 0;
  const int listener = testing::Listen(&port);
  ASSERT_GE(listener, 0);
  PeerProcess peer(kSelf, {"--peer", "half", std::to_string(port), "30"}, PlanEnv(plan, 1));
  const int fd = testing::Accept(listener);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(peer.ReadLine(), "HALF");
  if (!kill_it) {
    timeval tv{1, 0};  // the engine's deadline for a stalled sender
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }
  const ShipStats before = GetShipStats();
  ASSERT_EQ(testing::ReadTag(fd), 'F');
  uint64_t sizes[2];
  ASSERT_TRUE(testing::ReadAll(fd, sizes, sizeof(sizes)));
  std::string manifest(sizes[0], '\0');
  ASSERT_TRUE(testing::ReadAll(fd, manifest.data(), manifest.size()));
  std::string error;
  std::optional<Receipt> receipt = Receipt::Open(manifest, 1, &error);
  ASSERT_TRUE(receipt) << error;
  EXPECT_GT(GetShipStats().borrowed_bytes, before.borrowed_bytes + (size_t{1} << 20));
  if (kill_it) {
    ASSERT_EQ(kill(peer.pid(), SIGKILL), 0);
  }
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<iovec> v;
  for (const Receipt::Range& r : receipt->payload()) v.push_back({r.data, r.size});
  EXPECT_FALSE(testing::ReadV(fd, std::move(v)));  // EOF, or the deadline
  EXPECT_LT(SecondsSince(t0), 5.0);
  receipt.reset();  // half installed: uninstalled, nothing kept
  const ShipStats after = GetShipStats();
  EXPECT_EQ(after.borrowed_bytes, before.borrowed_bytes);
  EXPECT_EQ(after.borrowed_blocks, before.borrowed_blocks);
  EXPECT_EQ(after.regions_received, before.regions_received);
  EXPECT_LE(after.warm_borrowed_bytes, size_t{32} << 20);
  EXPECT_EQ(ForgetPeer(1), 0u);  // it held nothing of ours
  // Those addresses can be installed again (a restarted sender reuses them).
  std::optional<Receipt> again = Receipt::Open(manifest, 1, &error);
  EXPECT_TRUE(again) << error;
  again.reset();
  EXPECT_EQ(GetShipStats().borrowed_bytes, before.borrowed_bytes);
  close(fd);
  close(listener);
}

TEST(ShipFailureTest, ASenderKilledMidPayloadLeavesAClearErrorAndNothingInstalled) {
  ExpectHalfShipmentCleanedUp(/*kill_it=*/true);
}

TEST(ShipFailureTest, ASenderThatStallsMidPayloadTimesOutAndLeavesNothingInstalled) {
  ExpectHalfShipmentCleanedUp(/*kill_it=*/false);
}

// Process 0 (this test) -> 1 (ship_peer relay) -> 2 (ship_peer sink). 2 is connected to 1 only,
// so its notes for 0 are relayed by 1.
class ShipChainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SetCheckMode(CheckMode::kFatal);
    plan_ = OwnPlan();
    ASSERT_GE(plan_.processes, 3u);
    uint16_t port = 0;
    listener_ = testing::Listen(&port);
    ASSERT_GE(listener_, 0);
    b_.emplace(kSelf, std::vector<std::string>{"--peer", "relay", std::to_string(port)},
               PlanEnv(plan_, 1));
    fd_ = testing::Accept(listener_);
    ASSERT_GE(fd_, 0);
    unsigned b_port = 0;
    const std::string line = b_->ReadLine();
    ASSERT_EQ(std::sscanf(line.c_str(), "PORT %u", &b_port), 1) << line;
    c_.emplace(kSelf, std::vector<std::string>{"--peer", "sink", std::to_string(b_port)},
               PlanEnv(plan_, 2));
  }
  void TearDown() override {
    c_.reset();
    b_.reset();
    if (fd_ >= 0) close(fd_);
    if (listener_ >= 0) close(listener_);
  }

  AddressPlan plan_;
  int listener_ = -1;
  int fd_ = -1;
  std::optional<PeerProcess> b_, c_;
};

TEST_F(ShipChainTest, ARegionShippedOnTwiceArrivesIntactIsFreedOnceAndTheLoansSettle) {
  const ShipStats before = GetShipStats();
  const std::vector<std::array<int, 3>> steps = {{31, 1500, 0}, {32, 5, 300000}};
  Message<Graph> m = Build(steps);
  const std::string sent = Digest(*m, &m.region().region());
  std::string error;
  ASSERT_TRUE(testing::SendRegion(fd_, 'S', m, 1, &error)) << error;
  const size_t lent = GetShipStats().loaned_blocks - before.loaned_blocks;
  ASSERT_GT(lent, 1u);
  EXPECT_EQ(b_->ReadLine(), "GOT " + sent);
  std::vector<std::array<int, 3>> grown = steps;
  grown.push_back({99, 50, 300000});  // 1 grows it (blocks of slice 1) before shipping it on
  Message<Graph> expect = Build(grown);
  EXPECT_EQ(c_->ReadLine(), "GOT " + Digest(*expect, &expect.region().region()));
  ExpectNotes(fd_);  // 1's "moved to 2"
  ExpectNotes(fd_);  // 2's returns, relayed by 1
  const ShipStats after = GetShipStats();
  EXPECT_EQ(after.loaned_bytes, 0u);
  EXPECT_EQ(after.loaned_blocks, 0u);
  // Freed once: each block came back once (no return was stale, none missing) and most were
  // moved once on the way (a block 1 kept for reuse was returned by 1 itself, without a move).
  EXPECT_GT(after.notes_accepted - before.notes_accepted, lent);
  EXPECT_LE(after.notes_accepted - before.notes_accepted, 2 * lent);
  EXPECT_EQ(after.stale_notes, before.stale_notes);
  EXPECT_EQ(after.reclaimed_blocks, before.reclaimed_blocks);
  const char quit = 'Q';
  ASSERT_TRUE(testing::WriteAll(fd_, &quit, 1));
  const std::string stats = b_->ReadLine();
  EXPECT_EQ(stats.rfind("STATS loaned=0 borrowed=0 relayed=", 0), 0u) << stats;
  EXPECT_EQ(stats.find("relayed=0"), std::string::npos) << stats;
  EXPECT_EQ(c_->ReadLine(), "STATS loaned=0 borrowed=0");
}

TEST_F(ShipChainTest, WhenTheLastHolderDiesEveryLenderOnThePathTakesItsBlocksBack) {
  const ShipStats before = GetShipStats();
  Message<Graph> m = Build({{33, 800, 0}});
  std::string error;
  ASSERT_TRUE(testing::SendRegion(fd_, 'H', m, 1, &error)) << error;
  const size_t lent = GetShipStats().loaned_blocks - before.loaned_blocks;
  EXPECT_EQ(b_->ReadLine().rfind("GOT digest=", 0), 0u);
  EXPECT_EQ(c_->ReadLine(), "HELD 1");
  ExpectNotes(fd_);              // 1's "moved to 2": the blocks are 2's to lose now
  EXPECT_EQ(ForgetPeer(1), 0u);  // 1 holds none of them
  ASSERT_EQ(kill(c_->pid(), SIGKILL), 0);
  EXPECT_EQ(ForgetPeer(2), lent);
  EXPECT_EQ(GetShipStats().loaned_bytes, 0u);
  const char forget = 'K';  // 1 learns of 2's death too
  ASSERT_TRUE(testing::WriteAll(fd_, &forget, 1));
  const std::string line = b_->ReadLine();
  unsigned long forgot = 0;
  ASSERT_EQ(std::sscanf(line.c_str(), "FORGOT %lu", &forgot), 1) << line;
  EXPECT_GT(forgot, 0u);  // the blocks 1 added
  const char quit = 'Q';
  ASSERT_TRUE(testing::WriteAll(fd_, &quit, 1));
  const std::string stats = b_->ReadLine();
  EXPECT_EQ(stats.rfind("STATS loaned=0 borrowed=0", 0), 0u) << stats;
}

// ---- in one process: what cannot travel, and bad input -----------------------------------------

TEST(ShipTest, CheckedModeRefusesARegionWithAPointerOutsideItselfAndKeepsIt) {
  SetCheckMode(CheckMode::kFatal);
  Message<Graph> m = Build({{1, 20, 0}});
  Message<Graph> other = Build({{2, 1, 0}});
  Node* last = m->head;
  while (last->next != nullptr) last = last->next;
  last->next = other->head;  // into another region
  std::string error;
  const ShipStats before = GetShipStats();
  EXPECT_FALSE(Ship(m.region(), 1, {}, &error));
  for (const char* part : {"cannot ship", "to process 1", "not self-contained", "1 violations"}) {
    EXPECT_NE(error.find(part), std::string::npos) << part << " in: " << error;
  }
  EXPECT_EQ(GetShipStats().regions_shipped, before.regions_shipped);
  EXPECT_EQ(m.region().state(), TransferableRegion::State::kClosed);  // still ours
  last->next = nullptr;
  std::optional<Shipment> s = Ship(m.region(), 1, {}, &error);
  ASSERT_TRUE(s) << error;
  EXPECT_GT(GetShipStats().loaned_bytes, 0u);
  s.reset();  // never sent: its blocks come back
  EXPECT_EQ(GetShipStats().loaned_bytes, 0u);
}

struct WithLiteral {
  const char* text;
};

TEST(ShipTest, CheckedModeRefusesPointersIntoTheProgramImage) {
  SetCheckMode(CheckMode::kFatal);
  auto m = Message<WithLiteral>::Create(WithLiteral{"a string literal"});
  std::string error;
  EXPECT_FALSE(ShipMessage(m, 1, ShipMode::kCopy, &error));
  EXPECT_NE(error.find("an address in the program's image"), std::string::npos) << error;
  EXPECT_EQ(m.region().state(), TransferableRegion::State::kClosed);
}

TEST(ShipTest, ShippingOutsideThePlanOrToItselfIsAnError) {
  AddressPlan plan = OwnPlan();
  TransferableRegion r;
  r.Allocate(8);
  std::string error;
  EXPECT_FALSE(Ship(r, plan.index, {}, &error));
  EXPECT_NE(error.find("cannot ship to process 0"), std::string::npos) << error;
  EXPECT_FALSE(Ship(r, plan.processes, {}, &error));
  EXPECT_NE(error.find("slices"), std::string::npos) << error;
  EXPECT_EQ(r.state(), TransferableRegion::State::kClosed);
}

// A manifest from process 1 for one block (4 KiB, or a run of `size` bytes) at `offset` in its
// slice; 4 KiB of it travel.
std::string ForeignManifest(const AddressPlan& plan, size_t offset = size_t{64} << 20,
                            size_t size = 4096) {
  internal::ManifestHeader h{};
  h.magic = internal::kManifestMagic;
  h.version = internal::kManifestVersion;
  h.from = 1;
  h.to = 0;
  h.block_count = 1;
  internal::ManifestBlock b{};
  b.address = plan.SliceBase(1) + offset;
  b.size = size;
  b.used = 4096;
  b.block_class = size == 4096 ? internal::kPageBlockClass : internal::kRunClass;
  b.by_value = 1;
  h.current = b.address;
  h.current_base = b.address + 1024;
  h.cursor = b.address + 1024;
  h.payload_bytes = b.used;
  h.build_hash = 1469598103934665603ull;
  for (unsigned char c : ExecutableBuildId()) h.build_hash = (h.build_hash ^ c) * 1099511628211ull;
  std::string m(reinterpret_cast<const char*>(&h), sizeof(h));
  m.append(reinterpret_cast<const char*>(&b), sizeof(b));
  return m;
}

TEST(ShipTest, MalformedManifestsAreRefusedClearlyAndInstallNothing) {
  AddressPlan plan = OwnPlan();
  const std::string good = ForeignManifest(plan);
  std::string error;
  EXPECT_FALSE(Receipt::Open(good.substr(0, 100), 1, &error));
  EXPECT_NE(error.find("shorter than its header"), std::string::npos) << error;
  EXPECT_FALSE(Receipt::Open(good, 2, &error));
  EXPECT_NE(error.find("sent by process 1"), std::string::npos) << error;
  std::string other_binary = good;
  reinterpret_cast<internal::ManifestHeader*>(other_binary.data())->build_hash ^= 1;
  EXPECT_FALSE(Receipt::Open(other_binary, 1, &error));
  EXPECT_NE(error.find("must run the same binary"), std::string::npos) << error;
  EXPECT_FALSE(Receipt::Open(good + "x", 1, &error));
  EXPECT_NE(error.find("does not match its block and lender counts"), std::string::npos) << error;
  // A third process's memfd (ManifestLender) belongs only in shared mode, and never names the
  // sender's or the receiver's own slice.
  for (const auto& [mode, slice] :
       {std::pair{internal::kManifestCopy, 2u}, std::pair{internal::kManifestShared, plan.index},
        std::pair{internal::kManifestShared, 1u}}) {
    std::string with_lender = good;
    auto* h = reinterpret_cast<internal::ManifestHeader*>(with_lender.data());
    h->mode = mode;
    h->lender_count = 1;
    internal::ManifestLender l{};
    l.slice = slice;
    with_lender.append(reinterpret_cast<const char*>(&l), sizeof(l));
    EXPECT_FALSE(Receipt::Open(with_lender, 1, &error));
    EXPECT_NE(error.find("is not a third process's slice listed once in a shared-mode shipment"),
              std::string::npos)
        << error;
  }
  std::string misplaced = good;
  reinterpret_cast<internal::ManifestBlock*>(misplaced.data() + sizeof(internal::ManifestHeader))
      ->address += 8;
  EXPECT_FALSE(Receipt::Open(misplaced, 1, &error));
  EXPECT_NE(error.find("is not a block of the address plan"), std::string::npos) << error;

  std::optional<Receipt> receipt = Receipt::Open(good, 1, &error);
  ASSERT_TRUE(receipt) << error;
  EXPECT_EQ(GetShipStats().borrowed_bytes, 4096u);
  EXPECT_FALSE(Receipt::Open(good, 1, &error));  // installed already
  EXPECT_NE(error.find("overlaps a block already installed here"), std::string::npos) << error;
  // The payload is garbage: Finish refuses it and uninstalls the block.
  ASSERT_EQ(receipt->payload().size(), 1u);
  std::memset(receipt->payload()[0].data, 0x5a, receipt->payload()[0].size);
  EXPECT_FALSE(receipt->Finish(&error));
  EXPECT_NE(error.find("does not match the manifest (corrupt payload)"), std::string::npos)
      << error;
  EXPECT_EQ(GetShipStats().borrowed_bytes, 0u);
  receipt.reset();
  EXPECT_TRUE(Receipt::Open(good, 1, &error)) << error;  // installable again, then dropped
  EXPECT_EQ(GetShipStats().borrowed_bytes, 0u);
}

TEST(ShipTest, FreedBorrowedMemoryStaysWarmWithinItsCapAndNeverHitsABlockInstalledAgain) {
  AddressPlan plan = OwnPlan();
  const std::string small = ForeignManifest(plan, size_t{80} << 20);
  std::string error;
  const size_t warm0 = GetShipStats().warm_borrowed_bytes;
  Receipt::Open(small, 1, &error).reset();  // installed, then dropped: warm
  EXPECT_EQ(GetShipStats().warm_borrowed_bytes, warm0 + 4096);
  const ShipStats before = GetShipStats();
  std::optional<Receipt> again = Receipt::Open(small, 1, &error);  // the same block again
  ASSERT_TRUE(again) << error;
  EXPECT_EQ(GetShipStats().warm_borrowed_bytes, warm0);
  EXPECT_EQ(GetShipStats().installed_warm_bytes - before.installed_warm_bytes, 4096u);
  EXPECT_EQ(GetShipStats().installed_cold_bytes, before.installed_cold_bytes);
  std::memset(again->payload()[0].data, 0x5a, 4096);
  // 40 MiB more go warm: over the cap, the oldest is purged, and the small block's old entry
  // must be skipped (it is installed now).
  Receipt::Open(ForeignManifest(plan, size_t{128} << 20, size_t{40} << 20), 1, &error).reset();
  EXPECT_LE(GetShipStats().warm_borrowed_bytes, size_t{32} << 20);
  const auto* bytes = static_cast<const unsigned char*>(again->payload()[0].data);
  EXPECT_EQ(std::count(bytes, bytes + 4096, 0x5a), 4096);
}

// Pages of [p, p + size) resident in this process (mincore).
size_t ResidentPages(const void* p, size_t size) {
  std::vector<unsigned char> v(size / 4096);
  if (mincore(const_cast<void*>(p), size, v.data()) != 0) return 0;
  return static_cast<size_t>(
      std::count_if(v.begin(), v.end(), [](unsigned char c) { return (c & 1) != 0; }));
}

TEST(ShipTest, ACopiedBlockIsFaultedInForItsBytesBeforeTheyArriveAndNoFurther) {
  void* probe = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(probe, MAP_FAILED);
  const bool populate = madvise(probe, 4096, MADV_POPULATE_WRITE) == 0;
  munmap(probe, 4096);
  if (!populate) GTEST_SKIP() << "this kernel has no MADV_POPULATE_WRITE (Linux 5.14)";
  AddressPlan plan = OwnPlan();
  // A 1 MiB run of which 64 KiB are used: the bytes the payload fills.
  std::string manifest = ForeignManifest(plan, size_t{200} << 20, size_t{1} << 20);
  auto* h = reinterpret_cast<internal::ManifestHeader*>(manifest.data());
  auto* b = reinterpret_cast<internal::ManifestBlock*>(manifest.data() + sizeof(*h));
  b->used = 64 << 10;
  h->payload_bytes = b->used;
  std::string error;
  const ShipStats before = GetShipStats();
  std::optional<Receipt> receipt = Receipt::Open(manifest, 1, &error);
  ASSERT_TRUE(receipt) << error;
  ASSERT_EQ(receipt->payload().size(), 1u);
  const char* block = static_cast<const char*>(receipt->payload()[0].data);
  EXPECT_EQ(ResidentPages(block, 64 << 10), 16u);  // prefaulted (MADV_POPULATE_WRITE)
  EXPECT_EQ(ResidentPages(block + (64 << 10), (1 << 20) - (64 << 10)), 0u);  // not the rest
  EXPECT_EQ(GetShipStats().installed_cold_bytes - before.installed_cold_bytes, 64u << 10);
  EXPECT_EQ(GetShipStats().installed_warm_bytes, before.installed_warm_bytes);
}

// A lender cycling through more blocks than the warm cap holds: the blocks installed again
// after the cap purged them raise it, so the next cycles find every block warm; once the
// oldest warm block has waited a second, the next free halves the cap back to 32 MiB and the
// excess is purged.
TEST(ShipTest, TheWarmCapGrowsForALenderCyclingMoreBlocksThanItHoldsAndDecays) {
  AddressPlan plan = OwnPlan();
  constexpr size_t kBlocks = 48, kBlock = size_t{1} << 20;  // 48 MiB of 1 MiB runs
  std::vector<std::string> manifests;
  for (size_t i = 0; i < kBlocks; ++i) {
    manifests.push_back(ForeignManifest(plan, (size_t{512} << 20) + i * kBlock, kBlock));
  }
  std::string error;
  auto cycle = [&] {  // install every block, then free them all, in the same order
    const ShipStats before = GetShipStats();
    std::vector<std::optional<Receipt>> held;
    for (const std::string& m : manifests) {
      held.push_back(Receipt::Open(m, 1, &error));
      EXPECT_TRUE(held.back()) << error;
    }
    held.clear();
    const ShipStats after = GetShipStats();
    return std::pair{(after.installed_warm_bytes - before.installed_warm_bytes) / 4096,
                     (after.installed_cold_bytes - before.installed_cold_bytes) / 4096};
  };
  const size_t cap0 = GetShipStats().warm_borrowed_cap;
  EXPECT_EQ(cap0, size_t{32} << 20);
  EXPECT_EQ(cycle(), (std::pair<uint64_t, uint64_t>{0, kBlocks}));  // first stay: all cold
  EXPECT_LE(GetShipStats().warm_borrowed_bytes, cap0);              // 16 of them purged
  const auto second = cycle();  // those 16 come back cold and raise the cap by 16 MiB
  EXPECT_EQ(second.first + second.second, kBlocks);
  EXPECT_GE(second.second, 16u);
  EXPECT_GE(GetShipStats().warm_borrowed_cap, kBlocks * kBlock);
  EXPECT_EQ(cycle(), (std::pair<uint64_t, uint64_t>{kBlocks, 0}));  // now every block is warm
  EXPECT_EQ(cycle(), (std::pair<uint64_t, uint64_t>{kBlocks, 0}));  // and stays so
  EXPECT_EQ(GetShipStats().warm_borrowed_bytes, kBlocks * kBlock);
  // The warm blocks wait a second unused: the next free halves the cap (not below 32 MiB).
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  Receipt::Open(ForeignManifest(plan, size_t{600} << 20), 1, &error).reset();
  EXPECT_EQ(GetShipStats().warm_borrowed_cap, size_t{32} << 20);
  EXPECT_LE(GetShipStats().warm_borrowed_bytes, size_t{32} << 20);
}

TEST(ShipTest, NotesAboutAnotherLendersBlocksAreRelayedToThatLenderNotApplied) {
  AddressPlan plan = OwnPlan();
  ASSERT_GE(plan.processes, 3u);
  const LoanNote note{plan.SliceBase(2) + (size_t{3} << 20), 7, kLoanReturned};
  const ShipStats before = GetShipStats();
  EXPECT_EQ(AcceptLoanNotes(&note, 1), 0u);  // not a loan of this process
  ShipStats s = GetShipStats();
  EXPECT_EQ(s.notes_relayed - before.notes_relayed, 1u);
  EXPECT_EQ(s.stale_notes, before.stale_notes);
  EXPECT_EQ(s.notes_pending - before.notes_pending, 1u);
  EXPECT_NE(LendersWithLoanNotes() & (uint64_t{1} << 2), 0u);
  LoanNote out[4];
  ASSERT_EQ(TakeLoanNotes(2, out, 4), 1u);  // the engine sends it on to process 2
  EXPECT_EQ(out[0].block, note.block);
  EXPECT_EQ(out[0].generation, note.generation);
  EXPECT_EQ(out[0].holder, kLoanReturned);
  EXPECT_EQ(GetShipStats().notes_pending, before.notes_pending);
}

TEST(AddressPlanTest, ConfiguringAnotherPlanAfterTheFirstRegionIsAnError) {
  AddressPlan plan = OwnPlan();  // the space exists now
  std::string error;
  EXPECT_TRUE(ConfigureAddressPlan(plan, &error)) << error;  // the same one: fine
  AddressPlan other = plan;
  other.base += plan.slice_bytes * plan.processes;
  EXPECT_FALSE(ConfigureAddressPlan(other, &error));
  EXPECT_NE(error.find("already exists at another address plan"), std::string::npos) << error;
  other = plan;
  other.index = plan.processes;
  EXPECT_FALSE(ConfigureAddressPlan(other, &error));
  EXPECT_NE(error.find("invalid address plan"), std::string::npos) << error;
}

TEST(AddressPlanTest, TheBuildIdNamesThisBinary) {
  std::string id = ExecutableBuildId();
  EXPECT_GE(id.size(), 16u) << id;
  EXPECT_EQ(id, ExecutableBuildId());
}

}  // namespace
}  // namespace broom
