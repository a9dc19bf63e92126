#!/usr/bin/env python3
"""Checks every #include in alloc/ and include/broom/ against the layers in alloc/README.md.

Usage: check_layers.py [REPO_ROOT]   (ctest runs it as `layering_test`)

The layer table in alloc/README.md (the section "## Layers") is the rule: each row names a layer,
the code it owns (folders under alloc/, headers or folders of headers under include/, or
"every other header in `broom/`") and what it may include besides itself (other layers by name, single headers).
Includes of "alloc/..." and "broom/..." (quoted or angled) are checked; others (the C and C++
libraries, Abseil, jemalloc, ASan) are not. Exits 1 and prints each violation as
`path:line: message`, or prints a one-line summary and exits 0.
"""
import pathlib
import re
import sys

TICKS = re.compile(r"`([^`]+)`")
INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]')


class Layer:
    def __init__(self, level, name):
        self.level, self.name = level, name
        self.folders, self.headers, self.catch_all = [], set(), False
        self.may_layers, self.may_headers = set(), set()


def parse_layers(readme):
    text = readme.read_text()
    section = text.split("## Layers", 1)
    if len(section) < 2:
        sys.exit(f"{readme}: no '## Layers' section")
    layers = []
    for line in section[1].splitlines():
        if line.startswith("## "):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        m = re.fullmatch(r"(\d+) (\w+)", cells[0]) if len(cells) >= 4 else None
        if not m:
            continue
        layer = Layer(int(m.group(1)), m.group(2))
        for item in TICKS.findall(cells[1]):
            if item.endswith("/") and not item.startswith("broom/"):
                layer.folders.append(item)
            elif item == "broom/":
                layer.catch_all = "every other header" in cells[1]
            else:
                layer.headers.add(item)
        for item in TICKS.findall(cells[-1]):  # headers, layer names, and prose (type names)
            if item.endswith(".h"):
                layer.may_headers.add(item)
            elif re.fullmatch(r"\w+", item):
                layer.may_layers.add(item)
        layers.append(layer)
    if not layers:
        sys.exit(f"{readme}: the Layers table has no rows")
    return layers


def owner(layers, path):
    """The layer owning repo-relative `path` (alloc/... or include/...), or None."""
    if path.startswith("alloc/"):
        rel = path[len("alloc/"):]
        for layer in layers:
            if any(rel.startswith(f) for f in layer.folders):
                return layer
        return None
    if path.startswith("include/"):
        rel = path[len("include/"):]
        for layer in layers:  # a header named exactly, or a folder of headers ("broom/caf/")
            if rel in layer.headers or any(h.endswith("/") and rel.startswith(h)
                                           for h in layer.headers):
                return layer
        for layer in layers:
            if layer.catch_all and rel.startswith("broom/"):
                return layer
    return None


def main():
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    layers = parse_layers(root / "alloc" / "README.md")
    by_name = {layer.name: layer for layer in layers}
    errors = []
    for layer in layers:
        layer.may_layers &= set(by_name)  # other words are prose (type names)
        for name in layer.may_layers:
            if by_name[name].level >= layer.level:
                errors.append(f"alloc/README.md: layer {layer.name} lists {name}, not below it")
    files = sorted(p for d in ("alloc", "include/broom") for p in (root / d).rglob("*")
                   if p.suffix in (".h", ".cc"))
    checked = 0
    for path in files:
        rel = path.relative_to(root).as_posix()
        mine = owner(layers, rel)
        if mine is None:
            errors.append(f"{rel}: in no layer of alloc/README.md")
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            m = INCLUDE.match(line)
            if not m:
                continue
            target = m.group(1)
            if target.startswith("alloc/"):
                theirs = owner(layers, target)
            elif target.startswith("broom/"):
                theirs = owner(layers, "include/" + target)
            else:
                continue
            checked += 1
            if theirs is None:
                errors.append(f"{rel}:{number}: includes {target}, which is in no layer")
            elif theirs is not mine and theirs.name not in mine.may_layers and \
                    target not in mine.may_headers:
                errors.append(f"{rel}:{number}: layer {mine.name} includes {target} "
                              f"(layer {theirs.name}), which alloc/README.md does not allow")
    for e in errors:
        print(e)
    if errors:
        return 1
    print(f"layers ok: {checked} includes in {len(files)} files follow alloc/README.md "
          f"({', '.join(f'{l.level} {l.name}' for l in layers)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
