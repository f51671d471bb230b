#!/usr/bin/env python3
"""The README's table of supported ops, generated from the code, with ONNX node-test pass counts.

    python3 scripts/op_table.py [--write | --check] [--conformance build/conformance.json]
    python3 scripts/op_table.py --map    (needs onnx; rewrites tests/conformance/node_test_ops.txt)

The ops are read from the sources, not from a list kept by hand:
- an op is supported when src/ops has its definition (a `dt_opdef dt_ops_<family>[]` table:
  attribute checks and shape inference) and src/backend/cpu a kernel for it (a
  `dt_cpu_kernel dt_cpu_<family>[]` table); the importer handles Constant itself
  (src/onnx/node.c) and admits three ops of the training domain. Private layers of domain
  "ductile" that builder passes make (FusedConv) are not ONNX ops and are left out.
- CUDA: the op is in a kernel table of src/backend/cuda/layers.c and dt_cuda_supports does not
  refuse it outright; a layer still runs on the host when its dtypes or attributes are ones
  dt_cuda_supports refuses (the runtime's CPU fallback).

Pass counts: ONNX's node suite (onnx.backend.test, the pinned onnx wheel), per op: the tests of
that op (its function-expanded variants included), passed with fixed dims and with every input
dim symbolic. Which op a test exercises is in tests/conformance/node_test_ops.txt (--map writes
it from ONNX's test cases; it changes only with the onnx version). Which tests pass: from
--conformance FILE (a `make conformance` run's build/conformance.json) when given, else from
tests/conformance/expected_failures.txt, the ratchet that run rewrites (`make
conformance-expectations`) and `make test` holds the library to; both agree in a healthy tree.

--write puts the table between the markers in README.md; --check exits 1 when README.md's table
is not what the code and the counts give (tests/python/test_op_table.py runs it).
"""
import argparse
import collections
import json
import os
import re
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
README = os.path.join(ROOT, "README.md")
OPS_MAP = os.path.join(ROOT, "tests", "conformance", "node_test_ops.txt")
EXPECTATIONS = os.path.join(ROOT, "tests", "conformance", "expected_failures.txt")
BEGIN, END = "<!-- ops:begin -->", "<!-- ops:end -->"
PRIVATE_FAMILIES = {"fused"}  # domain "ductile": layers builder passes make, not ONNX ops
TRAINING_DOMAIN = "ai.onnx.preview.training"


def _read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def _strip_comments(text):
    return re.sub(r"/\*.*?\*/|//[^\n]*", "", text, flags=re.S)


def _table_names(body):
    """The op names that open the entries of a C array initializer: {"Relu", ...} or
    DT_EW("Relu")."""
    return re.findall(r'[{(]\s*"([A-Za-z0-9_]+)"', body)


def _tables(directory, element_type, prefix):
    """{family: [op, ...]} from `const <element_type> <prefix><family>[] = { ... };` in the .c
    files of a directory."""
    out = {}
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".c"):
            continue
        text = _strip_comments(_read(os.path.join(directory, name)))
        pattern = rf"const\s+{element_type}\s+{prefix}(\w+)\s*\[\]\s*=\s*\{{(.*?)\}};"
        for family, body in re.findall(pattern, text, flags=re.S):
            out.setdefault(family, []).extend(_table_names(body))
    return out


# Families the runtime runs on the host itself, with no backend kernel: control flow
# (runtime/ctrl.c) and sequences/optionals (runtime/seqval.c).
RUNTIME_FAMILIES = {"ctrl", "sequence"}


def code_ops(root=ROOT):
    """{op: {"op", "domain", "family", "cpu", "cuda"}} for every op ductile supports, keyed
    as ONNX's tests name ops: "Relu", "ai.onnx.preview.training.Adam"."""
    src = os.path.join(root, "src")
    defs = _tables(os.path.join(src, "ops"), "dt_opdef", "dt_ops_")
    cpu = {op for ops in _tables(os.path.join(src, "backend", "cpu"), "dt_cpu_kernel",
                                 "dt_cpu_").values() for op in ops}
    node_c = _strip_comments(_read(os.path.join(src, "onnx", "node.c")))
    # Ops of other domains: src/onnx/domains.c's table of {"domain", "Op"}.
    domains_c = _strip_comments(_read(os.path.join(src, "onnx", "domains.c")))
    domain_of = {op: dom for dom, op in re.findall(r'\{\s*"([\w.]+)",\s*"(\w+)"\s*\}', domains_c)}
    cuda = cuda_ops(root)
    ops = {}
    for family, names in defs.items():
        if family in PRIVATE_FAMILIES:
            continue
        for op in names:
            domain = domain_of.get(op, "")
            ops[f"{domain}.{op}" if domain else op] = {
                "op": op, "domain": domain, "family": family,
                "cpu": op in cpu or family in RUNTIME_FAMILIES, "cuda": op in cuda}
    # Ops the importer turns into something else itself (Constant: an initializer).
    for op in re.findall(r'strcmp\(n\.op_type,\s*"(\w+)"\)\s*==\s*0\)\s*return', node_c):
        ops.setdefault(op, {"op": op, "domain": "", "family": "importer", "cpu": True,
                            "cuda": False})
    return {key: v for key, v in ops.items() if v["cpu"]}


