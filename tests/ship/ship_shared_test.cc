// Copyright Broom authors.
//
// Shared mode (broom/ship.h, ShipMode::kShared): the processes of a job on one machine back their
// slices with shared memory, and a shipment carries only the manifest: the receiver maps the
// sender's pages at the same addresses. This binary runs with its own slice shared
// (BROOM_PLAN_SHARED=1, set in main before the first region) and plays process 0; the other
// processes are tests/ship/ship_peer.cc, as in ship_test.cc. Covered: pointer-rich graphs both
// ways with zero payload bytes copied on either side, loans returned; copy mode between shared
// slices; a sender killed while its region is held here (the region reads and frees cleanly, the
// mapping goes with it); a receiver killed while holding loans (ForgetPeer, memory reused); a
// chain 0 -> 1 -> 2 in shared mode (2 maps 0's pages and 1's; nothing copied on either hop), and
// with blocks 1 received in copy mode (shared mode refuses them clearly, copy mode carries them);
// shared mode without a shared slice; purging frees shared pages; fork; bad manifests.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "alloc/region/ship_internal.h"
#include "broom/check.h"
#include "broom/memory.h"
#include "broom/ship.h"
#include "broom/transferable_region.h"
#include "tests/ship/graph.h"
#include "tests/ship/peer_process.h"
#include "tests/ship/ship_test_util.h"
#include "tests/ship/wire.h"

int main(int argc, char** argv) { return broom::testing::RunShipTests(argc, argv, true); }

namespace broom {
namespace {

using testing::Build;
using testing::Digest;
using testing::ExpectNotes;
using testing::Graph;
using testing::Grow;
using testing::OwnPlan;
using testing::PeerProcess;
using testing::PlanEnv;

const char kSelf[] = "/proc/self/exe";

// Process 0 (this test) and process 1 (ship_peer echo, its slice shared, shipping back in
// `mode`) on 127.0.0.1.
class ShipSharedTest : public ::testing::Test {
 protected:
  void Start(const char* mode, bool peer_shared = true) {
    SetCheckMode(CheckMode::kFatal);
    plan_ = OwnPlan();
    ASSERT_TRUE(plan_.shared_memory) << "BROOM_PLAN_SHARED=1 did not give a shared slice";
    uint16_t port = 0;
    listener_ = testing::Listen(&port);
    ASSERT_GE(listener_, 0);
    peer_.emplace(kSelf, std::vector<std::string>{"--peer", "echo", std::to_string(port), mode},
                  PlanEnv(plan_, 1, peer_shared));
    fd_ = testing::Accept(listener_);
    ASSERT_GE(fd_, 0) << "the peer did not connect: " << peer_->ReadLine(1);
  }
  void TearDown() override {
    peer_.reset();
    if (fd_ >= 0) close(fd_);
    if (listener_ >= 0) close(listener_);
    ForgetPeer(1);  // as an engine does when a connection ends: its mapping goes
    EXPECT_EQ(GetShipStats().shared_slices_mapped, 0u);
  }
  void Quit() {
    const char quit = 'Q';
    ASSERT_TRUE(testing::WriteAll(fd_, &quit, 1));
    EXPECT_EQ(peer_->ReadLine(), "STATS loaned=0 borrowed=0");
    EXPECT_EQ(peer_->Wait(), 0);
  }

