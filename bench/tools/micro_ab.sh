#!/bin/bash
# Interleaved old/new micro comparison: medians of per-run medians (cpu_time), ratio new/old.
# Usage: OLD=path/to/old/broom_micro_bench [NEW=...] [ROUNDS=3] [MT=0.05] [F=regex] bench/tools/micro_ab.sh
F=${F:-'alloc_free/.*/(bump_floor|broom_transferable|broom_temporary_scope|broom_actor)$|region_create|bulk_free/.*/broom|handoff/.*/broom'}
OLD=${OLD:?set OLD to the old broom_micro_bench}
NEW=${NEW:-build/release/bench/micro/broom_micro_bench}
rm -f /tmp/cmpm_*.json
for r in $(seq ${ROUNDS:-3}); do
  for v in old new; do
    b=$OLD; [ $v = new ] && b=$NEW
    $b --benchmark_filter="$F" --benchmark_repetitions=3 --benchmark_min_time=${MT:-0.05} --benchmark_report_aggregates_only=true --benchmark_format=json > /tmp/cmpm_${v}_$r.json 2>/dev/null
  done
done
python3 - <<'PY'
import json,glob,statistics,collections
d=collections.defaultdict(lambda: collections.defaultdict(list))
for f in glob.glob('/tmp/cmpm_*.json'):
    v=f.split('_')[1]
    for b in json.load(open(f))['benchmarks']:
        if b.get('aggregate_name')=='median': d[b['run_name']][v].append(b['cpu_time'])
for k in sorted(d):
    o=statistics.median(d[k]['old']); n=statistics.median(d[k]['new'])
    print(f"{k:70s} old {o:10.2f} new {n:10.2f} new/old {n/o:5.2f}")
PY
