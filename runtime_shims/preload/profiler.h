// Copyright Broom authors.
//
// profiler.h: the allocation-lifetime profiler (BROOM_CONF=profile:FILE).
//
// For every heap allocation made while it is on, the profiler records the call stack (up to
// kMaxFrames return addresses from the program's call of malloc/new outward, call_stack.h), the
// allocating thread, a timestamp (rdtsc) and which activations of the stack's functions were
// running (scope marks, call_stack.h), in a sharded pointer table keyed by the object. A site
// is one distinct stack. At free it removes the record and adds to the site's counters:
//   freed, cross_thread       frees, and frees by another thread than the allocating one
//   at_exit                   frees after exit() began (the main thread's TLS destructors run
//                             first in exit(), so static destructors and atexit handlers free
//                             after the mark): such objects lived until exit
//   long_lived                objects that lived at least a quarter of the run so far (and 1 ms)
//   replaced                  same-thread frees right after a newer allocation from the same
//                             site (a container growing: new array, move, free the old one)
//   scope[r]                  same-thread frees whose innermost still-running frame of the
//                             allocation's stack was frame r: scope[0] means "died before the
//                             allocating function returned"; scope[kScopeFrames]: every tracked
//                             frame had returned; scope[kScopeFrames + 1]: not tracked
//   lifetime_hist, grouped    lifetimes in decades; group deaths (freed within group_window_us of
//                             the previous free from the site, after living longer than that)
// Objects still live at exit are counted as such.
//
// At exit Report() (profile_report.cc) symbolizes the stacks (symbolize.h: file:line and inline
// call sites through libdw where debug info exists), skips allocator, libstdc++ and known wrapper
// frames to find the user's line, merges stacks that resolve to the same two user frames, and
// classifies each site (Classify below): temporary, transferable or state (actor region), with
// the bytes and calls it accounts for and an estimate of the allocator time moving it saves. It
// writes FILE (JSON) and FILE.txt (readable). Region allocations are not profiled.
//
// Thread-safety: OnAlloc/OnFree/Take/Put/Retire are thread-safe (one SpinLock per shard of the
// pointer table, held across fork by fork.cc; site counters are atomics; scope marks are
// per-thread). Enable and Report are called once, by the library constructor and destructor.
#ifndef BROOM_RUNTIME_SHIMS_PRELOAD_PROFILER_H_
#define BROOM_RUNTIME_SHIMS_PRELOAD_PROFILER_H_

#include <cstddef>
#include <cstdint>

#include "runtime_shims/preload/config.h"
#include "runtime_shims/preload/spin_lock.h"

namespace broom::preload::profiler {

inline constexpr int kMaxFrames = 10;   // recorded return addresses per site
inline constexpr int kScopeFrames = 6;  // frames of a site whose activations are tracked
inline constexpr int kBuckets = 9;      // lifetime decades: <1us ... <10s, >=10s

struct Record {
  uint64_t tsc;                  // allocation time
  uint32_t site;                 // index in the site table
  uint32_t tid;                  // ThreadIndex() of the allocating thread
  uint32_t scope[kScopeFrames];  // scope-mark ids of frames 0.. (0: not tracked)
};

// Allocates the tables, loads the unwinder, calibrates the clock (about 2 ms) and arranges for
// the exit mark. False if the tables cannot be allocated (the profiler stays off, with a warning).
bool Enable(const Config& config);
// `site` is the program's return address from malloc/new (the first frame of the stack).
void OnAlloc(void* p, size_t size, void* site);
void OnFree(void* p);
// Removes and returns p's record (realloc keeps it aside while jemalloc moves the object).
bool Take(void* p, Record* out);
void Put(void* p, const Record& record);
// Counts the death of `record` now, on this thread.
void Retire(const Record& record);
// Marks the start of exit(): later frees count as "lived until exit". Called by the main
// thread's TLS destructor; exposed for tests.
void MarkExit();

// Writes the report files. Returns false (with a warning) if they cannot be written.
bool Report(const Config& config);

// Raw per-site counters (one stack).
struct SiteCounts {
  uint64_t count, bytes, freed, cross_thread, grouped, at_exit, long_lived, replaced;
  uint64_t lifetime_hist[kBuckets];  // <1us, <10us, ..., <10s, >=10s
  uint64_t scope[kScopeFrames + 2];  // see the file comment
};
// Counters of the site whose stack is the single frame `site` (tests call OnAlloc with fake
// sites in the prefixed build, which records no stack). False if never seen.
bool CountsFor(void* site, SiteCounts* out);

// What a reported site (one or more stacks resolving to the same user frames) adds up to.
struct SiteSummary {
  uint64_t count = 0, bytes = 0;
  // Replaced by a newer allocation from the site, or freed before the library call that
  // allocated them returned (a container's own growth, the temporaries inside std::string's
  // operator+): the library's business, not the user's.
  uint64_t internal = 0;
  uint64_t freed = 0;         // before exit, not counting `internal`
  uint64_t at_exit = 0;       // freed after exit began
  uint64_t cross_thread = 0;  // of `freed`
  uint64_t long_lived = 0;    // of `freed`
  uint64_t scope_known = 0;   // same-thread frees (of `freed`) whose activations were tracked
  uint64_t in_scope0 = 0;     // of those: died before the first user frame returned
  uint64_t in_scope1 = 0;     // ... before its caller (the second user frame) returned
  uint64_t lifetime_hist[kBuckets] = {};
  uint64_t live() const { return count - internal - freed - at_exit; }
};

// The profiler's answer for a site.
struct Verdict {
  const char* lifetime;  // "temporary", "transferable", "state", "unclear"
  const char* region;    // suggested region kind: "temporary", "transferable", "actor", "heap"
  const char* reason;    // one sentence: the evidence
  int scope_frame;       // temporary: 0 (dies in the allocating function) or 1 (in its caller)
  double saving_ns;      // estimated allocator time saved if moved (see profile_report.cc)
  double heap_ns;        // estimated allocator time the site costs on the heap
};
Verdict Classify(const SiteSummary& s);
int MedianBucket(const uint64_t (&hist)[kBuckets], uint64_t freed);

// The pointer table's shard locks, for the fork handlers (fork.cc).
inline constexpr int kShards = 256;
SpinLock& ShardLock(int i);

}  // namespace broom::preload::profiler

#endif  // BROOM_RUNTIME_SHIMS_PRELOAD_PROFILER_H_
