// Copyright Broom authors. Layer 0 (os): the only place that talks to the kernel about memory.
#ifndef BROOM_ALLOC_OS_OS_H_
#define BROOM_ALLOC_OS_OS_H_

#include <cstddef>
#include <cstdint>

namespace broom::internal::os {

// Reserves `size` bytes of inaccessible address space aligned to `align` (a power of two).
// Returns null if the kernel refuses.
void* Reserve(size_t size, size_t align);
// Reserves exactly [p, p + size), inaccessible (MAP_FIXED_NOREPLACE: never moved elsewhere,
// never replacing a mapping). Returns false with *error = the errno (EEXIST: something is
// mapped inside the range; kernels before 4.17 place it elsewhere, which is undone and reported
// as EEXIST too).
bool ReserveAt(void* p, size_t size, int* error);
// Writes the first line of /proc/self/maps overlapping [lo, hi) into buf ("" if none or
// unreadable). No allocation (stack buffers only).
void DescribeMapping(uintptr_t lo, uintptr_t hi, char* buf, size_t n);
// Makes [p, p + size) readable and writable. Returns false if the kernel refuses.
bool Commit(void* p, size_t size);
// Returns the physical pages of [p, p + size) to the OS; the range stays accessible and reads
// as zeros afterwards.
void Purge(void* p, size_t size);
// Maps `size` bytes of zeroed read-write memory that is not charged until touched.
void* MapLazyZeroed(size_t size);
void Unmap(void* p, size_t size);
// Makes [p, p + size) inaccessible or accessible again (quarantine, tests).
bool Protect(void* p, size_t size, bool accessible);

// The running executable's GNU build id (its NT_GNU_BUILD_ID note): copies up to `max` bytes
// to `out` and returns the id's length, or 0 if the executable has none.
size_t ExecutableBuildId(uint8_t* out, size_t max);
// The main executable's load bias (what its link-time addresses are shifted by) and the span
// [lo, hi) of its loadable segments. False if the loader does not report it.
bool ExecutableImage(uintptr_t* bias, uintptr_t* lo, uintptr_t* hi);
// Calls fn(ctx, lo, hi) for the span of every loadable segment of every object loaded in the
// process (executable, shared libraries, the vDSO).
void ForEachLoadedSegment(void (*fn)(void* ctx, uintptr_t lo, uintptr_t hi), void* ctx);

// Milliseconds on a coarse monotonic clock (a vDSO read, no syscall).
uint64_t NowMs();
// The kernel's id of the calling thread (cached per thread).
uint32_t ThreadId();

}  // namespace broom::internal::os

#endif  // BROOM_ALLOC_OS_OS_H_
