// Copyright Broom authors. Layer 1 (chunk): blocks that cross processes (the loan protocol).
//
// A region shipped to another process (alloc/region/ship.cc) leaves its blocks where they are:
// the receiver installs them at the same addresses, inside the sender's slice of the address
// plan (address_plan.h). Each block therefore has one lender, the process whose slice holds it,
// and at most one holder at a time.
//   Lender side   a block of this process's slice shipped away is ON LOAN: in no region, cache
//                 or pool here, uncharged, its address out of reuse, recorded with the process
//                 that has it and a generation (a number the lender gives each loan). It comes
//                 back when a holder returns it (a note), when it comes home inside a region
//                 shipped back here, when the shipment is cancelled, or when its holder dies.
//   Holder side   a block of another slice installed here is BORROWED: registered in the chunk
//                 map (so BlockOf and RegionOf find it), charged like any held block, its memory
//                 committed here (copy mode; the bytes arrive with the region) or the lender's
//                 own pages (shared mode: the lender's memfd is mapped over its slice here, once
//                 per lender, MapLenderSlice). When the region frees it, ReleaseBlock ends here:
//                 copied memory is purged (shared pages stay mapped: they are the lender's) and
//                 a RETURN note for the lender is queued. Shipping it on to a third process queues
//                 a MOVE note (the lender then knows who has it, for death reclamation).
//   Notes         (block address, generation, holder) triples the engine carries from holders
//                 to lenders (the CAF shim piggybacks them on its credit messages); a note whose
//                 generation is not the block's current loan is stale and ignored, so notes may
//                 be late, duplicated or cross each other.
//   Relaying      a note can travel back along the path its block took (A -> B -> C: C may be
//                 connected to B only): AcceptNotes in B queues the notes about other slices
//                 for their lenders, where B's engine takes them as its own.
//
// Ownership: the tables here own no memory of blocks, only their bookkeeping (heap metadata).
// Thread-safety: thread-safe; one mutex for the loans, one for the borrowed blocks (each taken
// per block operation, never both at once).
#ifndef BROOM_ALLOC_CHUNK_LOANS_H_
#define BROOM_ALLOC_CHUNK_LOANS_H_

#include <cstddef>
#include <cstdint>

#include "broom/internal/block.h"
#include "broom/region.h"

