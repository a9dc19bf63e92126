// Copyright Broom authors.
//
// contenders.h: the allocators compared by the allocate-then-free benchmarks
// (region_alloc_benchmark.cc, bulk_free_benchmark.cc): Broom's region kinds, the bump floor,
// and the rivals that can live in the same process as libbroom (glibc via __libc_malloc,
// jemalloc via mallocx, std::pmr resources, protobuf's Arena). Rivals that replace malloc
// (mimalloc, tcmalloc) run in bench/baselines/ binaries. Each is a struct with
//
//   Handle Begin()                        start a batch (create the region, open the scope);
//                                         returns a small value the hot loop keeps in a register
//   static void* Allocate(Handle, size)   one small object, 16-byte aligned
//   template <size_t kSize>
//   void End(void** ptrs, size_t n)       free the batch: in bulk (regions) or one by one
//                                         (general allocators: ptrs[i] has size SizeAt<kSize>(i))
//   void Teardown()                       whatever must happen after End and is not part of the
//                                         measured free (only ActorFreeEach uses it)
//   static constexpr const char* kName    the contender's column in the results table
//
// The benchmark loops, shared by all of them, are in scenarios.h, so every contender does
// the same work per object: allocate, write one word, store the pointer, DoNotOptimize.
#ifndef BROOM_BENCH_MICRO_CONTENDERS_H_
#define BROOM_BENCH_MICRO_CONTENDERS_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory_resource>
#include <optional>

#if BROOM_BENCH_HAVE_PROTOBUF
#include <google/protobuf/arena.h>
#endif

#include "bench/micro/bench_common.h"
#include "bench/micro/scenarios.h"
#include "broom/actor_region.h"
#include "broom/temporary_region.h"
#include "broom/transferable_region.h"

namespace broom::bench {

// A bump pointer into a pre-faulted buffer that is reused (warm) by every batch: the floor.
// Its state lives in a heap object reached through a pointer, like any allocator's (a cursor on
// the stack would get store-to-load forwarding for free on AMD Zen's memory renaming, which no
// real allocator object gets), and it hands out 16-aligned memory as the others do: sizes are
// rounded up to 16 (folded at compile time for constant sizes) so the cursor stays aligned.
class BumpFloor {
 public:
  static constexpr const char* kName = "bump_floor";
  struct Arena {
    char* cursor;
    char* limit;
  };
  using Handle = Arena*;

  // `bytes`: the most a batch will take (including alignment padding).
  explicit BumpFloor(size_t bytes)
      : buffer_(static_cast<char*>(LibcMalloc(bytes + 16))),
        arena_(static_cast<Arena*>(LibcMalloc(sizeof(Arena)))) {
    std::memset(buffer_, 0x5a, bytes + 16);  // pre-fault every page
    base_ = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(buffer_) + 15) & ~uintptr_t{15});
    arena_->limit = base_ + bytes;
    arena_->cursor = base_;
    benchmark::DoNotOptimize(arena_);
  }
  ~BumpFloor() {
    LibcFree(arena_);
    LibcFree(buffer_);
  }
  BumpFloor(const BumpFloor&) = delete;
  BumpFloor& operator=(const BumpFloor&) = delete;

  Handle Begin() { return arena_; }
  static void* Allocate(Handle a, size_t size) {
    const size_t n = (size + 15) & ~size_t{15};
    char* p = a->cursor;
    if (__builtin_expect(static_cast<size_t>(a->limit - p) < n, 0)) return nullptr;
    a->cursor = p + n;
    return p;
  }
  template <size_t kSize>
  void End(void**, size_t) {
    arena_->cursor = base_;  // "bulk free" of a bump region: one store
  }
  void Teardown() {}

 private:
  char* buffer_;
  char* base_;
  Arena* arena_;
};

// TransferableRegion: create, fill, Free (the life of one message).
class BroomTransferable {
 public:
  static constexpr const char* kName = "broom_transferable";
  using Handle = BumpRegion*;
  explicit BroomTransferable(size_t) {}
  Handle Begin() {
    region_.emplace();
    return &region_->region();
  }
  static void* Allocate(Handle r, size_t size) { return r->Allocate(size); }
  template <size_t kSize>
  void End(void**, size_t) {
    region_->Free();
  }
  void Teardown() { region_.reset(); }

 private:
  std::optional<TransferableRegion> region_;
};

// TemporaryRegion::Scope: the region lives across batches; each batch is one scope, whose exit
// frees everything and keeps up to RegionOptions::retain_bytes (1 MiB) of blocks warm.
class BroomTemporaryScope {
 public:
  static constexpr const char* kName = "broom_temporary_scope";
  using Handle = BumpRegion*;
  explicit BroomTemporaryScope(size_t) {}
  Handle Begin() {
    scope_.emplace(temporary_);
    return &temporary_.region();
  }
  static void* Allocate(Handle r, size_t size) { return r->Allocate(size); }
  template <size_t kSize>
  void End(void**, size_t) {
    scope_.reset();
  }
  void Teardown() {}

 private:
  TemporaryRegion temporary_;
  std::optional<TemporaryRegion::Scope> scope_;
};

// ActorRegion: create, fill (size classes), destroy the region (bulk).
class BroomActor {
 public:
  static constexpr const char* kName = "broom_actor";
  using Handle = ReapRegion*;
  explicit BroomActor(size_t) {}
  Handle Begin() {
    region_.emplace();
    return &region_->region();
  }
  static void* Allocate(Handle r, size_t size) { return r->Allocate(size); }
  template <size_t kSize>
  void End(void**, size_t) {
    region_.reset();
  }
  void Teardown() {}

 private:
  std::optional<ActorRegion> region_;
};

