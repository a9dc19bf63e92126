// Copyright Broom authors.
//
// Start-up cost of a preload: runs one short program many times under each configuration,
// interleaved round-robin (one run of every configuration per round, in a rotating order), and
// prints per configuration the median wall time of a run (posix_spawn to exit) and CPU time of
// the child (user + system, from wait4; less disturbed by other load on a shared machine), each
// with the median and quartiles of the per-round difference to the first configuration.
//
//   startup_bench [--runs N] [--config NAME=LIB[@CONF]]... -- PROGRAM [ARGS...]
//
// NAME=none runs without LD_PRELOAD. CONF, if given, becomes BROOM_CONF. The program's output
// goes to /dev/null; a run that fails stops the benchmark with its exit status.
#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

extern char** environ;

namespace {

struct Config {
  std::string name;
  std::vector<std::string> env;  // the whole environment of the run
  std::vector<double> us;        // per-run wall time, in round order
  std::vector<double> cpu_us;    // per-run CPU time of the child (user + system)
};

double NowUs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
}

std::vector<std::string> BaseEnvironment() {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "LD_PRELOAD=", 11) != 0 && std::strncmp(*e, "BROOM_CONF=", 11) != 0) {
      env.emplace_back(*e);
    }
  }
  return env;
}

Config ParseConfig(const std::string& spec) {
  Config c;
  size_t eq = spec.find('=');
  if (eq == std::string::npos) {
    std::fprintf(stderr, "startup_bench: --config wants NAME=LIB[@CONF] or NAME=none: %s\n",
                 spec.c_str());
    std::exit(2);
  }
  c.name = spec.substr(0, eq);
  std::string lib = spec.substr(eq + 1);
  c.env = BaseEnvironment();
  if (lib != "none") {
    size_t at = lib.find('@');
    if (at != std::string::npos) {
      c.env.push_back("BROOM_CONF=" + lib.substr(at + 1));
      lib.resize(at);
    }
    if (access(lib.c_str(), R_OK) != 0) {
      std::fprintf(stderr, "startup_bench: cannot read %s\n", lib.c_str());
      std::exit(2);
    }
    c.env.push_back("LD_PRELOAD=" + lib);
  }
  return c;
}

void RunOnce(Config& c, char** argv, const posix_spawn_file_actions_t* fa) {
  std::vector<char*> envp;
  for (const std::string& e : c.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  double t0 = NowUs();
  pid_t pid;
  if (posix_spawn(&pid, argv[0], fa, nullptr, argv, envp.data()) != 0) {
    std::perror("startup_bench: posix_spawn");
    std::exit(2);
  }
  int status = 0;
  rusage ru = {};
  wait4(pid, &status, 0, &ru);
  double t = NowUs() - t0;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "startup_bench: %s failed under %s (status %d)\n", argv[0], c.name.c_str(),
                 status);
    std::exit(1);
  }
  auto us = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) * 1e6 + static_cast<double>(tv.tv_usec);
  };
  c.us.push_back(t);
  c.cpu_us.push_back(us(ru.ru_utime) + us(ru.ru_stime));
}

double Quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  double pos = q * static_cast<double>(v.size() - 1);
  size_t i = static_cast<size_t>(pos);
  if (i + 1 >= v.size()) return v.back();
  return v[i] + (pos - static_cast<double>(i)) * (v[i + 1] - v[i]);
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 300;
  std::vector<Config> configs;
  int i = 1;
  for (; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--") {
      ++i;
      break;
    }
    if (a == "--runs" && i + 1 < argc) {
      runs = std::atoi(argv[++i]);
    } else if (a == "--config" && i + 1 < argc) {
      configs.push_back(ParseConfig(argv[++i]));
    } else {
      std::fprintf(stderr,
                   "usage: startup_bench [--runs N] [--config NAME=LIB[@CONF]]... -- "
                   "PROGRAM [ARGS...]\n");
      return 2;
    }
  }
  if (i >= argc || configs.empty() || runs < 1) {
    std::fprintf(stderr, "startup_bench: need a program after --, a --config and --runs >= 1\n");
    return 2;
  }
  char** program = argv + i;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  const size_t n = configs.size();
  for (Config& c : configs) RunOnce(c, program, &fa);  // warm the page cache
  for (Config& c : configs) c.us.clear(), c.cpu_us.clear();
  for (int r = 0; r < runs; ++r) {
    for (size_t k = 0; k < n; ++k) {
      RunOnce(configs[(k + static_cast<size_t>(r)) % n], program, &fa);  // rotate who goes first
    }
  }
  posix_spawn_file_actions_destroy(&fa);
  std::printf("%d interleaved runs of %s, microseconds per run\n", runs, program[0]);
  std::printf(
      "| config | wall median | wall vs %s: median of per-round differences [25%%, 75%%] "
      "| CPU median | CPU vs %s [25%%, 75%%] |\n",
      configs[0].name.c_str(), configs[0].name.c_str());
  std::printf("|---|---|---|---|---|\n");
  for (const Config& c : configs) {
    std::vector<double> d, dc;
    for (int r = 0; r < runs; ++r) {
      d.push_back(c.us[r] - configs[0].us[r]);
      dc.push_back(c.cpu_us[r] - configs[0].cpu_us[r]);
    }
    std::printf("| %s | %.1f | %+.1f [%+.1f, %+.1f] | %.1f | %+.1f [%+.1f, %+.1f] |\n",
                c.name.c_str(), Quantile(c.us, 0.5), Quantile(d, 0.5), Quantile(d, 0.25),
                Quantile(d, 0.75), Quantile(c.cpu_us, 0.5), Quantile(dc, 0.5), Quantile(dc, 0.25),
                Quantile(dc, 0.75));
  }
  return 0;
}
