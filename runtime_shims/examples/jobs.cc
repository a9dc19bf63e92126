// Copyright Broom authors.
#include "runtime_shims/examples/jobs.h"

#include <memory_resource>
#include <mutex>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace broom::examples {

using lifecycle::Binary;
using lifecycle::Context;
using lifecycle::Envelope;
using lifecycle::Exchange;
using lifecycle::Graph;
using lifecycle::JobParams;
using lifecycle::Pipeline;
using lifecycle::Source;
using lifecycle::Unary;

DataSpec SpecFrom(const JobParams& p) {
  DataSpec s;
  s.epochs = p.Get("epochs", s.epochs);
  s.docs = p.Get("docs", s.docs);
  s.authors_min = p.Get("authors_min", s.authors_min);
  s.authors_max = p.Get("authors_max", s.authors_max);
  s.window = p.Get("window", s.window);
  s.lines = p.Get("lines", s.lines);
  s.words_per_line = p.Get("words_per_line", s.words_per_line);
  s.vocabulary = p.Get("vocabulary", s.vocabulary);
  s.select_mod = p.Get("select_mod", s.select_mod);
  s.select_keep = p.Get("select_keep", s.select_keep);
  s.title_min = p.Get("title_min", s.title_min);
  s.title_max = p.Get("title_max", s.title_max);
  BROOM_CHECK(s.authors_min >= 1 && s.authors_min <= s.authors_max && s.authors_max <= 32,
              "need 1 <= authors_min <= authors_max <= 32");
  BROOM_CHECK(s.window >= 1 && s.vocabulary >= 1 && s.select_mod >= 1, "bad parameters");
  BROOM_CHECK(s.title_max == 0 || (s.title_min <= s.title_max && s.title_max <= kMaxTitle),
              "need title_max == 0 or title_min <= title_max <= %llu",
              (unsigned long long)kMaxTitle);
  return s;
}

namespace {

uint64_t DocAuthor(const Document& d) { return d.author; }
uint64_t AuthorKey(const Author& a) { return a.id; }
uint64_t WordKey(const Word& w) { return HashBytes(w.text); }

// ---- sources ---------------------------------------------------------------------------------

// Instance i of n generates documents j with j % n == i, about one batch per Produce call.
class DocSource final : public Source {
 public:
  DocSource(DataSpec s, uint64_t window, uint64_t chunk)
      : Source(s.epochs), s_(s), window_(window), chunk_(chunk) {}
  bool Produce(Epoch t, Context& ctx) override {
    auto& out = ctx.output<Document>(0);
    uint64_t n = static_cast<uint64_t>(ctx.instances());
    if (next_ == 0) next_ = static_cast<uint64_t>(ctx.instance());
    auto fill = [this](Document& d) { d.title.assign(TitleOf(s_, d.id)); };
    for (uint64_t k = 0; k < chunk_ && next_ < s_.docs; ++k, next_ += n) {
      out.Give(t, MakeDocument(s_, t, next_, window_), fill);
    }
    if (next_ < s_.docs) return false;
    next_ = 0;
    return true;
  }

 private:
  DataSpec s_;
  uint64_t window_;
  uint64_t chunk_;
  uint64_t next_ = 0;  // next document index (0 = start of an epoch)
};

class AuthorSource final : public Source {
 public:
  explicit AuthorSource(DataSpec s) : Source(s.epochs), s_(s) {}
  bool Produce(Epoch t, Context& ctx) override {
    auto& out = ctx.output<Author>(0);
    for (uint64_t k = ctx.instance(); k < AuthorsIn(s_, t); k += ctx.instances()) {
      out.Give(t, MakeAuthor(t, k));
    }
    return true;
  }

