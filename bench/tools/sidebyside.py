#!/usr/bin/env python3
"""Runs whole-program benchmarks side by side and writes Markdown, JSON and PNG results.

Usage: sidebyside.py SPEC.json [SPEC.json ...] [--scale default|full|smoke] [--runs 5]
                     [--warmup 1] [--build DIR] [--out-dir bench/results] [--only a,b]

A spec (bench/tools/specs/*.json) names a benchmark, its cases per scale, and its contenders.
A contender is a command line, optionally with an LD_PRELOAD library and extra environment:

  {"name": "jemalloc", "cmd": ["{build}/bench/micro/churn_malloc", "--ops={ops}"],
   "preload": "{libdir}/libjemalloc.so.2", "policy": "malloc_jemalloc"}

`{build}`, `{libdir}` and the case's keys are substituted in cmd, preload and env values. A
contender whose preload library does not exist is skipped (and said so). If `policy` is given,
the program's RESULT line must report that policy (so a preload that did not take is caught).

Method: for each case, every contender runs `--warmup` times (discarded), then `--runs`
rounds of A B C ... in the same order (interleaved, so load changes hit all contenders alike).
Each run is one child process; its peak RSS is its ru_maxrss as reported by GNU time
(/usr/bin/time, package `time`; see run_child), its wall time is measured here, and its own metrics come from the last line of its stdout that starts
with `RESULT ` (key=value pairs). Reported per contender: the median and min-max of the spec's
metric, the ratio to the baseline contender's median (> 1: the baseline is faster / smaller),
the median peak RSS and its ratio, and the medians of the spec's extra keys. `checks` in the
spec (for example gc_collections >= 1) are verified on every run; a failed check or a failed
run makes the exit status 1.

Outputs, per spec: OUT_DIR/<name>.md (also printed), <name>.json (every run), <name>.png
(python3-matplotlib if importable, else gnuplot, else no plot). Standard library only.
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

LIBDIR = "/usr/lib/x86_64-linux-gnu"


def subst(value, variables):
    if isinstance(value, str):
        return value.format(**variables)
    if isinstance(value, list):
        return [subst(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: subst(v, variables) for k, v in value.items()}
    return value


def parse_result(stdout):
    """The key=value pairs of the last `RESULT ` line, numbers as floats where they parse."""
    result = {}
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            result = {}
            for pair in line[len("RESULT "):].split():
                key, _, value = pair.partition("=")
                try:
                    result[key] = float(value)
                except ValueError:
                    result[key] = value
    return result


TIME = "/usr/bin/time"


def run_child(cmd, env):
    """Runs one child; returns (exit status, wall seconds, peak RSS KiB, stdout, stderr).

    Peak RSS comes from GNU time (%M, its child's ru_maxrss), not from os.wait4 on a child of
    this process: Linux carries ru_maxrss across execve, so a child forked from a 60 MiB Python
    would report at least 60 MiB. `time` is a small process, so its child's figure is the
    program's own. Without /usr/bin/time, falls back to os.wait4 (and says so once).
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r", suffix=".time") as timing:
        use_time = os.path.exists(TIME)
        argv = [TIME, "-q", "-f", "%M", "-o", timing.name] + cmd if use_time else cmd
        start = time.monotonic()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        rss = usage.ru_maxrss
        if use_time:
            lines = [l for l in timing.read().splitlines() if l.strip().isdigit()]
            rss = int(lines[-1]) if lines else rss
        elif not getattr(run_child, "warned", False):
            run_child.warned = True
            print(f"sidebyside: {TIME} missing; peak RSS includes this Python process's",
                  file=sys.stderr)
        out.seek(0)
        err.seek(0)
        return (proc.returncode, wall, rss, out.read().decode(errors="replace"),
                err.read().decode(errors="replace"))


def machine_info():
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu_model": model, "kernel": platform.release(),
            "host": platform.node()}


def check_run(spec, contender, result):
    """Returns a list of failed-check messages for one run."""
    failures = []
    want = contender.get("policy")
    if want and result.get("policy") != want:
        failures.append(f"policy is {result.get('policy')!r}, expected {want!r} "
                        "(did the LD_PRELOAD take effect?)")
    for check in spec.get("checks", []):
        if check.get("contender") not in (None, contender["name"]):
            continue
        value = result.get(check["key"])
        if value is None:
            failures.append(f"{check['key']} missing from RESULT")
        elif "min" in check and value < check["min"]:
            failures.append(f"{check['key']} = {value} < {check['min']}")
        elif "max" in check and value > check["max"]:
            failures.append(f"{check['key']} = {value} > {check['max']}")
    return failures


