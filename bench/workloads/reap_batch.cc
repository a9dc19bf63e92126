// Copyright Broom authors.
//
// reap_batch: per-object allocate and free in an actor's state, as a whole program built once
// per heap (heaps.h: broom = an ActorRegion, malloc under LD_PRELOAD, pmr_pool, mimalloc_heap),
// so that bench/tools/specs/reap_batch.json and reap_pairs.json run every heap side by side.
//
//   --pattern=batch  n objects are allocated (the fill, from fresh memory), then each round frees
//                    all n one by one in a random order and allocates n again, slot i getting
//                    its size s_i again. Every round after the fill therefore allocates from
//                    memory freed in an order unrelated to its address order: this measures
//                    reuse after a scattering free. The permutations (up to 64 distinct ones,
//                    at most 16 MiB) are drawn before the clock starts.
//   --pattern=pair   allocate, write, free: one live object at a time.
//   --pattern=ring   a ring of 256 live objects: each step frees the object allocated 256 steps
//                    earlier and allocates one in its slot (so that a heap's special cases for
//                    particular addresses average out rather than decide the result).
//   --sizes=A-B|N|mixed  object sizes (program_common.h, SizeMix), drawn before the clock
//                    starts: per slot for batch, a table of 4096 cycled for pair and ring.
//   --n=N            objects in the batch (batch only; default 100000)
//   --ops=N          alloc+free pairs to time (default 4M); batch runs max(2, ops / n) rounds.
//
// Every object gets one 8-byte write at its start when allocated; the size comes from an array
// at run time (as in malloc(n)), for every heap alike.
//
// Output: `RESULT policy=... pattern=... sizes=... n=... ops=<pairs timed> cpu_seconds=<process
// CPU of the timed part> ns_per_pair=<CPU ns per alloc+free pair> ...`; batch adds rounds,
// fill_ns_per_alloc (the fill, from fresh memory) and, for n >= 65536 (where the clock's own
// cost is negligible), free_ns and alloc_ns (per object, rounds only); plus peak_rss_kib and the
// heap's own keys (broom: peak_block_bytes).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "bench/workloads/heaps.h"
#include "bench/workloads/program_common.h"

