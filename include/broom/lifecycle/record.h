// Copyright Broom authors.
//
// record.h: what a record type must provide to cross a process boundary. A batch of records
// travels one of three ways (BatchOps in envelope.h says which):
//
//   by address                any other record that is not polymorphic: allocator-aware records
//                             with pmr strings, vectors, maps, nested. The batch's region travels
//                             as its blocks and the receiver installs them at the same addresses
//                             (broom/ship.h), so the record needs no code at all. Needs the
//                             "regions" policy and self-contained records (every pointer inside
//                             the batch's region; checked mode verifies it before shipping).
//   RawRecord<R>              trivially copyable records: a batch travels as its raw bytes and
//                             is rebuilt with one memcpy into the receiver's fresh region, or
//                             by address where that is cheaper (the CAF shim: when both
//                             processes' slices are shared memory).
//   CodedRecord<R>            the explicit fallback, for a record that cannot be self-contained
//                             or a policy other than "regions": the record provides, as members,
//                               void BroomEncode(ByteWriter& w) const;
//                               static R BroomDecode(ByteReader& r,
//                                                    std::pmr::memory_resource* target);
//                             BroomDecode builds the record with every allocation in `target`
//                             (the receiver's fresh message arena), e.g. pmr strings
//                             constructed with `target`. A decode that runs out of bytes must
//                             leave `r.ok()` false; the batch is then rejected.
//   WireRecord<R>             either of the last two: a Batch<R> that travels as bytes.
//
// Thread-safety: ByteWriter/ByteReader are thread-compatible values.
#ifndef BROOM_LIFECYCLE_RECORD_H_
#define BROOM_LIFECYCLE_RECORD_H_

#include <concepts>
#include <cstdint>
#include <cstring>
#include <memory_resource>
#include <string_view>
#include <type_traits>
#include <vector>

namespace broom::lifecycle {

class ByteWriter {
 public:
  explicit ByteWriter(std::vector<char>& out) : out_(out) {}
  void Write(const void* p, size_t n) {
    const char* c = static_cast<const char*>(p);
    out_.insert(out_.end(), c, c + n);
  }
  template <class T>
  requires std::is_trivially_copyable_v<T>
  void Put(const T& v) { Write(&v, sizeof(T)); }
  void PutString(std::string_view s) {
    Put<uint32_t>(static_cast<uint32_t>(s.size()));
    Write(s.data(), s.size());
  }

 private:
  std::vector<char>& out_;
};

class ByteReader {
 public:
  ByteReader(const char* p, size_t n) : p_(p), end_(p + n) {}
  bool ok() const { return ok_; }
  size_t remaining() const { return static_cast<size_t>(end_ - p_); }
  // Copies n bytes out; on underflow sets !ok() and zero-fills.
  void Read(void* dst, size_t n) {
    if (!ok_ || remaining() < n) {
      ok_ = false;
      std::memset(dst, 0, n);
      return;
    }
    std::memcpy(dst, p_, n);
    p_ += n;
  }
  template <class T>
  requires std::is_trivially_copyable_v<T> T Get() {
    T v;
    Read(&v, sizeof(T));
    return v;
  }
  // A view into the buffer (valid while the buffer is); empty on underflow.
  std::string_view GetString() {
    uint32_t n = Get<uint32_t>();
    if (!ok_ || remaining() < n) {
      ok_ = false;
      return {};
    }
    std::string_view s(p_, n);
    p_ += n;
    return s;
  }

 private:
  const char* p_;
  const char* end_;
  bool ok_ = true;
};

template <class R>
concept RawRecord = std::is_trivially_copyable_v<R>;

template <class R>
concept CodedRecord = !RawRecord<R> && requires(const R& rec, ByteWriter& w, ByteReader& r,
                                                std::pmr::memory_resource* m) {
  rec.BroomEncode(w);
  { R::BroomDecode(r, m) } -> std::same_as<R>;
};

template <class R>
concept WireRecord = RawRecord<R> || CodedRecord<R>;

}  // namespace broom::lifecycle

#endif  // BROOM_LIFECYCLE_RECORD_H_
