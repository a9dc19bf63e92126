// Copyright Broom authors.
//
// The profiler's report: symbolization of the stacks, merging into user-level sites,
// classification, estimated savings, JSON and text output. Runs once, at exit, with t_internal
// set (its own allocations go to the heap, unprofiled).
#include <fcntl.h>
#include <unistd.h>
#include <x86intrin.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "runtime_shims/preload/profiler.h"
#include "runtime_shims/preload/profiler_internal.h"
#include "runtime_shims/preload/symbolize.h"

namespace broom::preload::profiler {

namespace {

// Cost model of the estimated savings, per object, measured on a 2-vCPU VM like the one Broom is
// benchmarked on (docs/preload.md, "The cost model", gives the numbers):
constexpr double kHeapPairNs = 5.5;    // malloc + free on one thread (jemalloc)
constexpr double kRemoteFreeNs = 110;  // extra for freeing another thread's object (97-131 ns)
constexpr double kRegionNs = 1.3;      // bump allocation (0.6 ns) + share of a bulk free (0.7)
constexpr double kOneByOneNs = 10;     // freeing a long-lived object on its own (8-22 ns)
constexpr double kBulkFreeNs = 0.7;    // the same object freed with its region

class Out {
 public:
  void Printf(const char* fmt, ...) __attribute__((format(printf, 2, 3))) {
    char tmp[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = std::vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0) s_.append(tmp, std::min<size_t>(static_cast<size_t>(n), sizeof(tmp) - 1));
  }
  void Json(const std::string& v) {
    s_ += '"';
    for (unsigned char c : v) {
      if (c == '"' || c == '\\') {
        s_ += '\\';
        s_ += static_cast<char>(c);
      } else if (c < 0x20) {
        Printf("\\u%04x", c);
      } else {
        s_ += static_cast<char>(c);
      }
    }
    s_ += '"';
  }
  void Raw(const std::string& v) { s_ += v; }
  bool WriteTo(const char* path) const {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return false;
    const char* p = s_.data();
    size_t n = s_.size();
    bool ok = true;
    while (n > 0) {
      ssize_t w = write(fd, p, n);
      if (w <= 0) {
        ok = false;
        break;
      }
      p += w;
      n -= static_cast<size_t>(w);
    }
    close(fd);
    return ok;
  }

