#!/usr/bin/env python3
"""Several builds of reap_batch_broom (variants of the allocator) and the mallocs, interleaved.

For ablations: each variant is a reap_batch_broom binary built from a patched tree (for example
with one check of ReapRegion::Free compiled out). Each round runs every row for every contender,
the order reversed on odd rounds, pinned to one CPU (taskset -c CPU) so that runs do not migrate.
Cells: median ns per pair; in brackets the first variant's median / this one's and the same for
the fastest run (above 1: faster than the first variant).

Usage: bench/tools/reap_variants.py NAME=PATH [NAME=PATH ...] [--malloc DIR] [--rounds N]
                                    [--rows batch1k,ring,...] [--cpu N]
  NAME=PATH: a variant's reap_batch_broom; the first is the baseline.
  --malloc DIR: bench/workloads/ of a Release build; adds mimalloc and tcmalloc (reap_batch_malloc
  with the library preloaded, as in tools/reap_vs.py).
"""
import argparse
import os
import re
import statistics
import subprocess

LIBDIR = '/usr/lib/x86_64-linux-gnu/'
RIVALS = {'mimalloc': 'libmimalloc.so.2', 'tcmalloc': 'libtcmalloc_minimal.so.4'}
ROWS = {
    'batch1k': ['--pattern=batch', '--n=1000', '--sizes=16-256', '--ops=8000000'],
    'ring': ['--pattern=ring', '--sizes=16-256', '--ops=8000000'],
    'pair16': ['--pattern=pair', '--sizes=16', '--ops=8000000'],
    'batch100k': ['--pattern=batch', '--n=100000', '--sizes=16-256', '--ops=4000000'],
    'batch1m': ['--pattern=batch', '--n=1000000', '--sizes=16', '--ops=8000000'],
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('variants', nargs='+')
    ap.add_argument('--malloc')
    ap.add_argument('--rounds', type=int, default=9)
    ap.add_argument('--rows', default=','.join(ROWS))
    ap.add_argument('--cpu', default='1')
    args = ap.parse_args()
    runs = [(name, path, None) for name, path in (v.split('=', 1) for v in args.variants)]
    if args.malloc:
        exe = os.path.join(args.malloc, 'reap_batch_malloc')
        runs += [(name, exe, LIBDIR + lib) for name, lib in RIVALS.items()]
    rows = args.rows.split(',')
    res = {}
    for r in range(args.rounds):
        for row in rows:
            for name, exe, lib in (runs if r % 2 == 0 else runs[::-1]):
                env = dict(os.environ)
                if lib:
                    env['LD_PRELOAD'] = lib
                out = subprocess.run(['taskset', '-c', args.cpu, exe] + ROWS[row],
                                     capture_output=True, text=True, env=env, check=True).stdout
                value = float(re.search(r'ns_per_pair=([0-9.e+-]+)', out).group(1))
                res.setdefault((row, name), []).append(value)
    base = runs[0][0]
    print('| row | ' + ' | '.join(name for name, _, _ in runs) + ' |')
    print('|---|' + '---|' * len(runs))
    for row in rows:
        med0 = statistics.median(res[(row, base)])
        min0 = min(res[(row, base)])
        cells = []
        for name, _, _ in runs:
            med = statistics.median(res[(row, name)])
            cells.append(f'{med:.3f} ({med0 / med:.2f}; fastest {min0 / min(res[(row, name)]):.2f})')
        print(f'| {row} | ' + ' | '.join(cells) + ' |')


if __name__ == '__main__':
    main()
