// Copyright Broom authors.
//
// Symbolization for the profiler's report. See symbolize.h.
#include "runtime_shims/preload/symbolize.h"

#include <cxxabi.h>
#include <dlfcn.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#if __has_include(<elfutils/libdwfl.h>)
#include <dwarf.h>
#include <elfutils/libdwfl.h>
#define BROOM_PRELOAD_HAVE_LIBDW 1
#else
#define BROOM_PRELOAD_HAVE_LIBDW 0
#endif

namespace broom::preload::profiler {

namespace {

std::string Basename(const char* path) {
  if (path == nullptr || path[0] == '\0') return "?";
  const char* slash = std::strrchr(path, '/');
  return slash != nullptr ? slash + 1 : path;
}

bool StartsWith(const std::string& s, const char* prefix) {
  return s.compare(0, std::strlen(prefix), prefix) == 0;
}

#if BROOM_PRELOAD_HAVE_LIBDW
// libdw's entry points, looked up once (the library is dlopen()ed: a process that does not
// profile never loads it, and the preload has no link dependency on it).
struct Dw {
  decltype(&dwfl_begin) begin;
  decltype(&dwfl_end) end;
  decltype(&dwfl_linux_proc_report) proc_report;
  decltype(&dwfl_report_end) report_end;
  decltype(&dwfl_linux_proc_find_elf) find_elf;
  decltype(&dwfl_standard_find_debuginfo) find_debuginfo;
  decltype(&dwfl_addrmodule) addrmodule;
  decltype(&dwfl_module_info) module_info;
  decltype(&dwfl_module_addrname) addrname;
  decltype(&dwfl_module_addrdie) addrdie;
  decltype(&dwfl_module_getsrc) getsrc;
  decltype(&dwfl_lineinfo) lineinfo;
  decltype(&dwarf_getscopes) getscopes;
  decltype(&dwarf_getscopes_die) getscopes_die;
  decltype(&dwarf_tag) tag;
  decltype(&dwarf_diename) diename;
  decltype(&dwarf_attr_integrate) attr_integrate;
  decltype(&dwarf_attr) attr;
  decltype(&dwarf_formstring) formstring;
  decltype(&dwarf_formudata) formudata;
  decltype(&dwarf_getsrcfiles) getsrcfiles;
  decltype(&dwarf_filesrc) filesrc;
};

const Dw* LoadDw() {
  static Dw dw;
  static int state = 0;  // 0 untried, 1 loaded, -1 absent
  if (state != 0) return state > 0 ? &dw : nullptr;
  state = -1;
  void* h = dlopen("libdw.so.1", RTLD_NOW | RTLD_LOCAL);
  if (h == nullptr) return nullptr;
  bool ok = true;
  auto get = [&](auto& fn, const char* name) {
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(h, name));
    ok = ok && fn != nullptr;
  };
  get(dw.begin, "dwfl_begin");
  get(dw.end, "dwfl_end");
  get(dw.proc_report, "dwfl_linux_proc_report");
  get(dw.report_end, "dwfl_report_end");
  get(dw.find_elf, "dwfl_linux_proc_find_elf");
  get(dw.find_debuginfo, "dwfl_standard_find_debuginfo");
  get(dw.addrmodule, "dwfl_addrmodule");
  get(dw.module_info, "dwfl_module_info");
  get(dw.addrname, "dwfl_module_addrname");
  get(dw.addrdie, "dwfl_module_addrdie");
  get(dw.getsrc, "dwfl_module_getsrc");
  get(dw.lineinfo, "dwfl_lineinfo");
  get(dw.getscopes, "dwarf_getscopes");
  get(dw.getscopes_die, "dwarf_getscopes_die");
  get(dw.tag, "dwarf_tag");
  get(dw.diename, "dwarf_diename");
  get(dw.attr_integrate, "dwarf_attr_integrate");
  get(dw.attr, "dwarf_attr");
  get(dw.formstring, "dwarf_formstring");
  get(dw.formudata, "dwarf_formudata");
  get(dw.getsrcfiles, "dwarf_getsrcfiles");
  get(dw.filesrc, "dwarf_filesrc");
  if (!ok) return nullptr;
  state = 1;
  return &dw;
}

// `path` made absolute against the compilation directory, with "dir/../" folded.
std::string AbsolutePath(const std::string& path, const char* comp_dir) {
  std::string full = path;
  if (!path.empty() && path[0] != '/' && comp_dir != nullptr && comp_dir[0] == '/') {
    full = comp_dir;
    full.append("/").append(path);
  }
  std::vector<std::string> parts;
  size_t i = 0;
  while (i <= full.size()) {
    size_t j = full.find('/', i);
    if (j == std::string::npos) j = full.size();
    std::string part = full.substr(i, j - i);
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    i = j + 1;
  }
  if (full.empty() || full[0] != '/') return path;
  std::string out;
  for (const std::string& p : parts) out.append("/").append(p);
  return out;
}

std::string FunctionName(const Dw& dw, Dwarf_Die* die) {
  Dwarf_Attribute attr;
  const char* linkage = nullptr;
  if (dw.attr_integrate(die, DW_AT_linkage_name, &attr) != nullptr ||
      dw.attr_integrate(die, DW_AT_MIPS_linkage_name, &attr) != nullptr) {
    linkage = dw.formstring(&attr);
  }
  if (linkage != nullptr) return Demangle(linkage);
  const char* name = dw.diename(die);
  return name != nullptr ? name : "";
}
#endif  // BROOM_PRELOAD_HAVE_LIBDW

}  // namespace

