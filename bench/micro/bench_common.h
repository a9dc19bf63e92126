// Copyright Broom authors.
//
// bench_common.h: what every micro-benchmark file shares.
//
//   LibcMalloc/LibcFree   glibc's own allocator. libbroom links Debian's jemalloc, which
//                         replaces `malloc` for the whole process, so glibc's allocator is only
//                         reachable through its internal entry points __libc_malloc/__libc_free.
//   kMixedSizes           a fixed pseudo-random table of sizes in [16, 256] (the "mixed" case).
//   SizeAt<kSize>(i)      kSize for a fixed size, or kMixedSizes[i % table] for kSize == 0.
//   Touch(p, i)           the one write every contender does to every object it hands out.
//   SpscQueue<T>          a bounded single-producer/single-consumer ring (the handoff channel).
//   Register*()           one per benchmark file; main.cc calls them in a fixed order so the
//                         rivals of each scenario run (and print) side by side.
//
// Benchmark names follow `<scenario>/<parameters>/<contender>`; bench/tools/format_micro.py
// relies on that (the last component is the contender, the rest is the scenario), and on the
// counter `objects` (objects per iteration) to turn time per iteration into time per object.
#ifndef BROOM_BENCH_MICRO_BENCH_COMMON_H_
#define BROOM_BENCH_MICRO_BENCH_COMMON_H_

#include <benchmark/benchmark.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>
#include <optional>
#include <thread>
#include <utility>

#if BROOM_BENCH_HAVE_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

extern "C" {
void* __libc_malloc(size_t size);  // NOLINT(bugprone-reserved-identifier): glibc's own malloc
void __libc_free(void* p);         // NOLINT(bugprone-reserved-identifier)
}

namespace broom::bench {

inline void* LibcMalloc(size_t size) { return __libc_malloc(size); }
inline void LibcFree(void* p) { __libc_free(p); }

// Object counts per iteration for the allocation benchmarks.
inline constexpr int64_t kSmallBatch = 4096;
inline constexpr int64_t kLargeBatch = 100000;

inline constexpr size_t kMixedTableSize = 4096;  // a power of two

// Sizes uniform in [16, 256] from a fixed 64-bit LCG (Knuth's MMIX constants), so every run
// and every contender sees the same sequence. Mean about 136 bytes.
constexpr std::array<uint16_t, kMixedTableSize> MakeMixedSizes() {
  std::array<uint16_t, kMixedTableSize> sizes{};
  uint64_t x = 0x2545f4914f6cdd1dull;
  for (auto& s : sizes) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    s = static_cast<uint16_t>(16 + (x >> 33) % 241);
  }
  return sizes;
}
inline constexpr std::array<uint16_t, kMixedTableSize> kMixedSizes = MakeMixedSizes();

template <size_t kSize>
inline size_t SizeAt(size_t i) {
  if constexpr (kSize == 0) {
    return kMixedSizes[i & (kMixedTableSize - 1)];
  } else {
    (void)i;
    return kSize;
  }
}

// One 8-byte write at the start of the object: identical for every contender.
inline void Touch(void* p, uint64_t value) { *static_cast<volatile uint64_t*>(p) = value; }

// Sets the counters format_micro.py reads and the items/s column of the console output.
inline void ReportObjects(benchmark::State& state, int64_t objects_per_iteration) {
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * objects_per_iteration);
  state.counters["objects"] = benchmark::Counter(static_cast<double>(objects_per_iteration));
}

// Bounded single-producer/single-consumer ring. Push blocks while full, Pop while empty
// (spinning briefly, then yielding: the VM has two cores and both threads are busy).
//
// Thread-safety: exactly one thread calls Push and exactly one (other) thread calls Pop.
template <class T, size_t kCapacity = 64>
class SpscQueue {
  static_assert((kCapacity & (kCapacity - 1)) == 0, "capacity must be a power of two");

 public:
  SpscQueue() = default;
  SpscQueue(const SpscQueue&) = delete;
  SpscQueue& operator=(const SpscQueue&) = delete;

  void Push(T value) {
    const uint64_t tail = tail_.load(std::memory_order_relaxed);
    for (int spins = 0; tail - head_.load(std::memory_order_acquire) == kCapacity; ++spins) {
      Backoff(spins);
    }
    slots_[tail & (kCapacity - 1)].emplace(std::move(value));
    tail_.store(tail + 1, std::memory_order_release);
  }

  T Pop() {
    const uint64_t head = head_.load(std::memory_order_relaxed);
    for (int spins = 0; tail_.load(std::memory_order_acquire) == head; ++spins) Backoff(spins);
    std::optional<T>& slot = slots_[head & (kCapacity - 1)];
    T value = std::move(*slot);
    slot.reset();
    head_.store(head + 1, std::memory_order_release);
    return value;
  }

 private:
  static void Backoff(int spins) {
    if (spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
    } else {
      std::this_thread::yield();
    }
  }

  alignas(64) std::atomic<uint64_t> head_{0};  // next slot to pop; written by the consumer
  alignas(64) std::atomic<uint64_t> tail_{0};  // next slot to fill; written by the producer
  alignas(64) std::optional<T> slots_[kCapacity];
};

void RegisterRegionAllocBenchmarks();
void RegisterBulkFreeBenchmarks();
void RegisterRegionCreateBenchmarks();
void RegisterHandoffBenchmarks();

}  // namespace broom::bench

#endif  // BROOM_BENCH_MICRO_BENCH_COMMON_H_
