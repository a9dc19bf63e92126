#!/usr/bin/env bash
# The project's style checks, as CI runs them: clang-format-14 over every tracked C/C++ file
# (no change allowed) and clang-tidy-14 (.clang-tidy) over the core's sources (alloc/), with
# warnings as errors. Installs clang-format-14 and clang-tidy-14 if missing.
# Usage: scripts/check-style.sh [--fix]   (--fix rewrites the files clang-format would change)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh clang-format-14 clang-tidy-14
mapfile -t files < <(git ls-files '*.h' '*.cc' '*.c' | grep -v '^tests/fuzz/corpus/')
if [ "${1:-}" = "--fix" ]; then
  clang-format-14 -i "${files[@]}"
  exit 0
fi
echo "check-style: clang-format-14 on ${#files[@]} files"
clang-format-14 --dry-run --Werror "${files[@]}"
build=build/tidy
cmake -S . -B "$build" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON -DCMAKE_BUILD_TYPE=Release \
  -DBROOM_BUILD_TESTS=OFF -DBROOM_BUILD_BENCHMARKS=OFF -DBROOM_BUILD_SHIMS=OFF >/dev/null
mapfile -t core < <(git ls-files 'alloc/*.cc')
echo "check-style: clang-tidy-14 on ${#core[@]} core sources"
status=0
for f in "${core[@]}"; do
  clang-tidy-14 -p "$build" --quiet "$f" 2>/dev/null || status=1
done
exit $status
