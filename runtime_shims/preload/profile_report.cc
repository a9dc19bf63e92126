// Copyright Broom authors.
//
// The profiler's report: ranking, suggestions, symbolization, JSON and text output.
#include <cxxabi.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "runtime_shims/preload/backend.h"
#include "runtime_shims/preload/profiler.h"
#include "runtime_shims/preload/profiler_internal.h"
#include "runtime_shims/preload/shim.h"

namespace broom::preload::profiler {

namespace {

// Buffered writer over a file descriptor; never allocates through malloc.
class Writer {
 public:
  explicit Writer(int fd) : fd_(fd) {}
  ~Writer() { Flush(); }
  void Printf(const char* fmt, ...) __attribute__((format(printf, 2, 3))) {
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = std::vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0) return;
    Put(tmp, static_cast<size_t>(n) < sizeof(tmp) ? static_cast<size_t>(n) : sizeof(tmp) - 1);
  }
  void Put(const char* s, size_t n) {
    if (used_ + n > sizeof(buf_)) Flush();
    if (n > sizeof(buf_)) {
      WriteAll(s, n);
      return;
    }
    std::memcpy(buf_ + used_, s, n);
    used_ += n;
  }
  void JsonString(const char* s) {
    Put("\"", 1);
    for (; *s != '\0'; ++s) {
      unsigned char c = static_cast<unsigned char>(*s);
      if (c == '"' || c == '\\') {
        char e[2] = {'\\', static_cast<char>(c)};
        Put(e, 2);
      } else if (c < 0x20) {
        Printf("\\u%04x", c);
      } else {
        Put(s, 1);
      }
    }
    Put("\"", 1);
  }
  void Flush() {
    WriteAll(buf_, used_);
    used_ = 0;
  }
  bool ok() const { return ok_; }

