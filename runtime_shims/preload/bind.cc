// Copyright Broom authors.
//
// Direct binding of PLT slots to jemalloc. See bind.h.
#include "runtime_shims/preload/bind.h"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace broom::preload {

namespace {

struct Slot {
  void** at;        // null: dropped (its object could not be pinned, or the store failed)
  void* export_fn;  // what the slot held (or would hold once bound): Broom's export
  void* target;     // what BindDirect() wrote: jemalloc's function
  bool relro;       // on a page made read-only after relocation (InReadOnlyRelro)
};

// An object with candidate slots: g_slots[first, end).
struct Object {
  const char* name;  // dlpi_name; "" for the executable
  int first, end;
  bool pin;  // not loaded with the executable: could be unloaded (Pin)
};
constexpr int kMaxObjects = 256;

// Written by BindDirect() (constructor, one thread) and UnbindDirect() (under the caller's lock).
Slot g_slots[kMaxBoundSlots];
int g_num_slots = 0;
Object g_objects[kMaxObjects];
int g_num_objects = 0;

constexpr int kMaxTargets = 16;

struct Resolved {
  const char* name;
  uint32_t prefix;  // Prefix(name)
  void* export_fn;  // Broom's definition, as the loader binds it
  void* target;
};

// The first three bytes of `name` (fewer if it is shorter) as one integer: a relocation whose
// name differs there from every target's needs no strcmp, and nearly all do.
uint32_t Prefix(const char* name) {
  uint32_t v = static_cast<unsigned char>(name[0]);
  if (name[0] != '\0') {
    v |= static_cast<uint32_t>(static_cast<unsigned char>(name[1])) << 8;
    if (name[1] != '\0') v |= static_cast<uint32_t>(static_cast<unsigned char>(name[2])) << 16;
  }
  return v;
}

struct Walk {
  const Resolved* targets;
  int count;
  const void* skip[2];  // code addresses in Broom's own object and in jemalloc's
};

// An object's dynamic section entries. The loader relocates the address entries in place for
// most objects (not for the vDSO, whose dynamic section is read-only); `base` is added to an
// address below it.
struct Dynamic {
  const ElfW(Rela) * jmprel = nullptr;
  size_t jmprel_bytes = 0;
  const ElfW(Sym) * symtab = nullptr;
  const char* strtab = nullptr;
  const ElfW(Dyn) * dyn = nullptr;  // the whole section, for DT_NEEDED (see NeededNames)
  const char* soname = nullptr;
  bool rela = false;
  bool symbolic = false;
};

template <class T>
const T* Rebase(uintptr_t value, uintptr_t base) {
  return reinterpret_cast<const T*>(value < base ? value + base : value);
}

bool ReadDynamic(const dl_phdr_info* info, Dynamic* d) {
  const ElfW(Dyn)* dyn = nullptr;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    if (info->dlpi_phdr[i].p_type == PT_DYNAMIC) {
      dyn = reinterpret_cast<const ElfW(Dyn)*>(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
    }
  }
  if (dyn == nullptr) return false;
  uintptr_t base = info->dlpi_addr;
  d->dyn = dyn;
  uintptr_t soname = 0;
  bool has_soname = false;
  for (; dyn->d_tag != DT_NULL; ++dyn) {
    switch (dyn->d_tag) {
      case DT_JMPREL:
        d->jmprel = Rebase<ElfW(Rela)>(dyn->d_un.d_ptr, base);
        break;
      case DT_PLTRELSZ:
        d->jmprel_bytes = dyn->d_un.d_val;
        break;
      case DT_PLTREL:
        d->rela = dyn->d_un.d_val == DT_RELA;
        break;
      case DT_SYMTAB:
        d->symtab = Rebase<ElfW(Sym)>(dyn->d_un.d_ptr, base);
        break;
      case DT_STRTAB:
        d->strtab = Rebase<char>(dyn->d_un.d_ptr, base);
        break;
      case DT_SYMBOLIC:
        d->symbolic = true;
        break;
      case DT_FLAGS:
        if (dyn->d_un.d_val & DF_SYMBOLIC) d->symbolic = true;
        break;
      case DT_SONAME:
        soname = dyn->d_un.d_val;
        has_soname = true;
        break;
      default:
        break;
    }
  }
  if (has_soname && d->strtab != nullptr) d->soname = d->strtab + soname;
  return d->jmprel != nullptr && d->symtab != nullptr && d->strtab != nullptr && d->rela &&
         !d->symbolic;
}

// True if `p` lies in one of the object's segments of type `type` with all of `flags`.
bool InSegment(const dl_phdr_info* info, const void* p, uint32_t type, uint32_t flags = 0) {
  auto a = reinterpret_cast<uintptr_t>(p);
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != type || (ph.p_flags & flags) != flags) continue;
    if (a - (info->dlpi_addr + ph.p_vaddr) < ph.p_memsz) return true;
  }
  return false;
}

