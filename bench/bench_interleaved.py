"""Like bench_models.py, for a machine shared with other work: ductile and onnxruntime runs
alternate one by one (so a burst of outside load hits both), and the table reports each side's
minimum and median. The ratio is taken of the minima, the least disturbed runs. Usage:
    PYTHONPATH=python python bench/bench_interleaved.py [--threads 2] [--runs 15] [model ...]
DUCTILE_LIB selects the library, so two builds can be compared by running this twice.
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np
import onnxruntime as ort

import ductile
from bench_models import MODELS, SUITE, feeds_for


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--cpu-time", action="store_true",
                    help="time process CPU time instead of wall time (1 thread: immune to "
                         "other load on a shared machine)")
    ap.add_argument("models", nargs="*")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    clock = time.process_time if args.cpu_time else time.perf_counter
    print(f"{'model':<20} {'shape':<22} {'ductile min/med':>16} {'ort min/med':>16} {'ort/ductile (min)':>18}")
    for model, (profile, shapes_list) in SUITE.items():
        if args.models and model not in args.models:
            continue
        path = os.path.join(MODELS, model)
        builder = ductile.Builder()
        network = builder.parse_onnx(path)
        prof = builder.create_optimization_profile()
        for name, (mn, op, mx) in profile.items():
            prof.set_shape(name, mn, op, mx)
        config = builder.create_builder_config()
        config.add_optimization_profile(prof)
        t0 = time.perf_counter()
        engine = builder.build_engine(network, config)
        build_ms = (time.perf_counter() - t0) * 1e3
        ctx = engine.create_execution_context()
        ctx.set_threads(args.threads)
        so = ort.SessionOptions()
        so.intra_op_num_threads = args.threads
        sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        for shapes in shapes_list:
            feeds = feeds_for(shapes, rng)
            d, o = [], []
            for i in range(args.runs + 2):
                t = clock()
                ctx.run(feeds)
                t1 = clock()
                sess.run(None, feeds)
                t2 = clock()
                if i >= 2:
                    d.append((t1 - t) * 1e3)
                    o.append((t2 - t1) * 1e3)
            label = ",".join("x".join(map(str, s)) for s in shapes.values())
            print(f"{model:<20} {label:<22} {min(d):>7.2f}/{statistics.median(d):<8.2f} "
                  f"{min(o):>7.2f}/{statistics.median(o):<8.2f} {min(o) / min(d):>18.2f}", flush=True)
        print(f"{model:<20} build {build_ms:.0f} ms", flush=True)


if __name__ == "__main__":
    sys.exit(main())
