"""A/B of libductile builds on one engine file: the kernels' difference alone.

    python bench/ab_engine.py --libs base=/tmp/a.so,new=build/libductile.so --threads 1 \
        ENGINE INPUT=1x3x224x224[,INPUT2=...]

bench/ab_libs.py builds the engine in each worker, so the builder's timed tactic choices differ
from build to build and its A/B mixes them with the libraries' difference (session 37: one build
of EfficientNet-B0 b1 ran 6.86 ms against 5.35 for the same library, not reproduced). Here every
worker loads the same engine file (written once, e.g. by `ductile --saveEngine`), so both sides
run the same layers and tactics: for a kernel change that keeps the engine format. Each library
runs in its own process (DUCTILE_LIB), the two alternating round by round, order reversed every
other round; per round the median of --runs timed runs after three untimed ones, inputs standard
normal from a fixed seed; prints each library's median over the rounds and its rounds.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def worker(engine, shapes, threads, runs):
    """The median ms of `runs` runs of the engine file with this process's library."""
    import numpy as np
    import ductile
    ctx = ductile.load_engine(engine).create_execution_context()
    ctx.set_threads(threads)
    rng = np.random.default_rng(0)
    feeds = {name: rng.standard_normal(shape).astype(np.float32) for name, shape in shapes.items()}
    for _ in range(3):
        ctx.run(feeds)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        ctx.run(feeds)
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def parse_shapes(spec):
    """INPUT=1x3x224x224,MASK=1x16 -> {name: (dims)}."""
    out = {}
    for part in spec.split(","):
        name, dims = part.rsplit("=", 1)
        out[name] = tuple(int(d) for d in dims.split("x"))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--libs", required=True, help="name=path,... of libductile.so builds")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--runs", type=int, default=15, help="timed runs per round and library")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("engine")
    ap.add_argument("shapes", help="INPUT=DIMS per input, comma separated: input=1x3x224x224")
    a = ap.parse_args()
    shapes = parse_shapes(a.shapes)
    if a.worker:
        print(f"{worker(a.engine, shapes, a.threads, a.runs):.4f}")
        return 0
    libs = dict(item.split("=", 1) for item in a.libs.split(","))
    ms = {name: [] for name in libs}
    for r in range(a.rounds):
        for name in (list(libs) if r % 2 == 0 else list(libs)[::-1]):
            env = dict(os.environ, DUCTILE_LIB=os.path.abspath(libs[name]),
                       PYTHONPATH=os.path.join(REPO, "python") + os.pathsep + os.environ.get("PYTHONPATH", ""))
            p = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", "--threads", str(a.threads),
                                "--runs", str(a.runs), "--libs", a.libs, a.engine, a.shapes],
                               env=env, capture_output=True, text=True)
            if p.returncode != 0:
                sys.stderr.write(f"{name}: worker failed ({p.returncode}): {p.stderr.strip()[-2000:]}\n")
                return 1
            ms[name].append(float(p.stdout.split()[-1]))
    for name, v in ms.items():
        print(f"{name} {statistics.median(v):.3f} ms  rounds {' '.join(f'{x:.2f}' for x in v)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
