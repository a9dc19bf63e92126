// Copyright Broom authors.
//
// fork() in the situations that deadlock allocators (runtime_shims/preload/fork.h). A hang is
// the failure: run under a timeout. Prints the counts; exits 1 if a fork or a child failed.
//
//   fork_safety stdio FORKS [regions]
//     Background threads: two fopen/getline/fclose a file of long lines (getline holds the
//     FILE's lock while it mallocs; fopen and fclose take the stdio list lock), two fflush(NULL)
//     (the list lock, then each FILE's lock), two churn malloc/free up to 64 KiB. The main thread
//     forks FORKS times; each child mallocs, writes through stdio and exits. An allocator whose
//     fork handler locks its arenas before glibc's fork takes the list lock deadlocks here: the
//     forking thread holds an arena lock and waits for the list lock, the fflush thread holds
//     the list lock and waits for a FILE lock, the getline thread holds that FILE lock and waits
//     in malloc for the arena lock.
//   fork_safety signal FORKS [regions]
//     The same threads; the forks come from a SIGUSR1 handler on the main thread (a signaler
//     thread sends the signals; every other thread blocks them, so the handler never interrupts
//     malloc itself, which deadlocks glibc's malloc as well).
//   fork_safety nested FORKS
//     One thread forks FORKS times; its pthread_atfork handlers take a while, and a 300 us
//     interval timer's SIGALRM handler forks too (at most 10 * FORKS times), often while the
//     loop's own fork is inside its handlers (which hold every allocator lock). Single-threaded, as
//     glibc's fork is then safe in a signal handler.
// "regions" (with the preload): the getline threads read with a temporary region pushed, so
// their allocations take the region space's lock too.
#define BROOM_C_WEAK
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "broom/c/broom.h"

namespace {

std::atomic<bool> g_stop{false};
std::atomic<int> g_forks{0};
std::atomic<int> g_failed{0};
volatile unsigned g_sink;

// ---- the background threads -------------------------------------------------------------------

void Reader(const char* path, bool regions) {
  while (!g_stop.load(std::memory_order_relaxed)) {
    broom_region_t* r = regions ? broom_region_create(BROOM_TEMPORARY, nullptr) : nullptr;
    if (r != nullptr) broom_region_push(r);
    FILE* f = std::fopen(path, "r");
    if (f == nullptr) std::abort();
    char* line = nullptr;
    size_t cap = 0;
    while (!g_stop.load(std::memory_order_relaxed) && getline(&line, &cap, f) > 0) {
      std::free(line);  // every getline mallocs anew, and reallocs while the line grows
      line = nullptr;
      cap = 0;
    }
    std::free(line);
    std::fclose(f);
    if (r != nullptr) {
      broom_region_pop(r);
      broom_region_destroy(r);
    }
  }
}

void Flusher() {
  while (!g_stop.load(std::memory_order_relaxed)) {
    FILE* f = std::fopen("/dev/null", "w");
    if (f == nullptr) std::abort();
    std::fputs("x", f);
    std::fflush(nullptr);
    std::fclose(f);
  }
}

void Churner(unsigned seed) {
  std::vector<void*> slots(256, nullptr);
  while (!g_stop.load(std::memory_order_relaxed)) {
    for (void*& p : slots) {
      std::free(p);
      seed = seed * 1103515245u + 12345u;
      p = std::malloc(16 + (seed >> 8) % 65536);
    }
  }
  for (void* p : slots) std::free(p);
}

// ---- forking ----------------------------------------------------------------------------------

// The child allocates and uses stdio: possible only if the fork handlers held every lock.
[[noreturn]] void Child() {
  void* p = std::malloc(1000);
  FILE* f = std::fopen("/dev/null", "w");
  bool ok = p != nullptr && f != nullptr && std::fprintf(f, "child %d\n", getpid()) > 0;
  if (f != nullptr) std::fclose(f);
  std::free(p);
  _exit(ok ? 0 : 3);
}

void Count(pid_t pid) {
  if (pid > 0) {
    g_forks.fetch_add(1, std::memory_order_relaxed);
  } else {
    g_failed.fetch_add(1, std::memory_order_relaxed);
  }
}

// Reaps children; counts those that did not exit with 0.
void Reap(bool block) {
  int status = 0;
  pid_t pid;
  while ((pid = waitpid(-1, &status, block ? 0 : WNOHANG)) > 0) {
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) g_failed.fetch_add(1);
  }
}

