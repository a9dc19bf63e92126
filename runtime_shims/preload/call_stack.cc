// Copyright Broom authors.
//
// Stack capture and scope marks for the profiler. See call_stack.h.
#include "runtime_shims/preload/call_stack.h"

#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <unwind.h>

#include <new>

#include "broom/internal/base.h"
#include "runtime_shims/preload/backend.h"
#include "runtime_shims/preload/shim.h"

namespace broom::preload::profiler {

// ---- scope marks ------------------------------------------------------------------------------

void ScopeMarks::Observe(uintptr_t sp) {
  while (n_ > 0 && m_[n_ - 1].slot <= sp) --n_;
  // A slot that no longer holds its return address belongs to a call made since (the caller
  // called something else from the same place): that activation and all deeper ones returned.
  for (int i = 0; i < n_; ++i) {
    if (*reinterpret_cast<const uintptr_t*>(m_[i].slot) != m_[i].value) {
      n_ = i;
      break;
    }
  }
}

void ScopeMarks::Insert(int at, uintptr_t slot, uintptr_t value) {
  for (int i = n_; i > at; --i) m_[i] = m_[i - 1];
  m_[at] = Mark{slot, value, next_id_};
  if (++next_id_ == 0) next_id_ = 1;  // 0 means untracked
  ++n_;
}

void ScopeMarks::Erase(int at) {
  for (int i = at; i + 1 < n_; ++i) m_[i] = m_[i + 1];
  --n_;
}

void ScopeMarks::Enter(const uintptr_t* slots, const uintptr_t* values, int n, uintptr_t sp,
                       uint32_t* ids) {
  Observe(sp);
  if (n == 0) return;
  int p = 0;
  while (p < n_ && m_[p].slot > slots[n - 1]) ++p;  // activations further out: unknown, kept
  for (int r = n - 1; r >= 0; --r) {
    // A mark between two frames of the running chain is no frame of it any more: it returned.
    while (p < n_ && m_[p].slot > slots[r]) Erase(p);
    if (p < n_ && m_[p].slot == slots[r]) {
      if (m_[p].value != values[r]) {  // another function's frame now: a new activation
        m_[p] = Mark{slots[r], values[r], next_id_};
        if (++next_id_ == 0) next_id_ = 1;
      }
    } else {
      if (n_ == kMax) {
        if (p == 0) {  // no room further out: leave this activation untracked
          ids[r] = 0;
          continue;
        }
        Erase(0);
        --p;
      }
      Insert(p, slots[r], values[r]);
    }
    ids[r] = m_[p].id;
    ++p;
  }
  n_ = p;  // anything deeper is inside this allocation call or has returned
}

int ScopeMarks::InnermostLive(const uint32_t* ids, int n, const uintptr_t* frames, int nframes,
                              uintptr_t sp) {
  Observe(sp);
  for (int i = n_ - 1; i >= 0; --i) {  // deepest first: the first match is the smallest r
    for (int r = 0; r < n; ++r) {
      if (ids[r] == 0 || ids[r] != m_[i].id) continue;
      // Frame r runs the same activation. If it is now inside a newer call made from the same
      // call site as the allocating one (frame r - 1 again, a later activation), the object
      // outlived its call: it is state of that function, not a temporary of frame r.
      if (r > 0 && r < nframes && i + 1 < n_ && m_[i + 1].value == frames[r] &&
          m_[i + 1].id != ids[r - 1]) {
        return n;
      }
      return r;
    }
  }
  return n;
}

// ---- unwinding --------------------------------------------------------------------------------

namespace {

constexpr int kCapture = 20;  // frames unwound: Broom's own few, then the program's

struct ThreadState {
  ScopeMarks marks;
  Stack stack;
  void* ips[kCapture];
  uintptr_t stack_lo = 0, stack_hi = 0;  // this thread's stack; 0/0 if unknown
};

thread_local ThreadState* t_state BROOM_IE_TLS = nullptr;
pthread_key_t g_state_key;
bool g_state_key_made = false;

int (*g_backtrace)(void**, int) = nullptr;
const char* g_unwinder = nullptr;
uintptr_t g_self_lo = 0, g_self_hi = 0;  // this library's mapping

struct GccTrace {
  void** out;
  int n, max;
};

_Unwind_Reason_Code GccStep(_Unwind_Context* ctx, void* arg) {
  auto* t = static_cast<GccTrace*>(arg);
  if (t->n >= t->max) return _URC_END_OF_STACK;
  t->out[t->n++] = reinterpret_cast<void*>(_Unwind_GetIP(ctx));
  return _URC_NO_REASON;
}

int GccBacktrace(void** out, int max) {
  GccTrace t{out, 0, max};
  _Unwind_Backtrace(&GccStep, &t);
  return t.n;
}

void FreeThreadState(void* p) {
  auto* ts = static_cast<ThreadState*>(p);
  if (t_state == ts) t_state = nullptr;
  ts->~ThreadState();
  JeFreeSized(ts, sizeof(ThreadState), alignof(ThreadState));
}

ThreadState* State() {
  if (BROOM_LIKELY(t_state != nullptr)) return t_state;
  void* mem = JeAllocAligned(sizeof(ThreadState), alignof(ThreadState), true);
  if (mem == nullptr) return nullptr;
  auto* ts = new (mem) ThreadState();
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    void* addr = nullptr;
    size_t size = 0;
    if (pthread_attr_getstack(&attr, &addr, &size) == 0) {
      ts->stack_lo = reinterpret_cast<uintptr_t>(addr);
      ts->stack_hi = ts->stack_lo + size;
    }
    pthread_attr_destroy(&attr);
  }
  if (g_state_key_made) pthread_setspecific(g_state_key, ts);
  t_state = ts;
  return ts;
}

bool InSelf(uintptr_t a) { return a >= g_self_lo && a < g_self_hi; }

// Finds the return-address slots of the captured frames by scanning the live stack upward from
// this function's frame (nothing below the program's frames holds the program's return
// addresses: the unwinder's buffer is in the thread state, not on the stack).
BROOM_NOINLINE void ScanSlots(ThreadState* ts) {
  Stack& s = ts->stack;
  s.nslots = 0;
  auto* p = static_cast<const uintptr_t*>(__builtin_frame_address(0));
  uintptr_t at = reinterpret_cast<uintptr_t>(p);
  if (at < ts->stack_lo || at >= ts->stack_hi) return;  // unknown stack (fiber, sigaltstack)
  uintptr_t limit = ts->stack_hi;
  if (limit - at > (uintptr_t{1} << 20)) limit = at + (uintptr_t{1} << 20);
  const auto* end = reinterpret_cast<const uintptr_t*>(limit);
  int want = s.n - 1 < kScopeFrames ? s.n - 1 : kScopeFrames;
  int r = 0;
  for (; r < want && p < end; ++p) {
    if (*p == s.frames[r + 1]) s.slots[r++] = reinterpret_cast<uintptr_t>(p);
  }
  s.nslots = r;
}

}  // namespace

