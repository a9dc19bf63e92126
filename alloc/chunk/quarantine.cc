// Copyright Broom authors.
#include "alloc/chunk/quarantine.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>

#include "alloc/chunk/chunk_space.h"
#include "alloc/os/mutex.h"
#include "alloc/os/os.h"
#include "broom/check.h"

namespace broom::internal {

namespace {

struct Entry {
  BlockHeader* block;
  size_t size;
  uint64_t time_ms;
  uint64_t region_id;
  const char* region_name;
  RegionKind kind;
};

constexpr size_t kRing = 16384;

// Read by the signal handler without the lock; written under it. Entries are plain data.
Entry g_ring[kRing];
Mutex g_mu;
size_t g_head ABSL_GUARDED_BY(g_mu) = 0;  // oldest
size_t g_count ABSL_GUARDED_BY(g_mu) = 0;
size_t g_bytes ABSL_GUARDED_BY(g_mu) = 0;
std::atomic<bool> g_active{false};
std::atomic<uint32_t> g_duration_ms{1000};
std::atomic<size_t> g_max_bytes{size_t{64} << 20};
struct sigaction g_previous_action;

thread_local constinit uint64_t t_releasing_id = 0;
thread_local constinit const char* t_releasing_name = nullptr;
thread_local constinit RegionKind t_releasing_kind = RegionKind::kTransferable;

void MarkPages(BlockHeader* b, size_t size, uint8_t value) {
  std::atomic<uint8_t>* map = g_space.quarantine.load(std::memory_order_relaxed);
  size_t first = (reinterpret_cast<uintptr_t>(b) - g_space.base) / kPageSize;
  for (size_t i = 0; i < size / kPageSize; ++i) map[first + i].store(value, std::memory_order_relaxed);
  if (value != 0) {
    // Send lookups in these chunks through the page map (BlockOfQuarantined). A run's words are
    // rewritten when it is released again; a carved chunk keeps the mark.
    const uintptr_t begin = reinterpret_cast<uintptr_t>(b) - g_space.base;
    for (uintptr_t c = begin >> kChunkShift; c <= (begin + size - 1) >> kChunkShift; ++c) {
      g_space.chunk_map[c].fetch_or(kMapQuarantined, std::memory_order_release);
    }
  }
}

// Leaves quarantine: accessible again, then freed for reuse. Called without g_mu held.
void Reuse(BlockHeader* b, size_t size) {
  os::Protect(b, size, /*accessible=*/true);
  MarkPages(b, size, 0);
  ReturnFreeBlock(b);
}

void OnFault(int sig, siginfo_t* info, void* context) {
  const void* addr = info->si_addr;
  std::atomic<uint8_t>* map = g_space.quarantine.load(std::memory_order_relaxed);
  if (map != nullptr && InSpace(addr) &&
      map[(reinterpret_cast<uintptr_t>(addr) - g_space.base) / kPageSize].load(std::memory_order_relaxed)) {
    const Entry* found = nullptr;
    for (const Entry& e : g_ring) {
      const char* begin = reinterpret_cast<const char*>(e.block);
      if (begin != nullptr && addr >= begin && addr < begin + e.size) found = &e;
    }
    char buf[512];
    int n;
    if (found != nullptr) {
      n = std::snprintf(buf, sizeof(buf),
                        "broom: fatal: access to freed region memory at %p: %s region #%" PRIu64
                        "%s%s%s was freed %" PRIu64 " ms ago (quarantine mode keeps freed blocks "
                        "inaccessible)\n",
                        addr, KindName(found->kind), found->region_id,
                        found->region_name ? " '" : "", found->region_name ? found->region_name : "",
                        found->region_name ? "'" : "", os::NowMs() - found->time_ms);
    } else {
      n = std::snprintf(buf, sizeof(buf),
                        "broom: fatal: access to freed region memory at %p (quarantine)\n", addr);
    }
    ssize_t ignored = write(STDERR_FILENO, buf, static_cast<size_t>(n));
    (void)ignored;
    std::abort();
  }
  // Not ours: hand the fault to whoever handled it before (or the default action).
  if (g_previous_action.sa_flags & SA_SIGINFO) {
    if (g_previous_action.sa_sigaction != nullptr) {
      g_previous_action.sa_sigaction(sig, info, context);
      return;
    }
  } else if (g_previous_action.sa_handler != SIG_DFL && g_previous_action.sa_handler != SIG_IGN) {
    g_previous_action.sa_handler(sig);
    return;
  }
  signal(sig, SIG_DFL);  // returning re-executes the access, which now kills the process
}

void InstallOnce() {
  static bool installed = [] {
    EnsureSpace();
    size_t pages = (g_space.end - g_space.base) / kPageSize;
    auto* map = static_cast<std::atomic<uint8_t>*>(os::MapLazyZeroed(pages));
    BROOM_CHECK(map != nullptr, "cannot map the quarantine page map (%zu bytes)", pages);
    g_space.quarantine.store(map, std::memory_order_release);
    struct sigaction sa = {};
    sa.sa_sigaction = &OnFault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &g_previous_action);
    pthread_atfork([]() ABSL_NO_THREAD_SAFETY_ANALYSIS { g_mu.Lock(); },
                   []() ABSL_NO_THREAD_SAFETY_ANALYSIS { g_mu.Unlock(); },
                   []() ABSL_NO_THREAD_SAFETY_ANALYSIS { g_mu.Unlock(); });
    return true;
  }();
  (void)installed;
}

}  // namespace

