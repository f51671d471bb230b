"""Inner loops of a build's FMA kernels that touch vector registers on the stack: the register
allocator's spills, which cost the bfloat16 GEMM tile 30% (session 32).

    python bench/asm_spills.py [LIB] [--match REGEX] [--min-fma N]
      LIB   default build/libductile.so

Disassembles LIB (objdump), finds each function's innermost loops (a backward jump whose range
holds no other loop), and prints those with at least --min-fma FMA or dot-product
instructions and any vector load or store addressed off %rsp, largest first. A spill in a
k loop shows as a few stack stores and reloads per iteration beside the FMAs; a loop that
calls out (an epilogue helper) or keeps a table of weights on the stack by design (conv_dw.c's
5x5 rows) shows too: read the loop before changing it. The usual cure was to put the body in a
function of its own (noinline), so the allocator sees one body and not several inlined side by
side (gemm_bf16.c, gemm_kernel.c); 256-bit bodies also need the avx512vl target, without which
only ymm0-15 exist."""
import argparse
import os
import re
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
FMA = re.compile(r"\s(vfn?m(add|sub)\d+[ps][sd]|vdpbf16ps|vpdpbusds?|vpdpwssds?)\s")
STACK = re.compile(r"0x[0-9a-f]+\(%rsp\),%[xyz]mm|%[xyz]mm\d+,(-?0x[0-9a-f]+)?\(%rsp\)")
JUMP = re.compile(r"\sj\w+\s+([0-9a-f]+) <")
ADDR = re.compile(r"\s*([0-9a-f]+):")


def loops(lib, match, min_fma):
    text = subprocess.run(["objdump", "-d", "--no-show-raw-insn", lib], capture_output=True, text=True,
                          check=True).stdout
    for m in re.finditer(r"<([^>]+)>:\n(.*?)\n\n", text, re.S):
        fn, body = m.group(1), m.group(2).splitlines()
        if match and not re.search(match, fn):
            continue
        index = {}
        for i, line in enumerate(body):
            a = ADDR.match(line)
            if a:
                index[int(a.group(1), 16)] = i
        spans = []
        for i, line in enumerate(body):
            j = JUMP.search(line)
            if j and int(j.group(1), 16) in index and index[int(j.group(1), 16)] < i:
                spans.append((index[int(j.group(1), 16)], i))
        for s, e in spans:
            if any(s <= s2 and e2 <= e and (s2, e2) != (s, e) for s2, e2 in spans):
                continue
            lines = body[s:e + 1]
            fmas = sum(bool(FMA.search(x)) for x in lines)
            spills = sum(bool(STACK.search(x)) for x in lines)
            if fmas >= min_fma and spills:
                yield fn, lines[0].split(":")[0].strip(), fmas, spills, len(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("lib", nargs="?", default=os.path.join(HERE, "..", "build", "libductile.so"))
    ap.add_argument("--match", default="")
    ap.add_argument("--min-fma", type=int, default=8)
    a = ap.parse_args()
    rows = sorted(loops(a.lib, a.match, a.min_fma), key=lambda r: -r[3])
    print(f"{'function':48s} {'loop at':>10s} {'FMAs':>5s} {'stack':>5s} {'insns':>5s}")
    for fn, at, fmas, spills, n in rows:
        print(f"{fn[:48]:48s} {at:>10s} {fmas:5d} {spills:5d} {n:5d}")


if __name__ == "__main__":
    main()
