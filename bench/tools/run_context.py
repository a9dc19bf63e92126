#!/usr/bin/env python3
"""Records what a main-job run ran on: bench/results/run.json, read by report.py.

Usage: run_context.py start  --out run.json --build DIR --command "..." --scale default
       run_context.py sample --out load.tsv [--interval 5]     (until killed)
       run_context.py end    --out run.json [--samples load.tsv]

`start` writes the commit (and whether the tree had uncommitted changes), the machine, Broom's
own build as configured in DIR/CMakeCache.txt (build type, compiler and its version, flags,
BROOM_* options), and the Debian package version of every library the benchmarks link or
preload; `sample` appends "unix-seconds 1-min-load" lines every --interval seconds; `end` adds
the end time and the load samples. Standard library only; a missing piece is recorded as
null, never guessed.
"""

import argparse
import datetime
import glob
import json
import os
import platform
import re
import subprocess
import sys
import time

# Debian packages whose build ran in the benchmarks (name in the report -> package).
PACKAGES = {
    "glibc": "libc6",
    "jemalloc": "libjemalloc2",
    "mimalloc": "libmimalloc2.0",
    "tcmalloc (gperftools)": "libtcmalloc-minimal4",
    "Boehm GC": "libgc1",
    "protobuf": "libprotobuf32",
    "CAF": "libcaf-core0.17",
    "Google Benchmark": "libbenchmark1debian",
    "g++": "g++-12",
}

# CMakeCache entries that describe Broom's own build.
CACHE_KEYS = ["CMAKE_BUILD_TYPE", "CMAKE_CXX_COMPILER", "CMAKE_CXX_FLAGS", "BROOM_DEBUG",
              "BROOM_SANITIZER", "BROOM_CHECKED", "BROOM_WITH_JEMALLOC", "BROOM_WERROR"]


def now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def command_output(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
        return out.strip() or None
    except (OSError, subprocess.CalledProcessError):
        return None


def read_cmake_cache(build):
    """Broom's build from DIR/CMakeCache.txt: the keys above, the flags of the build type,
    and the compiler's id and version (CMakeFiles/<version>/CMakeCXXCompiler.cmake)."""
    values = {}
    try:
        with open(os.path.join(build, "CMakeCache.txt")) as f:
            for line in f:
                m = re.match(r"^([A-Za-z_0-9]+):[A-Z]+=(.*)$", line.rstrip("\n"))
                if m:
                    values[m.group(1)] = m.group(2)
    except OSError:
        return None
    info = {k: values.get(k) for k in CACHE_KEYS}
    build_type = values.get("CMAKE_BUILD_TYPE") or ""
    info["CMAKE_CXX_FLAGS_" + build_type.upper()] = values.get(
        "CMAKE_CXX_FLAGS_" + build_type.upper())
    for path in glob.glob(os.path.join(build, "CMakeFiles", "*", "CMakeCXXCompiler.cmake")):
        with open(path) as f:
            text = f.read()
        for key in ("CMAKE_CXX_COMPILER_ID", "CMAKE_CXX_COMPILER_VERSION"):
            m = re.search(rf'set\({key} "([^"]*)"\)', text)
            if m:
                info[key] = m.group(1)
    info["build_dir"] = build
    return info


def package_versions():
    versions = {}
    for name, package in PACKAGES.items():
        versions[name] = {"package": package,
                          "version": command_output(["dpkg-query", "-W", "-f=${Version}",
                                                     package])}
    return versions


def machine():
    model, mem_kib = None, None
    try:
        with open("/proc/cpuinfo") as f:
            model = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")),
                         None)
        with open("/proc/meminfo") as f:
            mem_kib = next((int(l.split()[1]) for l in f if l.startswith("MemTotal")), None)
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu_model": model,
            "mem_gib": round(mem_kib / 1048576, 1) if mem_kib else None,
            "kernel": platform.release(), "host": platform.node()}


def git_state(repo):
    commit = command_output(["git", "-C", repo, "rev-parse", "--short", "HEAD"])
    status = command_output(["git", "-C", repo, "status", "--porcelain", "--untracked-files=no",
                             "--", ".", ":(exclude)bench/results"])
    return {"commit": commit, "uncommitted_changes": bool(status) if commit else None}


def start(args):
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    record = {"command": args.command, "scale": args.scale, "start": now(),
              "loadavg_start": list(os.getloadavg()), **git_state(repo), "machine": machine(),
              "broom_build": read_cmake_cache(args.build), "packages": package_versions()}
    write(args.out, record)


def sample(args):
    with open(args.out, "a") as f:
        while True:
            f.write(f"{time.time():.0f} {os.getloadavg()[0]:.2f}\n")
            f.flush()
            time.sleep(args.interval)


def end(args):
    with open(args.out) as f:
        record = json.load(f)
    record["end"] = now()
    record["loadavg_end"] = list(os.getloadavg())
    samples = []
    if args.samples and os.path.exists(args.samples):
        with open(args.samples) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2:
                    samples.append([float(parts[0]), float(parts[1])])
    record["load_samples"] = samples
    write(args.out, record)


def write(path, record):
    with open(path + ".tmp", "w") as f:
        json.dump(record, f, indent=1)
    os.replace(path + ".tmp", path)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("start")
    p.add_argument("--out", required=True)
    p.add_argument("--build", required=True)
    p.add_argument("--command", default="")
    p.add_argument("--scale", default="default")
    p = sub.add_parser("sample")
    p.add_argument("--out", required=True)
    p.add_argument("--interval", type=float, default=5)
    p = sub.add_parser("end")
    p.add_argument("--out", required=True)
    p.add_argument("--samples")
    args = parser.parse_args(argv)
    {"start": start, "sample": sample, "end": end}[args.what](args)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
