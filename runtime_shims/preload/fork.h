// Copyright Broom authors.
//
// fork.h: fork() under the preload. What can deadlock a fork, and what Broom does about it:
//
//   lock order    glibc's fork() runs the pthread_atfork prepare handlers, then takes its stdio
//                 list lock, then its own malloc locks. An allocator's prepare handler (jemalloc
//                 locks its arenas there) runs before the list lock: a thread in fflush(NULL)
//                 holds the list lock and waits for a FILE lock, whose holder (getline) is in
//                 malloc waiting for an arena lock the forking thread already holds. So the first
//                 prepare handler to run is Broom's StdioPrepare, which takes the list lock
//                 (recursive; glibc takes it again) before any allocator lock: jemalloc's, the
//                 preload's, and the region space's (chunk_space.cc registers its handlers when
//                 the space is created, at the first region; OnSpaceCreated() then registers
//                 StdioPrepare once more, so that it still runs first).
//   reentrancy    fork() from a signal handler that interrupted this thread's own fork (its
//                 handlers hold every allocator lock) would run the handlers again and wait for
//                 itself: Fork() turns such a nested fork into _Fork(), which runs no handlers
//                 (every lock is then held by the forking thread itself, in both processes). A
//                 fork from a signal handler that interrupted one of the preload's critical
//                 sections skips that lock (SpinLock::HeldByThisThread). Nothing spins unbounded:
//                 the preload's locks back off to sleeping (spin_lock.h).
//   the space     the region space is built lazily (a function-local static in the core); a fork
//                 while another thread builds it would leave the child's guard pending forever.
//                 Fork() waits until no build is in progress, and builds wait for forks in
//                 progress (BeginSpaceBuild).
//
// What remains (as with jemalloc alone): a fork from a signal handler that interrupted this very
// thread inside jemalloc or the region space, holding one of their locks, waits for itself in
// their prepare handler; glibc's malloc does the same in a multithreaded process.
//
// Thread-safety: thread-safe; Fork() is as async-signal-safe as glibc's fork.
#ifndef BROOM_RUNTIME_SHIMS_PRELOAD_FORK_H_
#define BROOM_RUNTIME_SHIMS_PRELOAD_FORK_H_

#include <sys/types.h>

namespace broom::preload {

// The exported fork() (and broom_fork in the prefixed build).
pid_t Fork();

// Registers the preload's fork handlers. Call once, from the library constructor, after jemalloc
// registered its own (so that ours run before jemalloc's in the prepare phase).
void RegisterForkHandlers();

// Call once the region space exists (its constructor registered the space's fork handlers).
void OnSpaceCreated();

// Bracket the construction of the region space: BeginSpaceBuild waits while a Fork() is in
// progress, and Fork() waits while a build is in progress on another thread.
void BeginSpaceBuild();
void EndSpaceBuild();

}  // namespace broom::preload

#endif  // BROOM_RUNTIME_SHIMS_PRELOAD_FORK_H_
