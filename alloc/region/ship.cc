// Copyright Broom authors.
//
// Shipping regions between processes (broom/ship.h): the sender's side (Ship: checks, the
// manifest, lending the blocks; shared mode's conditions), the receiver's (Receipt: validation,
// installing or mapping the blocks, rebuilding the region object), and the loan notes. The
// address plan as users see it is in ship_plan.cc.
#include "broom/ship.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <set>

#include "alloc/chunk/chunk_space.h"
#include "alloc/chunk/loans.h"
#include "alloc/os/os.h"
#include "alloc/region/region_internal.h"
#include "alloc/region/ship_internal.h"
#include "broom/check.h"

#if BROOM_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace broom {

// ---- shipping ---------------------------------------------------------------------------------

namespace internal {

static_assert(sizeof(broom::LoanNote) == sizeof(internal::LoanNote) &&
              kLoanReturned == kNoteReturned);

namespace {

constexpr size_t kRegionBytes = kRegionHeaderBytes<BumpRegion>;

std::atomic<uint64_t> g_regions_shipped{0};
std::atomic<uint64_t> g_regions_received{0};
std::atomic<uint64_t> g_payload_sent{0};
std::atomic<uint64_t> g_payload_received{0};
std::atomic<uint64_t> g_manifest_sent{0};
std::atomic<uint64_t> g_mapped_sent{0};
std::atomic<uint64_t> g_mapped_received{0};
std::atomic<uint64_t> g_installed_warm{0};
std::atomic<uint64_t> g_installed_cold{0};

// Region names are string literals in the sender; here they are interned copies, never freed.
const char* InternName(std::string_view name) {
  if (name.empty()) return nullptr;
  static std::mutex mu;
  static auto* names = new std::set<std::string, std::less<>>();
  std::lock_guard<std::mutex> lock(mu);
  auto it = names->find(name);
  if (it == names->end()) it = names->emplace(name).first;
  return it->c_str();
}

// FNV-1a of ExecutableBuildId(), computed once.
uint64_t BuildHash() {
  static const uint64_t hash = [] {
    uint64_t h = 1469598103934665603ull;
    for (unsigned char c : broom::ExecutableBuildId()) h = (h ^ c) * 1099511628211ull;
    return h;
  }();
  return hash;
}

struct Image {
  uintptr_t bias = 0, lo = 0, hi = 0;
  bool ok = false;
};
const Image& Executable() {
  static const Image image = [] {
    Image i;
    i.ok = os::ExecutableImage(&i.bias, &i.lo, &i.hi);
    return i;
  }();
  return image;
}

// Checked mode's second scan before shipping: words pointing into a loaded object's image
// (vtables, functions, string literals, globals) are valid only in this process.
class ImageScan {
 public:
  explicit ImageScan(const std::vector<uintptr_t>* skip) : skip_(skip) {
    os::ForEachLoadedSegment(
        [](void* ctx, uintptr_t lo, uintptr_t hi) {
          static_cast<ImageScan*>(ctx)->segments_.push_back({lo, hi});
        },
        this);
    std::sort(segments_.begin(), segments_.end());
  }
  static void Visit(void* ctx, const BlockHeader* block, const char* begin, const char* end) {
    static_cast<ImageScan*>(ctx)->Scan(block, begin, end);
  }
  size_t count() const { return count_; }
  const std::string& lines() const { return lines_; }

 private:
  void Scan(const BlockHeader* block, const char* from, const char* to) {
    from = reinterpret_cast<const char*>((reinterpret_cast<uintptr_t>(from) + 7) & ~uintptr_t{7});
    for (const char* p = from; p + sizeof(uintptr_t) <= to; p += sizeof(uintptr_t)) {
#if BROOM_ASAN
      if (__asan_region_is_poisoned(const_cast<char*>(p), sizeof(uintptr_t)) != nullptr) continue;
#endif
      uintptr_t word;
      std::memcpy(&word, p, sizeof(word));
      auto it = std::upper_bound(segments_.begin(), segments_.end(),
                                 std::pair<uintptr_t, uintptr_t>{word, UINTPTR_MAX});
      if (it == segments_.begin() || word >= std::prev(it)->second) continue;
      if (std::binary_search(skip_->begin(), skip_->end(), reinterpret_cast<uintptr_t>(p))) {
        continue;  // a destructor record's code address: rebased on the receiver
      }
      if (++count_ <= 8) {
        char line[160];
        std::snprintf(line, sizeof(line),
                      "  +0x%zx in the block at %p holds %#" PRIxPTR
                      ", an address in the program's image (a vtable, a function pointer or a "
                      "string literal?)\n",
                      static_cast<size_t>(p - reinterpret_cast<const char*>(block)),
                      static_cast<const void*>(block), word);
        lines_ += line;
      }
    }
  }

