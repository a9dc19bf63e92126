#!/bin/sh
# Runs every example job under both memory policies on the direct driver and on CAF, and prints
# one line per run: job engine policy seconds peak_rss_kib checksum.
#   runtime_shims/examples/run_matrix.sh build/release/runtime_shims/examples/broom_job [extra flags]
# Paper scale is the default (40 epochs x 500k documents); pass e.g. --epochs=4 to shrink it.
set -eu
bin=${1:?usage: run_matrix.sh path/to/broom_job [flags]}
shift
for job in select aggregate join wjoin wordcount; do
  for engine in direct caf; do
    for policy in regions heap; do
      out=$("$bin" --job=$job --engine=$engine --policy=$policy --threads=2 "$@")
      t=$(echo "$out" | sed -n 's/.*time = \([0-9.]*\) s, peak RSS = \([0-9]*\) KiB.*/\1 \2/p')
      c=$(echo "$out" | sed -n 's/.*checksum = \([0-9]*\).*/\1/p')
      echo "$job $engine $policy $t $c"
    done
  done
done
