// Copyright Broom authors.
//
// The loan protocol's bookkeeping (loans.h): loans of this process's blocks, blocks of other
// processes installed here, and the notes queued for their lenders.
#include "alloc/chunk/loans.h"

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "alloc/chunk/chunk_space.h"
#include "alloc/chunk/space.h"
#include "alloc/chunk/warm_cache.h"
#include "alloc/os/heap.h"
#include "alloc/os/mutex.h"
#include "alloc/os/os.h"
#include "broom/internal/base.h"

namespace broom::internal {

namespace {

template <class V>
using AddressMap =
    std::map<uintptr_t, V, std::less<>, MetaAllocator<std::pair<const uintptr_t, V>>>;
template <class V>
using MetaVector = std::vector<V, MetaAllocator<V>>;

struct Loan {
  size_t size;
  uint32_t generation;
  uint32_t holder;
  uint8_t block_class;
};

struct Borrowed {
  size_t size;
  uint32_t generation;
  uint32_t incarnation;  // of its lender's slice when installed (see ForgetPeer)
  InstallMemory memory;
};

// The lender side: this process's blocks on loan.
class Lender {
 public:
  uint32_t Lend(BlockHeader* b, uint32_t holder) ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    const uint32_t generation = next_generation_++;
    if (next_generation_ == 0) next_generation_ = 1;
    loans_[reinterpret_cast<uintptr_t>(b)] = Loan{b->size, generation, holder, b->block_class};
    loaned_bytes_ += b->size;
    ++lent_total_;
    return generation;
  }
  // Ends the loan of `block` if it has that generation (and that size, unless `size` is 0);
  // *loan gets the record.
  bool End(uintptr_t block, uint32_t generation, size_t size, Loan* loan) ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    auto it = loans_.find(block);
    if (it == loans_.end() || it->second.generation != generation ||
        (size != 0 && it->second.size != size)) {
      return false;
    }
    *loan = it->second;
    loans_.erase(it);
    loaned_bytes_ -= loan->size;
    return true;
  }
  // Applies one move note; false if stale.
  bool Move(uintptr_t block, uint32_t generation, uint32_t holder) ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    auto it = loans_.find(block);
    if (it == loans_.end() || it->second.generation != generation) return false;
    it->second.holder = holder;
    return true;
  }
  // Ends every loan to `holder`; appends the blocks to *out.
  void EndAllOf(uint32_t holder, MetaVector<std::pair<uintptr_t, Loan>>* out)
      ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    for (auto it = loans_.begin(); it != loans_.end();) {
      if (it->second.holder == holder) {
        out->push_back(*it);
        loaned_bytes_ -= it->second.size;
        it = loans_.erase(it);
      } else {
        ++it;
      }
    }
  }
  void Read(LoanCounters* c) ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    c->loaned_bytes = loaned_bytes_;
    c->loaned_blocks = loans_.size();
    c->lent_total = lent_total_;
  }

 private:
  Mutex mu_;
  AddressMap<Loan> loans_ ABSL_GUARDED_BY(mu_);
  // Generations start at a value of this process's own, so that a stale note from an earlier
  // process at the same slice is very unlikely to match a loan of this one.
  uint32_t next_generation_ ABSL_GUARDED_BY(mu_) = (static_cast<uint32_t>(getpid()) * 2654435761u +
                                                    static_cast<uint32_t>(time(nullptr))) |
                                                   1;
  size_t loaned_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t lent_total_ ABSL_GUARDED_BY(mu_) = 0;
};

// The holder side: other processes' blocks installed here, and the notes for their lenders.
class Holder {
 public:
  Mutex mu;
  AddressMap<Borrowed> borrowed ABSL_GUARDED_BY(mu);
  MetaVector<MetaVector<LoanNote>> notes ABSL_GUARDED_BY(mu);  // by lender
  MetaVector<uint32_t> incarnation ABSL_GUARDED_BY(mu);        // by lender slice
  MetaVector<uint64_t> committed_steps ABSL_GUARDED_BY(mu);    // bit per commit step of range
  std::atomic<uint64_t> lenders_with_notes{0};
  size_t borrowed_bytes ABSL_GUARDED_BY(mu) = 0;
  size_t notes_pending ABSL_GUARDED_BY(mu) = 0;
  uint64_t borrowed_total ABSL_GUARDED_BY(mu) = 0;
  uint64_t notes_queued ABSL_GUARDED_BY(mu) = 0;
  // Freed borrowed blocks whose pages stay resident for their next install (warm_cache.h).
  WarmCache warm ABSL_GUARDED_BY(mu){&os::Purge};

