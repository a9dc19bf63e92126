// Copyright Broom authors. Internal: compiler helpers and the check macros.
//
// Only what the inline fast paths of the public headers need lives here.
// Thread-safety: everything here is thread-safe (stateless).
//
// BROOM_CHECK(cond, fmt, ...)  always on; on failure prints "broom: fatal: <message>" to stderr
//                              (formatted into a stack buffer, never through malloc) and aborts.
// Debug levels (BROOM_DEBUG, a CMake option), in the manner of mimalloc's MI_DEBUG:
//   0  release: only BROOM_CHECK (misuse that is cheap to catch: foreign and double frees,
//      typestate, owner checks off the fast paths)
//   1  + BROOM_ASSERT: cheap assertions on slow paths (refills, new blocks, list moves)
//   2  + BROOM_ASSERT_FAST: assertions on fast paths (cursor bounds, free-list objects carry
//      their tag, slab counters) and owner-thread checks on every allocation
//   3  + BROOM_VALIDATE: whole-structure walks (every block header, every free list, every byte
//      counter) when a region is destroyed or reset
// An assertion that is off still compiles its expression without evaluating it, so asserted
// expressions cannot rot.
//
// BROOM_ASSERT(cond), BROOM_ASSERT_FAST(cond)   fatal "assertion failed: <cond>" when on.
// BROOM_VALIDATE(expr)         evaluates `expr` (a validity walk, itself fatal on a violation)
//                              at level 3; compiled but not evaluated below.
// BROOM_ASSUME(cond)           an optimizer hint: `cond` holds (undefined behaviour if not).
#ifndef BROOM_INTERNAL_BASE_H_
#define BROOM_INTERNAL_BASE_H_

#include <cstddef>
#include <cstdint>

#ifndef BROOM_DEBUG
#define BROOM_DEBUG 0
#endif

#define BROOM_LIKELY(x) __builtin_expect(!!(x), 1)
#define BROOM_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define BROOM_NOINLINE __attribute__((noinline))
#define BROOM_PRINTF(f, a) __attribute__((format(printf, f, a)))
// See the file comment. Used where it lets callers' checks fold away (a fast path's result is
// non-null); UBSan reports a violated assumption.
#define BROOM_ASSUME(cond)                \
  do {                                    \
    if (!(cond)) __builtin_unreachable(); \
  } while (0)

#if defined(__SANITIZE_ADDRESS__)
#define BROOM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BROOM_ASAN 1
#endif
#endif
#ifndef BROOM_ASAN
#define BROOM_ASAN 0
#endif

namespace broom::internal {

// Prints "broom: fatal: <formatted message>" and aborts. Never allocates.
[[noreturn]] void Fatal(const char* file, int line, const char* fmt, ...) BROOM_PRINTF(3, 4);

// ASan poisoning of region memory; inline no-ops without ASan.
#if BROOM_ASAN
void PoisonMemory(const void* p, size_t n);
void UnpoisonMemory(const void* p, size_t n);
#else
inline void PoisonMemory(const void*, size_t) {}
inline void UnpoisonMemory(const void*, size_t) {}
#endif

}  // namespace broom::internal

#define BROOM_CHECK(cond, ...)                                   \
  do {                                                           \
    if (BROOM_UNLIKELY(!(cond))) {                               \
      ::broom::internal::Fatal(__FILE__, __LINE__, __VA_ARGS__); \
    }                                                            \
  } while (0)

#define BROOM_INTERNAL_DISABLED(expr) \
  do {                                \
    if (false) {                      \
      (void)(expr);                   \
    }                                 \
  } while (0)

#if BROOM_DEBUG >= 1
#define BROOM_ASSERT(cond) BROOM_CHECK(cond, "assertion failed: %s", #cond)
#else
#define BROOM_ASSERT(cond) BROOM_INTERNAL_DISABLED(cond)
#endif

#if BROOM_DEBUG >= 2
#define BROOM_ASSERT_FAST(cond) BROOM_CHECK(cond, "assertion failed: %s", #cond)
#else
#define BROOM_ASSERT_FAST(cond) BROOM_INTERNAL_DISABLED(cond)
#endif

#if BROOM_DEBUG >= 3
#define BROOM_VALIDATE(expr) \
  do {                       \
    (expr);                  \
  } while (0)
#else
#define BROOM_VALIDATE(expr) BROOM_INTERNAL_DISABLED(expr)
#endif

#endif  // BROOM_INTERNAL_BASE_H_
