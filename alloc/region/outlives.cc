// Copyright Broom authors.
//
// The dynamic outlives check: a conservative scan of a region's words, the points-to rules,
// and the per-process check mode that scans transferable regions before they change owner.
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "alloc/os/heap_track.h"
#include "alloc/os/options.h"
#include "alloc/region/region_internal.h"
#include "broom/check.h"

#if BROOM_ASAN
#include <sanitizer/asan_interface.h>
#endif

#ifndef BROOM_CHECKED
#define BROOM_CHECKED 0
#endif

namespace broom {
namespace internal {

std::atomic<TransferHook> g_transfer_hook{nullptr};

namespace {

std::atomic<uint8_t> g_mode{
    static_cast<uint8_t>(BROOM_CHECKED ? CheckMode::kFatal : CheckMode::kOff)};
std::atomic<bool> g_heap_pointers{CheckOptions{}.heap_pointers};
std::atomic<bool> g_sent_writes{CheckOptions{}.sent_writes};

// BROOM_CHECK_HEAP and BROOM_CHECK_SENT, read once; unset keeps the CheckOptions defaults.
void LoadOptionsOnce() {
  static const bool loaded = [] {
    if (const int64_t v = GetOption(Option::kCheckHeap); v >= 0) g_heap_pointers.store(v != 0);
    if (const int64_t v = GetOption(Option::kCheckSent); v >= 0) g_sent_writes.store(v != 0);
    return true;
  }();
  (void)loaded;
}

// Heap recognition starts when the heap check first takes effect: in checked mode with
// heap_pointers on, or at an on-demand scan of a transferable region that asks for it.
void MaybeStartHeapTracking() {
  if (static_cast<CheckMode>(g_mode.load(std::memory_order_relaxed)) != CheckMode::kOff &&
      g_heap_pointers.load(std::memory_order_relaxed)) {
    StartHeapTracking();
  }
}

// The rule a pointer from a `source` region into a `target` region breaks, if any.
bool Breaks(RegionKind source, RegionKind target, Rule* rule) {
  switch (source) {
    case RegionKind::kTransferable:
      *rule = Rule::kSelfContained;
      return true;
    case RegionKind::kActor:
      *rule = target == RegionKind::kTransferable ? Rule::kActorToTransferable
              : target == RegionKind::kTemporary  ? Rule::kActorToTemporary
                                                  : Rule::kOutlives;
      return true;
    case RegionKind::kTemporary:
      return false;
  }
  return false;
}

class Scanner {
 public:
  Scanner(const Region* r, OutlivesReport* report, bool heap_pointers)
      : r_(r),
        report_(report),
        heap_(heap_pointers && r->kind() == RegionKind::kTransferable ? HeapBoundsNow()
                                                                      : HeapBounds{}) {}

  void Scan(const BlockHeader* block, const char* from, const char* to) {
    from = reinterpret_cast<const char*>((reinterpret_cast<uintptr_t>(from) + 7) & ~uintptr_t{7});
    for (const char* p = from; p + sizeof(uintptr_t) <= to; p += sizeof(uintptr_t)) {
#if BROOM_ASAN
      if (__asan_region_is_poisoned(const_cast<char*>(p), sizeof(uintptr_t)) != nullptr) {
        continue;  // padding, freed or rewound bytes
      }
#endif
      uintptr_t word;
      std::memcpy(&word, p, sizeof(word));
      const void* target_address = reinterpret_cast<const void*>(word);
      if (!InSpace(target_address)) {  // heap, stack, code, integers: not region memory
        if (BROOM_UNLIKELY(heap_.MayHold(word))) ScanHeapWord(block, p, target_address);
        continue;
      }
      Region* target = RegionOf(target_address);
      if (target == r_) continue;
      // One-past-the-end pointers (a vector's end) may sit at the start of the next block.
      if (word != 0 && RegionOf(reinterpret_cast<const void*>(word - 1)) == r_) continue;
      Rule rule;
      if (target == nullptr) {
        rule = Rule::kDangling;  // region memory that no live region owns: freed
      } else {
        if (target_address == target) continue;  // a handle: points at the Region object itself
        if (!Breaks(r_->kind(), target->kind(), &rule)) continue;
      }
      Add(block, p, target_address, target, rule, 0);
    }
    if (to > from) report_->bytes_scanned += static_cast<size_t>(to - from);
  }