def cuda_ops(root=ROOT):
    """Ops with a CUDA kernel: named in a table of src/backend/cuda/layers*.c (the compiled
    kernels' table and the op-code tables of the families; every CUDA kernel is compiled, the
    backend has no adapter), less those dt_cuda_supports refuses outright
    (`if (!strcmp(op, "X")) return false;`)."""
    directory = os.path.join(root, "src", "backend", "cuda")
    found, refused = set(), set()
    for name in sorted(os.listdir(directory)):
        if not (name.startswith("layers") and name.endswith(".c")):
            continue
        text = _strip_comments(_read(os.path.join(directory, name)))
        for body in re.findall(r"static\s+const\s+(?:struct\s*\{[^}]*\}|\w+)\s*\w+\s*\[\]\s*=\s*\{(.*?)\};",
                               text, flags=re.S):
            found.update(_table_names(body))
        supports = re.search(r"bool\s+dt_cuda_supports\s*\([^)]*\)\s*\{(.*)", text, flags=re.S)
        if supports:
            refused.update(re.findall(r'if\s*\(\s*!strcmp\(op,\s*"(\w+)"\)\s*\)\s*return\s+false;',
                                      supports.group(1)))
    return found - refused


def read_ops_map(path=OPS_MAP):
    """({node test name (with _cpu): op}, the onnx version the map was made from)."""
    out, version = {}, "?"
    for line in _read(path).splitlines():
        if line.startswith("#"):
            m = re.search(r"\(onnx ([^)]+)\)", line)
            version = m.group(1) if m else version
        elif line:
            test, op = line.split()
            out[test] = op
    return out, version


def results_from_expectations(tests, path=None):
    """{variant: {test: passed}} for the node tests: failing exactly when listed."""
    listed = {}
    for line in _read(path or EXPECTATIONS).splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, variants, _ = line.split(" ", 2)
        suite, test = name.split("/", 1)
        if suite == "node":
            listed[test] = variants
    return {v: {t: listed.get(t) not in ("both", v) for t in tests}
            for v in ("fixed", "symbolic")}


def results_from_conformance(tests, path):
    data = json.loads(_read(path))
    out = {}
    for v in ("fixed", "symbolic"):
        got = data[v]["tests"]
        missing = [t for t in tests if t not in got]
        if missing:  # a run of part of the suite (--filter, --shard)
            print(f"op_table: {path} has no {v} result for {len(missing)} node tests (first: "
                  f"{missing[0]}); counting from {os.path.relpath(EXPECTATIONS, ROOT)} instead",
                  file=sys.stderr)
            return None
        out[v] = {t: got[t] == "pass" for t in tests}
    return out


def counts(ops_map, results):
    """{op: [tests, passed fixed, passed symbolic]} over the node tests."""
    out = collections.defaultdict(lambda: [0, 0, 0])
    for test, op in ops_map.items():
        c = out[op]
        c[0] += 1
        c[1] += results["fixed"][test]
        c[2] += results["symbolic"][test]
    return dict(out)


def _cell(n, total):
    return f"{n}/{total}" if total else "-"


