// Copyright Broom authors.
//
// ship_loopback: batches of records with pmr strings (examples::Document) sent from process 0 to
// process 1 of a job over 127.0.0.1, three ways, side by side:
//   encode   the serializing path: encode each record into flat bytes, send, decode into a
//            fresh region on the receiver (what the CAF shim did for every batch of records
//            with strings before they travelled by address, and still does for a CodedRecord;
//            Document's codec, which examples::Document no longer carries, is kept below);
//   ship     by address (broom/ship.h, copy mode): send the batch's region as its blocks, which
//            the receiver installs at the same addresses (no per-record code at all);
//   shared   by address in shared mode: both slices are shared memory (BROOM_PLAN_SHARED=1),
//            only the manifest travels and the receiver maps the sender's pages.
// Batches are built before timing; a round times sending `batches` batches until the receiver
// has acknowledged the last (the receiver frees each batch; for `ship` and `shared` its
// acknowledgement carries the loan notes that return the blocks). The receiver reads whatever
// has arrived with one recv and acknowledges every batch that arrived together at once (up to
// 64), the same for every path. Each round runs the three
// paths in a rotated order. Prints each round and the medians, as MB/s of record data (8+8+4+4
// bytes plus the title per record, the same count for every path) and records/s, the ratios
// against encode, and the payload bytes shipping copied on each side (the receiver's counts
// come back in its last acknowledgement).
//
//   ship_loopback [--batches N] [--records R] [--rounds K] [--tags T] [--flat 1] [--coalesce F]
//                 [--touch 0|1] [--only ship|encode|shared]
//     defaults 400, 256, 9, 0, 16. --coalesce F: the sender writes F frames (or 256 KiB) per
//     sendmsg, every path alike (1: a write per batch). --touch 0: the receiver does not read
//     the records (decoding still does, for encode): what shipping itself costs. --tags T > 0:
//     records carry T short pmr strings in a pmr vector besides their title (Tagged), so decoding
//     allocates T + 2 objects per record; --flat 1: trivially copyable 48-byte records (Flat),
//     whose encode path is the CAF shim's raw one (the batch's records as one byte range, read
//     into a fresh batch with one copy); --only runs one path, for profiling. BROOM_PLAN_SHARED=0
//     in the environment leaves the slices unshared (the shared path then fails with Ship's
//     message).
//   ship_loopback --peer PORT TAGS TOUCH   the receiver, started by the above
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "broom/message.h"
#include "broom/ship.h"
#include "broom/transferable_region.h"
#include "runtime_shims/examples/records.h"
#include "tests/ship/wire.h"  // the loopback framing shared with tests/ship

namespace {

using broom::examples::Document;
namespace wire = broom::testing;

// A document with `tags` short pmr strings in a pmr vector (--tags N): a record whose decoding
// allocates one object per tag.
struct Tagged {
  using allocator_type = std::pmr::polymorphic_allocator<std::byte>;
  explicit Tagged(const allocator_type& a) : title(a), tags(a) {}
  Tagged(const Tagged& o, const allocator_type& a) : id(o.id), title(o.title, a), tags(o.tags, a) {}
  Tagged(Tagged&& o, const allocator_type& a)
      : id(o.id), title(std::move(o.title), a), tags(std::move(o.tags), a) {}
  uint64_t id = 0;
  std::pmr::string title;
  std::pmr::vector<std::pmr::string> tags;

