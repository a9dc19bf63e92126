// Copyright Broom authors. Layer 0 (os): a plain pthread mutex with Abseil's thread-safety
// annotations. Not absl::Mutex: Debian's Abseil is built without sanitizer instrumentation, so
// ThreadSanitizer cannot see its happens-before edges, and pthread mutexes never allocate and
// can be re-initialized in a forked child.
#ifndef BROOM_ALLOC_OS_MUTEX_H_
#define BROOM_ALLOC_OS_MUTEX_H_

#include <pthread.h>

#include "absl/base/thread_annotations.h"

namespace broom::internal {

class ABSL_LOCKABLE Mutex {
 public:
  constexpr Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;
  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { pthread_mutex_lock(&mu_); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { pthread_mutex_unlock(&mu_); }
  // For fork handlers: the child re-initializes a mutex its parent held across fork().
  void ResetInChild() { mu_ = PTHREAD_MUTEX_INITIALIZER; }

 private:
  pthread_mutex_t mu_ = PTHREAD_MUTEX_INITIALIZER;
};

class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* mu_;
};

}  // namespace broom::internal

#endif  // BROOM_ALLOC_OS_MUTEX_H_
