// Copyright Broom authors. Internal: blocks, the chunk map and O(1) pointer lookup.
//
// All region memory lives in one address range that Broom reserves at first use (the "space").
// The space is cut into 256 KiB chunks, aligned to their size. A chunk is either
//   * carved into blocks of one block class (1 KiB to 256 KiB in powers of two), each aligned to
//     its size, or
//   * part of a run: a block of several chunks, for objects larger than a chunk.
// Every block starts with a BlockHeader. The chunk map has one word per chunk:
//   0                     never used
//   ~(size - 1) | 1       carved into blocks of `size` bytes: header = address & (word - 1)
//   BlockHeader*          part of a run; points at the run's header (chunk-aligned)
//   either of those | 2   a block of the chunk is, or was, quarantined (check.h): the lookup
//                         consults the quarantine page map (test mode only)
// so BlockOf(p) is a range check, one load and a mask: O(1) from the address alone.
//
// Thread-safety: map words are written when a chunk is carved (once) or a run is handed out or
// released, always before the block's address is published to another thread; reads are relaxed.
#ifndef BROOM_INTERNAL_BLOCK_H_
#define BROOM_INTERNAL_BLOCK_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "broom/internal/base.h"

namespace broom {
class Region;
}  // namespace broom

namespace broom::internal {

inline constexpr size_t kPageSize = 4096;
inline constexpr int kChunkShift = 18;
inline constexpr size_t kChunkSize = size_t{1} << kChunkShift;  // 256 KiB
// Block classes 1K, 2K, 4K, ... 256K. The two below a page serve only the first slabs of
// actor regions (a small operator state costs little); they are never purged or quarantined
// one by one, since madvise and mprotect work on whole pages.
inline constexpr int kNumBlockClasses = 9;
inline constexpr uint8_t kRunClass = 0xff;
inline constexpr uint16_t kNoObjectClass = 0xffff;
inline constexpr uint16_t kLargeObject = 0xfffe;
inline constexpr uint16_t kEmptySlab = 0xfffd;

inline constexpr size_t BlockClassSize(int block_class) { return size_t{1024} << block_class; }
// The class of the 4 KiB blocks: a page, and the first block of bump regions.
inline constexpr int kPageBlockClass = 2;

// Header at the start of every block. 64 bytes: one cache line.
struct alignas(64) BlockHeader {
  std::atomic<Region*> owner;  // null while the block is free (in a cache or the pool)
  BlockHeader* next;           // the list the owning region keeps the block in (or a free list)
  BlockHeader* prev;           // that list's back link
  size_t size;                 // bytes in the block, header included
  uint8_t block_class;         // 0..kNumBlockClasses-1, or kRunClass
  uint8_t dedicated;           // 1: holds one large object (not a growth block or a slab)
  uint16_t object_class;       // actor slabs: size class; kLargeObject, kEmptySlab, kNoObjectClass
  uint16_t live_objects;       // slabs: objects allocated and not freed, counting those on
                               // the class's allocation list if current (ReapRegion::ClassState)
                               // (empty slabs: the class whose free list free_list still is)
  uint16_t capacity_less_2;    // slabs: objects the slab holds, less 2 (mod 2^16: ReapRegion::
                               // Free compares with it as is); 0 - 2 while it is its class's
                               // current slab (ReapRegion::ClassState::capacity has it)
  union {
    char* object;             // dedicated blocks: address of the object
    uint64_t freed_checksum;  // slabs: over the objects on free_list (see ReapRegion::Free)
  };
  union {
    char* used_end;       // bump blocks that are not current and dedicated blocks: end of
                          // the bytes handed out (for outlives scans)
    uint64_t carved_key;  // slabs: ReapCarvedKey(objects carved so far, class) (size_class.h)
  };
  void* free_list;  // slabs: objects freed since the class last took the list
  // INVARIANT (slabs not current): live_objects <= capacity and
  // begin() + capacity * class size <= end(), capacity = capacity_less_2 + 2; slabs: the
  // objects carved, ReapCarvedCount(carved_key, class), at most the slab's capacity

