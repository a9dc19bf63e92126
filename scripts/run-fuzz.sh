#!/usr/bin/env bash
# Builds the libFuzzer target of the region-operations harness (tests/fuzz/) with clang-14, ASan
# and UBSan, and runs it for a while.
#
# Usage: scripts/run-fuzz.sh [seconds=60] [extra libFuzzer flags...]
#   BROOM_FUZZ_BUILD   build directory (default build/fuzz)
#
# Needs clang-14 and libclang-rt-14-dev (Debian). The working corpus lives in
# $BROOM_FUZZ_BUILD/corpus (seeded from tests/fuzz/corpus); crashes are written to
# $BROOM_FUZZ_BUILD/artifacts/. Copy a crash into tests/fuzz/corpus/ once it is fixed: the
# plain-C++ driver (region_ops_driver_test, in every ctest run) replays every file there.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
build="${BROOM_FUZZ_BUILD:-build/fuzz}"
scripts/install-deps.sh clang-14 libclang-rt-14-dev ninja-build

if [ ! -f "$build/CMakeCache.txt" ]; then
  CC=clang-14 CXX=clang++-14 cmake -S . -B "$build" -G Ninja \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DBROOM_BUILD_FUZZERS=ON \
    -DBROOM_SANITIZER=address+undefined \
    -DBROOM_DEBUG=3 \
    -DBROOM_BUILD_BENCHMARKS=OFF -DBROOM_BUILD_SHIMS=OFF \
    -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link"
fi
cmake --build "$build" --target region_ops_fuzzer -j "$(nproc)"

mkdir -p "$build/corpus" "$build/artifacts"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
# -rss_limit_mb: each input may hold up to 24 MiB of live allocations (HarnessOptions).
"$build/tests/fuzz/region_ops_fuzzer" \
  -max_total_time="$seconds" -max_len=16384 -len_control=10 -timeout=30 -rss_limit_mb=4096 \
  -artifact_prefix="$build/artifacts/" -print_final_stats=1 "$@" \
  "$build/corpus" tests/fuzz/corpus