uintptr_t PageSize() { return static_cast<uintptr_t>(sysconf(_SC_PAGESIZE)); }

// True if `slot` is on a page the loader made read-only after relocation. The loader protects
// the RELRO range rounded down to whole pages at both ends (glibc's _dl_protect_relro): a slot
// on a last, partial page shares it with writable data and stays writable.
bool InReadOnlyRelro(const dl_phdr_info* info, void** slot) {
  auto a = reinterpret_cast<uintptr_t>(slot);
  uintptr_t page = PageSize();
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_GNU_RELRO) continue;
    uintptr_t lo = (info->dlpi_addr + ph.p_vaddr) & ~(page - 1);
    uintptr_t hi = (info->dlpi_addr + ph.p_vaddr + ph.p_memsz) & ~(page - 1);
    if (a >= lo && a < hi) return true;
  }
  return false;
}

// Stores `value` into `slot`, lifting the read-only protection around the store if needed.
bool Store(void** slot, void* value, bool relro) {
  if (!relro) {
    __atomic_store_n(slot, value, __ATOMIC_RELAXED);
    return true;
  }
  uintptr_t page_size = PageSize();
  void* page = reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(slot) & ~(page_size - 1));
  if (mprotect(page, page_size, PROT_READ | PROT_WRITE) != 0) return false;
  __atomic_store_n(slot, value, __ATOMIC_RELAXED);
  mprotect(page, page_size, PROT_READ);
  return true;
}

// ---- which objects to bind -------------------------------------------------------------------
// Broom and jemalloc pull in libstdc++, libm and libgcc_s, which a C program such as /bin/true
// never calls; libstdc++ alone has about 1000 PLT relocations, and reading their (cold) symbol
// names was most of the binding's start-up cost. So only objects the program itself needs are
// bound: those reachable through DT_NEEDED from a root (an object no other object needs: the
// executable, another LD_PRELOAD library, a plugin dlopen()ed before Broom's constructor) other
// than Broom. libstdc++ is bound when the program (or one of its libraries) is C++. An object
// reachable from the executable was loaded with it and can never be unloaded; the others are
// pinned (Pin).

struct Loaded {
  uintptr_t addr;         // dlpi_addr: identifies the object across the two walks
  const char* soname;     // DT_SONAME, else the file name; what DT_NEEDED entries name
  const ElfW(Dyn) * dyn;  // for DT_NEEDED
  const char* strtab;
  bool skip;      // Broom, jemalloc, the vDSO, or no usable dynamic section
  bool needed;    // some other object lists it in DT_NEEDED
  bool bind;      // reachable from a root other than Broom
  bool from_exe;  // reachable from the executable
};
Loaded g_loaded[kMaxObjects];
int g_num_loaded = 0;

const char* BaseName(const char* path) {
  const char* slash = std::strrchr(path, '/');
  return slash != nullptr ? slash + 1 : path;
}

bool IsVdso(const dl_phdr_info* info) {
  return info->dlpi_name != nullptr && std::strstr(info->dlpi_name, "linux-vdso") != nullptr;
}

[[maybe_unused]] int ListObject(dl_phdr_info* info, size_t, void* arg) {
  const Walk& w = *static_cast<const Walk*>(arg);
  if (g_num_loaded == kMaxObjects) return 1;
  Loaded& o = g_loaded[g_num_loaded++];
  Dynamic d;
  bool usable = ReadDynamic(info, &d);
  const char* name = info->dlpi_name != nullptr ? info->dlpi_name : "";
  o = {info->dlpi_addr, d.soname != nullptr ? d.soname : BaseName(name),
       d.dyn,           d.strtab,
       false,           false,
       false,           false};
  o.skip = !usable || IsVdso(info) || InSegment(info, w.skip[0], PT_LOAD) ||
           InSegment(info, w.skip[1], PT_LOAD);
  return 0;
}

int FindLoaded(const char* soname) {
  for (int i = 0; i < g_num_loaded; ++i) {
    if (std::strcmp(g_loaded[i].soname, soname) == 0) return i;
  }
  return -1;
}

// Marks `i` and everything it needs. `self` (Broom's object) is never entered: what only Broom
// needs stays unmarked.
void Mark(int i, int self, bool Loaded::*flag) {
  if (i < 0 || i == self || g_loaded[i].*flag) return;
  g_loaded[i].*flag = true;
  if (g_loaded[i].dyn == nullptr || g_loaded[i].strtab == nullptr) return;
  for (const ElfW(Dyn)* d = g_loaded[i].dyn; d->d_tag != DT_NULL; ++d) {
    if (d->d_tag == DT_NEEDED) Mark(FindLoaded(g_loaded[i].strtab + d->d_un.d_val), self, flag);
  }
}

