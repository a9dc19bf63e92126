// Copyright Broom authors.
//
// reap_pmr: an operator's state in std::pmr containers, as a whole program built once per heap
// (heaps.h), the heap given to the containers as a std::pmr::memory_resource:
//   broom          ActorRegion::region() (a ReapRegion, which is a memory_resource)
//   malloc         std::pmr::new_delete_resource() (the malloc under LD_PRELOAD)
//   pmr_pool       std::pmr::unsynchronized_pool_resource
//   mimalloc_heap  a memory_resource over mi_heap_malloc / mi_free
//
// The state: std::pmr::unordered_map<std::pmr::string, std::pmr::vector<int32_t>>, a windowed
// aggregation by key. Each epoch inserts `--keys` new keys (strings of 8..48 characters, so most
// outgrow the 15-character small-string buffer), then applies `--events` appends, each to a
// random key among those of the last `--window` epochs (a hash lookup, then a push_back that
// now and then grows the vector), then erases, in a random order, the keys that leave the window
// (their strings, vectors and nodes freed). The bucket array grows during the first epochs only.
// `--epochs` epochs in all.
//
// Output: `RESULT policy=... cpu_seconds=<process CPU of the epochs> ns_per_op=<per insert, append
// or erase> checksum=...
// final_keys=... peak_rss_kib=...` plus the heap's own keys. The containers' destruction at the
// end is not timed.
#include <algorithm>
#include <charconv>
#include <cstdint>
#include <memory_resource>
#include <string>
#include <unordered_map>
#include <vector>

#include "bench/workloads/heaps.h"
#include "bench/workloads/program_common.h"

namespace broom::bench {
namespace {

using Values = std::pmr::vector<int32_t>;
using State = std::pmr::unordered_map<std::pmr::string, Values>;

// The key of `id`: "k<id>" padded with one letter to 8..48 characters (a function of id).
void MakeKey(uint64_t id, std::pmr::string& key) {
  char digits[24] = {'k'};
  const char* end = std::to_chars(digits + 1, digits + sizeof(digits), id).ptr;
  const size_t len = static_cast<size_t>(end - digits);
  const size_t want = 8 + static_cast<size_t>(((id + 1) * 0x9e3779b97f4a7c15ull) >> 58) % 41;
  key.assign(digits, len);
  if (want > len) key.append(want - len, static_cast<char>('a' + id % 26));
}

int Main(int argc, char** argv) {
  Flags flags(argc, argv);
  const uint64_t epochs = static_cast<uint64_t>(flags.Int("epochs", 20, 1));
  const uint64_t keys = static_cast<uint64_t>(flags.Int("keys", 20000, 1));
  const uint64_t events = static_cast<uint64_t>(flags.Int("events", 100000, 0));
  const uint64_t window = static_cast<uint64_t>(flags.Int("window", 4, 1));
  flags.CheckAllUsed();

  // The erase order of a leaving epoch's keys (one permutation, drawn before the clock starts).
  Rng rng(5);
  std::vector<uint32_t> erase_order(keys);
  for (uint64_t k = 0; k < keys; ++k) erase_order[k] = static_cast<uint32_t>(k);
  for (uint64_t k = keys - 1; k > 0; --k) std::swap(erase_order[k], erase_order[rng.Below(k + 1)]);

  Heap heap;
  uint64_t checksum = 0;
  size_t final_keys = 0;
  uint64_t ops = 0;  // inserts + appends + erases
  double cpu_seconds = 0;
  {
    State state(heap.Resource());
    std::pmr::string key(heap.Resource());
    const double start = ProcessCpuSeconds();
    for (uint64_t e = 0; e < epochs; ++e) {
      for (uint64_t k = 0; k < keys; ++k) {
        MakeKey(e * keys + k, key);
        state.try_emplace(key);
      }
      ops += keys + events;
      const uint64_t first = (e + 1 > window ? e + 1 - window : 0) * keys;
      const uint64_t live = (e + 1) * keys - first;
      for (uint64_t v = 0; v < events; ++v) {
        MakeKey(first + rng.Below(live), key);
        state.find(key)->second.push_back(static_cast<int32_t>(v));
      }
      if (e + 1 >= window) {
        const uint64_t leaving = (e + 1 - window) * keys;
        for (uint64_t k = 0; k < keys; ++k) {
          MakeKey(leaving + erase_order[k], key);
          auto it = state.find(key);
          checksum += it->second.size() +
                      (it->second.empty() ? 0 : static_cast<uint64_t>(it->second.back()));
          state.erase(it);
        }
        ops += keys;
      }
    }
    cpu_seconds = ProcessCpuSeconds() - start;
    final_keys = state.size();
  }
  Result result;
  result.Add("policy", Heap::Name())
      .Add("epochs", static_cast<double>(epochs))
      .Add("keys", static_cast<double>(keys))
      .Add("events", static_cast<double>(events))
      .Add("window", static_cast<double>(window))
      .Add("cpu_seconds", cpu_seconds)
      .Add("ops", static_cast<double>(ops))
      .Add("ns_per_op", cpu_seconds * 1e9 / static_cast<double>(ops))
      .Add("checksum", static_cast<double>(checksum % 1000000007))
      .Add("final_keys", static_cast<double>(final_keys))
      .Add("peak_rss_kib", static_cast<double>(PeakRssKiB()));
  return FinishRun("reap_pmr", heap, result);
}

}  // namespace
}  // namespace broom::bench

int main(int argc, char** argv) { return broom::bench::Main(argc, argv); }
