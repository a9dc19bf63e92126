#!/usr/bin/env python3
"""Turns broom_micro_bench JSON output into side-by-side Markdown tables.

Usage: format_micro.py RESULTS.json [MORE.json ...] [-o OUT.md]

Several JSON files (broom_micro_bench, then the bench/baselines/ binaries run once per
LD_PRELOAD) are merged into the same tables: their benchmark names share scenarios and differ
in the contender.

Reads Google Benchmark JSON. With --benchmark_repetitions it takes the `median` aggregate
and, when the file also holds each repetition (--benchmark_display_aggregates_only=true, as
the main job runs it), their min and max; without aggregates it takes the median of the plain
runs itself. Benchmark names are `<scenario>/<parameters>/<contender>` (see
bench/micro/bench_common.h); the counter `objects` turns time per iteration into time per
object.

Prints, per benchmark family, one narrow table per question (Broom against the bump floor,
against arenas, against mallocs, ...: FAMILIES below), one row per scenario, each cell the
median ns per object and its ratio to the group's reference, flagged when the repetitions
spread too widely. The targets are checked by report.py (bench/tools/report.json). Standard
library only.
"""

import argparse
import json
import re
import statistics
import sys

# Name components Google Benchmark appends (options, not parameters).
_OPTION_PART = re.compile(
    r"^(real_time|manual_time|process_time|iterations:\d+|repeats:\d+|min_time:.*|threads:\d+)$")

_TO_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}

# family -> title, unit, and the column groups its table is split into: each group answers one
# question and is (question, reference contender, contenders); a cell shows the median and, for
# all but the reference, the ratio to the reference (> 1: the reference is faster).
FAMILIES = {
    "alloc_free": {
        "title": "Small-object allocation, then free of the whole batch",
        "unit": "ns per object, including its share of creating and freeing the region",
        "groups": [
            ("Broom's region kinds against the bump-pointer floor", "bump_floor",
             ["bump_floor", "broom_transferable", "broom_temporary_scope", "broom_actor"]),
            ("Arenas", "broom_transferable",
             ["broom_transferable", "pmr_monotonic", "pmr_monotonic_buffer", "pmr_pool",
              "protobuf_arena", "mimalloc_heap"]),
            ("General mallocs (free of each object)", "broom_transferable",
             ["broom_transferable", "glibc", "jemalloc", "malloc_glibc", "malloc_jemalloc",
              "malloc_mimalloc", "malloc_tcmalloc"]),
        ],
    },
    "bulk_free": {
        "title": "Freeing regions of n objects of 64 B, 1M objects per iteration (free phase only)",
        "unit": "ns per object",
        "groups": [
            ("Bulk free", "broom_transferable",
             ["broom_transferable", "broom_temporary_scope", "broom_actor", "pmr_monotonic",
              "pmr_pool", "protobuf_arena", "mimalloc_heap"]),
            ("Free of each object, in regions and arenas", "broom_transferable",
             ["broom_transferable", "broom_actor_free_each", "pmr_pool_free_each",
              "mimalloc_heap_free_each"]),
            ("Free of each object, general mallocs", "broom_transferable",
             ["broom_transferable", "glibc", "jemalloc", "malloc_glibc", "malloc_jemalloc",
              "malloc_mimalloc", "malloc_tcmalloc"]),
        ],
    },
    "actor_free_recycled": {
        "title": "ActorRegion::Free on recycled blocks (regression check)",
        "unit": "ns per Free",
        "groups": [("", "whole_object", ["whole_object", "one_word"])],
    },
    "region_create": {
        "title": "Creating and destroying an empty region",
        "unit": "ns per region",
        "groups": [("", "broom_transferable",
                    ["broom_transferable", "broom_temporary", "broom_actor",
                     "broom_temporary_scope", "jemalloc_arena"])],
    },
    "tiny_region": {
        "title": "Tiny regions: 10,000 regions of 300 B each",
        "unit": "ns per region (create, 5 allocations, destroy)",
        "groups": [("", "broom_transferable",
                    ["broom_transferable", "broom_temporary", "broom_actor"])],
    },
    "handoff": {
        "title": "Cross-thread handoff of 256 records of 64 B (producer allocates, consumer frees)",
        "unit": "ns per record, wall clock",
        "groups": [("", "broom_transferable",
                    ["broom_transferable", "jemalloc", "glibc", "malloc_glibc", "malloc_jemalloc",
                     "malloc_mimalloc", "malloc_tcmalloc"])],
    },
}

