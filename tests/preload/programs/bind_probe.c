/* Copyright Broom authors.
 *
 * Checks direct binding (runtime_shims/preload/bind.h) from the program's side: reads its own
 * PLT slots for malloc, calloc and free and prints which object each one calls, before and
 * after the first region is created. While the first region is created on this thread, a second
 * thread keeps calling malloc/free (the slots change under it). Then it checks that malloc,
 * calloc and free route through the region that is pushed.
 *
 * Prints, e.g. under the preload:
 *   before malloc=jemalloc calloc=jemalloc free=jemalloc
 *   after malloc=broom calloc=broom free=broom
 *   routed 1
 * Without the preload only the "before" line (glibc's functions, or "lazy" for a slot the
 * loader has not bound yet). Exit status 0 unless a check failed.
 *
 * `bind_probe hook` first rewrites its own malloc slot to a hook that calls what the slot held
 * (as a PLT hooking tool would); under the preload with binding on, that slot can no longer be
 * restored, so broom_region_create must fail with ENOTSUP: prints "regions disabled".
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <link.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "broom/c/broom.h"

static const char* const kNames[] = {"malloc", "calloc", "free"};
enum { kNumNames = 3 };
static void** slots[kNumNames];

static uintptr_t rebase(uintptr_t v, uintptr_t base) { return v < base ? v + base : v; }

/* Finds this executable's JUMP_SLOT relocations for kNames (the first object reported). */
static int find_slots(struct dl_phdr_info* info, size_t size, void* arg) {
  (void)size;
  (void)arg;
  const ElfW(Dyn)* dyn = NULL;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    if (info->dlpi_phdr[i].p_type == PT_DYNAMIC) {
      dyn = (const ElfW(Dyn)*)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
    }
  }
  const ElfW(Rela)* rel = NULL;
  size_t bytes = 0;
  const ElfW(Sym)* sym = NULL;
  const char* str = NULL;
  for (; dyn != NULL && dyn->d_tag != DT_NULL; ++dyn) {
    if (dyn->d_tag == DT_JMPREL) rel = (const ElfW(Rela)*)rebase(dyn->d_un.d_ptr, info->dlpi_addr);
    if (dyn->d_tag == DT_PLTRELSZ) bytes = dyn->d_un.d_val;
    if (dyn->d_tag == DT_SYMTAB) sym = (const ElfW(Sym)*)rebase(dyn->d_un.d_ptr, info->dlpi_addr);
    if (dyn->d_tag == DT_STRTAB) str = (const char*)rebase(dyn->d_un.d_ptr, info->dlpi_addr);
  }
  for (size_t i = 0; rel != NULL && sym != NULL && str != NULL && i < bytes / sizeof *rel; ++i) {
    const char* name = str + sym[ELF64_R_SYM(rel[i].r_info)].st_name;
    for (int k = 0; k < kNumNames; ++k) {
      if (strcmp(name, kNames[k]) == 0) slots[k] = (void**)(info->dlpi_addr + rel[i].r_offset);
    }
  }
  return 1; /* only the executable */
}

int main(int argc, char** argv);

/* "broom" for the preload's exported function, "jemalloc" for jemalloc's own (in
 * libjemalloc.so.2, or linked into the preload and then not its export of that name), "lazy"
 * for a slot not bound yet, else the basename of the object. */
static const char* target_of(void** slot, const char* name) {
  if (slot == NULL) return "none";
  Dl_info info, self;
  void* fn = __atomic_load_n(slot, __ATOMIC_RELAXED);
  if (dladdr(fn, &info) == 0 || info.dli_fname == NULL) return "?";
  /* An unbound lazy slot points back into this executable's own PLT. */
  if (dladdr((void*)&main, &self) != 0 && info.dli_fbase == self.dli_fbase) return "lazy";
  const char* base = strrchr(info.dli_fname, '/');
  base = base != NULL ? base + 1 : info.dli_fname;
  if (strncmp(base, "libjemalloc", 11) == 0) return "jemalloc";
  if (strncmp(base, "libbroom_preload", 16) == 0) {
    void* h = dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD);
    void* exported = h != NULL ? dlsym(h, name) : NULL;
    if (h != NULL) dlclose(h);
    return fn == exported ? "broom" : "jemalloc";
  }
  return base;
}

