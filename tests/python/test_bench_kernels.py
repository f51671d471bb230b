"""The kernel-level bench tools of session 32: bench/bench_kernels.c (each GEMM micro-kernel in
cache against the peak it measures) and bench/asm_spills.py (inner FMA loops that touch vectors
on the stack)."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from util import cpu_flags

REPO = Path(__file__).resolve().parents[2]
LIB_A = REPO / "build" / "libductile.a"




@pytest.mark.skipif(not LIB_A.exists(), reason="build/libductile.a not built (make)")
@pytest.mark.skipif("avx512f" not in cpu_flags(), reason="the kernels need AVX-512")
def test_bench_kernels_times_every_kernel_against_the_peak():
    # built by the Makefile, which links what the library needs (image codecs, the CUDA runtime)
    subprocess.run(["make", "-s", "-C", str(REPO), "build/bench_kernels"], check=True, capture_output=True)
    exe = REPO / "build" / "bench_kernels"
    out = subprocess.run([str(exe), "16", "48"], capture_output=True, text=True, check=True).stdout
    peak = re.search(r"peak: float32 (\d+) GFLOP/s, bfloat16 (\d+) GFLOP/s", out)
    assert peak and int(peak.group(1)) > 0, out
    rows = re.findall(r"K=(\d+)\s+(\S+)\s+nx=(\d)\s+(\d+) GFLOP/s\s+(\d+)% of peak", out)
    names = {r[1] for r in rows}
    expect = {"f32_epi", "f32_pf", "f32_pf_next", "f32_rows", "f32_rows_epi", "f32_x"}
    if "avx512_bf16" in cpu_flags():
        expect |= {"bf16", "bf16_next", "bf16_x"}
    assert expect <= names, out
    assert {r[0] for r in rows} == {"16", "48"}, out
    # the x kernels at every extra column count, 1-4, and the nx = 0 body
    assert {r[2] for r in rows if r[1] == "f32_x"} == {"0", "1", "2", "3", "4"}, out
    assert all(int(r[3]) > 0 and 0 < int(r[4]) < 300 for r in rows), out


def asm_loop(name, first_load):
    """A function whose loop holds 8 FMAs beside first_load (and, when it reloads an
    accumulator from the stack, the store that spills it back)."""
    spill = "%rsp" in first_load
    fmas = [f"    vfmadd231ps %zmm1, %zmm2, %zmm{r}" for r in range(3, 11)]
    if spill:
        fmas.insert(3, "    vmovaps %zmm5, 0x40(%rsp)")
    return "\n".join([f"    .globl {name}", f"    .type {name}, @function", f"{name}:", f".L{name}:",
                      f"    {first_load}"] + fmas + ["    dec %rdi", f"    jne .L{name}", "    ret", ""])


SPILLED = "    .text\n" + asm_loop("spilled", "vmovaps 0x40(%rsp), %zmm5") + asm_loop("clean", "vmovaps 0x40(%rsi), %zmm5")


def test_asm_spills_lists_a_loop_that_reloads_a_vector_from_the_stack_and_not_a_clean_one(tmp_path):
    src = tmp_path / "k.s"
    src.write_text(SPILLED)
    obj = tmp_path / "k.o"
    subprocess.run([os.environ.get("CC", "cc"), "-c", str(src), "-o", str(obj)], check=True)
    out = subprocess.run([sys.executable, str(REPO / "bench" / "asm_spills.py"), str(obj)], capture_output=True,
                         text=True, check=True).stdout
    lines = out.splitlines()
    assert lines[0].split() == ["function", "loop", "at", "FMAs", "stack", "insns"], out
    rows = [line.split() for line in lines[1:]]
    assert [(r[0], r[2], r[3]) for r in rows] == [("spilled", "8", "2")], out
