#!/usr/bin/env python3
"""Runs the preload workloads under glibc, jemalloc, mimalloc, tcmalloc and Broom, interleaved.

Usage: run_bench.py --workloads BIN --broom LIB [--runs N] [--scale S] [--smoke]

Each (workload, allocator) pair runs --runs times; runs are interleaved round-robin so machine
noise spreads evenly. Time is the workload's own wall time (printed by the binary, excluding
process start-up); peak RSS is the child's VmHWM (see run_once). Prints a Markdown table of
medians. --smoke runs each pair once at a tiny scale and only checks that everything works.
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


def run_once(binary, workload, scale, preload, extra):
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    env.pop("BROOM_CONF", None)
    if preload:
        env["LD_PRELOAD"] = preload
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
    args = ap.parse_args()
    if args.smoke:
        args.runs, args.scale = 1, 0.02
    configs = [(n, p, []) for n, p in RIVALS if p is None or os.path.exists(p)]
    missing = [n for n, p in RIVALS if p is not None and not os.path.exists(p)]
    configs.append(("broom", args.broom, []))
    pairs = []
    for w in WORKLOADS:
        for name, lib, extra in configs:
            pairs.append((w, name, lib, extra))
        pairs.append((w, "broom+regions", args.broom, ["regions"])) if w == "prodcons" else None
    results = {(w, n): [] for w, n, _, _ in pairs}
    for r in range(args.runs):
        for w, name, lib, extra in pairs:
            results[(w, name)].append(run_once(args.workloads, w, args.scale, lib, extra))
        print(f"round {r + 1}/{args.runs} done", file=sys.stderr)
    if missing:
        print(f"(not installed, skipped: {', '.join(missing)})")
    names = [n for n, _, _ in configs] + ["broom+regions"]
    print(f"Median of {args.runs} interleaved runs, scale {args.scale}: time in seconds "
          f"(peak RSS in MiB)\n")
    print("| workload | " + " | ".join(names) + " | broom vs jemalloc |")
    print("|---|" + "---|" * (len(names) + 1))
    for w in WORKLOADS:
        cells = []
        med = {}
        for n in names:
            runs = results.get((w, n))
            if not runs:
                cells.append("")
                continue
            t = statistics.median(x[0] for x in runs)
            rss = statistics.median(x[1] for x in runs)
            med[n] = t
            cells.append(f"{t:.3f} ({rss:.0f})")
        ratio = ""
        if "jemalloc" in med and "broom" in med:
            ratio = f"{100.0 * (med['broom'] / med['jemalloc'] - 1):+.1f}%"
        print(f"| {w} | " + " | ".join(cells) + f" | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