def run_spec(spec, args):
    variables = {"build": args.build, "libdir": LIBDIR}
    contenders, skipped = [], []
    for c in spec["contenders"]:
        if args.only and c["name"] not in args.only:
            continue
        preload = subst(c.get("preload", ""), variables)
        if preload and not os.path.exists(preload):
            skipped.append(f"{c['name']} (no {preload})")
            continue
        contenders.append(c)
    cases = spec["scales"][args.scale]
    record = {"spec": spec["name"], "scale": args.scale, "runs": args.runs,
              "warmup": args.warmup, "machine": machine_info(),
              "start": datetime.datetime.now().isoformat(timespec="seconds"),
              "loadavg_start": os.getloadavg(), "skipped": skipped, "cases": []}
    failures = []
    for case in cases:
        v = dict(variables, **{k: str(x) for k, x in case.items()})
        label = spec.get("case_label", " ".join(f"{k}={x}" for k, x in case.items())).format(**v)
        runs = {c["name"]: [] for c in contenders}
        for round_index in range(args.warmup + args.runs):
            warm = round_index < args.warmup
            for c in contenders:
                cmd = subst(c["cmd"], v)
                env = dict(os.environ, **subst(c.get("env", {}), v))
                preload = subst(c.get("preload", ""), v)
                if preload:
                    env["LD_PRELOAD"] = preload
                else:
                    env.pop("LD_PRELOAD", None)
                status, wall, rss, out, err = run_child(cmd, env)
                result = parse_result(out)
                problems = []
                if status != 0:
                    problems.append(f"exit status {status}: {err.strip()[-300:]}")
                elif not result:
                    problems.append("no RESULT line")
                else:
                    problems += check_run(spec, c, result)
                for p in problems:
                    failures.append(f"{spec['name']} {label} {c['name']}: {p}")
                    print(f"sidebyside: FAILED {spec['name']} {label} {c['name']}: {p}",
                          file=sys.stderr)
                tag = "warm-up" if warm else f"run {round_index - args.warmup + 1}"
                metric = result.get(spec["metric"], wall) if spec["metric"] != "wall" else wall
                print(f"sidebyside: {spec['name']} {label} {c['name']:<16} {tag:<8} "
                      f"{spec['metric']}={metric:.4g} rss={rss / 1024:.1f}MiB", file=sys.stderr)
                if not warm:
                    runs[c["name"]].append({"wall": wall, "peak_rss_kib": rss, "status": status,
                                            "result": result, "cmd": cmd,
                                            "preload": preload})
        record["cases"].append({"label": label, "params": case, "runs": runs})
    record["loadavg_end"] = os.getloadavg()
    record["end"] = datetime.datetime.now().isoformat(timespec="seconds")
    record["failures"] = failures
    return record


def metric_of(spec, run):
    if spec["metric"] == "wall":
        return run["wall"]
    return run["result"].get(spec["metric"], run["wall"])


def summarize(spec, record):
    """{case label: {contender: {median, min, max, rss, extras...}}}"""
    table = {}
    for case in record["cases"]:
        rows = {}
        for name, runs in case["runs"].items():
            ok = [r for r in runs if r["status"] == 0 and r["result"]]
            if not ok:
                rows[name] = None
                continue
            values = [metric_of(spec, r) for r in ok]
            row = {"median": statistics.median(values), "min": min(values), "max": max(values),
                   "rss": statistics.median(r["peak_rss_kib"] for r in ok), "n": len(ok)}
            for key in spec.get("extra", []):
                vals = [r["result"][key] for r in ok if isinstance(r["result"].get(key), float)]
                row[key] = statistics.median(vals) if vals else None
            rows[name] = row
        table[case["label"]] = rows
    return table


def fmt(v, digits=3):
    if v is None:
        return "—"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}g}"


def render_markdown(spec, record, table):
    base = spec.get("baseline")
    m = record["machine"]
    out = [f"### {spec['title']}", ""]
    if spec.get("description"):
        out += [spec["description"], ""]
    out += [f"Scale `{record['scale']}`; {record['runs']} interleaved runs per contender after "
            f"{record['warmup']} warm-up; {m['cpus']} CPUs ({m['cpu_model']}); load average "
            f"{record['loadavg_start'][0]:.1f} at start, {record['loadavg_end'][0]:.1f} at end; "
            f"{record['start']} to {record['end']}.", ""]
    unit = spec.get("metric_label", spec["metric"])
    extras = spec.get("extra", [])
    head = ["case", "contender", f"median {unit}", "min–max", f"÷ {base}",
            "peak RSS MiB", f"RSS ÷ {base}"] + extras
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, rows in table.items():
        b = rows.get(base)
        for name, row in rows.items():
            if row is None:
                out.append(f"| {label} | {name} | failed | | | | |" + " |" * len(extras))
                continue
            ratio = row["median"] / b["median"] if b and b["median"] > 0 else None
            rss_ratio = row["rss"] / b["rss"] if b and b["rss"] > 0 else None
            cells = [label, f"**{name}**" if name == base else name, fmt(row["median"]),
                     f"{fmt(row['min'])}–{fmt(row['max'])}",
                     f"{ratio:.2f}×" if ratio is not None else "—", f"{row['rss'] / 1024:.1f}",
                     f"{rss_ratio:.2f}×" if rss_ratio is not None else "—"]
            cells += [fmt(row.get(k)) for k in extras]
            out.append("| " + " | ".join(cells) + " |")
    if record["skipped"]:
        out += ["", "Skipped: " + "; ".join(record["skipped"]) + "."]
    if record["failures"]:
        out += ["", "**Failures:**", ""] + [f"- {f}" for f in record["failures"]]
    out += ["", f"Ratios: contender ÷ {base}, medians; > 1 means {base} is faster (or smaller).",
            ""]
    return "\n".join(out)


