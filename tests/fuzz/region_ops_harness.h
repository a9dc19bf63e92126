// Copyright Broom authors.
//
// region_ops_harness.h: a fuzz harness that decodes bytes into a sequence of region operations
// and checks them against a reference model.
//
//   RunRegionOps(data, size)   decodes and runs one input. Operations: create each region kind
//                              (with random budgets and retention), allocate random sizes and
//                              alignments (including zero, overflowing and invalid ones), free in
//                              actor regions, Deallocate in bump regions, open and close scopes
//                              (temporary scopes and plain context scopes, strictly LIFO),
//                              allocate through the allocation context, construct objects with
//                              destructors, transfer a transferable region (Transfer(), move,
//                              Release/Adopt, to another thread and back, to another thread that
//                              frees it, Share()), migrate an actor region to another thread,
//                              change region and process budgets, Reset, destroy.
//   Invariants checked after every operation that can break them: every allocation is non-null
//   unless the model says it may fail (and then with the right AllocError), aligned, writable,
//   disjoint from every other live allocation, owned by the right region (RegionOf), and keeps its
//   per-allocation fill pattern until the model says it dies; destructors run exactly when the
//   model says; a destroyed region's memory no longer maps to it; a region's block bytes never
//   exceed its budget when it grows; and at the end of the input the global counters return to
//   where they started (every region destroyed, every block accounted for).
//
// A broken invariant prints "region_ops: <what>" with the operation number and aborts, which both
// libFuzzer and the GoogleTest driver report as a crash.
//
// Thread-safety: runs on the calling thread, starting and joining helper threads itself; one
// input at a time per process (it changes the process budget while it runs).
#ifndef BROOM_TESTS_FUZZ_REGION_OPS_HARNESS_H_
#define BROOM_TESTS_FUZZ_REGION_OPS_HARNESS_H_

#include <cstddef>
#include <cstdint>

namespace broom::fuzz {

struct HarnessOptions {
  int max_ops = 2000;                        // operations decoded per input at most
  int max_threads = 4;                       // helper threads started per input at most
  size_t max_live_bytes = size_t{24} << 20;  // allocations beyond this are skipped
  bool verbose = false;                      // print each operation to stderr
};

// What the inputs run so far in this process actually did (for judging a corpus's reach).
struct HarnessCounters {
  uint64_t inputs, creates, allocs_ok, allocs_failed, frees, scopes, transfers, thread_handoffs,
      shares, resets, destroys, tracked_objects;
  // CheckOutlives scans: how many, and violations reported in bytes the harness never wrote
  // (alignment padding, unwritten tails and gaps of blocks reused from other regions).
  uint64_t outlives_scans, stale_violations;
};
HarnessCounters GetHarnessCounters();

// Runs one input. Returns normally if every invariant held; aborts otherwise.
void RunRegionOps(const uint8_t* data, size_t size, const HarnessOptions& options = {});

}  // namespace broom::fuzz

#endif  // BROOM_TESTS_FUZZ_REGION_OPS_HARNESS_H_
