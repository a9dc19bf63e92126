// Copyright Broom authors.
//
// Small-object allocation followed by freeing the whole batch, per object.
//
// One iteration: Begin (create the region / open the scope), allocate n objects of 16, 64 or
// 256 bytes, or of mixed sizes in [16, 256] from kMixedSizes, writing one word into each, then
// free them all (Broom: free the region or leave the scope; glibc and jemalloc: free each
// object; the bump floor: reset its cursor). The time per object therefore includes the
// object's share of creating and freeing its region.
//
// Time is the benchmark thread's CPU time (the default): on a shared VM it is far less noisy
// than wall-clock time, and every contender here runs on that one thread.
//
// Rivals in this binary: std::pmr monotonic (growing, and on a warm buffer) and pool resources,
// protobuf's Arena, glibc and jemalloc; mimalloc heaps and malloc under LD_PRELOAD (mimalloc,
// tcmalloc, ...) run the same loop in bench/baselines/ and are merged into the same table.
//
// Names: alloc_free/size:<16|64|256|mixed>/n:<4096|100000>/<contender>.
#include <string>
#include <vector>

#include "bench/micro/bench_common.h"
#include "bench/micro/contenders.h"

namespace broom::bench {
namespace {

template <size_t kSize>
void RegisterSize(const std::string& size_name) {
  RegisterAllocFreeSize<BumpFloor, kSize>(size_name);
  RegisterAllocFreeSize<BroomTransferable, kSize>(size_name);
  RegisterAllocFreeSize<BroomTemporaryScope, kSize>(size_name);
  RegisterAllocFreeSize<BroomActor, kSize>(size_name);
  RegisterAllocFreeSize<PmrMonotonic, kSize>(size_name);
  RegisterAllocFreeSize<PmrMonotonicBuffer, kSize>(size_name);
  RegisterAllocFreeSize<PmrPool, kSize>(size_name);
#if BROOM_BENCH_HAVE_PROTOBUF
  RegisterAllocFreeSize<ProtobufArena, kSize>(size_name);
#endif
  RegisterAllocFreeSize<Glibc, kSize>(size_name);
#if BROOM_BENCH_HAVE_JEMALLOC
  RegisterAllocFreeSize<Jemalloc, kSize>(size_name);
#endif
}

}  // namespace

void RegisterRegionAllocBenchmarks() {
  RegisterSize<16>("16");
  RegisterSize<64>("64");
  RegisterSize<256>("256");
  RegisterSize<0>("mixed");
}

}  // namespace broom::bench
