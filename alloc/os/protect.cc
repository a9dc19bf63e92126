// Copyright Broom authors.
#include "alloc/os/protect.h"

#include <signal.h>
#include <sys/mman.h>

#include <atomic>

namespace broom::internal::os {

namespace {

std::atomic<AccessFaultHandler> g_handler{nullptr};
struct sigaction g_previous_action;

void OnFault(int sig, siginfo_t* info, void* context) {
  if (info->si_code == SEGV_ACCERR) {
    if (AccessFaultHandler handler = g_handler.load(std::memory_order_acquire)) {
      handler(info->si_addr);  // returns if the fault is not its own
    }
  }
  ForwardFault(g_previous_action, sig, info, context);
}

}  // namespace

void ForwardFault(const struct sigaction& previous, int sig, siginfo_t* info, void* context) {
  if (previous.sa_flags & SA_SIGINFO) {
    if (previous.sa_sigaction != nullptr) {
      previous.sa_sigaction(sig, info, context);
      return;
    }
  } else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
    previous.sa_handler(sig);
    return;
  }
  signal(sig, SIG_DFL);  // returning re-executes the access, which now kills the process
}

bool ProtectReadOnly(void* p, size_t size, bool read_only) {
  return mprotect(p, size, read_only ? PROT_READ : PROT_READ | PROT_WRITE) == 0;
}

void InstallAccessFaultHandler(AccessFaultHandler handler) {
  static const bool installed = [handler] {
    g_handler.store(handler, std::memory_order_release);
    struct sigaction sa = {};
    sa.sa_sigaction = &OnFault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &g_previous_action);
    return true;
  }();
  (void)installed;
}

}  // namespace broom::internal::os
