"""ductile against onnxruntime on the model suite, each engine in its own process.

    make bench          every shape of every model, 1 and 2 threads, back to back and idle
    make bench-quick    one off-opt shape per model (a few minutes)
    PYTHONPATH=python python bench/bench.py [--quick] [--threads 1,2] [--rounds 5] [--bf16] [--fp16] [model ...]

For each model and thread count, two worker processes (bench/worker.py) load the model, one
in ductile and one in onnxruntime. Each shape is timed in rounds: per round each engine does a
few runs, the two alternating (and swapping who goes first), so a burst of outside load hits
both; a request during which other processes kept more than --quiet cores busy (0.25) is asked
again, up to --retries times (2), and the quietest try counts (column "others"). "b2b" runs follow each other; "idle" runs each come after 50 ms of sleep, as requests
reach a service. Reported: median ms per engine and the speedup ort/ductile (> 1: ductile is
faster), the build time, each process's peak RSS growth over its loaded state while it runs
one shape (activation memory, the build's transient memory excluded), and for every convolution and matmul of ductile's engine (its profiler, separate runs after the
timing) the achieved GFLOP/s and its share of the FMA peak that bench/fma_peak.c measures on
this machine with the same thread count; beside each 2-thread row, the round trip of a cache
line between the two CPUs before and after it (bench/xcore.c: two vCPUs on two core complexes
slow every 2-thread run). Writes
bench/results/latest.json, latest.md and, when matplotlib is installed, latency-vs-shape
plots bench/results/<model>.png.

Flatness (full bench, --flat): at each shape other than the profile's opt, a third worker
builds ductile with opt equal to that shape (same min and max) and is timed back to back
against the engine of the test profile; "flat" = that engine's ms / the test profile's ms
(the goal: within 15%, so >= 0.87).

--bf16 / --fp16: a further worker runs ductile built with --bf16 (the CPU's AVX512-BF16
convolutions) / --fp16 (AVX512-FP16), in the same alternating rounds; each row gains its median
ms and its speedups over ductile float32 and over onnxruntime (columns bf16_* / fp16_*).
"""
import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MODELS = os.path.abspath(os.environ.get("DUCTILE_MODELS", os.path.join(ROOT, "..", "shared", "models")))
RESULTS = os.path.join(HERE, "results")
sys.path.insert(0, HERE)
import goals  # noqa: E402  (bench/goals.py: issue 8's goals judged from the result)
IDLE_MS = 50
# Before each request a worker sleeps this long and does one untimed run: onnxruntime's workers
# spin ~45 ms after its last run and ductile's linger 60 ms (core/threadpool.c), and a request
# that starts inside the other engine's spinning tail has a core less. bert 1x16 on 2 threads,
# 5-6 A/Bs each on a quiet machine (session 8): with it, ductile 0.94 ms and onnxruntime 0.99;
# without it 1.16 and 0.82, the order of the engines deciding who ran in whose tail.
SETTLE_MS = 100

# model: {input: (min, opt, max)}, and the shapes timed besides min/opt/max (two off opt).
SUITE = {
    "superres.onnx": ({"input": ((1, 1, 64, 64), (1, 1, 224, 224), (4, 1, 512, 512))},
                      [{"input": (1, 1, 480, 320)}, {"input": (2, 1, 300, 300)}]),
    "seg_lraspp.onnx": ({"input_1": ((1, 3, 512, 512), (1, 3, 1024, 1024), (1, 3, 1600, 1600))},
                        [{"input_1": (1, 3, 777, 555)}, {"input_1": (1, 3, 1280, 720)}]),
    "mobilenet_v2.onnx": ({"input": ((1, 3, 224, 224), (8, 3, 224, 224), (32, 3, 224, 224))},
                          [{"input": (2, 3, 224, 224)}, {"input": (13, 3, 224, 224)}]),
    "bert_small.onnx": ({"input_ids": ((1, 1), (4, 128), (8, 512)),
                         "attention_mask": ((1, 1), (4, 128), (8, 512))},
                        [{"input_ids": (1, 16), "attention_mask": (1, 16)},
                         {"input_ids": (8, 128), "attention_mask": (8, 128)}]),
    "resnet50.onnx": ({"input": ((1, 3, 224, 224), (8, 3, 224, 224), (32, 3, 224, 224))},
                      [{"input": (1, 3, 224, 224)}, {"input": (4, 3, 224, 224)}]),
    "efficientnet_b0.onnx": ({"input": ((1, 3, 224, 224), (8, 3, 224, 224), (32, 3, 224, 224))},
                             [{"input": (1, 3, 224, 224)}, {"input": (4, 3, 224, 224)}]),
    "yolo.onnx": ({"images": ((1, 3, 320, 320), (1, 3, 640, 640), (1, 3, 1280, 1280))},
                  [{"images": (1, 3, 480, 352)}, {"images": (1, 3, 384, 640)}]),
    "llama.onnx": ({"input_ids": ((1, 1), (1, 128), (4, 512))},
                   [{"input_ids": (1, 16)}, {"input_ids": (2, 77)}]),
}


