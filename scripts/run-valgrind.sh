#!/usr/bin/env bash
# Runs every unit-test binary (ctest label `unit`: tests/unit, tests/reliability, the fuzz
# driver) under valgrind memcheck, in a build without jemalloc so valgrind sees every malloc.
# Death tests are excluded (they abort on purpose). Exits non-zero on the first binary with a
# memcheck error or a failing test.
#
# Usage: scripts/run-valgrind.sh [gtest filter to add, e.g. 'BadInput*']
#   BROOM_VALGRIND_BUILD   build directory (default build/valgrind)
# Suppressions: tests/valgrind.supp (each with the reason it is there).
set -euo pipefail
cd "$(dirname "$0")/.."
build="${BROOM_VALGRIND_BUILD:-build/valgrind}"
extra_filter="${1:-}"
scripts/install-deps.sh valgrind

cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBROOM_WITH_JEMALLOC=OFF \
  -DBROOM_BUILD_BENCHMARKS=OFF -DBROOM_BUILD_SHIMS=OFF >/dev/null
cmake --build "$build" -j "$(nproc)"

# The binaries behind the `unit` label, from ctest's own list.
mapfile -t binaries < <(ctest --test-dir "$build" -N -L 'unit|reliability|fuzz' --show-only=json-v1 |
  python3 -c 'import json,sys
seen=[]
for t in json.load(sys.stdin)["tests"]:
    exe=t["command"][0]
    if exe not in seen: seen.append(exe)
print("\n".join(seen))')

filter="-*DeathTest*"
[ -n "$extra_filter" ] && filter="${extra_filter}${filter}"
# The fuzz driver is ~50x slower under memcheck: fewer generated inputs (same code paths).
export BROOM_FUZZ_DRIVER_INPUTS="${BROOM_FUZZ_DRIVER_INPUTS:-16}"
# Forked children (fork_test) end with SIGKILL instead of a leak check of the parent's heap.
export BROOM_VALGRIND=1
failed=0
for bin in "${binaries[@]}"; do
  name="$(basename "$bin")"
  log="$build/valgrind-$name.log"
  start=$(date +%s)
  # Errors in forked children do not reach the exit code: look for memcheck reports in the log.
  if valgrind --error-exitcode=1 --leak-check=full --show-leak-kinds=definite,indirect \
      --errors-for-leak-kinds=definite,indirect --track-origins=yes \
      --suppressions=tests/valgrind.supp --log-file="$log" \
      "$bin" --gtest_filter="$filter" >"$build/valgrind-$name.out" 2>&1 &&
     ! grep -qE "^==[0-9]+== (Invalid|Conditional jump|Use of uninitialised|Syscall param|Mismatched|Source and destination overlap)" "$log"; then
    echo "valgrind: $name clean ($(( $(date +%s) - start )) s)"
  else
    echo "valgrind: $name FAILED ($(( $(date +%s) - start )) s): see $log and $build/valgrind-$name.out"
    grep -E "ERROR SUMMARY|definitely lost|indirectly lost|FAILED" "$log" "$build/valgrind-$name.out" | head -20 || true
    failed=1
  fi
done
exit "$failed"
