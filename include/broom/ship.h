// Copyright Broom authors.
//
// ship.h: transferable regions that cross process boundaries by address.
//
//   AddressPlan            every process of a job reserves one common address range at the
//                          same virtual address, cut into one slice per process; a process
//                          carves blocks only in its own slice (docs/design.md).
//   GetAddressPlan()       the plan this process's region space sits at, or why it is not at
//                          one (the range was taken).
//   ConfigureAddressPlan() chooses the plan before the process's first region.
//   ExecutableBuildId()    what every process of a job must agree on: the same binary.
//   Ship(region, to)       takes a transferable region out of its handle and describes it for
//                          process `to`: a Shipment, its manifest (block list, used bytes, the
//                          region's state and name) and the byte ranges that travel by value.
//   ShipMode               kCopy: the blocks' used bytes travel with the manifest; kShared (one
//                          machine, slices backed by shared memory): only the manifest travels
//                          and the receiver maps the sender's pages.
//   Receipt::Open(...)     the receiving side: installs the blocks at the same addresses, tells
//                          the engine where the payload bytes go, and Finish() rebuilds the
//                          region object (its vtable pointer, its name) and hands over a
//                          TransferableRegion. Every pointer inside is valid, with no
//                          relocation; RegionOf, stats, typestate and checks work on it.
//   ShipMessage / ReceiveMessage   the same for a Message<T> (its root travels with it).
//   Loan notes             a shipped region's blocks stay out of the sender's reuse until the
//                          receiver frees them and says so: engines carry LoanNotes from holders
//                          to lenders (TakeLoanNotes / AcceptLoanNotes); ForgetPeer takes back
//                          what a dead process held. GetShipStats counts both sides.
//
// What can travel: a self-contained transferable region (checked mode verifies it before
// shipping) whose objects hold no code addresses: no virtual functions (ShipMessage refuses a
// polymorphic T at compile time), no function pointers, no pointers to string literals or other
// globals. Destructors registered on the region (New<T> of a non-trivially destructible T) do
// travel: their code offsets in the executable are rebased on the receiver, which runs the same
// binary.
//
// Environment (read once, when the region space is first used; docs/design.md):
//   BROOM_PLAN_BASE_GB     where the range starts, in GiB (default 17408: 17 TiB)
//   BROOM_RESERVE_GB       each slice, GiB (default 64)
//   BROOM_PLAN_PROCESSES   slices (default 32; ThreadSanitizer builds: 4 from 0x7e8000000000)
//   BROOM_PLAN_INDEX       this process's slice (default 0; engines set it for their workers)
//   BROOM_PLAN_SHARED      1: back this process's slice with shared memory (ShipMode::kShared)
//
// Thread-safety: every function here is thread-safe unless its comment says otherwise.
// Shipment and Receipt are thread-compatible values.
#ifndef BROOM_SHIP_H_
#define BROOM_SHIP_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "broom/message.h"
#include "broom/transferable_region.h"

namespace broom {

namespace internal {
struct ShipAccess;
}  // namespace internal

// The job-wide address plan. See the file comment.
struct AddressPlan {
  uintptr_t base = 0;      // first byte of the range (whole GiB)
  size_t slice_bytes = 0;  // each process's slice (whole GiB)
  uint32_t processes = 0;  // slices
  uint32_t index = 0;      // this process's slice
  // This process's slice is backed by shared memory (a memfd mapped over it), so that
  // processes on this machine can receive its regions without copying (ShipMode::kShared).
  // BROOM_PLAN_SHARED=1 sets it from the environment. If the memfd cannot be made, the slice is
  // ordinary memory, the active plan (GetAddressPlan) has false here, and Ship(kShared) says why.
  bool shared_memory = false;