  AddressPlan plan_;
  int listener_ = -1;
  int fd_ = -1;
  std::optional<PeerProcess> peer_;
};

TEST_F(ShipSharedTest, PointerRichGraphsTravelBothWaysWithoutCopyingAPayloadByte) {
  Start("shared");
  const ShipStats before = GetShipStats();
  const std::vector<std::vector<std::array<int, 3>>> cases = {
      {{1, 3, 0}}, {{2, 400, 0}}, {{3, 2000, 0}, {4, 10, 3 << 20}}};
  for (const auto& steps : cases) {
    Message<Graph> m = Build(steps);
    const std::string sent = Digest(*m, &m.region().region());
    ASSERT_NE(sent.find("outside=0"), std::string::npos) << sent;
    const void* root = m.get();
    const size_t blocks = m.region().stats().block_bytes;
    std::string error;
    ASSERT_TRUE(testing::SendRegion(fd_, 'S', m, 1, &error, ShipMode::kShared)) << error;
    EXPECT_GE(GetShipStats().loaned_bytes, blocks);
    EXPECT_EQ(peer_->ReadLine(), "GOT " + sent);

    ASSERT_EQ(testing::ReadTag(fd_), 'S');  // back, grown there, in shared mode too
    std::optional<Message<Graph>> back = testing::ReceiveRegion<Graph>(fd_, 1, &error);
    ASSERT_TRUE(back) << error;
    ExpectNotes(fd_);
    EXPECT_EQ(back->get(), root);
    std::vector<std::array<int, 3>> grown = steps;
    grown.push_back({99, 50, 0});
    Message<Graph> expect = Build(grown);
    EXPECT_EQ(Digest(**back, &back->region().region()), Digest(*expect, &expect.region().region()));
    EXPECT_STREQ(back->region().region().name(), "graph");
    EXPECT_EQ(CheckOutlives(back->region().region()).violation_count, 0u);
    Grow(*back, 5, 20);
    back.reset();
    ASSERT_TRUE(testing::SendNotes(fd_, 1));
  }
  Message<Graph> m = Build({{7, 300, 100000}});
  const std::string sent = Digest(*m, &m.region().region());
  std::string error;
  ASSERT_TRUE(testing::SendRegion(fd_, 'F', m, 1, &error, ShipMode::kShared)) << error;
  EXPECT_EQ(peer_->ReadLine(), "GOT " + sent);
  ExpectNotes(fd_);

  const ShipStats after = GetShipStats();
  EXPECT_EQ(after.loaned_bytes, 0u);
  EXPECT_EQ(after.borrowed_bytes, 0u);
  EXPECT_EQ(after.regions_shipped - before.regions_shipped, 4u);
  EXPECT_EQ(after.regions_received - before.regions_received, 3u);
  EXPECT_EQ(after.payload_bytes_sent, before.payload_bytes_sent);  // nothing copied, either way
  EXPECT_EQ(after.payload_bytes_received, before.payload_bytes_received);
  EXPECT_GT(after.mapped_bytes_sent, before.mapped_bytes_sent + (3u << 20));
  EXPECT_GT(after.mapped_bytes_received, before.mapped_bytes_received);
  EXPECT_EQ(after.shared_slices_mapped, 1u);  // process 1's slice, mapped once
  const char payload = 'P';
  ASSERT_TRUE(testing::WriteAll(fd_, &payload, 1));
  const std::string line = peer_->ReadLine();
  EXPECT_EQ(line.rfind("PAYLOAD sent=0 received=0 mapped_sent=", 0), 0u) << line;
  EXPECT_NE(line.find("mapped_slices=1"), std::string::npos) << line;
  Quit();
}

TEST_F(ShipSharedTest, CopyModeStillWorksBetweenSharedSlices) {
  Start("copy");
  const ShipStats before = GetShipStats();
  Message<Graph> m = Build({{8, 500, 200000}});
  const std::string sent = Digest(*m, &m.region().region());
  std::string error;
  ASSERT_TRUE(testing::SendRegion(fd_, 'S', m, 1, &error)) << error;
  EXPECT_EQ(peer_->ReadLine(), "GOT " + sent);
  ASSERT_EQ(testing::ReadTag(fd_), 'S');
  std::optional<Message<Graph>> back = testing::ReceiveRegion<Graph>(fd_, 1, &error);
  ASSERT_TRUE(back) << error;
  ExpectNotes(fd_);
  Message<Graph> expect = Build({{8, 500, 200000}, {99, 50, 0}});
  EXPECT_EQ(Digest(**back, &back->region().region()), Digest(*expect, &expect.region().region()));
  back.reset();
  ASSERT_TRUE(testing::SendNotes(fd_, 1));
  const ShipStats after = GetShipStats();
  EXPECT_GT(after.payload_bytes_sent, before.payload_bytes_sent + 200000);
  EXPECT_GT(after.payload_bytes_received, before.payload_bytes_received);
  // Every byte copied in landed in resident pages (this process's own blocks, home) or fresh
  // ones (the peer's new block).
  EXPECT_GT(after.installed_warm_bytes, before.installed_warm_bytes);
  EXPECT_GT(after.installed_cold_bytes, before.installed_cold_bytes);
  EXPECT_EQ(after.installed_warm_bytes - before.installed_warm_bytes + after.installed_cold_bytes -
                before.installed_cold_bytes,
            after.payload_bytes_received - before.payload_bytes_received);
  EXPECT_EQ(after.mapped_bytes_sent, before.mapped_bytes_sent);
  EXPECT_EQ(after.shared_slices_mapped, 0u);
  EXPECT_EQ(after.loaned_bytes, 0u);
  Quit();
}

TEST_F(ShipSharedTest, AReceiverKilledWhileHoldingSharedLoansGivesThemBackForReuse) {
  Start("shared");
  const ShipStats before = GetShipStats();
  std::vector<const void*> objects;
  for (int i = 0; i < 3; ++i) {
    Message<Graph> m = Build({{20 + i, 300, i == 2 ? 1 << 20 : 0}});
    objects.push_back(&m.region().region());
    std::string error;
    ASSERT_TRUE(testing::SendRegion(fd_, 'H', m, 1, &error, ShipMode::kShared)) << error;
    ASSERT_EQ(peer_->ReadLine(), "HELD " + std::to_string(i + 1));
  }
  const size_t lent = GetShipStats().loaned_blocks - before.loaned_blocks;
  ASSERT_GT(lent, 3u);
  ASSERT_EQ(kill(peer_->pid(), SIGKILL), 0);
  EXPECT_EQ(testing::ReadTag(fd_), 0);  // the connection ends
  EXPECT_EQ(ForgetPeer(1), lent);
  const ShipStats after = GetShipStats();
  EXPECT_EQ(after.loaned_bytes, 0u);
  EXPECT_EQ(after.loaned_blocks, 0u);
  EXPECT_EQ(after.reclaimed_blocks - before.reclaimed_blocks, lent);
  std::vector<Message<Graph>> fresh;  // the same shared pages are carved again
  bool reused = false;
  for (int i = 0; i < 512 && !reused; ++i) {
    fresh.push_back(Build({{60, 1, 0}}));
    reused =
        std::find(objects.begin(), objects.end(), &fresh.back().region().region()) != objects.end();
  }
  EXPECT_TRUE(reused) << "no new region reused a block taken back from the dead process";
  Message<Graph> check = Build({{61, 200, 0}});  // and they hold new content correctly
  EXPECT_NE(Digest(*check, &check.region().region()).find("outside=0"), std::string::npos);
}

TEST(ShipSharedFailureTest, ASenderKilledWhileItsRegionIsHeldHereLeavesTheRegionReadable) {
  SetCheckMode(CheckMode::kFatal);
  const AddressPlan plan = OwnPlan();
  uint16_t port = 0;
  const int listener = testing::Listen(&port);
  ASSERT_GE(listener, 0);
  PeerProcess peer(kSelf, {"--peer", "give", std::to_string(port), "shared"},
                   PlanEnv(plan, 1, true));
  const int fd = testing::Accept(listener);
  ASSERT_GE(fd, 0);
  const ShipStats before = GetShipStats();
  ASSERT_EQ(testing::ReadTag(fd), 'F');
  std::string error;
  std::optional<Message<Graph>> m = testing::ReceiveRegion<Graph>(fd, 1, &error);
  ASSERT_TRUE(m) << error;
  const std::string line = peer.ReadLine();
  ASSERT_EQ(line.rfind("SENT ", 0), 0u) << line;
  const std::string digest = line.substr(5);
  EXPECT_EQ(Digest(**m, &m->region().region()), digest);
  EXPECT_EQ(GetShipStats().payload_bytes_received, before.payload_bytes_received);

  ASSERT_EQ(kill(peer.pid(), SIGKILL), 0);
  EXPECT_NE(peer.Wait(), -1);  // gone
  EXPECT_EQ(testing::ReadTag(fd), 0);
  EXPECT_EQ(ForgetPeer(1), 0u);  // it held nothing of ours
  // Its memory lives on while this process maps it: the region reads, grows and frees.
  EXPECT_EQ(GetShipStats().shared_slices_mapped, 1u);
  EXPECT_EQ(Digest(**m, &m->region().region()), digest);
  Grow(*m, 71, 300, 100000);
  EXPECT_EQ(CheckOutlives(m->region().region()).violation_count, 0u);
  EXPECT_NE(Digest(**m, &m->region().region()).find("outside=0"), std::string::npos);
  const uint64_t pending = GetShipStats().notes_pending;
  m.reset();
  const ShipStats after = GetShipStats();
  EXPECT_EQ(after.borrowed_bytes, 0u);
  EXPECT_EQ(after.borrowed_blocks, 0u);
  EXPECT_EQ(after.shared_slices_mapped, 0u);  // unmapped with its last block
  EXPECT_EQ(after.notes_pending, pending);    // no notes for a forgotten lender
  close(fd);
  close(listener);
}

// Process 2 ships a region here in shared mode and dies; this process ships the region on to
// process 1 in shared mode. 1 can no longer open 2's memfd through 2's /proc and opens it through
// this process's descriptor of the same file instead (ManifestLender::via_fd): it reads the
// region with nothing copied.
TEST(ShipSharedFailureTest, ARegionShippedOnAfterItsFirstLenderDiedIsMappedThroughTheSender) {
  SetCheckMode(CheckMode::kFatal);
  const AddressPlan plan = OwnPlan();
  ASSERT_GE(plan.processes, 3u);
  uint16_t port = 0;
  const int listener = testing::Listen(&port);
  ASSERT_GE(listener, 0);
  std::string error;
  std::string digest;
  std::optional<Message<Graph>> m;
  {
    PeerProcess a(kSelf, {"--peer", "give", std::to_string(port), "shared"},
                  PlanEnv(plan, 2, true));
    const int from_a = testing::Accept(listener);
    ASSERT_GE(from_a, 0);
    ASSERT_EQ(testing::ReadTag(from_a), 'F');
    m = testing::ReceiveRegion<Graph>(from_a, 2, &error);
    ASSERT_TRUE(m) << error;
    const std::string line = a.ReadLine();
    ASSERT_EQ(line.rfind("SENT ", 0), 0u) << line;
    digest = line.substr(5);
    ASSERT_EQ(kill(a.pid(), SIGKILL), 0);
    EXPECT_NE(a.Wait(), -1);  // gone: /proc/<its pid> with it
    close(from_a);
  }
  PeerProcess c(kSelf, {"--peer", "sink", std::to_string(port), "shared", "0"},
                PlanEnv(plan, 1, true));
  const int to_c = testing::Accept(listener);
  ASSERT_GE(to_c, 0);
  ASSERT_TRUE(testing::SendRegion(to_c, 'F', *m, 1, &error, ShipMode::kShared)) << error;
  EXPECT_EQ(c.ReadLine(), "GOT " + digest);
  const std::string payload = c.ReadLine();
  EXPECT_EQ(payload.rfind("PAYLOAD sent=0 received=0 mapped_sent=0 mapped_received=", 0), 0u)
      << payload;
  EXPECT_NE(payload.find("mapped_slices=1"), std::string::npos) << payload;  // 2's, no other
  ExpectNotes(to_c);  // its notes for 0 and 1 (its returns are 2's, which is gone)
  ExpectNotes(to_c);
  ForgetPeer(2);
  const char quit = 'Q';
  ASSERT_TRUE(testing::WriteAll(to_c, &quit, 1));
  EXPECT_EQ(c.ReadLine(), "STATS loaned=0 borrowed=0");
  EXPECT_EQ(GetShipStats().loaned_bytes, 0u);
  close(to_c);
  close(listener);
}

// Process 0 -> 1 (relay, shared) -> 2 (sink). Round 1: 1 holds 0's pages mapped and ships them
// on in shared mode with its own; 2 maps both processes' memory, so no byte is copied on either
// hop. Round 2: 0 ships in copy mode, so 1's copies of 0's blocks are private memory; shared mode
// refuses them with a clear error and 1 ships on in copy mode. Loans balance on all three.
TEST(ShipSharedChainTest, OnwardShippingInSharedModeMapsEveryLendersPagesAndCopiesNothing) {
  SetCheckMode(CheckMode::kFatal);
  const AddressPlan plan = OwnPlan();
  ASSERT_GE(plan.processes, 3u);
  uint16_t port = 0;
  const int listener = testing::Listen(&port);
  ASSERT_GE(listener, 0);
  PeerProcess b(kSelf, {"--peer", "relay", std::to_string(port), "shared"}, PlanEnv(plan, 1, true));
  const int fd = testing::Accept(listener);
  ASSERT_GE(fd, 0);
  unsigned b_port = 0;
  const std::string port_line = b.ReadLine();
  ASSERT_EQ(std::sscanf(port_line.c_str(), "PORT %u", &b_port), 1) << port_line;
  PeerProcess c(kSelf, {"--peer", "sink", std::to_string(b_port), "shared"},
                PlanEnv(plan, 2, true));

  const ShipStats before = GetShipStats();
  const std::vector<std::array<int, 3>> steps = {{31, 1500, 0}, {32, 5, 300000}};
  Message<Graph> expect = Build({{31, 1500, 0}, {32, 5, 300000}, {99, 50, 300000}});
  const std::string grown = Digest(*expect, &expect.region().region());
  // The PAYLOAD line's mapped_sent or mapped_received; -1 if absent.
  auto field = [](const std::string& line, const char* name) {
    const size_t at = line.find(std::string(" ") + name + "=");
    return at == std::string::npos ? -1LL : std::atoll(line.c_str() + at + std::strlen(name) + 2);
  };
  std::string error;
  {
    Message<Graph> m = Build(steps);
    const std::string sent = Digest(*m, &m.region().region());
    ASSERT_TRUE(testing::SendRegion(fd, 'S', m, 1, &error, ShipMode::kShared)) << error;
    EXPECT_EQ(b.ReadLine(), "GOT " + sent);
  }
  const std::string relay = b.ReadLine();  // 1 received and sent only manifests
  EXPECT_EQ(relay.rfind("PAYLOAD sent=0 received=0 mapped_sent=", 0), 0u) << relay;
  EXPECT_GT(field(relay, "mapped_sent"), 300000) << relay;  // 0's blocks and its own
  EXPECT_EQ(c.ReadLine(), "GOT " + grown);
  const std::string sink = c.ReadLine();  // 2 copied nothing: it mapped slices 0 and 1
  EXPECT_EQ(sink.rfind("PAYLOAD sent=0 received=0 mapped_sent=0 mapped_received=", 0), 0u) << sink;
  EXPECT_EQ(field(sink, "mapped_received"), field(relay, "mapped_sent")) << sink;
  EXPECT_NE(sink.find("mapped_slices=2"), std::string::npos) << sink;
  ExpectNotes(fd);  // 1's "moved to 2"
  ExpectNotes(fd);  // 2's returns, relayed by 1
  ShipStats after = GetShipStats();
  EXPECT_EQ(after.loaned_bytes, 0u);
  EXPECT_EQ(after.stale_notes, before.stale_notes);
  EXPECT_EQ(after.payload_bytes_sent, before.payload_bytes_sent);

  {
    Message<Graph> m = Build(steps);
    ASSERT_TRUE(testing::SendRegion(fd, 'S', m, 1, &error)) << error;  // copy mode
    EXPECT_EQ(b.ReadLine().rfind("GOT ", 0), 0u);
  }
  const std::string refused = b.ReadLine();
  EXPECT_EQ(refused.rfind("REFUSED cannot ship", 0), 0u) << refused;
  for (const char* part : {"in shared mode to process 2", "of process 0's slice",
                           "received in copy mode", "ship it in copy mode"}) {
    EXPECT_NE(refused.find(part), std::string::npos) << part << " in: " << refused;
  }
  EXPECT_EQ(c.ReadLine(), "GOT " + grown);
  const std::string copied = c.ReadLine();
  EXPECT_GT(field(copied, "received"), 300000) << copied;
  ExpectNotes(fd);
  ExpectNotes(fd);
  after = GetShipStats();
  EXPECT_EQ(after.loaned_bytes, 0u);
  EXPECT_EQ(after.stale_notes, before.stale_notes);
  const char quit = 'Q';
  ASSERT_TRUE(testing::WriteAll(fd, &quit, 1));
  EXPECT_EQ(b.ReadLine().rfind("STATS loaned=0 borrowed=0 relayed=", 0), 0u);
  EXPECT_EQ(c.ReadLine(), "STATS loaned=0 borrowed=0");
  close(fd);
  close(listener);
}

TEST(ShipSharedModeTest, SharedModeWithoutASharedSliceIsAClearError) {
  const AddressPlan plan = OwnPlan();
  PeerProcess plain(kSelf, {"--peer", "shipshared"}, PlanEnv(plan, 1, false));
  const std::string line = plain.ReadLine();
  EXPECT_EQ(line.rfind("SHIP error=cannot ship", 0), 0u) << line;
  for (const char* part : {"in shared mode", "not backed by shared memory", "BROOM_PLAN_SHARED=1",
                           "ship it in copy mode"}) {
    EXPECT_NE(line.find(part), std::string::npos) << part << " in: " << line;
  }
  PeerProcess shared(kSelf, {"--peer", "shipshared"}, PlanEnv(plan, 1, true));
  EXPECT_EQ(shared.ReadLine(), "SHIP ok");
}

// The bytes the kernel has allocated to this process's slice's memfd (its st_blocks), KiB; -1
// if it is not found among this process's descriptors. (RssShmem would not do: MADV_DONTNEED
// drops this process's mappings of the pages, which the file keeps.)
long SharedFileKb() {
  for (int fd = 0; fd < 1024; ++fd) {
    char link[64], target[256];
    std::snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    const ssize_t n = readlink(link, target, sizeof(target) - 1);
    if (n <= 0) continue;
    target[n] = '\0';
    struct stat st;
    if (std::strstr(target, "memfd:broom-slice") != nullptr && fstat(fd, &st) == 0) {
      return static_cast<long>(st.st_blocks / 2);
    }
  }
  return -1;
}

TEST(ShipSharedModeTest, PurgingFreedBlocksFreesTheSharedPages) {
  ReleaseFreeMemory(/*all=*/true);
  const long start = SharedFileKb();
  ASSERT_GE(start, 0);
  {
    TransferableRegion r;
    for (int i = 0; i < 64; ++i) std::memset(r.Allocate(1 << 20), 0x5a, 1 << 20);
    EXPECT_GT(SharedFileKb() - start, 60 * 1024);  // the slice's pages are the memfd's
  }
  ReleaseFreeMemory(/*all=*/true);
  EXPECT_LT(SharedFileKb() - start, 4 * 1024);  // freed, not only unmapped from this process
}

TEST(ShipSharedModeTest, AForkedChildCannotWriteIntoTheSharedSlice) {
  TransferableRegion r;
  auto* p = static_cast<volatile char*>(r.Allocate(64));
  *p = 'p';
  const pid_t child = fork();
  if (child == 0) {
    struct sigaction fault {};
    fault.sa_handler = [](int) { _exit(77); };
    sigaction(SIGSEGV, &fault, nullptr);
    *p = 'c';  // must fault: the parent's (and its peers') memory is not the child's
    _exit(0);
  }
  ASSERT_GT(child, 0);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 77) << "the child did not fault";
  EXPECT_EQ(*p, 'p');
}

// A shared-mode manifest from process 1 for one 4 KiB block, naming memfd `shm`.
std::string SharedManifest(const AddressPlan& plan, const internal::ManifestHeader& shm) {
  internal::ManifestHeader h = shm;
  h.magic = internal::kManifestMagic;
  h.version = internal::kManifestVersion;
  h.mode = internal::kManifestShared;
  h.from = 1;
  h.to = 0;
  h.block_count = 1;
  h.name_length = 0;
  h.payload_bytes = 0;
  internal::ManifestBlock b{};
  b.address = plan.SliceBase(1) + (size_t{64} << 20);
  b.size = 4096;
  b.used = 4096;
  b.block_class = internal::kPageBlockClass;
  h.current = b.address;
  h.current_base = b.address + 1024;
  h.cursor = b.address + 1024;
  h.build_hash = 1469598103934665603ull;
  for (unsigned char c : ExecutableBuildId()) h.build_hash = (h.build_hash ^ c) * 1099511628211ull;
  std::string m(reinterpret_cast<const char*>(&h), sizeof(h));
  m.append(reinterpret_cast<const char*>(&b), sizeof(b));
  return m;
}

TEST(ShipSharedModeTest, SharedManifestsWhoseMemoryCannotBeMappedAreRefusedClearly) {
  const AddressPlan plan = OwnPlan();
  internal::ManifestHeader shm{};
  shm.shm_machine = 12345;  // not this machine's boot
  std::string error;
  const ShipStats before = GetShipStats();
  EXPECT_FALSE(Receipt::Open(SharedManifest(plan, shm), 1, &error));
  EXPECT_NE(error.find("from another machine"), std::string::npos) << error;
  EXPECT_NE(error.find("ship in copy mode"), std::string::npos) << error;
  // This machine, but a process that does not exist.
  {
    TransferableRegion r;  // this process's own id, as a sender would put it
    r.Allocate(16);
    ShipOptions options;
    options.mode = ShipMode::kShared;
    std::optional<Shipment> s = Ship(r, 1, options, &error);
    ASSERT_TRUE(s) << error;
    std::memcpy(&shm, s->manifest().data(), sizeof(shm));
  }
  shm.shm_pid = 0x7ffffff0;
  EXPECT_FALSE(Receipt::Open(SharedManifest(plan, shm), 1, &error));
  EXPECT_NE(error.find("cannot open process 1's shared memory (/proc/"), std::string::npos)
      << error;
  EXPECT_NE(error.find("ship in copy mode"), std::string::npos) << error;
  // A block process 1 shipped in copy mode is installed here: its shared memory cannot be
  // mapped over it (the block's bytes here would be replaced).
  std::string copy = SharedManifest(plan, internal::ManifestHeader{});
  auto* ch = reinterpret_cast<internal::ManifestHeader*>(copy.data());
  auto* cb = reinterpret_cast<internal::ManifestBlock*>(copy.data() + sizeof(*ch));
  ch->mode = internal::kManifestCopy;
  ch->payload_bytes = 4096;
  cb->by_value = 1;
  std::optional<Receipt> copied = Receipt::Open(copy, 1, &error);
  ASSERT_TRUE(copied) << error;
  EXPECT_FALSE(Receipt::Open(SharedManifest(plan, shm), 1, &error));
  EXPECT_NE(error.find("shipped here in copy mode are still held here"), std::string::npos)
      << error;
  copied.reset();
  const ShipStats after = GetShipStats();
  EXPECT_EQ(after.borrowed_bytes, before.borrowed_bytes);  // nothing installed
  EXPECT_EQ(after.shared_slices_mapped, 0u);
}

}  // namespace
}  // namespace broom
