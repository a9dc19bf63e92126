// Copyright Broom authors.
//
// The C API (include/broom/c/broom.h) over the core's region handles.
//
// A broom_region_t owns one core handle (TransferableRegion, ActorRegion or TemporaryRegion).
// Its first member is the region's name, and the core region's RegionOptions::name points at
// it, so the core's diagnostics print the name and HandleOf(Region*) finds the handle in O(1).
#include <errno.h>
#include <pthread.h>

#include <cstring>
#include <new>

#include "broom/actor_region.h"
#include "broom/c/broom.h"
#include "broom/internal/block.h"
#include "broom/memory.h"
#include "broom/temporary_region.h"
#include "broom/transferable_region.h"
#include "runtime_shims/preload/backend.h"
#include "runtime_shims/preload/shim.h"

namespace {

constexpr uint32_t kHandleMagic = 0xb7001e5au;
constexpr uint32_t kDeadMagic = 0xdeadb700u;
enum : uint32_t { kOwned = 1, kInTransit = 2 };

}  // namespace

struct broom_region {
  char name[48];  // first: the core region's name() points here (see the file comment)
  uint32_t magic;
  broom_kind_t kind;
  std::atomic<uint32_t> state;
  std::atomic<uint32_t> owner;   // ThreadIndex() of the owner; 0 while in transit
  std::atomic<uint32_t> pushed;  // pushes not yet popped, over all threads
  size_t budget;
  broom::Region* region;
  union Storage {
    Storage() {}
    ~Storage() {}
    broom::TransferableRegion transferable;
    broom::ActorRegion actor;
    broom::TemporaryRegion temporary;
  } h;
};

namespace {

using broom::Region;
using broom::preload::ThreadIndex;

// Runs a block with t_internal set: exceptions and anything else that mallocs go to the heap.
struct InternalScope {
  bool saved = broom::preload::t_internal;
  InternalScope() { broom::preload::t_internal = true; }
  ~InternalScope() { broom::preload::t_internal = saved; }
};

struct Frame {
  broom_region* handle;
  bool temporary;
  alignas(broom::TemporaryRegion::Scope) unsigned char scope[sizeof(broom::TemporaryRegion::Scope)];
};
constexpr int kMaxFrames = broom::internal::kMaxContextDepth;
thread_local Frame* t_frames BROOM_IE_TLS = nullptr;
thread_local int t_depth BROOM_IE_TLS = 0;
pthread_key_t g_frames_key;
pthread_once_t g_frames_once = PTHREAD_ONCE_INIT;

void FreeFrames(void* frames) {
  // Regions still pushed at thread exit stay open (and cannot be destroyed): a program error.
  if (t_depth == 0) {
    broom::preload::JeFreeSized(frames, sizeof(Frame) * kMaxFrames, alignof(Frame));
    t_frames = nullptr;
  }
}
void MakeFramesKey() { pthread_key_create(&g_frames_key, &FreeFrames); }

Frame* Frames() {
  if (BROOM_LIKELY(t_frames != nullptr)) return t_frames;
  pthread_once(&g_frames_once, &MakeFramesKey);
  auto* f = static_cast<Frame*>(
      broom::preload::JeAllocAligned(sizeof(Frame) * kMaxFrames, alignof(Frame), false));
  if (f == nullptr) return nullptr;
  t_frames = f;
  pthread_setspecific(g_frames_key, f);
  return f;
}

bool Valid(const broom_region* h) { return h != nullptr && h->magic == kHandleMagic; }

// Checks that the caller may act on the region as its owner.
int CheckOwner(const broom_region* h) {
  if (!Valid(h)) return EINVAL;
  if (h->state.load(std::memory_order_acquire) != kOwned) return EINVAL;
  if (h->kind != BROOM_ACTOR && h->owner.load(std::memory_order_relaxed) != ThreadIndex()) {
    return EINVAL;
  }
  return 0;
}

broom_region* HandleOf(Region* r) {
  if (r == nullptr) return nullptr;
  auto* h = reinterpret_cast<broom_region*>(const_cast<char*>(r->name()));
  return Valid(h) && h->region == r ? h : nullptr;
}

bool MakeRegion(broom_region* h) {
  broom::RegionOptions o;
  o.budget_bytes = h->budget;
  o.name = h->name;
  InternalScope internal;
  try {
    switch (h->kind) {
      case BROOM_TRANSFERABLE:
        new (&h->h.transferable) broom::TransferableRegion(o);
        h->region = &h->h.transferable.region();
        break;
      case BROOM_ACTOR:
        new (&h->h.actor) broom::ActorRegion(o);
        h->region = &h->h.actor.region();
        break;
      case BROOM_TEMPORARY:
        new (&h->h.temporary) broom::TemporaryRegion(o);
        h->region = &h->h.temporary.region();
        break;
    }
  } catch (const std::bad_alloc&) {
    return false;
  }
  return true;
}

void DestroyRegion(broom_region* h) {
  switch (h->kind) {
    case BROOM_TRANSFERABLE:
      h->h.transferable.~TransferableRegion();
      break;
    case BROOM_ACTOR:
      h->h.actor.~ActorRegion();
      break;
    case BROOM_TEMPORARY:
      h->h.temporary.~TemporaryRegion();
      break;
  }
  h->region = nullptr;
}

}  // namespace