 private:
  DataSpec s_;
};

class LineSource final : public Source {
 public:
  LineSource(DataSpec s, uint64_t chunk) : Source(s.epochs), s_(s), chunk_(chunk) {}
  bool Produce(Epoch t, Context& ctx) override {
    auto& out = ctx.output<Line>(0);
    uint64_t n = static_cast<uint64_t>(ctx.instances());
    if (next_ == 0) next_ = static_cast<uint64_t>(ctx.instance());
    std::pmr::string buf(broom::CurrentResource());  // callback scratch
    for (uint64_t k = 0; k < chunk_ && next_ < s_.lines; ++k, next_ += n) {
      out.Give(t, Line(MakeLine(s_, t, next_, buf), broom::CurrentResource()));
    }
    if (next_ < s_.lines) return false;
    next_ = 0;
    return true;
  }

 private:
  DataSpec s_;
  uint64_t chunk_;
  uint64_t next_ = 0;
};

// ---- operators -------------------------------------------------------------------------------

// SELECT: filters the batch in place and forwards the same envelope (no copy, no new region).
class Select final : public Unary<Document> {
 public:
  explicit Select(DataSpec s) : s_(s) {}
  void OnRecv(Envelope<Document>& batch, Context& ctx) override {
    auto& recs = batch.records();
    std::erase_if(recs, [&](const Document& d) { return d.id % s_.select_mod >= s_.select_keep; });
    if (!recs.empty()) ctx.output<Document>(0).Send(std::move(batch));
  }