namespace broom::internal {

inline constexpr uint32_t kNoteReturned = 0xffffffff;  // LoanNote::holder of a return

struct LoanNote {
  uint64_t block;       // the block's address (its header)
  uint32_t generation;  // the loan it is about
  uint32_t holder;      // the process that holds it now, or kNoteReturned
};

struct LoanCounters {
  size_t loaned_bytes = 0;  // this process's blocks on loan now
  size_t loaned_blocks = 0;
  size_t borrowed_bytes = 0;  // other processes' blocks installed here now
  size_t borrowed_blocks = 0;
  uint64_t lent_total = 0;  // blocks ever lent / borrowed
  uint64_t borrowed_total = 0;
  uint64_t notes_queued = 0;        // notes ever queued here for lenders
  uint64_t notes_accepted = 0;      // notes from holders that ended or moved a loan here
  uint64_t stale_notes = 0;         // notes that matched no current loan
  uint64_t reclaimed_blocks = 0;    // loans taken back from holders that died
  uint64_t notes_relayed = 0;       // notes for other lenders, received here and queued for them
  size_t notes_pending = 0;         // queued, not yet taken by the engine
  size_t warm_borrowed_bytes = 0;   // freed borrowed memory still resident here (<= the cap)
  size_t warm_borrowed_cap = 0;     // that cap now: 32 MiB, up to 256 MiB (warm_cache.h)
  size_t shared_slices_mapped = 0;  // lenders' memfds mapped here now (shared mode)
};
LoanCounters GetLoanCounters();

// ---- lender ----------------------------------------------------------------------------------

// Puts own block `b` (of a region being shipped) on loan to process `holder`: uncharged, owner
// cleared. Returns the loan's generation. REQUIRES: b is in this process's slice and was held.
uint32_t LendBlock(BlockHeader* b, uint32_t holder);
// A block of this process's slice comes home inside a region shipped here: its loan (with that
// generation) ends and it is charged again as held. False (nothing changes) if it is not on
// loan with that generation or its size is not the loan's.
bool EndLoanForInstall(uintptr_t block, uint32_t generation, size_t size, AllocError* error);
// Ends a loan whose shipment never left (the block comes back to the pool).
void CancelLoan(uintptr_t block, uint32_t generation);
// Applies holders' notes. A note about a block of another process's slice is not ours to apply:
// it is queued for that lender (relayed, as TakeNotes then returns it) and not counted.
// Returns the notes that matched a current loan.
size_t AcceptNotes(const LoanNote* notes, size_t n);
// Takes back every block on loan to `holder` (it died). Returns the blocks reclaimed.
size_t ReclaimLoans(uint32_t holder);

// ---- holder ----------------------------------------------------------------------------------

enum class InstallMemory : uint8_t {
  kCommit,  // the block's bytes will be copied in: commit its pages here
  kMapped,  // the block is visible here already (shared memory): register it only
};
// Installs the block [block, block + size) of another process's slice, lent under `generation`:
// commits its memory (kCommit), registers it in the chunk map, charges it. Its header is not
// read or written (its bytes arrive later). *resident, on success: whether its pages exist
// (kMapped; a kCommit block still warm from its last stay, or of a slice mapped here from its
// lender's memfd); otherwise the caller may prefault the part its bytes will fill. Returns false
// with *why (a static string) if the block is not in another slice, overlaps a block installed
// here, or cannot be committed or charged.
bool InstallForeign(uintptr_t block, size_t size, uint8_t block_class, uint32_t generation,
                    InstallMemory memory, bool* resident, const char** why);
// Called by ReleaseBlock for a block outside this process's slice (the region freed it, or an
// install is undone): unregisters and uncharges it, queues a return note, and keeps its pages
// resident for the next install at that address (WarmCache: up to its cap of such memory, 32
// MiB raised up to 256 MiB for a lender that cycles through more; the oldest is purged).
size_t ReleaseForeign(BlockHeader* b);
// A borrowed block leaves inside a region shipped to another process: unregistered and
// uncharged now; its memory stays readable (for the engine to write it out) until ForeignSent or
// ForeignCancelled. Fatal if `block` is not installed here.
struct LeavingBlock {
  uintptr_t block;
  size_t size;
  uint32_t generation;
  uint32_t incarnation;
  InstallMemory memory;
};
LeavingBlock ForeignLeaving(uintptr_t block);
// Its shipment to `to` was written out: the memory is purged and, unless `to` is the lender (the
// block goes home, whose install ends the loan), a move note is queued.
void ForeignSent(const LeavingBlock& b, uint32_t to);
// Its shipment never left: the block is returned to its lender (purged, return note).
void ForeignCancelled(const LeavingBlock& b);

// ---- shared memory (docs/design.md, "Shared memory") ----------------------------------------

// What a receiver needs to map a lender's memfd-backed slice: the lender's machine (a hash of
// its boot id), process and descriptor, and the file's identity (checked after opening it).
struct SharedSliceId {
  uint64_t machine;
  uint64_t dev;
  uint64_t ino;
  uint32_t pid;
  int32_t fd;
};
// This process's slice's identity. False with *why (a sentence, written into why[0..n)) if the
// slice is not backed by shared memory.
bool OwnSharedSlice(SharedSliceId* id, char* why, size_t n);
// Makes slice `lender`'s memory visible here: maps the lender's memfd (opened through
// /proc/<pid>/fd/<fd>) over the whole slice, read-write, once per lender (later calls with the
// same file cost one lock and a compare). False with *why if the lender is on another machine,
// its file cannot be opened or is not the one named, blocks of another file of that slice (a
// restarted lender) or blocks it shipped in copy mode are still installed here, or mmap fails.
bool MapLenderSlice(uint32_t lender, const SharedSliceId& id, char* why, size_t n);
// The identity MapLenderSlice opened slice `lender` by (the lender's process and descriptor, or
// those of the process it was opened through) and this process's descriptor of that file
// (*local_fd), so that a region holding its blocks can be shipped on to a third process in
// shared mode, which maps them from the lender or, if the lender has exited, through this
// process. False if the slice is not mapped here.
bool MappedLenderSlice(uint32_t lender, SharedSliceId* id, int* local_fd);
// How a block installed here got its memory; false if it is not installed.
bool ForeignMemory(uintptr_t block, InstallMemory* memory);
// True if slice `slice` is mapped here from its lender's memfd now. No lock (fork's child
// handler reads it).
bool SliceMappedHere(uint32_t slice);

// Moves up to `max` notes queued for `lender` to out[]; returns how many.
size_t TakeNotes(uint32_t lender, LoanNote* out, size_t max);
// Bit i of the result (i < 64): notes are queued for process i (processes past 63 are in the
// top bit). Cheap: one relaxed load.
uint64_t LendersWithNotes();
// Forgets process `peer` (it died or its job ended): drops the notes queued for it and
// reclaims the blocks on loan to it. Its slice's shared memory, if mapped here, is unmapped
// once no block of it is installed here (at once, or when the last one is freed). Returns the
// blocks reclaimed.
size_t ForgetPeer(uint32_t peer);

}  // namespace broom::internal

#endif  // BROOM_ALLOC_CHUNK_LOANS_H_
