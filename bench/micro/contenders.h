// Copyright Broom authors.
//
// contenders.h: the allocators compared by the allocate-then-free benchmarks
// (region_alloc_benchmark.cc, bulk_free_benchmark.cc). Each is a struct with
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
// The benchmark loop, shared by all of them, is in RunBatch below, so every contender does
// the same work per object: allocate, write one word, store the pointer, DoNotOptimize.
#ifndef BROOM_BENCH_MICRO_CONTENDERS_H_
#define BROOM_BENCH_MICRO_CONTENDERS_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>

#include "bench/micro/bench_common.h"
#include "broom/actor_region.h"
#include "broom/temporary_region.h"
#include "broom/transferable_region.h"

namespace broom::bench {

// A bump pointer into a pre-faulted buffer that is reused (warm) by every batch: the floor.
// Its state lives in a heap object reached through a pointer, like any allocator's (a cursor on
// the stack would get store-to-load forwarding for free on AMD Zen's memory renaming, which no
// real allocator object gets), and it aligns to 16 as the others do.
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
    char* p = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(a->cursor) + 15) & ~uintptr_t{15});
    if (__builtin_expect(static_cast<size_t>(a->limit - p) < size, 0)) return nullptr;
    a->cursor = p + size;
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
  using Handle = Region*;
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
  using Handle = Region*;
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
  using Handle = Region*;
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
  using Handle = Region*;
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

// Fills one batch of n objects: allocate, write one word, remember the pointer. The pointer
// array is written by every contender (a program keeps references to what it allocates); only
// the general allocators read it back, to free.
//
// kWholeObject: initialize every byte (as a constructor would) instead of one word. Used where
// only the free is timed; see bulk_free_benchmark.cc for why it matters to ActorRegion::Free.
template <class C, size_t kSize, bool kWholeObject = false>
inline void FillBatch(typename C::Handle h, void** ptrs, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const size_t size = SizeAt<kSize>(i);
    void* p = C::Allocate(h, size);
    if constexpr (kWholeObject) std::memset(p, static_cast<int>(i & 0x7f), size);
    Touch(p, i);
    ptrs[i] = p;
    benchmark::DoNotOptimize(p);
  }
  benchmark::ClobberMemory();
}

// Bytes a batch of n objects takes in a bump allocator aligning to 16.
template <size_t kSize>
size_t BatchBytes(size_t n) {
  size_t total = 0;
  for (size_t i = 0; i < n; ++i) total += (SizeAt<kSize>(i) + 15) & ~size_t{15};
  return total;
}

}  // namespace broom::bench

#endif  // BROOM_BENCH_MICRO_CONTENDERS_H_