 private:
  DataSpec s_;
};

// AGGREGATE: per-epoch sums in the epoch's arena; emitted and freed at OnNotify(t).
struct Sums {
  using allocator_type = std::pmr::polymorphic_allocator<std::byte>;
  explicit Sums(const allocator_type& a) : by_author(a) {}
  std::pmr::unordered_map<uint64_t, uint64_t> by_author;
};

class Aggregate final : public Unary<Document> {
 public:
  void OnRecv(Envelope<Document>& batch, Context& ctx) override {
    Sums& s = ctx.EpochState<Sums>(batch->epoch);
    for (const Document& d : batch.records()) s.by_author[d.author] += d.length;
  }
  void OnNotify(Epoch t, Context& ctx) override {
    auto& out = ctx.output<AuthorTotal>(0);
    for (const auto& [author, total] : ctx.FindEpochState<Sums>(t)->by_author) {
      out.Give(t, AuthorTotal{author, t, total});
    }
  }
};

// JOIN: per-epoch symmetric hash join; documents wait (in the epoch's arena) for their author.
struct JoinState {
  using allocator_type = std::pmr::polymorphic_allocator<std::byte>;
  explicit JoinState(const allocator_type& a) : authors(a), waiting(a) {}
  std::pmr::unordered_map<uint64_t, Author> authors;
  std::pmr::unordered_map<uint64_t, std::pmr::vector<Document>> waiting;
};

class HashJoin final : public Binary<Document, Author> {
 public:
  void OnRecv1(Envelope<Document>& batch, Context& ctx) override {
    Epoch t = batch->epoch;
    JoinState& s = ctx.EpochState<JoinState>(t);
    auto& out = ctx.output<JoinedDoc>(0);
    for (const Document& d : batch.records()) {
      auto a = s.authors.find(d.author);
      if (a != s.authors.end()) {
        out.Give(t, examples::Join(d, a->second), [&](JoinedDoc& j) { j.title = d.title; });
      } else {
        s.waiting[d.author].push_back(d);
      }
    }
  }
  void OnRecv2(Envelope<Author>& batch, Context& ctx) override {
    Epoch t = batch->epoch;
    JoinState& s = ctx.EpochState<JoinState>(t);
    auto& out = ctx.output<JoinedDoc>(0);
    for (const Author& a : batch.records()) {
      s.authors.emplace(a.id, a);
      auto w = s.waiting.find(a.id);
      if (w == s.waiting.end()) continue;
      for (const Document& d : w->second) {
        out.Give(t, examples::Join(d, a), [&](JoinedDoc& j) { j.title = d.title; });
      }
      s.waiting.erase(w);
    }
  }
  void OnNotify(Epoch t, Context& ctx) override {
    // Documents whose author never came are dropped with the epoch (none, by construction).
    size_t unmatched = ctx.FindEpochState<JoinState>(t)->waiting.size();
    if (unmatched > 0) ctx.Report("unmatched", unmatched);
  }
};

// Windowed JOIN: documents of epoch t join authors of epochs t-window+1 .. t at OnNotify(t).
// Authors stay for the window; the documents of t are needed only until OnNotify(t), so they
// live in a state of their own that is freed right after it (kEpochWindow = 1).
struct WindowAuthors {
  using allocator_type = std::pmr::polymorphic_allocator<std::byte>;
  explicit WindowAuthors(const allocator_type& a) : by_id(a) {}
  std::pmr::unordered_map<uint64_t, Author> by_id;
};
struct WindowDocs {
  static constexpr Epoch kEpochWindow = 1;
  using allocator_type = std::pmr::polymorphic_allocator<std::byte>;
  explicit WindowDocs(const allocator_type& a) : docs(a) {}
  std::pmr::vector<Document> docs;
};

class WindowJoin final : public Binary<Document, Author> {
 public:
  explicit WindowJoin(uint64_t window) : window_(window) {}
  Epoch EpochStateWindow() const override { return window_; }
  void OnRecv1(Envelope<Document>& batch, Context& ctx) override {
    auto& docs = ctx.EpochState<WindowDocs>(batch->epoch).docs;
    docs.insert(docs.end(), batch.records().begin(), batch.records().end());
  }
  void OnRecv2(Envelope<Author>& batch, Context& ctx) override {
    auto& authors = ctx.EpochState<WindowAuthors>(batch->epoch).by_id;
    for (const Author& a : batch.records()) authors.emplace(a.id, a);
  }
  void OnNotify(Epoch t, Context& ctx) override {
    WindowDocs* now = ctx.FindEpochState<WindowDocs>(t);
    if (now == nullptr) return;  // authors only
    auto& out = ctx.output<JoinedDoc>(0);
    std::vector<const WindowAuthors*> window;  // newest first
    for (Epoch e = t + 1; e-- > 0 && t - e < window_;) {
      if (const WindowAuthors* w = ctx.FindEpochState<WindowAuthors>(e)) window.push_back(w);
    }
    uint64_t unmatched = 0;
    for (const Document& d : now->docs) {
      const Author* found = nullptr;
      for (const WindowAuthors* w : window) {
        auto it = w->by_id.find(d.author);
        if (it != w->by_id.end()) {
          found = &it->second;
          break;
        }
      }
      if (found != nullptr) {
        out.Give(t, examples::Join(d, *found), [&](JoinedDoc& j) { j.title = d.title; });
      } else {
        ++unmatched;
      }
    }
    if (unmatched > 0) ctx.Report("unmatched", unmatched);
  }