 private:
  std::string s_;
};

double Frac(uint64_t a, uint64_t b) { return b != 0 ? static_cast<double>(a) / b : 0.0; }

// A reported site: the stacks whose first two user frames resolve to the same source lines.
struct Agg {
  SiteSummary sum;
  uint64_t grouped = 0, max_size = 0, lifetime_ticks = 0, stacks = 0;
  uint64_t best_count = 0;     // count of the stack shown
  std::vector<Frame> shown;    // frames of the stack with the most allocations
  int user0 = -1, user1 = -1;  // indexes in `shown`
  Verdict v = {};
};

// Index of the first frame at or after `from` that is user code (-1 if none).
int NextUserFrame(const std::vector<Frame>& frames, int from) {
  for (int i = from; i < static_cast<int>(frames.size()); ++i) {
    if (!frames[i].library) return i;
  }
  return -1;
}

std::string ExeName() {
  char buf[512];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return "?";
  buf[n] = '\0';
  return buf;
}

std::string ShortFunction(const std::string& f) {
  return f.size() > 110 ? f.substr(0, 107) + "..." : f;
}

std::string Where(const Agg& a, int i) {
  if (i < 0) return "(no user frame)";
  Frame f = a.shown[i];
  f.function = ShortFunction(f.function);
  return f.Describe(true);
}

// What to do about a site, in words.
std::string Action(const Agg& a) {
  auto fn = [&](int i) {
    if (i < 0) return std::string("the allocating code");
    const std::string& f = a.shown[i].function;
    return f.empty() ? a.shown[i].Describe(true) : ShortFunction(f);
  };
  std::string region = a.v.region;
  if (region == "temporary") {
    return "open a temporary region around the body of " +
           fn(a.v.scope_frame == 0 ? a.user0 : a.user1) +
           " (broom::TemporaryRegion::Scope, or broom_region_push/pop of a BROOM_TEMPORARY "
           "region): what it allocates is freed at once when the scope ends, and the blocks are "
           "reused by the next call";
  }
  if (region == "transferable") {
    return "build it in a transferable region on the allocating thread (broom::Message<T>, or "
           "push a BROOM_TRANSFERABLE region while " +
           fn(a.user0) +
           " fills it) and hand the region over with the data; the receiver frees it with one "
           "call instead of one remote free per object";
  }
  if (region == "actor") {
    return "allocate it in the owning operator's actor region (broom::ActorRegion with a "
           "ContextScope around " +
           fn(a.user0) +
           "): per-object free stays, and everything left is freed at once with the region when "
           "the operator or the program ends";
  }
  return "leave it on the heap";
}

}  // namespace

int MedianBucket(const uint64_t (&hist)[kBuckets], uint64_t freed) {
  if (freed == 0) return -1;
  uint64_t half = (freed + 1) / 2, seen = 0;
  for (int b = 0; b < kBuckets; ++b) {
    seen += hist[b];
    if (seen >= half) return b;
  }
  return kBuckets - 1;
}

Verdict Classify(const SiteSummary& s) {
  Verdict v = {"unclear", "heap", "", -1, 0.0, 0.0};
  v.heap_ns = static_cast<double>(s.count) * kHeapPairNs +
              static_cast<double>(s.cross_thread) * kRemoteFreeNs;
  const double freed = static_cast<double>(s.freed);
  const uint64_t same = s.freed - s.cross_thread;
  if (s.count - s.internal < 16) {
    v.reason = "too few allocations to judge";
    return v;
  }
  if (2 * (s.at_exit + s.live()) >= s.count - s.internal) {
    v.lifetime = "state";
    v.region = "actor";
    v.reason =
        "lives until exit (still live at exit, or freed by static destructors and atexit "
        "handlers after exit began): state, never a message";
    v.saving_ns = static_cast<double>(s.at_exit) * (kOneByOneNs - kBulkFreeNs);
    return v;
  }
  if (2 * s.long_lived >= s.freed) {
    v.lifetime = "state";
    v.region = "actor";
    v.reason =
        "lives for most of the run (over a quarter of the run so far when freed) and then "
        "dies with its owner, whichever thread frees it: state, not a message";
    v.saving_ns =
        freed * (kOneByOneNs - kBulkFreeNs) + static_cast<double>(s.cross_thread) * kRemoteFreeNs;
    return v;
  }
  if (2 * s.cross_thread >= s.freed) {
    v.lifetime = "transferable";
    v.region = "transferable";
    v.reason =
        "most objects are freed by another thread than the one that allocated them, soon "
        "after: data handed over, like a message";
    v.saving_ns = static_cast<double>(s.cross_thread) * (kHeapPairNs + kRemoteFreeNs - kRegionNs) +
                  static_cast<double>(same) * (kHeapPairNs - kRegionNs);
    return v;
  }
  const int median = MedianBucket(s.lifetime_hist, s.freed);
  if (2 * s.scope_known >= same && s.scope_known > 0) {
    if (2 * s.in_scope0 >= s.scope_known || 2 * s.in_scope1 >= s.scope_known) {
      v.lifetime = "temporary";
      v.region = "temporary";
      v.scope_frame = 2 * s.in_scope0 >= s.scope_known ? 0 : 1;
      v.reason = v.scope_frame == 0
                     ? "freed on the allocating thread before the allocating function returned: "
                       "scratch of one call"
                     : "freed on the allocating thread before the allocating function's caller "
                       "returned: scratch of the caller's call";
      v.saving_ns = static_cast<double>(same) * (kHeapPairNs - kRegionNs);
      return v;
    }
    v.lifetime = "state";
    v.region = "actor";
    v.reason =
        "freed one by one on the allocating thread after the allocating call returned: state "
        "that churns (an actor region keeps per-object free)";
    return v;
  }
  // The stack activations were not tracked: judge by lifetime alone.
  if (median >= 0 && median <= 2) {
    v.lifetime = "temporary";
    v.region = "temporary";
    v.scope_frame = 0;
    v.reason =
        "short-lived (median lifetime under 100 us) and freed on the allocating thread (by "
        "lifetime only: the call's scope was not tracked)";
    v.saving_ns = static_cast<double>(same) * (kHeapPairNs - kRegionNs);
    return v;
  }
  if (median >= 4) {
    v.lifetime = "state";
    v.region = "actor";
    v.reason = "long-lived (median lifetime over 10 ms) and freed one by one on its thread";
    return v;
  }
  v.reason = "no clear lifetime pattern: leave it on the heap";
  return v;
}

bool Report(const Config& config) {
  if (g_state.sites == nullptr) return false;
  char path[600];
  {  // %p -> pid; a forked child writes only if the name has %p (the parent writes its own)
    const char* src = config.profile_path;
    if (std::strstr(src, "%p") == nullptr && getpid() != g_state.owner_pid) return true;
    size_t o = 0;
    for (const char* s = src; *s != '\0' && o + 24 < sizeof(path) - 8; ++s) {
      if (s[0] == '%' && s[1] == 'p') {
        o += static_cast<size_t>(std::snprintf(path + o, sizeof(path) - o, "%d", getpid()));
        ++s;
      } else {
        path[o++] = *s;
      }
    }
    path[o] = '\0';
  }
  // The program's own CPU time: the process's, less the profiler's stack captures and table
  // updates (which slow an allocation-heavy program many times), before the report's work.
  const double run_ns = static_cast<double>(__rdtsc() - g_state.start_tsc) / g_state.ticks_per_ns;
  const double own_ns = static_cast<double>(OwnTicks()) / g_state.ticks_per_ns;
  double cpu_ns = 0;
  if (timespec ts; clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) == 0) {
    cpu_ns = static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
  }
  const double work_ns = std::max(cpu_ns - own_ns, 1.0);

