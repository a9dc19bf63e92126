// Copyright Broom authors.
//
// graph.h: the pointer-rich records the shipping tests send between processes
// (tests/ship/ship_test.cc and ship_peer.cc build the same graphs and compare them).
//
//   Node    a singly linked list node with a pmr::string label (long labels live in the region).
//   Graph   the root: the list, a pmr::unordered_map<pmr::string, pmr::vector<pmr::string>>, a
//           nested pmr::vector<pmr::vector<int64_t>>, and an optional large string (a run block).
//   Grow()  deterministic additions (a seed and a count give the same graph in every process).
//   Build() a new graph region from a list of Grow steps.
//   Digest()  a canonical text of the graph's content plus how many of its pointers are outside
//           `expect` (the region it should live in): equal digests mean equal content.
//
// Thread-safety: plain functions on owner-thread data.
#ifndef BROOM_TESTS_SHIP_GRAPH_H_
#define BROOM_TESTS_SHIP_GRAPH_H_

#include <algorithm>
#include <array>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <memory_resource>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "broom/message.h"
#include "broom/region.h"

namespace broom::testing {

struct Node {
  using allocator_type = std::pmr::polymorphic_allocator<std::byte>;
  Node(int64_t v, std::string_view l, Node* n, const allocator_type& a)
      : value(v), label(l, a), next(n) {}
  int64_t value;
  std::pmr::string label;
  Node* next;
};

struct Graph {
  using allocator_type = std::pmr::polymorphic_allocator<std::byte>;
  explicit Graph(const allocator_type& a) : index(a), nested(a), big(a) {}
  Node* head = nullptr;
  size_t length = 0;
  std::pmr::unordered_map<std::pmr::string, std::pmr::vector<std::pmr::string>> index;
  std::pmr::vector<std::pmr::vector<int64_t>> nested;
  std::pmr::string big;
};

// Adds `count` nodes, index entries and nested vectors derived from `seed`, and (if big_bytes)
// appends big_bytes to the large string. Runs with the message open.
inline void Grow(Message<Graph>& m, int seed, int count, size_t big_bytes = 0) {
  auto open = m.Open();
  Graph& g = *m;
  BumpRegion& region = m.region().region();
  for (int i = 0; i < count; ++i) {
    const int64_t v = int64_t{seed} * 1000003 + i;
    std::string label = "node " + std::to_string(v) + " of seed " + std::to_string(seed) +
                        std::string(static_cast<size_t>(i % 37), 'x');
    g.head = NewIn<Node>(region, v, label, g.head);
    ++g.length;
    const std::string key = "key " + std::to_string((seed * 7 + i) % 101);
    g.index[std::pmr::string(key, g.index.get_allocator())].emplace_back(
        "value " + std::to_string(v) + std::string(static_cast<size_t>(i % 23), 'y'));
    auto& inner = g.nested.emplace_back();
    for (int j = 0; j <= i % 9; ++j) inner.push_back(v * j);
  }
  for (size_t i = 0; i < big_bytes; ++i)
    g.big.push_back(static_cast<char>('a' + (i * 7 + seed) % 26));
}

// The graph's content as canonical text (FNV-1a over it, plus counts) and how many of the
// pointers it holds are outside `expect` (0 when the region is intact).
inline std::string Digest(const Graph& g, const Region* expect) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](std::string_view s) {
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;
  };
  size_t outside = 0;
  auto in = [&](const void* p) {
    if (RegionOf(p) != expect) ++outside;
  };
  in(&g);
  size_t nodes = 0;
  for (const Node* n = g.head; n != nullptr && nodes <= g.length; n = n->next, ++nodes) {
    in(n);
    in(n->label.data());
    mix(std::to_string(n->value));
    mix(n->label);
  }
  std::vector<const std::pair<const std::pmr::string, std::pmr::vector<std::pmr::string>>*> keys;
  for (const auto& kv : g.index) keys.push_back(&kv);
  std::sort(keys.begin(), keys.end(), [](auto* a, auto* b) { return a->first < b->first; });
  for (const auto* kv : keys) {
    in(kv);
    mix(kv->first);
    if (!kv->second.empty()) in(kv->second.data());
    for (const auto& s : kv->second) {
      in(s.data());
      mix(s);
    }
  }
  if (!g.nested.empty()) in(g.nested.data());
  for (const auto& inner : g.nested) {
    if (!inner.empty()) in(inner.data());
    for (int64_t v : inner) mix(std::to_string(v));
  }
  if (!g.big.empty()) in(g.big.data());
  mix(g.big);
  char out[160];
  std::snprintf(out, sizeof(out), "digest=%016" PRIx64 " nodes=%zu keys=%zu big=%zu outside=%zu", h,
                nodes, keys.size(), g.big.size(), outside);
  return out;
}

// A graph named "graph" in a new region, from (seed, nodes, big bytes) steps: every process that
// builds the same steps gets the same content (the tests' expected side).
inline Message<Graph> Build(const std::vector<std::array<int, 3>>& steps) {
  RegionOptions options;
  options.name = "graph";
  auto m = Message<Graph>::CreateWith(options);
  for (const auto& [seed, count, big] : steps) Grow(m, seed, count, static_cast<size_t>(big));
  return m;
}

}  // namespace broom::testing

#endif  // BROOM_TESTS_SHIP_GRAPH_H_
