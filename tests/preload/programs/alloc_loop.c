/* Copyright Broom authors.
 *
 * A program that does nothing but allocate: 200 000 malloc/free pairs of 16..527 bytes through
 * a ring of 64 slots. Under the profiler its heap is most of its own CPU time, however much the
 * profiler slows it down (the report must not say that regions cannot help). Prints a checksum.
 */
#include <stdio.h>
#include <stdlib.h>

int main(void) {
  void* ring[64] = {0};
  unsigned x = 12345, sum = 0;
  for (int i = 0; i < 200000; ++i) {
    x = x * 1103515245u + 12345u;
    free(ring[i % 64]);
    unsigned char* p = malloc(16 + (x >> 16) % 512);
    if (p == NULL) return 1;
    p[0] = (unsigned char)i;
    sum += p[0];
    ring[i % 64] = p;
  }
  for (int i = 0; i < 64; ++i) free(ring[i]);
  printf("%u\n", sum);
  return 0;
}