 private:
  uint64_t window_;
};

class Tokenize final : public Unary<Line> {
 public:
  void OnRecv(Envelope<Line>& batch, Context& ctx) override {
    auto& out = ctx.output<Word>(0);
    Epoch t = batch->epoch;
    for (const Line& l : batch.records()) {
      std::string_view s = l.text;
      while (!s.empty()) {
        size_t sp = s.find(' ');
        std::string_view w = s.substr(0, sp);
        if (!w.empty()) out.Give(t, Word(w, broom::CurrentResource()));
        if (sp == std::string_view::npos) break;
        s.remove_prefix(sp + 1);
      }
    }
  }
};

struct Counts {
  using allocator_type = std::pmr::polymorphic_allocator<std::byte>;
  explicit Counts(const allocator_type& a) : by_word(a) {}
  std::pmr::unordered_map<std::pmr::string, uint64_t> by_word;
};

class Count final : public Unary<Word> {
 public:
  void OnRecv(Envelope<Word>& batch, Context& ctx) override {
    Counts& c = ctx.EpochState<Counts>(batch->epoch);
    for (const Word& w : batch.records()) ++c.by_word[w.text];
  }
  void OnNotify(Epoch t, Context& ctx) override {
    auto& out = ctx.output<WordCount>(0);
    for (const auto& [w, n] : ctx.FindEpochState<Counts>(t)->by_word) {
      out.Give(t, WordCount(w, n, t, broom::CurrentResource()));
    }
  }
};

// Sums RecordHash over everything it receives; reports at the end.
template <class R>
class Sink final : public Unary<R> {
 public:
  void OnRecv(Envelope<R>& batch, Context&) override {
    for (const R& r : batch.records()) checksum_ += RecordHash(r);
    records_ += batch.records().size();
  }
  void OnFinish(Context& ctx) override {
    ctx.Report("records", records_);
    ctx.Report("checksum", checksum_);
  }

 private:
  uint64_t records_ = 0;
  uint64_t checksum_ = 0;
};

// ---- graphs ----------------------------------------------------------------------------------

int Workers(const JobParams& p) { return static_cast<int>(p.Get("workers", 2)); }
uint64_t Chunk(const JobParams& p) { return p.Get("chunk", 1024); }

Graph SelectJob(const JobParams& p) {
  DataSpec s = SpecFrom(p);
  int w = Workers(p);
  Graph g;
  int src = g.AddStage<DocSource>("docs", w, 0, 1, s, uint64_t{1}, Chunk(p));
  int sel = g.AddStage<Select>("select", w, 1, 1, s);
  int sink = g.AddStage<Sink<Document>>("sink", w, 1, 0);
  g.Connect<Document>(src, 0, sel, 0, Pipeline<Document>());
  g.Connect<Document>(sel, 0, sink, 0, Pipeline<Document>());
  return g;
}

Graph AggregateJob(const JobParams& p) {
  DataSpec s = SpecFrom(p);
  int w = Workers(p);
  Graph g;
  int src = g.AddStage<DocSource>("docs", w, 0, 1, s, uint64_t{1}, Chunk(p));
  int agg = g.AddStage<Aggregate>("aggregate", w, 1, 1);
  int sink = g.AddStage<Sink<AuthorTotal>>("sink", w, 1, 0);
  g.Connect<Document>(src, 0, agg, 0, Exchange<Document>(&DocAuthor));
  g.Connect<AuthorTotal>(agg, 0, sink, 0, Pipeline<AuthorTotal>());
  return g;
}

template <class JoinOp, class... Args>
Graph JoinGraph(const JobParams& p, uint64_t window, Args... args) {
  DataSpec s = SpecFrom(p);
  int w = Workers(p);
  Graph g;
  int docs = g.AddStage<DocSource>("docs", w, 0, 1, s, window, Chunk(p));
  int authors = g.AddStage<AuthorSource>("authors", w, 0, 1, s);
  int join = g.AddStage<JoinOp>("join", w, 2, 1, args...);
  int sink = g.AddStage<Sink<JoinedDoc>>("sink", w, 1, 0);
  g.Connect<Document>(docs, 0, join, 0, Exchange<Document>(&DocAuthor));
  g.Connect<Author>(authors, 0, join, 1, Exchange<Author>(&AuthorKey));
  g.Connect<JoinedDoc>(join, 0, sink, 0, Pipeline<JoinedDoc>());
  return g;
}

Graph WordCountJob(const JobParams& p) {
  DataSpec s = SpecFrom(p);
  int w = Workers(p);
  Graph g;
  int src = g.AddStage<LineSource>("lines", w, 0, 1, s, Chunk(p) / 8 + 1);
  int tok = g.AddStage<Tokenize>("tokenize", w, 1, 1);
  int cnt = g.AddStage<Count>("count", w, 1, 1);
  int sink = g.AddStage<Sink<WordCount>>("sink", w, 1, 0);
  g.Connect<Line>(src, 0, tok, 0, Pipeline<Line>());
  g.Connect<Word>(tok, 0, cnt, 0, Exchange<Word>(&WordKey));
  g.Connect<WordCount>(cnt, 0, sink, 0, Pipeline<WordCount>());
  return g;
}

}  // namespace

