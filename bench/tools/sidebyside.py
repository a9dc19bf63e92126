#!/usr/bin/env python3
"""Runs whole-program benchmarks side by side and writes Markdown, JSON and PNG results.

Usage: sidebyside.py SPEC.json [SPEC.json ...] [--scale default|full|smoke] [--runs 5]
                     [--warmup 1] [--build DIR] [--out-dir bench/results] [--only a,b]
                     [--no-plot]

A spec (bench/tools/specs/*.json) names a benchmark, its cases per scale, and its contenders.
A contender is a command line, optionally with an LD_PRELOAD library and extra environment:

  {"name": "jemalloc", "cmd": ["{build}/bench/workloads/churn_malloc", "--ops={ops}"],
   "preload": "{libdir}/libjemalloc.so.2", "policy": "malloc_jemalloc",
   "as": "jemalloc", "threads": 1}

`{build}`, `{libdir}` and the case's keys are substituted in cmd, preload and env values. A
contender whose preload library or program does not exist is skipped (and said so; never the
baseline, whose absence fails its runs), so that a machine without, say, libmimalloc-dev runs
the rest. If `policy` is given, the program's RESULT line must report that policy (so a preload
that did not take is caught).
`as` says who the contender is across specs (broom, jemalloc, boehm_gc, ...: the ids of
report.json, which give each its colour and short label; default: its name) and `threads` how
many worker threads it runs (default 1). The spec's `report` block gives a case's short name
(`short`, a template over the case's keys, values renamed through `names`) and the contender
peak RSS is compared with (`rss_base`, default jemalloc).

Method: for each case, every contender runs `--warmup` times (discarded), then `--runs`
rounds of A B C ... in the same order (interleaved, so load changes hit all contenders alike).
Each run is one child process; its peak RSS is its ru_maxrss as reported by GNU time
(/usr/bin/time, package `time`; see run_child), its wall time is measured here, the 1-minute
load average is sampled after it, and its own metrics come from the last line of its stdout
that starts with `RESULT ` (key=value pairs). Reported per case and contender: the median,
min-max and spread ((max - min) / median, flagged above SPREAD_LIMIT) of the spec's metric,
the ratio to the baseline contender's median (> 1: the baseline is faster), the median peak
RSS and its ratio to the RSS base, and the medians of the spec's extra keys. `checks` in the
spec (for example gc_collections >= 1) are verified on every run; a failed check or a failed
run makes the exit status 1.

Outputs, per spec: OUT_DIR/<name>.md (also printed), <name>.json (the spec and every run, which
report.py reads), and unless --no-plot <name>.png (each contender ÷ the baseline, drawn by
report.py/figures.py; needs python3-matplotlib, else no plot). The harness itself uses the
standard library only.
"""

import argparse
import datetime
import json
import os
import platform
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
        program = subst(c["cmd"][0], variables)
        if c["name"] != spec.get("baseline") and not os.path.exists(program):
            skipped.append(f"{c['name']} (no {program}: not built here)")
            continue
        contenders.append(c)
    cases = spec["scales"][args.scale]
    record = {"spec": spec["name"], "spec_def": spec, "scale": args.scale, "runs": args.runs,
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
                load1 = os.getloadavg()[0]
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
                                            "preload": preload, "load1": load1})
        record["cases"].append({"label": label, "params": case, "runs": runs})
    record["loadavg_end"] = os.getloadavg()
    record["end"] = datetime.datetime.now().isoformat(timespec="seconds")
    record["failures"] = failures
    return record


def metric_of(spec, run):
    if spec["metric"] == "wall":
        return run["wall"]
    return run["result"].get(spec["metric"], run["wall"])


# A row whose (max - min) / median exceeds this is flagged as too noisy to trust.
SPREAD_LIMIT = 0.25


def spread(row):
    """(max - min) / median of a summary row's metric, or None."""
    if not row or not row["median"]:
        return None
    return (row["max"] - row["min"]) / row["median"]


def case_stats(spec, case):
    """{contender: {median, min, max, rss, rss_min, rss_max, n, extras...} or None if every
    run failed} for one recorded case."""
    rows = {}
    for name, runs in case["runs"].items():
        ok = [r for r in runs if r["status"] == 0 and r["result"]]
        if not ok:
            rows[name] = None
            continue
        values = [metric_of(spec, r) for r in ok]
        rss = [r["peak_rss_kib"] for r in ok]
        row = {"median": statistics.median(values), "min": min(values), "max": max(values),
               "rss": statistics.median(rss), "rss_min": min(rss), "rss_max": max(rss),
               "n": len(ok)}
        for key in spec.get("extra", []):
            vals = [r["result"][key] for r in ok if isinstance(r["result"].get(key), float)]
            row[key] = statistics.median(vals) if vals else None
        rows[name] = row
    return rows


def case_load(case):
    """(min, max) of the 1-minute load average sampled after each run of a case, or None."""
    loads = [r["load1"] for runs in case["runs"].values() for r in runs if "load1" in r]
    return (min(loads), max(loads)) if loads else None


def summarize(spec, record):
    """{case label: {contender: row}} (rows as case_stats returns them)."""
    return {case["label"]: case_stats(spec, case) for case in record["cases"]}