  void BroomEncode(broom::lifecycle::ByteWriter& w) const {
    w.Put(id);
    w.PutString(title);
    w.Put<uint32_t>(static_cast<uint32_t>(tags.size()));
    for (const auto& t : tags) w.PutString(t);
  }
  static Tagged BroomDecode(broom::lifecycle::ByteReader& r, std::pmr::memory_resource* m) {
    Tagged d{allocator_type(m)};
    d.id = r.Get<uint64_t>();
    d.title.assign(r.GetString());
    const uint32_t n = r.Get<uint32_t>();
    d.tags.reserve(n);
    for (uint32_t i = 0; i < n; ++i) d.tags.emplace_back(r.GetString());
    return d;
  }
};

// A trivially copyable record (--flat 1), like the example jobs' Author.
struct Flat {
  uint64_t id;
  uint64_t author;
  uint32_t length;
  uint32_t epoch;
  char title[24];
};

// The encode path's codec: Tagged's own, and for Document the one it carried when the CAF
// shim serialized its batches.
void Encode(broom::lifecycle::ByteWriter& w, const Tagged& d) { d.BroomEncode(w); }
void Encode(broom::lifecycle::ByteWriter& w, const Document& d) {
  w.Put(d.id);
  w.Put(d.author);
  w.Put(d.length);
  w.Put(d.epoch);
  w.PutString(d.title);
}
template <class Rec>
Rec Decode(broom::lifecycle::ByteReader& r, std::pmr::memory_resource* m) {
  if constexpr (std::is_same_v<Rec, Tagged>) {
    return Tagged::BroomDecode(r, m);
  } else {
    const uint64_t id = r.Get<uint64_t>();
    const uint64_t author = r.Get<uint64_t>();
    const uint32_t length = r.Get<uint32_t>();
    const uint32_t epoch = r.Get<uint32_t>();
    Document d(id, author, length, epoch, Document::allocator_type(m));
    d.title.assign(r.GetString());
    return d;
  }
}

// Fills record `id` of a batch; returns its data bytes (fields and characters).
size_t Fill(std::pmr::vector<Document>& docs, uint64_t id, size_t) {
  broom::examples::DataSpec spec;
  Document& d = docs.emplace_back(broom::examples::MakeDocument(spec, 0, id));
  d.title.assign(broom::examples::TitleOf(spec, d.id));
  return 24 + d.title.size();
}
size_t Fill(std::pmr::vector<Flat>& docs, uint64_t id, size_t) {
  Flat& d = docs.emplace_back();
  d.id = id;
  d.author = id % 977;
  d.length = static_cast<uint32_t>(id % 2000);
  d.epoch = 0;
  std::snprintf(d.title, sizeof(d.title), "flat-%llu", static_cast<unsigned long long>(id));
  return sizeof(Flat);
}
size_t Fill(std::pmr::vector<Tagged>& docs, uint64_t id, size_t tags) {
  broom::examples::DataSpec spec;
  Tagged& d = docs.emplace_back();
  d.id = id;
  d.title.assign(broom::examples::TitleOf(spec, id));
  size_t bytes = 8 + d.title.size();
  d.tags.reserve(tags);
  for (size_t t = 0; t < tags; ++t) {
    d.tags.emplace_back(broom::examples::TitleOf(spec, id * 31 + t).substr(0, 16 + (id + t) % 17));
    bytes += d.tags.back().size();
  }
  return bytes;
}

uint64_t TouchOne(const Document& d) { return d.id + d.title.size(); }
uint64_t TouchOne(const Flat& d) { return d.id + d.length; }
uint64_t TouchOne(const Tagged& d) {
  uint64_t sum = d.id + d.title.size();
  for (const auto& t : d.tags) sum += t.size() + static_cast<uint8_t>(t[0]);
  return sum;
}

template <class Rec>
struct Batch {
  using allocator_type = std::pmr::polymorphic_allocator<std::byte>;
  explicit Batch(const allocator_type& a) : docs(a) {}
  std::pmr::vector<Rec> docs;
};

template <class Rec>
uint64_t Touch(const Batch<Rec>& b) {
  uint64_t sum = 0;
  for (const Rec& d : b.docs) sum += TouchOne(d) + static_cast<uint8_t>(d.title[0]);
  return sum;
}

// This thread's CPU time, seconds.
double CpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// The receiver's side of the connection: one recv takes whatever has arrived (several small
// frames at once), and the bytes a frame wants placed elsewhere (an encoded batch, a copy-mode
// payload) come from what was buffered and then straight from the socket.
class FrameReader {
 public:
  explicit FrameReader(int fd) : fd_(fd), buf_(256 << 10) {}
  // Copies the next n bytes to dst; false if the connection ended.
  bool Read(void* dst, size_t n) {
    char* out = static_cast<char*>(dst);
    const size_t have = std::min(n, end_ - begin_);
    std::memcpy(out, buf_.data() + begin_, have);
    begin_ += have;
    n -= have;
    if (n == 0) return true;
    if (n >= buf_.size() / 2) return wire::ReadAll(fd_, out + have, n);  // large: straight in
    while (end_ - begin_ < n) {
      if (begin_ == end_) begin_ = end_ = 0;
      const ssize_t got = recv(fd_, buf_.data() + end_, buf_.size() - end_, 0);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) return false;
      end_ += static_cast<size_t>(got);
    }
    std::memcpy(out + have, buf_.data() + begin_, n);
    begin_ += n;
    return true;
  }
  char Tag() {
    char t = 0;
    return Read(&t, 1) ? t : 0;
  }
  // Nothing buffered and nothing readable on the socket now.
  bool Idle() const {
    pollfd p{fd_, POLLIN, 0};
    return begin_ == end_ && poll(&p, 1, 0) == 0;
  }

