// Copyright Broom authors.
//
// region_ops_model.h: internals of the region-operations harness, shared by its two source files
// (region_ops_harness.cc: decoding, allocation, scopes, budgets, teardown; region_ops_transfer.cc:
// transfers, sharing, thread handoffs and the outlives check). Not a public header.
//
//   ByteReader   the input as a stream of little-endian integers (0 past the end)
//   Alloc/Slot   the reference model: each slot holds at most one region handle and the live
//                allocations the model expects in it
//   Harness      the operations; each keeps the model and the real regions in step and checks the
//                invariants listed in region_ops_harness.h
#ifndef BROOM_TESTS_FUZZ_REGION_OPS_MODEL_H_
#define BROOM_TESTS_FUZZ_REGION_OPS_MODEL_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "broom/actor_region.h"
#include "broom/context.h"
#include "broom/region.h"
#include "broom/temporary_region.h"
#include "broom/transferable_region.h"
#include "tests/fuzz/region_ops_harness.h"

namespace broom::fuzz::internal {

extern int g_op_index;
extern HarnessCounters g_counters;

[[noreturn]] BROOM_PRINTF(1, 2) void Fail(const char* fmt, ...);

#define HARNESS_CHECK(cond, ...)    \
  do {                              \
    if (!(cond)) Fail(__VA_ARGS__); \
  } while (0)

// Reads the input as a stream of little-endian integers; past the end every read gives 0.
class ByteReader {
 public:
  ByteReader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool done() const { return pos_ >= size_; }
  uint8_t U8() { return pos_ < size_ ? data_[pos_++] : 0; }
  uint16_t U16() { return static_cast<uint16_t>(U8() | (U8() << 8)); }
  uint32_t U32() { return static_cast<uint32_t>(U16()) | (static_cast<uint32_t>(U16()) << 16); }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

// ---- the model ------------------------------------------------------------------------------

constexpr int kSlots = 8;
constexpr size_t kFullFillLimit = 64 << 10;  // larger allocations are filled sparsely

inline uint8_t PatternByte(uint64_t id, size_t i) {
  return static_cast<uint8_t>(id * 0x9d + i + (i >> 8) * 0x35 + (i >> 16));
}

// Visits the offsets of an allocation that carry its pattern: all of them up to 64 KiB, else the
// first and last 4 KiB and one byte per KiB between.
template <class F>
void ForEachPatternOffset(size_t size, F&& f) {
  if (size <= kFullFillLimit) {
    for (size_t i = 0; i < size; ++i) f(i);
    return;
  }
  for (size_t i = 0; i < 4096; ++i) f(i);
  for (size_t i = 4096; i < size - 4096; i += 1024) f(i);
  for (size_t i = size - 4096; i < size; ++i) f(i);
}

// An object with a destructor, to check when region cleanups run.
struct Tracked {
  Tracked(int* counter, uint64_t id) : counter(counter), id(id) { ++*counter; }
  ~Tracked() { --*counter; }
  int* counter;
  uint64_t id;
};

struct Alloc {
  char* p;
  size_t size;
  uint64_t id;
  uint32_t scope;  // temporary regions: scope level at allocation (0: outside any scope)
  bool tracked;    // a Tracked object, not a byte pattern
};

enum class Kind : uint8_t { kEmpty, kTransferable, kActor, kTemporary };

// Bytes an actor region accounts for one Tracked object made by NewIn: its size class, with the
// cleanup node in front.
inline size_t TrackedClassBytes() {
  return ::broom::internal::kReapClasses.size[::broom::internal::ReapSizeClass(
      sizeof(::broom::internal::ActorCleanupNode) + sizeof(Tracked))];
}

// A new region holds one block: 4 KiB for bump regions, 2 KiB (its header) for actor regions.
inline size_t FirstBlockBytes(Kind kind) { return kind == Kind::kActor ? 2048 : 4096; }

struct Slot {
  Kind kind = Kind::kEmpty;
  std::optional<TransferableRegion> t;
  std::optional<ActorRegion> a;
  std::optional<TemporaryRegion> tmp;
  Region* region = nullptr;
  std::vector<Alloc> allocs;
  size_t budget = 0;
  size_t retain = size_t{1} << 20;
  int open = 0;        // entries on the scope stack naming this slot
  uint32_t level = 0;  // temporary: Scopes open on it
  std::unique_ptr<int> tracked_live = std::make_unique<int>(0);  // Tracked objects alive

  int TrackedInModel() const {
    int n = 0;
    for (const Alloc& a : allocs) n += a.tracked ? 1 : 0;
    return n;
  }
};

struct ScopeEntry {
  int slot;
  std::unique_ptr<TemporaryRegion::Scope> scope;  // temporary regions
  std::unique_ptr<ContextScope> context;          // other kinds
};

void FillPattern(const Alloc& a);
// Checks the allocation's pattern (or Tracked object) and that `owner` owns its bytes (a
// zero-size allocation owns one byte).
void VerifyAlloc(const Alloc& a, const Region* owner, int* counter);
void VerifyAll(const std::vector<Alloc>& allocs, const Region* owner, int* counter);

class Harness {
 public:
  Harness(const uint8_t* data, size_t size, const HarnessOptions& options)
      : in_(data, size), options_(options) {}

  void Run();

 private:
  // Decoding helpers.
  int PickSlot() { return in_.U8() % kSlots; }
  size_t PickSize(bool* huge);
  size_t PickAlign(bool* bad);

  // Operations.
  void Create();
  void Allocate(int s);
  void AllocateInContext();
  void NewTrackedObject(int s);
  void FreeOne(int s);
  void OpenScope(int s);
  void CloseScope();
  void Transfer(int s);
  void ShareAndDrop(int s);
  void SetBudget(int s);
  void SetProcessBudgetOp();
  void Reset(int s);
  void Destroy(int s);
  void Check(int s);
  void CheckOutlivesOp(int s);
  void Burst(int s);
  void FreeMany(int s);

  // Model bookkeeping.
  void Record(Slot& slot, char* p, size_t size, bool tracked);
  void Forget(const Alloc& a);
  void ForgetAll(const std::vector<Alloc>& allocs) {
    for (const Alloc& a : allocs) Forget(a);
  }
  void CheckFailure(Slot& slot, size_t size, bool huge, bool bad_align, size_t before_blocks);
  void MoveSlot(int from, int to);
  void DestroySlot(Slot& slot);
  int FindEmpty(int hint) const;

  ByteReader in_;
  HarnessOptions options_;
  Slot slots_[kSlots];
  std::vector<ScopeEntry> scopes_;
  std::map<uintptr_t, std::pair<size_t, uint64_t>> live_;  // start -> (bytes, id); size 0 -> 1 byte
  size_t live_bytes_ = 0;
  uint64_t next_id_ = 1;
  size_t process_budget_ = 0;
  int threads_started_ = 0;
};

}  // namespace broom::fuzz::internal

#endif  // BROOM_TESTS_FUZZ_REGION_OPS_MODEL_H_