const char* LoadUnwinder() {
  if (g_unwinder != nullptr) return g_unwinder;
  dl_find_object self;
  if (_dl_find_object(reinterpret_cast<void*>(&GccBacktrace), &self) == 0) {
    g_self_lo = reinterpret_cast<uintptr_t>(self.dlfo_map_start);
    g_self_hi = reinterpret_cast<uintptr_t>(self.dlfo_map_end);
  }
  g_state_key_made = pthread_key_create(&g_state_key, &FreeThreadState) == 0;
  // RTLD_LOCAL: libunwind's own _Unwind_Backtrace and backtrace stay out of the global scope.
  if (void* h = dlopen("libunwind.so.8", RTLD_NOW | RTLD_LOCAL)) {
    g_backtrace = reinterpret_cast<int (*)(void**, int)>(dlsym(h, "unw_backtrace"));
  }
  g_unwinder = g_backtrace != nullptr ? "libunwind" : "libgcc";
  if (g_backtrace == nullptr) g_backtrace = &GccBacktrace;
  return g_unwinder;
}

ScopeMarks* ThisThreadMarks() { return t_state != nullptr ? &t_state->marks : nullptr; }

Stack* CaptureStack(void* site) {
  ThreadState* ts = State();
  if (ts == nullptr) return nullptr;
  Stack& s = ts->stack;
  const auto at = reinterpret_cast<uintptr_t>(site);
  s.frames[0] = at;
  s.n = 1;
  s.nslots = 0;
  if (!BROOM_PRELOAD_INTERPOSES || g_backtrace == nullptr) return &s;
  int n = g_backtrace(ts->ips, kCapture);
  int k0 = -1;
  for (int i = 0; i < n && i < 10; ++i) {
    if (reinterpret_cast<uintptr_t>(ts->ips[i]) == at) {
      k0 = i;
      break;
    }
  }
  if (k0 < 0 && InSelf(at)) {  // an unoptimized build calls, not tail-calls, the slow paths
    for (int i = 0; i < n; ++i) {
      if (!InSelf(reinterpret_cast<uintptr_t>(ts->ips[i]))) {
        k0 = i;
        break;
      }
    }
  }
  if (k0 < 0) return &s;
  s.n = 0;
  for (int i = k0; i < n && s.n < kMaxFrames; ++i) {
    s.frames[s.n++] = reinterpret_cast<uintptr_t>(ts->ips[i]);
  }
  ScanSlots(ts);
  return &s;
}

}  // namespace broom::preload::profiler
