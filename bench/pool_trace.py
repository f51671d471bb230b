"""Two-thread scaling from thread CPU times, for a machine whose second core is often busy.

    make pool-trace      # build/trace/libductile.so: the pool records each loop (core/pool_trace.h)
    python bench/pool_trace.py --libs base=/tmp/a/libductile.so,new=build/trace/libductile.so \\
        [--flags bf16] mobilenet_v2.onnx 2x3x224x224
    python bench/pool_trace.py --libs off=build/trace/libductile.so,df2=build/trace/libductile.so@DUCTILE_DEPTH_FIRST_GROUP=2 \\
        efficientnet_b0.onnx 8x3x224x224     # an environment switch of one build

On a shared 2-core box a 2-thread wall time mostly measures who else runs on the second core.
Thread CPU time does not: per loop the longest part's CPU time is what the loop takes on two
free cores (fork and join aside), and the owner's CPU time outside loops is the serial part. So
per run: ideal = serial + sum of the loops' longest parts, work = serial + all parts; at 1 thread
the owner's CPU time is the whole. Each build and thread count runs in its own process, the
rounds interleaved; prints, per build, the median over rounds (min in brackets) of 1-thread CPU
time, 2-thread ideal and work, the ideal speedup, and the wall medians of the quiet rounds (other
processes kept at most --quiet cores busy: bench.Others) and in those rounds how much longer
the loops took in wall time than their longest parts in CPU time (forks, joins, a worker
late); then per loop body (addr2line) of the
last build, 2-thread critical ms against 1-thread ms. Blind spot: what two threads cost each
other only when they truly run at once (shared L3 and memory bandwidth) shows in CPU time only
in rounds where they did. (Quiet: other processes kept at most --quiet cores busy,
bench.Others.)
"""
import argparse
import collections
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import bench  # noqa: E402

CHILD = r'''
import ctypes, json, os, statistics, sys, time
import numpy as np
import ductile
lib, model, shapes, threads, runs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
flags = [f for f in sys.argv[6].split(",") if f] if len(sys.argv) > 6 else []
b = ductile.Builder(); net = b.parse_onnx(model)
p = b.create_optimization_profile()
for n, s in shapes.items(): p.set_shape(n, tuple(s), tuple(s), tuple(s))
c = b.create_builder_config(); c.add_optimization_profile(p)
for f in flags: c.set_flag(getattr(ductile.BuilderFlag, f.upper()))
ctx = b.build_engine(net, c).create_execution_context(); ctx.set_threads(threads)
rng = np.random.default_rng(0)
x = {n: rng.standard_normal(s).astype(np.float32) for n, s in shapes.items()}
L = ctypes.CDLL(lib)
for _ in range(3): ctx.run(x)
print("ready", flush=True)
for line in sys.stdin:
    ctx.run(x)
    L.dt_pool_trace_reset()
    cpu = 0.0; wall = []
    for _ in range(runs):
        c0 = time.thread_time(); w0 = time.perf_counter(); ctx.run(x)
        wall.append(time.perf_counter() - w0); cpu += time.thread_time() - c0
    L.dt_pool_trace_dump(line.strip().encode())
    print(json.dumps({"cpu_ms": cpu * 1e3 / runs, "wall_ms": statistics.median(wall) * 1e3}), flush=True)
'''