  const std::vector<uintptr_t>* skip_;
  std::vector<std::pair<uintptr_t, uintptr_t>> segments_;
  size_t count_ = 0;
  std::string lines_;
};

bool Fail(std::string* error, const std::string& message) {
  if (error != nullptr) *error = message;
  return false;
}

std::string Hex(uintptr_t a) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "%#" PRIxPTR, a);
  return buf;
}

}  // namespace

struct ShipAccess {
  // The used bytes of block `b` of `r`, from the block's start.
  static uint64_t UsedBytes(const BumpRegion& r, const BlockHeader* b) {
    const char* start = reinterpret_cast<const char*>(b);
    const char* end = b == r.current_ ? r.cursor_ : b->used_end;
    uint64_t used = end != nullptr && end > start ? static_cast<uint64_t>(end - start) : 0;
    const uint64_t floor = b->next == nullptr ? kRegionBytes : sizeof(BlockHeader);
    return std::min<uint64_t>(std::max(used, floor), b->size);
  }

  // The addresses of the `fn` fields of r's destructor records, sorted; false with *error if
  // one's code is not in the executable.
  static bool CleanupCode(const BumpRegion& r, std::vector<uintptr_t>* fields, std::string* error) {
    const Image& exe = Executable();
    size_t outside = 0;
    for (const Cleanup* c = r.cleanups_; c != nullptr; c = c->next) {
      const uintptr_t fn = reinterpret_cast<uintptr_t>(c->fn);
      if (!exe.ok || fn < exe.lo || fn >= exe.hi) ++outside;
      fields->push_back(reinterpret_cast<uintptr_t>(&c->fn));
    }
    std::sort(fields->begin(), fields->end());
    if (outside == 0) return true;
    char buf[256];
    std::snprintf(buf, sizeof(buf),
                  "%zu of its %zu registered destructors run code outside the executable (a "
                  "shared library's), which cannot be found at the same offset in another "
                  "process",
                  outside, r.cleanup_count_);
    return Fail(error, buf);
  }

  // Shared mode's conditions (ShipMode::kShared): this process's slice is a memfd (*id gets
  // it), and every block of `r` is of this slice or mapped here from its lender's memfd (the
  // receiver's own pages going home, or a third process's: *lenders gets each such lender's
  // memfd, for the receiver to map too).
  static bool SharedShipPossible(const BumpRegion& r, const AddressPlan& plan, uint32_t to,
                                 SharedSliceId* id, std::vector<ManifestLender>* lenders,
                                 std::string* error) {
    char why[512];
    char name[128];
    if (!OwnSharedSlice(id, why, sizeof(why))) {
      return Fail(error, "cannot ship " + std::string(Describe(&r, name, sizeof(name))) +
                             " in shared mode: " + why + "; ship it in copy mode");
    }
    size_t foreign = 0;
    int example = -1;
    for (const BlockHeader* b = r.blocks_; b != nullptr; b = b->next) {
      const uintptr_t a = reinterpret_cast<uintptr_t>(b);
      const int slice = plan.SliceOf(a);
      if (slice == static_cast<int>(plan.index)) continue;
      InstallMemory memory = InstallMemory::kCommit;
      SharedSliceId lender{};
      int via_fd = -1;
      if (slice >= 0 && ForeignMemory(a, &memory) && memory == InstallMemory::kMapped &&
          (slice == static_cast<int>(to) ||
           MappedLenderSlice(static_cast<uint32_t>(slice), &lender, &via_fd))) {
        // The receiver's own pages go home; a third process's are mapped there from it.
        const bool listed = std::any_of(lenders->begin(), lenders->end(), [&](const auto& l) {
          return l.slice == static_cast<uint32_t>(slice);
        });
        if (slice != static_cast<int>(to) && !listed) {
          lenders->push_back({static_cast<uint32_t>(slice), lender.pid, lender.fd, via_fd,
                              lender.machine, lender.dev, lender.ino});
        }
        continue;
      }
      ++foreign;
      example = slice;
    }
    if (foreign == 0 && lenders->size() <= kMaxManifestLenders) return true;
    if (foreign == 0) {
      return Fail(error, "cannot ship " + std::string(Describe(&r, name, sizeof(name))) +
                             " in shared mode: it holds blocks of " +
                             std::to_string(lenders->size()) +
                             " other processes' slices (at most " +
                             std::to_string(kMaxManifestLenders) + "); ship it in copy mode");
    }
    return Fail(error, "cannot ship " + std::string(Describe(&r, name, sizeof(name))) +
                           " in shared mode to process " + std::to_string(to) + ": " +
                           std::to_string(foreign) + " of its blocks are of process " +
                           std::to_string(example) +
                           "'s slice and were received in copy mode (they live in this "
                           "process's private memory): shared mode ships only blocks of this "
                           "process and blocks mapped from their own process's shared memory; "
                           "ship it in copy mode");
  }

