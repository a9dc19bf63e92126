// Copyright Broom authors. A throwaway model, not part of any build: how much do the cache-set
// conflicts of slab headers kept at 64 KiB-aligned slab starts cost a scattered free phase, against
// the same headers in one contiguous side array or "coloured" ((slab % 16) * 64 bytes in)?
// The free mirrors ReapRegion::Free (owner compare, object-key multiply, head compare, tag and
// checksum); allocation pops per-slab free lists. bench/README.md (issue 11, 2026-12-04) has
// the results and the commands:
//   g++ -O2 -std=c++17 -o /tmp/slab_header_model bench/tools/models/slab_header_model.cc
//   taskset -c 1 /tmp/slab_header_model VARIANT N MIXED|16 ROUNDS [OBJECT_OFFSET] [THP]
// VARIANT 0: header at slab start, 1: side array, 2: coloured. Prints free_ns and alloc_ns.
#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <random>
#include <vector>

static constexpr uintptr_t SLAB = 1u << 16;
static constexpr int NCLS = 16;  // 16..256 step 16

struct alignas(64) Hdr {
  void* owner;
  void* free_head;
  uint64_t checksum;
  uint64_t carved_key;  // carved_count * eps
  uint64_t magic;       // floor(2^64/size)+1
  uint16_t live;
  uint16_t cls;
};
static_assert(sizeof(Hdr) == 64, "hdr");

static uintptr_t g_base;
static Hdr* g_side;
static size_t g_objoff = 1024;
static void* g_owner = (void*)0x1234560;

struct ClassState {
  std::vector<uint32_t> slabs;  // slab indices
  size_t cur = 0;
};
static ClassState g_cls[NCLS];
static size_t g_nslabs_used = 0, g_nslabs_max = 0;

template <int V>
static inline Hdr* hdr_of(uintptr_t slab) {
  if (V == 0) return (Hdr*)slab;
  if (V == 1) return &g_side[(slab - g_base) >> 16];
  return (Hdr*)(slab + (((slab - g_base) >> 16) & 15) * 64);
}

template <int V>
static uint32_t new_slab(int c) {
  if (g_nslabs_used >= g_nslabs_max) {
    fprintf(stderr, "out of slabs\n");
    abort();
  }
  uint32_t k = (uint32_t)g_nslabs_used++;
  uintptr_t slab = g_base + (uintptr_t)k * SLAB;
  Hdr* h = hdr_of<V>(slab);
  size_t size = (size_t)(c + 1) * 16;
  size_t cap = (SLAB - g_objoff) / size;
  uint64_t magic = (uint64_t)(((unsigned __int128)1 << 64) / size) + 1;  // floor(2^64/size)+1
  uint64_t eps = magic * size;                                           // wraps: size*M - 2^64
  h->owner = g_owner;
  h->magic = magic;
  h->carved_key = cap * eps;
  h->checksum = 0;
  h->live = 0;
  h->cls = (uint16_t)c;
  // build free list in address order
  char* objs = (char*)(slab + g_objoff);
  void* head = nullptr;
  for (size_t j = cap; j-- > 0;) {
    void** o = (void**)(objs + j * size);
    o[0] = head;
    head = o;
  }
  h->free_head = head;
  return k;
}

template <int V>
static inline void* alloc_cls(int c, bool can_grow) {
  ClassState& cs = g_cls[c];
  for (;;) {
    if (cs.cur == cs.slabs.size()) {
      if (!can_grow) {
        fprintf(stderr, "no free obj\n");
        abort();
      }
      cs.slabs.push_back(new_slab<V>(c));
    }
    Hdr* h = hdr_of<V>(g_base + (uintptr_t)cs.slabs[cs.cur] * SLAB);
    void* p = h->free_head;
    if (p) {
      h->free_head = *(void**)p;
      h->live++;
      return p;
    }
    cs.cur++;
  }
}

template <int V>
static inline void free_obj(void* vp) {
  uintptr_t p = (uintptr_t)vp;
  uintptr_t slab = p & ~(SLAB - 1);
  Hdr* h = hdr_of<V>(slab);
  if (__builtin_expect(h->owner != g_owner, 0)) abort();
  uint64_t off = p - (slab + g_objoff);
  if (__builtin_expect(!(off * h->magic < h->carved_key), 0)) abort();
  void* head = h->free_head;
  if (__builtin_expect(vp == head, 0)) abort();
  uint64_t* o = (uint64_t*)vp;
  o[0] = (uint64_t)head;
  o[1] = 0x5bd1e9955bd1e995ull ^ (uint64_t)p;
  h->free_head = vp;
  h->live--;
  h->checksum += off * (off + 2147483647ull);
}

