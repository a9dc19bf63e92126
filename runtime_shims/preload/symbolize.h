// Copyright Broom authors.
//
// symbolize.h: return addresses to source lines, for the profiler's report.
//
//   Frame        one source-level frame: a function and where in it execution is. A return
//                address in code where functions were inlined resolves to several frames,
//                innermost first (std::vector::push_back at stl_vector.h:1287, then the user's
//                function at the line that called push_back).
//   Symbolizer   resolves addresses of this process. With libdw (elfutils, `dlopen()`ed at
//                report time: Debian's libdw1) it reads DWARF line tables and inline scopes,
//                from the binary or from /usr/lib/debug; without it, or without debug info, a
//                frame is the nearest exported symbol (dladdr) and `module+0xoffset`, which
//                `addr2line -e module 0xoffset` resolves.
//   IsLibrary*   the frames a site skips to reach the user's code: the allocator (this library,
//                jemalloc), libc, libstdc++ and libgcc, code from system headers (/usr/include:
//                libstdc++'s containers, Abseil), std:: and __gnu_cxx:: functions, and known
//                allocation wrappers (xmalloc and friends, g_malloc, PyMem_Malloc, ...).
//
// Thread-safety: thread-compatible (the report uses one Symbolizer on one thread). It allocates
// through malloc: use it only with t_internal set.
#ifndef BROOM_RUNTIME_SHIMS_PRELOAD_SYMBOLIZE_H_
#define BROOM_RUNTIME_SHIMS_PRELOAD_SYMBOLIZE_H_

#include <cstdint>
#include <string>
#include <vector>

namespace broom::preload::profiler {

struct Frame {
  std::string function;  // demangled; empty if unknown
  std::string file;      // source path; empty without line information
  int line = 0;
  std::string module;    // basename of the object ("?" if none)
  uintptr_t offset = 0;  // return address - 1 - the object's load address
  bool library = false;  // a frame to skip (see IsLibrary*)
  // "function (file:line)", "function (module+0x...)" or "module+0x..."; the file as a
  // basename when `short_file`.
  std::string Describe(bool short_file) const;
};

class Symbolizer {
 public:
  Symbolizer();
  ~Symbolizer();
  Symbolizer(const Symbolizer&) = delete;
  Symbolizer& operator=(const Symbolizer&) = delete;

  // "libdw" or "dladdr".
  const char* backend() const { return dwfl_ != nullptr ? "libdw" : "dladdr"; }
  // Appends the frames of return address `ra`, innermost first (at least one).
  void Resolve(uintptr_t ra, std::vector<Frame>* out);

 private:
  bool ResolveDwarf(uintptr_t pc, std::vector<Frame>* out);
  void ResolveDladdr(uintptr_t pc, std::vector<Frame>* out);
  void* dwfl_ = nullptr;  // Dwfl*
};

bool IsLibraryModule(const std::string& module);
bool IsLibraryFunction(const std::string& demangled);
bool IsLibraryFile(const std::string& path);
// Demangles a C++ symbol; returns `name` itself when it is not one.
std::string Demangle(const char* name);

}  // namespace broom::preload::profiler

#endif  // BROOM_RUNTIME_SHIMS_PRELOAD_SYMBOLIZE_H_