  static std::optional<Shipment> Ship(TransferableRegion& handle, uint32_t to,
                                      const ShipOptions& options, std::string* error);
  static std::optional<Receipt> Open(std::string_view manifest, uint32_t from, std::string* error);
  static BumpRegion* Rebuild(const ManifestHeader& h, const ManifestBlock* blocks, const char* name,
                             std::string* error);
};

std::optional<Shipment> ShipAccess::Ship(TransferableRegion& handle, uint32_t to,
                                         const ShipOptions& options, std::string* error) {
  const PlanState plan = GetPlanState();
  if (plan.active.processes == 0) {
    Fail(error, "cannot ship: " + DescribePlanFailure(plan));
    return std::nullopt;
  }
  if (to >= plan.active.processes || to == plan.active.index) {
    Fail(error, "cannot ship to process " + std::to_string(to) + ": the address plan has " +
                    std::to_string(plan.active.processes) + " slices and this process is slice " +
                    std::to_string(plan.active.index));
    return std::nullopt;
  }
  BumpRegion& r = handle.region();  // fatal on a freed or transferred handle
  r.CheckThread("Ship");
  if (r.open_count() != 0) handle.Release();  // fatal: OPEN, with the typestate message
  char name[128];
  std::vector<uintptr_t> cleanup_fields;
  if (!CleanupCode(r, &cleanup_fields, error)) {
    if (error != nullptr)
      *error = "cannot ship " + std::string(Describe(&r, name, sizeof(name))) + ": " + *error;
    return std::nullopt;
  }
  if (GetCheckMode() != CheckMode::kOff) {
    OutlivesReport report = CheckOutlives(r);
    ImageScan image(&cleanup_fields);
    r.ForEachLiveRange(&ImageScan::Visit, &image);
    if (!report.ok() || image.count() != 0) {
      std::string message = "cannot ship " + std::string(Describe(&r, name, sizeof(name))) +
                            " to process " + std::to_string(to) +
                            ": it is not self-contained, so its pointers would not be valid "
                            "there (" +
                            std::to_string(report.violation_count + image.count()) +
                            " violations)\n" + report.ToString(8) + image.lines();
      if (GetCheckMode() == CheckMode::kFatal) {
        Fail(error, message);
        return std::nullopt;
      }
      std::fprintf(stderr, "broom: check: %s", message.c_str());
    }
  }
  const bool shared = options.mode == ShipMode::kShared;
  SharedSliceId shm{};
  std::vector<ManifestLender> lenders;
  if (shared && !SharedShipPossible(r, plan.active, to, &shm, &lenders, error)) {
    return std::nullopt;
  }
  BumpRegion* region = handle.Release();  // TRANSFERRED; the transfer hook runs as for any
  // Blocks kept for reuse carry nothing: they stay here.
  if (region->spare_ != nullptr) {
    region->NoteReleasing();
    for (BlockHeader* b = region->spare_; b != nullptr;) {
      BlockHeader* next = b->next;
      region->block_bytes_ -= b->size;
      --region->blocks_held_;
      ReleaseBlock(b);
      b = next;
    }
    region->spare_ = nullptr;
    region->spare_bytes_ = 0;
  }
  Shipment s;
  s.to_ = to;
  ManifestHeader h{};
  h.magic = kManifestMagic;
  h.version = kManifestVersion;
  const size_t name_length = std::strlen(region->name());
  h.name_length = static_cast<uint16_t>(std::min<size_t>(name_length, 255));
  h.from = plan.active.index;
  h.to = to;
  h.growth_class = region->growth_class_;
  h.mode = shared ? kManifestShared : kManifestCopy;
  h.lender_count = static_cast<uint8_t>(lenders.size());
  h.shm_machine = shm.machine;
  h.shm_dev = shm.dev;
  h.shm_ino = shm.ino;
  h.shm_pid = shm.pid;
  h.shm_fd = shm.fd;
  h.root = options.root;
  h.exe_bias = Executable().bias;
  h.build_hash = BuildHash();
  h.current = reinterpret_cast<uintptr_t>(region->current_);
  h.current_base = reinterpret_cast<uintptr_t>(region->current_base_);
  h.cursor = reinterpret_cast<uintptr_t>(region->cursor_);
  h.bytes_requested = region->bytes_requested_;
  h.bytes_freed = region->bytes_freed_;
  h.budget = region->budget_;
  h.peak_block_bytes = region->peak_block_bytes_;
  h.retain_bytes = region->retain_bytes_;
  h.cleanups = reinterpret_cast<uintptr_t>(region->cleanups_);
  h.cleanup_count = region->cleanup_count_;
  std::vector<ManifestBlock> blocks;
  blocks.reserve(region->blocks_held_);
  for (BlockHeader* b = region->blocks_; b != nullptr; b = b->next) {
    ManifestBlock m{};
    m.address = reinterpret_cast<uintptr_t>(b);
    m.size = b->size;
    m.used = UsedBytes(*region, b);
    m.block_class = b->block_class;
    m.by_value = shared ? 0 : 1;
    blocks.push_back(m);
  }
  // The blocks leave: own ones on loan to `to`, borrowed ones on their way. Headers are read
  // above, before lending clears their owner.
  region->NoteReleasing();
  for (ManifestBlock& m : blocks) {
    auto* b = reinterpret_cast<BlockHeader*>(m.address);
    UnpoisonMemory(b, m.used);  // the engine reads these bytes (ASan: padding is poisoned)
    if (plan.active.SliceOf(m.address) == static_cast<int>(plan.active.index)) {
      m.generation = LendBlock(b, to);
      s.own_.push_back({m.address, m.generation});
    } else {
      b->owner.store(nullptr, std::memory_order_release);
      LeavingBlock lb = ForeignLeaving(m.address);
      m.generation = lb.generation;
      s.leaving_.push_back(
          {lb.block, lb.size, lb.generation, lb.incarnation, static_cast<uint8_t>(lb.memory)});
    }
    if (m.by_value) {
      s.payload_.push_back({b, m.used});
      s.payload_bytes_ += m.used;
    } else {
      s.mapped_bytes_ += m.used;
    }
  }
  h.block_count = static_cast<uint32_t>(blocks.size());
  h.payload_bytes = s.payload_bytes_;
  s.manifest_.reserve(sizeof(h) + blocks.size() * sizeof(ManifestBlock) +
                      lenders.size() * sizeof(ManifestLender) + h.name_length);
  s.manifest_.append(reinterpret_cast<const char*>(&h), sizeof(h));
  s.manifest_.append(reinterpret_cast<const char*>(blocks.data()),
                     blocks.size() * sizeof(ManifestBlock));
  s.manifest_.append(region->name(), h.name_length);
  if (!lenders.empty()) {
    s.manifest_.append(reinterpret_cast<const char*>(lenders.data()),
                       lenders.size() * sizeof(ManifestLender));
  }
  s.pending_ = true;
  // The region has left this process (its object and contents now belong to the shipment).
  NoteRegionDestroyed(RegionKind::kTransferable);
  g_regions_shipped.fetch_add(1, std::memory_order_relaxed);
  return s;
}

