/* Copyright Broom authors.
 *
 * broom/c/broom.h: the C API of Broom's regions, as exported by libbroom_preload.so.
 *
 *   broom_region_t          an opaque handle of one region (transferable, actor or temporary).
 *   broom_region_create()   / broom_region_destroy()       make and free a region.
 *   broom_region_push()     / broom_region_pop()           make it this thread's allocation
 *                           context: while pushed, malloc, calloc, realloc, memalign & co. and
 *                           C++ operator new on this thread allocate in it.
 *   broom_region_release()  / broom_region_adopt()         hand a transferable region to
 *                           another thread.
 *   broom_region_alloc(), broom_region_of(), broom_region_stats(), broom_global_stats(),
 *   broom_check_pointer(), broom_is_active(), broom_version().
 *
 * What free() does with region memory:
 *   transferable, temporary   nothing: the memory is freed in bulk with the region (a temporary
 *                             region also frees, at broom_region_pop, everything allocated since
 *                             the matching push).
 *   actor                     a real per-object free; the memory is reused by the region.
 *   realloc() of a region pointer grows in place when the object is the last one allocated in the
 *   current region; otherwise it allocates where malloc would now (the pushed region, or the heap
 *   when none is pushed), copies, and frees the old object as above. realloc() of a heap pointer
 *   while a region is pushed moves the object into the region. malloc_usable_size() is exact for
 *   region pointers (the size requested). Each malloc-routed region object carries a 16-byte
 *   header (its size and its region's tag).
 *
 * Ownership and lifetime: a handle owns its region; broom_region_destroy() frees the region, all
 * its memory and the handle. Every pointer into the region is dangling afterwards. With
 * BROOM_CONF=checks:1, free/realloc/malloc_usable_size of such a pointer is diagnosed (fatal,
 * naming the pointer), and broom_check_pointer() diagnoses it without dying.
 *
 * Thread-safety: a region has one owner thread at a time.
 *   transferable   owner-thread only. The owner hands it over with broom_region_release(); the
 *                  receiving thread calls broom_region_adopt() (the handle pointer itself is what
 *                  travels, through any synchronizing channel). In between it is IN_TRANSIT and
 *                  every other call on it fails.
 *   actor          thread-compatible: one thread at a time, which may change between callbacks
 *                  (the engine's hand-over must synchronize). free() of its objects must happen
 *                  on the thread that currently uses it.
 *   temporary      owner-thread only (the creating thread); push on another thread is fatal.
 *   The allocation-context stack is per thread. broom_global_stats(), broom_region_of(),
 *   broom_check_pointer(), broom_is_active() and broom_version() are thread-safe.
 *
 * Errors: functions returning int return 0 on success and a positive errno value on failure
 * (EINVAL: misuse such as popping a region that is not on top or adopting a region that was not
 * released; EBUSY: destroying, releasing or resetting a pushed region; ENOMEM). They never abort
 * for a recoverable misuse; memory-safety violations (a dangling pointer in checked mode) abort
 * with a message. Functions returning pointers return NULL on failure with errno set.
 *
 * Using the API with or without the preload (weak symbols): define BROOM_C_WEAK before including
 * this header and every function is declared weak; its address is NULL when libbroom_preload.so
 * is not loaded, so one binary runs under both:
 *
 *   #define BROOM_C_WEAK
 *   #include "broom/c/broom.h"
 *   ...
 *   broom_region_t* r = broom_available() ? broom_region_create(BROOM_TRANSFERABLE, NULL) : NULL;
 *   if (r) broom_region_push(r);
 *   char* s = malloc(64);               // in the region under the preload, on the heap without
 *   ...
 *   if (r) { broom_region_pop(r); broom_region_destroy(r); } else free(s);
 *
 * Link the program normally (no -lbroom_preload); run it with
 * LD_PRELOAD=/path/to/libbroom_preload.so. The same functions can be found with
 * dlsym(RTLD_DEFAULT, "broom_region_create"). Weak symbols need a position-independent
 * executable (the toolchain default on Debian): a non-PIE link resolves an undefined weak
 * function to NULL for good, so such programs must use dlsym.
 */
#ifndef BROOM_C_BROOM_H_
#define BROOM_C_BROOM_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(BROOM_C_WEAK)
#define BROOM_C_API __attribute__((weak, visibility("default")))
#else
#define BROOM_C_API __attribute__((visibility("default")))
#endif

typedef struct broom_region broom_region_t;

typedef enum broom_kind {
  BROOM_TRANSFERABLE = 0, /* a message/batch: moves between threads, freed in bulk */
  BROOM_ACTOR = 1,        /* an operator's state: per-object free, freed with the operator */
  BROOM_TEMPORARY = 2     /* per-callback scratch: each push/pop pair frees what it allocated */
} broom_kind_t;

