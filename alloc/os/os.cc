// Copyright Broom authors.
#include "alloc/os/os.h"

#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace broom::internal::os {

void* Reserve(size_t size, size_t align) {
  size_t padded = size + align;
  void* raw = mmap(nullptr, padded, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  uintptr_t start = reinterpret_cast<uintptr_t>(raw);
  uintptr_t aligned = (start + align - 1) & ~(uintptr_t{align} - 1);
  if (aligned > start) munmap(raw, aligned - start);
  uintptr_t tail = start + padded - (aligned + size);
  if (tail > 0) munmap(reinterpret_cast<void*>(aligned + size), tail);
  return reinterpret_cast<void*>(aligned);
}

bool ReserveAt(void* p, size_t size, int* error) {
  void* got = mmap(p, size, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
  if (got == MAP_FAILED) {
    *error = errno;
    return false;
  }
  if (got != p) {  // a kernel without MAP_FIXED_NOREPLACE took the address as a hint
    munmap(got, size);
    *error = EEXIST;
    return false;
  }
  return true;
}

void DescribeMapping(uintptr_t lo, uintptr_t hi, char* buf, size_t n) {
  if (n == 0) return;
  buf[0] = '\0';
  int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  char chunk[4096];
  char line[512];
  size_t len = 0;
  ssize_t got;
  bool found = false;
  while (!found && (got = read(fd, chunk, sizeof(chunk))) > 0) {
    for (ssize_t i = 0; i < got && !found; ++i) {
      if (chunk[i] != '\n') {
        if (len + 1 < sizeof(line)) line[len++] = chunk[i];
        continue;
      }
      line[len] = '\0';
      unsigned long a = 0, b = 0;
      if (std::sscanf(line, "%lx-%lx", &a, &b) == 2 && a < hi && b > lo) {
        std::snprintf(buf, n, "%s", line);
        found = true;
      }
      len = 0;
    }
  }
  close(fd);
}

bool Commit(void* p, size_t size) { return mprotect(p, size, PROT_READ | PROT_WRITE) == 0; }

bool AdviseHugePages(void* p, size_t size) { return madvise(p, size, MADV_HUGEPAGE) == 0; }

void Purge(void* p, size_t size) { madvise(p, size, MADV_DONTNEED); }

bool Prefault(void* p, size_t size) {
#ifndef MADV_POPULATE_WRITE
  constexpr int MADV_POPULATE_WRITE = 23;  // Linux 5.14; older headers lack the name
#endif
  static std::atomic<bool> unsupported{false};
  if (size == 0 || unsupported.load(std::memory_order_relaxed)) return false;
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t lo = reinterpret_cast<uintptr_t>(p) & ~(page - 1);
  const uintptr_t hi = (reinterpret_cast<uintptr_t>(p) + size + page - 1) & ~(page - 1);
  if (madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_POPULATE_WRITE) == 0) return true;
  if (errno == EINVAL) unsupported.store(true, std::memory_order_relaxed);
  return false;
}

int CreateSharedFile(size_t size, int* error) {
  const int fd = static_cast<int>(memfd_create("broom-slice", MFD_CLOEXEC));
  if (fd < 0) {
    *error = errno;
    return -1;
  }
  if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
    *error = errno;
    close(fd);
    return -1;
  }
  return fd;
}

bool MapSharedAt(void* p, size_t size, int fd, size_t offset, bool accessible, int* error) {
  void* got = mmap(p, size, accessible ? PROT_READ | PROT_WRITE : PROT_NONE,
                   MAP_SHARED | MAP_FIXED | MAP_NORESERVE, fd, static_cast<off_t>(offset));
  if (got == MAP_FAILED) {
    *error = errno;
    return false;
  }
  return true;
}

bool ReserveOver(void* p, size_t size) {
  return mmap(p, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0) ==
         p;
}

void PurgeShared(void* p, size_t size) { madvise(p, size, MADV_REMOVE); }

int OpenProcessFile(uint32_t pid, int fd, int* error) {
  char path[64];
  std::snprintf(path, sizeof(path), "/proc/%u/fd/%d", pid, fd);
  const int got = open(path, O_RDWR | O_CLOEXEC);
  if (got < 0) *error = errno;
  return got;
}