std::optional<Receipt> ShipAccess::Open(std::string_view manifest, uint32_t from,
                                        std::string* error) {
  auto fail = [&](const std::string& why) {
    Fail(error, "malformed or unusable shipment from process " + std::to_string(from) + ": " + why);
    return std::nullopt;
  };
  const PlanState plan = GetPlanState();
  if (plan.active.processes == 0) return fail(DescribePlanFailure(plan));
  ManifestHeader h;
  if (manifest.size() < sizeof(h)) return fail("shorter than its header");
  std::memcpy(&h, manifest.data(), sizeof(h));
  if (h.magic != kManifestMagic || h.version != kManifestVersion) {
    return fail("not a region manifest of this version");
  }
  if (h.build_hash != BuildHash()) {
    return fail("it was shipped by another executable (build " + ExecutableBuildId() +
                " here): every process of a job must run the same binary");
  }
  if (h.from != from || from >= plan.active.processes || from == plan.active.index ||
      h.to != plan.active.index) {
    return fail("sent by process " + std::to_string(h.from) + " to process " +
                std::to_string(h.to) + ", received by process " +
                std::to_string(plan.active.index));
  }
  if (h.block_count == 0 || h.block_count > kMaxManifestBlocks ||
      manifest.size() != sizeof(h) + size_t{h.block_count} * sizeof(ManifestBlock) + h.name_length +
                             size_t{h.lender_count} * sizeof(ManifestLender)) {
    return fail("its size does not match its block and lender counts");
  }
  std::vector<ManifestBlock> blocks(h.block_count);
  std::memcpy(blocks.data(), manifest.data() + sizeof(h), blocks.size() * sizeof(ManifestBlock));
  if (h.mode != kManifestCopy && h.mode != kManifestShared) return fail("its mode is unknown");
  std::vector<ManifestLender> lenders(h.lender_count);
  if (!lenders.empty()) {  // (memcpy's arguments may not be null, even for no bytes)
    std::memcpy(lenders.data(),
                manifest.data() + manifest.size() - lenders.size() * sizeof(ManifestLender),
                lenders.size() * sizeof(ManifestLender));
  }
  // A third process's slice, listed once, to be mapped from its own memfd (shared mode only).
  auto lender_of = [&](int slice) -> const ManifestLender* {
    for (const ManifestLender& l : lenders) {
      if (static_cast<int>(l.slice) == slice) return &l;
    }
    return nullptr;
  };
  for (size_t i = 0; i < lenders.size(); ++i) {
    const ManifestLender& l = lenders[i];
    if (h.mode != kManifestShared || l.slice >= plan.active.processes || l.slice == from ||
        l.slice == plan.active.index || lender_of(static_cast<int>(l.slice)) != &l) {
      return fail("its lender " + std::to_string(i) + " (slice " + std::to_string(l.slice) +
                  ") is not a third process's slice listed once in a shared-mode shipment");
    }
  }
  // Shapes first: nothing is installed unless every block is well formed.
  std::vector<std::pair<uintptr_t, uint64_t>> spans;
  bool current_found = false;
  bool maps_sender = false;  // blocks of the sender's slice to be mapped
  bool maps_own = false;     // blocks of this slice coming home in shared mode
  uint64_t payload = 0, mapped = 0;
  for (const ManifestBlock& m : blocks) {
    if (m.by_value == 0) {
      const int slice = plan.active.SliceOf(m.address);
      if (h.mode != kManifestShared ||
          (slice != static_cast<int>(from) && slice != static_cast<int>(plan.active.index) &&
           lender_of(slice) == nullptr)) {
        return fail("block " + Hex(m.address) +
                    " is to be mapped, but it is not of the sender's, this process's or a listed "
                    "lender's slice in a shared-mode shipment");
      }
      if (slice == static_cast<int>(from)) maps_sender = true;
      if (slice == static_cast<int>(plan.active.index)) maps_own = true;
      mapped += m.used;
    }
    const bool run = m.block_class == kRunClass;
    const bool sized =
        run ? m.size >= kChunkSize && m.size % kChunkSize == 0 && m.address % kChunkSize == 0
            : m.block_class >= kPageBlockClass && m.block_class < kNumBlockClasses &&
                  m.size == BlockClassSize(m.block_class) && m.address % m.size == 0;
    if (!sized || m.used < sizeof(BlockHeader) || m.used > m.size ||
        plan.active.SliceOf(m.address) < 0 ||
        plan.active.SliceOf(m.address) != plan.active.SliceOf(m.address + m.size - 1)) {
      return fail("block " + Hex(m.address) + " (" + std::to_string(m.size) +
                  " bytes) is not a block of the address plan");
    }
    if (m.by_value) payload += m.used;
    if (m.address == h.current) {
      current_found = h.current_base >= m.address + sizeof(BlockHeader) &&
                      h.current_base <= h.cursor && h.cursor <= m.address + m.size &&
                      h.cursor % kDefaultAlignment == 0;
    }
    spans.push_back({m.address, m.size});
  }
  std::sort(spans.begin(), spans.end());
  for (size_t i = 1; i < spans.size(); ++i) {
    if (spans[i - 1].first + spans[i - 1].second > spans[i].first) {
      return fail("blocks " + Hex(spans[i - 1].first) + " and " + Hex(spans[i].first) + " overlap");
    }
  }
  if (!current_found) return fail("its bump cursor is not inside its current block");
  if (blocks.back().used < kRegionBytes || payload != h.payload_bytes) {
    return fail("its first block cannot hold the region object, or its payload size is wrong");
  }
  char why[512];
  SharedSliceId own{};
  if (maps_own && !OwnSharedSlice(&own, why, sizeof(why))) {
    return fail(std::string("it brings blocks of this process home in shared mode, but ") + why);
  }
  if (maps_sender) {
    const SharedSliceId id{h.shm_machine, h.shm_dev, h.shm_ino, h.shm_pid, h.shm_fd};
    if (!MapLenderSlice(from, id, why, sizeof(why))) return fail(why);
  }
  for (const ManifestLender& l : lenders) {  // a region shipped on: its first lenders' pages
    const SharedSliceId id{l.machine, l.dev, l.ino, l.pid, l.fd};
    if (MapLenderSlice(l.slice, id, why, sizeof(why))) continue;
    // The lender may have exited: the sender, which is running, has the same file open.
    const SharedSliceId via{l.machine, l.dev, l.ino, h.shm_pid, l.via_fd};
    char via_why[512];
    if (!MapLenderSlice(l.slice, via, via_why, sizeof(via_why))) {
      return fail(std::string(why) + "; and through the sender: " + via_why);
    }
  }
  Receipt receipt;
  receipt.manifest_.assign(manifest);
  receipt.from_ = from;
  receipt.root_ = h.root;
  receipt.payload_bytes_ = payload;
  receipt.mapped_bytes_ = mapped;
  receipt.pending_ = true;  // from here on, ~Receipt undoes what is installed
  for (const ManifestBlock& m : blocks) {
    const bool own = plan.active.SliceOf(m.address) == static_cast<int>(plan.active.index);
    bool resident = own;  // this process's own blocks never left its memory
    if (own) {
      AllocError charge_error = AllocError::kNone;
      if (!EndLoanForInstall(m.address, m.generation, m.size, &charge_error)) {
        return fail(charge_error != AllocError::kNone
                        ? std::string("the process budget would be exceeded")
                        : "block " + Hex(m.address) + " of this process is not on loan (" +
                              "generation " + std::to_string(m.generation) + ")");
      }
    } else {
      const char* why = "";
      if (!InstallForeign(m.address, m.size, m.block_class, m.generation,
                          m.by_value ? InstallMemory::kCommit : InstallMemory::kMapped, &resident,
                          &why)) {
        return fail("block " + Hex(m.address) + ": " + why);
      }
      // Fresh pages for the bytes about to arrive: one call instead of a fault per page (about
      // a third less time per 64 KiB here); the rest of the block faults in if it is ever used.
      if (!resident) os::Prefault(reinterpret_cast<void*>(m.address), m.used);
    }
    if (m.by_value) {
      (resident ? g_installed_warm : g_installed_cold).fetch_add(m.used, std::memory_order_relaxed);
    }
    receipt.installed_.push_back({m.address, m.size, own});
    if (m.by_value) receipt.payload_.push_back({reinterpret_cast<void*>(m.address), m.used});
  }
  return receipt;
}

