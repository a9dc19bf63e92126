// Copyright Broom authors.
//
// The OS refusing memory. Each case runs tests/reliability/oom_child.cc in a fresh process (fork +
// exec), so that the limit is in place BEFORE Broom reserves its space:
//   * RLIMIT_AS lowered to 1.5 GiB above the child's footprint: the 64 GiB reservation is halved
//     until the kernel accepts it, then exhausting it fails with kOutOfMemory, cleanly;
//   * RLIMIT_AS too small for even 256 MiB: Broom stops with "broom: fatal: cannot reserve
//     address space", not a bare crash;
//   * BROOM_RESERVE_GB=1: the space is 1 GiB, and exhausting it fails with kOutOfMemory.
// Rows of docs/reliability.md.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>

namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define BROOM_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define BROOM_TEST_SANITIZED 1
#endif
#endif

struct ChildResult {
  int status = -1;     // as from waitpid
  std::string output;  // stdout and stderr together
};

// Runs oom_child with `arg`; `env` ("NAME=value" or empty) is added to its environment.
ChildResult RunChild(const char* arg, const char* env) {
  ChildResult result;
  int fds[2];
  if (pipe(fds) != 0) return result;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    dup2(fds[1], STDERR_FILENO);
    close(fds[0]);
    close(fds[1]);
    if (env[0] != '\0') putenv(const_cast<char*>(env));
    execl(BROOM_OOM_CHILD, BROOM_OOM_CHILD, arg, static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0) result.output.append(buf, static_cast<size_t>(n));
  }
  close(fds[0]);
  waitpid(pid, &result.status, 0);
  return result;
}

size_t ReservedFrom(const std::string& out) {
  size_t at = out.find("reserved=");
  return at == std::string::npos ? 0 : std::strtoull(out.c_str() + at + 9, nullptr, 10);
}

TEST(OsRefusalTest, AddressSpaceLimitShrinksTheReservationAndExhaustionFailsCleanly) {
#ifdef BROOM_TEST_SANITIZED
  GTEST_SKIP() << "sanitizer runtimes map terabytes of shadow; RLIMIT_AS cannot be used";
#endif
  ChildResult r = RunChild("1536", "");
  ASSERT_TRUE(WIFEXITED(r.status)) << r.output;
  EXPECT_EQ(WEXITSTATUS(r.status), 0) << r.output;
  size_t reserved = ReservedFrom(r.output);
  EXPECT_GE(reserved, size_t{256} << 20) << r.output;
  EXPECT_LT(reserved, size_t{2} << 30) << "the reservation did not shrink: " << r.output;
  EXPECT_NE(r.output.find("error=out of memory"), std::string::npos) << r.output;
}

TEST(OsRefusalTest, AddressSpaceTooSmallForAnyReservationIsAFatalMessage) {
#ifdef BROOM_TEST_SANITIZED
  GTEST_SKIP() << "sanitizer runtimes map terabytes of shadow; RLIMIT_AS cannot be used";
#endif
  ChildResult r = RunChild("64", "");
  ASSERT_TRUE(WIFSIGNALED(r.status)) << "exit status " << r.status << ": " << r.output;
  EXPECT_EQ(WTERMSIG(r.status), SIGABRT) << r.output;
  EXPECT_NE(r.output.find("broom: fatal: cannot reserve address space"), std::string::npos)
      << r.output;
}

TEST(OsRefusalTest, TinyReservationIsExhaustedCleanly) {
  ChildResult r = RunChild("0", "BROOM_RESERVE_GB=1");
  ASSERT_TRUE(WIFEXITED(r.status)) << r.output;
  EXPECT_EQ(WEXITSTATUS(r.status), 0) << r.output;
  EXPECT_EQ(ReservedFrom(r.output), size_t{1} << 30) << r.output;
  EXPECT_NE(r.output.find("error=out of memory"), std::string::npos) << r.output;
}

}  // namespace