  Symbolizer sym;
  std::unordered_map<uintptr_t, std::vector<Frame>> cache;
  auto frames_of = [&](uintptr_t ra) -> const std::vector<Frame>& {
    auto it = cache.find(ra);
    if (it != cache.end()) return it->second;
    std::vector<Frame> f;
    sym.Resolve(ra, &f);
    return cache.emplace(ra, std::move(f)).first->second;
  };

  std::map<std::string, Agg> sites;
  uint64_t total = 0, total_bytes = 0, raw_stacks = 0, with_lines = 0;
  for (size_t i = 0; i < kMaxSites; ++i) {
    const Site& s = g_state.sites[i];
    if (s.key.load(std::memory_order_relaxed) == 0 || s.count.load(std::memory_order_relaxed) == 0)
      continue;
    SiteCounts c;
    Counts(s, &c);
    ++raw_stacks;
    total += c.count;
    total_bytes += c.bytes;
    std::vector<Frame> frames;
    std::vector<int> phys;  // physical frame index of each source-level frame
    if (i == 0) {
      Frame other;
      other.function = "(other stacks: the site table was full)";
      other.module = "?";
      frames.push_back(other);
      phys.push_back(0);
    } else {
      for (int f = 0; f < s.nframes; ++f) {
        for (const Frame& fr : frames_of(s.frames[f])) {
          frames.push_back(fr);
          phys.push_back(f);
        }
      }
    }
    int u0 = NextUserFrame(frames, 0);
    int u1 = u0 >= 0 ? NextUserFrame(frames, u0 + 1) : -1;
    if (u0 < 0) {  // all library code: show the first frame outside the allocator
      for (int f = 0; f < static_cast<int>(frames.size()) && u0 < 0; ++f) {
        const std::string& m = frames[f].module;
        if (m.rfind("libbroom_preload", 0) != 0 && m.rfind("libjemalloc", 0) != 0) u0 = f;
      }
      if (u0 < 0) u0 = 0;
    }
    std::string key = frames[u0].Describe(false) + " <- " +
                      (u1 >= 0 ? frames[u1].Describe(false) : std::string("-"));
    Agg& a = sites[key];
    SiteSummary& m = a.sum;
    // Same-thread frees whose innermost running frame was frame r or deeper.
    auto upto = [&](int r) -> uint64_t {
      uint64_t n = 0;
      for (int k = 0; k <= r && k < kScopeFrames; ++k) n += c.scope[k];
      return n;
    };
    uint64_t internal = c.replaced + (phys[u0] > 0 ? upto(phys[u0] - 1) : 0);
    m.count += c.count;
    m.bytes += c.bytes;
    m.internal += internal;
    m.freed += c.freed - internal;
    m.at_exit += c.at_exit;
    m.cross_thread += c.cross_thread;
    m.long_lived += c.long_lived;
    for (int b = 0; b < kBuckets; ++b) m.lifetime_hist[b] += c.lifetime_hist[b];
    if (phys[u0] < kScopeFrames) {
      uint64_t tracked = 0;
      for (int r = 0; r <= kScopeFrames; ++r) tracked += c.scope[r];
      uint64_t inside = internal - c.replaced;  // replacements are not in c.scope
      m.scope_known += tracked - inside;
      m.in_scope0 += upto(phys[u0]) - inside;
      m.in_scope1 += upto(phys[u1 >= 0 ? u1 : u0]) - inside;
    }
    a.grouped += c.grouped;
    a.max_size = std::max<uint64_t>(a.max_size, s.max_size.load(std::memory_order_relaxed));
    a.lifetime_ticks += s.lifetime_ticks.load(std::memory_order_relaxed);
    ++a.stacks;
    if (!frames[u0].file.empty()) with_lines += c.count;
    if (c.count > a.best_count) {
      a.best_count = c.count;
      a.shown = frames;
      a.user0 = u0;
      a.user1 = u1;
    }
  }

