// Copyright Broom authors.
//
// check.h: dynamic checks of the region points-to rules (HotOS section 5, ECOOP 2018).
//
//   CheckOutlives(region)   scans a region conservatively: every aligned word that points into
//                           another live region is checked against the rules for the source's
//                           kind, and each violation is reported with source region and offset,
//                           target region and kind, and the rule broken.
//   SetCheckMode(mode)      the per-process switch. When not kOff, transferring a transferable
//                           region (Transfer(), moving the handle, Share(), Release()) scans it
//                           first; a violation is fatal (kFatal) or logged to stderr (kLog).
//                           Default: kOff, or the value of the environment variable
//                           BROOM_CHECKS (0/off, 1/fatal, log) read at first use, or kFatal when
//                           built with -DBROOM_CHECKED=ON.
//   SetCheckOptions(o)      what checked mode checks besides the points-to rules: heap pointers
//                           (strict self-containment) and writes after a transfer (below).
//
// Rules, by the kind of the region scanned:
//   transferable  self-contained: no pointers into any other region (kSelfContained) and, with
//                 CheckOptions::heap_pointers, none to heap memory (kHeapPointer).
//   actor         no pointers into transferable regions, only handles (kActorToTransferable);
//                 none into temporary regions (kActorToTemporary); none into other actor
//                 regions, which need not outlive it (kOutlives).
//   temporary     may point into everything that outlives a callback; not scanned.
//   both above    no pointers into freed region memory (kDangling): a word that lies in Broom's
//                 reserved space but in no live region. This is how an output message that
//                 points into an input message is caught after the input has been freed.
// A word equal to one past the end of the scanned region's memory is taken as an end pointer
// (a vector's end) and not reported.
// A conservative scan can report an integer that happens to look like a region (or heap)
// address; such false positives are possible, never false negatives for region pointers stored
// aligned.
//
// Strict self-containment (CheckOptions::heap_pointers, BROOM_CHECK_HEAP; on by default, so
// every checked transfer applies it): a transferable region must not hold pointers to heap
// memory either. Such memory is what a std::string (not std::pmr::string) in a record, a pmr
// container member that was not given the allocator, or broom::New with no region open leave
// behind: it leaks when the region is freed in bulk and does not travel to another process. Each
// such word is reported with its offset and the size of the heap block it points into. Heap
// pointers are recognised for real, never guessed from address ranges (GetHeapRecognition):
//   jemalloc builds   when the check first takes effect, Broom creates a jemalloc arena that
//                     records every range it maps, and binds to it each thread that then creates
//                     a region (and the thread that turned the check on); their malloc, new and
//                     std::allocator allocate there. NOT recognised: heap memory allocated
//                     before that, or by threads that never created a region, or reused from a
//                     thread's cache after coming from before; such pointers are not reported.
//   ASan/TSan builds  the sanitizer's allocator answers for any heap memory.
//   other builds      (UBSan alone, -DBROOM_WITH_JEMALLOC=OFF) nothing is recognised; the first
//                     time the check takes effect it says so once on stderr.
// Heap pointers in actor regions are allowed (operator state may use the heap) and never
// reported.
//
// Use-after-send writes (CheckOptions::sent_writes, BROOM_CHECK_SENT): a transfer from one
// TransferableRegion handle to another (Transfer(), moving the handle or a Message) makes the
// region's blocks read-only until the new handle is first used (any operation on it, including
// Message's operator->, get() and region()). A write through a pointer the sender kept then
// faults, and a SIGSEGV handler (which passes other faults to the previous handler) reports
// "broom: fatal: write to transferable region #N 'name' +0x... after it was transferred".
// Writes after the new owner's first use are not caught (quarantine mode catches accesses after
// the region is freed). A region handed out raw (Release(), Share()) is not sealed. REQUIRES of
// the receiving side: touch the handle before writing through pointers read from the region
// (engines that deliver a batch do; see docs/overview.md). Costs two mprotect calls per run of
// adjacent blocks per transfer (bench/README.md).
//
// Cost: proportional to the bytes scanned (see bench/README.md for bytes per second); nothing
// is added to allocation fast paths, and with the mode kOff transfers do not scan. A word that
// may be a heap pointer costs a table lookup; a heap pointer found, a jemalloc query.
//
// Thread-safety: CheckOutlives reads the region's memory and must be called by its owner; the
// mode and option functions are thread-safe.
#ifndef BROOM_CHECK_H_
#define BROOM_CHECK_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "broom/region.h"

