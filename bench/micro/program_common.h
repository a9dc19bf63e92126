// Copyright Broom authors.
//
// program_common.h: what the whole-program benchmarks (lists_of_lists.cc, churn.cc) share.
// They are plain programs, not Google Benchmark, so that bench/tools/sidebyside.py can run each
// one as a child process (under LD_PRELOAD for the malloc rivals) and read its peak RSS.
//
//   Flags            --key=value command-line flags with defaults
//   MonotonicSeconds steady-clock time in seconds
//   ProcessCpuSeconds CPU time of the process, all threads
//   CurrentRssKiB    resident set size now (/proc/self/statm)
//   PeakRssKiB       peak resident set size (getrusage RUSAGE_SELF, ru_maxrss)
//   Result           prints one `RESULT key=value ...` line, which sidebyside.py parses
//
// Each program is built once per memory policy, selected by BROOM_BENCH_POLICY:
//   kPolicyBroom (1)   Broom regions (links libbroom, hence jemalloc as the general heap)
//   kPolicyMalloc (2)  plain new/delete/malloc/free; links no allocator, so the malloc is glibc's
//                      or whatever LD_PRELOAD supplies (named by malloc_identity.h)
//   kPolicyGc (3)      Boehm GC (GC_MALLOC; collection on, never disabled)
#ifndef BROOM_BENCH_MICRO_PROGRAM_COMMON_H_
#define BROOM_BENCH_MICRO_PROGRAM_COMMON_H_

#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

#define BROOM_BENCH_POLICY_BROOM 1
#define BROOM_BENCH_POLICY_MALLOC 2
#define BROOM_BENCH_POLICY_GC 3

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
  long Int(const char* key, long default_value) {
    used_[key] = true;
    auto it = values_.find(key);
    return it == values_.end() ? default_value : std::strtol(it->second.c_str(), nullptr, 10);
  }
  // Exits with a message if a flag was given that no Int() call asked for.
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
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
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

#endif  // BROOM_BENCH_MICRO_PROGRAM_COMMON_H_
