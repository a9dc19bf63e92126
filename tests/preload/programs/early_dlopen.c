/* Copyright Broom authors.
 *
 * A library of dlclose_probe whose constructor may run before libbroom_preload.so's (it does
 * not depend on it) and dlopen()s a plugin (BROOM_TEST_PLUGIN) there, so the plugin is loaded
 * when the preload binds call sites. With EARLY_DEEPBIND=1 in the environment the plugin is
 * opened with RTLD_DEEPBIND and allocates once: its malloc slot binds to glibc's malloc, its
 * free slot stays unbound. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

static void* plugin;
static void* kept;

__attribute__((constructor)) static void open_plugin(void) {
  int deep = getenv("EARLY_DEEPBIND") != NULL;
  plugin = dlopen(BROOM_TEST_PLUGIN, RTLD_LAZY | (deep ? RTLD_DEEPBIND : 0));
  if (plugin == NULL) {
    fprintf(stderr, "early_dlopen: %s\n", dlerror());
    return;
  }
  if (deep) {
    void* (*alloc)(size_t) = (void* (*)(size_t))dlsym(plugin, "plugin_alloc");
    kept = alloc(32);
  }
}

void* early_plugin(void) { return plugin; }
