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
  // By (size + 15) / 16: the class times 4, which is ReapRegion::Allocate's index of the
  // class's 32-byte table entry in 8-byte units (one addressing mode, scale 8, instead of a
  // shift and an add); the class is this >> 2.
  uint8_t class_of_x4[kReapTableMax / 16 + 1];
  uint32_t size[kReapNumClasses];
  // floor(2^64 / size) + 1 and object_key * size (mod 2^64), between 1 and size: see
  // ReapObjectKey.
  uint64_t object_key[kReapNumClasses];
  uint64_t key_step[kReapNumClasses];
};

inline constexpr ReapClassTable kReapClasses = [] {
  ReapClassTable t{};
  for (size_t i = 0; i <= kReapTableMax / 16; ++i) {
    t.class_of_x4[i] = static_cast<uint8_t>(ReapSizeClassSlow(i * 16) * 4);
  }
  for (int c = 0; c < kReapNumClasses; ++c) {
    t.size[c] = static_cast<uint32_t>(ReapClassSize(c));
    t.object_key[c] = UINT64_MAX / t.size[c] + (UINT64_MAX % t.size[c] == t.size[c] - 1 ? 2 : 1);
    t.key_step[c] = t.object_key[c] * t.size[c];
  }
  return t;
}();

static_assert(ReapClassSize(kReapNumClasses - 1) == kReapMaxSmall);
static_assert(ReapSizeClassSlow(kReapMaxSmall) == kReapNumClasses - 1);

// Word 1 of a free object in an actor slab holds kReapFreedTag ^ its address.
// Bit 62 is set, so a tag never equals a pointer (x86-64 user addresses are below 2^47), which
// lets ReapRegion::Allocate overwrite the tag of the object it hands out with its next pointer.
inline constexpr uintptr_t kReapFreedTag = 0x5bd1e9955bd1e995ull;
static_assert(((kReapFreedTag >> 62) & 1) == 1);

// The key of byte `offset` from a slab's first object (its begin()), class c: offset * M mod
// 2^64 with M = floor(2^64 / size) + 1, so M * size = 2^64 + e, 1 <= e <= size (e is
// key_step). The start of object k (offset k * size) has key k * e. Any other offset below
// 2^24 (offset = k * size + r, 0 < r < size) has key k * e + r * M, no wrap, at least M >=
// 2^51; an offset in [-64, 0), a pointer into the slab's header (-offset = q * size + r), wraps
// to 2^64 - q * e - r * M, at least 2^64 / size - 5 * size > 2^50. So one multiply and one
// compare, key < n * e, hold exactly when `offset` is the start of one of the slab's first n
// objects (n * e < 2^30), the "below begin()" case included: ReapRegion::Free's bound and
// object-start check in one (a division-free test in the manner of Lemire, Kaser and Kurz,
// "Faster remainder by direct computation", 2019). ReapRegionTest.
// TheObjectKeyAdmitsExactlyTheCarvedObjectStarts checks every offset.
inline uint64_t ReapObjectKey(size_t offset, size_t c) {
  return static_cast<uint64_t>(offset) * kReapClasses.object_key[c];
}
// The key that admits exactly the first n objects of class c.
inline constexpr uint64_t ReapCarvedKey(uint64_t n, size_t c) {
  return n * kReapClasses.key_step[c];
}
// The n of ReapCarvedKey.
inline constexpr uint64_t ReapCarvedCount(uint64_t key, size_t c) {
  return key / kReapClasses.key_step[c];
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
  return size <= kReapTableMax ? kReapClasses.class_of_x4[(size + 15) >> 4] >> 2
                               : ReapSizeClassSlow(size);
}

}  // namespace broom::internal

#endif  // BROOM_INTERNAL_SIZE_CLASS_H_