def shapes_of(model, quick):
    profile, extra = SUITE[model]
    if quick:
        return [extra[0]]
    corners = [{n: r[i] for n, r in profile.items()} for i in range(3)]
    return corners + extra


def label(shapes):
    return ",".join("x".join(map(str, s)) for s in shapes.values())


class Worker:
    def __init__(self, engine, model_path, profile, threads, flags=""):
        cmd = [sys.executable, os.path.join(HERE, "worker.py"), "--engine", engine, "--model", model_path,
               "--profile", json.dumps(profile), "--threads", str(threads), "--flags", flags]
        env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"), OMP_NUM_THREADS=str(threads))
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.build_ms = self._read()["build_ms"]

    def _read(self):
        line = self.p.stdout.readline()
        if not line:
            raise RuntimeError("a bench worker died (see its stderr above)")
        return json.loads(line)

    def ask(self, **req):
        self.p.stdin.write(json.dumps(req) + "\n")
        self.p.stdin.flush()
        return self._read()

    def close(self):
        self.p.stdin.close()
        self.p.wait()


# A request counts where the processes other than the workers kept at most QUIET cores busy on
# average while it ran (Others below); a louder one is asked again, up to RETRIES times, and the
# quietest of the tries counts. Session 38's full bench ran beside other load on this shared
# host: its mobilenet_v2 b8 1-thread float32 row took 63.8 ms, 51.6 in a quiet rerun the next
# morning (bf16 / f32 1.51 -> 1.59), the kernels the same. Set by --quiet / --retries.
QUIET = 0.25
RETRIES = 2


def ask_quiet(w, pids, req, loads):
    """One request of worker w, asked again while others were busy (QUIET, RETRIES); the
    answer of the quietest try. loads: gets the other processes' cores during that try."""
    best = None
    for _ in range(RETRIES + 1):
        with Others(pids) as others:
            ans = w.ask(**req)
        if best is None or others.cores < best[0]:
            best = (others.cores, ans)
        if QUIET < 0 or others.cores <= QUIET:
            break
    loads.append(best[0])
    return best[1]


def time_pair(d, o, shapes, rounds, runs, idle_ms, *more, waits=None, loads=None):
    """Median ms of each engine (d, o, then more) over `rounds` rounds of `runs` runs each,
    the order rotating by one from round to round (two engines: alternating who goes first),
    each request counted when quiet (ask_quiet). waits, a list: gets each engine's median
    run-queue wait per run (worker.run_wait_ms; None where the worker could not measure it).
    loads, a list: gets the other processes' cores during each counted request."""
    ws = [d, o, *more]
    pids = [w.p.pid for w in ws]
    ts = [[] for _ in ws]
    qs = [[] for _ in ws]
    loads = [] if loads is None else loads
    req = {"shapes": {k: list(v) for k, v in shapes.items()}, "runs": runs, "idle_ms": idle_ms,
           "settle_ms": SETTLE_MS}
    for r in range(rounds):
        for i in range(len(ws)):
            j = (i + r) % len(ws)
            ans = ask_quiet(ws[j], pids, req, loads)
            ts[j].extend(ans["ms"])
            qs[j].extend(ans.get("wait_ms", []))
    if waits is not None:
        waits.extend(statistics.median(q) if len(q) == len(t) else None for q, t in zip(qs, ts))
    return tuple(statistics.median(t) for t in ts)