def short_label(spec, params):
    """The case's short name for tables and plots: the spec's report.short template over the
    case's parameters, each value first renamed through report.names (e.g. wjoin ->
    windowed JOIN); the full case label if the spec has no template."""
    report = spec.get("report", {})
    names = report.get("names", {})
    values = {k: names.get(str(v), str(v)) for k, v in params.items()}
    template = report.get("short", spec.get("case_label"))
    if template is None:
        return " ".join(f"{k}={v}" for k, v in params.items())
    return template.format(**values)


def contender_spec(spec, name):
    return next((c for c in spec["contenders"] if c["name"] == name), {})


def canonical(spec, name):
    """Who a contender is across specs (its `as`, default its name): broom, jemalloc, ..."""
    return contender_spec(spec, name).get("as", name)


def threads_of(spec, name):
    return contender_spec(spec, name).get("threads", 1)


def fmt(v, digits=3):
    if v is None:
        return "—"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}g}"


def fmt_spread(s, limit=SPREAD_LIMIT):
    if s is None:
        return "—"
    return f"**{s * 100:.0f}% ⚠**" if s > limit else f"{s * 100:.0f}%"


def rss_base(spec):
    """The contender peak RSS is compared with: the one whose canonical name is the spec's
    report.rss_base (default: jemalloc), else the baseline."""
    want = spec.get("report", {}).get("rss_base", "jemalloc")
    for c in spec["contenders"]:
        if c.get("as", c["name"]) == want and c.get("threads", 1) == 1:
            return c["name"]
    return spec.get("baseline")


def render_markdown(spec, record, table, heading="###"):
    """One narrow table per case (time and peak RSS, with ratios), then one table of the
    programs' other RESULT keys; rows whose spread exceeds SPREAD_LIMIT are flagged."""
    base, rbase = spec.get("baseline"), rss_base(spec)
    m = record["machine"]
    out = [f"{heading} {spec['title']}", ""]
    if spec.get("description"):
        out += [spec["description"], ""]
    out += [f"Scale `{record['scale']}`; {record['runs']} interleaved runs per contender after "
            f"{record['warmup']} warm-up; {m['cpus']} CPUs ({m['cpu_model']}); load average "
            f"{record['loadavg_start'][0]:.1f} at start, {record['loadavg_end'][0]:.1f} at end; "
            f"{record['start']} to {record['end']}. Ratios: contender ÷ `{base}` (time) and "
            f"÷ `{rbase}` (peak RSS), medians; above 1 means that contender is slower (larger). "
            f"Spread = (max − min) ÷ median; ⚠ above {SPREAD_LIMIT * 100:.0f}%.", ""]
    unit = spec.get("metric_label", spec["metric"])
    cases = {c["label"]: c for c in record["cases"]}
    for label, rows in table.items():
        case = cases.get(label, {})
        load = case_load(case) if case else None
        where = f" (load {load[0]:.1f}–{load[1]:.1f})" if load else ""
        out += [f"{heading}# {short_label(spec, case.get('params', {}))}: `{label}`{where}", "",
                f"| contender | median {unit} | min–max | spread | ÷ {base} | peak RSS MiB "
                f"| RSS ÷ {rbase} |", "|---|---|---|---|---|---|---|"]
        b, rb = rows.get(base), rows.get(rbase)
        for name, row in rows.items():
            shown = f"**{name}**" if name == base else name
            if row is None:
                out.append(f"| {shown} | failed | | | | | |")
                continue
            ratio = row["median"] / b["median"] if b and b["median"] > 0 else None
            rss_ratio = row["rss"] / rb["rss"] if rb and rb["rss"] > 0 else None
            out.append(" | ".join([
                f"| {shown}", fmt(row["median"]), f"{fmt(row['min'])}–{fmt(row['max'])}",
                fmt_spread(spread(row)), f"{ratio:.2f}×" if ratio is not None else "—",
                f"{row['rss'] / 1024:.1f}",
                f"{rss_ratio:.2f}× |" if rss_ratio is not None else "— |"]))
        out.append("")
    extras = spec.get("extra", [])
    several = len(table) > 1
    lines = []
    for label, rows in table.items():
        for name, row in rows.items():
            if row is None or all(row.get(k) is None for k in extras):
                continue
            cells = ([short_label(spec, cases[label]["params"])] if several else []) + [name]
            lines.append("| " + " | ".join(cells + [fmt(row.get(k)) for k in extras]) + " |")
    if extras and lines:
        head = (["case"] if several else []) + ["contender"] + extras
        out += [f"{heading}# Other measures (medians of each program's RESULT line)", "",
                "| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + lines + [""]
    if record["skipped"]:
        out += ["Skipped: " + "; ".join(record["skipped"]) + ".", ""]
    if record["failures"]:
        out += ["**Failures:**", ""] + [f"- {f}" for f in record["failures"]] + [""]
    return "\n".join(out)


def plot(spec, record, path):
    """Draws each contender's metric and peak RSS ÷ the baseline's, per case (figures.py);
    False if python3-matplotlib is missing."""
    try:
        import report  # this directory
        return report.draw_spec(spec, record, path)
    except ImportError:  # matplotlib
        return False


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
        if not args.no_plot and plot(spec, record, stem + ".png"):
            print(f"sidebyside: wrote {stem}.md, {stem}.json, {stem}.png", file=sys.stderr)
        else:
            print(f"sidebyside: wrote {stem}.md, {stem}.json (no plot)", file=sys.stderr)
        if record["failures"]:
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
