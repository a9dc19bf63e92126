#!/usr/bin/env python3
"""The code blocks of Broom's docs, so that tests can compile and run them.

Every fenced block in a checked document says what it is on its first line:

  // file: NAME      (or  # file: NAME,  /* file: NAME)   the block is the whole file NAME
  // from: NAME      (or  # from: NAME)                   the block's other lines appear, in
                                                          order and contiguous, in file NAME
  # run: ...         a shell block a test runs (docs_commands_test: broom_job command lines)

`file:` blocks are written out by `extract`; `from:` blocks are checked against the files of
the same documents. In cpp, c and cmake blocks the annotation is required; a sh block without
one is prose (commands for a reader, such as installing packages).

Usage:
  doc_blocks.py check DOC...                 every block annotated, every fragment found
  doc_blocks.py extract OUT_DIR DOC...       write the file: blocks into OUT_DIR (after check)
  doc_blocks.py commands DOC...              print the lines of the run: blocks
Exit status 1 with a message naming the document and line on any problem.
"""

import os
import re
import sys

ANNOTATION = re.compile(r"^\s*(?://|#|/\*)\s*(file|from|run):\s*(\S+)?")
CODE_LANGS = {"cpp", "c++", "c", "cmake"}


class Block:
    def __init__(self, doc, line, lang, lines):
        self.doc, self.line, self.lang, self.lines = doc, line, lang, lines
        m = ANNOTATION.match(lines[0]) if lines else None
        self.kind = m.group(1) if m else None
        self.name = m.group(2) if m else None

    def where(self):
        return "%s:%d" % (self.doc, self.line)

    def body(self):
        """The text a file: block writes (the annotation line is part of the file)."""
        return "\n".join(self.lines) + "\n"


def blocks(doc):
    out, lang, start, lines = [], None, 0, []
    with open(doc, encoding="utf-8") as f:
        for n, line in enumerate(f.read().splitlines(), 1):
            fence = re.match(r"^```(\S*)\s*$", line)
            if lang is None and fence:
                lang, start, lines = fence.group(1).lower(), n, []
            elif lang is not None and line.strip() == "```":
                out.append(Block(doc, start, lang, lines))
                lang = None
            elif lang is not None:
                lines.append(line)
    if lang is not None:
        sys.exit("%s:%d: unterminated code block" % (doc, start))
    return out


def check(docs):
    all_blocks = [b for d in docs for b in blocks(d)]
    files, errors = {}, []
    for b in all_blocks:
        if b.kind == "file":
            if b.name in files:
                errors.append("%s: file %s already defined at %s" % (b.where(), b.name,
                                                                     files[b.name].where()))
            files[b.name] = b
        elif b.kind is None and b.lang in CODE_LANGS:
            errors.append("%s: %s block without '// file: NAME' or '// from: NAME' on its "
                          "first line" % (b.where(), b.lang))
    for b in all_blocks:
        if b.kind != "from":
            continue
        target = files.get(b.name)
        if target is None:
            errors.append("%s: fragment of unknown file %s" % (b.where(), b.name))
            continue
        want = [l.rstrip() for l in b.lines[1:]]
        have = [l.rstrip() for l in target.lines]
        if not any(have[i:i + len(want)] == want for i in range(len(have) - len(want) + 1)):
            errors.append("%s: fragment is not in %s (%s) as written" % (b.where(), b.name,
                                                                         target.where()))
    if errors:
        sys.exit("\n".join(errors))
    return all_blocks, files


def main(argv):
    if len(argv) < 3 or argv[1] not in ("check", "extract", "commands"):
        sys.exit(__doc__)
    if argv[1] == "check":
        all_blocks, files = check(argv[2:])
        print("doc_blocks: %d blocks, %d files, %d fragments: ok" % (
            len(all_blocks), len(files), sum(b.kind == "from" for b in all_blocks)))
    elif argv[1] == "extract":
        out_dir = argv[2]
        _, files = check(argv[3:])
        os.makedirs(out_dir, exist_ok=True)
        for name, b in files.items():
            path = os.path.join(out_dir, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(b.body())
            print(path)
    else:
        all_blocks, _ = check(argv[2:])
        for b in all_blocks:
            if b.kind != "run":
                continue
            command = ""
            for line in b.lines[1:]:
                if not command and (not line.strip() or line.lstrip().startswith("#")):
                    continue
                if line.endswith("\\"):
                    command += line[:-1].rstrip() + " "
                    continue
                print((command + line.strip()).strip())
                command = ""
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