std::string Demangle(const char* name) {
  if (name == nullptr) return "";
  int status = 0;
  char* d = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  std::string out = status == 0 && d != nullptr ? d : name;
  std::free(d);
  return out;
}

bool IsLibraryModule(const std::string& m) {
  static const char* const kPrefixes[] = {"libbroom_preload", "libjemalloc", "libstdc++",
                                          "libc.so",          "libc-",       "ld-linux",
                                          "libgcc_s",         "libm.so"};
  for (const char* p : kPrefixes) {
    if (StartsWith(m, p)) return true;
  }
  return false;
}

bool IsLibraryFile(const std::string& path) {
  return StartsWith(path, "/usr/include/") || path.find("/include/c++/") != std::string::npos;
}

bool IsLibraryFunction(const std::string& fn) {
  size_t paren = fn.find('(');
  std::string head = fn.substr(0, paren);  // "void std::vector<int>::_M_realloc_insert<...>"
  static const char* const kNamespaces[] = {
      "std::",        "__gnu_cxx::",     "__cxxabiv1::", "__cxa_",
      "operator new", "operator delete", "__libc_"};
  for (const char* ns : kNamespaces) {
    if (StartsWith(head, ns)) return true;
    // A template function's demangled name starts with its return type.
    size_t at = head.find(std::string(" ") + ns);
    if (at != std::string::npos && head.find_first_of("<(") > at) return true;
  }
  // Allocation wrappers: gnulib/coreutils, GLib, CPython, OpenSSL, SQLite, Perl.
  static const char* const kWrappers[] = {"xmalloc",
                                          "xcalloc",
                                          "xzalloc",
                                          "xrealloc",
                                          "xnmalloc",
                                          "xnrealloc",
                                          "x2realloc",
                                          "x2nrealloc",
                                          "xcharalloc",
                                          "xmemdup",
                                          "ximemdup",
                                          "ximemdup0",
                                          "xstrdup",
                                          "xstrndup",
                                          "ximalloc",
                                          "xicalloc",
                                          "xirealloc",
                                          "xreallocarray",
                                          "xireallocarray",
                                          "xinmalloc",
                                          "xizalloc",
                                          "xpalloc",
                                          "g_malloc",
                                          "g_malloc0",
                                          "g_realloc",
                                          "g_try_malloc",
                                          "g_try_malloc0",
                                          "g_malloc_n",
                                          "g_malloc0_n",
                                          "g_realloc_n",
                                          "g_strdup",
                                          "g_strndup",
                                          "g_memdup",
                                          "g_memdup2",
                                          "g_slice_alloc",
                                          "g_slice_alloc0",
                                          "PyMem_Malloc",
                                          "PyMem_Calloc",
                                          "PyMem_Realloc",
                                          "PyMem_RawMalloc",
                                          "PyMem_RawCalloc",
                                          "PyMem_RawRealloc",
                                          "PyObject_Malloc",
                                          "PyObject_Calloc",
                                          "PyObject_Realloc",
                                          "_PyObject_Malloc",
                                          "_PyObject_Calloc",
                                          "_PyObject_Realloc",
                                          "_PyMem_RawMalloc",
                                          "_PyMem_RawCalloc",
                                          "_PyMem_RawRealloc",
                                          "_PyMem_DebugMalloc",
                                          "CRYPTO_malloc",
                                          "CRYPTO_zalloc",
                                          "CRYPTO_realloc",
                                          "CRYPTO_strdup",
                                          "sqlite3Malloc",
                                          "sqlite3MallocZero",
                                          "Perl_safesysmalloc",
                                          "Perl_safesyscalloc",
                                          "Perl_safesysrealloc"};
  for (const char* w : kWrappers) {
    if (head == w) return true;
  }
  return false;
}

