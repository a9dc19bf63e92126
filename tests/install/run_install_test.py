#!/usr/bin/env python3
"""Installs Broom into a scratch prefix and builds the docs' programs as a fresh consumer would.

  run_install_test.py --build BUILD_DIR --source SOURCE_DIR --work WORK_DIR

1. `cmake --install BUILD_DIR --prefix WORK_DIR/prefix`; libbroom.a references no Abseil symbol
   (nm), and no installed CMake file of the core or the shim components looks Abseil up.
2. Writes the `file:` blocks of README.md, docs/quickstart.md and docs/lifecycle.md into a fresh
   project (doc_blocks.py; every fragment is checked against its file).
3. CMake: configures the quickstart's CMakeLists.txt against the prefix with Abseil made
   unfindable, plus the README's program and the C program linked to broom::preload; builds
   with -j2; runs each program: the core program, the job (direct driver, CAF with 2 threads,
   2 processes over 127.0.0.1 with OS-chosen ports; it checks itself against a plain loop), the
   C program without and with LD_PRELOAD (it must build its list in a region only with it).
4. pkg-config: runs the quickstart's build-with-pkg-config.sh as written, with PREFIX set, in
   another fresh directory; broom-c's flags work for a C compiler (no C++ flag among them).
Every step has a time limit; exit status 1 with the failing step's output.
"""

import argparse
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def run(cmd, timeout=300, env=None, cwd=None, expect=None):
    shown = " ".join(cmd) if isinstance(cmd, list) else cmd
    print("+ " + shown, flush=True)
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd,
                           shell=isinstance(cmd, str))
    except subprocess.TimeoutExpired as e:
        sys.exit("install test: timed out after %d s: %s\n%s\n%s" % (timeout, shown,
                                                                      e.stdout, e.stderr))
    if p.returncode != 0:
        sys.exit("install test: failed (exit %d): %s\n%s\n%s" % (p.returncode, shown, p.stdout,
                                                               p.stderr))
    if expect is not None and expect not in p.stdout:
        sys.exit("install test: %s printed no %r:\n%s" % (shown, expect, p.stdout))
    if p.stdout.strip():
        print(p.stdout.rstrip(), flush=True)
    return p.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--source", required=True)
    ap.add_argument("--work", required=True)
    args = ap.parse_args()
    work = os.path.abspath(args.work)
    shutil.rmtree(work, ignore_errors=True)
    prefix = os.path.join(work, "prefix")
    run(["cmake", "--install", args.build, "--prefix", prefix])

    # 1. The core needs no Abseil.
    libdir = os.path.join(prefix, "lib")
    symbols = run(["nm", "-C", "--undefined-only", os.path.join(libdir, "libbroom.a")])
    if "absl::" in symbols:
        sys.exit("install test: libbroom.a references Abseil:\n" +
                 "\n".join(l for l in symbols.splitlines() if "absl::" in l))
    cmake_dir = os.path.join(libdir, "cmake", "broom")
    for name in os.listdir(cmake_dir):
        text = open(os.path.join(cmake_dir, name)).read()
        if name.startswith(("broomConfig", "broom-")) and "absl" in text:
            sys.exit("install test: %s mentions Abseil" % name)

    # 2. The docs' programs, as files.
    docs = [os.path.join(args.source, d) for d in ("README.md", "docs/quickstart.md",
                                                   "docs/lifecycle.md")]
    project = os.path.join(work, "consumer")
    run([sys.executable, os.path.join(HERE, "doc_blocks.py"), "extract", project] + docs)
    # Test-only additions: the README's program, and the C program linked to the preload.
    with open(os.path.join(project, "CMakeLists.txt"), "a") as f:
        f.write("\n# Added by tests/install/run_install_test.py\n"
                "add_executable(readme readme.cc)\n"
                "target_link_libraries(readme PRIVATE broom::broom)\n"
                "add_executable(hello_c_linked hello_c.c)\n"
                "target_link_libraries(hello_c_linked PRIVATE broom::c broom::preload)\n")

    # 3. CMake consumer.
    build = os.path.join(project, "build")
    configure = ["cmake", "-S", project, "-B", build, "-DCMAKE_PREFIX_PATH=" + prefix,
                 "-DCMAKE_BUILD_TYPE=Release", "-DCMAKE_DISABLE_FIND_PACKAGE_absl=ON"]
    if shutil.which("ccache"):
        configure += ["-DCMAKE_CXX_COMPILER_LAUNCHER=ccache", "-DCMAKE_C_COMPILER_LAUNCHER=ccache"]
    run(configure)
    run(["cmake", "--build", build, "-j2"], timeout=600)
    run([os.path.join(build, "hello")], timeout=60)
    run([os.path.join(build, "readme")], timeout=60)
    out = run([os.path.join(build, "job")], timeout=120)
    for mode in ("direct driver", "CAF, 2 threads", "CAF, 2 processes"):
        if not any(l.startswith(mode) and " ok " in l for l in out.splitlines()):
            sys.exit("install test: job did not report %r ok:\n%s" % (mode, out))
    run([os.path.join(build, "hello_c")], timeout=60, expect="in a region: no")
    preload = os.path.join(libdir, "libbroom_preload.so")
    env = dict(os.environ, LD_PRELOAD=preload)
    run([os.path.join(build, "hello_c")], timeout=60, env=env, expect="in a region: yes")
    run([os.path.join(build, "hello_c_linked")], timeout=60, expect="in a region: yes")

    # 4. pkg-config consumer, with the quickstart's commands as written.
    pc_dir = os.path.join(work, "pkg-config")
    os.makedirs(pc_dir)
    for name in ("hello.cc", "job.cc", "hello_c.c", "build-with-pkg-config.sh"):
        shutil.copy(os.path.join(project, name), pc_dir)
    env = dict(os.environ, PREFIX=prefix)
    env.pop("PKG_CONFIG_PATH", None)
    pc_env = dict(env, PKG_CONFIG_PATH=os.path.join(libdir, "pkgconfig"))
    cflags = run(["pkg-config", "--cflags", "broom-c"], env=pc_env)
    if "-std=" in cflags or "c++" in cflags:
        sys.exit("install test: broom-c's Cflags carry a C++ flag: " + cflags)
    run(["cc", "-std=c99", "-pedantic-errors", "-Werror", "-c", "-o", os.devnull,
         os.path.join(pc_dir, "hello_c.c")] + cflags.split(), env=pc_env)
    out = run(["sh", "-e", "build-with-pkg-config.sh"], timeout=600, env=env, cwd=pc_dir)
    if "in a region: yes" not in out or "CAF, 2 processes" not in out:
        sys.exit("install test: build-with-pkg-config.sh did not run everything:\n" + out)
    print("install test: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
