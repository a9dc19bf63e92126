// Copyright Broom authors. Layer 2 (region): the wire form of a shipped region (ship.cc).
//
//   ManifestHeader   the region's state (what the BumpRegion object holds besides its vtable
//                    pointer), the root word, the sender's slice, executable bias and build,
//                    the mode, and in shared mode the sender's memfd (for the receiver to map).
//   ManifestBlock    one block: address, size, class, the loan generation, its used bytes, and
//                    whether those bytes travel by value.
//   ManifestLender   shared mode: a third process's memfd, for blocks of its slice that the
//                    sender had mapped from it (a region shipped on, A -> B -> C).
//   A manifest is a ManifestHeader, `block_count` ManifestBlocks (the region's list order,
//   newest first; the last holds the region object), the name's bytes and `lender_count`
//   ManifestLenders. Both ends run the same binary on machines of one byte order
//   (ExecutableBuildId), so fields are in host order.
//
// Thread-safety: plain values.
#ifndef BROOM_ALLOC_REGION_SHIP_INTERNAL_H_
#define BROOM_ALLOC_REGION_SHIP_INTERNAL_H_

#include <cstddef>
#include <cstdint>
#include <string>

namespace broom::internal {

struct PlanState;
// "this process's region space is not at its address plan: the range [..) (N slices of M GiB,
// this process's slice i): <why> (<errno>); already mapped there: <line>; <what to change>",
// for error messages (ship_plan.cc).
std::string DescribePlanFailure(const PlanState& s);

inline constexpr uint32_t kManifestMagic = 0x48534252;  // "RBSH"
inline constexpr uint16_t kManifestVersion = 3;
inline constexpr uint8_t kManifestCopy = 0;    // ManifestHeader::mode: blocks travel by value
inline constexpr uint8_t kManifestShared = 1;  // the receiver maps them (shared memory)
inline constexpr uint32_t kMaxManifestBlocks = 1u << 20;
inline constexpr size_t kMaxManifestLenders = 255;  // ManifestHeader::lender_count

struct ManifestHeader {
  uint32_t magic;
  uint16_t version;
  uint16_t name_length;
  uint32_t from;  // the sender's slice
  uint32_t to;
  uint32_t block_count;
  uint8_t growth_class;
  uint8_t mode;          // kManifestCopy or kManifestShared
  uint8_t lender_count;  // ManifestLenders (shared mode; 0 in copy mode)
  uint8_t reserved;
  uint64_t root;
  uint64_t exe_bias;  // the sender's executable load bias: destructors' code is rebased by it
  uint64_t current;   // the bump block
  uint64_t current_base;
  uint64_t cursor;
  uint64_t bytes_requested;
  uint64_t bytes_freed;
  uint64_t budget;
  uint64_t peak_block_bytes;
  uint64_t retain_bytes;
  uint64_t cleanups;  // head of the destructor records (in the region)
  uint64_t cleanup_count;
  uint64_t payload_bytes;
  uint64_t build_hash;  // FNV-1a of the sender's ExecutableBuildId(): the receiver's must match
  // Shared mode: the sender's memfd (loans.h, SharedSliceId); zero in copy mode.
  uint64_t shm_machine;
  uint64_t shm_dev;
  uint64_t shm_ino;
  uint32_t shm_pid;
  int32_t shm_fd;
};
static_assert(sizeof(ManifestHeader) == 168);

struct ManifestBlock {
  uint64_t address;
  uint64_t size;
  uint64_t used;  // bytes from the block's start that hold data (the header at least)
  uint32_t generation;
  uint8_t block_class;
  uint8_t by_value;  // 1: `used` bytes follow in the payload; 0: the receiver maps the block
  uint8_t reserved[2];
};
static_assert(sizeof(ManifestBlock) == 32);

// Shared mode: slice `slice`'s memfd (loans.h, SharedSliceId), neither the sender's nor the
// receiver's; blocks of that slice are to be mapped from it: opened through the lender's
// /proc/<pid>/fd/<fd> or, if that fails (the lender exited), through the sender's descriptor of
// the same file (via_fd; the sender is ManifestHeader::shm_pid).
struct ManifestLender {
  uint32_t slice;
  uint32_t pid;
  int32_t fd;
  int32_t via_fd;
  uint64_t machine;
  uint64_t dev;
  uint64_t ino;
};
static_assert(sizeof(ManifestLender) == 40);

}  // namespace broom::internal

#endif  // BROOM_ALLOC_REGION_SHIP_INTERNAL_H_