# A family not listed above is shown in groups of at most this many contenders.
MAX_GROUP = 7

from sidebyside import SPREAD_LIMIT  # noqa: E402  (one noise threshold for the whole report)


def split_name(run_name):
    parts = [p for p in run_name.split("/") if not _OPTION_PART.match(p)]
    return "/".join(parts[:-1]), parts[-1]


class Result:
    """One contender in one scenario: median ns per object, the min and max over the
    repetitions (None without per-repetition output), the CV, and the *_per_region counters."""

    def __init__(self, ns_per_object, cv=None, counters=None, lo=None, hi=None):
        self.ns = ns_per_object
        self.cv = cv
        self.counters = counters or {}
        self.lo = lo
        self.hi = hi

    @property
    def spread(self):
        """(max - min) / median over the repetitions, or None."""
        if self.lo is None or self.hi is None or not self.ns:
            return None
        return (self.hi - self.lo) / self.ns


def load(path):
    """Returns {scenario: {contender: Result}} and the JSON context."""
    with open(path) as f:
        data = json.load(f)
    medians, cvs, plain = {}, {}, {}
    for b in data.get("benchmarks", []):
        if b.get("error_occurred"):
            continue
        run_name = b.get("run_name") or b["name"]
        key = split_name(run_name)
        objects = float(b.get("objects", 1.0)) or 1.0
        # Wall clock (or manual time) where the benchmark asked for it, else the thread's CPU
        # time: the single-threaded benchmarks report CPU time, the handoff wall-clock time.
        wall = "/real_time" in run_name or "/manual_time" in run_name
        t = float(b["real_time"] if wall else b["cpu_time"])
        ns = t * _TO_NS[b.get("time_unit", "ns")] / objects
        counters = {k: v for k, v in b.items() if k.endswith("_per_region")}
        if b.get("run_type") == "aggregate":
            agg = b.get("aggregate_name")
            if agg == "median":
                medians[key] = Result(ns, counters=counters)
            elif agg == "cv":
                cvs[key] = t  # a unit-free ratio
        else:
            plain.setdefault(key, []).append(Result(ns, counters=counters))
    for key, runs in plain.items():
        values = [r.ns for r in runs]
        if key not in medians:
            mean = statistics.mean(values)
            cv = statistics.stdev(values) / mean if len(values) > 1 and mean > 0 else None
            medians[key] = Result(statistics.median(values), cv, runs[len(runs) // 2].counters)
        medians[key].lo, medians[key].hi = min(values), max(values)
    table = {}
    for (scenario, contender), r in medians.items():
        if r.cv is None:
            r.cv = cvs.get((scenario, contender))
        table.setdefault(scenario, {})[contender] = r
    return table, data.get("context", {})


def load_all(paths):
    """Merges several JSON files: {scenario: {contender: Result}}, {path: context}."""
    table, contexts = {}, {}
    for path in paths:
        t, c = load(path)
        for scenario, row in t.items():
            table.setdefault(scenario, {}).update(row)
        contexts[path] = c
    return table, contexts


def fmt_ns(v):
    if v is None:
        return "—"
    if v >= 1e6:
        return f"{v / 1e6:.2f} ms"
    if v >= 1e4:
        return f"{v / 1e3:.1f} µs"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}" if v >= 0.1 else f"{v:.4f}"


def fmt_ratio(v):
    if v is None:
        return "—"
    return f"{v:.0f}×" if v >= 100 else f"{v:.2f}×" if v < 10 else f"{v:.1f}×"


def ratio(row, num, den):
    if num in row and den in row and row[den].ns > 0:
        return row[num].ns / row[den].ns
    return None


def family_of(scenario):
    return scenario.split("/")[0]


def scenario_params(scenario):
    """{'size': '16', 'n': '4096'} for 'alloc_free/size:16/n:4096'."""
    return dict(p.split(":", 1) for p in scenario.split("/")[1:] if ":" in p)


def scenario_key(scenario):
    """Sort key: the last parameter varies slowest, numbers in numeric order, words last."""
    values = [p.split(":", 1)[-1] for p in scenario.split("/")[1:]]
    return [(0, float(v), "") if v.replace(".", "", 1).isdigit() else (1, 0.0, v)
            for v in reversed(values)]


def scenario_label(scenario):
    rest = scenario.split("/")[1:]
    return " ".join(rest) if rest else "—"


def groups_of(family, rows):
    """The family's column groups, restricted to contenders present; contenders no group
    names are appended in extra groups of at most MAX_GROUP."""
    present = {c for r in rows.values() for c in r}
    groups = []
    for question, ref, members in FAMILIES.get(family, {}).get("groups", []):
        members = [c for c in members if c in present]
        if len(members) > (1 if ref in members else 0):
            groups.append((question, ref if ref in members else None, members))
    named = {c for _, _, members in groups for c in members}
    rest = sorted(present - named)
    ref = groups[0][1] if groups else None
    for i in range(0, len(rest), MAX_GROUP - 1):
        chunk = rest[i:i + MAX_GROUP - 1]
        groups.append(("Other contenders", ref, ([ref] if ref else []) + chunk))
    return groups


def cell(row, contender, ref):
    if contender not in row:
        return "—"
    r = row[contender]
    text = fmt_ns(r.ns)
    if ref and contender != ref and ref in row:
        text += f" ({fmt_ratio(ratio(row, contender, ref))})"
    if r.spread is not None and r.spread > SPREAD_LIMIT:
        text += " ⚠"
    return text


def render_family(family, rows, heading="###"):
    info = FAMILIES.get(family, {"title": family, "unit": "ns per object"})
    out = [f"{heading} {info['title']}", "",
           f"Median {info['unit']}; (n×) = that contender ÷ the group's first column (> 1: the "
           f"first column is faster); ⚠ = the repetitions' (max − min) ÷ median is above "
           f"{SPREAD_LIMIT * 100:.0f}%.", ""]
    for question, ref, members in groups_of(family, rows):
        if question:
            out += [f"{heading}# {question}", ""]
        out += ["| scenario | " + " | ".join(members) + " |", "|---|" + "---|" * len(members)]
        for scenario, row in sorted(rows.items(), key=lambda sr: scenario_key(sr[0])):
            out.append(f"| {scenario_label(scenario)} | "
                       + " | ".join(cell(row, c, ref) for c in members) + " |")
        out.append("")
    counters = sorted({k for r in rows.values() for res in r.values() for k in res.counters})
    if counters:
        out += ["| scenario | contender | " + " | ".join(counters) + " |",
                "|---|---|" + "---|" * len(counters)]
        for scenario, row in rows.items():
            for c, res in row.items():
                out.append(f"| {scenario_label(scenario)} | {c} | " + " | ".join(
                    f"{res.counters[k]:,.0f}" if k in res.counters else "—" for k in counters)
                           + " |")
        out.append("")
    return out


def families_in(table):
    families = []
    for s in table:
        if family_of(s) not in families:
            families.append(family_of(s))
    return families


def render(table, heading="###"):
    out = []
    for f in families_in(table):
        out += render_family(f, {s: r for s, r in table.items() if family_of(s) == f}, heading)
    return "\n".join(out)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", nargs="+")
    parser.add_argument("-o", "--output", help="also write the Markdown here")
    args = parser.parse_args(argv)
    table, contexts = load_all(args.json)
    if not table:
        print(f"format_micro: no benchmark results in {args.json}", file=sys.stderr)
        return 1
    text = "## Micro-benchmarks\n\n" + render(table)
    print(text)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
