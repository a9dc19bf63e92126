// Copyright Broom authors.
//
// Soak test (label `stress`, not in the default run): two threads, each an "operator" with an
// actor region (churned: destroyed and recreated every few thousand operations), a temporary
// region with one scope per message, and a stream of messages (Message<Batch>, a transferable
// region holding a std::pmr::vector of records and strings) handed to the other thread through a
// bounded queue. A message is checked by its receiver, then either freed there or sent back to
// its producer, which checks it again and frees it. At least 10 million operations (allocations,
// frees, scopes, region creations and destructions, handoffs: each counted once, as a call into
// Broom) by default; BROOM_SOAK_OPS overrides.
//
// At the end nothing is lost: every region created was destroyed (per kind), block accounting
// returns to where it started, and after ReleaseFreeMemory(all) nothing is cached. Run it with
//   ctest --preset stress                                  (release build)
// and under LeakSanitizer/ASan with
//   cmake --preset asan && cmake --build --preset asan &&
//   ASAN_OPTIONS=detect_leaks=1 ctest --test-dir build/asan -L stress --output-on-failure
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory_resource>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>
#include <vector>

#include "broom/actor_region.h"
#include "broom/context.h"
#include "broom/memory.h"
#include "broom/message.h"
#include "broom/temporary_region.h"
#include "broom/transferable_region.h"

namespace broom {
namespace {

struct Record {
  uint64_t key;
  uint64_t value;
  std::string_view label;  // points into the same message region
};

struct Batch {
  using allocator_type = std::pmr::polymorphic_allocator<std::byte>;
  Batch(uint64_t seq, int producer, const allocator_type& alloc)
      : records(alloc), seq(seq), producer(producer) {}
  std::pmr::vector<Record> records;
  uint64_t seq;
  int producer;
  uint64_t checksum = 0;
  bool bounce = false;  // the receiver sends it back instead of freeing it
};

uint64_t Checksum(const Batch& b) {
  uint64_t h = b.seq * 0x9e3779b97f4a7c15ull;
  for (const Record& r : b.records) {
    h ^= r.key + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    h ^= r.value * 31 + r.label.size();
  }
  return h;
}

// A queue of messages between the two operators. Unbounded, so neither side ever blocks on the
// other; producers throttle themselves by looking at size().
class Channel {
 public:
  void Push(Message<Batch> m) {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(m));
    ready_.notify_one();
  }
  // Waits briefly; returns an empty message if none came.
  Message<Batch> Pop() {
    std::unique_lock<std::mutex> lock(mu_);
    if (!ready_.wait_for(lock, std::chrono::microseconds(200), [&] { return !queue_.empty(); })) {
      return Message<Batch>();
    }
    Message<Batch> m = std::move(queue_.front());
    queue_.pop_front();
    return m;
  }
  size_t size() {
    std::lock_guard<std::mutex> lock(mu_);
    return queue_.size();
  }

 private:
  std::mutex mu_;
  std::condition_variable ready_;
  std::deque<Message<Batch>> queue_;
};

// What both operators share: the first failure, messages alive anywhere, producers finished.
struct Shared {
  std::atomic<bool> failed{false};
  char what[256] = {};
  std::atomic<int64_t> in_flight{0};
  std::atomic<int> producers_done{0};
  void Fail(const char* msg) {
    bool expected = false;
    if (failed.compare_exchange_strong(expected, true))
      std::snprintf(what, sizeof(what), "%s", msg);
  }
};

// One operator thread: produces messages to `out` and consumes from `in`.
class Operator {
 public:
  Operator(int id, Channel* in, Channel* out, uint64_t target_ops, Shared* shared)
      : id_(id),
        in_(in),
        out_(out),
        target_(target_ops),
        shared_(shared),
        rng_(static_cast<uint64_t>(id) * 7919 + 1) {}

  // Runs on the operator's own thread (the temporary region belongs to it).
  void Run() {
    TemporaryRegion scratch;
    scratch_ = &scratch;
    state_.emplace();
    ops_ += 2;
    bool producing = true;
    while (!shared_->failed.load(std::memory_order_relaxed)) {
      if (producing && ops_ >= target_) {
        producing = false;
        shared_->producers_done.fetch_add(1);
      }
      if (producing && out_->size() < 32) Produce();
      Consume();
      ChurnActor();
      if (!producing && shared_->producers_done.load() == 2 && shared_->in_flight.load() == 0) {
        break;
      }
    }
    remembered_.clear();
    state_.reset();
    scratch_ = nullptr;
  }

  uint64_t ops() const { return ops_; }
  uint64_t messages() const { return next_seq_ - 1; }

 private:
  uint64_t Next() {
    rng_ ^= rng_ << 13;
    rng_ ^= rng_ >> 7;
    rng_ ^= rng_ << 17;
    return rng_;
  }

