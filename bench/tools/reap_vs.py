#!/usr/bin/env python3
"""Broom's actor region against mimalloc, tcmalloc and jemalloc on the reap rows, interleaved.

A quick check between full side-by-side runs (tools/sidebyside.py): each round runs every row
for every contender, the contender order reversed on odd rounds; cells are medians; "best /
broom" above 1 means Broom is faster than the fastest rival. The rivals are the same
`*_malloc` programs with the allocator preloaded (LD_PRELOAD), as in the specs.

Usage: bench/tools/reap_vs.py DIR [--rounds N] [--rows churn,batch1k,...]
  DIR: bench/workloads/ of a Release build (churn_*, reap_batch_*, reap_pmr_*).
"""
import argparse
import os
import re
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reap_ab  # noqa: E402

LIBDIR = '/usr/lib/x86_64-linux-gnu/'
# reap_ab's rows (churn, batch n=100k and 1k, ring, pair 16 B) and three more.
ROWS = dict(reap_ab.ROWS)
ROWS.update({
    'batch1k_mixed': ('reap_batch', ['--pattern=batch', '--n=1000', '--sizes=mixed',
                                     '--ops=8000000'], 'ns_per_pair'),
    'pair16-256': ('reap_batch', ['--pattern=pair', '--sizes=16-256', '--ops=8000000'],
                   'ns_per_pair'),
    'pmr_state': ('reap_pmr', [], 'cpu_seconds'),
})
CONTENDERS = [('broom', None), ('mimalloc', 'libmimalloc.so.2'),
              ('tcmalloc', 'libtcmalloc_minimal.so.4'), ('jemalloc', 'libjemalloc.so.2')]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('dir')
    ap.add_argument('--rounds', type=int, default=5)
    ap.add_argument('--rows', default=','.join(ROWS))
    args = ap.parse_args()
    rows = args.rows.split(',')
    res = {}
    for r in range(args.rounds):
        order = CONTENDERS if r % 2 == 0 else CONTENDERS[::-1]
        for row in rows:
            prog, argv, metric = ROWS[row]
            for name, lib in order:
                env = dict(os.environ)
                if lib:
                    env['LD_PRELOAD'] = LIBDIR + lib
                exe = f'{args.dir}/{prog}_{"broom" if lib is None else "malloc"}'
                out = subprocess.run([exe] + argv, capture_output=True, text=True, env=env,
                                     check=True).stdout
                value = float(re.search(metric + r'=([0-9.e+-]+)', out).group(1))
                res.setdefault(row, {}).setdefault(name, []).append(value)
    print('| row | metric | Broom | mimalloc | tcmalloc | jemalloc | fastest rival ÷ Broom |')
    print('|---|---|---|---|---|---|---|')
    for row in rows:
        med = {k: statistics.median(v) for k, v in res[row].items()}
        best, who = min((v, k) for k, v in med.items() if k != 'broom')
        cells = ' | '.join(f'{med[k]:.4g}' for k, _ in CONTENDERS)
        print(f'| {row} | {ROWS[row][2]} | {cells} | {best / med["broom"]:.2f}× ({who}) |')


if __name__ == '__main__':
    main()