void RegisterExampleJobs() {
  static std::once_flag once;
  std::call_once(once, [] {
    lifecycle::RegisterJob("select", &SelectJob);
    lifecycle::RegisterJob("aggregate", &AggregateJob);
    lifecycle::RegisterJob("join", [](const JobParams& p) { return JoinGraph<HashJoin>(p, 1); });
    lifecycle::RegisterJob("wjoin", [](const JobParams& p) {
      uint64_t w = SpecFrom(p).window;
      return JoinGraph<WindowJoin>(p, w, w);
    });
    lifecycle::RegisterJob("wordcount", &WordCountJob);
  });
}

// ---- reference computations (no shim, no regions) --------------------------------------------

std::map<std::string, uint64_t> ReferenceTotals(const std::string& job, const JobParams& p) {
  DataSpec s = SpecFrom(p);
  uint64_t records = 0, checksum = 0;
  auto add = [&](uint64_t h) {
    ++records;
    checksum += h;
  };
  std::map<std::string, uint64_t> extra;
  auto make_doc = [&s](Epoch e, uint64_t j, uint64_t window) {
    Document d = MakeDocument(s, e, j, window);
    d.title.assign(TitleOf(s, d.id));
    return d;
  };
  if (job == "select") {
    for (Epoch e = 0; e < s.epochs; ++e) {
      for (uint64_t j = 0; j < s.docs; ++j) {
        Document d = make_doc(e, j, 1);
        if (d.id % s.select_mod < s.select_keep) add(RecordHash(d));
      }
    }
  } else if (job == "aggregate") {
    for (Epoch e = 0; e < s.epochs; ++e) {
      std::unordered_map<uint64_t, uint64_t> sums;
      for (uint64_t j = 0; j < s.docs; ++j) {
        Document d = make_doc(e, j, 1);
        sums[d.author] += d.length;
      }
      for (const auto& [a, t] : sums) add(RecordHash(AuthorTotal{a, e, t}));
    }
  } else if (job == "join" || job == "wjoin") {
    uint64_t window = job == "wjoin" ? s.window : 1;
    std::unordered_map<uint64_t, Author> authors;
    for (Epoch e = 0; e < s.epochs; ++e) {
      for (uint64_t k = 0; k < AuthorsIn(s, e); ++k)
        authors.emplace(AuthorId(e, k), MakeAuthor(e, k));
      for (uint64_t j = 0; j < s.docs; ++j) {
        Document d = make_doc(e, j, window);
        JoinedDoc out = examples::Join(d, authors.at(d.author));
        out.title = d.title;
        add(RecordHash(out));
      }
    }
  } else if (job == "wordcount") {
    std::pmr::string line;
    for (Epoch e = 0; e < s.epochs; ++e) {
      std::unordered_map<std::string, uint64_t> counts;
      for (uint64_t j = 0; j < s.lines; ++j) {
        std::string_view l = MakeLine(s, e, j, line);
        while (!l.empty()) {
          size_t sp = l.find(' ');
          std::string_view w = l.substr(0, sp);
          if (!w.empty()) ++counts[std::string(w)];
          if (sp == std::string_view::npos) break;
          l.remove_prefix(sp + 1);
        }
      }
      for (const auto& [w, n] : counts) add(RecordHash(WordCount(w, n, e)));
    }
  } else {
    return {};
  }
  extra["records"] = records;
  extra["checksum"] = checksum;
  return extra;
}

}  // namespace broom::examples