static inline double now_ns() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

template <int V>
static int run(size_t n, bool mixed, int rounds, bool thp) {
  std::mt19937_64 rng(12345);
  std::vector<uint16_t> sizes(n);
  std::vector<uint8_t> cls(n);
  size_t cnt[NCLS] = {};
  for (size_t i = 0; i < n; i++) {
    int c = mixed ? (int)(rng() % NCLS) : 0;
    cls[i] = (uint8_t)c;
    sizes[i] = (uint16_t)((c + 1) * 16);
    cnt[c]++;
  }
  size_t nslabs = 0;
  for (int c = 0; c < NCLS; c++) {
    size_t cap = (SLAB - g_objoff) / ((c + 1) * 16);
    nslabs += (cnt[c] + cap - 1) / cap;
  }
  g_nslabs_max = nslabs;
  size_t bytes = nslabs * SLAB;
  void* m = mmap(nullptr, bytes + SLAB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) {
    perror("mmap");
    return 1;
  }
  g_base = ((uintptr_t)m + SLAB - 1) & ~(SLAB - 1);
  madvise((void*)g_base, bytes, thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
  g_side = (Hdr*)aligned_alloc(64, nslabs * sizeof(Hdr));
  memset(g_side, 0, nslabs * sizeof(Hdr));

  std::vector<void*> ptrs(n);
  for (size_t i = 0; i < n; i++) {
    void* p = alloc_cls<V>(cls[i], true);
    *(volatile uint64_t*)p = i;
    ptrs[i] = p;
  }
  const int NPERM = 4;
  std::vector<std::vector<uint32_t>> perms(NPERM, std::vector<uint32_t>(n));
  for (auto& pv : perms) {
    for (size_t i = 0; i < n; i++) pv[i] = (uint32_t)i;
    std::shuffle(pv.begin(), pv.end(), rng);
  }
  double tf = 0, ta = 0;
  for (int r = -1; r < rounds; r++) {  // round -1 = warm-up
    const uint32_t* pm = perms[(r + 1) % NPERM].data();
    double t0 = now_ns();
    for (size_t j = 0; j < n; j++) free_obj<V>(ptrs[pm[j]]);
    double t1 = now_ns();
    for (int c = 0; c < NCLS; c++) g_cls[c].cur = 0;
    for (size_t i = 0; i < n; i++) {
      void* p = alloc_cls<V>(sizes[i] / 16 - 1, false);
      *(volatile uint64_t*)p = i;
      ptrs[i] = p;
    }
    double t2 = now_ns();
    if (r >= 0) {
      tf += t1 - t0;
      ta += t2 - t1;
    }
  }
  uint64_t ck = 0;
  for (size_t k = 0; k < g_nslabs_used; k++) ck += hdr_of<V>(g_base + k * SLAB)->checksum;
  printf(
      "variant=%d n=%zu mode=%s slabs=%zu objoff=%zu thp=%d free_ns=%.3f alloc_ns=%.3f ck=%llx\n",
      V, n, mixed ? "mixed" : "16", g_nslabs_used, g_objoff, (int)thp, tf / rounds / n,
      ta / rounds / n, (unsigned long long)ck);
  return 0;
}

int main(int argc, char** argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: %s variant n mixed|16 rounds [objoff] [thp]\n", argv[0]);
    return 2;
  }
  int v = atoi(argv[1]);
  size_t n = strtoull(argv[2], 0, 10);
  bool mixed = strcmp(argv[3], "16") != 0;
  int rounds = atoi(argv[4]);
  if (argc > 5) g_objoff = strtoull(argv[5], 0, 10);
  bool thp = argc > 6 && atoi(argv[6]);
  if (g_objoff < 64 || (v == 2 && g_objoff < 1024) || g_objoff % 16) {
    fprintf(stderr, "bad objoff\n");
    return 2;
  }
  switch (v) {
    case 0:
      return run<0>(n, mixed, rounds, thp);
    case 1:
      return run<1>(n, mixed, rounds, thp);
    case 2:
      return run<2>(n, mixed, rounds, thp);
  }
  return 2;
}