static void print_slots(const char* when) {
  printf("%s", when);
  for (int k = 0; k < kNumNames; ++k) {
    printf(" %s=%s", kNames[k], target_of(slots[k], kNames[k]));
  }
  printf("\n");
}

/* The non-PIE build takes malloc's address in code (main): that gives the executable a
 * canonical PLT entry for malloc, which the global symbol lookup then returns instead of the
 * preload's definition. */
void* (*volatile taken_malloc)(size_t);

/* The C API through dlsym rather than weak symbols: a non-PIE executable resolves an undefined
 * weak function to null at link time, so only dlsym finds the preload's functions there. */
static struct {
  broom_region_t* (*create)(broom_kind_t, const broom_region_options_t*);
  int (*destroy)(broom_region_t*);
  int (*push)(broom_region_t*);
  int (*pop)(broom_region_t*);
  broom_region_t* (*region_of)(const void*);
} api;

static int load_api(void) {
  *(void**)&api.create = dlsym(RTLD_DEFAULT, "broom_region_create");
  *(void**)&api.destroy = dlsym(RTLD_DEFAULT, "broom_region_destroy");
  *(void**)&api.push = dlsym(RTLD_DEFAULT, "broom_region_push");
  *(void**)&api.pop = dlsym(RTLD_DEFAULT, "broom_region_pop");
  *(void**)&api.region_of = dlsym(RTLD_DEFAULT, "broom_region_of");
  return api.create != NULL && api.destroy != NULL && api.push != NULL && api.pop != NULL &&
         api.region_of != NULL;
}

static atomic_int stop;
static void* volatile escape;

static void* churn(void* arg) {
  (void)arg;
  while (!atomic_load(&stop)) {
    void* p = malloc(48);
    escape = p;
    free(p);
    p = calloc(2, 24);
    escape = p;
    free(p);
  }
  return NULL;
}

static void* (*hooked)(size_t);
static void* hook_malloc(size_t n) { return hooked(n); }

/* Points this executable's malloc slot at hook_malloc, which calls what the slot held. */
static void install_hook(void) {
  void** slot = slots[0];
  uintptr_t page = (uintptr_t)slot & ~(uintptr_t)(sysconf(_SC_PAGESIZE) - 1);
  mprotect((void*)page, (size_t)sysconf(_SC_PAGESIZE), PROT_READ | PROT_WRITE);
  hooked = (void* (*)(size_t))__atomic_load_n(slot, __ATOMIC_RELAXED);
  __atomic_store_n(slot, (void*)&hook_malloc, __ATOMIC_RELAXED);
}

int main(int argc, char** argv) {
#if !defined(__PIE__) /* in PIE code, taking the address moves the calls to a GOT slot */
  taken_malloc = malloc;
#endif
  dl_iterate_phdr(&find_slots, NULL);
  print_slots("before");
  if (!load_api()) return 0;
  if (argc > 1 && strcmp(argv[1], "hook") == 0) {
    free(malloc(1)); /* a lazy slot gets bound first */
    install_hook();
    broom_region_t* r = api.create(BROOM_TEMPORARY, NULL);
    if (r == NULL && errno == ENOTSUP) {
      printf("regions disabled\n");
      return 0;
    }
    printf("region created\n");
    api.destroy(r);
    return 0;
  }

  int failures = 0;
  pthread_t t;
  pthread_create(&t, NULL, &churn, NULL);
  broom_region_t* r = api.create(BROOM_TEMPORARY, NULL);
  print_slots("after");
  api.push(r);
  void* a = malloc(40);
  void* b = calloc(3, 16);
  int routed = api.region_of(a) == r && api.region_of(b) == r && ((char*)b)[47] == 0;
  free(a); /* region pointers: no-ops */
  free(b);
  api.pop(r);
  void* c = malloc(40); /* nothing pushed: the heap again */
  routed = routed && api.region_of(c) == NULL;
  free(c);
  api.destroy(r);
  atomic_store(&stop, 1);
  pthread_join(t, NULL);
  printf("routed %d\n", routed);
  if (!routed) ++failures;
  return failures == 0 ? 0 : 1;
}
