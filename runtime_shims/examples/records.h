// Copyright Broom authors.
//
// records.h: the record types of the example jobs and their deterministic generators.
//
//   Author, AuthorTotal                        trivially copyable: travel between processes as
//                                              raw bytes (record.h, RawRecord), or by address
//                                              when the slices are shared memory.
//   Document, JoinedDoc, Line, Word, WordCount hold std::pmr::string: allocator-aware (so a
//                                              batch's vector clones them into its arena). They
//                                              have no serialization code: a batch of them
//                                              crosses processes as its region, by address
//                                              (broom/ship.h; policy "regions").
//   MakeDocument / TitleOf / MakeAuthor /      the synthetic data of Broom's evaluation: per
//   MakeLine                                   epoch `docs` documents and 10-20 new authors.
//                                              A document is an object with a heap title
//                                              (title_min..title_max bytes, like the paper's
//                                              managed Document objects), so every record costs
//                                              the memory policy one allocation and one free.
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

#include "broom/lifecycle/operator.h"
#include "broom/lifecycle/record.h"

namespace broom::examples {

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
  uint64_t title_min = 24;  // document title length range; title_max = 0: no title (flat records)
  uint64_t title_max = 88;  // at most kMaxTitle
};

inline constexpr uint64_t kMaxTitle = 128;

struct Document {
  using allocator_type = std::pmr::polymorphic_allocator<std::byte>;
  Document(uint64_t i, uint64_t a, uint32_t len, uint32_t e, const allocator_type& al = {})
      : id(i), author(a), length(len), epoch(e), title(al) {}
  Document(const Document& o, const allocator_type& al)
      : id(o.id), author(o.author), length(o.length), epoch(o.epoch), title(o.title, al) {}
  Document(Document&& o, const allocator_type& al)
      : id(o.id),
        author(o.author),
        length(o.length),
        epoch(o.epoch),
        title(std::move(o.title), al) {}
  Document(const Document&) = default;
  Document(Document&&) = default;
  Document& operator=(const Document&) = default;
  Document& operator=(Document&&) = default;

  uint64_t id;
  uint64_t author;
  uint32_t length;
  uint32_t epoch;
  std::pmr::string title;
};
struct Author {
  uint64_t id;
  uint32_t epoch;
  char name[20];
};
// A joined record carries its document's title (a new object per output record, as in the
// paper's JOIN).
struct JoinedDoc {
  using allocator_type = std::pmr::polymorphic_allocator<std::byte>;
  JoinedDoc(uint64_t d, uint64_t a, uint64_t nh, uint32_t len, uint32_t e,
            const allocator_type& al = {})
      : doc(d), author(a), name_hash(nh), length(len), epoch(e), title(al) {}
  JoinedDoc(const JoinedDoc& o, const allocator_type& al)
      : doc(o.doc),
        author(o.author),
        name_hash(o.name_hash),
        length(o.length),
        epoch(o.epoch),
        title(o.title, al) {}
  JoinedDoc(JoinedDoc&& o, const allocator_type& al)
      : doc(o.doc),
        author(o.author),
        name_hash(o.name_hash),
        length(o.length),
        epoch(o.epoch),
        title(std::move(o.title), al) {}
  JoinedDoc(const JoinedDoc&) = default;
  JoinedDoc(JoinedDoc&&) = default;
  JoinedDoc& operator=(const JoinedDoc&) = default;
  JoinedDoc& operator=(JoinedDoc&&) = default;

  uint64_t doc;
  uint64_t author;
  uint64_t name_hash;
  uint32_t length;
  uint32_t epoch;
  std::pmr::string title;
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

// Document j of epoch e, without its title (see TitleOf). With window > 1 its author comes from
// one of the last `window` epochs.
inline Document MakeDocument(const DataSpec& s, Epoch e, uint64_t j, uint64_t window = 1) {
  uint64_t id = e * s.docs + j;
  uint64_t h = MixHash(id + 1);
  uint64_t back = window > 1 ? (h >> 40) % window : 0;
  Epoch ae = back > e ? 0 : e - back;
  return Document(id, AuthorId(ae, h % AuthorsIn(s, ae)),
                  static_cast<uint32_t>(1 + (h >> 20) % 2000), static_cast<uint32_t>(e));
}

// The title of document `id`: title_min..title_max bytes of a fixed text (empty when
// title_max == 0). A view of static storage: generating it costs one hash, not a loop.
inline std::string_view TitleOf(const DataSpec& s, uint64_t id) {
  static constexpr std::string_view kText =
      "broom regions for big data: transferable regions hold messages, actor-scoped regions "
      "hold operator state, temporary regions hold scratch; objects die in groups and are "
      "freed in bulk when the last owner is done, so a garbage collector has nothing to trace "
      "and a general allocator nothing to free one object at a time.";
  static_assert(kText.size() >= 2 * kMaxTitle);
  if (s.title_max == 0) return {};
  uint64_t h = MixHash(id * 2654435761ULL + 7);
  uint64_t len = s.title_min + h % (s.title_max - s.title_min + 1);
  return kText.substr((h >> 32) % kMaxTitle, len);
}

inline uint64_t HashBytes(std::string_view s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  return h;
}

// Word-at-a-time hash for titles (checksums must not cost more than the records they check).
inline uint64_t HashText(std::string_view s) {
  uint64_t h = s.size() * 0x9E3779B97F4A7C15ULL;
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    h = (h ^ w) * 0xff51afd7ed558ccdULL;
  }
  uint64_t tail = 0;
  if (i < s.size()) std::memcpy(&tail, s.data() + i, s.size() - i);
  return MixHash(h ^ tail);
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
  return MixHash(d.id * 31 + d.author * 7 + d.length + (uint64_t{d.epoch} << 40)) ^
         HashText(d.title);
}
inline uint64_t RecordHash(const JoinedDoc& j) {
  return MixHash(j.doc ^ MixHash(j.author + 3) ^ j.name_hash ^ (uint64_t{j.length} << 20) ^
                 (uint64_t{j.epoch} << 52)) ^
         HashText(j.title);
}
inline uint64_t RecordHash(const AuthorTotal& t) {
  return MixHash(t.author * 1315423911ULL ^ MixHash(t.epoch + 5) ^ MixHash(t.total_length));
}
inline uint64_t RecordHash(const WordCount& w) {
  return MixHash(HashBytes(w.word) ^ MixHash(w.count * 3 + 1) ^ MixHash(w.epoch + 99));
}
// The joined record of d and a, without its title (the caller copies d.title where the record
// lives: Output::Give(t, Join(d, a), fill)).
inline JoinedDoc Join(const Document& d, const Author& a) {
  return JoinedDoc(d.id, a.id, HashBytes(a.name), d.length, d.epoch);
}

}  // namespace broom::examples

#endif  // BROOM_RUNTIME_SHIMS_EXAMPLES_RECORDS_H_
