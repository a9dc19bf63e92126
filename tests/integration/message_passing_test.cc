// Integration: a million messages through transferable regions between threads, public API only.
#include <gtest/gtest.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "broom/broom.h"

namespace broom {
namespace {

struct Record {
  uint64_t key;
  uint64_t value;
};

struct Batch {
  using allocator_type = std::pmr::polymorphic_allocator<std::byte>;
  explicit Batch(const allocator_type& a) : records(a) {}
  uint64_t seq = 0;
  std::pmr::vector<Record> records;
};

// A bounded queue; moving a Message into it hands the region to the consumer.
template <class T>
class BoundedQueue {
 public:
  explicit BoundedQueue(size_t cap) : cap_(cap) {}
  void Push(T v) {
    std::unique_lock<std::mutex> l(mu_);
    not_full_.wait(l, [&] { return q_.size() < cap_; });
    q_.push_back(std::move(v));
    not_empty_.notify_one();
  }
  T Pop() {
    std::unique_lock<std::mutex> l(mu_);
    not_empty_.wait(l, [&] { return !q_.empty(); });
    T v = std::move(q_.front());
    q_.pop_front();
    not_full_.notify_one();
    return v;
  }

 private:
  size_t cap_;
  std::mutex mu_;
  std::condition_variable not_full_, not_empty_;
  std::deque<T> q_;
};

TEST(MessagePassingTest, MillionMessagesBetweenThreadsNothingLostNothingLeaked) {
  constexpr uint64_t kMessages = 1'000'000;
  constexpr int kProducers = 2;
  GlobalStats before = GetGlobalStats();
  BoundedQueue<Message<Batch>> queue(64);
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      for (uint64_t i = p; i < kMessages; i += kProducers) {
        auto m = Message<Batch>::Create();
        m->seq = i;
        {
          auto open = m.Open();
          size_t n = 1 + i % 8;
          for (size_t k = 0; k < n; ++k) m->records.push_back({i, k});
        }
        queue.Push(std::move(m));
      }
    });
  }
  uint64_t seq_sum = 0, records = 0, value_sum = 0;
  std::thread consumer([&] {
    for (uint64_t i = 0; i < kMessages; ++i) {
      Message<Batch> m = queue.Pop();
      seq_sum += m->seq;
      for (const Record& r : m->records) {
        ASSERT_EQ(r.key, m->seq);
        value_sum += r.value;
        ++records;
      }
      // m goes out of scope: the region is freed in bulk on the consumer thread.
    }
  });
  for (auto& t : producers) t.join();
  consumer.join();
  uint64_t expected_records = 0, expected_values = 0;
  for (uint64_t i = 0; i < kMessages; ++i) {
    uint64_t n = 1 + i % 8;
    expected_records += n;
    expected_values += n * (n - 1) / 2;
  }
  EXPECT_EQ(seq_sum, kMessages * (kMessages - 1) / 2);
  EXPECT_EQ(records, expected_records);
  EXPECT_EQ(value_sum, expected_values);
  GlobalStats after = GetGlobalStats();
  EXPECT_EQ(after.regions_created[0] - before.regions_created[0], kMessages);
  EXPECT_EQ(after.live(RegionKind::kTransferable), before.live(RegionKind::kTransferable));
  // Producers' and consumer's thread caches and the pool hold the blocks; nothing is held by
  // a region any more. (Block accounting is folded per thread in 1 MiB steps.)
  EXPECT_LE(after.block_bytes, before.block_bytes + (size_t{4} << 20));
}

}  // namespace
}  // namespace broom
