/* Copyright Broom authors.
 *
 * A plugin that dlclose_probe's early library dlopen()s from its constructor: it allocates and
 * frees through its own PLT slots. */
#include <stdlib.h>

void* plugin_alloc(size_t n) { return malloc(n); }
void plugin_free(void* p) { free(p); }
