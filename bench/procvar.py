"""Per-process variance of whole-model latency (issue 8): is a slow process slow for good?

    python bench/procvar.py [--procs 10] [--rounds 20] [--runs 10] [--profile 3] \
        [--env NAME=VALUE ...] [--wrap "setarch -R"] build/spread ENGINE THREADS SHAPES
    (SPREAD is build/spread, or "py" (ENGINE an .onnx built in each process as bench.py
    builds it) or "pyload" (a saved engine loaded through the Python binding).)

Starts --procs processes of bench/spread.c in SPREAD_SERVE mode on the same saved engine (so
every process runs the same tactics), then alternates them round by round (order rotated each
round) so that load from outside hits all of them alike: each round asks every process for
--runs executes. Prints per process the median and minimum wall ms and the median of the
calling thread's CPU ms, and where its big blocks landed (SPREAD_MAPS), then the spread of the
per-process medians (min / median / max). A process slow in every round (its rank stable
while the others' change) is slow for a reason of its own (its memory placement); a spread
that shuffles from round to round is the machine's. With --profile K, the slowest and the
fastest process then run K alternating profiled blocks and the layers whose median differs
most between them are listed (spread over every layer, or a few?).
--ort MODEL adds --procs onnxruntime processes (tag O) that answer the same requests (this
file with --serve ort), for the machine's effect on both engines side by side; --op c sweeps
the caches (512 MiB written) before every execute of every engine, as other tenants' work does.
--env sets variables for half of the processes (the odd ones) to A/B a runtime switch in
one alternating run; --wrap prefixes a command (e.g. "setarch -R", "taskset -c 0").
"""
import argparse
import os
import statistics
import subprocess
import sys


class Proc:
    def __init__(self, cmd, env):
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.maps, self.blks = [], []
        while True:
            line = self.p.stdout.readline()
            if not line:
                raise RuntimeError("worker ended before ready: " + " ".join(cmd))
            if line.startswith("ready"):
                break
            if line.startswith("map"):
                self.maps.append(line.split())
            if line.startswith("blk"):
                self.blks.append(line.split())
        self.wall, self.cpu, self.rounds, self.crounds = [], [], [], []

    def ask(self, op, n):
        self.p.stdin.write(f"{op} {n}\n")
        self.p.stdin.flush()
        v = [float(x) for x in self.p.stdout.readline().split()[1:]]
        return v

    def close(self):
        self.p.stdin.write("q 0\n")
        self.p.stdin.close()
        self.p.wait()

    def blk(self):
        """per block of 1 MiB or more (SPREAD_ALLOC set): start mod 4 KiB / mod 2 MiB (KiB) / huge-page MB"""
        return " ".join(f"{b[6]}/{int(b[8]) // 1024}K/h{float(b[10]):.0f}" for b in self.blks)


