// Copyright Broom authors.
//
// ship_test_util.h: what the two-process shipping tests (ship_test.cc, ship_shared_test.cc)
// share: their main, which runs ship_peer.cc instead when started as a peer, and two checks.
//
// Thread-safety: test-thread only.
#ifndef BROOM_TESTS_SHIP_SHIP_TEST_UTIL_H_
#define BROOM_TESTS_SHIP_SHIP_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "broom/ship.h"
#include "tests/ship/wire.h"

int ShipPeerMain(int argc, char** argv);  // ship_peer.cc

namespace broom::testing {

// The tests' main: the peer processes are this executable, run with --peer first. With
// `shared_slice`, this process's slice is shared memory (set before the first region).
inline int RunShipTests(int argc, char** argv, bool shared_slice) {
  if (argc > 1 && std::strcmp(argv[1], "--peer") == 0) return ShipPeerMain(argc - 2, argv + 2);
  if (shared_slice) setenv("BROOM_PLAN_SHARED", "1", 1);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}

// This process's address plan; a test failure if it has none.
inline AddressPlan OwnPlan() {
  AddressPlan plan;
  std::string error;
  EXPECT_TRUE(GetAddressPlan(&plan, &error)) << error;
  return plan;
}

// Applies the 'N' frame (loan notes) a peer sends on `fd` after each region.
inline void ExpectNotes(int fd) {
  ASSERT_EQ(ReadTag(fd), 'N');
  ASSERT_GE(ReceiveNotes(fd), 0);
}

}  // namespace broom::testing

#endif  // BROOM_TESTS_SHIP_SHIP_TEST_UTIL_H_