std::string Frame::Describe(bool short_file) const {
  // Built with append (GCC 12's -Wrestrict misfires on chains of operator+).
  std::string where;
  if (!file.empty()) {
    where.append(short_file ? Basename(file.c_str()) : file).append(":");
    where.append(std::to_string(line));
  } else {
    char off[64];
    std::snprintf(off, sizeof(off), "+0x%lx", static_cast<unsigned long>(offset));
    where.append(module).append(off);
  }
  if (function.empty()) return where;
  std::string out(function);
  out.append(" (").append(where).append(")");
  return out;
}

Symbolizer::Symbolizer() {
#if BROOM_PRELOAD_HAVE_LIBDW
  const Dw* dw = LoadDw();
  if (dw == nullptr) return;
  static char* debuginfo_path = nullptr;  // libdw's default: .debug dirs and /usr/lib/debug
  static Dwfl_Callbacks callbacks = {};
  callbacks.find_elf = dw->find_elf;
  callbacks.find_debuginfo = dw->find_debuginfo;
  callbacks.debuginfo_path = &debuginfo_path;
  Dwfl* dwfl = dw->begin(&callbacks);
  if (dwfl == nullptr) return;
  if (dw->proc_report(dwfl, getpid()) != 0 || dw->report_end(dwfl, nullptr, nullptr) != 0) {
    dw->end(dwfl);
    return;
  }
  dwfl_ = dwfl;
#endif
}

Symbolizer::~Symbolizer() {
#if BROOM_PRELOAD_HAVE_LIBDW
  if (dwfl_ != nullptr) LoadDw()->end(static_cast<Dwfl*>(dwfl_));
#endif
}

void Symbolizer::Resolve(uintptr_t ra, std::vector<Frame>* out) {
  uintptr_t pc = ra > 0 ? ra - 1 : 0;  // inside the call instruction, not after it
  size_t before = out->size();
  if (dwfl_ == nullptr || !ResolveDwarf(pc, out)) ResolveDladdr(pc, out);
  for (size_t i = before; i < out->size(); ++i) {
    Frame& f = (*out)[i];
    f.library = IsLibraryModule(f.module) || IsLibraryFile(f.file) ||
                (!f.function.empty() && IsLibraryFunction(f.function));
  }
}

