"""One engine in its own process, timed on request (bench/bench.py drives it).

A worker loads one model into ductile or onnxruntime, with a thread count, and then answers
requests on stdin, one JSON object per line, with one JSON line on stdout:
    {"shapes": {input: [dims]}, "runs": N, "idle_ms": X, "settle_ms": S}  ->  {"ms": [N timings],
        "wait_ms": [N]}: wait_ms, each run's time runnable but not running (Linux schedstat, summed
        over the process's threads; absent elsewhere): what other processes took of the run's wall time
    {"stats": true}  ->  {"peak_rss_mb": ..., "base_rss_mb": ...}: the peak resident size since
        the last stats request (or since the engine was loaded), and the resident size then;
        the peak is reset after each answer (Linux: /proc/self/clear_refs), so the growth
        measures one shape's runs, not the build's transient memory; ductile also gives
        planned_mb, the context's memory for the shapes it ran last (context.memory_size)
    {"layers": true, "shapes": ..., "runs": N}  ->  {"layers": [{"layer", "op", "tactic", "ms",
        "flops"}]}: ductile only, each convolution and matmul's median ms over N profiled
        runs (context.profiler) and its FLOPs per run
Each run after idle_ms of sleep (0: back to back); with settle_ms, the runs start after that
much sleep and one untimed run. Inputs are random, made once per shape.
Keeping each engine in its own process matters: onnxruntime's spinning worker threads would
otherwise steal a core from whichever engine runs next.
"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np


def rss_mb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def run_wait_ms():
    """Milliseconds this process's threads have waited on a run queue so far (runnable, another
    task on their CPU): /proc/<pid>/task/*/schedstat's second field. None where unavailable.
    On a shared machine a run's wall time is its CPU time plus this wait (session 9: resnet50
    on 1 thread at load 6, 236 ms wall = 79 ms CPU + 155 ms waiting, idle and b2b alike)."""
    total = 0
    try:
        for t in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{t}/schedstat") as f:
                total += int(f.read().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return total / 1e6


def reset_peak():
    """Restart VmHWM from the current resident size (Linux >= 4.0; elsewhere it stays)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def feeds_for(shapes, dtypes, rng):
    out = {}
    for name, shape in shapes.items():
        dt = dtypes.get(name, "float32")
        if name == "input_ids":
            out[name] = rng.integers(0, 2048, shape).astype(np.int64)
        elif dt.startswith("int"):
            out[name] = np.ones(shape, dt)
        else:
            out[name] = rng.standard_normal(shape).astype(dt)
    return out


def make_ductile(path, profile, threads, flags):
    import ductile
    builder = ductile.Builder()
    network = builder.parse_onnx(path)
    prof = builder.create_optimization_profile()
    for name, (mn, op, mx) in profile.items():
        prof.set_shape(name, tuple(mn), tuple(op), tuple(mx))
    config = builder.create_builder_config()
    config.threads = threads  # CPU tactics timed at the thread count the context runs with
    config.add_optimization_profile(prof)
    for f in flags:
        config.set_flag(getattr(ductile.BuilderFlag, f.upper()))
    t = time.perf_counter()
    engine = builder.build_engine(network, config)
    build_ms = (time.perf_counter() - t) * 1e3
    ctx = engine.create_execution_context()
    ctx.set_threads(threads)
    dtypes = {n: "int64" if n in ("input_ids", "attention_mask") else "float32" for n in profile}
    run = lambda feeds: ctx.run(feeds)  # noqa: E731
    run.context = ctx
    return run, dtypes, build_ms


def make_ort(path, threads):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    t = time.perf_counter()
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    build_ms = (time.perf_counter() - t) * 1e3
    kinds = {"tensor(float)": "float32", "tensor(int64)": "int64", "tensor(int32)": "int32"}
    dtypes = {i.name: kinds.get(i.type, "float32") for i in sess.get_inputs()}
    return (lambda feeds: sess.run(None, feeds)), dtypes, build_ms


def feeds_cached(req, cache, dtypes, rng, run):
    key = json.dumps(req["shapes"], sort_keys=True)
    if key not in cache:
        cache[key] = feeds_for({k: tuple(v) for k, v in req["shapes"].items()}, dtypes, rng)
        run(cache[key])
    return cache[key]


def profile_layers(run, feeds, runs):
    """Median ms over the runs and FLOPs per run of every layer that does the arithmetic
    (convolutions, matmuls: the profiler's flops > 0). The median, not the mean: one
    preempted run would otherwise count for every layer it hit."""
    acc = {}

    def report(t):
        if t.flops > 0:
            row = acc.setdefault(t.index, {"layer": t.layer, "op": t.op_type, "tactic": t.tactic, "ms": [],
                                           "flops": t.flops})
            row["ms"].append(t.ms)

    ctx = run.context
    ctx.profiler = report
    try:
        for _ in range(runs):
            run(feeds)
    finally:
        ctx.profiler = None
    rows = [acc[i] for i in sorted(acc)]
    for row in rows:
        row["ms"] = statistics.median(row["ms"])
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", choices=["ductile", "ort"], required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--profile", required=True, help="JSON {input: [min, opt, max]}")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--flags", default="", help="ductile builder flags, comma separated (fp16, bf16)")
    args = ap.parse_args()
    profile = json.loads(args.profile)
    if args.engine == "ductile":
        run, dtypes, build_ms = make_ductile(args.model, profile, args.threads,
                                             [f for f in args.flags.split(",") if f])
    else:
        run, dtypes, build_ms = make_ort(args.model, args.threads)
    reset_peak()
    base = rss_mb("VmRSS")
    print(json.dumps({"ready": True, "build_ms": build_ms}), flush=True)
    rng = np.random.default_rng(0)
    cache = {}
    for line in sys.stdin:
        req = json.loads(line)
        if req.get("stats"):
            st = {"peak_rss_mb": rss_mb("VmHWM"), "base_rss_mb": base}
            if hasattr(run, "context"):
                st["planned_mb"] = run.context.memory_size / 2**20
            print(json.dumps(st), flush=True)
            reset_peak()
            base = rss_mb("VmRSS")
            continue
        if req.get("layers"):
            print(json.dumps({"layers": profile_layers(run, feeds_cached(req, cache, dtypes, rng, run),
                                                       req["runs"])}), flush=True)
            continue
        key = json.dumps(req["shapes"], sort_keys=True)
        if key not in cache:
            cache[key] = feeds_for({k: tuple(v) for k, v in req["shapes"].items()}, dtypes, rng)
            run(cache[key])  # warm-up: first run at a shape pays for its shape program / allocs
        feeds = cache[key]
        if req.get("settle_ms"):
            # The other engine's workers spin on for tens of ms after its last run (both
            # engines' pools do): wait that out, then one untimed run, so the timed runs
            # measure this engine and not the other one's tail.
            time.sleep(req["settle_ms"] / 1e3)
            run(feeds)
        idle = req.get("idle_ms", 0) / 1e3
        ms, wait = [], []
        for _ in range(req["runs"]):
            if idle:
                time.sleep(idle)
            w0 = run_wait_ms()
            t = time.perf_counter()
            run(feeds)
            ms.append((time.perf_counter() - t) * 1e3)
            w1 = run_wait_ms()
            if w0 is not None and w1 is not None:
                wait.append(w1 - w0)
        print(json.dumps({"ms": ms, "wait_ms": wait} if len(wait) == len(ms) else {"ms": ms}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
