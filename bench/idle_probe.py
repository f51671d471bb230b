"""Where the time of a run after idleness goes: one engine in this process, runs after each of
several kinds of pause, interleaved, median ms per kind.

    PYTHONPATH=python python bench/idle_probe.py [--engine ductile|ort] [--threads 1] MODEL SHAPE

b2b: no pause. sleep50: 50 ms of sleep (issue 8's "idle"). spin50: 50 ms of busy-waiting on
the same core instead (the vCPU never sleeps, the pool's threads are not woken: what remains is
what the cache lost meanwhile). sleep50+spin2: sleep, then 2 ms of spinning before the run (the
core awake again, caches as the sleep left them). sleep5 / sleep1: shorter pauses.
If spin50 is as slow as sleep50, the idle penalty is data evicted from the caches while the
engine waits (by the machine's other tenants), not the wake-up of sleeping threads.
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
import worker  # noqa: E402


def spin(s):
    t = time.perf_counter()
    while time.perf_counter() - t < s:
        pass


PAUSES = {"b2b": lambda: None, "sleep50": lambda: time.sleep(0.05), "spin50": lambda: spin(0.05),
          "sleep50+spin2": lambda: (time.sleep(0.05), spin(0.002)),
          "sleep5": lambda: time.sleep(0.005), "sleep1": lambda: time.sleep(0.001)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", default="ductile", choices=("ductile", "ort"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("model")
    ap.add_argument("shape", help="per input, comma separated: 1x3x224x224 or 1x16,1x16")
    a = ap.parse_args()
    path = bench.model_path(a.model)
    prof = {n: [list(r[0]), list(r[1]), list(r[2])] for n, r in bench.SUITE[a.model][0].items()}
    shapes = {name: tuple(int(x) for x in part.split("x")) for part, name in zip(a.shape.split(","), prof)}
    if a.engine == "ductile":
        run, dtypes, _ = worker.make_ductile(path, prof, a.threads, [])
    else:
        run, dtypes, _ = worker.make_ort(path, a.threads)
    feeds = worker.feeds_for(shapes, dtypes, np.random.default_rng(0))
    for _ in range(20):
        run(feeds)
    ms = {k: [] for k in PAUSES}
    for _ in range(a.rounds):
        for k, pause in PAUSES.items():
            pause()
            t = time.perf_counter()
            run(feeds)
            ms[k].append((time.perf_counter() - t) * 1e3)
    base = statistics.median(ms["b2b"])
    for k, v in ms.items():
        m = statistics.median(v)
        print(f"{a.engine:8s} {a.model:18s} {a.shape:14s} t={a.threads} {k:14s} {m:8.3f} ms  {m / base:5.2f}x b2b")


if __name__ == "__main__":
    main()
