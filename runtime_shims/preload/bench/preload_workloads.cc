// Copyright Broom authors.
//
// Allocation-heavy workloads for comparing malloc implementations under LD_PRELOAD. The binary
// links no allocator: run it plain (glibc) or with LD_PRELOAD of jemalloc, mimalloc, tcmalloc
// or libbroom_preload.so. Prints "seconds=<wall time of the workload> hwm_kb=<peak RSS>
// checksum=<n>".
//
//   preload_workloads churn    [scale]            one thread, random sizes 16..512 B, ring of 1024
//   preload_workloads prodcons [scale] [regions]  producer and consumer threads; batches of 256
//                                                 messages; with "regions" (and the preload) each
//                                                 batch is a transferable region handed over
//   preload_workloads larson   [scale]            larson-style server: threads churn a shared set
//                                                 of slots and hand it to the next round's threads
//   preload_workloads mixed    [scale]            2 threads, 16 B..1 MiB mixed sizes with realloc
//   preload_workloads pairs    [scale]            microloop: 100 M malloc(32..95) + free through a
//                                                 ring of 256, 1 thread
//   preload_workloads newdelete [scale]           microloop: 100 M operator new(32..95) + sized
//                                                 delete through a ring of 256, 1 thread
// Also prints cpu=<CPU seconds of the workload> (user + system, all threads).
#define BROOM_C_WEAK
#include <time.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <new>
#include <thread>
#include <vector>

#include "broom/c/broom.h"

namespace {

struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9e3779b97f4a7c15ull + 1) {}
  uint64_t Next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
};

uint64_t Churn(double scale) {
  const long n = static_cast<long>(20000000 * scale);
  void* ring[1024] = {};
  Rng rng(1);
  uint64_t sum = 0;
  for (long i = 0; i < n; ++i) {
    size_t slot = static_cast<size_t>(i) & 1023;
    std::free(ring[slot]);
    size_t size = 16 + rng.Next() % 497;
    char* p = static_cast<char*>(std::malloc(size));
    p[0] = static_cast<char>(i);
    sum += static_cast<unsigned char>(p[0]);
    ring[slot] = p;
  }
  for (void* p : ring) std::free(p);
  return sum;
}

// Keeps the compiler from eliding a malloc/free or new/delete pair.
inline void Escape(void* p) { asm volatile("" : : "r"(p) : "memory"); }

// The interposition cost in isolation: nothing but allocation calls, all served by the
// allocator's thread cache. Each iteration frees the object allocated kPairsRing iterations
// earlier: with a single live object per size class, every free would hit the same few
// addresses, and allocators that treat some addresses specially (jemalloc's sized free leaves
// its fast path for page-aligned pointers) would measure the luck of the heap layout.
constexpr size_t kPairsRing = 256;

uint64_t Pairs(double scale) {
  const long n = static_cast<long>(100000000 * scale);
  void* ring[kPairsRing] = {};
  Rng rng(2);
  uint64_t sum = 0;
  for (long i = 0; i < n; ++i) {
    size_t slot = static_cast<size_t>(i) % kPairsRing;
    std::free(ring[slot]);
    size_t size = 32 + (rng.Next() & 63);  // no division: keep the loop cheap
    ring[slot] = std::malloc(size);
    Escape(ring[slot]);
    sum += size;
  }
  for (void* p : ring) std::free(p);
  return sum;
}

uint64_t NewDelete(double scale) {
  const long n = static_cast<long>(100000000 * scale);
  void* ring[kPairsRing] = {};
  size_t sizes[kPairsRing] = {};
  Rng rng(3);
  uint64_t sum = 0;
  for (long i = 0; i < n; ++i) {
    size_t slot = static_cast<size_t>(i) % kPairsRing;
    if (ring[slot] != nullptr) ::operator delete(ring[slot], sizes[slot]);
    size_t size = 32 + (rng.Next() & 63);  // no division: keep the loop cheap
    ring[slot] = ::operator new(size);
    sizes[slot] = size;
    Escape(ring[slot]);
    sum += size;
  }
  for (size_t i = 0; i < kPairsRing; ++i) ::operator delete(ring[i], sizes[i]);
  return sum;
}

struct Batch {
  broom_region_t* region;
  char** msgs;
  int n;
};

uint64_t ProdCons(double scale, bool regions) {
  const int batches = static_cast<int>(40000 * scale), per = 256;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Batch> q;
  bool done = false;
  std::thread producer([&] {
    Rng rng(2);
    for (int b = 0; b < batches; ++b) {
      Batch batch = {nullptr, nullptr, per};
      if (regions) {
        batch.region = broom_region_create(BROOM_TRANSFERABLE, nullptr);
        broom_region_push(batch.region);
      }
      batch.msgs = static_cast<char**>(std::malloc(sizeof(char*) * per));
      for (int i = 0; i < per; ++i) {
        size_t size = 32 + rng.Next() % 97;
        char* m = static_cast<char*>(std::malloc(size));
        std::memset(m, i, 16);
        batch.msgs[i] = m;
      }
      if (regions) {
        broom_region_pop(batch.region);
        broom_region_release(batch.region);
      }
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return q.size() < 64; });  // bounded: about 64 batches in flight
      q.push_back(batch);
      cv.notify_all();
    }
    std::lock_guard<std::mutex> lock(mu);
    done = true;
    cv.notify_all();
  });
  uint64_t sum = 0;
  std::thread consumer([&] {
    for (;;) {
      Batch batch;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return !q.empty() || done; });
        if (q.empty()) return;
        batch = q.front();
        q.pop_front();
        cv.notify_all();
      }
      if (batch.region != nullptr) broom_region_adopt(batch.region);
      for (int i = 0; i < batch.n; ++i) sum += static_cast<unsigned char>(batch.msgs[i][3]);
      if (batch.region != nullptr) {
        broom_region_destroy(batch.region);
      } else {
        for (int i = 0; i < batch.n; ++i) std::free(batch.msgs[i]);
        std::free(batch.msgs);
      }
    }
  });
  producer.join();
  consumer.join();
  return sum;
}