BlockHeader* BlockOfQuarantined(uintptr_t address, uintptr_t word) {
  word &= ~kMapQuarantined;
  const uintptr_t header = (word & kMapCarved) != 0 ? address & (word - 1) : word;
  std::atomic<uint8_t>* map = g_space.quarantine.load(std::memory_order_relaxed);
  if (header != 0 && map != nullptr &&
      map[(header - g_space.base) / kPageSize].load(std::memory_order_relaxed) != 0) {
    return nullptr;  // freed and protected: its header must not be read
  }
  return reinterpret_cast<BlockHeader*>(header);
}

void SetReleasingRegion(uint64_t id, const char* name, RegionKind kind) {
  t_releasing_id = id;
  t_releasing_name = name;
  t_releasing_kind = kind;
}

bool QuarantineAdmit(BlockHeader* b) {
  if (!g_active.load(std::memory_order_relaxed)) return false;
  size_t size = b->size;
  if (size < kPageSize) return false;  // mprotect works on whole pages: freed normally
  uint64_t now = os::NowMs();
  BlockHeader* expired[64];
  size_t expired_size[64];
  int n_expired = 0;
  {
    MutexLock lock(&g_mu);
    uint32_t duration = g_duration_ms.load(std::memory_order_relaxed);
    size_t max_bytes = g_max_bytes.load(std::memory_order_relaxed);
    while (g_count > 0 && n_expired < 64 &&
           (g_count == kRing || g_bytes + size > max_bytes || now - g_ring[g_head].time_ms >= duration)) {
      Entry& e = g_ring[g_head];
      expired[n_expired] = e.block;
      expired_size[n_expired++] = e.size;
      g_bytes -= e.size;
      e.block = nullptr;
      g_head = (g_head + 1) % kRing;
      --g_count;
    }
    if (g_count == kRing) return false;  // still full: free normally
    MarkPages(b, size, 1);
    g_ring[(g_head + g_count) % kRing] = {b, size, now, t_releasing_id, t_releasing_name,
                                          t_releasing_kind};
    ++g_count;
    g_bytes += size;
  }
  os::Protect(b, size, /*accessible=*/false);
  for (int i = 0; i < n_expired; ++i) Reuse(expired[i], expired_size[i]);
  return true;
}

}  // namespace broom::internal

namespace broom {

void EnableQuarantine(const QuarantinePolicy& policy) {
  internal::InstallOnce();
  internal::g_duration_ms.store(policy.duration_ms, std::memory_order_relaxed);
  internal::g_max_bytes.store(policy.max_bytes, std::memory_order_relaxed);
  internal::g_active.store(true, std::memory_order_release);
}

void DisableQuarantine() {
  internal::g_active.store(false, std::memory_order_release);
  for (;;) {
    internal::BlockHeader* b;
    size_t size;
    {
      internal::MutexLock lock(&internal::g_mu);
      if (internal::g_count == 0) return;
      internal::Entry& e = internal::g_ring[internal::g_head];
      b = e.block;
      size = e.size;
      e.block = nullptr;
      internal::g_bytes -= size;
      internal::g_head = (internal::g_head + 1) % internal::kRing;
      --internal::g_count;
    }
    internal::Reuse(b, size);
  }
}

bool QuarantineEnabled() { return internal::g_active.load(std::memory_order_relaxed); }

}  // namespace broom
