// Copyright Broom authors.
//
// soak.h: the small records the shipping soak (tests/ship/ship_soak_test.cc) bounces between
// two processes, and what both sides check about them and about their memory.
//
//   Small         a sequence number, a pmr::string (a separate allocation in the region) and a
//                 short pmr::vector, pointing at each other's storage.
//   MakeSmall()   the record for (seq, side), the same in every process.
//   SmallIsIntact()  the content is the one MakeSmall gave, and every pointer is in the region.
//   ResidentKb()  this process's resident set (VmRSS), in KiB.
//   CommittedKb() the region space this process has made accessible so far, in KiB.
//   kResidentIsMeaningful   false under AddressSanitizer, whose quarantine keeps freed heap
//                 memory resident (up to 256 MiB): only CommittedKb bounds memory there.
//
// Thread-safety: plain functions on owner-thread data.
#ifndef BROOM_TESTS_SHIP_SOAK_H_
#define BROOM_TESTS_SHIP_SOAK_H_

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory_resource>
#include <string>
#include <string_view>
#include <vector>

#include "broom/memory.h"
#include "broom/message.h"
#include "broom/region.h"

namespace broom::testing {

struct Small {
  using allocator_type = std::pmr::polymorphic_allocator<std::byte>;
  explicit Small(const allocator_type& a) : text(a), values(a) {}
  uint64_t seq = 0;
  std::pmr::string text;
  std::pmr::vector<uint64_t> values;
};

inline std::string SmallText(uint64_t seq, int side) {
  return "soak record " + std::to_string(seq) + " from side " + std::to_string(side) +
         std::string(seq % 29, 'z');
}

inline Message<Small> MakeSmall(uint64_t seq, int side) {
  RegionOptions options;
  options.name = "soak";
  auto m = Message<Small>::CreateWith(options);
  auto open = m.Open();
  m->seq = seq;
  m->text = SmallText(seq, side);
  for (uint64_t i = 0; i < 1 + seq % 7; ++i) m->values.push_back(seq * 31 + i);
  return m;
}

inline bool SmallIsIntact(Message<Small>& m, uint64_t seq, int side) {
  const Region* r = &m.region().region();
  if (m->seq != seq || std::string_view(m->text) != SmallText(seq, side) ||
      m->values.size() != 1 + seq % 7) {
    return false;
  }
  for (uint64_t i = 0; i < m->values.size(); ++i) {
    if (m->values[i] != seq * 31 + i) return false;
  }
  return RegionOf(m.get()) == r && RegionOf(m->text.data()) == r && RegionOf(m->values.data()) == r;
}

inline long ResidentKb() {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return -1;
  char line[256];
  long kb = -1;
  while (std::fgets(line, sizeof(line), f) != nullptr) {
    if (std::strncmp(line, "VmRSS:", 6) == 0) kb = std::strtol(line + 6, nullptr, 10);
  }
  std::fclose(f);
  return kb;
}

inline long CommittedKb() { return static_cast<long>(GetGlobalStats().committed_bytes >> 10); }

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kResidentIsMeaningful = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kResidentIsMeaningful = false;
#else
inline constexpr bool kResidentIsMeaningful = true;
#endif
#else
inline constexpr bool kResidentIsMeaningful = true;
#endif

}  // namespace broom::testing

#endif  // BROOM_TESTS_SHIP_SOAK_H_
