// Copyright Broom authors. Internal: the size classes of actor regions (ReapRegion).
//
// 32 classes up to kReapMaxSmall (8 KiB): 16, 32, ..., 128 in steps of 16, then four classes per
// doubling (160, 192, 224, 256, 320, ...). Worst-case rounding is 25% above 128 bytes. Larger
// objects get a block of their own. The fast path finds a class with one table load for sizes up
// to kReapTableMax; the rest compute it.
//
// Thread-safety: constants only.
#ifndef BROOM_INTERNAL_SIZE_CLASS_H_
#define BROOM_INTERNAL_SIZE_CLASS_H_

#include <cstddef>
#include <cstdint>

namespace broom::internal {

inline constexpr int kReapNumClasses = 32;
inline constexpr size_t kReapMaxSmall = 8192;
inline constexpr size_t kReapTableMax = 1024;

constexpr int ReapSizeClassSlow(size_t size) {
  if (size <= 128) return size == 0 ? 0 : static_cast<int>((size + 15) >> 4) - 1;
  const size_t m = size - 1;
  const int lg = 63 - __builtin_clzll(m);
  return 8 + (lg - 7) * 4 + static_cast<int>((m >> (lg - 2)) & 3);
}

constexpr size_t ReapClassSize(int c) {
  if (c < 8) return static_cast<size_t>(c + 1) * 16;
  const size_t base = size_t{128} << ((c - 8) / 4);
  return base + static_cast<size_t>((c - 8) % 4 + 1) * (base / 4);
}

struct ReapClassTable {
  uint8_t class_of[kReapTableMax / 16 + 1];  // by (size + 15) / 16
  uint32_t size[kReapNumClasses];
  // floor((2^64 - 1) / size) + 1: for x < 2^32, x is a multiple of size exactly when
  // x * multiple_test (mod 2^64) < multiple_test (Lemire, Kaser and Kurz, "Faster remainder by
  // direct computation", 2019): one multiply, no division.
  uint64_t multiple_test[kReapNumClasses];
};

inline constexpr ReapClassTable kReapClasses = [] {
  ReapClassTable t{};
  for (size_t i = 0; i <= kReapTableMax / 16; ++i) {
    t.class_of[i] = static_cast<uint8_t>(ReapSizeClassSlow(i * 16));
  }
  for (int c = 0; c < kReapNumClasses; ++c) {
    t.size[c] = static_cast<uint32_t>(ReapClassSize(c));
    t.multiple_test[c] = UINT64_MAX / t.size[c] + 1;
  }
  return t;
}();

static_assert(ReapClassSize(kReapNumClasses - 1) == kReapMaxSmall);
static_assert(ReapSizeClassSlow(kReapMaxSmall) == kReapNumClasses - 1);

// Word 1 of a free object in an actor slab holds kReapFreedTag ^ its address.
inline constexpr uintptr_t kReapFreedTag = 0x5bd1e9955bd1e995ull;

// True if `offset` (< 2^32) is a multiple of the size of class c: one multiply.
inline bool IsReapObjectOffset(size_t offset, size_t c) {
  const uint64_t m = kReapClasses.multiple_test[c];
  return static_cast<uint64_t>(offset) * m < m;
}

// The checksum term of the object at byte `offset` in its slab: offset * (offset + K), K = 2^31 - 1
// (mod 2^64; a lea and a multiply beside the add: K fits an instruction's 32-bit displacement,
// where 2^32 took four instructions). Over a slab's free list the sum equals ReapFullChecksum
// exactly when the list holds each object once, for one error: with X on it twice and Y missing,
// the sums differ by (X - Y)(X + Y + K), nonzero and below 2^56 in magnitude for offsets below
// 2^24.
inline constexpr uint64_t kReapChecksumAddend = (uint64_t{1} << 31) - 1;
inline uint64_t ReapChecksumTerm(size_t offset) {
  const uint64_t x = offset;
  return x * (x + kReapChecksumAddend);
}
// The sum of the terms of all `capacity` objects of size `csize` of a slab: offsets csize * i,
// i < capacity.
inline uint64_t ReapFullChecksum(uint64_t capacity, uint64_t csize) {
  const uint64_t n = capacity;
  const uint64_t si = n * (n - 1) / 2;                              // sum of i
  const uint64_t si2 = n == 0 ? 0 : (n - 1) * n * (2 * n - 1) / 6;  // sum of i^2
  return csize * csize * si2 + csize * si * kReapChecksumAddend;
}

// The class of `size`, 1 <= size <= kReapMaxSmall.
inline int ReapSizeClass(size_t size) {
  return size <= kReapTableMax ? kReapClasses.class_of[(size + 15) >> 4] : ReapSizeClassSlow(size);
}

}  // namespace broom::internal

#endif  // BROOM_INTERNAL_SIZE_CLASS_H_
