#!/usr/bin/env python3
"""Cuts a main-job results directory down to the small recorded run report_test.py reads.

Usage: make_fixture.py RESULTS_DIR OUT_DIR [--runs 3] [--micro REGEX] [--samples 20]

Keeps run.json (its load samples thinned to --samples), every sidebyside.py record with the
first --runs runs of each contender (command lines dropped), and from micro*.json the
benchmarks whose run_name matches --micro (medians, CVs and every repetition, only the fields
format_micro.py reads). The numbers are the run's own; nothing is edited. This is how
tools/tests/fixture/ was made (see its README.md for the run it came from).
"""

import argparse
import glob
import json
import os
import re
import sys

MICRO_DEFAULT = (r"^(alloc_free/size:(16|mixed)/|bulk_free/n:(1000|1000000)/|handoff/|"
                 r"region_create/|tiny_region/|actor_free_recycled/)")
# What format_micro.load reads of a benchmark entry (plus the *_per_region counters).
MICRO_KEYS = {"run_name", "run_type", "aggregate_name", "real_time", "cpu_time", "time_unit",
              "objects", "error_occurred"}


def write(path, data):
    with open(path, "w") as f:
        json.dump(data, f, separators=(",", ":"), ensure_ascii=False)
        f.write("\n")


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results")
    parser.add_argument("out")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--micro", default=MICRO_DEFAULT)
    parser.add_argument("--samples", type=int, default=20)
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    keep = re.compile(args.micro)
    for path in sorted(glob.glob(os.path.join(args.results, "*.json"))):
        name = os.path.basename(path)
        with open(path) as f:
            data = json.load(f)
        if name == "run.json":
            samples = data.get("load_samples", [])
            step = max(1, len(samples) // args.samples)
            data["load_samples"] = samples[::step]
        elif "cases" in data:
            for case in data["cases"]:
                for contender, runs in case["runs"].items():
                    case["runs"][contender] = [
                        {k: v for k, v in r.items() if k not in ("cmd", "preload")}
                        for r in runs[:args.runs]]
        elif "benchmarks" in data:
            data["benchmarks"] = [
                {k: v for k, v in b.items() if k in MICRO_KEYS or k.endswith("_per_region")}
                for b in data["benchmarks"]
                if keep.search(b.get("run_name", b["name"]))
                and b.get("aggregate_name") in (None, "median", "cv")]
            if not data["benchmarks"]:
                continue
        else:
            continue
        write(os.path.join(args.out, name), data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