  void Produce() {
    uint64_t seq = next_seq_++;
    Message<Batch> m = Message<Batch>::Create(seq, id_);
    ops_ += 3;  // region, root, the records' array (reserve)
    {
      auto open = m.Open();
      size_t n = 1 + Next() % 48;
      m->records.reserve(n);
      for (size_t i = 0; i < n; ++i) {
        char label[32];
        int len = std::snprintf(label, sizeof(label), "r%llu.%zu",
                                static_cast<unsigned long long>(seq), i);
        m->records.push_back({seq * 1000 + i, Next(),
                              CopyString(std::string_view(label, static_cast<size_t>(len)))});
        ++ops_;  // the label's allocation
      }
    }
    m->checksum = Checksum(*m);
    m->bounce = Next() % 3 == 0;
    shared_->in_flight.fetch_add(1);
    out_->Push(std::move(m));
    ++ops_;
  }

  void Consume() {
    Message<Batch> m = in_->Pop();
    if (!m) return;
    const Region* region = &m.region().region();
    if (RegionOf(m.get()) != region || Checksum(*m) != m->checksum) {
      shared_->Fail("a message arrived damaged or outside its region");
      return;
    }
    for (const Record& r : m->records) {
      if (RegionOf(r.label.data()) != region) shared_->Fail("a label is outside its message");
    }
    {  // per-callback scratch
      TemporaryRegion::Scope scope(*scratch_);
      std::pmr::vector<uint64_t> keys(CurrentResource());
      for (const Record& r : m->records) keys.push_back(r.key);
      ops_ += 2;  // the scope, and the vector's allocations in it
    }
    // Operator state: remember some keys in the actor region, forget old ones.
    for (size_t i = 0; i < m->records.size() && i < 4; ++i) {
      auto* k = static_cast<uint64_t*>(state_->Allocate(8 + Next() % 200));
      if (k == nullptr) {
        shared_->Fail("actor allocation failed");
        return;
      }
      *k = m->records[i].key;
      remembered_.push_back(k);
      ++ops_;
    }
    while (remembered_.size() > 256) {
      size_t victim = Next() % remembered_.size();
      state_->Free(remembered_[victim]);
      remembered_[victim] = remembered_.back();
      remembered_.pop_back();
      ++ops_;
    }
    if (m->producer != id_ && m->bounce) {
      out_->Push(std::move(m));  // back to its producer, which frees it
    } else {
      m.region().Free();
      shared_->in_flight.fetch_sub(1);
    }
    ++ops_;
  }

  void ChurnActor() {
    if (++since_churn_ < 3000) return;
    since_churn_ = 0;
    remembered_.clear();
    state_.reset();  // the operator shuts down; a new one starts
    state_.emplace();
    ops_ += 2;
  }

  int id_;
  Channel* in_;
  Channel* out_;
  uint64_t target_;
  Shared* shared_;
  uint64_t rng_;
  uint64_t ops_ = 0;
  uint64_t next_seq_ = 1;
  uint64_t since_churn_ = 0;
  std::optional<ActorRegion> state_;
  TemporaryRegion* scratch_ = nullptr;
  std::vector<uint64_t*> remembered_;
};

uint64_t TargetOps() {
  if (const char* env = std::getenv("BROOM_SOAK_OPS")) return std::strtoull(env, nullptr, 10);
  return 10'000'000;
}

TEST(SoakTest, TenMillionOperationsAcrossTwoThreadsLoseNothing) {
  const uint64_t target = TargetOps();
  const GlobalStats before = GetGlobalStats();
  Channel a_to_b, b_to_a;
  Shared shared;
  Operator a(0, &b_to_a, &a_to_b, target / 2, &shared);
  Operator b(1, &a_to_b, &b_to_a, target / 2, &shared);
  auto start = std::chrono::steady_clock::now();
  std::thread ta([&] { a.Run(); });
  std::thread tb([&] { b.Run(); });
  ta.join();
  tb.join();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_FALSE(shared.failed.load()) << shared.what;
  const uint64_t ops = a.ops() + b.ops();
  std::printf("soak: %llu operations, %llu messages in %.2f s (%.1f M ops/s)\n",
              static_cast<unsigned long long>(ops),
              static_cast<unsigned long long>(a.messages() + b.messages()), seconds,
              static_cast<double>(ops) / seconds / 1e6);
  EXPECT_GE(ops, target);
  EXPECT_EQ(a_to_b.size(), 0u);
  EXPECT_EQ(b_to_a.size(), 0u);
  EXPECT_EQ(shared.in_flight.load(), 0);

  // Nothing lost: every region created was destroyed, and block accounting balances.
  const GlobalStats after = GetGlobalStats();
  for (int k = 0; k < kNumRegionKinds; ++k) {
    RegionKind kind = static_cast<RegionKind>(k);
    EXPECT_EQ(after.live(kind), before.live(kind)) << KindName(kind);
    EXPECT_GT(after.regions_created[k], before.regions_created[k]) << KindName(kind);
  }
  EXPECT_EQ(after.block_bytes, before.block_bytes);
  // Every free block is accounted for: with all of it released, nothing stays cached, and what
  // was returned to the OS is within what was ever committed.
  ReleaseFreeMemory(/*all=*/true);
  const GlobalStats released = GetGlobalStats();
  EXPECT_EQ(released.cached_bytes, 0u);
  EXPECT_LE(released.purged_bytes + released.block_bytes, released.committed_bytes);
  EXPECT_GE(released.purged_bytes, after.cached_bytes);
}

}  // namespace
}  // namespace broom