def serve_py(kind, model, threads, shapes):
    """A worker in Python: onnxruntime ("ort"), or ductile through its binding, the engine
    built in this process as bench/worker.py builds it ("py", MODEL an .onnx of bench.SUITE)
    or loaded from a saved engine ("pyload", MODEL the engine file)."""
    import time
    import numpy as np
    dims = {part.split(":")[0]: [int(x) for x in part.split(":")[1].split("x")] for part in shapes.split(",")}
    rng = np.random.default_rng(0)
    if kind == "ort":
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
        run = lambda f: sess.run(None, f)  # noqa: E731
    else:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import ductile
        if kind == "py":
            import bench
            import worker
            prof = {n: [list(r[0]), list(r[1]), list(r[2])] for n, r in bench.SUITE[os.path.basename(model)][0].items()}
            run = worker.make_ductile(model, prof, threads, [])[0]
        else:
            ctx = ductile.load_engine(model).create_execution_context()
            ctx.set_threads(threads)
            run = ctx.run
    feeds = {k: rng.standard_normal(d).astype(np.float32) for k, d in dims.items()}
    sweep = np.ones(512 << 20, np.uint8)
    for _ in range(5):
        run(feeds)
    print("ready", flush=True)
    for line in sys.stdin:
        op, n = line.split()
        if op not in "rc":
            break
        out = []
        for _ in range(int(n)):
            if op == "c":
                sweep[::64] += 1
            t0, c0 = time.perf_counter(), time.thread_time()
            run(feeds)
            out += [(time.perf_counter() - t0) * 1e3, (time.thread_time() - c0) * 1e3]
        print("t " + " ".join(f"{x:.4f}" for x in out), flush=True)


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--procs", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--profile", type=int, default=0)
    ap.add_argument("--env", action="append", default=[], help="NAME=VALUE for the odd processes")
    ap.add_argument("--env-all", action="append", default=[], help="NAME=VALUE for every process")
    ap.add_argument("--wrap", default="")
    ap.add_argument("--spread-b", help="another spread binary (another build of the library) for the odd processes")
    ap.add_argument("--ort", help="MODEL: onnxruntime processes alongside")
    ap.add_argument("--op", default="r", choices=["r", "c"])
    ap.add_argument("spread")
    ap.add_argument("engine")
    ap.add_argument("threads")
    ap.add_argument("shapes")
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        return serve_py(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
    a = ap.parse_args()
    procs, tags = [], []
    for i in range(a.procs):
        env = dict(os.environ, SPREAD_SERVE="1")
        for kv in a.env_all + (a.env if i % 2 else []):
            k, v = kv.split("=", 1)
            env[k] = v
        cmd = a.wrap.split() + [a.spread, a.engine, a.threads, a.shapes, str(max(a.runs, 50))]
        if a.spread in ("py", "pyload"):  # ductile through the Python binding (serve_py)
            cmd = a.wrap.split() + [sys.executable, os.path.abspath(__file__), "--serve", a.spread, a.engine, a.threads, a.shapes]
        if a.spread_b and i % 2:
            cmd[len(a.wrap.split())] = a.spread_b
        procs.append(Proc(cmd, env))
        tags.append("B" if ((a.env or a.spread_b) and i % 2) else "A")
        if a.ort:
            procs.append(Proc([sys.executable, os.path.abspath(__file__), "--serve", "ort", a.ort, a.threads, a.shapes], os.environ))
            tags.append("O")
    print(f"load {loadavg()} at start", flush=True)
    for r in range(a.rounds):
        order = procs[r % len(procs):] + procs[:r % len(procs)]
        for p in order:
            v = p.ask(a.op, a.runs)
            w, c = v[0::2], v[1::2]
            p.wall += w
            p.cpu += c
            p.rounds.append(statistics.median(w))
            p.crounds.append(statistics.median(c))
    print(f"load {loadavg()} at end", flush=True)
    rows = []
    for i, p in enumerate(procs):
        tag = tags[i]
        rows.append((statistics.median(p.wall), min(p.wall), statistics.median(p.cpu), i, tag, p))
    # Rank of each process within each round: a stable rank is a per-process effect.
    ranks = {i: [0] for i in range(len(procs))}
    for r in range(a.rounds):
        col = sorted((i for i in range(len(procs)) if tags[i] != "O"), key=lambda i: procs[i].rounds[r])
        for k, i in enumerate(col):
            ranks[i].append(k)
    # Each process's round medians over the median of all processes in that round: the
    # process's own factor with the round's (the machine's) level taken out.
    rel, crel = {}, {}
    for i, p in enumerate(procs):
        same = [q for k, q in enumerate(procs) if (tags[k] == "O") == (tags[i] == "O")]
        rel[i] = statistics.median(p.rounds[r] / statistics.median(q.rounds[r] for q in same) for r in range(a.rounds))
        crel[i] = statistics.median(p.crounds[r] / statistics.median(q.crounds[r] for q in same) for r in range(a.rounds))
    print("proc tag wall_med wall_min cpu_med mean_rank rel_wall rel_cpu blocks(mod 4K / mod 2M KiB / huge MB)")
    for med, mn, cmed, i, tag, p in sorted(rows, key=lambda t: t[0]):
        print(f"{i:4d} {tag} {med:8.3f} {mn:8.3f} {cmed:8.3f} {statistics.mean(ranks[i]):5.1f} {rel[i]:6.3f} {crel[i]:6.3f}  {p.blk()}")
    # Split-half check: each process's factor from the even rounds against the odd rounds'.
    # A per-process effect (placement) makes them agree (correlation near 1); the machine's
    # noise does not (near 0).
    for tag in sorted(set(tags)):
        idx = [i for i in range(len(procs)) if tags[i] == tag]
        same = [procs[i] for i in idx]
        def half(i, par, key):
            return statistics.median(getattr(procs[i], key)[r] / statistics.median(getattr(q, key)[r] for q in same)
                                     for r in range(par, a.rounds, 2))
        if len(idx) > 2 and a.rounds > 3:
            cor = [statistics.correlation([half(i, 0, k) for i in idx], [half(i, 1, k) for i in idx]) for k in ("rounds", "crounds")]
            print(f"{tag}: split-half correlation of per-process factors: wall {cor[0]:+.2f}, cpu {cor[1]:+.2f} ({len(idx)} processes)")
    for tag in sorted({t[4] for t in rows}):
        meds = sorted(t[0] for t in rows if t[4] == tag)
        cm = sorted(t[2] for t in rows if t[4] == tag)
        rw = sorted(rel[t[3]] for t in rows if t[4] == tag)
        print(f"{tag}: rel_wall min {rw[0]:.3f} median {statistics.median(rw):.3f} max {rw[-1]:.3f}")
        print(f"{tag}: per-process wall medians min {meds[0]:.3f} median {statistics.median(meds):.3f} max {meds[-1]:.3f}; "
              f"cpu medians min {cm[0]:.3f} median {statistics.median(cm):.3f} max {cm[-1]:.3f}")
    if a.profile:
        mine = [t for t in rows if t[4] != "O"]
        fast, slow = min(mine, key=lambda t: t[0])[5], max(mine, key=lambda t: t[0])[5]
        fl, sl = [], []
        for _ in range(a.profile):
            fl.append(fast.ask("p", a.runs))
            sl.append(slow.ask("p", a.runs))
        n = len(fl[0]) // 2
        fmed = [statistics.median(x[2 * k] for x in fl) for k in range(n)]
        smed = [statistics.median(x[2 * k] for x in sl) for k in range(n)]
        fmin = [min(x[2 * k + 1] for x in fl) for k in range(n)]
        smin = [min(x[2 * k + 1] for x in sl) for k in range(n)]
        print(f"profiled: fast sum med {sum(fmed):.3f} min {sum(fmin):.3f}; slow sum med {sum(smed):.3f} min {sum(smin):.3f}")
        for k in sorted(range(n), key=lambda k: fmed[k] - smed[k])[:12]:
            print(f"  layer {k:3d} fast med {fmed[k]:.3f} min {fmin[k]:.3f}  slow med {smed[k]:.3f} min {smin[k]:.3f}")
    for p in procs:
        p.close()


if __name__ == "__main__":
    sys.exit(main())