 private:
  int fd_;
  std::vector<char> buf_;
  size_t begin_ = 0, end_ = 0;
};

// A region frame's body (see wire.h's ReceiveRegion), read through `in`.
template <class T>
std::optional<broom::Message<T>> ReceiveRegion(FrameReader& in, std::string* error) {
  uint64_t sizes[2];
  if (!in.Read(sizes, sizeof(sizes))) return std::nullopt;
  std::string manifest(sizes[0], '\0');
  if (!in.Read(manifest.data(), manifest.size())) return std::nullopt;
  std::optional<broom::Receipt> receipt = broom::Receipt::Open(manifest, 0, error);
  if (!receipt || receipt->payload_bytes() != sizes[1]) return std::nullopt;
  for (const broom::Receipt::Range& r : receipt->payload()) {
    if (!in.Read(r.data, r.size)) return std::nullopt;
  }
  std::optional<broom::TransferableRegion> region = receipt->Finish(error);
  if (!region) return std::nullopt;
  return broom::ReceiveMessage<T>(std::move(*region), receipt->root());
}

// The acknowledgement of `batches` batches: 'A', u32 batches, then the notes for process 0.
bool Acknowledge(int fd, uint32_t batches) {
  const char t = 'A';
  return wire::WriteV(fd, {{const_cast<char*>(&t), 1}, {&batches, sizeof(batches)}}) &&
         wire::SendNotes(fd, 0);
}