  uintptr_t end() const { return base + slice_bytes * processes; }
  uintptr_t SliceBase(uint32_t i) const { return base + slice_bytes * i; }
  // The slice holding `p`, or -1 outside the range.
  int SliceOf(const void* p) const {
    const uintptr_t a = reinterpret_cast<uintptr_t>(p);
    return processes != 0 && a - base < slice_bytes * processes
               ? static_cast<int>((a - base) / slice_bytes)
               : -1;
  }
  bool operator==(const AddressPlan&) const = default;
};

// The plan this process's region space was reserved at (creating the space if needed). Returns
// false if the space could not be placed at its plan (then this process cannot ship regions):
// *error (if not null) names the range, the reason (the errno and, for EEXIST, the mapping
// found inside the range) and the variable to change; *plan is then the plan that was asked for.
bool GetAddressPlan(AddressPlan* plan, std::string* error = nullptr);

// Makes `plan` the one this process's region space is reserved at, instead of the
// environment's. Only before the process's first region (or first GetAddressPlan); afterwards it
// succeeds only if `plan` is the active plan already. Returns false with *error set otherwise,
// or if the plan is invalid. Not thread-safe against a concurrent first use of regions.
bool ConfigureAddressPlan(const AddressPlan& plan, std::string* error);

// The running executable's identity: its GNU build id in hex, or, for an executable linked
// without one, "file:" and the device, inode, size and modification time of /proc/self/exe.
// Regions travel with the layout of their records and the code addresses of their destructors,
// so every process of a job must run the same binary; engines compare this at connect.
std::string ExecutableBuildId();

// ---- shipping ---------------------------------------------------------------------------------

enum class ShipMode : uint8_t {
  // Every block's used bytes travel by value (any two processes, any two machines): the engine
  // writes Shipment::payload() and the receiver reads it into Receipt::payload().
  kCopy,
  // Only the manifest travels: the receiver maps the sender's pages (both processes on one
  // machine, run by one user, each with a slice backed by shared memory: AddressPlan::
  // shared_memory or BROOM_PLAN_SHARED=1). payload() is empty on both sides and nothing is
  // copied (ShipStats::payload_bytes_* stay 0; mapped_bytes_* count what did not need copying).
  // The region may hold blocks of this process's slice and blocks it received in shared mode,
  // from the receiver itself (a region going back) or from a third process (shipped on: the
  // receiver maps that process's memory too); Ship refuses blocks received in copy mode (ship
  // those in copy mode). docs/design.md, "Shared memory".
  kShared,
};

struct ShipOptions {
  ShipMode mode = ShipMode::kCopy;
  uint64_t root = 0;  // a word for the receiver (Receipt::root()): typically the root object
};

// A transferable region on its way to another process. See Ship().
//
// Ownership and lifetime: holds the region's blocks, which this process must no longer touch:
// its own blocks are on loan to the receiver (out of reuse until the receiver returns them,
// loans.h), blocks it had received from a third process are leaving. Once the engine has
// written the manifest and the payload out, it calls Sent(). A Shipment destroyed without
// Sent() was never delivered: its blocks come back (own blocks to the pool, others returned to
// their lenders) and the region's contents are dropped (destructors do not run).
// Thread-safety: thread-compatible; may move to another thread (an engine's I/O thread).
class Shipment {
 public:
  struct Range {
    const void* data;
    size_t size;
  };
  Shipment(Shipment&& other) noexcept;
  Shipment& operator=(Shipment&& other) noexcept;
  Shipment(const Shipment&) = delete;
  Shipment& operator=(const Shipment&) = delete;
  ~Shipment();

  // The manifest, for the engine to carry first.
  const std::string& manifest() const { return manifest_; }
  // The byte ranges that travel by value after the manifest, in this order (the used part of
  // each block, header included); empty for blocks the receiver maps (shared memory).
  const std::vector<Range>& payload() const { return payload_; }
  size_t payload_bytes() const { return payload_bytes_; }
  uint32_t destination() const { return to_; }
  // Everything was written out. REQUIRES: called once.
  void Sent();

 private:
  friend struct internal::ShipAccess;
  Shipment() = default;
  void Cancel();

