// Copyright Broom authors.
//
// records.h: the record types of the example jobs and their deterministic generators.
//
//   Document, Author, JoinedDoc, AuthorTotal   trivially copyable: travel between processes as
//                                              raw bytes (record.h, RawRecord).
//   Line, Word, WordCount                      hold std::pmr::string: allocator-aware (so a
//                                              batch's vector clones them into its arena) and
//                                              CodedRecord (BroomEncode / BroomDecode into the
//                                              receiver's region).
//   MakeDocument / MakeAuthor / MakeLine       the synthetic data of Broom's evaluation: per
//                                              epoch `docs` documents and 10-20 new authors.
//   RecordHash(r)                              order-independent result checksums are sums of
//                                              these (wrapping).
//
// Thread-safety: plain values and pure functions.
#ifndef BROOM_RUNTIME_SHIMS_EXAMPLES_RECORDS_H_
#define BROOM_RUNTIME_SHIMS_EXAMPLES_RECORDS_H_

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory_resource>
#include <string>
#include <string_view>

#include "runtime_shims/lifecycle/operator.h"
#include "runtime_shims/lifecycle/record.h"

namespace broom::examples {

using lifecycle::ByteReader;
using lifecycle::ByteWriter;
using lifecycle::Epoch;
using lifecycle::MixHash;

// Parameters shared by generators and reference computations.
struct DataSpec {
  uint64_t epochs = 40;
  uint64_t docs = 500000;  // per epoch
  uint64_t authors_min = 10;
  uint64_t authors_max = 20;  // at most 32
  uint64_t window = 3;        // windowed join: a document's author is from the last `window` epochs
  uint64_t lines = 20000;     // word count: lines per epoch
  uint64_t words_per_line = 8;
  uint64_t vocabulary = 5000;
  uint64_t select_mod = 1000;  // SELECT keeps documents with id % select_mod < select_keep
  uint64_t select_keep = 10;
};

struct Document {
  uint64_t id;
  uint64_t author;
  uint32_t length;
  uint32_t epoch;
};
struct Author {
  uint64_t id;
  uint32_t epoch;
  char name[20];
};
struct JoinedDoc {
  uint64_t doc;
  uint64_t author;
  uint64_t name_hash;
  uint32_t length;
  uint32_t epoch;
};
struct AuthorTotal {
  uint64_t author;
  uint64_t epoch;
  uint64_t total_length;
};

inline uint64_t AuthorsIn(const DataSpec& s, Epoch e) {
  return s.authors_min + MixHash(e * 7919 + 11) % (s.authors_max - s.authors_min + 1);
}
inline uint64_t AuthorId(Epoch e, uint64_t k) { return e * 32 + k; }

inline Author MakeAuthor(Epoch e, uint64_t k) {
  Author a{};
  a.id = AuthorId(e, k);
  a.epoch = static_cast<uint32_t>(e);
  std::snprintf(a.name, sizeof(a.name), "author-%llu", (unsigned long long)a.id);
  return a;
}

// Document j of epoch e. With window > 1 its author comes from one of the last `window` epochs.
inline Document MakeDocument(const DataSpec& s, Epoch e, uint64_t j, uint64_t window = 1) {
  uint64_t id = e * s.docs + j;
  uint64_t h = MixHash(id + 1);
  uint64_t back = window > 1 ? (h >> 40) % window : 0;
  Epoch ae = back > e ? 0 : e - back;
  return Document{id, AuthorId(ae, h % AuthorsIn(s, ae)),
                  static_cast<uint32_t>(1 + (h >> 20) % 2000), static_cast<uint32_t>(e)};
}

inline uint64_t HashBytes(std::string_view s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  return h;
}

// ---- records with strings --------------------------------------------------------------------

struct Line {
  using allocator_type = std::pmr::polymorphic_allocator<std::byte>;
  explicit Line(std::string_view t, const allocator_type& a = {}) : text(t, a) {}
  Line(const Line& o, const allocator_type& a) : text(o.text, a) {}
  Line(Line&& o, const allocator_type& a) : text(std::move(o.text), a) {}
  Line(const Line&) = default;
  Line(Line&&) = default;
  Line& operator=(const Line&) = default;
  Line& operator=(Line&&) = default;
  std::pmr::string text;