  std::vector<Agg*> rows;
  double heap_ns = 0, saving_ns = 0;
  for (auto& [key, a] : sites) {
    a.v = Classify(a.sum);
    heap_ns += a.v.heap_ns;
    saving_ns += a.v.saving_ns;
    rows.push_back(&a);
  }
  std::sort(rows.begin(), rows.end(), [](const Agg* x, const Agg* y) {
    if (x->v.saving_ns != y->v.saving_ns) return x->v.saving_ns > y->v.saving_ns;
    return x->sum.count > y->sum.count;
  });

  std::vector<std::string> notes;
  std::string exe = ExeName();
  std::string exe_base = exe.substr(exe.rfind('/') + 1);
  for (const char* interp : {"python", "perl", "ruby", "node", "php", "lua", "bash", "dash"}) {
    if (exe_base.rfind(interp, 0) == 0) {
      notes.push_back(exe_base +
                      " is an interpreter: the sites are its C code (object allocation, frames, "
                      "parsing), not the script's lines, so the classes say how the "
                      "interpreter's objects live; a region helps only inside the interpreter or "
                      "an extension module, not from the script" +
                      std::string(std::strcmp(interp, "python") == 0
                                      ? " (CPython serves objects under 512 bytes from its own "
                                        "pymalloc arenas: those never reach malloc)"
                                      : ""));
      break;
    }
  }
  if (heap_ns < 0.01 * work_ns) {
    char buf[400];
    std::snprintf(buf, sizeof(buf),
                  "the heap costs about %.2f%% of this run's CPU time (%llu allocations in %.0f "
                  "ms of the program's own CPU time): moving sites into regions cannot make it "
                  "noticeably faster; the sites below say where the memory goes (bytes)",
                  100.0 * heap_ns / work_ns, static_cast<unsigned long long>(total), work_ns / 1e6);
    notes.push_back(buf);
  }
  if (total != 0 && 2 * with_lines < total) {
    notes.push_back(std::to_string(static_cast<int>(100.0 * (1.0 - Frac(with_lines, total)))) +
                    "% of the allocations come from code without line information: those sites "
                    "show symbol+offset or module+offset (resolve with `addr2line -f -e MODULE "
                    "OFFSET`); install the program's -dbgsym package or rebuild with -g for "
                    "file:line");
  }
  if (std::strcmp(sym.backend(), "libdw") != 0) {
    notes.push_back(
        "libdw (Debian libdw1) could not be loaded: sites are exported symbols only, with no "
        "file:line and no inlined call sites");
  }
  if (std::strcmp(g_state.unwinder, "libunwind") != 0) {
    notes.push_back(
        "libunwind (Debian libunwind8) could not be loaded: stacks came from libgcc's unwinder, "
        "about 20 times slower");
  }