typedef struct broom_region_options {
  size_t budget_bytes; /* 0 = unlimited; allocations beyond it fail with ENOMEM */
  const char* name;    /* for diagnostics; must outlive the region (a string literal), or NULL */
} broom_region_options_t;

typedef struct broom_region_stats {
  broom_kind_t kind;
  uint64_t id;            /* process-unique region id */
  size_t bytes_requested; /* bytes allocated (bump regions round each object up to 16 bytes;
                             malloc-routed objects include their 16-byte header) */
  size_t bytes_freed;     /* actor regions: bytes given back by free() */
  size_t block_bytes;     /* memory the region holds now */
  size_t blocks;
  size_t peak_block_bytes;
} broom_region_stats_t;

typedef struct broom_global_stats {
  uint64_t regions_created[3]; /* indexed by broom_kind_t */
  uint64_t regions_destroyed[3];
  uint64_t regions_live[3];
  uint64_t region_mallocs[3]; /* malloc/new calls routed to each kind (counted with stats:1) */
  uint64_t heap_mallocs;      /* allocations that went to the heap (counted with stats:1) */
  size_t block_bytes;         /* region memory held by live regions */
  size_t peak_block_bytes;
  size_t cached_bytes;   /* free region memory kept warm */
  size_t reserved_bytes; /* address space reserved for regions */
} broom_global_stats_t;

/* Weak-symbol helper: true when the library is present (always true when linked normally). */
#define broom_available() (&broom_region_create != NULL)

/* 1 when this process's malloc is Broom's (the preload is active), 0 otherwise (for example the
 * prefixed testing build). */
BROOM_C_API int broom_is_active(void);
BROOM_C_API const char* broom_version(void);

/* Creates a region of `kind` (options may be NULL). About 50 ns. Returns NULL with errno =
 * ENOMEM (no memory), EINVAL (bad kind) or ENOTSUP (regions disabled: a malloc call site that
 * the preload had bound straight to jemalloc could not be restored, see docs/preload.md; a
 * warning says so once). The calling thread becomes its owner. */
BROOM_C_API broom_region_t* broom_region_create(broom_kind_t kind,
                                                const broom_region_options_t* options);
/* Frees the region, every object in it and the handle. NULL is ignored (returns 0). EBUSY if it
 * is pushed on this thread (pop it first); EINVAL if it is IN_TRANSIT. O(blocks). */
BROOM_C_API int broom_region_destroy(broom_region_t* region);
/* Frees every object but keeps the region (and up to 1 MiB of its memory) for refilling.
 * EBUSY if pushed. */
BROOM_C_API int broom_region_reset(broom_region_t* region);

/* Pushes `region` on this thread's allocation-context stack (at most 64 deep). A temporary region
 * also records a mark: the matching pop frees what was allocated since. Pushing the same region
 * several times nests. EINVAL if IN_TRANSIT, owned by another thread (temporary), or too deep. */
BROOM_C_API int broom_region_push(broom_region_t* region);
/* Pops `region`, which must be the top of this thread's stack (EINVAL otherwise). */
BROOM_C_API int broom_region_pop(broom_region_t* region);
/* The top of this thread's stack, or NULL. */
BROOM_C_API broom_region_t* broom_current_region(void);

/* Hand-over of a transferable region. REQUIRES: kind transferable, not pushed (EBUSY), owned by
 * the caller. Afterwards the region is IN_TRANSIT until a thread calls broom_region_adopt. */
BROOM_C_API int broom_region_release(broom_region_t* region);
/* The calling thread becomes the owner. EINVAL unless IN_TRANSIT. */
BROOM_C_API int broom_region_adopt(broom_region_t* region);

/* Allocates `size` bytes aligned to `align` (a power of two, or 0 for 16) in `region` without
 * pushing it. The result may be passed to free/realloc/malloc_usable_size like a malloc-routed
 * region pointer. NULL with errno = ENOMEM (budget, no memory) or EINVAL (alignment). */
BROOM_C_API void* broom_region_alloc(broom_region_t* region, size_t size, size_t align);

/* The handle of the live region that owns `p`, or NULL (heap, stack, destroyed region, or a
 * region created without this API). */
BROOM_C_API broom_region_t* broom_region_of(const void* p);

BROOM_C_API int broom_region_stats(const broom_region_t* region, broom_region_stats_t* out);
BROOM_C_API int broom_global_stats(broom_global_stats_t* out);

/* Classifies `p`: 0 heap or not Broom's memory; 1 live region memory; -1 a pointer into a
 * destroyed (or reset-and-reused) region, after printing a diagnostic on stderr. */
BROOM_C_API int broom_check_pointer(const void* p);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* BROOM_C_BROOM_H_ */
