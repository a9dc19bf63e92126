// Copyright Broom authors. Internal: compiler helpers and the check macros.
//
// Only what the inline fast paths of the public headers need lives here.
// Thread-safety: everything here is thread-safe (stateless).
//
// BROOM_CHECK(cond, fmt, ...)  always on; on failure prints "broom: fatal: <message>" to stderr
//                              (formatted into a stack buffer, never through malloc) and aborts.
// BROOM_ASSERT(cond)           on when BROOM_DEBUG >= 1; in release it still compiles `cond`
//                              without evaluating it, so asserted expressions cannot rot.
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

#if BROOM_DEBUG >= 1
#define BROOM_ASSERT(cond) BROOM_CHECK(cond, "assertion failed: %s", #cond)
#else
#define BROOM_ASSERT(cond) \
  do {                     \
    if (false) {           \
      (void)(cond);        \
    }                      \
  } while (0)
#endif

#endif  // BROOM_INTERNAL_BASE_H_
