#!/usr/bin/env python3
"""Runs the preload workloads under glibc, jemalloc, mimalloc, tcmalloc and Broom, interleaved.

Usage: run_bench.py --workloads BIN --broom LIB [--runs N] [--scale S] [--smoke]
                    [--only W1,W2] [--also NAME=LIB[@CONF] ...] [--cpu]

Each (workload, allocator) pair runs --runs times; runs are interleaved round-robin so machine
noise spreads evenly. Time is the workload's own wall time (printed by the binary, excluding
process start-up), or its CPU time with --cpu; peak RSS is the child's VmHWM (see run_once).
Prints a Markdown table of medians and, per Broom build, the median and min-max of the
per-round ratio to jemalloc (each round runs both back to back). --smoke runs each pair once at
a tiny scale and only checks that everything works.

--only picks workloads, including the microloops not run by default (pairs, newdelete).
--also adds another Broom build (e.g. the previous commit's library) as a column; NAME=LIB@CONF
runs it with BROOM_CONF=CONF (e.g. nobind=LIB@bind:0).
"""
import argparse
import os
import statistics
import subprocess
import sys

LIBDIR = "/usr/lib/x86_64-linux-gnu"
RIVALS = [
    ("glibc", None),
    ("jemalloc", LIBDIR + "/libjemalloc.so.2"),
    ("mimalloc", LIBDIR + "/libmimalloc.so.2.0"),
    ("tcmalloc", LIBDIR + "/libtcmalloc_minimal.so.4"),
]
WORKLOADS = ["churn", "prodcons", "larson", "mixed"]
MICROLOOPS = ["pairs", "newdelete"]


def run_once(binary, workload, scale, preload, extra, cpu=False):
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    env.pop("BROOM_CONF", None)
    if preload:
        preload, _, conf = preload.partition("@")
        env["LD_PRELOAD"] = preload
        if conf:
            env["BROOM_CONF"] = conf
    proc = subprocess.Popen([binary, workload, str(scale)] + extra, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    out = proc.stdout.read().decode()
    err = proc.stderr.read().decode()
    proc.stdout.close()
    proc.stderr.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0 or "seconds=" not in out:
        raise RuntimeError(f"{workload} under {preload}: exit {proc.returncode}: {err}")
    seconds = float(out.split("seconds=")[1].split()[0])
    if cpu:
        seconds = float(out.split("cpu=")[1].split()[0])
    # Peak RSS: the workload's own VmHWM. ru_maxrss from wait4 (usage) also counts the address
    # space the child had before exec (a copy of this Python process), so it is kept only as
    # a fallback.
    hwm_kb = int(out.split("hwm_kb=")[1].split()[0]) if "hwm_kb=" in out else -1
    return seconds, (hwm_kb if hwm_kb > 0 else usage.ru_maxrss) / 1024.0  # MiB


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workloads", required=True)
    ap.add_argument("--broom", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--only", default="", help="comma-separated workloads")
    ap.add_argument("--also", action="append", default=[], metavar="NAME=LIB[@CONF]",
                    help="another Broom build (or the same with BROOM_CONF=CONF) side by side")
    ap.add_argument("--cpu", action="store_true", help="report CPU time, not wall time")
    args = ap.parse_args()
    workloads = args.only.split(",") if args.only else WORKLOADS
    for w in workloads:
        if w not in WORKLOADS + MICROLOOPS:
            ap.error(f"unknown workload {w}")
    if args.smoke:
        args.runs, args.scale = 1, 0.02
        workloads = WORKLOADS + MICROLOOPS
    configs = [(n, p, []) for n, p in RIVALS if p is None or os.path.exists(p)]
    missing = [n for n, p in RIVALS if p is not None and not os.path.exists(p)]
    brooms = ["broom"]
    configs.append(("broom", args.broom, []))
    for spec in args.also:
        name, lib = spec.split("=", 1)
        brooms.append(name)
        configs.append((name, lib, []))
    pairs = []
    for w in workloads:
        for name, lib, extra in configs:
            pairs.append((w, name, lib, extra))
        pairs.append((w, "broom+regions", args.broom, ["regions"])) if w == "prodcons" else None
    results = {(w, n): [] for w, n, _, _ in pairs}
    for r in range(args.runs):
        for w, name, lib, extra in pairs:
            results[(w, name)].append(
                run_once(args.workloads, w, args.scale, lib, extra, args.cpu))
        print(f"round {r + 1}/{args.runs} done", file=sys.stderr)
    if missing:
        print(f"(not installed, skipped: {', '.join(missing)})")
    names = [n for n, _, _ in configs]
    if "prodcons" in workloads:
        names.append("broom+regions")
    what = "CPU time" if args.cpu else "time"
    print(f"Median of {args.runs} interleaved runs, scale {args.scale}: {what} in seconds "
          f"(peak RSS in MiB); vs jemalloc: median [min, max] of the per-round ratios\n")
    print("| workload | " + " | ".join(names) + " | " +
          " | ".join(f"{b} vs jemalloc" for b in brooms) + " |")
    print("|---|" + "---|" * (len(names) + len(brooms)))
    for w in workloads:
        cells = []
        for n in names:
            runs = results.get((w, n))
            if not runs:
                cells.append("")
                continue
            t = statistics.median(x[0] for x in runs)
            rss = statistics.median(x[1] for x in runs)
            cells.append(f"{t:.3f} ({rss:.0f})")
        ratios = []
        for b in brooms:
            je, br = results.get((w, "jemalloc")), results.get((w, b))
            if not je or not br:
                ratios.append("")
                continue
            rs = [100.0 * (x[0] / y[0] - 1) for x, y in zip(br, je)]
            ratios.append(f"{statistics.median(rs):+.1f}% [{min(rs):+.1f}, {max(rs):+.1f}]")
        print(f"| {w} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
