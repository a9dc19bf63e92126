// Copyright Broom authors.
//
// The driver's worker processes: launch, identity check, stop. See worker_process.h.
#include "runtime_shims/caf/worker_process.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>

extern char** environ;

namespace broom::caf_shim {

// The environment of worker `index`: this process's, with the job's address plan and the
// worker's slice in place of any BROOM_PLAN_* / BROOM_RESERVE_GB of our own. A driver whose
// slice is shared memory gives its workers shared slices too, so that batches go both ways
// without copies (ShipMode::kShared).
std::vector<std::string> WorkerEnvironment(const AddressPlan& plan, uint32_t index) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "BROOM_PLAN_", 11) == 0 ||
        std::strncmp(*e, "BROOM_RESERVE_GB=", 17) == 0) {
      continue;
    }
    env.emplace_back(*e);
  }
  env.push_back("BROOM_PLAN_BASE_GB=" + std::to_string(plan.base >> 30));
  env.push_back("BROOM_RESERVE_GB=" + std::to_string(plan.slice_bytes >> 30));
  env.push_back("BROOM_PLAN_PROCESSES=" + std::to_string(plan.processes));
  env.push_back("BROOM_PLAN_INDEX=" + std::to_string(index));
  if (plan.shared_memory) env.push_back("BROOM_PLAN_SHARED=1");
  return env;
}

namespace {

// Appends ` '<word>'` to *out: `word` in single quotes for sh (a quote inside as '\'').
void AppendQuoted(const std::string& word, std::string* out) {
  out->append(" '");
  for (char c : word) {
    if (c == '\'') {
      out->append("'\\''");
    } else {
      out->push_back(c);
    }
  }
  out->push_back('\'');
}

// This executable's path, for a host that cannot resolve /proc/self/exe to it.
std::string OwnExecutable() {
  char buf[4096];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string("/proc/self/exe");
}

}  // namespace

std::string RemoteWorkerCommand(const std::string& exe, int threads, const AddressPlan& plan,
                                uint32_t index) {
  AddressPlan own = plan;
  own.shared_memory = false;  // another machine: its slice is its own memory
  std::string cmd = "exec env -u BROOM_PLAN_SHARED";  // not from the launcher's environment
  for (const std::string& e : WorkerEnvironment(own, index)) {
    if (e.rfind("BROOM_", 0) == 0) AppendQuoted(e, &cmd);
  }
  AppendQuoted(exe == "/proc/self/exe" ? OwnExecutable() : exe, &cmd);
  cmd.append(" --broom-worker --threads=");
  cmd.append(std::to_string(threads));
  cmd.append(" --broom-listen=0.0.0.0");
  return cmd;
}

// What the worker's first line must say besides its port: the driver's build id and the plan
// with the worker's slice.
std::string WorkerIdentity(const AddressPlan& plan) {
  char buf[160];
  std::snprintf(buf, sizeof(buf), "%#" PRIxPTR " %zu %u %u", plan.base, plan.slice_bytes,
                plan.processes, plan.index);
  return ExecutableBuildId() + " " + buf;
}

