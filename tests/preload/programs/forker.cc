// Copyright Broom authors.
//
// fork() from several threads while other threads allocate (heap, and regions when the preload
// is present). Each child allocates, checks its work and exits; the parent checks every child.
// A lock inherited in the locked state would hang a child: the test runs under a timeout.
#define BROOM_C_WEAK
#include "broom/c/broom.h"

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace {

std::atomic<bool> g_stop{false};
bool g_regions = false;
void* volatile g_sink;

long Work(int seed) {
  std::map<int, std::string> m;
  for (int i = 0; i < 2000; ++i) m[(i * 7919 + seed) % 5000] = std::string(i % 64, 'a' + i % 26);
  long s = 0;
  for (auto& [k, v] : m) s += k + static_cast<long>(v.size());
  return s;
}

void RegionWork() {
  if (!g_regions) return;
  broom_region_t* r = broom_region_create(BROOM_TRANSFERABLE, nullptr);
  broom_region_push(r);
  for (int i = 0; i < 200; ++i) g_sink = malloc(100 + static_cast<size_t>(i));  // bulk-freed
  broom_region_pop(r);
  broom_region_destroy(r);
}

void Churn() {
  while (!g_stop.load(std::memory_order_relaxed)) {
    Work(1);
    RegionWork();
  }
}

int Forker(int id, int forks) {
  int bad = 0;
  for (int i = 0; i < forks; ++i) {
    long expect = Work(id * 100 + i);
    pid_t pid = fork();
    if (pid == 0) {
      long got = Work(id * 100 + i);
      RegionWork();
      int code = got == expect ? 0 : 3;
      if (i % 2 == 0) _exit(code);
      std::exit(code);  // runs destructors and atexit handlers in the child
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
      ++bad;
    }
  }
  return bad;
}

}  // namespace

int main() {
  g_regions = broom_available() && broom_is_active();
  const int kForkers = 4, kForks = 10;
  std::vector<std::thread> churners;
  for (int i = 0; i < 2; ++i) churners.emplace_back(Churn);
  std::atomic<int> bad{0};
  std::vector<std::thread> forkers;
  for (int i = 0; i < kForkers; ++i) forkers.emplace_back([&, i] { bad += Forker(i, kForks); });
  for (auto& t : forkers) t.join();
  g_stop = true;
  for (auto& t : churners) t.join();
  std::printf("forks=%d failed=%d\n", kForkers * kForks, bad.load());
  return bad.load() == 0 ? 0 : 1;
}
