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
// Asks for transparent huge pages over [p, p + size) (MADV_HUGEPAGE: the kernel may then back
// 2 MiB-aligned ranges with one page each, fewer TLB misses for memory read at random, at the
// cost of resident memory in 2 MiB steps). Advice only: returns false if the kernel refuses
// (no THP support, or THP "never"); nothing else changes.
bool AdviseHugePages(void* p, size_t size);
// Returns the physical pages of [p, p + size) to the OS; the range stays accessible and reads
// as zeros afterwards.
void Purge(void* p, size_t size);
// Faults in the pages of [p, p + size) (committed) for writing in one call (MADV_POPULATE_WRITE,
// Linux 5.14 and later) instead of one fault per page at first touch: for memory about to be
// filled whole, such as a shipped block's bytes arriving. Returns false, and nothing changes, if
// the kernel cannot: a kernel without it (then every later call returns false at once) or no
// memory now (then the pages fault in on first touch, as without the call).
bool Prefault(void* p, size_t size);
// Shared memory (a job's slices backed by a memfd, docs/design.md "Shared memory"):
// Creates an anonymous shared-memory file of `size` bytes (memfd_create, close-on-exec; sparse:
// nothing is allocated until touched). Returns its descriptor, or -1 with *error = the errno.
int CreateSharedFile(size_t size, int* error);
// Maps [p, p + size) to the file's bytes from `offset`, shared (MAP_SHARED | MAP_FIXED |
// MAP_NORESERVE), accessible or not (PROT_NONE, made accessible later by Commit). Replaces
// whatever was mapped there. False with *error = the errno.
bool MapSharedAt(void* p, size_t size, int fd, size_t offset, bool accessible, int* error);
// Replaces [p, p + size) with an inaccessible reservation (PROT_NONE, MAP_FIXED, nothing
// committed): how a shared mapping is undone without giving up the addresses.
bool ReserveOver(void* p, size_t size);
// Frees the pages of [p, p + size) in a shared file mapping (MADV_REMOVE: Purge's MADV_DONTNEED
// only drops this process's page table entries, the file keeps the pages). Reads as zeros
// afterwards, in every process mapping the file.
void PurgeShared(void* p, size_t size);
// Opens descriptor `fd` of process `pid` (/proc/<pid>/fd/<fd>, read-write, close-on-exec): same
// machine, same user. Returns the new descriptor or -1 with *error = the errno.
int OpenProcessFile(uint32_t pid, int fd, int* error);
// The file's device and inode numbers and size. False if fstat fails.
bool FileIdentity(int fd, uint64_t* dev, uint64_t* ino, uint64_t* size);
void CloseFile(int fd);
// A hash of this boot of this machine (/proc/sys/kernel/random/boot_id; 0 if unreadable): two
// processes with the same value run on one machine.
uint64_t MachineBootHash();
// This process's id.
uint32_t ProcessId();

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