bool FileIdentity(int fd, uint64_t* dev, uint64_t* ino, uint64_t* size) {
  struct stat st;
  if (fstat(fd, &st) != 0) return false;
  *dev = static_cast<uint64_t>(st.st_dev);
  *ino = static_cast<uint64_t>(st.st_ino);
  *size = static_cast<uint64_t>(st.st_size);
  return true;
}

void CloseFile(int fd) { close(fd); }

uint64_t MachineBootHash() {
  char id[64] = {};
  const int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  const ssize_t n = read(fd, id, sizeof(id) - 1);
  close(fd);
  if (n <= 0) return 0;
  uint64_t h = 1469598103934665603ull;
  for (ssize_t i = 0; i < n; ++i) h = (h ^ static_cast<unsigned char>(id[i])) * 1099511628211ull;
  return h;
}

uint32_t ProcessId() { return static_cast<uint32_t>(getpid()); }

void* MapLazyZeroed(size_t size) {
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

void Unmap(void* p, size_t size) { munmap(p, size); }

bool Protect(void* p, size_t size, bool accessible) {
  return mprotect(p, size, accessible ? PROT_READ | PROT_WRITE : PROT_NONE) == 0;
}

namespace {

struct BuildIdSearch {
  uint8_t* out;
  size_t max;
  size_t len;
};

// The first object dl_iterate_phdr reports is the main program.
int FindBuildId(dl_phdr_info* info, size_t, void* arg) {
  auto* search = static_cast<BuildIdSearch*>(arg);
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_NOTE) continue;
    const char* p = reinterpret_cast<const char*>(info->dlpi_addr + ph.p_vaddr);
    const char* end = p + ph.p_memsz;
    while (p + sizeof(ElfW(Nhdr)) <= end) {
      const auto* note = reinterpret_cast<const ElfW(Nhdr)*>(p);
      const char* name = p + sizeof(ElfW(Nhdr));
      const char* desc = name + ((note->n_namesz + 3) & ~3u);
      if (note->n_type == NT_GNU_BUILD_ID && note->n_namesz == 4 &&
          std::memcmp(name, "GNU", 4) == 0 && desc + note->n_descsz <= end) {
        search->len = note->n_descsz;
        std::memcpy(search->out, desc, std::min<size_t>(search->max, note->n_descsz));
        return 1;
      }
      p = desc + ((note->n_descsz + 3) & ~3u);
    }
  }
  return 1;  // only the first object
}

struct ImageSearch {
  uintptr_t bias, lo, hi;
  bool found;
};

int FindImage(dl_phdr_info* info, size_t, void* arg) {
  auto* search = static_cast<ImageSearch*>(arg);
  search->bias = info->dlpi_addr;
  search->lo = UINTPTR_MAX;
  search->hi = 0;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD) continue;
    search->lo = std::min<uintptr_t>(search->lo, info->dlpi_addr + ph.p_vaddr);
    search->hi = std::max<uintptr_t>(search->hi, info->dlpi_addr + ph.p_vaddr + ph.p_memsz);
  }
  search->found = search->lo < search->hi;
  return 1;
}

struct SegmentVisit {
  void (*fn)(void*, uintptr_t, uintptr_t);
  void* ctx;
};

int VisitSegments(dl_phdr_info* info, size_t, void* arg) {
  auto* visit = static_cast<SegmentVisit*>(arg);
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || ph.p_memsz == 0) continue;
    const uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
    visit->fn(visit->ctx, lo, lo + ph.p_memsz);
  }
  return 0;
}

}  // namespace

size_t ExecutableBuildId(uint8_t* out, size_t max) {
  BuildIdSearch search{out, max, 0};
  dl_iterate_phdr(&FindBuildId, &search);
  return search.len;
}

bool ExecutableImage(uintptr_t* bias, uintptr_t* lo, uintptr_t* hi) {
  ImageSearch search{0, 0, 0, false};
  dl_iterate_phdr(&FindImage, &search);
  *bias = search.bias;
  *lo = search.lo;
  *hi = search.hi;
  return search.found;
}

void ForEachLoadedSegment(void (*fn)(void* ctx, uintptr_t lo, uintptr_t hi), void* ctx) {
  SegmentVisit visit{fn, ctx};
  dl_iterate_phdr(&VisitSegments, &visit);
}

uint64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

uint32_t ThreadId() {
  static thread_local uint32_t tid = 0;
  if (tid == 0) tid = static_cast<uint32_t>(syscall(SYS_gettid));
  return tid;
}

}  // namespace broom::internal::os
