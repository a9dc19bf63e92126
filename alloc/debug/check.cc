// Copyright Broom authors. Layer 3 (debug): fatal messages and ASan poisoning.
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>

#include "broom/internal/base.h"

#if BROOM_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace broom::internal {

void Fatal(const char* file, int line, const char* fmt, ...) {
  char buf[1024];
  int n = std::snprintf(buf, sizeof(buf), "broom: fatal: ");
  va_list ap;
  va_start(ap, fmt);
  n += std::vsnprintf(buf + n, sizeof(buf) - static_cast<size_t>(n), fmt, ap);
  va_end(ap);
  if (n > static_cast<int>(sizeof(buf)) - 64) n = static_cast<int>(sizeof(buf)) - 64;
  n += std::snprintf(buf + n, sizeof(buf) - static_cast<size_t>(n), " [%s:%d]\n", file, line);
  ssize_t ignored = write(STDERR_FILENO, buf, static_cast<size_t>(n));
  (void)ignored;
  std::abort();
}

#if BROOM_ASAN
void PoisonMemory(const void* p, size_t n) { ASAN_POISON_MEMORY_REGION(p, n); }
void UnpoisonMemory(const void* p, size_t n) { ASAN_UNPOISON_MEMORY_REGION(p, n); }
#endif

}  // namespace broom::internal