  // Lenders' memfds mapped over their slices here (shared mode), by slice.
  struct PeerMapping {
    uint64_t dev = 0;
    uint64_t ino = 0;
    int fd = -1;             // -1: not mapped
    bool forgotten = false;  // ForgetPeer: unmap when its last installed block goes
    SharedSliceId id{};      // what MapLenderSlice opened it by, for MappedLenderSlice
  };
  MetaVector<PeerMapping> peers ABSL_GUARDED_BY(mu);
  // Borrowed blocks on their way out (ForeignLeaving until ForeignSent or ForeignCancelled), by
  // lender slice: the engine may still be reading them, so their slice is neither mapped over
  // nor unmapped meanwhile.
  MetaVector<uint32_t> leaving ABSL_GUARDED_BY(mu);

  PeerMapping* MappingOf(uint32_t slice) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return slice < peers.size() && peers[slice].fd >= 0 ? &peers[slice] : nullptr;
  }
  uint32_t& IncarnationOf(uint32_t slice) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (incarnation.size() <= slice) incarnation.resize(slice + 1, 0);
    return incarnation[slice];
  }
  void Queue(uint32_t lender, const LoanNote& note) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (notes.size() <= lender) notes.resize(lender + 1);
    notes[lender].push_back(note);
    ++notes_pending;
    ++notes_queued;
    lenders_with_notes.fetch_or(uint64_t{1} << std::min<uint32_t>(lender, 63),
                                std::memory_order_release);
  }
};

Lender& TheLender() {
  alignas(Lender) static char storage[sizeof(Lender)];
  static Lender* lender = new (storage) Lender();  // never destroyed (used until exit)
  return *lender;
}

Holder& TheHolder() {
  alignas(Holder) static char storage[sizeof(Holder)];
  static Holder* holder = new (storage) Holder();
  return *holder;
}

// Bit s: slice s is mapped here from its lender's memfd (read without a lock by fork's child
// handler). Plans have at most 4095 slices (BROOM_PLAN_PROCESSES).
constexpr uint32_t kMaxSlices = 4096;
std::atomic<uint64_t> g_mapped_slices[kMaxSlices / 64] = {};

void NoteSliceMapped(uint32_t slice, bool mapped) {
  if (slice >= kMaxSlices) return;
  const uint64_t bit = uint64_t{1} << (slice % 64);
  if (mapped) {
    g_mapped_slices[slice / 64].fetch_or(bit, std::memory_order_release);
  } else {
    g_mapped_slices[slice / 64].fetch_and(~bit, std::memory_order_release);
  }
}
std::atomic<uint64_t> g_notes_accepted{0};
std::atomic<uint64_t> g_stale_notes{0};
std::atomic<uint64_t> g_reclaimed{0};
std::atomic<uint64_t> g_notes_relayed{0};

// A block whose loan ended goes back to this process's pool, its header as the loan recorded it
// (a holder sharing the memory may have rewritten the links).
void ReturnToPool(uintptr_t block, const Loan& loan) {
  auto* b = reinterpret_cast<BlockHeader*>(block);
  UnpoisonMemory(b, sizeof(BlockHeader));
  b->owner.store(nullptr, std::memory_order_relaxed);
  b->size = loan.size;
  b->block_class = loan.block_class;
  chunk_internal::ReleaseFreeBlock(b);
}

int SliceOf(uintptr_t a) { return chunk_internal::ProcessSpace().plan().SliceOf(a); }

// Registers (word != 0) or clears the chunk-map words of a borrowed block. A chunk of class
// blocks keeps its word while any other borrowed block of the chunk is installed.
void MapBorrowed(Holder& h, uintptr_t block, size_t size, bool install)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(h.mu) {
  Space& space = chunk_internal::ProcessSpace();
  char* p = reinterpret_cast<char*>(block);
  if (size >= kChunkSize) {  // a run: every chunk points at its header
    space.SetMap(p, size >> kChunkShift, install ? block : 0);
    return;
  }
  const uintptr_t chunk = block & ~(kChunkSize - 1);
  if (install) {
    space.SetMap(reinterpret_cast<char*>(chunk), 1, CarvedMapWord(size));
    return;
  }
  auto it = h.borrowed.lower_bound(chunk);
  if (it != h.borrowed.end() && it->first < chunk + kChunkSize) return;  // others remain
  space.SetMap(reinterpret_cast<char*>(chunk), 1, 0);
}