def plot(spec, table, path):
    labels = list(table)
    names = []
    for rows in table.values():
        names += [n for n in rows if n not in names]
    med = {n: [(table[l].get(n) or {}).get("median") for l in labels] for n in names}
    lo = {n: [(table[l].get(n) or {}).get("min") for l in labels] for n in names}
    hi = {n: [(table[l].get(n) or {}).get("max") for l in labels] for n in names}
    rss = {n: [((table[l].get(n) or {}).get("rss") or 0) / 1024 for l in labels] for n in names}
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return plot_gnuplot(spec, labels, names, med, rss, path)
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    width = 0.8 / max(1, len(names))
    for i, n in enumerate(names):
        xs = [j + i * width for j in range(len(labels))]
        ys = [v or 0 for v in med[n]]
        err = [[(m or 0) - (l or 0) for m, l in zip(med[n], lo[n])],
               [(h or 0) - (m or 0) for m, h in zip(med[n], hi[n])]]
        axes[0].bar(xs, ys, width, yerr=err, capsize=2, label=n)
        axes[1].bar(xs, rss[n], width, label=n)
    for ax, title in ((axes[0], f"median {spec.get('metric_label', spec['metric'])} (min–max)"),
                      (axes[1], "median peak RSS, MiB")):
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(labels))])
        ax.set_xticklabels(labels)
        ax.set_title(title, fontsize=10)
    axes[0].legend(fontsize=8)
    fig.suptitle(spec["title"])
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def plot_gnuplot(spec, labels, names, med, rss, path):
    if shutil.which("gnuplot") is None:
        return False
    with tempfile.NamedTemporaryFile("w", suffix=".dat", delete=False) as f:
        f.write("case " + " ".join(f'"{n}"' for n in names) + " "
                + " ".join(f'"{n} RSS"' for n in names) + "\n")
        for j, label in enumerate(labels):
            f.write(f'"{label}" ' + " ".join(str(med[n][j] or 0) for n in names) + " "
                    + " ".join(str(rss[n][j]) for n in names) + "\n")
        data = f.name
    k = len(names)
    script = f"""set terminal pngcairo size 1200,450 noenhanced
set output '{path}'
set style data histograms
set style fill solid 0.8
set key autotitle columnhead left top
set multiplot layout 1,2 title '{spec["title"]}'
set title 'median {spec.get("metric_label", spec["metric"])}'
plot for [i=2:{k + 1}] '{data}' using i:xtic(1)
set title 'median peak RSS, MiB'
plot for [i={k + 2}:{2 * k + 1}] '{data}' using i:xtic(1)
unset multiplot
"""
    ok = subprocess.run(["gnuplot"], input=script, text=True).returncode == 0
    os.unlink(data)
    return ok


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="+")
    parser.add_argument("--scale", default="default")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--build", default="build/release")
    parser.add_argument("--out-dir", default="bench/results")
    parser.add_argument("--only", type=lambda s: set(s.split(",")), default=None,
                        help="comma-separated contender names to run")
    parser.add_argument("--no-plot", action="store_true")
    args = parser.parse_args(argv)
    args.build = os.path.abspath(args.build)
    os.makedirs(args.out_dir, exist_ok=True)
    status = 0
    for spec_path in args.specs:
        with open(spec_path) as f:
            spec = json.load(f)
        record = run_spec(spec, args)
        table = summarize(spec, record)
        text = render_markdown(spec, record, table)
        print(text)
        stem = os.path.join(args.out_dir, spec["name"])
        with open(stem + ".md", "w") as f:
            f.write(text + "\n")
        with open(stem + ".json", "w") as f:
            json.dump(record, f, indent=1)
        if not args.no_plot and plot(spec, table, stem + ".png"):
            print(f"sidebyside: wrote {stem}.md, {stem}.json, {stem}.png", file=sys.stderr)
        else:
            print(f"sidebyside: wrote {stem}.md, {stem}.json (no plot)", file=sys.stderr)
        if record["failures"]:
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
