// Copyright Broom authors.
//
// wire.h: a minimal engine for the shipping tests: frames on a connected socket that carry a
// shipped region (broom/ship.h) or loan notes, as an engine's connection would.
//
//   frame     1 byte tag, then by tag:
//     'S','F' a region: u64 manifest bytes, u64 payload bytes, the manifest, the payload ranges
//             (the tag is the test's instruction to the peer: echo it back grown, or free it)
//     'N'     loan notes: u32 count, count LoanNotes
//     'Q'     quit
//   SendRegion / ReceiveRegion   ship a Message<T> and receive one (straight into its blocks;
//             in shared mode only the manifest travels)
//   SendNotes / ReceiveNotes     carry the notes queued here for a lender, and apply received ones
//   PlanEnv   the environment that starts a process of the job at its slice
//
// Sockets get 10 s send/receive timeouts (Connect/Accept), so a dead peer fails a test, never
// hangs it. Thread-safety: one thread per socket.
#ifndef BROOM_TESTS_SHIP_WIRE_H_
#define BROOM_TESTS_SHIP_WIRE_H_

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "broom/message.h"
#include "broom/ship.h"

namespace broom::testing {

// The environment that puts a process of the job at slice `index` of `plan` (as an engine
// starts its workers).
// `shared`: its slice backed by shared memory (ShipMode::kShared).
inline std::vector<std::string> PlanEnv(const AddressPlan& plan, uint32_t index,
                                        bool shared = false) {
  return {"BROOM_PLAN_BASE_GB=" + std::to_string(plan.base >> 30),
          "BROOM_RESERVE_GB=" + std::to_string(plan.slice_bytes >> 30),
          "BROOM_PLAN_PROCESSES=" + std::to_string(plan.processes),
          "BROOM_PLAN_INDEX=" + std::to_string(index),
          std::string("BROOM_PLAN_SHARED=") + (shared ? "1" : "0")};
}

inline void SetTimeouts(int fd) {
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

// A listening socket on 127.0.0.1 at a port the OS chooses; -1 on failure.
inline int Listen(uint16_t* port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || listen(fd, 4) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    if (fd >= 0) close(fd);
    return -1;
  }
  *port = ntohs(a.sin_port);
  return fd;
}

// The next connection on `listener`, waiting at most `ms`; -1 on timeout.
inline int Accept(int listener, int ms = 10000) {
  pollfd p{listener, POLLIN, 0};
  if (poll(&p, 1, ms) != 1) return -1;
  int fd = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  if (fd >= 0) SetTimeouts(fd);
  return fd;
}

inline int Connect(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    if (fd >= 0) close(fd);
    return -1;
  }
  SetTimeouts(fd);
  return fd;
}