def fmt_wait(row):
    """A row's run-queue waits, ductile / onnxruntime ms ("-" where not measured)."""
    f = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    return f"{f(row.get('ductile_wait_ms'))} / {f(row.get('ort_wait_ms'))}"


def runs_for(est_ms, budget_ms):
    return max(1, min(20, int(budget_ms / max(est_ms, 0.05))))


# Models the bench writes itself (random weights), and the script that writes each.
GENERATED = {"resnet50.onnx": "make_resnet50.py", "efficientnet_b0.onnx": "make_efficientnet.py",
             "yolo.onnx": "make_yolo.py", "llama.onnx": "make_llama.py"}


def model_path(model):
    """The suite model's file, or the generated one's (written under build/bench on first use)."""
    if model not in GENERATED:
        return os.path.join(MODELS, model)
    path = os.path.join(ROOT, "build", "bench", model)
    if not os.path.exists(path):
        subprocess.check_call([sys.executable, os.path.join(HERE, GENERATED[model]), path])
    return path


def built(name):
    """build/bench/<name>, compiled from bench/<name>.c where missing or older than its source."""
    src = os.path.join(HERE, name + ".c")
    exe = os.path.join(ROOT, "build", "bench", name)
    if not os.path.exists(exe) or os.path.getmtime(exe) < os.path.getmtime(src):
        os.makedirs(os.path.dirname(exe), exist_ok=True)
        subprocess.check_call([os.environ.get("CC", "cc"), "-O2", "-std=c11", "-D_GNU_SOURCE", "-pthread", src,
                               "-o", exe])
    return exe


def fma_peak(threads):
    """GFLOP/s of register-only FMAs on `threads` threads (bench/fma_peak.c, built here)."""
    return json.loads(subprocess.check_output([built("fma_peak"), str(threads)], text=True))


def xcore_ns():
    """The round trip of a cache line between two threads pinned to this process's first two
    CPUs (bench/xcore.c, built here), or None: 50-90 ns where two vCPUs share an L3, 300+ where
    the hypervisor put them on two core complexes (2-thread runs of both engines then slow)."""
    return json.loads(subprocess.check_output([built("xcore")], text=True))["round_trip_ns"]


def fmt_xcore(row):
    """A 2-thread row's core-to-core round trips before / after it ("-" on 1 thread)."""
    x = row.get("xcore_ns")
    return "-" if not x else " / ".join("-" if v is None else f"{v:.0f}" for v in x)


class Others:
    """with Others(pids) as o: ...; then o.cores: the cores that processes other than pids kept
    busy on average meanwhile (the machine's busy time in /proc/stat less the pids' CPU time),
    the test of a quiet machine. Pass every bench worker: the one that ran before still spins
    (ort ~45 ms, ductile's linger 60 ms) during the next one's settle sleep (SETTLE_MS). bench/fma_peak is no such test: a fresh process gets both cores at
    once from the scheduler while a compile job waits, so it reads ~225 on a box whose load is 5."""
    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, pids):
        self.pids = list(pids)

    @classmethod
    def busy_s(cls):
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return (sum(v[:8]) - v[3] - v[4]) / cls.TICK   # all but idle and iowait

    def proc_s(self):
        t = 0
        for pid in self.pids:
            with open(f"/proc/{pid}/stat") as f:
                v = f.read().rsplit(")", 1)[1].split()
            t += int(v[11]) + int(v[12])   # utime + stime, all threads
        return t / self.TICK

    def __enter__(self):
        self.t0, self.busy0, self.own0 = time.monotonic(), self.busy_s(), self.proc_s()
        return self

    def __exit__(self, *exc):
        dt = max(time.monotonic() - self.t0, 1e-3)
        self.cores = (self.busy_s() - self.busy0 - (self.proc_s() - self.own0)) / dt
        return False