BumpRegion* ShipAccess::Rebuild(const ManifestHeader& h, const ManifestBlock* blocks,
                                const char* name, std::string* error) {
  const uint32_t n = h.block_count;
  // The headers arrived with the payload: they must be the manifest's blocks, linked in its
  // order (newest first, the region's own block last).
  size_t block_bytes = 0;
  for (uint32_t i = 0; i < n; ++i) {
    auto* b = reinterpret_cast<BlockHeader*>(blocks[i].address);
    const uintptr_t next = i + 1 < n ? blocks[i + 1].address : 0;
    const uintptr_t prev = i > 0 ? blocks[i - 1].address : 0;
    if (b->size != blocks[i].size || b->block_class != blocks[i].block_class ||
        reinterpret_cast<uintptr_t>(b->next) != next ||
        reinterpret_cast<uintptr_t>(b->prev) != prev) {
      Fail(error, "the header of block " + Hex(blocks[i].address) +
                      " does not match the manifest (corrupt payload)");
      return nullptr;
    }
    block_bytes += b->size;
  }
  auto* first = reinterpret_cast<BlockHeader*>(blocks[n - 1].address);
  BlockHeader* const first_prev = first->prev;
  RegionOptions options;
  options.budget_bytes = h.budget;
  options.retain_bytes = h.retain_bytes;
  options.name = name;
  InitCheckModeOnce();
  // The object's bytes arrived too, but its vtable pointer is this process's to write.
  auto* r =
      ::new (first->begin()) BumpRegion(RegionKind::kTransferable, NextRegionId(), options, first);
  first->prev = first_prev;  // the constructor reset the links of what it takes as a lone block
  r->blocks_ = reinterpret_cast<BlockHeader*>(blocks[0].address);
  r->block_bytes_ = block_bytes;
  r->blocks_held_ = n;
  r->peak_block_bytes_ = std::max<size_t>(h.peak_block_bytes, block_bytes);
  r->bytes_freed_ = h.bytes_freed;
  r->bytes_requested_ = h.bytes_requested;
  r->current_ = reinterpret_cast<BlockHeader*>(h.current);
  r->current_base_ = reinterpret_cast<char*>(h.current_base);
  r->cursor_ = reinterpret_cast<char*>(h.cursor);
  r->growth_class_ = h.growth_class;
  r->OpenWindow();
  // Destructor records: inside the region, their code rebased from the sender's executable.
  const Image& exe = Executable();
  const uintptr_t delta = exe.bias - h.exe_bias;
  for (uint32_t i = 0; i < n; ++i) {
    reinterpret_cast<BlockHeader*>(blocks[i].address)->owner.store(r, std::memory_order_release);
  }
  Cleanup* const cleanups = reinterpret_cast<Cleanup*>(h.cleanups);
  size_t count = 0;
  for (Cleanup* c = cleanups; c != nullptr; c = c->next) {
    if (++count > h.cleanup_count || RegionOf(c) != r ||
        RegionOf(reinterpret_cast<char*>(c) + sizeof(Cleanup) - 1) != r) {
      Fail(error, "its destructor records are not inside it (corrupt payload)");
      return nullptr;
    }
    const uintptr_t fn = reinterpret_cast<uintptr_t>(c->fn) + delta;
    if (!exe.ok || fn < exe.lo || fn >= exe.hi) {
      Fail(error, "a destructor's code is not in this executable (another binary?)");
      return nullptr;
    }
    c->fn = reinterpret_cast<void (*)(void*)>(fn);
  }
  if (count != h.cleanup_count) {
    Fail(error, "its destructor count does not match (corrupt payload)");
    return nullptr;
  }
  r->cleanups_ = cleanups;
  r->cleanup_count_ = count;
  return r;
}

}  // namespace internal

