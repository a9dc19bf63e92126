#!/usr/bin/env python3
"""Two builds of Broom's reap programs side by side: churn and reap_batch rows, interleaved
(the order alternates each round), medians and old/new ratios of the metric each prints.

Usage: bench/tools/reap_ab.py OLD_DIR NEW_DIR [--rounds N]
  OLD_DIR, NEW_DIR: directories holding churn_broom and reap_batch_broom (bench/workloads/ of a
  build; bench/micro/ before the programs moved). Ratio above 1: NEW is faster.
"""
import argparse
import re
import statistics
import subprocess

ROWS = {
    'churn': ('churn', ['--ops=1000000', '--live=100000'], 'cpu_seconds'),
    'batch100k': ('reap_batch', ['--pattern=batch', '--n=100000', '--sizes=16-256',
                                 '--ops=4000000'], 'ns_per_pair'),
    'batch1k': ('reap_batch', ['--pattern=batch', '--n=1000', '--sizes=16-256',
                               '--ops=8000000'], 'ns_per_pair'),
    'ring': ('reap_batch', ['--pattern=ring', '--sizes=16-256', '--ops=8000000'], 'ns_per_pair'),
    'pair16': ('reap_batch', ['--pattern=pair', '--sizes=16', '--ops=8000000'], 'ns_per_pair'),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('old')
    ap.add_argument('new')
    ap.add_argument('--rounds', type=int, default=7)
    args = ap.parse_args()
    res = {}
    for r in range(args.rounds):
        builds = [('old', args.old), ('new', args.new)]
        if r % 2:
            builds.reverse()
        for name, (prog, argv, metric) in ROWS.items():
            for who, d in builds:
                out = subprocess.run([f'{d}/{prog}_broom'] + argv, capture_output=True,
                                     text=True, check=True).stdout
                m = re.search(metric + r'=([0-9.e+-]+)', out)
                res.setdefault((name, who), []).append(float(m.group(1)))
    for name in ROWS:
        o = statistics.median(res[(name, 'old')])
        n = statistics.median(res[(name, 'new')])
        print(f'{name:10s} old {o:.4g} new {n:.4g} old/new {o / n:.2f}')


if __name__ == '__main__':
    main()