// Commits the commit steps of [block, block + size) not committed yet.
bool CommitBorrowed(Holder& h, uintptr_t block, size_t size) ABSL_EXCLUSIVE_LOCKS_REQUIRED(h.mu) {
  Space& space = chunk_internal::ProcessSpace();
  const uintptr_t base = reinterpret_cast<uintptr_t>(space.base());
  const size_t first = (block - base) / Space::kCommitStep;
  const size_t last = (block + size - 1 - base) / Space::kCommitStep;
  if (h.committed_steps.empty()) {
    h.committed_steps.resize((space.size() / Space::kCommitStep + 63) / 64, 0);
  }
  for (size_t s = first; s <= last; ++s) {
    uint64_t& word = h.committed_steps[s / 64];
    const uint64_t bit = uint64_t{1} << (s % 64);
    if ((word & bit) != 0) continue;
    if (!os::Commit(reinterpret_cast<char*>(base + s * Space::kCommitStep), Space::kCommitStep)) {
      return false;
    }
    word |= bit;
  }
  return true;
}

// Unregisters a borrowed block (the lock is held); returns its record.
Borrowed Unregister(Holder& h, uintptr_t block, const char* op)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(h.mu) {
  auto it = h.borrowed.find(block);
  BROOM_CHECK(it != h.borrowed.end(),
              "%s of block %p of another process's slice, which is not installed here", op,
              reinterpret_cast<void*>(block));
  const Borrowed rec = it->second;
  h.borrowed.erase(it);
  MapBorrowed(h, block, rec.size, /*install=*/false);
  h.borrowed_bytes -= rec.size;
  return rec;
}

// True if a block of slice `slice` is installed here or on its way out.
bool BorrowedInSlice(Holder& h, uint32_t slice) ABSL_EXCLUSIVE_LOCKS_REQUIRED(h.mu) {
  if (slice < h.leaving.size() && h.leaving[slice] != 0) return true;
  const AddressPlan& plan = chunk_internal::ProcessSpace().plan();
  const uintptr_t lo = plan.SliceBase(slice);
  auto it = h.borrowed.lower_bound(lo);
  return it != h.borrowed.end() && it->first < lo + plan.slice_bytes;
}

// Counts a borrowed block leaving (+1) or gone (-1) in its slice's `leaving` entry.
void NoteLeaving(Holder& h, uintptr_t block, int delta) ABSL_EXCLUSIVE_LOCKS_REQUIRED(h.mu) {
  const int slice = SliceOf(block);
  if (slice < 0) return;
  if (h.leaving.size() <= static_cast<size_t>(slice)) h.leaving.resize(slice + 1, 0);
  h.leaving[slice] += static_cast<uint32_t>(delta);
}

// Undoes MapLenderSlice: the slice is an inaccessible reservation here again, its commit steps
// uncommitted (copy mode commits them again), the lender's file closed.
void UnmapLender(Holder& h, uint32_t slice) ABSL_EXCLUSIVE_LOCKS_REQUIRED(h.mu) {
  Holder::PeerMapping* pm = h.MappingOf(slice);
  if (pm == nullptr) return;
  Space& space = chunk_internal::ProcessSpace();
  const AddressPlan& plan = space.plan();
  BROOM_CHECK(os::ReserveOver(reinterpret_cast<void*>(plan.SliceBase(slice)), plan.slice_bytes),
              "cannot unmap process %u's shared memory", slice);
  const uintptr_t base = reinterpret_cast<uintptr_t>(space.base());
  for (uintptr_t a = plan.SliceBase(slice); a < plan.SliceBase(slice) + plan.slice_bytes;
       a += Space::kCommitStep) {
    const size_t step = (a - base) / Space::kCommitStep;
    if (step / 64 < h.committed_steps.size()) {
      h.committed_steps[step / 64] &= ~(uint64_t{1} << (step % 64));
    }
  }
  os::CloseFile(pm->fd);
  *pm = Holder::PeerMapping{};
  NoteSliceMapped(slice, false);
}

