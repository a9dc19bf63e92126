// Copyright Broom authors.
//
// Library life cycle: the constructor resolves jemalloc's entry points, reads BROOM_CONF and
// registers fork handlers; the destructor prints the stats summary and writes the profile.
//
// Before the constructor runs (allocations by the loader and by the constructors of libraries
// loaded before us) the malloc family already works: every call takes the slow paths (see
// g_dispatch in shim.h), which use jemalloc's mallocx API, needing no lookup. Those few early
// allocations are not counted by stats:1 nor profiled.
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "broom/memory.h"
#include "runtime_shims/preload/backend.h"
#include "runtime_shims/preload/fork.h"
#include "runtime_shims/preload/profiler.h"
#include "runtime_shims/preload/shim.h"

namespace broom::preload {

namespace {

std::atomic<bool> g_reported{false};

}  // namespace

void WarnToStderr(void*, const char* message) {
  char buf[400];
  int n = std::snprintf(buf, sizeof(buf), "broom: warning: %s\n", message);
  if (n > 0) {
    ssize_t ignored =
        write(STDERR_FILENO, buf, static_cast<size_t>(n) < sizeof(buf) ? n : sizeof(buf) - 1);
    (void)ignored;
  }
}

namespace {

void PrintStats() {
  char buf[2048];
  int n = 0;
  auto Add = [&](const char* fmt, auto... args) {
    if (n < static_cast<int>(sizeof(buf))) {
      n += std::snprintf(buf + n, sizeof(buf) - static_cast<size_t>(n), fmt, args...);
    }
  };
  HeapCounters c = ReadCounters();
  Add("broom: stats (pid %d)\n", getpid());
  Add("  heap:    %llu allocations, %llu frees, %.1f MiB allocated, peak live ~%.1f MiB\n",
      static_cast<unsigned long long>(c.mallocs), static_cast<unsigned long long>(c.frees),
      static_cast<double>(c.bytes) / 1048576.0, static_cast<double>(c.peak_bytes) / 1048576.0);
  if (g_regions_used.load(std::memory_order_relaxed)) {
    GlobalStats g = GetGlobalStats();
    Add("  regions: %-12s %9s %9s %6s %12s\n", "kind", "created", "destroyed", "live", "mallocs");
    for (int k = 0; k < kNumRegionKinds; ++k) {
      Add("           %-12s %9llu %9llu %6llu %12llu\n", KindName(static_cast<RegionKind>(k)),
          static_cast<unsigned long long>(g.regions_created[k]),
          static_cast<unsigned long long>(g.regions_destroyed[k]),
          static_cast<unsigned long long>(g.live(static_cast<RegionKind>(k))),
          static_cast<unsigned long long>(c.region_mallocs[k]));
    }
    Add("  region memory: %.1f MiB held, peak %.1f MiB, %.1f MiB cached, %.1f GiB reserved\n",
        static_cast<double>(g.block_bytes) / 1048576.0,
        static_cast<double>(g.peak_block_bytes) / 1048576.0,
        static_cast<double>(g.cached_bytes) / 1048576.0,
        static_cast<double>(g.reserved_bytes) / 1073741824.0);
  } else {
    Add("  regions: none created\n");
  }
  if (n > static_cast<int>(sizeof(buf))) n = sizeof(buf);
  ssize_t ignored = write(STDERR_FILENO, buf, static_cast<size_t>(n));
  (void)ignored;
}

}  // namespace

void ReportAtExit() {
  if (g_reported.exchange(true)) return;
  bool saved = t_internal;
  t_internal = true;  // anything the report mallocs goes to the heap, unprofiled
  Config config = g_config;
  if (g_mode & kModeProfile) profiler::Report(config);
  if (config.stats) PrintStats();
  t_internal = saved;
}

}  // namespace broom::preload

// Runs after the constructors of the preload's own dependencies (libc, jemalloc, Abseil) and
// before the program's, but not necessarily before those of the program's other libraries: a
// library that does not depend on Broom may be initialized first (and may even dlopen() others).
// Everything here copes with that: allocations before this point take the slow paths, and
// direct binding pins every object it binds (bind.h).
__attribute__((constructor(101))) static void BroomPreloadConstructor() {
  using namespace broom::preload;
  ResolveBackend();
  Config config;
  ParseConf(std::getenv("BROOM_CONF"), &config, &WarnToStderr, nullptr);
  // Switches the exported functions to their fast paths (the region space waits for the first
  // region).
  Configure(config);
  // jemalloc registered its handlers at its initialization (forced by ResolveBackend), so ours
  // run first in the prepare phase (fork.h).
  RegisterForkHandlers();
}

__attribute__((destructor(101))) static void BroomPreloadDestructor() {
  broom::preload::ReportAtExit();
}