namespace broom {

enum class Rule : uint8_t {
  kSelfContained,        // a transferable region points outside itself
  kActorToTransferable,  // an actor region points into a transferable region
  kActorToTemporary,     // an actor region points into a temporary region
  kOutlives,             // the target region does not outlive the source
  kDangling,             // points into region memory no live region owns (freed): any kind
  kHeapPointer,          // a transferable region points to heap memory (strict self-containment)
};
const char* RuleName(Rule rule);

struct Violation {
  uint64_t source_id;
  const char* source_name;
  RegionKind source_kind;
  size_t source_offset;  // bytes from the start of the source block holding the word
  const void* source_address;
  const void* target_address;  // the value found
  uint64_t target_id;
  const char* target_name;
  RegionKind target_kind;
  Rule rule;
  size_t target_size;  // kHeapPointer: bytes of the heap block pointed into; 0 if not known
};

struct OutlivesReport {
  std::vector<Violation> violations;  // at most kMaxViolations kept
  size_t violation_count = 0;         // all violations found
  static constexpr size_t kMaxViolations = 1024;
  size_t bytes_scanned = 0;
  bool ok() const { return violations.empty(); }
  // One line per violation, e.g. "transferable region #7 'out' +0x40 points to 0x... in
  // transferable region #3 'in': breaks self-contained".
  std::string ToString(size_t max_lines = 16) const;
};

struct CheckOptions {
  // Strict self-containment (see the file comment). BROOM_CHECK_HEAP=0/1.
  bool heap_pointers = true;
  // Seal transferred regions read-only until their new owner uses them (see the file
  // comment). BROOM_CHECK_SENT=0/1.
  bool sent_writes = false;
};
// The options checked transfers use; also the default of CheckOutlives(region). Read from the
// environment at first use; Set overrides that.
void SetCheckOptions(const CheckOptions& options);
CheckOptions GetCheckOptions();

// Scans with GetCheckOptions(), or with `options` (only heap_pointers matters to a scan). A
// scan of a transferable region with heap_pointers starts heap recognition if it is not
// running yet (see the file comment: only heap memory allocated after that is recognised).
OutlivesReport CheckOutlives(const Region& region);
OutlivesReport CheckOutlives(const Region& region, const CheckOptions& options);

enum class CheckMode : uint8_t { kOff, kFatal, kLog };
void SetCheckMode(CheckMode mode);
CheckMode GetCheckMode();

// What recognises heap pointers in this process (see the file comment). kNone until the heap
// check first took effect, and for good in builds that cannot recognise them.
enum class HeapRecognition : uint8_t {
  kNone,
  kJemallocArena,     // the tracking arena (jemalloc builds)
  kAddressSanitizer,  // __asan_locate_address
  kThreadSanitizer,   // the TSan allocator (__sanitizer_get_ownership)
};
HeapRecognition GetHeapRecognition();

// Quarantine mode (no ASan needed): blocks of freed regions stay inaccessible (mprotect) for
// `duration_ms` or until `max_bytes` are quarantined, so a stale read or write through a
// pointer into a freed region faults with "broom: fatal: access to freed region memory at P:
// <kind> region #N 'name' was freed T ms ago" instead of reading reused memory. While a block
// is quarantined RegionOf() of its addresses is null. Costs an mprotect per released block;
// for testing, not production. Enabled at first use by BROOM_QUARANTINE_MS=<ms>. Installs a
// SIGSEGV handler that passes faults elsewhere on to the previous handler.
struct QuarantinePolicy {
  uint32_t duration_ms = 1000;
  size_t max_bytes = size_t{64} << 20;
};
void EnableQuarantine(const QuarantinePolicy& policy = {});
void DisableQuarantine();  // returns every quarantined block to the pool
bool QuarantineEnabled();

}  // namespace broom

#endif  // BROOM_CHECK_H_