// Fills g_loaded and decides which objects to bind (see above).
void ChooseObjects(Walk* w, const void* self) {
  g_num_loaded = 0;
  dl_iterate_phdr(&ListObject, w);
  int self_index = -1;
  dl_find_object found;
  if (_dl_find_object(const_cast<void*>(self), &found) == 0) {
    for (int i = 0; i < g_num_loaded; ++i) {
      if (g_loaded[i].addr == reinterpret_cast<uintptr_t>(found.dlfo_link_map->l_addr)) {
        self_index = i;
      }
    }
  }
  for (int i = 0; i < g_num_loaded; ++i) {
    if (g_loaded[i].dyn == nullptr || g_loaded[i].strtab == nullptr) continue;
    for (const ElfW(Dyn)* d = g_loaded[i].dyn; d->d_tag != DT_NULL; ++d) {
      if (d->d_tag != DT_NEEDED) continue;
      int j = FindLoaded(g_loaded[i].strtab + d->d_un.d_val);
      if (j >= 0 && j != i) g_loaded[j].needed = true;
    }
  }
  for (int i = 0; i < g_num_loaded; ++i) {
    if (!g_loaded[i].needed) Mark(i, self_index, &Loaded::bind);
  }
  if (g_num_loaded > 0) Mark(0, self_index, &Loaded::from_exe);  // the executable comes first
}

const Loaded* LoadedAt(uintptr_t addr) {
  for (int i = 0; i < g_num_loaded; ++i) {
    if (g_loaded[i].addr == addr) return &g_loaded[i];
  }
  return nullptr;
}

// Collects the object's candidate slots (nothing is written yet). An object that already has
// one of the functions bound to something other than Broom resolves the family elsewhere
// (RTLD_DEEPBIND, its own definitions): none of its slots is taken, so its mallocs and frees
// keep going to the same allocator.
[[maybe_unused]] int CollectObject(dl_phdr_info* info, size_t, void* arg) {
  const Walk& w = *static_cast<const Walk*>(arg);
  const Loaded* o = LoadedAt(info->dlpi_addr);
  if (o == nullptr || o->skip || !o->bind) return 0;
  Dynamic d;
  if (g_num_objects == kMaxObjects || !ReadDynamic(info, &d)) return 0;
  const int first = g_num_slots;
  size_t n = d.jmprel_bytes / sizeof(ElfW(Rela));
  for (size_t i = 0; i < n; ++i) {
    const ElfW(Rela)& r = d.jmprel[i];
    if (ELF64_R_TYPE(r.r_info) != R_X86_64_JUMP_SLOT) continue;
    const char* name = d.strtab + d.symtab[ELF64_R_SYM(r.r_info)].st_name;
    const uint32_t prefix = Prefix(name);
    for (int k = 0; k < w.count; ++k) {
      const Resolved& t = w.targets[k];
      if (prefix != t.prefix || std::strcmp(name, t.name) != 0) continue;
      auto** slot = reinterpret_cast<void**>(info->dlpi_addr + r.r_offset);
      void* now = __atomic_load_n(slot, __ATOMIC_RELAXED);
      // Bound to Broom, or not bound yet: a lazily bound slot points back into the object's own
      // PLT until the first call. Anything else: the object resolves the family elsewhere.
      if (now != t.export_fn && !InSegment(info, now, PT_LOAD, PF_X)) {
        g_num_slots = first;
        return 0;
      }
      if (g_num_slots == kMaxBoundSlots) break;
      g_slots[g_num_slots++] = {slot, t.export_fn, t.target, InReadOnlyRelro(info, slot)};
      break;
    }
  }
  if (g_num_slots > first) {
    g_objects[g_num_objects++] = {info->dlpi_name != nullptr ? info->dlpi_name : "", first,
                                  g_num_slots, !o->from_exe};
  }
  return 0;
}

// Makes the object impossible to unload (RTLD_NODELETE), so its slots stay valid until
// UnbindDirect(). Objects loaded with the executable cannot be unloaded anyway (no pin, no
// dlopen call); one dlopen()ed by a constructor that ran before Broom's could be.
[[maybe_unused]] bool Pin(const Object& o) {
  if (!o.pin) return true;
  return dlopen(o.name, RTLD_LAZY | RTLD_NOLOAD | RTLD_NODELETE) != nullptr;
}

// Broom's own definition of `name` (the global lookup may return something else).
[[maybe_unused]] void* OwnDefinition(const void* self, const char* name) {
  Dl_info info;
  if (dladdr(self, &info) == 0 || info.dli_fname == nullptr) return nullptr;
  void* handle = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
  if (handle == nullptr) return nullptr;
  void* fn = dlsym(handle, name);  // searches Broom's object first
  dlclose(handle);
  return fn;
}