template <class Rec>
int Peer(uint16_t port, bool touch) {
  int fd = wire::Connect(port);
  if (fd < 0) return 1;
  FrameReader in(fd);
  std::string error;
  std::vector<char> bytes;
  uint64_t sink = 0;
  // By path (encode, copy, shared): payload bytes shipping copied in, and CPU seconds spent
  // from a frame's first byte to its acknowledgement (waiting for bytes is not CPU time); then
  // the bytes copied into resident and into fresh pages (ShipStats::installed_*_bytes).
  double counts[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  uint64_t received = 0;
  char last = 0;
  uint32_t unacknowledged = 0;
  for (;;) {
    const char tag = in.Tag();
    const double cpu = CpuSeconds();
    const int path = tag == 'E' ? 0 : tag == 'S' ? 1 : 2;
    if (tag == 'E') {
      uint64_t n = 0;
      if (!in.Read(&n, sizeof(n))) return 1;
      bytes.resize(n);
      if (!in.Read(bytes.data(), n)) return 1;
      auto m = broom::Message<Batch<Rec>>::Create();
      {
        auto open = m.Open();
        broom::lifecycle::ByteReader r(bytes.data(), bytes.size());
        const uint32_t count = r.Get<uint32_t>();
        if constexpr (std::is_trivially_copyable_v<Rec>) {
          m->docs.resize(count);
          r.Read(m->docs.data(), count * sizeof(Rec));
        } else {
          m->docs.reserve(count);
          for (uint32_t i = 0; i < count; ++i) {
            m->docs.push_back(Decode<Rec>(r, m.region().region().resource()));
          }
        }
      }
      sink += Touch(*m);
    } else if (tag == 'S' || tag == 'M') {
      if (tag != last) {  // ShipStats is read when the path changes, not per frame
        const uint64_t now = broom::GetShipStats().payload_bytes_received;
        if (last == 'S' || last == 'M') counts[last == 'S' ? 1 : 2] += now - received;
        received = now;
        last = tag;
      }
      auto m = ReceiveRegion<Batch<Rec>>(in, &error);
      if (!m) {
        std::fprintf(stderr, "ship_loopback peer: %s\n", error.c_str());
        return 1;
      }
      if (touch) sink += Touch(**m);
    } else if (tag == 'C') {  // the counts so far, after the tag
      if (last == 'S' || last == 'M') {
        const uint64_t now = broom::GetShipStats().payload_bytes_received;
        counts[last == 'S' ? 1 : 2] += now - received;
        received = now;
      }
      const broom::ShipStats st = broom::GetShipStats();
      counts[6] = static_cast<double>(st.installed_warm_bytes);
      counts[7] = static_cast<double>(st.installed_cold_bytes);
      const char t = 'C';
      if (!wire::WriteV(fd, {{const_cast<char*>(&t), 1}, {counts, sizeof(counts)}})) return 1;
      continue;
    } else {
      std::fprintf(stderr, "ship_loopback peer: sink %llu\n",
                   static_cast<unsigned long long>(sink));  // keeps Touch alive
      return tag == 'Q' ? 0 : 1;
    }
    // Acknowledged (with the notes that return the blocks) once the sender is not ahead: one
    // acknowledgement for every batch that arrived together.
    if (++unacknowledged >= 64 || in.Idle()) {
      if (!Acknowledge(fd, unacknowledged)) return 1;
      unacknowledged = 0;
    }
    counts[3 + path] += CpuSeconds() - cpu;
  }
}

template <class Rec>
std::vector<broom::Message<Batch<Rec>>> Build(size_t batches, size_t records, size_t tags,
                                              uint64_t* data_bytes) {
  std::vector<broom::Message<Batch<Rec>>> out;
  *data_bytes = 0;
  for (size_t b = 0; b < batches; ++b) {
    auto m = broom::Message<Batch<Rec>>::Create();
    {
      auto open = m.Open();
      m->docs.reserve(records);
      for (size_t j = 0; j < records; ++j) *data_bytes += Fill(m->docs, b * records + j, tags);
    }
    out.push_back(std::move(m));
  }
  return out;
}

// The sender's side of the connection: frames wait here until `coalesce` of them (or 256 KiB)
// are pending, then go out in one sendmsg, straight from the encoded buffers and the blocks
// (as an engine's buffered connection writes what accumulated).
class FrameWriter {
 public:
  FrameWriter(int fd, size_t coalesce) : fd_(fd), coalesce_(std::max<size_t>(coalesce, 1)) {
    heads_.resize(coalesce_);
    encoded_.resize(coalesce_);
  }
  // An encoding buffer for the next frame.
  std::vector<char>& NextEncoded() {
    encoded_[count_].clear();
    return encoded_[count_];
  }
  void AddEncoded() {
    Head& h = heads_[count_];
    h.tag = 'E';
    h.sizes[0] = encoded_[count_].size();
    v_.push_back({&h.tag, 1});
    v_.push_back({h.sizes, sizeof(uint64_t)});
    v_.push_back({encoded_[count_].data(), encoded_[count_].size()});
    Added(encoded_[count_].size());
  }
  void AddShipment(char tag, broom::Shipment s) {
    Head& h = heads_[count_];
    h.tag = tag;
    h.sizes[0] = s.manifest().size();
    h.sizes[1] = s.payload_bytes();
    v_.push_back({&h.tag, 1});
    v_.push_back({h.sizes, sizeof(h.sizes)});
    v_.push_back({const_cast<char*>(s.manifest().data()), s.manifest().size()});
    size_t bytes = s.manifest().size();
    for (const broom::Shipment::Range& r : s.payload()) {
      v_.push_back({const_cast<void*>(r.data), r.size});
      bytes += r.size;
    }
    shipments_.push_back(std::move(s));
    Added(bytes);
  }
  // Writes what is pending; false if the connection failed.
  bool Flush() {
    if (count_ == 0) return true;
    if (!wire::WriteV(fd_, std::move(v_))) return false;
    for (broom::Shipment& s : shipments_) s.Sent();
    shipments_.clear();
    v_.clear();
    count_ = 0;
    bytes_ = 0;
    return true;
  }
  bool flushed() const { return count_ == 0; }

 private:
  struct Head {
    char tag;
    uint64_t sizes[2];
  };
  void Added(size_t bytes) {
    bytes_ += bytes;
    if (++count_ == coalesce_ || bytes_ >= (256u << 10)) {
      if (!Flush()) std::exit(1);
    }
  }
  int fd_;
  size_t coalesce_;
  std::vector<Head> heads_;
  std::vector<std::vector<char>> encoded_;
  std::vector<broom::Shipment> shipments_;
  std::vector<iovec> v_;
  size_t count_ = 0, bytes_ = 0;
};

// Sends every batch (tag 'E', 'S' copy mode or 'M' shared mode), `coalesce` frames per write,
// and waits for the last acknowledgement; seconds taken.
template <class Rec>
double Round(int fd, char tag, std::vector<broom::Message<Batch<Rec>>>& batches, size_t coalesce) {
  std::string error;
  FrameWriter out(fd, coalesce);
  size_t acked = 0;
  auto drain = [&](bool wait) {
    while (acked < batches.size()) {
      pollfd p{fd, POLLIN, 0};
      if (!wait && poll(&p, 1, 0) != 1) return;
      uint32_t count = 0;
      if (wire::ReadTag(fd) != 'A' || !wire::ReadAll(fd, &count, sizeof(count)) ||
          wire::ReadTag(fd) != 'N' || wire::ReceiveNotes(fd) < 0) {
        std::exit(1);
      }
      acked += count;
    }
  };
  const auto start = std::chrono::steady_clock::now();
  for (broom::Message<Batch<Rec>>& m : batches) {
    if (tag == 'E') {
      broom::lifecycle::ByteWriter w(out.NextEncoded());
      w.Put<uint32_t>(static_cast<uint32_t>(m->docs.size()));
      if constexpr (std::is_trivially_copyable_v<Rec>) {
        w.Write(m->docs.data(), m->docs.size() * sizeof(Rec));
      } else {
        for (const Rec& d : m->docs) Encode(w, d);
      }
      out.AddEncoded();
    } else {
      std::optional<broom::Shipment> s = broom::ShipMessage(
          m, 1, tag == 'M' ? broom::ShipMode::kShared : broom::ShipMode::kCopy, &error);
      if (!s) {
        std::fprintf(stderr, "ship_loopback: %s\n", error.c_str());
        std::exit(1);
      }
      out.AddShipment(tag, std::move(*s));
    }
    if (out.flushed()) drain(false);
  }
  if (!out.Flush()) std::exit(1);
  drain(true);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Params {
  size_t batches = 400, records = 256, rounds = 9, tags = 0, coalesce = 16, touch = 1;
  std::string only;   // --only ship|encode|shared: one path (for profiling)
  bool flat = false;  // --flat 1: Flat records
};

constexpr const char* kPathNames[3] = {"encode", "ship", "shared"};
constexpr char kPathTags[3] = {'E', 'S', 'M'};

// The receiver's counts so far (see Peer): payload bytes copied and CPU seconds, by path; bytes
// copied into resident and into fresh pages.
void ReceiverCounts(int fd, double out[8]) {
  const char t = 'C';
  if (!wire::WriteAll(fd, &t, 1) || wire::ReadTag(fd) != 'C' ||
      !wire::ReadAll(fd, out, 8 * sizeof(double))) {
    std::exit(1);
  }
}

template <class Rec>
int Drive(int fd, const Params& p) {
  std::vector<double> times[3];
  double sender_cpu[3] = {0, 0, 0};
  uint64_t sent_bytes[3] = {0, 0, 0};  // payload bytes the sender handed the socket, by path
  uint64_t data_bytes = 0;
  for (size_t r = 0; r < p.rounds; ++r) {
    for (size_t k = 0; k < 3; ++k) {
      const size_t path = (k + r) % 3;
      if (!p.only.empty() && p.only != kPathNames[path]) continue;
      auto set = Build<Rec>(p.batches, p.records, p.tags, &data_bytes);
      const uint64_t sent = broom::GetShipStats().payload_bytes_sent;
      const double cpu = CpuSeconds();
      const double s = Round<Rec>(fd, kPathTags[path], set, p.coalesce);
      sender_cpu[path] += CpuSeconds() - cpu;
      times[path].push_back(s);
      const uint64_t copied = broom::GetShipStats().payload_bytes_sent - sent;
      sent_bytes[path] += copied;
      std::printf("round %zu %-6s %8.1f MB/s %11.0f records/s", r, kPathNames[path],
                  data_bytes / s / 1e6, p.batches * p.records / s);
      if (path != 0) std::printf(" (%.1f MB of blocks copied)", copied / 1e6);
      std::printf("\n");
    }
  }
  double receiver[8];
  ReceiverCounts(fd, receiver);
  const uint64_t received[2] = {static_cast<uint64_t>(receiver[1]),
                                static_cast<uint64_t>(receiver[2])};
  double median[3];
  for (size_t i = 0; i < 3; ++i) median[i] = times[i].empty() ? 0 : Median(times[i]);
  const double n = static_cast<double>(p.batches * p.records);
  std::printf("median");
  for (size_t i = 0; i < 3; ++i) {
    std::printf(" | %s %.1f MB/s %.0f records/s", kPathNames[i],
                median[i] > 0 ? data_bytes / median[i] / 1e6 : 0.0,
                median[i] > 0 ? n / median[i] : 0.0);
  }
  std::printf("\n");
  if (median[0] > 0) {
    std::printf("ratios to encode: ship %.2fx, shared %.2fx\n",
                median[1] > 0 ? median[0] / median[1] : 0.0,
                median[2] > 0 ? median[0] / median[2] : 0.0);
  }
  std::printf(
      "payload bytes copied, all rounds: ship sent %llu received %llu | shared sent %llu "
      "received %llu\n",
      static_cast<unsigned long long>(sent_bytes[1]), static_cast<unsigned long long>(received[0]),
      static_cast<unsigned long long>(sent_bytes[2]), static_cast<unsigned long long>(received[1]));
  std::printf("receiver, bytes copied in: into resident pages %.1f MB, into fresh pages %.1f MB\n",
              receiver[6] / 1e6, receiver[7] / 1e6);
  std::printf("CPU per batch, sender | receiver:");
  for (size_t i = 0; i < 3; ++i) {
    const double batches = static_cast<double>(times[i].size() * p.batches);
    if (batches > 0) {
      std::printf(" %s %.2f | %.2f us", kPathNames[i], sender_cpu[i] / batches * 1e6,
                  receiver[3 + i] / batches * 1e6);
    }
  }
  std::printf("\n");
  std::printf(
      "(%zu batches of %zu records, %zu tags%s, %.1f MB, %zu rounds, %zu frames per write, "
      "receiver %s the records)\n",
      p.batches, p.records, p.tags, p.flat ? " (flat records)" : "", data_bytes / 1e6, p.rounds,
      p.coalesce, p.touch ? "reads" : "does not read");
  return sent_bytes[2] == 0 && received[1] == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 3 && std::strcmp(argv[1], "--peer") == 0) {
    const bool touch = argc <= 4 || std::atoi(argv[4]) != 0;
    if (std::strcmp(argv[3], "flat") == 0) return Peer<Flat>(std::atoi(argv[2]), touch);
    return std::atoi(argv[3]) > 0 ? Peer<Tagged>(std::atoi(argv[2]), touch)
                                  : Peer<Document>(std::atoi(argv[2]), touch);
  }
  Params p;
  for (int i = 1; i + 1 < argc; i += 2) {
    const size_t v = std::strtoull(argv[i + 1], nullptr, 10);
    if (std::strcmp(argv[i], "--batches") == 0) p.batches = v;
    if (std::strcmp(argv[i], "--records") == 0) p.records = v;
    if (std::strcmp(argv[i], "--rounds") == 0) p.rounds = v;
    if (std::strcmp(argv[i], "--tags") == 0) p.tags = v;
    if (std::strcmp(argv[i], "--flat") == 0) p.flat = v != 0;
    if (std::strcmp(argv[i], "--coalesce") == 0) p.coalesce = v;
    if (std::strcmp(argv[i], "--touch") == 0) p.touch = v;
    if (std::strcmp(argv[i], "--only") == 0) p.only = argv[i + 1];
  }
  setenv("BROOM_PLAN_SHARED", "1", /*overwrite=*/0);  // before the first region; the peer too
  broom::AddressPlan plan;
  std::string error;
  if (!broom::GetAddressPlan(&plan, &error)) {
    std::fprintf(stderr, "ship_loopback: %s\n", error.c_str());
    return 1;
  }
  uint16_t port = 0;
  const int listener = wire::Listen(&port);
  const pid_t pid = fork();
  if (pid == 0) {
    setenv("BROOM_PLAN_INDEX", "1", 1);
    setenv("BROOM_PLAN_BASE_GB", std::to_string(plan.base >> 30).c_str(), 1);
    setenv("BROOM_RESERVE_GB", std::to_string(plan.slice_bytes >> 30).c_str(), 1);
    setenv("BROOM_PLAN_PROCESSES", std::to_string(plan.processes).c_str(), 1);
    execl("/proc/self/exe", argv[0], "--peer", std::to_string(port).c_str(),
          p.flat ? "flat" : std::to_string(p.tags).c_str(), std::to_string(p.touch).c_str(),
          nullptr);
    _exit(127);
  }
  const int fd = wire::Accept(listener);
  if (fd < 0) return 1;
  const int status = p.flat       ? Drive<Flat>(fd, p)
                     : p.tags > 0 ? Drive<Tagged>(fd, p)
                                  : Drive<Document>(fd, p);
  const char quit = 'Q';
  wire::WriteAll(fd, &quit, 1);
  waitpid(pid, nullptr, 0);
  const broom::ShipStats st = broom::GetShipStats();
  std::printf("loaned bytes at the end: %zu (0: every shipped block came back)\n", st.loaned_bytes);
  return st.loaned_bytes == 0 && status == 0 ? 0 : 1;
}
