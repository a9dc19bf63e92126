#!/usr/bin/env bash
# The main job: install dependencies, build Release, run Broom side by side with its rivals,
# write the report and its figures, and print the report's headline tables (the paper's result
# reproduced, the fastest malloc, peak RSS, scaling, micro summary, verdicts).
# bench/README.md explains the method; its results block is regenerated from this run.
#
# Usage: scripts/run-main-job.sh [--full]          (from any directory)
#   default   micro-benchmarks (5 repetitions) + the dataflow jobs, lists-of-lists, churn and
#             the actor-region (reap) programs at a reduced scale, 5 interleaved runs each
#             after a warm-up: about 20 minutes on the shared 2-core VM
#   --full    the paper's scale for the whole programs (lists-of-lists n = 500..3000, 40
#             rounds; churn 20M operations) and 0.5 s per micro repetition: hours, not minutes
# Env:   BENCH_REPETITIONS (default 5), BENCH_MIN_TIME seconds per repetition (default 0.1;
#        0.5 with --full), BENCH_FILTER (a --benchmark_filter regex for the micro-benchmarks,
#        default: all), BENCH_RUNS (whole-program runs per contender, default 5),
#        BENCH_SKIP_MICRO=1 / BENCH_SKIP_PROGRAMS=1 to run only one half, BENCH_BUILD_DIR
#        (default build/release).
# Output (bench/results/, emptied first so that it holds one run only):
#   run.json          commit, machine, Broom's build (CMakeCache), library versions, load samples
#   micro.json, micro_malloc_<alloc>.json, micro_mimalloc_heap.json   Google Benchmark JSON
#   micro.md          the micro tables (bench/tools/format_micro.py)
#   <spec>.{md,json}  each whole-program spec (bench/tools/sidebyside.py)
#   summary.md, fig_*.png, figures.json   the report (bench/tools/report.py); also updates the
#                     generated block of bench/README.md
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

scale=default
min_time_default=0.1
for arg in "$@"; do
  case "$arg" in
    --full) scale=full; min_time_default=0.5 ;;
    *) echo "usage: $0 [--full]" >&2; exit 2 ;;
  esac
done

# The rivals: mimalloc, tcmalloc (gperftools), Boehm GC, protobuf; the figures (matplotlib);
# GNU time for each child's peak RSS.
scripts/install-deps.sh python3 libmimalloc-dev libgoogle-perftools-dev libgc-dev \
  libprotobuf-dev protobuf-compiler python3-matplotlib time

build="${BENCH_BUILD_DIR:-build/release}"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release
cmake --build "$build" -j"$(nproc)"

# Debian's python3 has matplotlib; a python3 earlier on PATH (pyenv) may not.
py=python3
[[ -x /usr/bin/python3 ]] && py=/usr/bin/python3

results=bench/results
mkdir -p "$results"
rm -f "$results"/*.json "$results"/*.md "$results"/*.png "$results"/load.tsv
libdir=/usr/lib/x86_64-linux-gnu
"$py" bench/tools/run_context.py start --out "$results/run.json" --build "$build" \
  --command "scripts/run-main-job.sh${*:+ $*}" --scale "$scale"
# The machine's load during the run, every 5 s, into run.json at the end.
"$py" bench/tools/run_context.py sample --out "$results/load.tsv" --interval 5 &
sampler=$!
trap 'kill "$sampler" 2>/dev/null || true' EXIT
echo "run-main-job: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), scale $scale"

if [[ -z "${BENCH_SKIP_MICRO:-}" ]]; then
  bench_args=(
    --benchmark_repetitions="${BENCH_REPETITIONS:-5}"
    --benchmark_enable_random_interleaving=true
    --benchmark_display_aggregates_only=true
    --benchmark_min_time="${BENCH_MIN_TIME:-$min_time_default}"
    --benchmark_out_format=json
  )
  if [[ -n "${BENCH_FILTER:-}" ]]; then
    bench_args+=(--benchmark_filter="$BENCH_FILTER")
  fi
  echo "run-main-job: $build/bench/micro/broom_micro_bench ${bench_args[*]}"
  "$build/bench/micro/broom_micro_bench" "${bench_args[@]}" --benchmark_out="$results/micro.json"
  jsons=("$results/micro.json")
  # The malloc rivals, one process per allocator (LD_PRELOAD); glibc with no preload.
  for entry in glibc: jemalloc:libjemalloc.so.2 mimalloc:libmimalloc.so.2 \
               tcmalloc:libtcmalloc_minimal.so.4; do
    name="${entry%%:*}" lib="${entry#*:}"
    preload=""
    if [[ -n "$lib" ]]; then
      preload="$libdir/$lib"
      [[ -e "$preload" ]] || { echo "run-main-job: no $preload, skipping $name"; continue; }
    fi
    echo "run-main-job: LD_PRELOAD=$preload $build/bench/baselines/broom_malloc_bench ..."
    LD_PRELOAD="$preload" "$build/bench/baselines/broom_malloc_bench" "${bench_args[@]}" \
      --benchmark_out="$results/micro_malloc_$name.json"
    jsons+=("$results/micro_malloc_$name.json")
  done
  if [[ -x "$build/bench/baselines/broom_mimalloc_heap_bench" ]]; then
    echo "run-main-job: $build/bench/baselines/broom_mimalloc_heap_bench ..."
    "$build/bench/baselines/broom_mimalloc_heap_bench" "${bench_args[@]}" \
      --benchmark_out="$results/micro_mimalloc_heap.json"
    jsons+=("$results/micro_mimalloc_heap.json")
  fi
  "$py" bench/tools/format_micro.py "${jsons[@]}" -o "$results/micro.md" > /dev/null
fi

programs_status=0
if [[ -z "${BENCH_SKIP_PROGRAMS:-}" ]]; then
  echo
  # To add a program (e.g. a dataflow job), add a spec to bench/tools/specs/ and list it here.
  specs=(bench/tools/specs/dataflow_jobs.json bench/tools/specs/dataflow_scaling.json
         bench/tools/specs/lists_of_lists.json bench/tools/specs/churn.json
         bench/tools/specs/reap_batch.json bench/tools/specs/reap_pairs.json
         bench/tools/specs/reap_pmr.json bench/tools/specs/reap_footprint.json)
  "$py" bench/tools/sidebyside.py "${specs[@]}" --scale "$scale" --runs "${BENCH_RUNS:-5}" \
    --warmup 1 --build "$build" --out-dir "$results" --no-plot > /dev/null || programs_status=$?
fi

kill "$sampler" 2>/dev/null || true
wait "$sampler" 2>/dev/null || true
"$py" bench/tools/run_context.py end --out "$results/run.json" --samples "$results/load.tsv"
rm -f "$results/load.tsv"
echo
"$py" bench/tools/report.py --results "$results" --readme bench/README.md --print
echo
echo "run-main-job: wrote $results/summary.md (the whole report), fig_*.png, the per-benchmark"
echo "  .md/.json files, and the results block of bench/README.md"
# A failed run or check (listed in the report) fails the job, after the report is written.
exit "$programs_status"