// After a block of `block`'s slice left: a forgotten lender's mapping goes with its last block.
void UnmapIfForgottenAndEmpty(Holder& h, uintptr_t block) ABSL_EXCLUSIVE_LOCKS_REQUIRED(h.mu) {
  const int slice = SliceOf(block);
  if (slice < 0) return;
  Holder::PeerMapping* pm = h.MappingOf(static_cast<uint32_t>(slice));
  if (pm != nullptr && pm->forgotten && !BorrowedInSlice(h, static_cast<uint32_t>(slice))) {
    UnmapLender(h, static_cast<uint32_t>(slice));
  }
}

// A borrowed block leaves this process (freed or shipped on): its memory becomes inaccessible
// (ASan) and, if it was copied here, warm (WarmCache::Add purges what goes over the cap).
// Under the lock, so that a purge never hits the same addresses installed again meanwhile.
// Memory of a slice mapped from its lender's memfd is the lender's pages: never purged here.
void PurgeBorrowed(Holder& h, uintptr_t block, size_t size, InstallMemory memory)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(h.mu) {
  PoisonMemory(reinterpret_cast<void*>(block), size);
  const int slice = SliceOf(block);
  if (memory != InstallMemory::kCommit ||
      (slice >= 0 && h.MappingOf(static_cast<uint32_t>(slice)) != nullptr)) {
    return;
  }
  h.warm.Add(block, size, os::NowMs());
}

// Queues the note for the block's lender unless that lender has been forgotten since.
void QueueNote(Holder& h, uintptr_t block, uint32_t generation, uint32_t incarnation,
               uint32_t holder) ABSL_EXCLUSIVE_LOCKS_REQUIRED(h.mu) {
  const int lender = SliceOf(block);
  if (lender < 0 || h.IncarnationOf(static_cast<uint32_t>(lender)) != incarnation) return;
  h.Queue(static_cast<uint32_t>(lender), LoanNote{block, generation, holder});
}

}  // namespace

LoanCounters GetLoanCounters() {
  LoanCounters c;
  TheLender().Read(&c);
  Holder& h = TheHolder();
  {
    MutexLock lock(&h.mu);
    c.borrowed_bytes = h.borrowed_bytes;
    c.borrowed_blocks = h.borrowed.size();
    c.borrowed_total = h.borrowed_total;
    c.notes_queued = h.notes_queued;
    c.notes_pending = h.notes_pending;
    c.warm_borrowed_bytes = h.warm.bytes();
    c.warm_borrowed_cap = h.warm.cap();
    for (const Holder::PeerMapping& pm : h.peers) c.shared_slices_mapped += pm.fd >= 0 ? 1 : 0;
  }
  c.notes_accepted = g_notes_accepted.load(std::memory_order_relaxed);
  c.stale_notes = g_stale_notes.load(std::memory_order_relaxed);
  c.reclaimed_blocks = g_reclaimed.load(std::memory_order_relaxed);
  c.notes_relayed = g_notes_relayed.load(std::memory_order_relaxed);
  return c;
}

uint32_t LendBlock(BlockHeader* b, uint32_t holder) {
  BROOM_ASSERT(chunk_internal::ProcessSpace().InOwnSlice(b));
  b->owner.store(nullptr, std::memory_order_release);
  chunk_internal::UnchargeHeld(b->size);
  return TheLender().Lend(b, holder);
}

bool EndLoanForInstall(uintptr_t block, uint32_t generation, size_t size, AllocError* error) {
  if (!chunk_internal::ChargeHeld(size, error)) return false;
  Loan loan;
  if (!TheLender().End(block, generation, size, &loan)) {
    chunk_internal::UnchargeHeld(size);
    *error = AllocError::kNone;
    return false;
  }
  UnpoisonMemory(reinterpret_cast<void*>(block), size);
  return true;
}

void CancelLoan(uintptr_t block, uint32_t generation) {
  Loan loan;
  if (TheLender().End(block, generation, 0, &loan)) ReturnToPool(block, loan);
}

