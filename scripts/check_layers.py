#!/usr/bin/env python3
"""Checks the include rules between the parts of ductile (docs/DESIGN.md, "Layout and layering").

Every `#include "..."` in src/, tools/ and include/ is classified by the part it comes from and
the part it names; an include that the table below does not allow fails the check, naming the
file, the line and the rule. The public header is open to every part. Run by `make test`.

KNOWN lists includes that break a rule today and are being removed (a ratchet): an entry that
no longer occurs must be deleted, so the list can only shrink.
"""
import os
import re
import sys

# part -> the parts it may include (besides itself and the public API).
RULES = {
    "core": set(),
    "graph": {"core"},
    "ops": {"graph", "core"},
    "onnx": {"graph", "ops", "format", "core"},   # format: to recognise an engine file given as a model
    "format": {"core"},
    "backend": {"ops", "core"},                 # the table: src/backend/*.{c,h}
    "backend/cpu": {"backend", "ops", "core"},
    "backend/cuda": {"backend", "ops", "core"},
    "runtime": {"format", "backend", "ops", "graph", "core"},
    "builder": {"runtime", "format", "backend", "ops", "graph", "core"},
    "tools": set(),
}

# Value layers (run by the shape pass and constant folding) still call the CPU kernels by name
# instead of through the backend table (issue 6, point 2).
KNOWN = {
    ("builder", "backend/cpu"),
}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def part_of_source(path):
    """The part a file of the repository belongs to, or None when it is not checked."""
    p = path.replace(os.sep, "/")
    if p.startswith("tools/"):
        return "tools"
    if not p.startswith("src/"):
        return None
    rest = p[len("src/"):].split("/")
    if rest[0] == "backend":
        return "backend" if len(rest) == 2 else "backend/" + rest[1]
    return rest[0]


def part_of_include(name, including_dir):
    """The part an include names ("api" for the public header, "local" for a sibling file)."""
    if name == "ductile.h":
        return "api"
    if "/" not in name:
        return "local"
    first = name.split("/")[0]
    if first == "backend":
        rest = name.split("/")
        return "backend" if len(rest) == 2 else "backend/" + rest[1]
    return first


def main(root):
    errors, seen_known = [], set()
    for top in ("src", "tools"):
        for dirpath, _, files in os.walk(os.path.join(root, top)):
            for f in sorted(files):
                if not f.endswith((".c", ".h", ".cu", ".cuh")):
                    continue
                path = os.path.relpath(os.path.join(dirpath, f), root)
                part = part_of_source(path)
                with open(os.path.join(root, path), encoding="utf-8") as fh:
                    for lineno, line in enumerate(fh, 1):
                        m = INCLUDE.match(line)
                        if not m:
                            continue
                        target = part_of_include(m.group(1), dirpath)
                        if target in ("api", "local") or target == part:
                            continue
                        if target in RULES.get(part, set()):
                            continue
                        if (part, target) in KNOWN:
                            seen_known.add((part, target))
                            continue
                        allowed = ", ".join(sorted(RULES.get(part, set()))) or "only the public API"
                        errors.append(f"{path}:{lineno}: {part} includes \"{m.group(1)}\" ({target}); "
                                      f"{part} may include {allowed}")
    for k in sorted(KNOWN - seen_known):
        errors.append(f"check_layers.py: known exception {k[0]} -> {k[1]} no longer occurs: "
                      f"delete it from KNOWN")
    for e in errors:
        print(e, file=sys.stderr)
    if not errors:
        print("include rules: ok")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else
                  os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