def read_rows(path, runs):
    rows = {}
    for line in open(path):
        a, loops, inl, mx, work, own, wall = line.split()
        rows[a] = {"loops": int(loops) / runs, "max": int(mx) / 1e6 / runs, "work": int(work) / 1e6 / runs,
                   "own": int(own) / 1e6 / runs, "wall": int(wall) / 1e6 / runs}
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--libs", required=True,
                    help="name=path[@VAR=VALUE...],... of libductile.so builds made with make pool-trace, each with "
                         "environment variables of its own (base=a.so,df2=a.so@DUCTILE_DEPTH_FIRST_GROUP=2)")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--quiet", type=float, default=0.1,
                    help="wall times count from rounds in which other processes used at most this many cores")
    ap.add_argument("--flags", default="", help="builder flags, comma separated (bf16, fp16)")
    ap.add_argument("model")
    ap.add_argument("shape", help="per input, comma separated, in the order of bench.SUITE's profile")
    a = ap.parse_args()
    path = a.model if os.path.exists(a.model) else os.path.join(bench.MODELS, a.model)
    names = list(bench.SUITE[os.path.basename(path)][0])
    shapes = {n: [int(x) for x in s.split("x")] for n, s in zip(names, a.shape.split(","))}
    # name=lib.so[@VAR=VALUE@...]: the build, and environment variables of its processes alone
    libs, lib_env = {}, {}
    for item in a.libs.split(","):
        name, spec = item.split("=", 1)
        lib, *env = spec.split("@")
        libs[name] = lib
        lib_env[name] = dict(e.split("=", 1) for e in env)
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"), OMP_NUM_THREADS="1")
    procs = {}
    for name, lib in libs.items():
        for t in (1, 2):
            procs[name, t] = subprocess.Popen(
                [sys.executable, "-c", CHILD, os.path.abspath(lib), path, json.dumps(shapes), str(t), str(a.runs), a.flags],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                env=dict(env, DUCTILE_LIB=os.path.abspath(lib), **lib_env[name]))
    for p in procs.values():
        assert p.stdout.readline().strip() == "ready"
    res = collections.defaultdict(list)   # (name, t) -> [(info, rows, quiet)]
    tmp = tempfile.mkdtemp(prefix="pool_trace")
    order = list(procs)
    for r in range(a.rounds):
        for key in order if r % 2 == 0 else order[::-1]:
            f = os.path.join(tmp, "%s_%d_%d" % (key[0], key[1], r))
            with bench.Others(q.pid for q in procs.values()) as others:
                procs[key].stdin.write(f + "\n")
                procs[key].stdin.flush()
                info = json.loads(procs[key].stdout.readline())
            res[key].append((info, read_rows(f, a.runs), others.cores <= a.quiet))
    for p in procs.values():
        p.stdin.close()
        p.wait()
    print(a.model, a.shape, f"rounds {a.rounds} x {a.runs} runs")
    for name in libs:
        one = [i["cpu_ms"] for i, _, _ in res[name, 1]]
        ideal, work = [], []
        for info, rows, _ in res[name, 2]:
            inloops = sum(v["own"] for v in rows.values())
            serial = info["cpu_ms"] - inloops
            ideal.append(serial + sum(v["max"] for v in rows.values()))
            work.append(serial + sum(v["work"] for v in rows.values()))
        loops = sum(v["loops"] for v in res[name, 2][-1][1].values())
        qw = {t: [i["wall_ms"] for i, _, q in res[name, t] if q] for t in (1, 2)}
        # quiet 2-thread rounds: the loops' wall time against their longest parts' CPU time
        over = [sum(v["wall"] - v["max"] for v in rows.values()) for _, rows, q in res[name, 2] if q]
        wall = "  ".join(f"wall {t}t {statistics.median(qw[t]):.2f} ({len(qw[t])} quiet rounds)" if qw[t]
                         else f"wall {t}t: no quiet round" for t in (1, 2))
        print(f"{name:8s} 1t cpu {statistics.median(one):7.2f} [{min(one):7.2f}]  2t ideal {statistics.median(ideal):7.2f} "
              f"[{min(ideal):7.2f}]  work {statistics.median(work):7.2f} [{min(work):7.2f}]  ideal speedup "
              f"{statistics.median(one) / statistics.median(ideal):.2f}  loops/run {loops:.0f}  {wall}" +
              (f"  loops' wall over their longest parts {statistics.median(over):.2f}" if over else ""))
    last = list(libs)[-1]
    lib = libs[last]
    body = collections.defaultdict(lambda: [[], []])
    for t in (1, 2):
        for _, rows, _ in res[last, t]:
            per = collections.Counter()
            for addr, v in rows.items():
                per[addr] += v["max"]
            for addr, ms in per.items():
                body[addr][t - 1].append(ms)
    addrs = sorted(body)
    fn = subprocess.check_output(["addr2line", "-f", "-e", lib] + addrs, text=True).split("\n")[0::2] if addrs else []
    print(f"{last}: per loop body, median over rounds (1 thread: bodies the GEMMs call inline are in the serial part)")
    print(f"{'body':28s} {'1t ms':>8s} {'2t crit':>8s} {'loops 2t':>8s}")
    for addr, f in sorted(zip(addrs, fn), key=lambda x: -statistics.median(body[x[0]][1] or [0])):
        b1, b2 = body[addr]
        loops2 = res[last, 2][-1][1].get(addr, {}).get("loops", 0)
        print(f"{f[:28]:28s} {statistics.median(b1) if b1 else 0:8.3f} {statistics.median(b2) if b2 else 0:8.3f} {loops2:8.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
