// Copyright Broom authors.
//
// bind.h: direct binding of the program's call sites to jemalloc while Broom only passes through.
//
// Until the first region is created (and with no stats/profile mode), the exported malloc, free,
// calloc, operator new and operator delete do nothing but jump to jemalloc's own functions
// (g_dispatch in shim.h). That jump still costs a second taken indirect branch per call: about
// 8 % of a new/delete pair on this project's machines (runtime_shims/preload/BENCH.md). So the
// library goes one step further: BindDirect() rewrites the PLT slots (R_X86_64_JUMP_SLOT
// relocations) that the objects loaded at start-up hold for those functions, from Broom's
// export to jemalloc's function, and the program calls jemalloc exactly as under
// LD_PRELOAD=libjemalloc.so.2. UnbindDirect() writes Broom's exports back; broom_region_create
// calls it (through UseCheckedEntries) before the first region exists, so from then on every
// call passes Broom's region checks again.
//
// What is rewritten: only slots that hold Broom's export (or, with lazy binding, a slot not yet
// bound, which the loader would bind to Broom's export), in objects that are loaded when the
// library constructor runs and are not Broom or jemalloc themselves. Objects linked -Bsymbolic,
// and objects that already have one of these functions bound to something else (RTLD_DEEPBIND,
// their own allocator), are left alone entirely, so an object never mixes two allocators. Each
// object with rewritten slots is pinned (RTLD_NODELETE), so its slots stay valid. GLOB_DAT slots
// (function pointers, -fno-plt call sites) are left alone so that &malloc stays one address in
// every object; those calls and the calls from libraries dlopen()ed later keep the one extra
// jump. Read-only (RELRO) slots are made writable for the write and read-only again. Nothing is
// rewritten under LD_AUDIT or LD_PROFILE, or with BROOM_CONF=bind:0.
//
// Thread-safety: BindDirect() runs in the library constructor (one thread). UnbindDirect() may
// run while other threads call malloc: each slot is one aligned 8-byte store, so a concurrent
// call goes to either jemalloc or Broom's export, and both are correct while no region exists.
// A thread that later pushes a region got it from the creating thread (created it, or adopted
// it after a release), so it sees the restored slots.
#ifndef BROOM_RUNTIME_SHIMS_PRELOAD_BIND_H_
#define BROOM_RUNTIME_SHIMS_PRELOAD_BIND_H_

namespace broom::preload {

// One function to bind: calls to `name` that the loader bound to Broom's export go to `target`.
struct BindTarget {
  const char* name;
  void* target;  // jemalloc's function; null skips the name
};

// Rewrites the slots described above; returns how many. Call at most once, before any
// UnbindDirect(). At most kMaxBoundSlots slots are rewritten; the rest keep the extra jump.
int BindDirect(const BindTarget* targets, int count);
inline constexpr int kMaxBoundSlots = 1024;

// Restores every slot BindDirect() rewrote. Returns false if some slot could not be restored:
// it no longer held jemalloc's function (someone else rewrote it since: a PLT hooking tool,
// which may call jemalloc directly) or mprotect() failed. Calls through such a slot would
// bypass region routing, and a free of region memory through it would reach jemalloc, so the
// caller must not create regions then. Idempotent; cheap when nothing is bound.
bool UnbindDirect();

}  // namespace broom::preload

#endif  // BROOM_RUNTIME_SHIMS_PRELOAD_BIND_H_
