// Copyright Broom authors.
//
// call_stack.h: the profiler's view of the stack at an allocation and at a free.
//
//   Stack         up to kMaxFrames return addresses, from the program's call of malloc/new
//                 (frame 0) outward, and for frames 0.. the stack slot holding each frame's own
//                 return address (the slot of frame r holds frames[r + 1]).
//   LoadUnwinder  picks the unwinder once: libunwind's unw_backtrace (dlopen()ed, so a process
//                 that does not profile never loads it; about 0.2 us for 15 frames) or libgcc's
//                 _Unwind_Backtrace (always there; about 4 us).
//   CaptureStack  fills a Stack for the allocation being made; the slots are found by scanning
//                 the live stack upward for the return addresses (x86-64 keeps each frame's
//                 return address at CFA - 8). The prefixed testing build records only `site`.
//   ScopeMarks    per-thread record of which function activations are still running. A frame's
//                 activation is running while its return-address slot is above the stack
//                 pointer and still holds the same return address. Each activation seen at an
//                 allocation gets an id; a free on the same thread asks which of the object's
//                 activations are still live. An activation ends when an allocation or free is
//                 seen with the stack pointer above its slot or with another return address in
//                 it (its caller has called something else since: the engine loop's `delete
//                 batch` after the callback ends the callback's activation).
//                 Limitation: a function called again from the same call site at the same depth
//                 with no profiled allocation or free in between is taken for the same
//                 activation.
//
// Thread-safety: CaptureStack and ThisThreadMarks() work on the calling thread's own state only.
// ScopeMarks is owner-thread only.
#ifndef BROOM_RUNTIME_SHIMS_PRELOAD_CALL_STACK_H_
#define BROOM_RUNTIME_SHIMS_PRELOAD_CALL_STACK_H_

#include <cstddef>
#include <cstdint>

#include "runtime_shims/preload/profiler.h"

namespace broom::preload::profiler {

struct Stack {
  uintptr_t frames[kMaxFrames];
  int n = 0;
  uintptr_t slots[kScopeFrames];  // slots[r] holds frames[r + 1]; ascending addresses
  int nslots = 0;
};

class ScopeMarks {
 public:
  // Forgets the activations that have returned: slots at or below `sp`, or holding another
  // return address (and everything deeper than such a slot).
  void Observe(uintptr_t sp);
  // Registers the running activations whose return-address slots are slots[0..n) (ascending)
  // holding values[0..n), on a stack whose pointer is `sp` (below slots[0]); writes their ids.
  void Enter(const uintptr_t* slots, const uintptr_t* values, int n, uintptr_t sp, uint32_t* ids);
  // The smallest r < n whose activation ids[r] is still running, or n if none is (ids of 0 are
  // untracked frames) or if frame r is running a newer call of frame r - 1 made from the same
  // call site (the object outlived the call that allocated it). `frames` is the allocation's
  // stack (the slot of frame r holds frames[r + 1]).
  int InnermostLive(const uint32_t* ids, int n, const uintptr_t* frames, int nframes, uintptr_t sp);
  int size() const { return n_; }

 private:
  struct Mark {
    uintptr_t slot, value;
    uint32_t id;
  };
  static constexpr int kMax = 64;
  void Insert(int at, uintptr_t slot, uintptr_t value);
  void Erase(int at);
  // INVARIANT: m_[0].slot > m_[1].slot > ... > m_[n_ - 1].slot (outermost first).
  Mark m_[kMax];
  int n_ = 0;
  uint32_t next_id_ = 1;
};

// Returns "libunwind" or "libgcc" (the unwinder CaptureStack uses). Idempotent; call from the
// library constructor (dlopen).
const char* LoadUnwinder();
// Captures the stack of the allocation being made by the calling thread, whose program return
// address is `site`, into the thread's Stack and returns it (null if the thread's state cannot
// be allocated). REQUIRES: t_internal is set (the unwinder and the thread-state setup may
// allocate).
Stack* CaptureStack(void* site);
// The calling thread's scope marks, or null if the thread has captured no stack yet.
ScopeMarks* ThisThreadMarks();
// The calling thread's stack pointer.
inline uintptr_t CurrentSp() {
  uintptr_t sp;
  asm volatile("mov %%rsp, %0" : "=r"(sp));
  return sp;
}

}  // namespace broom::preload::profiler

#endif  // BROOM_RUNTIME_SHIMS_PRELOAD_CALL_STACK_H_