bool Symbolizer::ResolveDwarf(uintptr_t pc, std::vector<Frame>* out) {
#if BROOM_PRELOAD_HAVE_LIBDW
  const Dw& dw = *LoadDw();
  Dwfl_Module* mod = dw.addrmodule(static_cast<Dwfl*>(dwfl_), pc);
  if (mod == nullptr) return false;
  Dwarf_Addr start = 0;
  const char* path =
      dw.module_info(mod, nullptr, &start, nullptr, nullptr, nullptr, nullptr, nullptr);
  Frame base;
  base.module = Basename(path);
  base.offset = pc - start;
  Dwarf_Addr bias = 0;
  Dwarf_Die* cu = dw.addrdie(mod, pc, &bias);
  size_t emitted = 0;
  if (cu != nullptr) {
    std::string file;
    int line = 0;
    if (Dwfl_Line* l = dw.getsrc(mod, pc)) {
      const char* f = dw.lineinfo(l, nullptr, &line, nullptr, nullptr, nullptr);
      if (f != nullptr) file = f;
    }
    Dwarf_Files* files = nullptr;
    size_t nfiles = 0;
    if (dw.getsrcfiles(cu, &files, &nfiles) != 0) files = nullptr;
    Dwarf_Attribute comp_attr;
    const char* comp_dir =
        dw.attr(cu, DW_AT_comp_dir, &comp_attr) != nullptr ? dw.formstring(&comp_attr) : nullptr;
    // The innermost scope, then its chain of concrete parents (inlined instances up to the
    // subprogram they were inlined into), as eu-addr2line -i walks it.
    Dwarf_Die* scopes = nullptr;
    int n = dw.getscopes(cu, pc - bias, &scopes);
    Dwarf_Die* chain = nullptr;
    int nchain = 0;
    if (n > 0) {
      Dwarf_Die innermost = scopes[0];
      nchain = dw.getscopes_die(&innermost, &chain);
    }
    std::free(scopes);
    for (int i = 0; i < nchain; ++i) {
      int tag = dw.tag(&chain[i]);
      if (tag != DW_TAG_subprogram && tag != DW_TAG_inlined_subroutine) continue;
      Frame f = base;
      f.function = FunctionName(dw, &chain[i]);
      f.file = AbsolutePath(file, comp_dir);
      f.line = line;
      out->push_back(f);
      ++emitted;
      if (tag == DW_TAG_subprogram) break;
      // Inlined: continue in the function it was inlined into, at the call.
      Dwarf_Attribute attr;
      Dwarf_Word w = 0;
      file.clear();
      line = 0;
      if (dw.attr(&chain[i], DW_AT_call_file, &attr) != nullptr && dw.formudata(&attr, &w) == 0 &&
          files != nullptr && w < nfiles) {
        if (const char* f2 = dw.filesrc(files, w, nullptr, nullptr)) file = f2;
      }
      if (dw.attr(&chain[i], DW_AT_call_line, &attr) != nullptr && dw.formudata(&attr, &w) == 0) {
        line = static_cast<int>(w);
      }
    }
    std::free(chain);
    if (emitted == 0 && !file.empty()) {  // line information but no scope: a symbol name
      Frame f = base;
      f.function = Demangle(dw.addrname(mod, pc));
      f.file = AbsolutePath(file, comp_dir);
      f.line = line;
      out->push_back(f);
      ++emitted;
    }
  }
  if (emitted == 0) {
    Frame f = base;
    f.function = Demangle(dw.addrname(mod, pc));
    out->push_back(f);
  }
  return true;
#else
  (void)pc;
  (void)out;
  return false;
#endif
}

void Symbolizer::ResolveDladdr(uintptr_t pc, std::vector<Frame>* out) {
  Frame f;
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(pc), &info) == 0 || info.dli_fname == nullptr) {
    f.module.assign(1, '?');  // not = "?": GCC 12 -Wrestrict false positive
    f.offset = pc;
  } else {
    // The executable has an empty name in the link map.
    f.module = Basename(info.dli_fname[0] != '\0' ? info.dli_fname : "(main)");
    f.offset = pc - reinterpret_cast<uintptr_t>(info.dli_fbase);
    if (info.dli_sname != nullptr) f.function = Demangle(info.dli_sname);
  }
  out->push_back(f);
}

}  // namespace broom::preload::profiler