// Starts `exe --broom-worker` as slice `index` of `plan` and reads the port it prints; empty
// error on success. The worker must run this binary and sit at the plan.
std::string LaunchWorker(const std::string& exe, int threads, const AddressPlan& plan,
                         uint32_t index, const WorkerPlace& place, Worker& w) {
  const bool remote = !place.host.empty();
  if (remote && place.launcher.empty()) {
    return "cannot start worker " + std::to_string(index) + " on host " + place.host +
           ": JobOptions::worker_launcher is empty (it names the command that runs a worker "
           "there, such as ssh)";
  }
  if (!remote && (exe.empty() || access(exe.c_str(), X_OK) != 0)) {
    return "cannot start a worker process: JobOptions::worker_exe '" + exe + "' is " +
           (exe.empty() ? std::string("empty")
                        : "not an executable (" + std::string(strerror(errno)) + ")") +
           "; it must name a binary whose main calls broom::caf_shim::WorkerMain on "
           "--broom-worker (the default is the running executable)";
  }
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) return "pipe failed";
  std::string threads_flag = "--threads=" + std::to_string(threads);
  // Built before fork: the child only calls async-signal-safe functions until it execs (and
  // execvpe's search of PATH for a launcher).
  std::vector<std::string> env = WorkerEnvironment(plan, index);
  std::vector<char*> envp;
  for (std::string& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> words = {exe, "--broom-worker", threads_flag};
  if (remote) {  // the launcher, with this process's environment (ssh needs HOME and its agent)
    words = place.launcher;
    words.push_back(place.host);
    words.push_back(RemoteWorkerCommand(exe, threads, plan, index));
    envp.clear();
    for (char** e = environ; *e != nullptr; ++e) envp.push_back(*e);
    envp.push_back(nullptr);
  }
  std::vector<char*> argv;
  for (std::string& word : words) argv.push_back(word.data());
  argv.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) return "fork failed";
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    if (remote) {
      execvpe(argv[0], argv.data(), envp.data());
    } else {
      execve(argv[0], argv.data(), envp.data());
    }
    std::fprintf(stderr, "broom worker: exec %s failed: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  w.pid = pid;
  w.stdin_fd = in[1];
  const std::string who =
      remote
          ? "worker " + std::to_string(index) + " on host " + place.host + " (started by " +
                place.launcher[0] + ", pid " + std::to_string(pid) + ")"
          : "worker " + std::to_string(index) + " (" + exe + ", pid " + std::to_string(pid) + ")";
  std::string line;
  char c;
  pollfd pfd{out[0], POLLIN, 0};
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (line.find('\n') == std::string::npos) {
    int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                    deadline - std::chrono::steady_clock::now())
                                    .count());
    if (left <= 0 || poll(&pfd, 1, left) <= 0 || read(out[0], &c, 1) != 1) break;
    line.push_back(c);
  }
  close(out[0]);
  if (!line.empty() && line.back() == '\n') line.pop_back();
  unsigned port = 0;
  int identity_at = 0;
  if (line.rfind("BROOM_WORKER_ERROR ", 0) == 0) {
    return who + " cannot take part in the job: " + line.substr(19);
  }
  if (std::sscanf(line.c_str(), "BROOM_WORKER_PORT %u %n", &port, &identity_at) != 1 || port == 0) {
    int status = 0;
    std::string why = "did not report a port within 10 s";
    bool exited = false;  // after EOF on its stdout the worker is exiting: give it a second
    for (int i = 0; i < 100 && !exited; ++i) {
      exited = waitpid(pid, &status, WNOHANG) == pid;
      if (!exited) usleep(10000);
    }
    if (exited) {
      w.pid = -1;
      why = WIFEXITED(status) ? "exited with status " + std::to_string(WEXITSTATUS(status))
                              : "died of signal " + std::to_string(WTERMSIG(status));
      why +=
          " before reporting a port (is its main calling broom::caf_shim::WorkerMain on "
          "--broom-worker?)";
    }
    return who + " " + why + "; it printed '" + line + "'";
  }
  w.port = static_cast<uint16_t>(port);
  AddressPlan expected = plan;
  expected.index = index;
  const std::string want = WorkerIdentity(expected);
  const std::string got = line.substr(static_cast<size_t>(identity_at));
  if (got != want) {
    const std::string id = ExecutableBuildId();
    if (got.compare(0, id.size() + 1, id + " ") != 0) {
      return "worker " + std::to_string(index) + " (" + exe + ", pid " + std::to_string(pid) +
             ") runs another binary (build id '" + got.substr(0, got.find(' ')) +
             "', this process '" + id +
             "'): every process of a job must run the same executable, since batches travel "
             "with the layout of their records (set JobOptions::worker_exe to this program)";
    }
    return "worker " + std::to_string(index) + " (pid " + std::to_string(pid) +
           ") is at another address plan than the driver (it reports '" + got + "', expected '" +
           want + "')";
  }
  return {};
}

void StopWorkers(std::vector<Worker>& workers) {
  for (Worker& w : workers) {
    if (w.stdin_fd >= 0) close(w.stdin_fd);  // EOF: the worker exits
    w.stdin_fd = -1;
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  for (Worker& w : workers) {
    if (w.pid <= 0) continue;
    while (waitpid(w.pid, nullptr, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        kill(w.pid, SIGKILL);
        waitpid(w.pid, nullptr, 0);
        break;
      }
      usleep(10000);
    }
    w.pid = -1;
  }
}

}  // namespace broom::caf_shim
