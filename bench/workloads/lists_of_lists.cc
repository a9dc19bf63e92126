// Copyright Broom authors.
//
// lists_of_lists: the Broom paper's lists-of-lists microbenchmark (HotOS 2015, section 6),
// as a whole program, built once per memory policy (see program_common.h).
//
// Each round builds n lists of n nodes (32-byte nodes: next pointer, value, two payload words),
// threads them on a spine (a list of lists), walks everything to a checksum, and then lets the
// whole structure die. `--rounds` rounds (the paper: 40) for one `--n` (the paper: 500 to 3000;
// bench/tools/specs/lists_of_lists.json runs several n). All the data of a round is live until
// the round ends, so a collector traces up to n*n nodes per collection.
//
// The building and walking code is the same for every policy; only Alloc and Release differ:
//   broom    each inner list is one TransferableRegion (a group that dies together, built with
//            NewIn); the spine lives in a TemporaryRegion, one Scope per round. Release frees
//            the n regions (O(blocks) each) and leaves the scope.
//   malloc   `new` for every node; Release walks the lists and `delete`s every node.
//   gc       GC_MALLOC for every node; Release drops the reference; Boehm GC collects. The
//            program fails (exit 1) if no collection happened: collection is never disabled.
//
// Output: `RESULT policy=... seconds=<wall time of the rounds> cpu_seconds=<process CPU time of
// the rounds, all threads> ns_per_node=<CPU ns per node> checksum=... peak_rss_kib=...`
// plus gc_collections (gc) or peak_block_bytes (broom).
#include <cstdint>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include "bench/workloads/program_common.h"

#if BROOM_BENCH_POLICY == BROOM_BENCH_POLICY_BROOM
#include "broom/context.h"
#include "broom/memory.h"
#include "broom/temporary_region.h"
#include "broom/transferable_region.h"
#elif BROOM_BENCH_POLICY == BROOM_BENCH_POLICY_MALLOC
#include "bench/baselines/malloc_identity.h"
#elif BROOM_BENCH_POLICY == BROOM_BENCH_POLICY_GC
#include <gc/gc.h>
#else
#error "BROOM_BENCH_POLICY must be 1 (broom), 2 (malloc) or 3 (gc)"
#endif

namespace broom::bench {
namespace {

struct Node {
  Node* next;
  uint64_t value;
  uint64_t payload[2];
};
static_assert(sizeof(Node) == 32);

struct Spine {
  Spine* next;
  Node* head;
};

#if BROOM_BENCH_POLICY == BROOM_BENCH_POLICY_BROOM
class Policy {
 public:
  static std::string Name() { return "broom"; }
  using Group = Region*;
  void BeginRound(size_t n) {
    regions_.reserve(n);
    scope_.emplace(spine_);
  }
  Group NewGroup() { return &regions_.emplace_back().region(); }
  template <class T>
  T* Alloc(Group g) {
    return NewIn<T>(*g);
  }
  template <class T>
  T* AllocSpine() {
    return NewIn<T>(spine_.region());
  }
  void Release(Spine*) {
    regions_.clear();  // each TransferableRegion frees its blocks
    scope_.reset();
  }
  void Report(Result& r) const {
    r.Add("peak_block_bytes", static_cast<double>(GetGlobalStats().peak_block_bytes));
  }

 private:
  TemporaryRegion spine_;
  std::optional<TemporaryRegion::Scope> scope_;
  std::vector<TransferableRegion> regions_;
};
#elif BROOM_BENCH_POLICY == BROOM_BENCH_POLICY_MALLOC
class Policy {
 public:
  static std::string Name() { return "malloc_" + MallocName(); }
  using Group = int;
  void BeginRound(size_t) {}
  Group NewGroup() { return 0; }
  template <class T>
  T* Alloc(Group) {
    return new T{};
  }
  template <class T>
  T* AllocSpine() {
    return new T{};
  }
  void Release(Spine* spine) {
    while (spine != nullptr) {
      for (Node* node = spine->head; node != nullptr;) {
        Node* next = node->next;
        delete node;
        node = next;
      }
      Spine* next = spine->next;
      delete spine;
      spine = next;
    }
  }
  void Report(Result&) const {}
};
#else
class Policy {
 public:
  Policy() { GC_INIT(); }
  static std::string Name() { return "boehm_gc"; }
  using Group = int;
  void BeginRound(size_t) {}
  Group NewGroup() { return 0; }
  template <class T>
  T* Alloc(Group) {
    void* p = GC_MALLOC(sizeof(T));
    if (p == nullptr) throw std::bad_alloc();
    return ::new (p) T{};
  }
  template <class T>
  T* AllocSpine() {
    return Alloc<T>(0);
  }
  void Release(Spine*) {}  // unreachable now; the collector reclaims it
  void Report(Result& r) const {
    r.Add("gc_collections", static_cast<double>(GC_get_gc_no()));
    r.Add("gc_heap_bytes", static_cast<double>(GC_get_heap_size()));
  }
};
#endif

// One round: build n lists of n nodes on a spine, walk them, release. Returns the checksum.
// noinline: the GC policy must not find the spine in a register or stack slot after Release.
__attribute__((noinline)) uint64_t Round(Policy& policy, size_t n, uint64_t round) {
  policy.BeginRound(n);
  Spine* spine = nullptr;
  for (size_t i = 0; i < n; ++i) {
    typename Policy::Group group = policy.NewGroup();
    Node* head = nullptr;
    for (size_t j = 0; j < n; ++j) {
      Node* node = policy.Alloc<Node>(group);
      node->value = round * n * n + i * n + j;
      node->payload[0] = j;
      node->next = head;
      head = node;
    }
    Spine* s = policy.AllocSpine<Spine>();
    s->head = head;
    s->next = spine;
    spine = s;
  }
  uint64_t sum = 0;
  for (Spine* s = spine; s != nullptr; s = s->next) {
    for (Node* node = s->head; node != nullptr; node = node->next)
      sum += node->value ^ node->payload[0];
  }
  policy.Release(spine);
  return sum;
}

int Main(int argc, char** argv) {
  Flags flags(argc, argv);
  const size_t n = static_cast<size_t>(flags.Int("n", 1000));
  const long rounds = flags.Int("rounds", 40);
  flags.CheckAllUsed();
  Policy policy;
  uint64_t checksum = 0;
  const double start = MonotonicSeconds();
  const double cpu_start = ProcessCpuSeconds();
  for (long r = 0; r < rounds; ++r) checksum += Round(policy, n, static_cast<uint64_t>(r));
  const double seconds = MonotonicSeconds() - start;
  const double cpu_seconds = ProcessCpuSeconds() - cpu_start;
  Result result;
  result.Add("policy", Policy::Name())
      .Add("n", static_cast<double>(n))
      .Add("rounds", static_cast<double>(rounds))
      .Add("seconds", seconds)
      .Add("cpu_seconds", cpu_seconds)
      .Add("ns_per_node",
           cpu_seconds * 1e9 /
               (static_cast<double>(n) * static_cast<double>(n + 1) * static_cast<double>(rounds)))
      .Add("checksum", static_cast<double>(checksum % 1000000007))
      .Add("peak_rss_kib", static_cast<double>(PeakRssKiB()));
  return FinishRun("lists_of_lists", policy, result);
}

}  // namespace
}  // namespace broom::bench

int main(int argc, char** argv) { return broom::bench::Main(argc, argv); }
