// Copyright Broom authors. Layer 0 (os): the only place that talks to the kernel about memory.
#ifndef BROOM_ALLOC_OS_OS_H_
#define BROOM_ALLOC_OS_OS_H_

#include <cstddef>
#include <cstdint>

namespace broom::internal::os {

// Reserves `size` bytes of inaccessible address space aligned to `align` (a power of two).
// Returns null if the kernel refuses.
void* Reserve(size_t size, size_t align);
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

// Milliseconds on a coarse monotonic clock (a vDSO read, no syscall).
uint64_t NowMs();
// The kernel's id of the calling thread (cached per thread).
uint32_t ThreadId();

}  // namespace broom::internal::os

#endif  // BROOM_ALLOC_OS_OS_H_