 private:
  void WriteAll(const char* s, size_t n) {
    while (n > 0) {
      ssize_t w = write(fd_, s, n);
      if (w <= 0) {
        ok_ = false;
        return;
      }
      s += w;
      n -= static_cast<size_t>(w);
    }
  }
  int fd_;
  size_t used_ = 0;
  bool ok_ = true;
  char buf_[16384];
};

struct Row {
  uint32_t index;
  SiteCounts c;
  uint64_t max_size;
  double mean_life_ns;
  int median_bucket;  // of freed objects; -1 if none freed
  const char* kind;
  const char* reason;
  char where[320];
};

int MedianBucket(const SiteCounts& c) {
  if (c.freed == 0) return -1;
  uint64_t half = (c.freed + 1) / 2, seen = 0;
  for (int b = 0; b < kBuckets; ++b) {
    seen += c.lifetime_hist[b];
    if (seen >= half) return b;
  }
  return kBuckets - 1;
}

void Symbolize(uintptr_t addr, char* out, size_t n) {
  if (addr <= 1) {
    std::snprintf(out, n, "(other sites: the site table was full)");
    return;
  }
  Dl_info info;
  // addr - 1: the return address may already belong to the next symbol.
  if (dladdr(reinterpret_cast<void*>(addr - 1), &info) == 0 || info.dli_fname == nullptr) {
    std::snprintf(out, n, "0x%lx", static_cast<unsigned long>(addr));
    return;
  }
  const char* module = std::strrchr(info.dli_fname, '/');
  module = module != nullptr ? module + 1 : info.dli_fname;
  if (module[0] == '\0') module = "(main)";
  if (info.dli_sname != nullptr) {
    int status = 0;
    char* demangled = abi::__cxa_demangle(info.dli_sname, nullptr, nullptr, &status);
    const char* name = status == 0 && demangled != nullptr ? demangled : info.dli_sname;
    std::snprintf(out, n, "%s+0x%lx (%s)", name,
                  static_cast<unsigned long>(addr - reinterpret_cast<uintptr_t>(info.dli_saddr)),
                  module);
    std::free(demangled);  // our own free: t_internal is set, so this is a heap free
  } else {
    std::snprintf(out, n, "%s+0x%lx", module,
                  static_cast<unsigned long>(addr - reinterpret_cast<uintptr_t>(info.dli_fbase)));
  }
}

// Expands %p in `path` to the pid. Returns false when the path has no %p and this process is
// not the one that enabled the profiler (a forked child: the parent writes the report).
bool ExpandPath(const char* path, char* out, size_t n) {
  bool has_pid = std::strstr(path, "%p") != nullptr;
  if (!has_pid && getpid() != g_state.owner_pid) return false;
  size_t o = 0;
  for (const char* s = path; *s != '\0' && o + 24 < n; ++s) {
    if (s[0] == '%' && s[1] == 'p') {
      o += static_cast<size_t>(std::snprintf(out + o, n - o, "%d", getpid()));
      ++s;
    } else {
      out[o++] = *s;
    }
  }
  out[o] = '\0';
  return true;
}

void WriteJson(Writer& w, Row* rows, size_t n, const Config& config, uint64_t total) {
  w.Printf("{\n  \"tool\": \"broom-preload-profile\",\n  \"version\": 1,\n  \"pid\": %d,\n",
           getpid());
  w.Printf("  \"group_window_us\": %u,\n  \"total_allocations\": %llu,\n", config.group_window_us,
           static_cast<unsigned long long>(total));
  w.Printf("  \"lifetime_buckets\": [");
  for (int b = 0; b < kBuckets; ++b) w.Printf("%s\"%s\"", b ? ", " : "", BucketLabel(b));
  w.Printf("],\n  \"sites\": [\n");
  for (size_t i = 0; i < n; ++i) {
    const Row& r = rows[i];
    const SiteCounts& c = r.c;
    w.Printf("    {\"rank\": %zu, \"site\": ", i + 1);
    w.JsonString(r.where);
    w.Printf(", \"address\": \"0x%lx\", \"count\": %llu, \"bytes\": %llu, \"max_size\": %llu,",
             static_cast<unsigned long>(g_state.sites[r.index].addr.load()),
             static_cast<unsigned long long>(c.count), static_cast<unsigned long long>(c.bytes),
             static_cast<unsigned long long>(r.max_size));
    w.Printf(" \"freed\": %llu, \"live_at_exit\": %llu,",
             static_cast<unsigned long long>(c.freed),
             static_cast<unsigned long long>(c.count - std::min(c.count, c.freed)));
    double cross = c.freed ? static_cast<double>(c.cross_thread) / static_cast<double>(c.freed) : 0;
    double group = c.freed ? static_cast<double>(c.grouped) / static_cast<double>(c.freed) : 0;
    w.Printf(" \"cross_thread_fraction\": %.4f, \"group_death_fraction\": %.4f,", cross, group);
    w.Printf(" \"mean_lifetime_ns\": %.0f, \"median_lifetime\": \"%s\", \"lifetime_hist\": [",
             r.mean_life_ns, r.median_bucket >= 0 ? BucketLabel(r.median_bucket) : "n/a");
    for (int b = 0; b < kBuckets; ++b) {
      w.Printf("%s%llu", b ? ", " : "", static_cast<unsigned long long>(c.lifetime_hist[b]));
    }
    w.Printf("], \"suggestion\": \"%s\", \"reason\": ", r.kind);
    w.JsonString(r.reason);
    w.Printf("}%s\n", i + 1 < n ? "," : "");
  }
  w.Printf("  ]\n}\n");
}

void WriteText(Writer& w, Row* rows, size_t n, const Config& config, uint64_t total) {
  w.Printf("Broom allocation-lifetime profile (pid %d): %llu heap allocations from %zu call sites\n",
           getpid(), static_cast<unsigned long long>(total), n);
  w.Printf("group death = freed within %u us of the previous free from the same site, after "
           "living longer than that\n\n", config.group_window_us);
  w.Printf("%-4s %-13s %10s %12s %7s %7s %8s %8s  %s\n", "rank", "suggestion", "count", "bytes",
           "cross%", "group%", "median", "live", "site");
  size_t top = std::min<size_t>(n, config.profile_top);
  for (size_t i = 0; i < top; ++i) {
    const Row& r = rows[i];
    const SiteCounts& c = r.c;
    double cross = c.freed ? 100.0 * static_cast<double>(c.cross_thread) / static_cast<double>(c.freed) : 0;
    double group = c.freed ? 100.0 * static_cast<double>(c.grouped) / static_cast<double>(c.freed) : 0;
    w.Printf("%-4zu %-13s %10llu %12llu %6.1f%% %6.1f%% %8s %8llu  %s\n", i + 1, r.kind,
             static_cast<unsigned long long>(c.count), static_cast<unsigned long long>(c.bytes),
             cross, group, r.median_bucket >= 0 ? BucketLabel(r.median_bucket) : "n/a",
             static_cast<unsigned long long>(c.count - std::min(c.count, c.freed)), r.where);
  }
  w.Printf("\nCandidates, by region kind (top 5 each, ranked by allocation count):\n");
  const char* kinds[] = {"transferable", "temporary", "actor"};
  for (const char* kind : kinds) {
    w.Printf("  %s:\n", kind);
    int shown = 0;
    for (size_t i = 0; i < n && shown < 5; ++i) {
      if (std::strcmp(rows[i].kind, kind) != 0) continue;
      w.Printf("    #%zu %s\n        %s\n", i + 1, rows[i].where, rows[i].reason);
      ++shown;
    }
    if (shown == 0) w.Printf("    (none)\n");
  }
}

}  // namespace

