/* Copyright Broom authors.
 *
 * A program linked with jemalloc itself (-ljemalloc) that mixes jemalloc's own API with the
 * standard functions: mallocx then free, malloc then sdallocx, rallocx of a malloc'ed block,
 * mallctl. Under the preload both sets must reach one heap, whether Broom loads
 * libjemalloc.so.2 or has jemalloc linked in (it then exports jemalloc's API too). Prints "ok"
 * and the usable sizes it saw; exits non-zero if a check fails (a mixed-up heap usually
 * crashes instead).
 */
#include <jemalloc/jemalloc.h>
#include <stdio.h>
#include <string.h>

int main(void) {
  int bad = 0;
  for (int i = 0; i < 1000; ++i) {
    char* a = mallocx(100 + (size_t)i, 0);
    memset(a, 1, 100);
    free(a);
    char* b = malloc(50);
    memset(b, 2, 50);
    if (sallocx(b, 0) < 50) bad = 1;
    sdallocx(b, 50, 0);
    char* c = malloc(32);
    c = rallocx(c, 4096, 0);
    if (c == NULL || malloc_usable_size(c) < 4096) bad = 1;
    dallocx(c, 0);
  }
  unsigned narenas = 0;
  size_t len = sizeof(narenas);
  if (mallctl("arenas.narenas", &narenas, &len, NULL, 0) != 0 || narenas == 0) bad = 1;
  printf("%s\n", bad ? "FAILED" : "ok");
  return bad;
}
