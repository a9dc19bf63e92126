// Copyright Broom authors.
//
// fork() and the preload's fork handlers. See fork.h.
#include "runtime_shims/preload/fork.h"

#include <errno.h>
#include <pthread.h>
#include <sys/single_threaded.h>
#include <unistd.h>

#include <atomic>

#include "runtime_shims/preload/profiler.h"
#include "runtime_shims/preload/shim.h"
#include "runtime_shims/preload/spin_lock.h"

// glibc's stdio list lock (exported since GLIBC_2.2.5, declared in no public header). It is
// recursive; glibc's fork takes it after the prepare handlers, releases it in the parent and
// resets it in a child of a multithreaded parent.
extern "C" void _IO_list_lock(void);
extern "C" void _IO_list_unlock(void);
// glibc's fork itself (the exported fork is ours).
extern "C" pid_t __fork(void);

namespace broom::preload {

namespace {

thread_local bool t_forking BROOM_IE_TLS = false;  // inside Fork() on this thread
// Depth of each handler set on this thread: a nested run (a fork that did not go through Fork()
// from a signal handler during the fork handlers) finds everything held already.
thread_local int t_stdio_depth BROOM_IE_TLS = 0;
thread_local int t_locks_depth BROOM_IE_TLS = 0;
// Whether glibc's fork saw other threads (then it resets the list lock in the child itself).
thread_local bool t_multithreaded BROOM_IE_TLS = false;
// Locks this thread already held when its fork began: left to the interrupted critical section.
constexpr int kMaxSkipped = 4;
thread_local SpinLock* t_skipped[kMaxSkipped] BROOM_IE_TLS = {};
thread_local int t_num_skipped BROOM_IE_TLS = 0;

std::atomic<int> g_forking{0};   // Fork() calls past the gate
std::atomic<int> g_building{0};  // space builds in progress
thread_local bool t_building BROOM_IE_TLS = false;

template <class F>
void ForEachLock(F f) {
  f(SwitchLock());
  f(CountersLock());
  for (int i = 0; i < profiler::kShards; ++i) f(profiler::ShardLock(i));
}

bool Skipped(const SpinLock* lock) {
  for (int i = 0; i < t_num_skipped; ++i) {
    if (t_skipped[i] == lock) return true;
  }
  return false;
}

void StdioPrepare() {
  if (t_stdio_depth++ != 0) return;
  t_multithreaded = __libc_single_threaded == 0;  // what glibc's fork decided before the handlers
  _IO_list_lock();
}
void StdioParent() {
  if (--t_stdio_depth == 0) _IO_list_unlock();
}
void StdioChild() {
  if (--t_stdio_depth != 0) return;
  if (!t_multithreaded) _IO_list_unlock();  // else glibc reset it before the child handlers
}

void LocksPrepare() {
  if (t_locks_depth++ != 0) return;
  t_num_skipped = 0;
  ForEachLock([](SpinLock& lock) {
    if (!lock.HeldByThisThread()) {
      lock.Lock();
    } else if (t_num_skipped < kMaxSkipped) {
      t_skipped[t_num_skipped++] = &lock;
    }
  });
}
void LocksRelease() {  // parent and child: the forking thread holds the locks in both
  if (--t_locks_depth != 0) return;
  ForEachLock([](SpinLock& lock) {
    if (!Skipped(&lock)) lock.Unlock();
  });
  t_num_skipped = 0;
}

}  // namespace

pid_t Fork() {
  if (t_forking) return _Fork();  // nested in this thread's own fork (a signal handler)
  t_forking = true;
  g_forking.fetch_add(1, std::memory_order_seq_cst);
  Backoff backoff;
  while (g_building.load(std::memory_order_seq_cst) != 0 && !t_building) backoff.Wait();
  pid_t pid = __fork();
  int saved = errno;
  if (pid == 0) {
    // Only this thread exists now: nobody else is forking or building.
    g_forking.store(0, std::memory_order_relaxed);
    g_building.store(0, std::memory_order_relaxed);
  } else {
    g_forking.fetch_sub(1, std::memory_order_seq_cst);
  }
  t_forking = false;
  errno = saved;
  return pid;
}

void BeginSpaceBuild() {
  for (;;) {
    g_building.fetch_add(1, std::memory_order_seq_cst);
    if (g_forking.load(std::memory_order_seq_cst) == 0 || t_forking) break;
    g_building.fetch_sub(1, std::memory_order_seq_cst);
    Backoff backoff;
    while (g_forking.load(std::memory_order_seq_cst) != 0) backoff.Wait();
  }
  t_building = true;
}

void EndSpaceBuild() {
  t_building = false;
  g_building.fetch_sub(1, std::memory_order_seq_cst);
}

void RegisterForkHandlers() {
  // Prepare handlers run last-registered first: the list lock before the preload's locks, both
  // before jemalloc's (registered when ResolveBackend() initialized it).
  pthread_atfork(&LocksPrepare, &LocksRelease, &LocksRelease);
  pthread_atfork(&StdioPrepare, &StdioParent, &StdioChild);
}

void OnSpaceCreated() {
  static std::atomic<bool> done{false};
  if (!done.exchange(true)) pthread_atfork(&StdioPrepare, &StdioParent, &StdioChild);
}

}  // namespace broom::preload