def render(ops, per_op, onnx_version):
    """The markdown between the markers (the same whichever source the counts came from)."""
    tested = {op for op in per_op if op in ops}
    total = sum(c[0] for c in per_op.values())
    fixed = sum(c[1] for c in per_op.values())
    symbolic = sum(c[2] for c in per_op.values())
    missing = sorted(op for op in per_op if op not in ops)
    untested = sorted(ops[k]["op"] for k in ops if k not in tested)
    lines = [
        BEGIN,
        "<!-- generated by scripts/op_table.py (make op-table) from src/ops, src/backend and "
        "the node-test results; tests/python/test_op_table.py fails when it is out of date -->",
        "## Supported ops",
        "",
        f"{len(ops)} ONNX ops run on the CPU; {sum(v['cuda'] for v in ops.values())} of them "
        "have CUDA kernels (a layer whose dtypes or attributes the CUDA backend does not take "
        f"runs on the host). Node tests: ONNX's node suite (onnx {onnx_version}) per op, its "
        "function-expanded variants included, passed with fixed dims / with every input dim "
        f"symbolic; all ops: {fixed}/{total} fixed, {symbolic}/{total} symbolic. "
        f"Without a node test: {', '.join(untested) or 'none'}.",
        "",
        "| op | family | CUDA | node tests (fixed) | node tests (symbolic) |",
        "|---|---|:---:|---:|---:|",
    ]
    for key in sorted(ops, key=lambda k: (ops[k]["op"].lower(), k)):
        v = ops[key]
        name = f"{v['op']} ({v['domain']})" if v["domain"] else v["op"]
        c = per_op.get(key, [0, 0, 0])
        lines.append(f"| {name} | {v['family']} | {'yes' if v['cuda'] else ''} | "
                     f"{_cell(c[1], c[0])} | {_cell(c[2], c[0])} |")
    lines += ["", "Ops with node tests that ductile does not run: "
              + (", ".join(f"{op} ({per_op[op][0]})" for op in missing) or "none") + ".",
              END]
    return "\n".join(lines) + "\n"


def splice(readme_text, table):
    """README text with the region between the markers replaced by `table` (markers
    included); ValueError when the markers are not there once each, in order."""
    b, e = readme_text.find(BEGIN), readme_text.find(END)
    if b < 0 or e < b or readme_text.count(BEGIN) != 1 or readme_text.count(END) != 1:
        raise ValueError(f"README.md needs one '{BEGIN}' line and one '{END}' line after it")
    tail = readme_text[e + len(END):]
    return readme_text[:b] + table.rstrip("\n") + tail


def table(conformance=None, root=ROOT):
    ops = code_ops(root)
    ops_map, onnx_version = read_ops_map()
    results = results_from_conformance(ops_map, conformance) if conformance else None
    if results is None:
        results = results_from_expectations(ops_map)
    return render(ops, counts(ops_map, results), onnx_version)


def write_ops_map(path=OPS_MAP):
    """Which op each of ONNX's node tests exercises: the op of a one-node model; for a
    function-expanded test (..._expanded, ..._expanded_verN), its unexpanded test's op; else
    the model's op whose name the test's name starts with (CamelCase read as snake_case),
    else its first node's."""
    import warnings
    warnings.simplefilter("ignore")
    import numpy as np
    np.seterr(all="ignore")
    import onnx
    from onnx.backend.test.loader import load_model_tests

    def op_name(node):
        domain = node.domain if node.domain not in ("", "ai.onnx") else ""
        return f"{domain}.{node.op_type}" if domain else node.op_type

    cases = {c.name: c for c in load_model_tests(kind="node")}
    single = {name: op_name(c.model.graph.node[0]) for name, c in cases.items()
              if len(c.model.graph.node) == 1}
    out = {}
    for name, c in sorted(cases.items()):
        if name in single:
            out[name] = single[name]
            continue
        base = re.sub(r"_expanded(_ver\d+)?$", "", name)
        if base != name and base in single:
            out[name] = single[base]
            continue
        flat = name[len("test_"):].replace("_", "").lower()
        ops = [op_name(n) for n in c.model.graph.node]
        matching = [op for op in ops if flat.startswith(op.split(".")[-1].lower())]
        out[name] = max(matching, key=len) if matching else ops[0]
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"# ONNX node test -> the op it exercises (onnx {onnx.__version__}); written by "
                "scripts/op_table.py --map\n")
        for name, op in out.items():
            f.write(f"{name}_cpu {op}\n")
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="rewrite README.md's table")
    mode.add_argument("--check", action="store_true", help="exit 1 when README.md's table is stale")
    mode.add_argument("--map", action="store_true", help="rewrite node_test_ops.txt (needs onnx)")
    ap.add_argument("--conformance", default=None, metavar="JSON",
                    help="pass counts from a conformance run (build/conformance.json)")
    args = ap.parse_args(argv)
    if args.map:
        n = len(write_ops_map())
        print(f"op_table: wrote {os.path.relpath(OPS_MAP, ROOT)} ({n} node tests)")
        return 0
    text = table(args.conformance)
    if not (args.write or args.check):
        sys.stdout.write(text)
        return 0
    current = _read(README)
    wanted = splice(current, text)
    if args.check:
        if wanted != current:
            print("op_table: README.md's op table is out of date with the code or the node-test "
                  "results; run `make op-table`", file=sys.stderr)
            return 1
        return 0
    if wanted != current:
        with open(README, "w", encoding="utf-8") as f:
            f.write(wanted)
    print("op_table: README.md's op table is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