  char* begin() { return reinterpret_cast<char*>(this) + sizeof(BlockHeader); }
  char* end() { return reinterpret_cast<char*>(this) + size; }
  const char* end() const { return reinterpret_cast<const char*>(this) + size; }
  const char* begin() const { return reinterpret_cast<const char*>(this) + sizeof(BlockHeader); }
};
static_assert(sizeof(BlockHeader) == 64, "BlockHeader must stay one cache line");

// The reserved space as the inline lookups see it. Read-only to everyone (every field is const):
// the chunk layer's space object, its only writer, replaces the whole object once, when it
// reserves the space (std::construct_at; C++20 allows replacing an object with const members).
// Before that every field is zero, so every lookup misses.
struct SpaceBounds {
  const uintptr_t base;
  const uintptr_t end;
  const uintptr_t size;                           // end - base
  const std::atomic<uintptr_t>* const chunk_map;  // one word per chunk (see above)
};
extern SpaceBounds g_space;

inline bool InSpace(const void* p) {
  uintptr_t a = reinterpret_cast<uintptr_t>(p);
  return a - g_space.base < g_space.size;  // false before initialization (size 0)
}

inline constexpr uintptr_t kMapCarved = 1;
inline constexpr uintptr_t kMapQuarantined = 2;
// The map word of a chunk carved into blocks of `block_size` bytes.
inline constexpr uintptr_t CarvedMapWord(size_t block_size) {
  return ~(block_size - 1) | kMapCarved;
}

// BlockOf for a chunk whose map word has kMapQuarantined: null if the block is quarantined.
BlockHeader* BlockOfQuarantined(uintptr_t address, uintptr_t word);

// The header of the block containing `p`, or null if `p` is not inside a block ever handed out
// (or is in a quarantined block). The block may be free (owner == null). About 10 instructions:
// two loads of g_space, the map word, a test and a mask.
inline BlockHeader* BlockOf(const void* p) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  const uintptr_t offset = a - g_space.base;
  if (BROOM_UNLIKELY(offset >= g_space.size)) return nullptr;  // also before initialization
  const uintptr_t word = g_space.chunk_map[offset >> kChunkShift].load(std::memory_order_acquire);
  if (BROOM_UNLIKELY((word & kMapQuarantined) != 0)) return BlockOfQuarantined(a, word);
  return reinterpret_cast<BlockHeader*>((word & kMapCarved) != 0 ? a & (word - 1) : word);
}

// For fast paths that have a slow path to fall back on (ReapRegion::Free): the header of the
// block containing `p` if p is in a chunk carved into blocks and not marked by quarantine, else
// null (runs, quarantine, never-used chunks and pointers outside the space: the caller's slow
// path then calls BlockOf). No calls. One test tells the cases apart: word - 1, the mask of a
// carved chunk, has its two low bits clear exactly when the word is carved and not quarantined
// (a never-used chunk's 0 and a run's header address give 11, quarantine 10 or 01).
inline BlockHeader* CarvedBlockOfOrNull(const void* p) {
  static_assert(kMapCarved == 1 && kMapQuarantined == 2 && alignof(BlockHeader) >= 4);
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  const uintptr_t offset = a - g_space.base;
  if (BROOM_UNLIKELY(offset >= g_space.size)) return nullptr;
  const uintptr_t mask =
      g_space.chunk_map[offset >> kChunkShift].load(std::memory_order_acquire) - 1;
  if (BROOM_UNLIKELY((mask & (kMapCarved | kMapQuarantined)) != 0)) return nullptr;
  const uintptr_t header = a & mask;
  BROOM_ASSUME(header != 0);  // a block of the space: at or above its (nonzero) base
  return reinterpret_cast<BlockHeader*>(header);
}

}  // namespace broom::internal

#endif  // BROOM_INTERNAL_BLOCK_H_
