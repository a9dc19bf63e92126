// Copyright Broom authors.
//
// Producer/consumer: objects allocated on one thread and freed on another. With the argument
// "region" and the preload present, each batch is built in a transferable region that is
// released by the producer and adopted and destroyed by the consumer. Prints a checksum that
// does not depend on the mode.
#define BROOM_C_WEAK
#include "broom/c/broom.h"

#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

struct Batch {
  broom_region_t* region = nullptr;
  std::vector<std::string>* records = nullptr;
};

int main(int argc, char** argv) {
  bool use_regions = argc > 1 && std::strcmp(argv[1], "region") == 0 && broom_available() &&
                     broom_is_active();
  const int kBatches = 2000, kPerBatch = 200, kProducers = 2;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Batch> queue;
  int done_producers = 0;
  auto produce = [&](int id) {
    for (int b = 0; b < kBatches / kProducers; ++b) {
      Batch batch;
      if (use_regions) {
        batch.region = broom_region_create(BROOM_TRANSFERABLE, nullptr);
        broom_region_push(batch.region);
      }
      batch.records = new std::vector<std::string>();
      for (int i = 0; i < kPerBatch; ++i) {
        batch.records->push_back("record-" + std::to_string(id) + "-" + std::to_string(b) + "-" +
                                 std::to_string(i) + std::string(i % 50, 'x'));
      }
      if (use_regions) {
        broom_region_pop(batch.region);
        broom_region_release(batch.region);
      }
      std::lock_guard<std::mutex> lock(mu);
      queue.push_back(batch);
      cv.notify_one();
    }
    std::lock_guard<std::mutex> lock(mu);
    ++done_producers;
    cv.notify_one();
  };
  unsigned long long checksum = 0;
  size_t batches = 0;
  std::thread consumer([&] {
    for (;;) {
      Batch batch;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return !queue.empty() || done_producers == kProducers; });
        if (queue.empty()) return;
        batch = queue.front();
        queue.pop_front();
      }
      if (batch.region != nullptr) broom_region_adopt(batch.region);
      unsigned long long h = 0;  // per batch, then summed: independent of arrival order
      for (const std::string& s : *batch.records) {
        for (char c : s) h = h * 131 + static_cast<unsigned char>(c);
      }
      checksum += h;
      ++batches;
      if (batch.region != nullptr) {
        broom_region_destroy(batch.region);  // every record at once
      } else {
        delete batch.records;  // one free per record, on this thread
      }
    }
  });
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) producers.emplace_back(produce, p);
  for (auto& t : producers) t.join();
  consumer.join();
  std::printf("batches=%zu checksum=%llu\n", batches, checksum);
  return batches == kBatches ? 0 : 1;
}
