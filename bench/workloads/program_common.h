// Copyright Broom authors.
//
// program_common.h: what the whole-program benchmarks (lists_of_lists.cc, churn.cc, reap_*.cc)
// share. They are plain programs, not Google Benchmark, so that bench/tools/sidebyside.py can
// run each one as a child process (under LD_PRELOAD for the malloc rivals) and read its peak RSS.
//
//   Flags            --key=value command-line flags with defaults (Int, Str); a malformed,
//                    non-numeric or unknown flag exits 2 with a message
//   MonotonicSeconds steady-clock time in seconds
//   ProcessCpuSeconds CPU time of the process, all threads
//   CurrentRssKiB    resident set size now (/proc/self/statm)
//   PeakRssKiB       peak resident set size (getrusage RUSAGE_SELF, ru_maxrss)
//   Result           prints one `RESULT key=value ...` line, which sidebyside.py parses
//   Rng              a fast fixed-seed generator (the same sequence for every contender)
//   SizeMix          object sizes by name (--sizes=16-256, 64, mixed)
//
// Each program is built once per memory policy, selected by BROOM_BENCH_POLICY:
//   kPolicyBroom (1)   Broom regions (links libbroom, hence jemalloc as the general heap)
//   kPolicyMalloc (2)  plain new/delete/malloc/free; links no allocator, so the malloc is glibc's
//                      or whatever LD_PRELOAD supplies (named by malloc_identity.h)
//   kPolicyGc (3)      Boehm GC (GC_MALLOC; collection on, never disabled)
//   kPolicyPmrPool (4) std::pmr::unsynchronized_pool_resource over new_delete_resource (links no
//                      allocator: glibc's malloc upstream); the reap programs only (heaps.h)
//   kPolicyMimallocHeap (5)  a mimalloc heap, mi_heap_new / mi_heap_malloc / mi_free (links
//                      libmimalloc, which is then the process's malloc too); heaps.h
#ifndef BROOM_BENCH_WORKLOADS_PROGRAM_COMMON_H_
#define BROOM_BENCH_WORKLOADS_PROGRAM_COMMON_H_

#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#define BROOM_BENCH_POLICY_BROOM 1
#define BROOM_BENCH_POLICY_MALLOC 2
#define BROOM_BENCH_POLICY_GC 3
#define BROOM_BENCH_POLICY_PMR_POOL 4
#define BROOM_BENCH_POLICY_MIMALLOC_HEAP 5

#if defined(BROOM_BENCH_POLICY) && BROOM_BENCH_POLICY == BROOM_BENCH_POLICY_GC
#include <gc/gc.h>
#endif

namespace broom::bench {

class Flags {
 public:
  Flags(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
      const char* a = argv[i];
      if (std::strncmp(a, "--", 2) != 0 || std::strchr(a, '=') == nullptr) {
        std::fprintf(stderr, "usage: %s --key=value ...\n", argv[0]);
        std::exit(2);
      }
      const char* eq = std::strchr(a, '=');
      values_[std::string(a + 2, eq)] = eq + 1;
    }
  }
  // The integer value of --key, or default_value; exits 2 if it is not an integer or is below
  // min_value.
  long Int(const char* key, long default_value, long min_value = LONG_MIN) {
    used_[key] = true;
    auto it = values_.find(key);
    if (it == values_.end()) return default_value;
    char* end = nullptr;
    const long value = std::strtol(it->second.c_str(), &end, 10);
    if (end == it->second.c_str() || *end != '\0' || value < min_value) {
      if (min_value == LONG_MIN) {
        std::fprintf(stderr, "--%s=%s: expected an integer\n", key, it->second.c_str());
      } else {
        std::fprintf(stderr, "--%s=%s: expected an integer >= %ld\n", key, it->second.c_str(),
                     min_value);
      }
      std::exit(2);
    }
    return value;
  }
  std::string Str(const char* key, const char* default_value) {
    used_[key] = true;
    auto it = values_.find(key);
    return it == values_.end() ? default_value : it->second;
  }
  // Exits with a message if a flag was given that no Int() or Str() call asked for.
  void CheckAllUsed() const {
    for (const auto& [key, value] : values_) {
      if (used_.count(key) == 0) {
        std::fprintf(stderr, "unknown flag --%s\n", key.c_str());
        std::exit(2);
      }
    }
  }

 private:
  std::map<std::string, std::string> values_;
  std::map<std::string, bool> used_;
};

inline double MonotonicSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// CPU time of the whole process (all threads: Boehm GC's parallel markers count) in seconds.
// On the shared, loaded VM it is far steadier than wall-clock time.
inline double ProcessCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