 private:
  // Strict self-containment: a word of a transferable region that may point to the heap.
  BROOM_NOINLINE void ScanHeapWord(const BlockHeader* block, const char* p, const void* word) {
    size_t size = 0;
    if (!LookUpHeap(word, &size)) return;
    Add(block, p, word, nullptr, Rule::kHeapPointer, size);
  }

  void Add(const BlockHeader* block, const char* p, const void* target_address,
           const Region* target, Rule rule, size_t target_size) {
    ++report_->violation_count;
    if (report_->violations.size() < OutlivesReport::kMaxViolations) {
      report_->violations.push_back({r_->id(), r_->name(), r_->kind(),
                                     static_cast<size_t>(p - reinterpret_cast<const char*>(block)),
                                     p, target_address, target ? target->id() : 0,
                                     target ? target->name() : "",
                                     target ? target->kind() : r_->kind(), rule, target_size});
    }
  }

  const Region* r_;
  OutlivesReport* report_;
  const HeapBounds heap_;  // empty unless heap pointers are looked for
};

void ScanRange(void* ctx, const BlockHeader* block, const char* begin, const char* end) {
  static_cast<Scanner*>(ctx)->Scan(block, begin, end);
}

void CheckBeforeTransfer(const Region* r, const char* op);

void StoreMode(CheckMode mode) {
  g_mode.store(static_cast<uint8_t>(mode), std::memory_order_relaxed);
  g_transfer_hook.store(mode == CheckMode::kOff ? nullptr : &CheckBeforeTransfer,
                        std::memory_order_release);
  MaybeStartHeapTracking();
}

void CheckBeforeTransfer(const Region* r, const char* op) {
  OutlivesReport report = CheckOutlives(*r);
  if (report.ok()) return;
  char buf[128];
  std::string lines = report.ToString(8);
  if (GetCheckMode() == CheckMode::kLog) {
    std::fprintf(stderr, "broom: check: %s of %s: not self-contained (%zu violations)\n%s", op,
                 Describe(r, buf, sizeof(buf)), report.violation_count, lines.c_str());
    return;
  }
  Fatal(__FILE__, __LINE__, "%s of %s: not self-contained (%zu violations)\n%s", op,
        Describe(r, buf, sizeof(buf)), report.violation_count, lines.c_str());
}

}  // namespace

// BROOM_CHECKS and the option rows, read once, at the first region or the first GetCheckMode
// (so that a driver asking for the mode before any region sees the environment's); unset keeps
// the built-in default (kFatal with -DBROOM_CHECKED=ON, else kOff).
void LoadModeOnce() {
  static const bool initialized = [] {
    LoadOptionsOnce();
    const int64_t v = GetOption(Option::kChecks);
    StoreMode(v < 0 ? static_cast<CheckMode>(g_mode.load(std::memory_order_relaxed))
                    : static_cast<CheckMode>(v));
    return true;
  }();
  (void)initialized;
}

// Called at every region creation (CreateRegion): also binds the creating thread to heap
// tracking once that runs (a thread-local load when already bound or not tracking).
// Quarantine (BROOM_QUARANTINE_MS) is started by the chunk layer when the space is created.
void InitCheckModeOnce() {
  LoadModeOnce();
  TrackThisThread();
}

}  // namespace internal

const char* RuleName(Rule rule) {
  switch (rule) {
    case Rule::kSelfContained:
      return "self-contained (a transferable region points only into itself)";
    case Rule::kActorToTransferable:
      return "actor state holds handles of transferable regions, never pointers into them";
    case Rule::kActorToTemporary:
      return "actor state never points into a temporary region";
    case Rule::kOutlives:
      return "outlives (the target region must outlive the source)";
    case Rule::kDangling:
      return "no dangling pointers (the target region has been freed)";
    case Rule::kHeapPointer:
      return "self-contained, strictly (no pointers to heap memory: allocate nested data with "
             "the region's allocator, or with the region open)";
  }
  return "?";
}

OutlivesReport CheckOutlives(const Region& region) {
  return CheckOutlives(region, GetCheckOptions());
}

OutlivesReport CheckOutlives(const Region& region, const CheckOptions& options) {
  OutlivesReport report;
  // Temporary regions may point into anything that outlives a callback: not scanned.
  if (region.kind() == RegionKind::kTemporary) return report;
  const bool heap = options.heap_pointers && region.kind() == RegionKind::kTransferable;
  if (heap) internal::StartHeapTracking();
  internal::Scanner scanner(&region, &report, heap);
  region.ForEachLiveRange(&internal::ScanRange, &scanner);
  return report;
}

namespace {
const char* Target(const Violation& v, char* buf, size_t n) {
  if (v.rule == Rule::kDangling) return "freed region memory";
  if (v.rule == Rule::kHeapPointer) {
    if (v.target_size == 0) return "heap memory (block size not known)";
    std::snprintf(buf, n, "a heap block of %zu bytes", v.target_size);
    return buf;
  }
  std::snprintf(buf, n, "%s region #%" PRIu64 "%s%s%s", KindName(v.target_kind), v.target_id,
                v.target_name[0] ? " '" : "", v.target_name, v.target_name[0] ? "'" : "");
  return buf;
}
}  // namespace

std::string OutlivesReport::ToString(size_t max_lines) const {
  std::string out;
  char line[512];
  char target[160];
  for (size_t i = 0; i < violations.size() && i < max_lines; ++i) {
    const Violation& v = violations[i];
    std::snprintf(line, sizeof(line),
                  "  %s region #%" PRIu64 "%s%s%s +0x%zx points to %p in %s: breaks %s\n",
                  KindName(v.source_kind), v.source_id, v.source_name[0] ? " '" : "", v.source_name,
                  v.source_name[0] ? "'" : "", v.source_offset, v.target_address,
                  Target(v, target, sizeof(target)), RuleName(v.rule));
    out += line;
  }
  if (violation_count > max_lines) {
    std::snprintf(line, sizeof(line), "  ... and %zu more\n", violation_count - max_lines);
    out += line;
  }
  return out;
}

void SetCheckMode(CheckMode mode) {
  internal::LoadModeOnce();  // so that a later first use does not override this
  internal::StoreMode(mode);
}

CheckMode GetCheckMode() {
  internal::LoadModeOnce();
  return static_cast<CheckMode>(internal::g_mode.load(std::memory_order_relaxed));
}

void SetCheckOptions(const CheckOptions& options) {
  internal::LoadModeOnce();  // so that a later first use does not override these
  internal::g_heap_pointers.store(options.heap_pointers, std::memory_order_relaxed);
  internal::g_sent_writes.store(options.sent_writes, std::memory_order_relaxed);
  internal::MaybeStartHeapTracking();
}

CheckOptions GetCheckOptions() {
  internal::LoadOptionsOnce();
  return {.heap_pointers = internal::g_heap_pointers.load(std::memory_order_relaxed),
          .sent_writes = internal::g_sent_writes.load(std::memory_order_relaxed)};
}

HeapRecognition GetHeapRecognition() {
  using internal::HeapTracker;
  static_assert(static_cast<int>(HeapTracker::kNone) == static_cast<int>(HeapRecognition::kNone) &&
                static_cast<int>(HeapTracker::kJemallocArena) ==
                    static_cast<int>(HeapRecognition::kJemallocArena) &&
                static_cast<int>(HeapTracker::kAddressSanitizer) ==
                    static_cast<int>(HeapRecognition::kAddressSanitizer) &&
                static_cast<int>(HeapTracker::kThreadSanitizer) ==
                    static_cast<int>(HeapRecognition::kThreadSanitizer));
  return static_cast<HeapRecognition>(internal::ActiveHeapTracker());
}

}  // namespace broom