  struct OwnBlock {
    uintptr_t block;
    uint32_t generation;
  };
  struct Leaving {
    uintptr_t block;
    size_t size;
    uint32_t generation;
    uint32_t incarnation;
    uint8_t memory;
  };
  std::string manifest_;
  std::vector<Range> payload_;
  std::vector<OwnBlock> own_;
  std::vector<Leaving> leaving_;
  size_t payload_bytes_ = 0;
  size_t mapped_bytes_ = 0;
  uint32_t to_ = 0;
  bool pending_ = false;  // true from Ship() until Sent() or Cancel()
};

// Takes the region out of `region` (which becomes TRANSFERRED, as after Transfer()) and prepares
// it for process `to` (its slice in the address plan). Cost: O(blocks), plus a scan of the
// region in checked mode; nothing is copied here.
// REQUIRES: `region` is CLOSED (fatal otherwise, as for Transfer()).
// Returns nullopt with *error set, leaving `region` as it was, if: this process is not at an
// address plan; `to` is not another slice of it; checked mode (broom/check.h) finds pointers out
// of the region (the report names each) or into the program image (a vtable, function pointer or
// string literal); a registered destructor's code is not in the executable; in kShared mode,
// this process's slice is not backed by shared memory, or the region holds blocks that are not
// shared with `to` (see ShipMode::kShared).
std::optional<Shipment> Ship(TransferableRegion& region, uint32_t to, const ShipOptions& options,
                             std::string* error);

// The receiving side of one shipment. See the file comment.
//
// Ownership and lifetime: from Open() on, the blocks are installed here and the Receipt owns
// them; Finish() hands them over as a region. A Receipt destroyed before Finish() uninstalls them
// and returns them to their lenders. Thread-safety: thread-compatible.
class Receipt {
 public:
  struct Range {
    void* data;
    size_t size;
  };
  Receipt(Receipt&& other) noexcept;
  Receipt& operator=(Receipt&& other) noexcept;
  Receipt(const Receipt&) = delete;
  Receipt& operator=(const Receipt&) = delete;
  ~Receipt();

  // Checks `manifest` (from process `from`) and installs its blocks at their addresses: blocks
  // of other processes are committed here and registered in the chunk map; blocks of this
  // process come home from their loan. In shared mode the sender's slice is mapped here first
  // (once per sender: its memfd, opened through /proc/<pid>/fd) and nothing is committed.
  // Returns nullopt with *error set, installing nothing, for a malformed manifest, a block that
  // is already installed here or not on loan from here, a sender outside the plan, memory that
  // cannot be committed or charged, or (shared mode) a sender on another machine or whose
  // memory cannot be opened or mapped here, or this process's slice not being shared memory
  // while blocks of it come home unmapped.
  static std::optional<Receipt> Open(std::string_view manifest, uint32_t from, std::string* error);

  // Where the payload goes: one range per Shipment::payload() range, in order. The engine reads
  // each range's bytes straight there.
  const std::vector<Range>& payload() const { return payload_; }
  size_t payload_bytes() const { return payload_bytes_; }
  uint64_t root() const { return root_; }
  // The payload is in place: checks the blocks' headers against the manifest, rebuilds the
  // region object (vtable pointer, id, name, owner, destructors' code addresses) and returns the
  // region, CLOSED, owned by the caller. On a mismatch (corrupt payload) returns nullopt with
  // *error set and uninstalls everything. REQUIRES: called once.
  std::optional<TransferableRegion> Finish(std::string* error);

 private:
  friend struct internal::ShipAccess;
  Receipt() = default;
  void Abandon();