// ---- Shipment -----------------------------------------------------------------------------------

Shipment::Shipment(Shipment&& o) noexcept
    : manifest_(std::move(o.manifest_)),
      payload_(std::move(o.payload_)),
      own_(std::move(o.own_)),
      leaving_(std::move(o.leaving_)),
      payload_bytes_(o.payload_bytes_),
      mapped_bytes_(o.mapped_bytes_),
      to_(o.to_),
      pending_(std::exchange(o.pending_, false)) {}

Shipment& Shipment::operator=(Shipment&& o) noexcept {
  if (this != &o) {
    Cancel();
    manifest_ = std::move(o.manifest_);
    payload_ = std::move(o.payload_);
    own_ = std::move(o.own_);
    leaving_ = std::move(o.leaving_);
    payload_bytes_ = o.payload_bytes_;
    mapped_bytes_ = o.mapped_bytes_;
    to_ = o.to_;
    pending_ = std::exchange(o.pending_, false);
  }
  return *this;
}

Shipment::~Shipment() { Cancel(); }

void Shipment::Sent() {
  BROOM_CHECK(pending_, "Shipment::Sent on a shipment that was sent or cancelled already");
  pending_ = false;
  for (const Leaving& l : leaving_) {
    internal::ForeignSent({l.block, l.size, l.generation, l.incarnation,
                           static_cast<internal::InstallMemory>(l.memory)},
                          to_);
  }
  internal::g_payload_sent.fetch_add(payload_bytes_, std::memory_order_relaxed);
  internal::g_mapped_sent.fetch_add(mapped_bytes_, std::memory_order_relaxed);
  internal::g_manifest_sent.fetch_add(manifest_.size(), std::memory_order_relaxed);
}