void ForkFromHandler(int) {
  int saved = errno;
  pid_t pid = fork();
  if (pid == 0) Child();
  Count(pid);
  errno = saved;
}

// Writes a file of 300 lines of up to 90 000 bytes; returns its path (in `path`).
bool MakeInput(char* path) {
  int fd = mkstemp(path);
  FILE* w = fd >= 0 ? fdopen(fd, "w") : nullptr;
  if (w == nullptr) return false;
  for (int i = 0; i < 300; ++i) {
    std::fprintf(w, "%d %s\n", i, std::string(static_cast<size_t>(i) * 7919 % 90000, 'x').c_str());
  }
  return std::fclose(w) == 0;
}

int Threaded(int forks, bool from_signal, bool regions) {
  char path[] = "/tmp/broom_fork_safety_XXXXXX";
  if (!MakeInput(path)) return 2;
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &usr1, nullptr);  // inherited by every thread created now
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) threads.emplace_back(Reader, path, regions);
  for (int i = 0; i < 2; ++i) threads.emplace_back(Flusher);
  for (unsigned i = 0; i < 2; ++i) threads.emplace_back(Churner, i + 1);
  if (!from_signal) {
    for (int i = 0; i < forks; ++i) {
      pid_t pid = fork();
      if (pid == 0) Child();
      Count(pid);
      Reap(true);
    }
  } else {
    struct sigaction sa = {};
    sa.sa_handler = &ForkFromHandler;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, nullptr);
    std::thread signaler([forks] {
      // Signals sent while one is pending merge: send until enough forks happened.
      for (int sent = 0; g_forks.load() + g_failed.load() < forks && sent < 100 * forks; ++sent) {
        kill(getpid(), SIGUSR1);  // process-directed: only the main thread accepts it
        usleep(300);
      }
      g_stop = true;
    });
    pthread_sigmask(SIG_UNBLOCK, &usr1, nullptr);
    while (!g_stop.load()) {
      usleep(200);
      Reap(false);
    }
    signaler.join();
  }
  g_stop = true;
  for (std::thread& t : threads) t.join();
  Reap(true);
  unlink(path);
  std::printf("forks=%d failed=%d\n", g_forks.load(), g_failed.load());
  return g_failed.load() == 0 && g_forks.load() >= forks ? 0 : 1;
}

void SlowHandler() {
  for (unsigned i = 0; i < 20000; ++i) g_sink = g_sink + i;
}

// At most this many handler forks (set by Nested): where one fork takes longer than the timer's
// interval, the handler would otherwise run back to back, starving the loop (and its reaping)
// until the machine runs out of processes.
std::atomic<int> g_max_handler_forks{0};

void ForkInAlarm(int) {
  int saved = errno;
  if (g_forks.load(std::memory_order_relaxed) < g_max_handler_forks.load()) {
    pid_t pid = fork();
    if (pid == 0) _exit(0);  // async-signal-safe only: the interrupted fork may be half done
    Count(pid);
  }
  Reap(false);  // waitpid is async-signal-safe: the handler's children never pile up
  errno = saved;
}

int Nested(int forks) {
  g_max_handler_forks = 10 * forks;
  pthread_atfork(&SlowHandler, &SlowHandler, &SlowHandler);
  struct sigaction sa = {};
  sa.sa_handler = &ForkInAlarm;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGALRM, &sa, nullptr);
  itimerval every = {{0, 300}, {0, 300}};
  setitimer(ITIMER_REAL, &every, nullptr);
  int loop_forks = 0;
  for (int i = 0; i < forks; ++i) {
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    if (pid > 0) {
      ++loop_forks;
    } else {
      g_failed.fetch_add(1);
    }
    Reap(false);
  }
  itimerval off = {};
  setitimer(ITIMER_REAL, &off, nullptr);
  Reap(true);
  std::printf("forks=%d handler_forks=%d failed=%d\n", loop_forks, g_forks.load(), g_failed.load());
  return g_failed.load() == 0 && loop_forks == forks ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "";
  int forks = argc > 2 ? std::atoi(argv[2]) : 100;
  bool regions =
      argc > 3 && std::strcmp(argv[3], "regions") == 0 && broom_available() && broom_is_active();
  if (std::strcmp(mode, "stdio") == 0) return Threaded(forks, false, regions);
  if (std::strcmp(mode, "signal") == 0) return Threaded(forks, true, regions);
  if (std::strcmp(mode, "nested") == 0) return Nested(forks);
  std::fprintf(stderr, "usage: fork_safety stdio|signal|nested FORKS [regions]\n");
  return 2;
}
