"""The rule that makes programmatic dependent launch safe (src/backend/cuda/launch.cuh): every
kernel of the CUDA backend waits for the grid before it (dt_grid_wait) before touching memory,
and every launch goes through dt_launch / dt_pdl_attr (a <<<>>> launch would not overlap, but
a kernel without the wait launched with PDL would read its inputs before they are written).
A source check: it runs without a GPU."""
import glob
import os
import re

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
SOURCES = sorted(glob.glob(os.path.join(ROOT, "src", "backend", "cuda", "*.cu")) +
                 glob.glob(os.path.join(ROOT, "src", "backend", "cuda", "*.cuh")))


def strip_comments(s):
    s = re.sub(r"/\*.*?\*/", " ", s, flags=re.S)
    return re.sub(r"//[^\n]*", " ", s)


def close_paren(s, i):
    depth = 0
    for j in range(i, len(s)):
        depth += {"(": 1, ")": -1}.get(s[j], 0)
        if depth == 0:
            return j
    raise AssertionError("unbalanced parentheses")


def kernels(s):
    """(name, first statement) of each __global__ function defined in s."""
    out = []
    for m in re.finditer(r"__global__\s+void\s+(__launch_bounds__\s*\([^)]*\)\s*)?(\w+)\s*\(", s):
        end = close_paren(s, m.end() - 1)
        brace, semi = s.find("{", end), s.find(";", end)
        if semi != -1 and semi < brace:
            continue  # a declaration
        out.append((m.group(2), s[brace + 1:].lstrip().split(";", 1)[0].strip()))
    return out


def test_sources_found():
    assert any(p.endswith("kernels.cu") for p in SOURCES), SOURCES


def test_every_kernel_waits_first():
    found = 0
    for path in SOURCES:
        for name, first in kernels(strip_comments(open(path).read())):
            found += 1
            assert first == "dt_grid_wait()", f"{os.path.basename(path)}: kernel {name} begins with {first!r}"
    assert found >= 30, found


def test_no_plain_launches():
    for path in SOURCES:
        s = strip_comments(open(path).read())
        assert "<<<" not in s, f"{os.path.basename(path)}: a <<<>>> launch (use dt_launch)"
        for m in re.finditer(r"cudaLaunchKernelEx\s*\(", s):
            body = s[max(0, m.start() - 1500):m.start()]
            if os.path.basename(path) == "launch.cuh":
                continue
            assert "dt_pdl_attr" in body, f"{os.path.basename(path)}: cudaLaunchKernelEx without dt_pdl_attr"


def test_rule_checker_catches_a_kernel_without_wait():
    bad = "template <typename T> __global__ void k(const T *x, T *y) { y[0] = x[0]; }"
    assert kernels(bad) == [("k", "y[0] = x[0]")]
    good = "__global__ void __launch_bounds__(256) k(int n)\n{\n    dt_grid_wait();\n    n++;\n}"
    assert kernels(good) == [("k", "dt_grid_wait()")]