  void BroomEncode(ByteWriter& w) const { w.PutString(text); }
  static Line BroomDecode(ByteReader& r, std::pmr::memory_resource* m) {
    return Line(r.GetString(), allocator_type(m));
  }
};

struct Word {
  using allocator_type = std::pmr::polymorphic_allocator<std::byte>;
  explicit Word(std::string_view t, const allocator_type& a = {}) : text(t, a) {}
  Word(const Word& o, const allocator_type& a) : text(o.text, a) {}
  Word(Word&& o, const allocator_type& a) : text(std::move(o.text), a) {}
  Word(const Word&) = default;
  Word(Word&&) = default;
  Word& operator=(const Word&) = default;
  Word& operator=(Word&&) = default;
  std::pmr::string text;

  void BroomEncode(ByteWriter& w) const { w.PutString(text); }
  static Word BroomDecode(ByteReader& r, std::pmr::memory_resource* m) {
    return Word(r.GetString(), allocator_type(m));
  }
};

struct WordCount {
  using allocator_type = std::pmr::polymorphic_allocator<std::byte>;
  WordCount(std::string_view w, uint64_t c, Epoch e, const allocator_type& a = {})
      : word(w, a), count(c), epoch(e) {}
  WordCount(const WordCount& o, const allocator_type& a)
      : word(o.word, a), count(o.count), epoch(o.epoch) {}
  WordCount(WordCount&& o, const allocator_type& a)
      : word(std::move(o.word), a), count(o.count), epoch(o.epoch) {}
  WordCount(const WordCount&) = default;
  WordCount(WordCount&&) = default;
  WordCount& operator=(const WordCount&) = default;
  WordCount& operator=(WordCount&&) = default;
  std::pmr::string word;
  uint64_t count;
  Epoch epoch;

  void BroomEncode(ByteWriter& w) const {
    w.PutString(word);
    w.Put(count);
    w.Put(epoch);
  }
  static WordCount BroomDecode(ByteReader& r, std::pmr::memory_resource* m) {
    std::string_view w = r.GetString();
    uint64_t c = r.Get<uint64_t>();
    Epoch e = r.Get<Epoch>();
    return WordCount(w, c, e, allocator_type(m));
  }
};

// Line j of epoch e: words_per_line words "w<k>" from a skewed vocabulary. Writes into `out`
// (a scratch buffer of the caller) and returns a view of it.
inline std::string_view MakeLine(const DataSpec& s, Epoch e, uint64_t j, std::pmr::string& out) {
  out.clear();
  uint64_t h = MixHash(e * 1000003 + j + 17);
  for (uint64_t w = 0; w < s.words_per_line; ++w) {
    h = MixHash(h + w);
    uint64_t k = (h % s.vocabulary) * ((h >> 32) % s.vocabulary) / s.vocabulary;
    if (w > 0) out.push_back(' ');
    char buf[24];
    int n = std::snprintf(buf, sizeof(buf), "w%llu", (unsigned long long)k);
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// ---- checksums -------------------------------------------------------------------------------

inline uint64_t RecordHash(const Document& d) {
  return MixHash(d.id * 31 + d.author * 7 + d.length + (uint64_t{d.epoch} << 40));
}
inline uint64_t RecordHash(const JoinedDoc& j) {
  return MixHash(j.doc ^ MixHash(j.author + 3) ^ j.name_hash ^ (uint64_t{j.length} << 20) ^
                 (uint64_t{j.epoch} << 52));
}
inline uint64_t RecordHash(const AuthorTotal& t) {
  return MixHash(t.author * 1315423911ULL ^ MixHash(t.epoch + 5) ^ MixHash(t.total_length));
}
inline uint64_t RecordHash(const WordCount& w) {
  return MixHash(HashBytes(w.word) ^ MixHash(w.count * 3 + 1) ^ MixHash(w.epoch + 99));
}
inline JoinedDoc Join(const Document& d, const Author& a) {
  return JoinedDoc{d.id, a.id, HashBytes(a.name), d.length, d.epoch};
}

}  // namespace broom::examples

#endif  // BROOM_RUNTIME_SHIMS_EXAMPLES_RECORDS_H_
