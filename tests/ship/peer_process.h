// Copyright Broom authors.
//
// peer_process.h: runs tests/ship/ship_peer.cc as another process of a job, for the shipping
// tests: fork + exec with the job's address plan in its environment (as an engine starts its
// workers), its stdin and stdout as pipes, a deadline on every read, SIGKILL on destruction.
//
// Thread-safety: thread-compatible; one test thread drives a peer.
#ifndef BROOM_TESTS_SHIP_PEER_PROCESS_H_
#define BROOM_TESTS_SHIP_PEER_PROCESS_H_

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

extern char** environ;

namespace broom::testing {

class PeerProcess {
 public:
  // Starts `exe args...` with `env` ("NAME=value") added to this process's environment (each
  // replacing the variable of that name, if set here).
  // `extra_fds` are passed on, at their numbers (not close-on-exec in the child).
  PeerProcess(const std::string& exe, const std::vector<std::string>& args,
              const std::vector<std::string>& env, const std::vector<int>& extra_fds = {}) {
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) return;
    std::vector<std::string> env_strings;
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string_view entry(*e);
      const bool overridden = std::any_of(env.begin(), env.end(), [&](const std::string& v) {
        const size_t eq = v.find('=');
        return entry.substr(0, eq + 1) == std::string_view(v).substr(0, eq + 1);
      });
      if (!overridden) env_strings.emplace_back(entry);
    }
    for (const std::string& e : env) env_strings.push_back(e);
    std::vector<char*> envp;
    for (std::string& e : env_strings) envp.push_back(e.data());
    envp.push_back(nullptr);
    std::vector<std::string> arg_strings = {exe};
    arg_strings.insert(arg_strings.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& a : arg_strings) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = fork();
    if (pid_ == 0) {
      dup2(in[0], 0);
      dup2(out[1], 1);
      for (int fd : extra_fds) fcntl(fd, F_SETFD, 0);
      execve(exe.c_str(), argv.data(), envp.data());
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    to_ = in[1];
    from_ = out[0];
  }
  ~PeerProcess() {
    if (to_ >= 0) close(to_);
    if (from_ >= 0) close(from_);
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  PeerProcess(const PeerProcess&) = delete;
  PeerProcess& operator=(const PeerProcess&) = delete;

  pid_t pid() const { return pid_; }
  int to_fd() const { return to_; }      // the peer's stdin
  int from_fd() const { return from_; }  // the peer's stdout

  // The next line the peer prints (without '\n'), or "" with *timed_out/EOF after `seconds`.
  std::string ReadLine(double seconds = 10) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    std::string line;
    for (;;) {
      size_t nl = buffer_.find('\n');
      if (nl != std::string::npos) {
        line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return line;
      }
      int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                      deadline - std::chrono::steady_clock::now())
                                      .count());
      pollfd pfd{from_, POLLIN, 0};
      if (left <= 0 || poll(&pfd, 1, left) <= 0) return "";
      char buf[4096];
      ssize_t n = read(from_, buf, sizeof(buf));
      if (n <= 0) return "";
      buffer_.append(buf, static_cast<size_t>(n));
    }
  }
  void WriteLine(const std::string& line) {
    std::string s = line + "\n";
    ssize_t ignored = write(to_, s.data(), s.size());
    (void)ignored;
  }
  // Closes the peer's stdin and waits (up to `seconds`) for it to exit; its status, or -1.
  int Wait(double seconds = 10) {
    if (to_ >= 0) close(to_);
    to_ = -1;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return status;
      }
      usleep(5000);
    }
    return -1;
  }

 private:
  pid_t pid_ = -1;
  int to_ = -1;
  int from_ = -1;
  std::string buffer_;
};

}  // namespace broom::testing

#endif  // BROOM_TESTS_SHIP_PEER_PROCESS_H_
