// Copyright Broom authors.
//
// malloc_identity.h: which library's `malloc` this process actually calls. Debian's jemalloc,
// mimalloc and tcmalloc all export `malloc`; whichever comes first in symbol lookup order
// (LD_PRELOAD, then the executable's link order) wins for the whole process. The baseline
// binaries name their contender after the winner, so a run under the wrong LD_PRELOAD (or a
// preload that failed to load) cannot be mistaken for another allocator.
#ifndef BROOM_BENCH_BASELINES_MALLOC_IDENTITY_H_
#define BROOM_BENCH_BASELINES_MALLOC_IDENTITY_H_

#include <dlfcn.h>

#include <cstring>
#include <string>

namespace broom::bench {

// "glibc", "jemalloc", "mimalloc", "tcmalloc", or the file name of the library that defines the
// `malloc` this process resolves to.
inline std::string MallocName(std::string* path = nullptr) {
  void* sym = dlsym(RTLD_DEFAULT, "malloc");
  Dl_info info{};
  if (sym == nullptr || dladdr(sym, &info) == 0 || info.dli_fname == nullptr) return "unknown";
  const std::string file = info.dli_fname;
  if (path != nullptr) *path = file;
  for (const char* name : {"jemalloc", "mimalloc", "tcmalloc"}) {
    if (file.find(name) != std::string::npos) return name;
  }
  if (file.find("libc.so") != std::string::npos) return "glibc";
  return file.substr(file.rfind('/') + 1);
}

}  // namespace broom::bench

#endif  // BROOM_BENCH_BASELINES_MALLOC_IDENTITY_H_