inline bool WriteAll(int fd, const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

inline bool ReadAll(int fd, void* data, size_t n) {
  char* p = static_cast<char*>(data);
  while (n > 0) {
    ssize_t r = recv(fd, p, n, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

// Moves past `n` transferred bytes of v[*i...] (and empty entries).
inline void Advance(std::vector<iovec>& v, size_t* i, size_t n) {
  while (*i < v.size() && (n > 0 || v[*i].iov_len == 0)) {
    const size_t step = std::min(n, v[*i].iov_len);
    v[*i].iov_base = static_cast<char*>(v[*i].iov_base) + step;
    v[*i].iov_len -= step;
    n -= step;
    if (v[*i].iov_len == 0) ++*i;
  }
}

// Moves exactly the iovecs' bytes with as few sendmsg (write) or recvmsg calls as the kernel
// allows: payload ranges go straight from and into the blocks.
inline bool TransferV(int fd, std::vector<iovec> v, bool write) {
  size_t i = 0;
  Advance(v, &i, 0);
  while (i < v.size()) {
    msghdr m{};
    m.msg_iov = v.data() + i;
    m.msg_iovlen = std::min<size_t>(v.size() - i, IOV_MAX);
    const ssize_t n = write ? sendmsg(fd, &m, MSG_NOSIGNAL) : recvmsg(fd, &m, MSG_WAITALL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    Advance(v, &i, static_cast<size_t>(n));
  }
  return true;
}
inline bool WriteV(int fd, std::vector<iovec> v) { return TransferV(fd, std::move(v), true); }
inline bool ReadV(int fd, std::vector<iovec> v) { return TransferV(fd, std::move(v), false); }

// The next frame's tag, or 0 if the connection ended or timed out.
inline char ReadTag(int fd) {
  char tag = 0;
  return ReadAll(fd, &tag, 1) ? tag : 0;
}

// Ships `m` to process `to` under `tag`, in `mode`. False with *error if Ship refused it (m is
// then as it was) or the connection failed (the shipment is then cancelled: its blocks come
// back). In shared mode the frame's payload is empty.
template <class T>
bool SendRegion(int fd, char tag, Message<T>& m, uint32_t to, std::string* error,
                ShipMode mode = ShipMode::kCopy) {
  std::optional<Shipment> s = ShipMessage(m, to, mode, error);
  if (!s) return false;
  uint64_t sizes[2] = {s->manifest().size(), s->payload_bytes()};
  std::vector<iovec> v = {{&tag, 1},
                          {sizes, sizeof(sizes)},
                          {const_cast<char*>(s->manifest().data()), s->manifest().size()}};
  for (const Shipment::Range& r : s->payload()) v.push_back({const_cast<void*>(r.data), r.size});
  if (!WriteV(fd, std::move(v))) {
    *error = "connection failed while sending: " + std::string(std::strerror(errno));
    return false;
  }
  s->Sent();
  return true;
}

// Receives a region frame's body (its tag read already) from process `from`. On a refused
// manifest the payload is skipped, so the connection stays usable.
template <class T>
std::optional<Message<T>> ReceiveRegion(int fd, uint32_t from, std::string* error) {
  uint64_t sizes[2];
  if (!ReadAll(fd, sizes, sizeof(sizes)) || sizes[0] > (64u << 20)) {
    *error = "connection failed or bad frame";
    return std::nullopt;
  }
  std::string manifest(sizes[0], '\0');
  if (!ReadAll(fd, manifest.data(), manifest.size())) {
    *error = "connection failed in the manifest";
    return std::nullopt;
  }
  std::optional<Receipt> receipt = Receipt::Open(manifest, from, error);
  if (!receipt) {
    std::vector<char> skip(64 << 10);
    for (uint64_t left = sizes[1]; left > 0;) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(left, skip.size()));
      if (!ReadAll(fd, skip.data(), n)) break;
      left -= n;
    }
    return std::nullopt;
  }
  if (receipt->payload_bytes() != sizes[1]) {
    *error = "payload size differs from the manifest's";
    return std::nullopt;
  }
  std::vector<iovec> v;
  for (const Receipt::Range& r : receipt->payload()) v.push_back({r.data, r.size});
  if (!ReadV(fd, std::move(v))) {
    *error = "connection failed in the payload";
    return std::nullopt;  // ~Receipt uninstalls the blocks
  }
  std::optional<TransferableRegion> region = receipt->Finish(error);
  if (!region) return std::nullopt;
  return ReceiveMessage<T>(std::move(*region), receipt->root());
}

// Sends every note queued here for `lender` as one 'N' frame (possibly empty).
inline bool SendNotes(int fd, uint32_t lender) {
  std::vector<LoanNote> notes;
  LoanNote buf[256];
  while (size_t n = TakeLoanNotes(lender, buf, 256)) notes.insert(notes.end(), buf, buf + n);
  char tag = 'N';
  uint32_t count = static_cast<uint32_t>(notes.size());
  return WriteV(fd, {{&tag, 1}, {&count, sizeof(count)}, {notes.data(), count * sizeof(LoanNote)}});
}

// Receives an 'N' frame's body and applies it; the notes' count, or -1 on a failed connection.
inline long ReceiveNotes(int fd) {
  uint32_t count = 0;
  if (!ReadAll(fd, &count, sizeof(count)) || count > (1u << 24)) return -1;
  std::vector<LoanNote> notes(count);
  if (!ReadAll(fd, notes.data(), count * sizeof(LoanNote))) return -1;
  AcceptLoanNotes(notes.data(), notes.size());
  return count;
}

}  // namespace broom::testing

#endif  // BROOM_TESTS_SHIP_WIRE_H_
