"""Median CPU time of one engine's runs on one thread, for A/B comparisons on a shared machine.

On a loaded machine (the 2-core dev box with several engineers: load 4-7) wall-clock medians
swing by 2x between rounds, whoever runs. On one thread both engines compute on the calling
thread (ductile's pool of 1 and onnxruntime's intra_op_num_threads = 1), so the calling
thread's CPU time (time.thread_time) leaves out the time other processes hold the core; what
remains of the load (caches, memory bandwidth) hits both engines alike when the runs
alternate. Used for bench/results/cpu-mnv-2026-12-02-s8.md.

    PYTHONPATH=python python bench/cpu_time.py ROOT ENGINE MODEL SHAPES RUNS [FLAGS]
      ROOT    a checkout whose python/ and build/ to load (compare two builds: two ROOTs)
      ENGINE  ductile or ort
      SHAPES  JSON {input: [dims]}, e.g. '{"input": [2, 3, 224, 224]}'
      FLAGS   ductile builder flags, comma separated (bf16, fp16); none by default
Prints one JSON line: cpu_ms (median), cpu_min, wall_ms (median). Run each engine in its own
process, alternating, several rounds (bench.py explains why)."""
import importlib.util
import json
import statistics
import sys
import time


def main():
    root, engine, model, shapes, runs = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4]), int(sys.argv[5])
    sys.path.insert(0, root + "/python")
    spec = importlib.util.spec_from_file_location("worker", root + "/bench/worker.py")
    w = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(w)
    import numpy as np
    profile = {n: [s, s, s] for n, s in shapes.items()}
    flags = [f for f in (sys.argv[6] if len(sys.argv) > 6 else "").split(",") if f]
    run, dtypes, _ = w.make_ductile(model, profile, 1, flags) if engine == "ductile" else w.make_ort(model, 1)
    feeds = w.feeds_for({k: tuple(v) for k, v in shapes.items()}, dtypes, np.random.default_rng(0))
    for _ in range(3):
        run(feeds)
    cpu, wall = [], []
    for _ in range(runs):
        c, t = time.thread_time(), time.perf_counter()
        run(feeds)
        cpu.append((time.thread_time() - c) * 1e3)
        wall.append((time.perf_counter() - t) * 1e3)
    print(json.dumps({"cpu_ms": round(statistics.median(cpu), 3), "cpu_min": round(min(cpu), 3),
                      "wall_ms": round(statistics.median(wall), 3)}))


if __name__ == "__main__":
    sys.exit(main())
