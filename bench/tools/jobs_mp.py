#!/usr/bin/env python3
"""Multi-process CAF jobs side by side: broom_job's JOIN and word count on 2 and 4 processes,
batches shipped by address in copy mode and with shared memory, optionally against an older
broom_job (for example one built before batches travelled by address, whose records were
encoded). Interleaved: every round runs every cell, the contenders in a rotated order; prints
the median seconds of each cell, the ratios to the first contender, and checks that every run of
a job printed the same checksum.

Usage: bench/tools/jobs_mp.py NEW_BROOM_JOB [--old OLD_BROOM_JOB] [--rounds N] [--epochs E]
                              [--jobs join,wordcount] [--processes 2,4]
  The binaries must be copies that stay put while this runs (a worker runs the driver's binary).
"""
import argparse
import re
import statistics
import subprocess
import sys


def run(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
    m = re.search(r'RESULT seconds=([0-9.]+) .*checksum=([0-9]+)', out)
    if m is None:
        sys.exit('no RESULT line from: ' + ' '.join(cmd) + '\n' + out)
    return float(m.group(1)), m.group(2)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('new')
    ap.add_argument('--old')
    ap.add_argument('--rounds', type=int, default=7)
    ap.add_argument('--epochs', type=int, default=40)
    ap.add_argument('--jobs', default='join,wordcount')
    ap.add_argument('--processes', default='2,4')
    args = ap.parse_args()
    contenders = []
    if args.old:
        contenders.append(('old', [args.old]))
    contenders += [('copy', [args.new, '--shared-memory=0']),
                   ('shared', [args.new, '--shared-memory=1'])]
    cells = [(j, p) for j in args.jobs.split(',') for p in args.processes.split(',')]
    times = {}
    sums = {}
    for r in range(args.rounds):
        for job, procs in cells:
            for i in range(len(contenders)):
                name, base = contenders[(i + r) % len(contenders)]
                t, c = run(base + ['--job=' + job, '--engine=caf', '--processes=' + procs,
                                   '--epochs=%d' % args.epochs])
                times.setdefault((job, procs, name), []).append(t)
                sums.setdefault(job, set()).add(c)
    first = contenders[0][0]
    names = [n for n, _ in contenders]
    print('| job | processes | ' + ' | '.join(n + ' s' for n in names) + ' | ' +
          ' | '.join(n + ' ÷ ' + first for n in names[1:]) + ' |')
    print('|' + '---|' * (2 + 2 * len(names) - 1))
    for job, procs in cells:
        med = {n: statistics.median(times[(job, procs, n)]) for n in names}
        print('| %s | %s | ' % (job, procs) + ' | '.join('%.3f' % med[n] for n in names) +
              ' | ' + ' | '.join('%.2f' % (med[n] / med[first]) for n in names[1:]) + ' |')
    for job, s in sums.items():
        print('%s: %s' % (job, 'every run printed checksum ' + s.pop() if len(s) == 1 else
                          'CHECKSUMS DIFFER: ' + ', '.join(sorted(s))))
    print('(%d rounds, epochs=%d, medians)' % (args.rounds, args.epochs))


if __name__ == '__main__':
    main()