const char* Suggest(const SiteCounts& c, const char** reason) {
  const char* unused;
  if (reason == nullptr) reason = &unused;
  if (c.count < 16) {
    *reason = "too few allocations to judge";
    return "heap";
  }
  double freed = static_cast<double>(c.freed);
  double freed_frac = freed / static_cast<double>(c.count);
  double cross = c.freed ? static_cast<double>(c.cross_thread) / freed : 0;
  double group = c.freed ? static_cast<double>(c.grouped) / freed : 0;
  int median = MedianBucket(c);
  if (c.freed >= 16 && cross >= 0.5) {
    *reason = "most objects are freed by another thread than the allocating one: build them in "
              "a transferable region and hand the region over (one free per batch)";
    return "transferable";
  }
  if (freed_frac >= 0.5 && median >= 0 && median <= 2) {
    *reason = "short-lived (median lifetime under 100 us) and freed on the allocating thread: "
              "scratch for a temporary region scope around the work that allocates it";
    return "temporary";
  }
  if (freed_frac >= 0.5 && group >= 0.5) {
    *reason = "objects live a while and then die in groups: allocate each group in one region "
              "(transferable, or per-timestamp) and free it in bulk";
    return "transferable";
  }
  if (freed_frac < 0.5 || median >= 4) {
    *reason = "long-lived (alive at exit or median lifetime over 10 ms) and freed one by one: "
              "state for an actor-scoped region";
    return "actor";
  }
  *reason = "no clear lifetime pattern: leave on the heap";
  return "heap";
}

bool Report(const Config& config) {
  if (g_state.sites == nullptr) return false;
  char path[600];
  if (!ExpandPath(config.profile_path, path, sizeof(path) - 8)) return true;
  size_t n = 0;
  for (size_t i = 0; i < kMaxSites; ++i) {
    if (g_state.sites[i].addr.load(std::memory_order_relaxed) != 0 &&
        g_state.sites[i].count.load(std::memory_order_relaxed) != 0) {
      ++n;
    }
  }
  const size_t allocated = n;
  Row* rows = n ? static_cast<Row*>(JeAllocAligned(n * sizeof(Row), alignof(Row), false)) : nullptr;
  if (n != 0 && rows == nullptr) return false;
  size_t k = 0;
  uint64_t total = 0;
  for (size_t i = 0; i < kMaxSites && k < n; ++i) {
    const Site& s = g_state.sites[i];
    if (s.addr.load(std::memory_order_relaxed) == 0 || s.count.load(std::memory_order_relaxed) == 0) {
      continue;
    }
    Row& r = rows[k++];
    r.index = static_cast<uint32_t>(i);
    Counts(s, &r.c);
    total += r.c.count;
    r.max_size = s.max_size.load(std::memory_order_relaxed);
    r.mean_life_ns = r.c.freed ? static_cast<double>(s.lifetime_ticks.load()) /
                                     static_cast<double>(r.c.freed) / g_state.ticks_per_ns
                               : 0;
    r.median_bucket = MedianBucket(r.c);
    r.kind = Suggest(r.c, &r.reason);
  }
  n = k;
  std::sort(rows, rows + n, [](const Row& a, const Row& b) { return a.c.count > b.c.count; });
  for (size_t i = 0; i < n; ++i) {
    Symbolize(g_state.sites[rows[i].index].addr.load(), rows[i].where, sizeof(rows[i].where));
  }
  bool ok = true;
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd >= 0) {
    Writer w(fd);
    WriteJson(w, rows, n, config, total);
    w.Flush();
    ok = w.ok();
    close(fd);
  } else {
    ok = false;
  }
  std::strcat(path, ".txt");
  fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd >= 0) {
    Writer w(fd);
    WriteText(w, rows, n, config, total);
    w.Flush();
    ok = ok && w.ok();
    close(fd);
  } else {
    ok = false;
  }
  if (rows != nullptr) JeFreeSized(rows, allocated * sizeof(Row), alignof(Row));
  if (!ok) {
    char msg[700];
    int len = std::snprintf(msg, sizeof(msg), "broom: profile: cannot write %s\n", config.profile_path);
    ssize_t ignored = write(STDERR_FILENO, msg, static_cast<size_t>(len));
    (void)ignored;
  }
  return ok;
}

}  // namespace broom::preload::profiler
