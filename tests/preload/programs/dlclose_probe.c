/* Copyright Broom authors.
 *
 * Direct binding with a plugin that was dlopen()ed before the preload's constructor ran (by
 * early_dlopen.c's constructor):
 *   dlclose_probe close   closes the plugin, then creates a region and allocates in it
 *                         (binding must have pinned the plugin: its slots are restored at the
 *                         first region)
 *   dlclose_probe deep    (with EARLY_DEEPBIND=1) the plugin, opened with RTLD_DEEPBIND, already
 *                         mallocs through glibc; it allocates and frees once more (binding must
 *                         have left its unbound free slot alone)
 * Prints the same lines with and without the preload; exit status 0 unless a check failed. */
#define _GNU_SOURCE
#define BROOM_C_WEAK
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broom/c/broom.h"

void* early_plugin(void);

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "close";
  void* plugin = early_plugin();
  if (plugin == NULL) return 2;
  void* (*alloc)(size_t) = (void* (*)(size_t))dlsym(plugin, "plugin_alloc");
  void (*release)(void*) = (void (*)(void*))dlsym(plugin, "plugin_free");
  if (strcmp(mode, "deep") == 0) {
    void* p = alloc(100);
    memset(p, 1, 100);
    release(p);
    printf("deep ok\n");
    return 0;
  }
  release(alloc(64));
  dlclose(plugin);
  int routed = 1;
  if (broom_available()) {
    broom_region_t* r = broom_region_create(BROOM_TEMPORARY, NULL);
    if (r == NULL) return 3;
    broom_region_push(r);
    void* p = malloc(40);
    routed = broom_region_of(p) == r;
    broom_region_pop(r);
    broom_region_destroy(r);
  }
  printf("closed, routed %d\n", routed);
  return routed ? 0 : 1;
}
