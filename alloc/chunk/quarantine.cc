// Copyright Broom authors.
#include "alloc/chunk/quarantine.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>

#include "alloc/os/mutex.h"
#include "alloc/os/os.h"
#include "alloc/os/protect.h"
#include "broom/check.h"

namespace broom::internal {

namespace {

struct Entry {
  BlockHeader* block;
  size_t size;
  uint64_t time_ms;
  uint64_t region_id;
  const char* region_name;
  const char* kind_name;
};

constexpr size_t kRing = 16384;

// Read by the signal handler without the lock; written under it. Entries are plain data.
Entry g_ring[kRing];
Mutex g_mu;
size_t g_head ABSL_GUARDED_BY(g_mu) = 0;  // oldest
size_t g_count ABSL_GUARDED_BY(g_mu) = 0;
size_t g_bytes ABSL_GUARDED_BY(g_mu) = 0;
std::atomic<uint32_t> g_duration_ms{1000};
std::atomic<size_t> g_max_bytes{size_t{64} << 20};
struct sigaction g_previous_action;
// Set once by QuarantineStart; read by BlockOfQuarantined and the fault handler.
std::atomic<Space*> g_space_object{nullptr};
std::atomic<std::atomic<uint8_t>*> g_page_map{nullptr};  // one byte per page of the space

thread_local constinit uint64_t t_releasing_id = 0;
thread_local constinit const char* t_releasing_name = nullptr;
thread_local constinit const char* t_releasing_kind = "?";

void MarkPages(BlockHeader* b, size_t size, uint8_t value) {
  std::atomic<uint8_t>* map = g_page_map.load(std::memory_order_relaxed);
  Space* space = g_space_object.load(std::memory_order_relaxed);
  const size_t first = static_cast<size_t>(reinterpret_cast<char*>(b) - space->base()) / kPageSize;
  for (size_t i = 0; i < size / kPageSize; ++i)
    map[first + i].store(value, std::memory_order_relaxed);
  if (value != 0) {
    // Send lookups in these chunks through the page map (BlockOfQuarantined). A run's words are
    // rewritten when it is released again; a carved chunk keeps the mark until it is merged.
    for (size_t off = 0; off < size; off += kChunkSize) {
      space->OrMap(reinterpret_cast<char*>(b) + off, kMapQuarantined);
    }
  }
}

// Leaves quarantine: accessible again. Called without g_mu held.
BlockHeader* Leave(BlockHeader* b, size_t size) {
  os::Protect(b, size, /*accessible=*/true);
  MarkPages(b, size, 0);
  return b;
}

void OnFault(int sig, siginfo_t* info, void* context) {
  const void* addr = info->si_addr;
  std::atomic<uint8_t>* map = g_page_map.load(std::memory_order_acquire);
  if (map != nullptr && InSpace(addr) &&
      map[(reinterpret_cast<uintptr_t>(addr) - g_space.base) / kPageSize].load(
          std::memory_order_relaxed)) {
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
                        "%s%s%s was freed %" PRIu64
                        " ms ago (quarantine mode keeps freed blocks "
                        "inaccessible)\n",
                        addr, found->kind_name, found->region_id, found->region_name ? " '" : "",
                        found->region_name ? found->region_name : "", found->region_name ? "'" : "",
                        os::NowMs() - found->time_ms);
    } else {
      n = std::snprintf(buf, sizeof(buf),
                        "broom: fatal: access to freed region memory at %p (quarantine)\n", addr);
    }
    ssize_t ignored = write(STDERR_FILENO, buf, static_cast<size_t>(n));
    (void)ignored;
    std::abort();
  }
  // Not ours: hand the fault to whoever handled it before (or the default action).
  os::ForwardFault(g_previous_action, sig, info, context);
}

void InstallOnce(Space* space) {
  static bool installed = [space] {
    const size_t pages = space->size() / kPageSize;
    auto* map = static_cast<std::atomic<uint8_t>*>(os::MapLazyZeroed(pages));
    BROOM_CHECK(map != nullptr, "cannot map the quarantine page map (%zu bytes)", pages);
    g_space_object.store(space, std::memory_order_relaxed);
    g_page_map.store(map, std::memory_order_release);
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

namespace quarantine_internal {
std::atomic<bool> g_active{false};
}  // namespace quarantine_internal

BlockHeader* BlockOfQuarantined(uintptr_t address, uintptr_t word) {
  word &= ~kMapQuarantined;
  const uintptr_t header = (word & kMapCarved) != 0 ? address & (word - 1) : word;
  std::atomic<uint8_t>* map = g_page_map.load(std::memory_order_acquire);
  if (header != 0 && map != nullptr &&
      map[(header - g_space.base) / kPageSize].load(std::memory_order_relaxed) != 0) {
    return nullptr;  // freed and protected: its header must not be read
  }
  return reinterpret_cast<BlockHeader*>(header);
}

void SetReleasingRegion(uint64_t id, const char* name, const char* kind_name) {
  t_releasing_id = id;
  t_releasing_name = name;
  t_releasing_kind = kind_name;
}

void QuarantineStart(Space* space, const QuarantinePolicy& policy) {
  InstallOnce(space);
  g_duration_ms.store(policy.duration_ms, std::memory_order_relaxed);
  g_max_bytes.store(policy.max_bytes, std::memory_order_relaxed);
  quarantine_internal::g_active.store(true, std::memory_order_release);
}

void QuarantineStop() { quarantine_internal::g_active.store(false, std::memory_order_release); }

bool QuarantineAdmit(BlockHeader* b, BlockHeader** expired, int* n) {
  *n = 0;
  if (!QuarantineActive()) return false;
  const size_t size = b->size;
  if (size < kPageSize) return false;  // mprotect works on whole pages: freed normally
  const uint64_t now = os::NowMs();
  size_t expired_size[kMaxExpired];
  int n_expired = 0;
  bool admitted = false;
  {
    MutexLock lock(&g_mu);
    const uint32_t duration = g_duration_ms.load(std::memory_order_relaxed);
    const size_t max_bytes = g_max_bytes.load(std::memory_order_relaxed);
    while (g_count > 0 && n_expired < kMaxExpired &&
           (g_count == kRing || g_bytes + size > max_bytes ||
            now - g_ring[g_head].time_ms >= duration)) {
      Entry& e = g_ring[g_head];
      expired[n_expired] = e.block;
      expired_size[n_expired++] = e.size;
      g_bytes -= e.size;
      e.block = nullptr;
      g_head = (g_head + 1) % kRing;
      --g_count;
    }
    if (g_count < kRing && g_bytes + size <= max_bytes) {
      MarkPages(b, size, 1);
      g_ring[(g_head + g_count) % kRing] = {
          b, size, now, t_releasing_id, t_releasing_name, t_releasing_kind};
      ++g_count;
      g_bytes += size;
      admitted = true;
    }
  }
  if (admitted) os::Protect(b, size, /*accessible=*/false);
  for (int i = 0; i < n_expired; ++i) Leave(expired[i], expired_size[i]);
  *n = n_expired;
  return admitted;
}

BlockHeader* QuarantineTakeOldest() {
  BlockHeader* b;
  size_t size;
  {
    MutexLock lock(&g_mu);
    if (g_count == 0) return nullptr;
    Entry& e = g_ring[g_head];
    b = e.block;
    size = e.size;
    e.block = nullptr;
    g_bytes -= size;
    g_head = (g_head + 1) % kRing;
    --g_count;
  }
  return Leave(b, size);
}

}  // namespace broom::internal