void Shipment::Cancel() {
  if (!pending_) return;
  pending_ = false;
  for (const OwnBlock& b : own_) internal::CancelLoan(b.block, b.generation);
  for (const Leaving& l : leaving_) {
    internal::ForeignCancelled({l.block, l.size, l.generation, l.incarnation,
                                static_cast<internal::InstallMemory>(l.memory)});
  }
}

std::optional<Shipment> Ship(TransferableRegion& region, uint32_t to, const ShipOptions& options,
                             std::string* error) {
  return internal::ShipAccess::Ship(region, to, options, error);
}

// ---- Receipt ------------------------------------------------------------------------------------

Receipt::Receipt(Receipt&& o) noexcept
    : manifest_(std::move(o.manifest_)),
      payload_(std::move(o.payload_)),
      installed_(std::move(o.installed_)),
      payload_bytes_(o.payload_bytes_),
      mapped_bytes_(o.mapped_bytes_),
      root_(o.root_),
      from_(o.from_),
      pending_(std::exchange(o.pending_, false)) {}

Receipt& Receipt::operator=(Receipt&& o) noexcept {
  if (this != &o) {
    Abandon();
    manifest_ = std::move(o.manifest_);
    payload_ = std::move(o.payload_);
    installed_ = std::move(o.installed_);
    payload_bytes_ = o.payload_bytes_;
    mapped_bytes_ = o.mapped_bytes_;
    root_ = o.root_;
    from_ = o.from_;
    pending_ = std::exchange(o.pending_, false);
  }
  return *this;
}