size_t AcceptNotes(const LoanNote* notes, size_t n) {
  size_t matched = 0;
  const AddressPlan& plan = chunk_internal::ProcessSpace().plan();
  for (size_t i = 0; i < n; ++i) {
    const LoanNote& note = notes[i];
    const int lender = plan.SliceOf(note.block);
    if (lender >= 0 && static_cast<uint32_t>(lender) != plan.index) {
      // A note for another lender, from a process further down a chain of shipments (A -> B ->
      // C: C may reach A only through B): queued here for its lender, as if this process had
      // written it. Dropped if that lender has been forgotten (ForgetPeer clears the queue).
      Holder& h = TheHolder();
      MutexLock lock(&h.mu);
      h.Queue(static_cast<uint32_t>(lender), note);
      g_notes_relayed.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    bool ok;
    if (note.holder == kNoteReturned) {
      Loan loan;
      ok = TheLender().End(note.block, note.generation, 0, &loan);
      if (ok) ReturnToPool(note.block, loan);
    } else {
      ok = TheLender().Move(note.block, note.generation, note.holder);
    }
    (ok ? g_notes_accepted : g_stale_notes).fetch_add(1, std::memory_order_relaxed);
    matched += ok ? 1 : 0;
  }
  return matched;
}

size_t ReclaimLoans(uint32_t holder) {
  MetaVector<std::pair<uintptr_t, Loan>> ended;
  TheLender().EndAllOf(holder, &ended);
  for (const auto& [block, loan] : ended) ReturnToPool(block, loan);
  g_reclaimed.fetch_add(ended.size(), std::memory_order_relaxed);
  return ended.size();
}

bool InstallForeign(uintptr_t block, size_t size, uint8_t block_class, uint32_t generation,
                    InstallMemory memory, bool* resident, const char** why) {
  Space& space = chunk_internal::ProcessSpace();
  const AddressPlan& plan = space.plan();
  const int slice = plan.SliceOf(block);
  if (slice < 0 || plan.SliceOf(block + size - 1) != slice) {
    *why = "the block is not inside one slice of the address plan";
    return false;
  }
  if (static_cast<uint32_t>(slice) == plan.index) {
    *why = "the block is in this process's own slice";
    return false;
  }
  (void)block_class;
  Holder& h = TheHolder();
  MutexLock lock(&h.mu);
  auto next = h.borrowed.lower_bound(block);
  if ((next != h.borrowed.end() && next->first < block + size) ||
      (next != h.borrowed.begin() &&
       std::prev(next)->first + std::prev(next)->second.size > block)) {
    *why = "the block overlaps a block already installed here";
    return false;
  }
  if (size < kChunkSize) {
    const uintptr_t word = space.MapWord(reinterpret_cast<void*>(block));
    if (word != 0 && word != CarvedMapWord(size)) {
      *why = "the block's chunk holds installed blocks of another size";
      return false;
    }
  }
  if (memory == InstallMemory::kMapped && h.MappingOf(static_cast<uint32_t>(slice)) == nullptr) {
    *why = "its lender's shared memory is not mapped here";
    return false;
  }
  // Resident already: warm from its last stay, or the lender's own pages (its slice is mapped
  // here from its memfd, so copy mode writes into pages that exist).
  const bool warm =
      memory == InstallMemory::kCommit && (h.warm.Take(block, size, os::NowMs()) ||
                                           h.MappingOf(static_cast<uint32_t>(slice)) != nullptr);
  if (memory == InstallMemory::kCommit && !CommitBorrowed(h, block, size)) {
    *why = "the kernel refused to commit memory for the block";
    return false;
  }
  AllocError error = AllocError::kNone;
  if (!chunk_internal::ChargeHeld(size, &error)) {
    *why = "the process budget would be exceeded";
    return false;
  }
  UnpoisonMemory(reinterpret_cast<void*>(block), size);
  h.borrowed[block] =
      Borrowed{size, generation, h.IncarnationOf(static_cast<uint32_t>(slice)), memory};
  MapBorrowed(h, block, size, /*install=*/true);
  h.borrowed_bytes += size;
  ++h.borrowed_total;
  *resident = memory == InstallMemory::kMapped || warm;
  return true;
}

size_t ReleaseForeign(BlockHeader* b) {
  const uintptr_t block = reinterpret_cast<uintptr_t>(b);
  b->owner.store(nullptr, std::memory_order_release);
  Holder& h = TheHolder();
  Borrowed rec;
  {
    MutexLock lock(&h.mu);
    rec = Unregister(h, block, "release");
    PurgeBorrowed(h, block, rec.size, rec.memory);
    QueueNote(h, block, rec.generation, rec.incarnation, kNoteReturned);
    UnmapIfForgottenAndEmpty(h, block);
  }
  chunk_internal::UnchargeHeld(rec.size);
  return rec.size;
}

LeavingBlock ForeignLeaving(uintptr_t block) {
  Holder& h = TheHolder();
  Borrowed rec;
  {
    MutexLock lock(&h.mu);
    rec = Unregister(h, block, "shipping");
    NoteLeaving(h, block, +1);
  }
  chunk_internal::UnchargeHeld(rec.size);
  return LeavingBlock{block, rec.size, rec.generation, rec.incarnation, rec.memory};
}

void ForeignSent(const LeavingBlock& b, uint32_t to) {
  Holder& h = TheHolder();
  {
    MutexLock lock(&h.mu);
    const int lender = SliceOf(b.block);
    NoteLeaving(h, b.block, -1);
    PurgeBorrowed(h, b.block, b.size, b.memory);
    if (lender >= 0 && static_cast<uint32_t>(lender) != to) {
      QueueNote(h, b.block, b.generation, b.incarnation, to);
    }
    UnmapIfForgottenAndEmpty(h, b.block);
  }
}

void ForeignCancelled(const LeavingBlock& b) {
  Holder& h = TheHolder();
  {
    MutexLock lock(&h.mu);
    NoteLeaving(h, b.block, -1);
    PurgeBorrowed(h, b.block, b.size, b.memory);
    QueueNote(h, b.block, b.generation, b.incarnation, kNoteReturned);
    UnmapIfForgottenAndEmpty(h, b.block);
  }
}

bool OwnSharedSlice(SharedSliceId* id, char* why, size_t n) {
  Space& space = chunk_internal::ProcessSpace();
  if (space.shared_fd() < 0) {
    if (space.shared_problem() != nullptr) {
      std::snprintf(why, n, "this process's slice could not be backed by shared memory: %s (%s)",
                    space.shared_problem(), std::strerror(space.shared_errno()));
    } else {
      std::snprintf(why, n,
                    "this process's slice is not backed by shared memory (set "
                    "BROOM_PLAN_SHARED=1, or AddressPlan::shared_memory in "
                    "ConfigureAddressPlan, before its first region)");
    }
    return false;
  }
  static const SharedSliceId own = [&space] {
    SharedSliceId i{};
    uint64_t size = 0;
    i.machine = os::MachineBootHash();
    os::FileIdentity(space.shared_fd(), &i.dev, &i.ino, &size);
    i.fd = space.shared_fd();
    i.pid = os::ProcessId();  // a forked child cannot use the slice (DetachSharedAfterFork)
    return i;
  }();
  *id = own;
  return true;
}

bool MapLenderSlice(uint32_t lender, const SharedSliceId& id, char* why, size_t n) {
  static const uint64_t machine = os::MachineBootHash();
  Space& space = chunk_internal::ProcessSpace();
  const AddressPlan& plan = space.plan();
  Holder& h = TheHolder();
  MutexLock lock(&h.mu);
  if (Holder::PeerMapping* pm = h.MappingOf(lender)) {
    if (pm->dev == id.dev && pm->ino == id.ino) {
      pm->forgotten = false;
      return true;
    }
    if (BorrowedInSlice(h, lender)) {
      std::snprintf(why, n,
                    "process %u's shared memory is another file than the one mapped here, "
                    "whose blocks are still held here or being sent on (did the process "
                    "restart?): free them first",
                    lender);
      return false;
    }
    UnmapLender(h, lender);
  }
  if (id.machine != machine || machine == 0) {
    std::snprintf(why, n,
                  "process %u shipped in shared mode from another machine (or one whose boot "
                  "id cannot be read): shared memory works on one machine; ship in copy mode",
                  lender);
    return false;
  }
  if (BorrowedInSlice(h, lender)) {
    std::snprintf(why, n,
                  "blocks process %u shipped here in copy mode are still held here or being "
                  "sent on: its shared memory cannot be mapped over them (free those regions "
                  "first, or keep to one mode per pair of processes)",
                  lender);
    return false;
  }
  int error = 0;
  const int fd = os::OpenProcessFile(id.pid, id.fd, &error);
  if (fd < 0) {
    std::snprintf(why, n,
                  "cannot open process %u's shared memory (/proc/%u/fd/%d: %s): shared mode "
                  "needs both processes on one machine, run by one user in one pid namespace; "
                  "ship in copy mode otherwise",
                  lender, id.pid, id.fd, std::strerror(error));
    return false;
  }
  uint64_t dev = 0, ino = 0, size = 0;
  if (!os::FileIdentity(fd, &dev, &ino, &size) || dev != id.dev || ino != id.ino ||
      size != plan.slice_bytes) {
    os::CloseFile(fd);
    std::snprintf(why, n,
                  "/proc/%u/fd/%d is not process %u's shared memory (the process exited, or "
                  "another has its id)",
                  id.pid, id.fd, lender);
    return false;
  }
  const uintptr_t lo = plan.SliceBase(lender);
  h.warm.Drop(lo, plan.slice_bytes);  // copied memory there is replaced by the lender's pages
  if (!os::MapSharedAt(reinterpret_cast<void*>(lo), plan.slice_bytes, fd, 0, /*accessible=*/true,
                       &error)) {
    os::CloseFile(fd);
    BROOM_CHECK(os::ReserveOver(reinterpret_cast<void*>(lo), plan.slice_bytes),
                "cannot restore process %u's slice after a failed mapping", lender);
    std::snprintf(why, n, "cannot map process %u's shared memory over its slice: %s", lender,
                  std::strerror(error));
    return false;
  }
  if (h.peers.size() <= lender) h.peers.resize(lender + 1);
  h.peers[lender] = Holder::PeerMapping{dev, ino, fd, false, id};
  NoteSliceMapped(lender, true);
  return true;
}

bool MappedLenderSlice(uint32_t lender, SharedSliceId* id, int* local_fd) {
  Holder& h = TheHolder();
  MutexLock lock(&h.mu);
  const Holder::PeerMapping* pm = h.MappingOf(lender);
  if (pm == nullptr) return false;
  *id = pm->id;
  *local_fd = pm->fd;
  return true;
}

bool ForeignMemory(uintptr_t block, InstallMemory* memory) {
  Holder& h = TheHolder();
  MutexLock lock(&h.mu);
  auto it = h.borrowed.find(block);
  if (it == h.borrowed.end()) return false;
  *memory = it->second.memory;
  return true;
}

bool SliceMappedHere(uint32_t slice) {
  return slice < kMaxSlices && (g_mapped_slices[slice / 64].load(std::memory_order_acquire) &
                                (uint64_t{1} << (slice % 64))) != 0;
}

size_t TakeNotes(uint32_t lender, LoanNote* out, size_t max) {
  Holder& h = TheHolder();
  MutexLock lock(&h.mu);
  if (lender >= h.notes.size() || h.notes[lender].empty()) return 0;
  MetaVector<LoanNote>& q = h.notes[lender];
  const size_t n = std::min(max, q.size());
  std::copy(q.end() - static_cast<ptrdiff_t>(n), q.end(), out);
  q.resize(q.size() - n);
  h.notes_pending -= n;
  if (q.empty()) {
    uint64_t still = 0;  // recompute the summary bits
    for (size_t i = 0; i < h.notes.size(); ++i) {
      if (!h.notes[i].empty()) still |= uint64_t{1} << std::min<size_t>(i, 63);
    }
    h.lenders_with_notes.store(still, std::memory_order_release);
  }
  return n;
}

uint64_t LendersWithNotes() {
  return TheHolder().lenders_with_notes.load(std::memory_order_acquire);
}

size_t ForgetPeer(uint32_t peer) {
  Holder& h = TheHolder();
  {
    MutexLock lock(&h.mu);
    ++h.IncarnationOf(peer);
    if (Holder::PeerMapping* pm = h.MappingOf(peer)) {
      pm->forgotten = true;
      if (!BorrowedInSlice(h, peer)) UnmapLender(h, peer);
    }
    if (peer < h.notes.size()) {
      h.notes_pending -= h.notes[peer].size();
      h.notes[peer].clear();
      uint64_t still = 0;
      for (size_t i = 0; i < h.notes.size(); ++i) {
        if (!h.notes[i].empty()) still |= uint64_t{1} << std::min<size_t>(i, 63);
      }
      h.lenders_with_notes.store(still, std::memory_order_release);
    }
  }
  return ReclaimLoans(peer);
}

}  // namespace broom::internal