// ActorRegion, freeing each object with ActorRegion::Free (the reap's per-object path). The
// region itself is destroyed in Teardown, outside the measured free.
class BroomActorFreeEach {
 public:
  static constexpr const char* kName = "broom_actor_free_each";
  using Handle = ReapRegion*;
  explicit BroomActorFreeEach(size_t) {}
  Handle Begin() {
    region_.emplace();
    return &region_->region();
  }
  static void* Allocate(Handle r, size_t size) { return r->Allocate(size); }
  template <size_t kSize>
  void End(void** ptrs, size_t n) {
    ActorRegion& region = *region_;
    for (size_t i = 0; i < n; ++i) region.Free(ptrs[i]);
  }
  void Teardown() { region_.reset(); }

 private:
  std::optional<ActorRegion> region_;
};

// glibc malloc + free, through __libc_malloc/__libc_free (see bench_common.h).
class Glibc {
 public:
  static constexpr const char* kName = "glibc";
  struct Handle {};
  explicit Glibc(size_t) {}
  Handle Begin() { return {}; }
  static void* Allocate(Handle, size_t size) { return LibcMalloc(size); }
  template <size_t kSize>
  void End(void** ptrs, size_t n) {
    for (size_t i = 0; i < n; ++i) LibcFree(ptrs[i]);
  }
  void Teardown() {}
};

#if BROOM_BENCH_HAVE_JEMALLOC
// jemalloc mallocx + sdallocx (sized free: jemalloc's fastest per-object path).
class Jemalloc {
 public:
  static constexpr const char* kName = "jemalloc";
  struct Handle {};
  explicit Jemalloc(size_t) {}
  Handle Begin() { return {}; }
  static void* Allocate(Handle, size_t size) { return mallocx(size, 0); }
  template <size_t kSize>
  void End(void** ptrs, size_t n) {
    for (size_t i = 0; i < n; ++i) sdallocx(ptrs[i], SizeAt<kSize>(i), 0);
  }
  void Teardown() {}
};
#endif

// A std::pmr resource reused by every batch; End is release() (bulk, returning its buffers
// upstream). Upstream is operator new, so jemalloc in this binary.
template <class Resource>
class PmrReleasing {
 public:
  using Handle = Resource*;
  explicit PmrReleasing(size_t) {}
  Handle Begin() { return &resource_; }
  static void* Allocate(Handle r, size_t size) { return r->allocate(size, 16); }
  template <size_t kSize>
  void End(void**, size_t) {
    resource_.release();
  }
  void Teardown() {}

 protected:
  Resource resource_;
};

// monotonic_buffer_resource: the next batch grows its buffers again from the initial size.
class PmrMonotonic : public PmrReleasing<std::pmr::monotonic_buffer_resource> {
 public:
  static constexpr const char* kName = "pmr_monotonic";
  using PmrReleasing::PmrReleasing;
};

// std::pmr::monotonic_buffer_resource given a warm, pre-faulted buffer big enough for the whole
// batch (its best case: no upstream call at all), rebuilt on it for every batch.
class PmrMonotonicBuffer {
 public:
  static constexpr const char* kName = "pmr_monotonic_buffer";
  using Handle = std::pmr::monotonic_buffer_resource*;
  explicit PmrMonotonicBuffer(size_t bytes)
      : size_(bytes + 4096), buffer_(static_cast<char*>(LibcMalloc(size_))) {
    std::memset(buffer_, 0x5a, size_);
  }
  ~PmrMonotonicBuffer() { LibcFree(buffer_); }
  PmrMonotonicBuffer(const PmrMonotonicBuffer&) = delete;
  PmrMonotonicBuffer& operator=(const PmrMonotonicBuffer&) = delete;
  Handle Begin() { return &resource_.emplace(buffer_, size_); }
  static void* Allocate(Handle r, size_t size) { return r->allocate(size, 16); }
  template <size_t kSize>
  void End(void**, size_t) {
    resource_.reset();
  }
  void Teardown() {}

 private:
  size_t size_;
  char* buffer_;
  std::optional<std::pmr::monotonic_buffer_resource> resource_;
};

// unsynchronized_pool_resource, one per contender object; End is release() (bulk).
class PmrPool : public PmrReleasing<std::pmr::unsynchronized_pool_resource> {
 public:
  static constexpr const char* kName = "pmr_pool";
  using PmrReleasing::PmrReleasing;
};

// unsynchronized_pool_resource, freeing each object with deallocate (its per-object path).
class PmrPoolFreeEach : public PmrPool {
 public:
  static constexpr const char* kName = "pmr_pool_free_each";
  explicit PmrPoolFreeEach(size_t bytes) : PmrPool(bytes) {}
  template <size_t kSize>
  void End(void** ptrs, size_t n) {
    for (size_t i = 0; i < n; ++i) resource_.deallocate(ptrs[i], SizeAt<kSize>(i), 16);
  }
};

#if BROOM_BENCH_HAVE_PROTOBUF
// protobuf's Arena (3.21), raw allocation with AllocateAligned(size) at its native 8-byte
// alignment (asking for 16 would make it over-allocate 8 bytes per object; 8 is the rival's
// best case). One arena reused by every batch; End is Reset() (frees its blocks to malloc).
class ProtobufArena {
 public:
  static constexpr const char* kName = "protobuf_arena";
  using Handle = google::protobuf::Arena*;
  explicit ProtobufArena(size_t) {}
  Handle Begin() { return &arena_; }
  static void* Allocate(Handle a, size_t size) { return a->AllocateAligned(size); }
  template <size_t kSize>
  void End(void**, size_t) {
    arena_.Reset();
  }
  void Teardown() {}

 private:
  google::protobuf::Arena arena_;
};
#endif

}  // namespace broom::bench

#endif  // BROOM_BENCH_MICRO_CONTENDERS_H_