def layer_rows(d, model, shapes, threads, peak, runs):
    """ductile's convolutions and matmuls at this shape: GFLOP/s and share of the peak."""
    rows = []
    for l in d.ask(layers=True, shapes={k: list(v) for k, v in shapes.items()}, runs=runs)["layers"]:
        gflops = l["flops"] / (l["ms"] * 1e-3) * 1e-9 if l["ms"] > 0 else 0.0
        rows.append({"model": model.replace(".onnx", ""), "shape": label(shapes), "threads": threads,
                     "layer": l["layer"], "op": l["op"], "tactic": l["tactic"], "ms": round(l["ms"], 4),
                     "gflop": round(l["flops"] * 1e-9, 4), "gflops": round(gflops, 1),
                     "peak_share": round(gflops / peak, 3) if peak > 0 else None})
    return rows


def layer_summary(rows):
    """Per model, shape and thread count: the layers' total ms, GFLOP and overall GFLOP/s."""
    out = {}
    for r in rows:
        k = (r["model"], r["shape"], r["threads"])
        s = out.setdefault(k, {"layers": 0, "ms": 0.0, "gflop": 0.0})
        s["layers"] += 1
        s["ms"] += r["ms"]
        s["gflop"] += r["gflop"]
    return out


def main():
    global QUIET, RETRIES
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--modes", default="b2b,idle")
    ap.add_argument("--out", default=RESULTS)
    ap.add_argument("--flat", dest="flat", action="store_true", default=None,
                    help="measure flatness (default: on for the full bench, off with --quick)")
    ap.add_argument("--no-flat", dest="flat", action="store_false")
    ap.add_argument("--quiet", type=float, default=QUIET,
                    help="cores other processes may keep busy during a counted request (negative: any)")
    ap.add_argument("--retries", type=int, default=RETRIES, help="tries more of a request that was not quiet")
    ap.add_argument("--bf16", action="store_true", help="also time ductile built with --bf16")
    ap.add_argument("--fp16", action="store_true", help="also time ductile built with --fp16")
    ap.add_argument("models", nargs="*")
    args = ap.parse_args()
    QUIET, RETRIES = args.quiet, args.retries
    halves = [k for k in ("bf16", "fp16") if getattr(args, k)]
    threads_list = [int(t) for t in args.threads.split(",")]
    modes = args.modes.split(",")
    flat = (not args.quick) if args.flat is None else args.flat
    rows, builds, layers, flats = [], [], [], []
    peaks = {t: fma_peak(t) for t in threads_list}
    for t, p in peaks.items():
        print(f"FMA peak ({p['isa']}), {t} thread{'s' if t > 1 else ''}: {p['gflops']:.1f} GFLOP/s", flush=True)
    for model in SUITE:
        if args.models and model not in args.models:
            continue
        path = model_path(model)
        if not os.path.exists(path):
            print(f"skip {model}: not found in {MODELS} (set DUCTILE_MODELS)", flush=True)
            continue
        profile = {n: [list(r[0]), list(r[1]), list(r[2])] for n, r in SUITE[model][0].items()}
        for threads in threads_list:
            d = Worker("ductile", path, profile, threads)
            o = Worker("ort", path, profile, threads)
            b = [Worker("ductile", path, profile, threads, k) for k in halves]
            builds.append({"model": model, "threads": threads, "ductile_build_ms": d.build_ms,
                           "ort_session_ms": o.build_ms})
            for shapes in shapes_of(model, args.quick):
                # One probe run each sizes the rounds: about 300 ms of runs per round and engine.
                probe = statistics.median(d.ask(shapes={k: list(v) for k, v in shapes.items()},
                                                runs=1, idle_ms=0)["ms"])
                n = runs_for(probe, 300 if not args.quick else 150)
                for mode in modes:
                    idle = IDLE_MS if mode == "idle" else 0
                    waits, loads = [], []
                    x0 = xcore_ns() if threads > 1 else None
                    dm, om, *bm = time_pair(d, o, shapes, args.rounds, n if mode == "b2b" else max(1, n // 2), idle,
                                            *b, waits=waits, loads=loads)
                    row = {"model": model.replace(".onnx", ""), "shape": label(shapes), "threads": threads,
                           "mode": mode, "ductile_ms": round(dm, 3), "ort_ms": round(om, 3),
                           "speedup": round(om / dm, 3),
                           "ductile_wait_ms": None if waits[0] is None else round(waits[0], 3),
                           "ort_wait_ms": None if waits[1] is None else round(waits[1], 3),
                           "xcore_ns": [x0, xcore_ns()] if threads > 1 else None,
                           "others_cores": round(max(loads), 2)}
                    for k, hm in zip(halves, bm):
                        row.update({f"{k}_ms": round(hm, 3), f"{k}_vs_f32": round(dm / hm, 3),
                                    f"{k}_vs_ort": round(om / hm, 3)})
                    rows.append(row)
                    print(f"{row['model']:<14} {row['shape']:<18} t={threads} {mode:<4} "
                          f"ductile {dm:8.2f}  ort {om:8.2f}  speedup {om / dm:5.2f}  wait {fmt_wait(row)}  "
                          f"others {row['others_cores']:.2f}" +
                          (f"  x-core {fmt_xcore(row)} ns" if threads > 1 else "") +
                          "".join(f"  {k} {hm:8.2f} ({dm / hm:.2f}x f32, {om / hm:.2f}x ort)" for k, hm in zip(halves, bm)),
                          flush=True)
                sd, so = d.ask(stats=True), o.ask(stats=True)
                for row in rows[len(rows) - len(modes):]:
                    row["ductile_mem_mb"] = round(sd["peak_rss_mb"] - sd["base_rss_mb"], 1)
                    row["ort_mem_mb"] = round(so["peak_rss_mb"] - so["base_rss_mb"], 1)
                    row["ductile_planned_mb"] = round(sd.get("planned_mb", 0.0), 1)
                if flat:
                    flats.append(flatness(path, profile, shapes, model, threads, d, max(3, args.rounds // 2), n))
                layers += layer_rows(d, model, shapes, threads, peaks[threads]["gflops"], max(1, n))
            for w in (d, o, *b):
                w.close()
    if not rows:
        print("nothing measured")
        return 1
    # Outside load only lowers a measured peak: the better of a measurement before and after.
    for t in threads_list:
        again = fma_peak(t)
        if again["gflops"] > peaks[t]["gflops"]:
            peaks[t] = again
    for r in layers:
        peak = peaks[r["threads"]]["gflops"]
        r["peak_share"] = round(r["gflops"] / peak, 3) if peak > 0 else None
    geo = math.exp(statistics.mean(math.log(r["speedup"]) for r in rows))
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    machine = {"cpu": cpu_name(), "cores": os.cpu_count(), "python": platform.python_version(),
               "commit": commit, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    os.makedirs(args.out, exist_ok=True)
    result = {"machine": machine, "geomean_speedup": round(geo, 3), "min_speedup": min(r["speedup"] for r in rows),
              "rows": rows, "builds": builds, "flat": flats,
              "fma_peak": {str(t): p for t, p in peaks.items()}, "layers": layers}
    result["goals"] = goals.goals(result)
    with open(os.path.join(args.out, "latest.json"), "w") as f:
        json.dump(result, f, indent=1)
    with open(os.path.join(args.out, "latest.md"), "w") as f:
        f.write(f"# ductile vs onnxruntime, {machine['date']}, commit {commit}\n\n{machine['cpu']}, "
                f"{machine['cores']} cores. Each engine in its own process, alternating rounds; "
                f"median ms; speedup = ort / ductile. idle: {IDLE_MS} ms sleep before each run.\n\n")
        f.write("| model | shape | threads | mode | ductile ms | ort ms | speedup | wait ms | others | x-core ns | "
                "ductile MB | ort MB | ductile planned MB |" + "".join(f" {k} ms | {k} / f32 | {k} / ort |" for k in halves) +
                "\n|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|" + "---:|---:|---:|" * len(halves) + "\n")
        for r in rows:
            f.write(f"| {r['model']} | {r['shape']} | {r['threads']} | {r['mode']} | {r['ductile_ms']:.2f} | "
                    f"{r['ort_ms']:.2f} | {r['speedup']:.2f} | {fmt_wait(r)} | {r['others_cores']:.2f} | {fmt_xcore(r)} | "
                    f"{r['ductile_mem_mb']} | "
                    f"{r['ort_mem_mb']} | "
                    f"{r['ductile_planned_mb']} |" +
                    "".join(f" {r[k + '_ms']:.2f} | {r[k + '_vs_f32']:.2f} | {r[k + '_vs_ort']:.2f} |" for k in halves) +
                    "\n")
        f.write("\nwait ms: median time per run that the engine's threads spent runnable but not running "
                "(ductile / onnxruntime, Linux schedstat): other processes' share of the wall times; a row with "
                "waits is a row measured under outside load.\n")
        f.write(f"\nothers: the most cores that processes other than the bench's workers kept busy while one of the "
                f"row's counted requests ran (/proc/stat); a request over {QUIET:g} was asked again, up to {RETRIES} "
                f"times, and the quietest try counted.\n")
        f.write("\nx-core ns: on 2 threads, the round trip of a cache line between the first two CPUs before / "
                "after the row (bench/xcore.c): 50-90 ns where they share an L3, 300+ where the hypervisor placed "
                "the two vCPUs on two core complexes, which slows both engines' 2-thread runs (resnet50 b1: 33 -> 44 "
                "ms here; bench/results/cpu-zen4-2026-12-05-s27.md).\n")
        f.write("\nMB: growth of the engine process's peak resident memory while it ran that shape, on top of "
                "what the shapes above it (run in table order) left; the build's transient memory excluded. "
                "planned MB: ductile's context memory after that shape (activations and scratch; it keeps the largest "
                "shape's so far, context.memory_size).\n")
        f.write(f"\ngeometric mean speedup {geo:.2f}, minimum {min(r['speedup'] for r in rows):.2f}\n")
        goals.write_goals_md(f, result)
        f.write("\n")
        f.write("| model | threads | ductile build ms | ort session ms |\n|---|---:|---:|---:|\n")
        for b in builds:
            f.write(f"| {b['model']} | {b['threads']} | {b['ductile_build_ms']:.0f} | {b['ort_session_ms']:.0f} |\n")
        write_flat_md(f, flats)
        write_layers_md(f, layers, peaks)
    plot(rows, args.out)
    print(f"geometric mean speedup {geo:.2f}; results in {args.out}/latest.md")
    return 0


def flatness(path, profile, shapes, model, threads, d, rounds, runs):
    """The test profile's engine (worker d) against one built with opt = shapes, back to back."""
    own = {n: [r[0], list(shapes[n]), r[2]] for n, r in profile.items()}
    if own == profile:
        return {"model": model.replace(".onnx", ""), "shape": label(shapes), "threads": threads, "flat": None}
    e = Worker("ductile", path, own, threads)
    try:
        dm, em = time_pair(d, e, shapes, rounds, runs, 0)
    finally:
        e.close()
    row = {"model": model.replace(".onnx", ""), "shape": label(shapes), "threads": threads,
           "profile_ms": round(dm, 3), "own_opt_ms": round(em, 3), "flat": round(em / dm, 3)}
    print(f"flat {row['model']:<14} {row['shape']:<18} t={threads} test profile {dm:8.2f}  opt=shape {em:8.2f}  "
          f"ratio {em / dm:5.2f}", flush=True)
    return row


def write_flat_md(f, flats):
    rows = [r for r in flats if r["flat"] is not None]
    if not rows:
        return
    f.write("\n## Flat across the range\n\nEach shape: the engine of the test profile against an engine built "
            "with opt equal to that shape (same min and max), back to back, alternating. flat = opt-at-shape ms / "
            "test-profile ms (goal >= 0.87: within 15%).\n\n| model | shape | threads | test profile ms | "
            "opt=shape ms | flat |\n|---|---|---:|---:|---:|---:|\n")
    for r in rows:
        f.write(f"| {r['model']} | {r['shape']} | {r['threads']} | {r['profile_ms']:.2f} | {r['own_opt_ms']:.2f} | "
                f"{r['flat']:.2f} |\n")
    f.write(f"\nminimum flat {min(r['flat'] for r in rows):.2f}\n")


def write_layers_md(f, layers, peaks):
    f.write("\n## Convolutions and matmuls (ductile)\n\nFMA peak measured by bench/fma_peak.c: " +
            ", ".join(f"{t} thread{'s' if t > 1 else ''} {p['gflops']:.1f} GFLOP/s ({p['isa']})"
                      for t, p in peaks.items()) +
            ". Per layer: median ms over profiled runs (the profiler's own, separate from the timings "
            "above), GFLOP per run (a multiply-add counts 2), GFLOP/s and share of the peak.\n\n")
    f.write("| model | shape | threads | layers | ms | GFLOP | GFLOP/s | share of peak |\n"
            "|---|---|---:|---:|---:|---:|---:|---:|\n")
    for (model, shape, threads), s in layer_summary(layers).items():
        g = s["gflop"] / (s["ms"] * 1e-3) if s["ms"] > 0 else 0.0
        peak = peaks[threads]["gflops"]
        f.write(f"| {model} | {shape} | {threads} | {s['layers']} | {s['ms']:.3f} | {s['gflop']:.3f} | {g:.1f} | "
                f"{g / peak:.2f} |\n" if peak > 0 else f"| {model} | {shape} | {threads} | {s['layers']} | "
                f"{s['ms']:.3f} | {s['gflop']:.3f} | {g:.1f} | - |\n")
    groups = {}
    for r in layers:
        groups.setdefault((r["model"], r["shape"], r["threads"]), []).append(r)
    for (model, shape, threads), rs in groups.items():
        f.write(f"\n<details><summary>{model} {shape}, {threads} thread{'s' if threads > 1 else ''}: "
                f"{len(rs)} layers</summary>\n\n| layer | op | tactic | ms | GFLOP | GFLOP/s | share |\n"
                "|---|---|---|---:|---:|---:|---:|\n")
        for r in rs:
            share = "-" if r["peak_share"] is None else f"{r['peak_share']:.2f}"
            f.write(f"| {r['layer']} | {r['op']} | {r['tactic']} | {r['ms']:.4f} | {r['gflop']:.4f} | "
                    f"{r['gflops']:.1f} | {share} |\n")
        f.write("\n</details>\n")


def cpu_name():
    """The CPU's model name with its family and model ("AMD EPYC (family 26, model 2)"): a VM's
    name hides the generation (Zen 4 is family 25, Zen 5 26), which moves every ratio (session 30:
    Zen 5's float32 FMA rate is twice Zen 4's)."""
    name, fam, mod = None, None, None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key, value = key.strip(), value.strip()
                if key == "model name" and name is None:
                    name = value
                elif key == "cpu family" and fam is None:
                    fam = value
                elif key == "model" and mod is None:
                    mod = value
    except OSError:
        pass
    name = name or platform.processor()
    return f"{name} (family {fam}, model {mod})" if fam and mod else name


def plot(rows, out):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plots (pip install -r bench/requirements.txt)")
        return
    for model in sorted({r["model"] for r in rows}):
        fig, ax = plt.subplots(figsize=(8, 4))
        for threads in sorted({r["threads"] for r in rows}):
            sel = [r for r in rows if r["model"] == model and r["threads"] == threads and r["mode"] == "b2b"]
            xs = [r["shape"] for r in sel]
            ax.plot(xs, [r["ductile_ms"] for r in sel], "o-", label=f"ductile {threads}t")
            ax.plot(xs, [r["ort_ms"] for r in sel], "s--", label=f"onnxruntime {threads}t")
        ax.set_ylabel("ms (median, back to back)")
        ax.set_title(model)
        ax.tick_params(axis="x", rotation=30)
        ax.legend()
        fig.tight_layout()
        fig.savefig(os.path.join(out, f"{model}.png"))
        plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
