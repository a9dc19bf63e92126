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
//
// Rules, by the kind of the region scanned:
//   transferable  self-contained: no pointers into any other region (kSelfContained).
//   actor         no pointers into transferable regions, only handles (kActorToTransferable);
//                 none into temporary regions (kActorToTemporary); none into other actor
//                 regions, which need not outlive it (kOutlives).
//   temporary     may point into everything that outlives a callback; not scanned.
//   both above    no pointers into freed region memory (kDangling): a word that lies in Broom's
//                 reserved space but in no live region. This is how an output message that
//                 points into an input message is caught after the input has been freed.
// Heap pointers are not region pointers and are not reported (the heap is not a region).
// A word equal to one past the end of the scanned region's memory is taken as an end pointer
// (a vector's end) and not reported.
// A conservative scan can report an integer that happens to look like a region address; such
// false positives are possible, never false negatives for pointers stored aligned.
//
// Cost: proportional to the bytes scanned (see bench/README.md for bytes per second); nothing
// is added to allocation fast paths, and with the mode kOff transfers do not scan.
//
// Thread-safety: CheckOutlives reads the region's memory and must be called by its owner; the
// mode functions are thread-safe.
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
};
const char* RuleName(Rule rule);

struct Violation {
  uint64_t source_id;
  const char* source_name;
  RegionKind source_kind;
  size_t source_offset;   // bytes from the start of the source block holding the word
  const void* source_address;
  const void* target_address;  // the value found
  uint64_t target_id;
  const char* target_name;
  RegionKind target_kind;
  Rule rule;
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

OutlivesReport CheckOutlives(const Region& region);

enum class CheckMode : uint8_t { kOff, kFatal, kLog };
void SetCheckMode(CheckMode mode);
CheckMode GetCheckMode();

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