  // ---- JSON --------------------------------------------------------------------------------
  Out j;
  j.Printf("{\n  \"tool\": \"broom-preload-profile\",\n  \"version\": 2,\n  \"pid\": %d,\n",
           getpid());
  j.Raw("  \"program\": ");
  j.Json(exe);
  j.Printf(",\n  \"unwinder\": \"%s\",\n  \"symbolizer\": \"%s\",\n", g_state.unwinder,
           sym.backend());
  j.Printf("  \"group_window_us\": %u,\n  \"total_allocations\": %llu,\n  \"total_bytes\": %llu,\n",
           config.group_window_us, static_cast<unsigned long long>(total),
           static_cast<unsigned long long>(total_bytes));
  j.Printf(
      "  \"stacks\": %llu,\n  \"run_ns\": %.0f,\n  \"cpu_ns\": %.0f,\n"
      "  \"profiler_ns\": %.0f,\n  \"estimated_heap_ns\": %.0f,\n"
      "  \"estimated_saving_ns\": %.0f,\n",
      static_cast<unsigned long long>(raw_stacks), run_ns, cpu_ns, own_ns, heap_ns, saving_ns);
  j.Raw("  \"notes\": [");
  for (size_t i = 0; i < notes.size(); ++i) {
    if (i) j.Raw(", ");
    j.Json(notes[i]);
  }
  j.Raw("],\n  \"lifetime_buckets\": [");
  for (int b = 0; b < kBuckets; ++b) j.Printf("%s\"%s\"", b ? ", " : "", BucketLabel(b));
  j.Raw("],\n  \"sites\": [\n");
  for (size_t i = 0; i < rows.size(); ++i) {
    const Agg& a = *rows[i];
    const SiteSummary& m = a.sum;
    const Frame* f0 = a.user0 >= 0 ? &a.shown[a.user0] : nullptr;
    j.Printf("    {\"rank\": %zu, \"site\": ", i + 1);
    j.Json(f0 != nullptr ? f0->Describe(false) : "?");
    j.Raw(", \"function\": ");
    j.Json(f0 != nullptr ? f0->function : "");
    j.Raw(", \"file\": ");
    j.Json(f0 != nullptr ? f0->file : "");
    j.Printf(", \"line\": %d, \"caller\": ", f0 != nullptr ? f0->line : 0);
    j.Json(a.user1 >= 0 ? a.shown[a.user1].Describe(false) : "");
    j.Raw(", \"stack\": [");
    for (size_t k = 0; k < a.shown.size(); ++k) {
      if (k) j.Raw(", ");
      j.Json((a.shown[k].library ? "[lib] " : "") + a.shown[k].Describe(false));
    }
    j.Printf("], \"stacks_merged\": %llu,\n     ", static_cast<unsigned long long>(a.stacks));
    j.Printf(
        "\"count\": %llu, \"bytes\": %llu, \"max_size\": %llu, \"freed_internally\": "
        "%llu, \"freed\": %llu, \"freed_at_exit\": %llu, \"live_at_exit\": %llu,",
        static_cast<unsigned long long>(m.count), static_cast<unsigned long long>(m.bytes),
        static_cast<unsigned long long>(a.max_size), static_cast<unsigned long long>(m.internal),
        static_cast<unsigned long long>(m.freed), static_cast<unsigned long long>(m.at_exit),
        static_cast<unsigned long long>(m.live()));
    j.Printf(
        " \"cross_thread_fraction\": %.4f, \"long_lived_fraction\": %.4f,"
        " \"scope_tracked\": %llu, \"in_scope_fraction\": %.4f,"
        " \"in_caller_scope_fraction\": %.4f, \"group_death_fraction\": %.4f,\n     ",
        Frac(m.cross_thread, m.freed), Frac(m.long_lived, m.freed),
        static_cast<unsigned long long>(m.scope_known), Frac(m.in_scope0, m.scope_known),
        Frac(m.in_scope1, m.scope_known), Frac(a.grouped, m.freed));
    int med = MedianBucket(m.lifetime_hist, m.freed);
    j.Printf("\"mean_lifetime_ns\": %.0f, \"median_lifetime\": \"%s\", \"lifetime_hist\": [",
             m.freed ? static_cast<double>(a.lifetime_ticks) / m.freed / g_state.ticks_per_ns : 0,
             med >= 0 ? BucketLabel(med) : "n/a");
    for (int b = 0; b < kBuckets; ++b) {
      j.Printf("%s%llu", b ? ", " : "", static_cast<unsigned long long>(m.lifetime_hist[b]));
    }
    j.Printf(
        "],\n     \"lifetime_class\": \"%s\", \"region\": \"%s\", \"suggestion\": \"%s\", "
        "\"scope_frame\": %d, \"estimated_saving_ns\": %.0f, \"estimated_heap_ns\": %.0f, "
        "\"reason\": ",
        a.v.lifetime, a.v.region, a.v.region, a.v.scope_frame, a.v.saving_ns, a.v.heap_ns);
    j.Json(a.v.reason);
    j.Raw(", \"action\": ");
    j.Json(Action(a));
    j.Printf("}%s\n", i + 1 < rows.size() ? "," : "");
  }
  j.Raw("  ]\n}\n");

