// Copyright Broom authors.
//
// spin_lock.h: the lock of the preload's own short critical sections (the heap counters, the
// pass-through/checked switch, the profiler's pointer-table shards), and a bounded back-off.
//
//   SpinLock  one word holding its holder's ThreadIndex() (0: free). Lock() spins briefly, then
//             yields, then sleeps: it never burns a CPU while a preempted or blocked holder makes
//             no progress. HeldByThisThread() lets the fork handlers tell a lock held by the
//             forking thread itself (a fork from a signal handler that interrupted the critical
//             section: waiting would deadlock) from one held by another thread (wait for it).
//             Not recursive. Never allocates; usable from signal handlers as far as the
//             critical sections they interrupt allow.
//   Backoff   the waiting policy: about 100 pause instructions, then sched_yield() a few times,
//             then 50 us sleeps.
//
// Thread-safety: thread-safe.
#ifndef BROOM_RUNTIME_SHIMS_PRELOAD_SPIN_LOCK_H_
#define BROOM_RUNTIME_SHIMS_PRELOAD_SPIN_LOCK_H_

#include <sched.h>
#include <time.h>

#include <atomic>
#include <cstdint>

#include "broom/internal/base.h"

namespace broom::preload {

uint32_t ThreadIndex();  // shim.h: a small dense per-thread number, never 0

class Backoff {
 public:
  void Wait() {
    if (rounds_ < 100) {
      __builtin_ia32_pause();
    } else if (rounds_ < 110) {
      sched_yield();
    } else {
      timespec ts = {0, 50000};
      nanosleep(&ts, nullptr);
    }
    ++rounds_;
  }

 private:
  int rounds_ = 0;
};

class SpinLock {
 public:
  constexpr SpinLock() = default;
  SpinLock(const SpinLock&) = delete;
  SpinLock& operator=(const SpinLock&) = delete;

  void Lock() {
    uint32_t free = 0;
    if (BROOM_LIKELY(owner_.compare_exchange_weak(free, ThreadIndex(), std::memory_order_acquire,
                                                  std::memory_order_relaxed))) {
      return;
    }
    LockSlow();
  }
  void Unlock() { owner_.store(0, std::memory_order_release); }
  bool HeldByThisThread() const { return owner_.load(std::memory_order_relaxed) == ThreadIndex(); }

 private:
  BROOM_NOINLINE void LockSlow() {
    const uint32_t me = ThreadIndex();
    Backoff backoff;
    for (;;) {
      uint32_t free = 0;
      if (owner_.load(std::memory_order_relaxed) == 0 &&
          owner_.compare_exchange_weak(free, me, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
        return;
      }
      backoff.Wait();
    }
  }

  std::atomic<uint32_t> owner_{0};
};

}  // namespace broom::preload

#endif  // BROOM_RUNTIME_SHIMS_PRELOAD_SPIN_LOCK_H_
