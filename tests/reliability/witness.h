// Copyright Broom authors.
//
// witness.h: bystander regions for the reliability tests.
//
//   Witness   one region of each kind, filled with a known pattern across several blocks (small
//             objects, a block-sized object and a dedicated large one), created before a test
//             provokes a failure. Intact() re-reads every byte and checks that RegionOf still
//             names the right owner, so a test can assert that a failure elsewhere corrupted
//             nothing.
//
// Thread-safety: owner-thread only (it holds a TemporaryRegion).
#ifndef BROOM_TESTS_RELIABILITY_WITNESS_H_
#define BROOM_TESTS_RELIABILITY_WITNESS_H_

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "broom/actor_region.h"
#include "broom/region.h"
#include "broom/temporary_region.h"
#include "broom/transferable_region.h"

namespace broom::testing {

class Witness {
 public:
  Witness() {
    Fill(transferable_.region(), 0x11);
    Fill(actor_.region(), 0x22);
    Fill(temporary_.region(), 0x33);
  }

  // True if every byte written is still there and owned by its region; prints the first damage.
  bool Intact() const {
    for (const Piece& p : pieces_) {
      if (RegionOf(p.data) != p.owner || RegionOf(p.data + p.size - 1) != p.owner) {
        std::fprintf(stderr, "witness: %p no longer owned by its region\n",
                     static_cast<void*>(p.data));
        return false;
      }
      for (size_t i = 0; i < p.size; ++i) {
        if (p.data[i] != Byte(p.seed, i)) {
          std::fprintf(stderr, "witness: %p+%zu changed\n", static_cast<void*>(p.data), i);
          return false;
        }
      }
    }
    return true;
  }

  TransferableRegion& transferable() { return transferable_; }
  ActorRegion& actor() { return actor_; }
  TemporaryRegion& temporary() { return temporary_; }

 private:
  struct Piece {
    unsigned char* data;
    size_t size;
    uint32_t seed;
    const Region* owner;
  };
  static unsigned char Byte(uint32_t seed, size_t i) {
    return static_cast<unsigned char>(seed * 31 + i * 7 + (i >> 9));
  }
  void Fill(Region& r, uint32_t seed) {
    static constexpr size_t kSizes[] = {1, 16, 100, 3000, 5000, 20000, 300000};
    for (int round = 0; round < 4; ++round) {
      for (size_t size : kSizes) {
        auto* data = static_cast<unsigned char*>(r.Allocate(size));
        if (data == nullptr) continue;  // the caller's assertions catch a witness that is short
        uint32_t s = seed + static_cast<uint32_t>(pieces_.size());
        for (size_t i = 0; i < size; ++i) data[i] = Byte(s, i);
        pieces_.push_back({data, size, s, &r});
      }
    }
  }

  TransferableRegion transferable_;
  ActorRegion actor_;
  TemporaryRegion temporary_;
  std::vector<Piece> pieces_;
};

}  // namespace broom::testing

#endif  // BROOM_TESTS_RELIABILITY_WITNESS_H_