extern "C" {

int broom_is_active(void) { return BROOM_PRELOAD_INTERPOSES; }
const char* broom_version(void) { return "broom 0.1.0 (libbroom_preload)"; }

broom_region_t* broom_region_create(broom_kind_t kind, const broom_region_options_t* options) {
  if (kind != BROOM_TRANSFERABLE && kind != BROOM_ACTOR && kind != BROOM_TEMPORARY) {
    errno = EINVAL;
    return nullptr;
  }
  // From now on malloc/free check for pushed regions and region memory (see g_dispatch).
  if (!broom::preload::UseCheckedEntries()) {
    errno = ENOTSUP;  // a call site still bound straight to jemalloc (warned once on stderr)
    return nullptr;
  }
  void* mem = broom::preload::JeAllocAligned(sizeof(broom_region), alignof(broom_region), true);
  if (mem == nullptr) {
    errno = ENOMEM;
    return nullptr;
  }
  auto* h = new (mem) broom_region;
  if (options != nullptr && options->name != nullptr) {
    std::strncpy(h->name, options->name, sizeof(h->name) - 1);
  }
  h->kind = kind;
  h->budget = options != nullptr ? options->budget_bytes : 0;
  if (!MakeRegion(h)) {
    broom::preload::JeFreeSized(mem, sizeof(broom_region), alignof(broom_region));
    errno = ENOMEM;
    return nullptr;
  }
  h->state.store(kOwned, std::memory_order_relaxed);
  h->owner.store(ThreadIndex(), std::memory_order_relaxed);
  h->magic = kHandleMagic;
  broom::preload::g_regions_used.store(true, std::memory_order_relaxed);
  return h;
}

int broom_region_destroy(broom_region_t* h) {
  if (h == nullptr) return 0;
  if (int e = CheckOwner(h)) return e;
  if (h->pushed.load(std::memory_order_acquire) != 0) return EBUSY;
  {
    InternalScope internal;
    DestroyRegion(h);
  }
  h->magic = kDeadMagic;
  h->~broom_region();
  broom::preload::JeFreeSized(h, sizeof(broom_region), alignof(broom_region));
  return 0;
}

int broom_region_reset(broom_region_t* h) {
  if (int e = CheckOwner(h)) return e;
  if (h->pushed.load(std::memory_order_acquire) != 0) return EBUSY;
  InternalScope internal;
  switch (h->kind) {
    case BROOM_TRANSFERABLE:
      h->h.transferable.Reset();
      break;
    case BROOM_TEMPORARY:
      h->h.temporary.Reset();
      break;
    case BROOM_ACTOR:  // actor regions have no reset: replace the region
      DestroyRegion(h);
      if (!MakeRegion(h)) {
        // Keep the handle usable as an empty region is impossible: report and leave it dead.
        h->magic = kDeadMagic;
        return ENOMEM;
      }
      break;
  }
  return 0;
}

int broom_region_push(broom_region_t* h) {
  if (int e = CheckOwner(h)) return e;
  if (broom::internal::t_context.depth >= kMaxFrames) return EINVAL;
  Frame* frames = Frames();
  if (frames == nullptr) return ENOMEM;
  Frame& f = frames[t_depth];
  f.handle = h;
  f.temporary = h->kind == BROOM_TEMPORARY;
  if (f.temporary) {
    new (f.scope) broom::TemporaryRegion::Scope(h->h.temporary);
  } else {
    broom::internal::PushContext(h->region);
  }
  ++t_depth;
  h->pushed.fetch_add(1, std::memory_order_relaxed);
  return 0;
}

int broom_region_pop(broom_region_t* h) {
  if (!Valid(h) || t_depth == 0 || t_frames[t_depth - 1].handle != h) return EINVAL;
  Frame& f = t_frames[t_depth - 1];
  if (f.temporary) {
    reinterpret_cast<broom::TemporaryRegion::Scope*>(f.scope)->~Scope();
  } else {
    broom::internal::PopContext(h->region);
  }
  --t_depth;
  h->pushed.fetch_sub(1, std::memory_order_release);
  return 0;
}

broom_region_t* broom_current_region(void) { return HandleOf(broom::CurrentRegion()); }

int broom_region_release(broom_region_t* h) {
  if (int e = CheckOwner(h)) return e;
  if (h->kind != BROOM_TRANSFERABLE) return EINVAL;
  if (h->pushed.load(std::memory_order_acquire) != 0) return EBUSY;
  Region* r = h->h.transferable.Release();
  h->h.transferable.~TransferableRegion();
  h->region = r;
  h->owner.store(0, std::memory_order_relaxed);
  h->state.store(kInTransit, std::memory_order_release);
  return 0;
}

int broom_region_adopt(broom_region_t* h) {
  if (!Valid(h) || h->kind != BROOM_TRANSFERABLE) return EINVAL;
  uint32_t expected = kInTransit;
  if (!h->state.compare_exchange_strong(expected, kOwned, std::memory_order_acq_rel)) {
    return EINVAL;
  }
  new (&h->h.transferable) broom::TransferableRegion(broom::TransferableRegion::Adopt(h->region));
  h->owner.store(ThreadIndex(), std::memory_order_relaxed);
  return 0;
}

void* broom_region_alloc(broom_region_t* h, size_t size, size_t align) {
  if (CheckOwner(h) != 0 || (align & (align - 1)) != 0) {
    errno = EINVAL;
    return nullptr;
  }
  void* p = broom::preload::AllocateIn(h->region, size, align);
  if (p == nullptr) {
    errno = ENOMEM;
    return nullptr;
  }
  if (broom::preload::g_mode & broom::preload::kModeStats) {
    broom::preload::CountRegionMalloc(h->region->kind(), size);
  }
  return p;
}

broom_region_t* broom_region_of(const void* p) {
  if (!broom::internal::InSpace(p)) return nullptr;
  return HandleOf(broom::RegionOf(p));
}

int broom_region_stats(const broom_region_t* h, broom_region_stats_t* out) {
  if (!Valid(h) || out == nullptr) return EINVAL;
  broom::RegionStats s = h->region->stats();
  out->kind = h->kind;
  out->id = h->region->id();
  out->bytes_requested = s.bytes_requested;
  out->bytes_freed = s.bytes_freed;
  out->block_bytes = s.block_bytes;
  out->blocks = s.blocks;
  out->peak_block_bytes = s.peak_block_bytes;
  return 0;
}

int broom_global_stats(broom_global_stats_t* out) {
  if (out == nullptr) return EINVAL;
  std::memset(out, 0, sizeof(*out));
  // Before the first region the space does not exist, and asking the core would make it here,
  // on any thread, outside the fork gate (fork.h): report zeros instead.
  broom::GlobalStats g = {};
  if (broom::internal::g_space.end != 0) g = broom::GetGlobalStats();
  broom::preload::HeapCounters c = broom::preload::ReadCounters();
  for (int k = 0; k < broom::kNumRegionKinds; ++k) {
    out->regions_created[k] = g.regions_created[k];
    out->regions_destroyed[k] = g.regions_destroyed[k];
    out->regions_live[k] = g.regions_created[k] - g.regions_destroyed[k];
    out->region_mallocs[k] = c.region_mallocs[k];
  }
  out->heap_mallocs = c.mallocs;
  out->block_bytes = g.block_bytes;
  out->peak_block_bytes = g.peak_block_bytes;
  out->cached_bytes = g.cached_bytes;
  out->reserved_bytes = g.reserved_bytes;
  return 0;
}

int broom_check_pointer(const void* p) {
  return broom::preload::CheckPointer(p, "broom_check_pointer", false);
}

}  // extern "C"