namespace broom::bench {
namespace {

inline void Touch(void* p, uint64_t value) { *static_cast<volatile uint64_t*>(p) = value; }

constexpr size_t kSizeTable = 4096;  // a power of two
constexpr size_t kRing = 256;

struct Timing {
  double seconds = 0;
  uint64_t pairs = 0;
};

Timing Pair(Heap& heap, const std::vector<uint32_t>& sizes, uint64_t ops) {
  const double start = ProcessCpuSeconds();
  for (uint64_t i = 0; i < ops; ++i) {
    const size_t size = sizes[i & (kSizeTable - 1)];
    void* p = heap.Allocate(size);
    Touch(p, i);
    Escape(p);
    heap.Free(p, size);
  }
  return {ProcessCpuSeconds() - start, ops};
}

Timing Ring(Heap& heap, const std::vector<uint32_t>& sizes, uint64_t ops) {
  void* ring[kRing];
  uint32_t ring_size[kRing];
  for (size_t i = 0; i < kRing; ++i) {
    ring_size[i] = sizes[(kSizeTable - kRing + i) & (kSizeTable - 1)];
    ring[i] = heap.Allocate(ring_size[i]);
    Touch(ring[i], i);
  }
  const double start = ProcessCpuSeconds();
  for (uint64_t i = 0; i < ops; ++i) {
    const size_t slot = i & (kRing - 1);
    heap.Free(ring[slot], ring_size[slot]);
    const uint32_t size = sizes[i & (kSizeTable - 1)];
    void* p = heap.Allocate(size);
    Touch(p, i);
    ring[slot] = p;
    ring_size[slot] = size;
  }
  const double seconds = ProcessCpuSeconds() - start;
  for (size_t i = 0; i < kRing; ++i) heap.Free(ring[i], ring_size[i]);
  return {seconds, ops};
}

// A uniformly random permutation of [0, n) (Fisher-Yates).
std::vector<uint32_t> Permutation(size_t n, Rng& rng) {
  std::vector<uint32_t> perm(n);
  for (size_t i = 0; i < n; ++i) perm[i] = static_cast<uint32_t>(i);
  for (size_t i = n - 1; i > 0; --i) std::swap(perm[i], perm[rng.Below(i + 1)]);
  return perm;
}

Timing Batch(Heap& heap, const std::vector<uint32_t>& sizes, uint64_t ops, Result& result) {
  const size_t n = sizes.size();
  const uint64_t rounds = std::max<uint64_t>(2, ops / n);
  const size_t distinct = static_cast<size_t>(
      std::clamp<uint64_t>((size_t{4} << 20) / n, 1, std::min<uint64_t>(rounds, 64)));
  Rng rng(7);
  std::vector<std::vector<uint32_t>> perms;
  for (size_t k = 0; k < distinct; ++k) perms.push_back(Permutation(n, rng));
  std::vector<void*> ptrs(n);

  const double fill_start = ProcessCpuSeconds();
  for (size_t i = 0; i < n; ++i) {
    ptrs[i] = heap.Allocate(sizes[i]);
    Touch(ptrs[i], i);
  }
  const double fill_seconds = ProcessCpuSeconds() - fill_start;

  // The phases are timed apart only where a round is long enough for the clock not to matter.
  const bool split = n >= 65536;
  double free_seconds = 0;
  const double start = ProcessCpuSeconds();
  for (uint64_t r = 0; r < rounds; ++r) {
    const uint32_t* perm = perms[r % distinct].data();
    const double free_start = split ? ProcessCpuSeconds() : 0;
    for (size_t j = 0; j < n; ++j) {
      const uint32_t i = perm[j];
      heap.Free(ptrs[i], sizes[i]);
    }
    if (split) free_seconds += ProcessCpuSeconds() - free_start;
    for (size_t i = 0; i < n; ++i) {
      ptrs[i] = heap.Allocate(sizes[i]);
      Touch(ptrs[i], r + i);
    }
  }
  const double seconds = ProcessCpuSeconds() - start;
  for (size_t i = 0; i < n; ++i) heap.Free(ptrs[i], sizes[i]);

  const double objects = static_cast<double>(rounds) * static_cast<double>(n);
  result.Add("rounds", static_cast<double>(rounds))
      .Add("fill_ns_per_alloc", fill_seconds * 1e9 / static_cast<double>(n));
  if (split) {
    result.Add("free_ns", free_seconds * 1e9 / objects)
        .Add("alloc_ns", (seconds - free_seconds) * 1e9 / objects);
  }
  return {seconds, rounds * n};
}

int Main(int argc, char** argv) {
  Flags flags(argc, argv);
  const std::string pattern = flags.Str("pattern", "batch");
  const std::string sizes_name = flags.Str("sizes", "16-256");
  const size_t n = static_cast<size_t>(flags.Int("n", 100000, 1));
  const uint64_t ops = static_cast<uint64_t>(flags.Int("ops", 4000000, 1));
  flags.CheckAllUsed();
  if (pattern != "batch" && pattern != "pair" && pattern != "ring") {
    std::fprintf(stderr, "--pattern=%s: expected batch, pair or ring\n", pattern.c_str());
    return 2;
  }
  if (n > UINT32_MAX) {
    std::fprintf(stderr, "--n=%zu: at most %u objects\n", n, UINT32_MAX);
    return 2;
  }
  const SizeMix mix = SizeMix::Parse(sizes_name);
  const std::vector<uint32_t> sizes = mix.Draw(pattern == "batch" ? n : kSizeTable, 11);

  Heap heap;
  Result result;
  result.Add("policy", Heap::Name()).Add("pattern", pattern).Add("sizes", sizes_name);
  Timing t;
  if (pattern == "batch") {
    result.Add("n", static_cast<double>(n));
    t = Batch(heap, sizes, ops, result);
  } else {
    t = pattern == "pair" ? Pair(heap, sizes, ops) : Ring(heap, sizes, ops);
  }
  result.Add("ops", static_cast<double>(t.pairs))
      .Add("cpu_seconds", t.seconds)
      .Add("ns_per_pair", t.seconds * 1e9 / static_cast<double>(t.pairs))
      .Add("peak_rss_kib", static_cast<double>(PeakRssKiB()));
  return FinishRun("reap_batch", heap, result);
}

}  // namespace
}  // namespace broom::bench

int main(int argc, char** argv) { return broom::bench::Main(argc, argv); }