Receipt::~Receipt() { Abandon(); }

std::optional<Receipt> Receipt::Open(std::string_view manifest, uint32_t from, std::string* error) {
  return internal::ShipAccess::Open(manifest, from, error);
}

void Receipt::Abandon() {
  if (!pending_) return;
  pending_ = false;
  // Blocks of this process go back to its pool; others back to their lenders.
  for (const Installed& b : installed_) {
    auto* h = reinterpret_cast<internal::BlockHeader*>(b.block);
    if (b.own) internal::UnpoisonMemory(h, sizeof(*h));
    h->owner.store(nullptr, std::memory_order_relaxed);
    h->size = b.size;  // the payload may not have arrived: the header is the manifest's
    internal::ReleaseBlock(h);
  }
  installed_.clear();
}

std::optional<TransferableRegion> Receipt::Finish(std::string* error) {
  BROOM_CHECK(pending_, "Receipt::Finish on a receipt that was finished or abandoned already");
  internal::ManifestHeader h;
  std::memcpy(&h, manifest_.data(), sizeof(h));
  std::vector<internal::ManifestBlock> blocks(h.block_count);
  std::memcpy(blocks.data(), manifest_.data() + sizeof(h),
              blocks.size() * sizeof(internal::ManifestBlock));
  const char* name = internal::InternName(std::string_view(
      manifest_.data() + sizeof(h) + blocks.size() * sizeof(internal::ManifestBlock),
      h.name_length));
  BumpRegion* r = internal::ShipAccess::Rebuild(h, blocks.data(), name, error);
  if (r == nullptr) {
    if (error != nullptr) {
      *error = "shipment from process " + std::to_string(from_) + " refused: " + *error;
    }
    Abandon();
    return std::nullopt;
  }
  pending_ = false;
  internal::NoteRegionCreated(RegionKind::kTransferable);
  internal::g_regions_received.fetch_add(1, std::memory_order_relaxed);
  internal::g_payload_received.fetch_add(payload_bytes_, std::memory_order_relaxed);
  internal::g_mapped_received.fetch_add(mapped_bytes_, std::memory_order_relaxed);
  return TransferableRegion::Adopt(r);
}

// ---- loans --------------------------------------------------------------------------------------

size_t TakeLoanNotes(uint32_t lender, LoanNote* out, size_t max) {
  return internal::TakeNotes(lender, reinterpret_cast<internal::LoanNote*>(out), max);
}

uint64_t LendersWithLoanNotes() { return internal::LendersWithNotes(); }

size_t AcceptLoanNotes(const LoanNote* notes, size_t n) {
  return internal::AcceptNotes(reinterpret_cast<const internal::LoanNote*>(notes), n);
}

size_t ForgetPeer(uint32_t peer) { return internal::ForgetPeer(peer); }

ShipStats GetShipStats() {
  const internal::LoanCounters c = internal::GetLoanCounters();
  ShipStats s;
  s.regions_shipped = internal::g_regions_shipped.load(std::memory_order_relaxed);
  s.regions_received = internal::g_regions_received.load(std::memory_order_relaxed);
  s.payload_bytes_sent = internal::g_payload_sent.load(std::memory_order_relaxed);
  s.payload_bytes_received = internal::g_payload_received.load(std::memory_order_relaxed);
  s.manifest_bytes_sent = internal::g_manifest_sent.load(std::memory_order_relaxed);
  s.mapped_bytes_sent = internal::g_mapped_sent.load(std::memory_order_relaxed);
  s.mapped_bytes_received = internal::g_mapped_received.load(std::memory_order_relaxed);
  s.installed_warm_bytes = internal::g_installed_warm.load(std::memory_order_relaxed);
  s.installed_cold_bytes = internal::g_installed_cold.load(std::memory_order_relaxed);
  s.loaned_bytes = c.loaned_bytes;
  s.loaned_blocks = c.loaned_blocks;
  s.borrowed_bytes = c.borrowed_bytes;
  s.borrowed_blocks = c.borrowed_blocks;
  s.warm_borrowed_bytes = c.warm_borrowed_bytes;
  s.warm_borrowed_cap = c.warm_borrowed_cap;
  s.notes_queued = c.notes_queued;
  s.notes_pending = c.notes_pending;
  s.notes_accepted = c.notes_accepted;
  s.stale_notes = c.stale_notes;
  s.reclaimed_blocks = c.reclaimed_blocks;
  s.notes_relayed = c.notes_relayed;
  s.shared_slices_mapped = c.shared_slices_mapped;
  return s;
}

}  // namespace broom