  struct Installed {
    uintptr_t block;
    size_t size;
    bool own;  // a block of this process that came home
  };
  std::string manifest_;
  std::vector<Range> payload_;
  std::vector<Installed> installed_;
  size_t payload_bytes_ = 0;
  size_t mapped_bytes_ = 0;
  uint64_t root_ = 0;
  uint32_t from_ = 0;
  bool pending_ = false;  // installed, not finished
};

// Ship() for a Message<T>: its root travels as the shipment's root word. T must not be
// polymorphic (a vtable pointer is a code address of this process).
template <class T>
std::optional<Shipment> ShipMessage(Message<T>& message, uint32_t to, ShipMode mode,
                                    std::string* error) {
  static_assert(!std::is_polymorphic_v<T>,
                "broom::ShipMessage: a polymorphic T holds a vtable pointer, which is not valid "
                "in another process; ship plain records");
  ShipOptions options{mode, reinterpret_cast<uintptr_t>(message.get())};
  return Ship(message.region(), to, options, error);
}

// The Message<T> of a shipment made by ShipMessage<T>, from its finished region.
template <class T>
Message<T> ReceiveMessage(TransferableRegion&& region, uint64_t root) {
  static_assert(!std::is_polymorphic_v<T>, "broom::ReceiveMessage: see ShipMessage");
  return Message<T>::Adopt(region.Release(), reinterpret_cast<T*>(root));
}

// ---- loans -------------------------------------------------------------------------------------

// From a holder to a lender: a block of the lender's slice was freed here (holder ==
// kLoanReturned) or shipped on to process `holder`. See docs/design.md, "The loan protocol".
inline constexpr uint32_t kLoanReturned = 0xffffffff;
struct LoanNote {
  uint64_t block;
  uint32_t generation;
  uint32_t holder;
};

// Moves up to `max` notes queued here for process `lender` into out[]; returns how many.
size_t TakeLoanNotes(uint32_t lender, LoanNote* out, size_t max);
// Bit i: notes are queued for process i (i < 63; bit 63 stands for every process from 63 on).
// One relaxed load: cheap enough to test on every message an engine sends.
uint64_t LendersWithLoanNotes();
// Applies notes that holders sent to this process (in any order; stale or repeated notes are
// ignored). Returns the notes that ended or moved a loan.
// Onward shipping (A -> B -> C): B's Ship queues a move note for A (holder C), and C's free
// queues return notes for A (A's blocks) and for B (blocks B added). An engine sends notes for
// lender L to L directly or, if it is not connected to L, to the process it received the blocks
// from: AcceptLoanNotes there queues each note about a block of another slice for that slice's
// lender (relayed, ShipStats::notes_relayed) instead of applying it, so notes flow back along
// the shipments' path until they reach their lender. A move and a return may arrive in either
// order: the return ends the loan, the late move is stale. Notes relayed for a lender after
// ForgetPeer(lender) are queued again: an engine drops them with TakeLoanNotes.
size_t AcceptLoanNotes(const LoanNote* notes, size_t n);
// Process `peer` is gone (died, or its job ended): drops the notes queued for it and takes back
// every block on loan to it. Blocks it had lent to this process stay usable here until freed
// (in shared mode its memory stays mapped, and alive, until the last of them is freed; then its
// slice is unmapped here). Returns the blocks taken back.
size_t ForgetPeer(uint32_t peer);

struct ShipStats {
  uint64_t regions_shipped = 0;         // Ship() that succeeded
  uint64_t regions_received = 0;        // Receipt::Finish() that succeeded
  uint64_t payload_bytes_sent = 0;      // bytes of blocks that travelled by value, out and in
  uint64_t payload_bytes_received = 0;  // (what shipping copies; 0 with shared memory)
  uint64_t manifest_bytes_sent = 0;
  uint64_t mapped_bytes_sent = 0;      // used bytes of blocks shipped in shared mode, out and in
  uint64_t mapped_bytes_received = 0;  // (what shared memory saved copying)
  // Used bytes of the blocks copied in (copy mode), counted as they are installed, by where
  // they land: pages that exist already (this process's own blocks coming home, another's still
  // warm from their last stay, or a lender's shared pages mapped here) or fresh pages, faulted
  // in at install in one call where the kernel can (MADV_POPULATE_WRITE) instead of one fault
  // per page.
  uint64_t installed_warm_bytes = 0;
  uint64_t installed_cold_bytes = 0;
  size_t loaned_bytes = 0;  // this process's blocks on loan to other processes now
  size_t loaned_blocks = 0;
  size_t borrowed_bytes = 0;  // other processes' blocks held by regions here now
  size_t borrowed_blocks = 0;
  size_t warm_borrowed_bytes = 0;   // freed borrowed memory kept resident for the next shipment
                                    // at those addresses, up to the cap (the oldest is purged)
  size_t warm_borrowed_cap = 0;     // that cap: 32 MiB; raised, up to 256 MiB, by each block
                                    // installed again after the cap purged it; halved back at
                                    // a free once the oldest warm block waited a second unused
  uint64_t notes_queued = 0;        // notes queued here for lenders, ever
  size_t notes_pending = 0;         // of those, not yet taken by the engine
  uint64_t notes_accepted = 0;      // notes from holders that ended or moved a loan of ours
  uint64_t stale_notes = 0;         // notes that matched no current loan (late or repeated)
  uint64_t reclaimed_blocks = 0;    // loans taken back from processes that died
  uint64_t notes_relayed = 0;       // notes for other lenders received here and queued for them
  size_t shared_slices_mapped = 0;  // other processes' slices mapped here now (shared mode; one
                                    // goes after ForgetPeer, once no block of it is held here)
};
ShipStats GetShipStats();

}  // namespace broom

#endif  // BROOM_SHIP_H_