inline long CurrentRssKiB() {
  long pages_total = 0, pages_resident = 0;
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return -1;
  if (std::fscanf(f, "%ld %ld", &pages_total, &pages_resident) != 2) pages_resident = -1;
  std::fclose(f);
  return pages_resident < 0 ? -1 : pages_resident * (sysconf(_SC_PAGESIZE) / 1024);
}

inline long PeakRssKiB() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

// Accumulates key=value pairs and prints them as one line: `RESULT k1=v1 k2=v2 ...`.
class Result {
 public:
  Result& Add(const char* key, double value) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.6g", value);
    line_ += std::string(" ") + key + "=" + buf;
    return *this;
  }
  Result& Add(const char* key, const std::string& value) {
    line_ += std::string(" ") + key + "=" + value;
    return *this;
  }
  void Print() const {
    std::printf("RESULT%s\n", line_.c_str());
    std::fflush(stdout);
  }

 private:
  std::string line_;
};

// xorshift64* (Vigna): fast, fixed seed, so every contender sees the same sequence.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed * 0x9e3779b97f4a7c15ull + 1) {}
  uint64_t Next() {
    s_ ^= s_ >> 12;
    s_ ^= s_ << 25;
    s_ ^= s_ >> 27;
    return s_ * 0x2545f4914f6cdd1dull;
  }
  // Uniform in [0, n), n >= 1 (multiply-high: no division).
  uint64_t Below(uint64_t n) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(Next()) * n) >> 64);
  }

 private:
  uint64_t s_;
};

// Object sizes by name, as --sizes takes them:
//   "A-B"    uniform in [A, B] bytes
//   "N"      always N bytes
//   "mixed"  an operator's state: 60% 16-64 B (nodes, short strings), 30% 65-256 B, 8%
//            257-1024 B, 2% 1025-4096 B (buffers); mean about 170 B
// Sizes must lie in [1, 8192]. Parse exits 2 with a message on anything else.
class SizeMix {
 public:
  static SizeMix Parse(const std::string& text) {
    SizeMix mix;
    if (text == "mixed") {
      mix.bands_ = {{60, 16, 64}, {90, 65, 256}, {98, 257, 1024}, {100, 1025, 4096}};
      return mix;
    }
    const char* t = text.c_str();
    long lo = 0, hi = 0;
    int used = 0;
    const bool range = std::sscanf(t, "%ld-%ld%n", &lo, &hi, &used) == 2 && t[used] == '\0';
    const bool fixed =
        !range && std::sscanf(t, "%ld%n", &lo, &used) == 1 && t[used] == '\0' && (hi = lo, true);
    if (!(range || fixed) || lo < 1 || hi < lo || hi > 8192) {
      std::fprintf(stderr, "--sizes=%s: expected A-B, N or mixed, sizes in [1, 8192]\n", t);
      std::exit(2);
    }
    mix.bands_ = {{100, static_cast<uint32_t>(lo), static_cast<uint32_t>(hi)}};
    return mix;
  }

  size_t Next(Rng& rng) const {
    const Band* band = &bands_[0];
    if (bands_.size() > 1) {
      const uint64_t pick = rng.Below(100);
      while (pick >= band->percent_below) ++band;
    }
    return band->lo + static_cast<size_t>(rng.Below(band->hi - band->lo + 1));
  }

  size_t min() const { return bands_.front().lo; }

  // `n` sizes drawn with a generator seeded by `seed`.
  std::vector<uint32_t> Draw(size_t n, uint64_t seed) const {
    Rng rng(seed);
    std::vector<uint32_t> sizes(n);
    for (uint32_t& s : sizes) s = static_cast<uint32_t>(Next(rng));
    return sizes;
  }

 private:
  struct Band {
    uint32_t percent_below;  // cumulative: this band takes picks below it
    uint32_t lo, hi;
  };
  std::vector<Band> bands_;
};

// Keeps the compiler from eliding an allocation or the write into it.
inline void Escape(void* p) { asm volatile("" : : "r"(p) : "memory"); }

// The common end of every program's main: the policy adds its keys, the RESULT line is printed,
// and under the GC policy a run in which Boehm GC never collected fails (the comparison would be
// void). Returns main's exit code.
template <class Policy>
int FinishRun(const char* program, Policy& policy, Result& result) {
  policy.Report(result);
  result.Print();
#if defined(BROOM_BENCH_POLICY) && BROOM_BENCH_POLICY == BROOM_BENCH_POLICY_GC
  if (GC_get_gc_no() == 0) {
    std::fprintf(stderr, "%s: Boehm GC never collected; the comparison is void\n", program);
    return 1;
  }
#else
  (void)program;
#endif
  return 0;
}

}  // namespace broom::bench

#endif  // BROOM_BENCH_WORKLOADS_PROGRAM_COMMON_H_