struct StubQuery {
  const char* name;
  const void* address;
  bool canonical;
};

// Checks the executable (the first object reported): `address` is its PLT stub for `name` if
// its JUMP_SLOT relocation for `name` refers to an undefined symbol with a value (the linker's
// canonical PLT entry for an address-taken function in non-PIE code).
[[maybe_unused]] int FindStub(dl_phdr_info* info, size_t, void* arg) {
  auto* q = static_cast<StubQuery*>(arg);
  Dynamic d;
  if (!ReadDynamic(info, &d)) return 1;
  size_t n = d.jmprel_bytes / sizeof(ElfW(Rela));
  for (size_t i = 0; i < n; ++i) {
    const ElfW(Sym)& sym = d.symtab[ELF64_R_SYM(d.jmprel[i].r_info)];
    if (std::strcmp(d.strtab + sym.st_name, q->name) != 0) continue;
    q->canonical = sym.st_shndx == SHN_UNDEF && sym.st_value != 0 &&
                   reinterpret_cast<const void*>(info->dlpi_addr + sym.st_value) == q->address;
    break;
  }
  return 1;  // only the executable
}

[[maybe_unused]] bool IsCanonicalPltStub(const char* name, const void* address) {
  StubQuery q = {name, address, false};
  dl_iterate_phdr(&FindStub, &q);
  return q.canonical;
}

// The object containing code address `p` (its link map), or null. _dl_find_object is a lock-free
// lookup; dladdr would also search the object's symbol table.
const void* ObjectOf(const void* p) {
  dl_find_object found;
  if (p == nullptr || _dl_find_object(const_cast<void*>(p), &found) != 0) return nullptr;
  return found.dlfo_link_map;
}

}  // namespace

int BindDirect(const BindTarget* targets, int count) {
#if !defined(__x86_64__)
  (void)targets;
  (void)count;
  return 0;  // the relocation type is x86-64's; elsewhere the exports keep the one jump
#else
  if (g_num_slots != 0 || count > kMaxTargets) return 0;
  // An audit library (LD_AUDIT: sotruss, latrace) or LD_PROFILE sees PLT calls through the
  // loader's trampolines; rewritten slots would hide them.
  if (std::getenv("LD_AUDIT") != nullptr || std::getenv("LD_PROFILE") != nullptr) return 0;
  const void* self = reinterpret_cast<const void*>(&BindDirect);
  Resolved resolved[kMaxTargets];
  int n = 0;
  const void* je = nullptr;
  for (int i = 0; i < count; ++i) {
    if (targets[i].target == nullptr) continue;
    // The definition the loader binds PLT slots to must be Broom's; if something earlier in
    // the search order defines the name, calls never reached Broom and stay as they are.
    void* export_fn = dlsym(RTLD_DEFAULT, targets[i].name);
    if (export_fn == nullptr) continue;
    if (ObjectOf(export_fn) != ObjectOf(self)) {
      // A non-PIE executable that takes &name has a "canonical PLT" entry: the global lookup
      // returns its stub, but PLT slots (the executable's own included) still bind to Broom.
      void* own = OwnDefinition(self, targets[i].name);
      if (own == nullptr || !IsCanonicalPltStub(targets[i].name, export_fn)) continue;
      export_fn = own;
    }
    resolved[n++] = {targets[i].name, Prefix(targets[i].name), export_fn, targets[i].target};
    je = targets[i].target;
  }
  if (n == 0) return 0;
  Walk w = {resolved, n, {self, je}};
  ChooseObjects(&w, self);
  dl_iterate_phdr(&CollectObject, &w);
  int bound = 0;
  for (int o = 0; o < g_num_objects; ++o) {
    bool pinned = Pin(g_objects[o]);
    for (int i = g_objects[o].first; i < g_objects[o].end; ++i) {
      Slot& slot = g_slots[i];
      if (pinned && Store(slot.at, slot.target, slot.relro)) {
        g_slots[bound++] = slot;
      }
    }
  }
  g_num_slots = bound;
  g_num_objects = 0;
  return bound;
#endif
}

bool UnbindDirect() {
  bool ok = true;
  for (int i = 0; i < g_num_slots; ++i) {
    const Slot& slot = g_slots[i];
    // A slot that no longer holds jemalloc's function was changed by someone else (a PLT
    // hooking tool): leave it, and report that calls through it cannot be routed.
    if (__atomic_load_n(slot.at, __ATOMIC_RELAXED) != slot.target ||
        !Store(slot.at, slot.export_fn, slot.relro)) {
      ok = false;
    }
  }
  g_num_slots = 0;
  return ok;
}

}  // namespace broom::preload
