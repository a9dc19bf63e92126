#!/usr/bin/env bash
# The main job: install dependencies, build Release, run the micro-benchmarks side by side and
# print the results table (bench/README.md explains every row).
#
# Usage: scripts/run-main-job.sh            (from any directory)
# Env:   BENCH_REPETITIONS (default 5), BENCH_MIN_TIME seconds per repetition (default 0.1),
#        BENCH_FILTER (a --benchmark_filter regex, default: all).
# Output: bench/results/micro.json (Google Benchmark JSON, median/mean/stddev/cv aggregates)
#         bench/results/micro.md   (the Markdown table printed at the end)
# Takes about 2-3 minutes on the 2-core VM.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

scripts/install-deps.sh python3

cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release
cmake --build build/release -j"$(nproc)"

mkdir -p bench/results
bench_args=(
  --benchmark_repetitions="${BENCH_REPETITIONS:-5}"
  --benchmark_report_aggregates_only=true
  --benchmark_min_time="${BENCH_MIN_TIME:-0.1}"
  --benchmark_out=bench/results/micro.json
  --benchmark_out_format=json
)
if [[ -n "${BENCH_FILTER:-}" ]]; then
  bench_args+=(--benchmark_filter="$BENCH_FILTER")
fi

echo "run-main-job: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "run-main-job: build/release/bench/micro/broom_micro_bench ${bench_args[*]}"
build/release/bench/micro/broom_micro_bench "${bench_args[@]}"

echo
python3 bench/tools/format_micro.py bench/results/micro.json -o bench/results/micro.md
echo
echo "run-main-job: wrote bench/results/micro.json and bench/results/micro.md"
