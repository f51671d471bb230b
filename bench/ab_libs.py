"""A/B of libductile builds on one model and shape, with onnxruntime alongside.

    python bench/ab_libs.py --libs base=/tmp/a.so,new=/tmp/b.so --threads 2 resnet50.onnx 1x3x224x224

A model outside bench.SUITE (a path) is built with the given shapes as min, opt and max.

Each build (DUCTILE_LIB) and onnxruntime runs in its own worker process (bench/worker.py), the
engines alternating round by round (order reversed every other round) so that load from
outside hits all of them alike; prints each one's median ms. On a shared machine also print
bench/fma_peak's 2-thread GFLOP/s before each A/B: about the 1-thread figure means another
process holds the second core, and 2-thread timings then measure that contention.

With --quiet F a request counts only when the other processes used at most F cores on average
while it ran (the machine's busy time in /proc/stat less the workers' own, bench.Others); the
rounds go on until every engine has --rounds counted requests or --max-minutes pass, and each
engine's count is printed. fma_peak is no such test: a fresh process gets both cores at once
from the scheduler while a compile job waits, so it reads ~225 on a box whose load is 5.
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--libs", required=True,
                    help="name=path[@VAR=VALUE...],... of libductile.so builds, each with environment variables "
                         "of its own (an experiment's switch: base=a.so,try=a.so@DT_WINO_SERIAL=1)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--runs", type=int, default=5, help="runs per round and engine")
    ap.add_argument("--idle-ms", type=int, default=0)
    ap.add_argument("--settle-ms", type=int, default=bench.SETTLE_MS,
                    help="sleep and one untimed run before each request (0: none), see bench.SETTLE_MS")
    ap.add_argument("--quiet", type=float, default=-1.0,
                    help="count a request only when other processes used at most this many cores meanwhile")
    ap.add_argument("--max-minutes", type=float, default=20.0, help="with --quiet: give up after this long")
    ap.add_argument("--flags", default="", help="ductile builder flags of every build, comma separated (bf16, fp16)")
    ap.add_argument("model")
    ap.add_argument("shape", help="per input, comma separated: 1x3x224x224 or 1x16,1x16")
    a = ap.parse_args()
    path = bench.model_path(a.model)
    dims = [[int(x) for x in part.split("x")] for part in a.shape.split(",")]
    if a.model in bench.SUITE:
        prof = {n: [list(r[0]), list(r[1]), list(r[2])] for n, r in bench.SUITE[a.model][0].items()}
    else:
        # a model outside the suite (a layer or block alone): its inputs in graph order, each
        # with the shape given as min, opt and max
        import onnx
        graph = onnx.load(path, load_external_data=False).graph
        inits = {t.name for t in graph.initializer}
        names = [i.name for i in graph.input if i.name not in inits]
        prof = {n: [d, d, d] for n, d in zip(names, dims)}
    shapes = dict(zip(prof, dims))
    workers = {}
    base_env = dict(os.environ)
    for item in a.libs.split(","):
        # name=lib.so[@VAR=VALUE@...]: the build, and environment variables of its worker alone
        name, spec = item.split("=", 1)
        lib, *env = spec.split("@")
        os.environ.clear()
        os.environ.update(base_env)
        for kv in env:
            var, _, value = kv.partition("=")
            os.environ[var] = value or "1"
        os.environ["DUCTILE_LIB"] = lib
        workers[name] = bench.Worker("ductile", path, prof, a.threads, a.flags)
    os.environ.clear()
    os.environ.update(base_env)
    workers["ort"] = bench.Worker("ort", path, prof, a.threads)
    req = {"shapes": shapes, "runs": a.runs, "idle_ms": a.idle_ms, "settle_ms": a.settle_ms}
    for w in workers.values():
        w.ask(**dict(req, runs=2))   # warm-up
    ms = {k: [] for k in workers}
    wait = {k: [] for k in workers}
    counted = {k: 0 for k in workers}
    order = list(workers)
    gated = a.quiet >= 0
    end = time.monotonic() + 60 * a.max_minutes
    r = 0
    while min(counted.values()) < a.rounds and (r < a.rounds or (gated and time.monotonic() < end)):
        for k in order if r % 2 == 0 else order[::-1]:
            if counted[k] >= a.rounds and gated:
                continue
            with bench.Others(w.p.pid for w in workers.values()) as others:
                ans = workers[k].ask(**req)
            if not gated or others.cores <= a.quiet:
                ms[k].extend(ans["ms"])
                wait[k].extend(ans.get("wait_ms", []))
                counted[k] += 1
        r += 1
    # wait: the median run's run-queue wait (bench/worker.py), the outside load inside the timings
    print(a.model, a.shape, f"t={a.threads}", f"idle={a.idle_ms}",
          " ".join((f"{k} {statistics.median(v):.2f}" + (f" (wait {statistics.median(wait[k]):.2f})" if wait[k] else ""))
                   if v else f"{k} -" for k, v in ms.items()),
          f"(others <= {a.quiet:g} cores: requests counted " + ", ".join(f"{k} {n}" for k, n in counted.items()) +
          f" in {r} rounds)" if gated else "", flush=True)
    for w in workers.values():
        w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
