// Copyright Broom authors.
//
// lifetimes.cc: a small dataflow job whose allocation sites have known lifetimes, the ground
// truth of the lifetime profiler (PreloadProfilerTest in programs_test.cc).
//
// A producer thread builds batches of records and sends them over a channel to a consumer
// thread, which runs an operator's callback on each batch and then frees it; the operator's
// state lives until the job ends (on the main thread), and a registry lives until exit. Every
// allocating line whose class is known carries a tag `SITE: <name> <class>`; the test finds the
// line by its tag and checks the profiler's class for it. The producer's record vectors and the
// consumer's scratch are both std::vector<int> (one _M_realloc_insert for both): the profiler
// must still tell them apart by the user's line.
//
// Usage: preload_lifetimes [batches]   (default 3000). Prints a checksum.
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

struct Batch {
  std::vector<int> values;
};

// A bounded queue between the two threads.
class Channel {
 public:
  void Push(Batch* b) {
    std::unique_lock<std::mutex> lock(mu_);
    room_.wait(lock, [&] { return q_.size() < 8; });
    q_.push_back(b);
    ready_.notify_one();
  }
  void Close() {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    ready_.notify_one();
  }
  Batch* Pop() {
    std::unique_lock<std::mutex> lock(mu_);
    ready_.wait(lock, [&] { return !q_.empty() || closed_; });
    if (q_.empty()) return nullptr;
    Batch* b = q_.front();
    q_.pop_front();
    room_.notify_one();
    return b;
  }

 private:
  std::mutex mu_;
  std::condition_variable ready_, room_;
  std::deque<Batch*> q_;
  bool closed_ = false;
};

// Lives until exit: filled at start-up, destroyed by the static destructors.
std::unordered_map<int, std::string> g_registry;
// Filled by the consumer during the last batches, destroyed by the static destructors on the
// main thread: short-lived and freed by another thread, yet state (it lived until exit).
std::unordered_map<int, int> g_late;
int g_late_from = 0;

// A per-operator window entry: allocated in one callback, freed 40 callbacks later.
struct Entry {
  long sum;
  int first;
};

// Built by a helper and returned to its caller, which drops it at the end of the callback.
__attribute__((noinline)) std::string Describe(int first) {
  std::string s;
  s.reserve(128);  // SITE: describe temporary
  s += "batch starting at ";
  s += std::to_string(first);
  s += " (a description longer than the small-string buffer)";
  return s;
}

// The operator: state (counts_, window_) for the operator's lifetime, scratch per callback.
class CountOperator {
 public:
  // An engine calls its operators' callbacks through a real call, not inlined into its loop.
  __attribute__((noinline)) void OnBatch(const Batch& b) {
    std::vector<int> scratch;
    for (int v : b.values) {
      if (v % 3 == 0) scratch.push_back(v);  // SITE: scratch temporary
    }
    for (int v : scratch) counts_[v % 997] += v;                           // SITE: counts state
    Entry* e = new Entry{static_cast<long>(scratch.size()), b.values[0]};  // SITE: window state
    window_.push_back(e);
    if (window_.size() > 40) {
      checksum_ += window_.front()->sum;
      delete window_.front();
      window_.pop_front();
    }
    if (b.values[0] >= g_late_from) g_late[b.values[0]] = 1;  // SITE: late state
    std::string label = Describe(b.values[0]);
    char* copy = strdup(label.c_str());  // SITE: strdup temporary
    checksum_ += static_cast<long>(std::strlen(copy));
    std::free(copy);
  }
  ~CountOperator() {
    for (Entry* e : window_) delete e;
  }
  long checksum() const {
    long c = checksum_;
    for (const auto& [k, v] : counts_) c += k ^ v;
    return c;
  }

 private:
  std::unordered_map<int, long> counts_;
  std::deque<Entry*> window_;
  long checksum_ = 0;
};

// Never freed at all.
std::vector<int*>* g_leaked = new std::vector<int*>;

__attribute__((noinline)) void Produce(Channel* channel, int batches) {
  for (int i = 0; i < batches; ++i) {
    Batch* b = new Batch;                                          // SITE: batch transferable
    for (int j = 0; j < 64; ++j) b->values.push_back(i * 64 + j);  // SITE: records transferable
    channel->Push(b);
  }
  channel->Close();
}

__attribute__((noinline)) void Consume(Channel* channel, CountOperator* op) {
  while (Batch* b = channel->Pop()) {
    op->OnBatch(*b);
    delete b;
  }
}

}  // namespace

int main(int argc, char** argv) {
  int batches = argc > 1 ? std::atoi(argv[1]) : 3000;
  if (batches < 1) {
    std::fprintf(stderr, "usage: %s [batches >= 1]\n", argv[0]);
    return 2;
  }
  for (int i = 0; i < 200; ++i)
    g_registry[i] = std::string(48, static_cast<char>('a' + i % 26));  // SITE: registry state
  for (int i = 0; i < 100; ++i) g_leaked->push_back(new int[8]);       // SITE: leaked state
  g_late_from = (batches - batches / 30) * 64;
  long checksum = 0;
  {
    auto* op = new CountOperator;
    Channel channel;
    std::thread producer(Produce, &channel, batches);
    std::thread consumer(Consume, &channel, op);
    producer.join();
    consumer.join();
    checksum = op->checksum();
    delete op;  // the operator ends: its state dies here, on the main thread
  }
  std::printf("checksum %ld registry %zu leaked %zu\n", checksum, g_registry.size(),
              g_leaked->size());
  return 0;
}
