// Copyright Broom authors. Layer 0 (os): read-only pages and the handler for writes to them,
// for checked mode's use-after-send check (broom/check.h, CheckOptions::sent_writes).
//
// Thread-safety: thread-safe. The fault handler runs on the faulting thread, in signal context.
#ifndef BROOM_ALLOC_OS_PROTECT_H_
#define BROOM_ALLOC_OS_PROTECT_H_

#include <signal.h>

#include <cstddef>

namespace broom::internal::os {

// Makes the whole pages [p, p + size) read-only, or readable and writable again. REQUIRES: p
// and size page-aligned. Returns false if the kernel refuses (the pages keep their protection).
// Cost: one mprotect system call (making pages read-only also flushes their TLB entries on every
// CPU that runs the process's threads).
bool ProtectReadOnly(void* p, size_t size, bool read_only);

// Installs, at the first call, a SIGSEGV handler that calls `handler(address)` for faults on
// mapped pages that forbid the access (SEGV_ACCERR: a write to a read-only page). If `handler`
// returns, and for every other fault, the fault goes to the handler that was installed before
// (or the default action). `handler` must be async-signal-safe in spirit: no malloc, no locks.
// Later calls do nothing (one handler per process).
using AccessFaultHandler = void (*)(void* address);
void InstallAccessFaultHandler(AccessFaultHandler handler);

// For a fault handler that found the fault is not its own: calls the handler `previous` (as
// sigaction returned it when ours was installed), or, if that was the default or ignore,
// restores the default action so that returning re-executes the access and the process dies of
// it. Async-signal-safe.
void ForwardFault(const struct sigaction& previous, int sig, siginfo_t* info, void* context);

}  // namespace broom::internal::os

#endif  // BROOM_ALLOC_OS_PROTECT_H_
