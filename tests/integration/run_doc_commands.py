#!/usr/bin/env python3
"""Runs the broom_job command lines of the docs' `# run:` blocks (tests/install/doc_blocks.py),
at small scale: `build/release/runtime_shims/examples/broom_job` becomes the binary under test
and `--epochs=2 --docs=2000 --lines=200 --timeout=60` is appended (later flags win), so every
flag, job, engine and policy a document shows is exercised as written.

  run_doc_commands.py BROOM_JOB DOC...
"""

import shlex
import subprocess
import sys
import os

PREFIX = "build/release/runtime_shims/examples/broom_job"
SMALL = ["--epochs=2", "--docs=2000", "--lines=200", "--timeout=60"]


def main(argv):
    binary, docs = argv[1], argv[2:]
    tool = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "install",
                        "doc_blocks.py")
    lines = subprocess.run([sys.executable, tool, "commands"] + docs, check=True,
                           capture_output=True, text=True).stdout.splitlines()
    if not lines:
        sys.exit("run_doc_commands: no command to run in " + " ".join(docs))
    for line in lines:
        words = shlex.split(line)
        if not words or words[0] != PREFIX:
            sys.exit("run_doc_commands: not a broom_job command line: " + line)
        cmd = [binary] + words[1:] + SMALL
        print("+ " + " ".join(cmd), flush=True)
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if p.returncode != 0:
            sys.exit("run_doc_commands: exit %d: %s\n%s%s" % (p.returncode, line, p.stdout,
                                                              p.stderr))
    print("run_doc_commands: %d command lines ran" % len(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
