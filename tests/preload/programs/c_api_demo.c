/* Copyright Broom authors.
 *
 * A C program that uses Broom's region C API through weak symbols: under
 * LD_PRELOAD=libbroom_preload.so it builds its data in regions; without it, on the heap. The
 * results printed on stdout are the same either way; the region checks run only under the
 * preload. Exit status 0 on success.
 *
 * Usage: c_api_demo            the demo
 *        c_api_demo dangling   frees a pointer into a destroyed region (checked mode dies)
 */
#define BROOM_C_WEAK
#include "broom/c/broom.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct node {
  struct node* next;
  long value;
  char label[16];
};

static int failures = 0;
static void* volatile escape; /* keeps the compiler from eliding malloc/free pairs */
#define CHECK(cond)                                                     \
  do {                                                                  \
    if (!(cond)) {                                                      \
      fprintf(stderr, "c_api_demo: check failed: %s (line %d)\n", #cond, __LINE__); \
      ++failures;                                                       \
    }                                                                   \
  } while (0)

static struct node* build_list(int n) {
  struct node* head = NULL;
  for (int i = 0; i < n; ++i) {
    struct node* x = malloc(sizeof *x);
    x->value = i;
    snprintf(x->label, sizeof x->label, "n%d", i);
    x->next = head;
    head = x;
  }
  return head;
}

static long sum_list(const struct node* x) {
  long s = 0;
  for (; x != NULL; x = x->next) s += x->value + (long)strlen(x->label);
  return s;
}

static void free_list(struct node* x) {
  while (x != NULL) {
    struct node* next = x->next;
    free(x);
    x = next;
  }
}

struct handoff {
  broom_region_t* region;
  struct node* list;
  long sum;
};

static void* consumer(void* arg) {
  struct handoff* h = arg;
  if (h->region != NULL) CHECK(broom_region_adopt(h->region) == 0);
  h->sum = sum_list(h->list);
  if (h->region != NULL) {
    CHECK(broom_region_destroy(h->region) == 0); /* the whole list at once */
  } else {
    free_list(h->list);
  }
  return NULL;
}

int main(int argc, char** argv) {
  int regions = broom_available() && broom_is_active();
  printf("c_api_demo\n");
  fprintf(stderr, "mode: %s\n", regions ? "regions" : "heap");

  if (argc > 1 && strcmp(argv[1], "dangling") == 0) {
    if (!regions) return 0;
    broom_region_t* r = broom_region_create(BROOM_TRANSFERABLE, NULL);
    broom_region_push(r);
    char* p = malloc(32);
    escape = p;
    broom_region_pop(r);
    broom_region_destroy(r);
    free(p); /* dangling: diagnosed with BROOM_CONF=checks:1 */
    printf("not diagnosed\n");
    return 0;
  }

  /* 1. A transferable region built on this thread and handed to another. */
  struct handoff h = {NULL, NULL, 0};
  if (regions) {
    broom_region_options_t o = {0, "list"};
    h.region = broom_region_create(BROOM_TRANSFERABLE, &o);
    CHECK(h.region != NULL);
    CHECK(broom_region_push(h.region) == 0);
  }
  h.list = build_list(10000);
  if (regions) {
    CHECK(broom_region_pop(h.region) == 0);
    CHECK(broom_region_of(h.list) == h.region);
    broom_region_stats_t s;
    CHECK(broom_region_stats(h.region, &s) == 0);
    CHECK(s.kind == BROOM_TRANSFERABLE);
    CHECK(s.bytes_requested == 10000 * (16 + sizeof(struct node)));
    free(h.list); /* a no-op in a transferable region */
    CHECK(broom_region_release(h.region) == 0);
  }
  pthread_t t;
  pthread_create(&t, NULL, consumer, &h);
  pthread_join(t, NULL);
  printf("transferable sum=%ld\n", h.sum);

  /* 2. An actor region: per-object free and reuse. */
  broom_region_t* actor = regions ? broom_region_create(BROOM_ACTOR, NULL) : NULL;
  if (actor) broom_region_push(actor);
  long churn = 0;
  for (int i = 0; i < 20000; ++i) {
    char* p = malloc(40 + (size_t)(i % 7) * 8);
    escape = p;
    p[0] = (char)i;
    churn += p[0];
    free(p);
  }
  if (actor) {
    broom_region_pop(actor);
    broom_region_stats_t s;
    broom_region_stats(actor, &s);
    CHECK(s.bytes_freed > 0);
    CHECK(s.block_bytes <= 64 * 1024); /* freed objects were reused */
    CHECK(broom_region_destroy(actor) == 0);
  }
  printf("actor churn=%ld\n", churn);

  /* 3. A temporary region: each push/pop frees its scratch. */
  broom_region_t* tmp = regions ? broom_region_create(BROOM_TEMPORARY, NULL) : NULL;
  long scratch = 0;
  for (int round = 0; round < 50; ++round) {
    if (tmp) broom_region_push(tmp);
    char* buf = calloc(100000, 1);
    buf = realloc(buf, 200000);
    buf[199999] = 7;
    scratch += buf[199999] + buf[0];
    if (tmp) {
      broom_region_stats_t s;
      broom_region_stats(tmp, &s);
      CHECK(s.bytes_requested >= 200000);
      broom_region_pop(tmp);
      broom_region_stats(tmp, &s);
      CHECK(s.bytes_requested == 0);
    } else {
      free(buf);
    }
  }
  if (tmp) CHECK(broom_region_destroy(tmp) == 0);
  printf("temporary scratch=%ld\n", scratch);

  if (regions) {
    broom_global_stats_t g;
    CHECK(broom_global_stats(&g) == 0);
    CHECK(g.regions_created[BROOM_TRANSFERABLE] >= 1);
    CHECK(g.regions_live[BROOM_TRANSFERABLE] == 0);
    CHECK(g.regions_live[BROOM_ACTOR] == 0);
    CHECK(g.regions_live[BROOM_TEMPORARY] == 0);
  }
  printf("done\n");
  return failures == 0 ? 0 : 1;
}