  // ---- text --------------------------------------------------------------------------------
  Out t;
  t.Printf("Broom allocation-lifetime profile of %s (pid %d)\n", exe.c_str(), getpid());
  t.Printf(
      "%llu heap allocations, %.1f MiB, from %zu sites (%llu distinct stacks; stacks: %s, "
      "symbols: %s)\n",
      static_cast<unsigned long long>(total), static_cast<double>(total_bytes) / 1048576.0,
      rows.size(), static_cast<unsigned long long>(raw_stacks), g_state.unwinder, sym.backend());
  t.Printf(
      "Run %.1f ms, CPU %.1f ms (in the profiler about %.1f ms); estimated allocator "
      "time on the heap %.2f ms; moving every site below to its region would save about "
      "%.2f ms (cost model: docs/preload.md)\n",
      run_ns / 1e6, cpu_ns / 1e6, own_ns / 1e6, heap_ns / 1e6, saving_ns / 1e6);
  for (const std::string& n : notes) t.Printf("note: %s\n", n.c_str());
  t.Printf("\n%-4s %-12s %-12s %10s %12s %6s %6s %6s %8s %10s  %s\n", "rank", "lifetime", "region",
           "calls", "bytes", "xthr%", "scope%", "exit%", "median", "saving_us", "site <- caller");
  size_t top = std::min<size_t>(rows.size(), config.profile_top);
  for (size_t i = 0; i < top; ++i) {
    const Agg& a = *rows[i];
    const SiteSummary& m = a.sum;
    int med = MedianBucket(m.lifetime_hist, m.freed);
    t.Printf("%-4zu %-12s %-12s %10llu %12llu %5.1f%% %5.1f%% %5.1f%% %8s %10.1f  %s <- %s\n",
             i + 1, a.v.lifetime, a.v.region, static_cast<unsigned long long>(m.count),
             static_cast<unsigned long long>(m.bytes), 100 * Frac(m.cross_thread, m.freed),
             100 * Frac(m.in_scope0, m.scope_known), 100 * Frac(m.at_exit + m.live(), m.count),
             med >= 0 ? BucketLabel(med) : "n/a", a.v.saving_ns / 1e3, Where(a, a.user0).c_str(),
             Where(a, a.user1).c_str());
  }
  t.Printf(
      "\nxthr%% = freed by another thread; scope%% = freed before the allocating function "
      "returned; exit%% = live at exit or freed after exit began\n");
  t.Printf("\nWhat to do (top sites):\n");
  for (size_t i = 0; i < top; ++i) {
    const Agg& a = *rows[i];
    if (std::strcmp(a.v.region, "heap") == 0) continue;
    t.Printf("#%zu %s: %s\n    why: %s\n    do:  %s\n    stack:", i + 1, a.v.lifetime,
             Where(a, a.user0).c_str(), a.v.reason, Action(a).c_str());
    for (size_t k = 0; k < a.shown.size() && k < 8; ++k) {
      Frame f = a.shown[k];
      f.function = ShortFunction(f.function);
      t.Printf("\n      %s%s", f.library ? "[lib] " : "", f.Describe(true).c_str());
    }
    t.Printf("\n");
  }

  bool ok = j.WriteTo(path);
  std::strcat(path, ".txt");
  ok = t.WriteTo(path) && ok;
  if (!ok) {
    char msg[700];
    int len =
        std::snprintf(msg, sizeof(msg), "broom: profile: cannot write %s\n", config.profile_path);
    ssize_t ignored = write(STDERR_FILENO, msg, static_cast<size_t>(len));
    (void)ignored;
  }
  return ok;
}

}  // namespace broom::preload::profiler