uint64_t Larson(double scale) {
  const int kThreads = 2, kSlots = 4000, kRounds = 10;
  const long ops = static_cast<long>(2500000 * scale);
  std::vector<std::vector<void*>> slots(kThreads, std::vector<void*>(kSlots, nullptr));
  uint64_t sum = 0;
  std::mutex sum_mu;
  for (int round = 0; round < kRounds; ++round) {
    // Each round's threads take over the slots of the previous round's: frees of objects that
    // other threads allocated, as in a server handing connections between workers.
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t, round] {
        Rng rng(static_cast<uint64_t>(round * 16 + t + 3));
        std::vector<void*>& mine = slots[(t + round) % kThreads];
        uint64_t local = 0;
        for (long i = 0; i < ops; ++i) {
          size_t k = rng.Next() % kSlots;
          std::free(mine[k]);
          size_t size = 8 + rng.Next() % 249;
          char* p = static_cast<char*>(std::malloc(size));
          p[size - 1] = 1;
          local += static_cast<unsigned char>(p[size - 1]);
          mine[k] = p;
        }
        std::lock_guard<std::mutex> lock(sum_mu);
        sum += local;
      });
    }
    for (auto& th : threads) th.join();
  }
  for (auto& v : slots) {
    for (void* p : v) std::free(p);
  }
  return sum;
}

uint64_t Mixed(double scale) {
  const long ops = static_cast<long>(1500000 * scale);
  uint64_t sums[2] = {};
  auto work = [&](int id) {
    const int kSlots = 4096;
    std::vector<char*> slots(kSlots, nullptr);
    std::vector<size_t> sizes(kSlots, 0);
    Rng rng(static_cast<uint64_t>(id + 7));
    for (long i = 0; i < ops; ++i) {
      size_t k = rng.Next() % kSlots;
      uint64_t r = rng.Next() % 100;
      size_t size = r < 80   ? 16 + rng.Next() % 113
                    : r < 95 ? 1024 + rng.Next() % 15360
                             : 65536 + rng.Next() % (1 << 20);
      if (slots[k] != nullptr && r % 10 == 0) {
        slots[k] = static_cast<char*>(std::realloc(slots[k], size));
      } else {
        std::free(slots[k]);
        slots[k] = static_cast<char*>(std::malloc(size));
      }
      sizes[k] = size;
      slots[k][0] = static_cast<char>(i);
      slots[k][size - 1] = 2;
      sums[id] += static_cast<unsigned char>(slots[k][size - 1]);
    }
    for (char* p : slots) std::free(p);
  };
  std::thread a(work, 0), b(work, 1);
  a.join();
  b.join();
  return sums[0] + sums[1];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: %s churn|prodcons|larson|mixed|pairs|newdelete [scale] [regions]\n",
                 argv[0]);
    return 2;
  }
  double scale = argc > 2 ? std::atof(argv[2]) : 1.0;
  if (scale <= 0) scale = 1.0;
  bool regions = argc > 3 && std::strcmp(argv[3], "regions") == 0;
  if (regions && !(broom_available() && broom_is_active())) {
    std::fprintf(stderr, "regions requested but libbroom_preload.so is not loaded\n");
    return 2;
  }
  timespec c0;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
  auto t0 = std::chrono::steady_clock::now();
  uint64_t sum;
  if (std::strcmp(argv[1], "churn") == 0) {
    sum = Churn(scale);
  } else if (std::strcmp(argv[1], "prodcons") == 0) {
    sum = ProdCons(scale, regions);
  } else if (std::strcmp(argv[1], "larson") == 0) {
    sum = Larson(scale);
  } else if (std::strcmp(argv[1], "mixed") == 0) {
    sum = Mixed(scale);
  } else if (std::strcmp(argv[1], "pairs") == 0) {
    sum = Pairs(scale);
  } else if (std::strcmp(argv[1], "newdelete") == 0) {
    sum = NewDelete(scale);
  } else {
    std::fprintf(stderr, "unknown workload %s\n", argv[1]);
    return 2;
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  timespec c1;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
  double cpu = static_cast<double>(c1.tv_sec - c0.tv_sec) +
               1e-9 * static_cast<double>(c1.tv_nsec - c0.tv_nsec);
  // Peak RSS of this program: VmHWM of its own address space. (getrusage's ru_maxrss would also
  // count the pre-exec address space of the launching process, e.g. a Python runner.)
  long hwm_kb = -1;
  if (FILE* f = std::fopen("/proc/self/status", "r")) {
    char line[256];
    while (std::fgets(line, sizeof(line), f) != nullptr) {
      if (std::strncmp(line, "VmHWM:", 6) == 0) hwm_kb = std::atol(line + 6);
    }
    std::fclose(f);
  }
  std::printf("seconds=%.4f cpu=%.4f hwm_kb=%ld checksum=%llu\n", secs, cpu, hwm_kb,
              static_cast<unsigned long long>(sum));
  return 0;
}
