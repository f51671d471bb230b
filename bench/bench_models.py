"""Side-by-side latency of ductile and onnxruntime on the model suite.

Both run in this process on the same inputs with the same thread count; the table reports
median milliseconds and the ratio ort/ductile (> 1 means ductile is faster). Usage:
    PYTHONPATH=python python bench/bench_models.py [--threads 2] [--runs 10] [model ...]
"""
import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np
import onnxruntime as ort

import ductile

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.abspath(os.environ.get("DUCTILE_MODELS", os.path.join(HERE, "..", "..", "shared", "models")))

# model: (profile {input: (min, opt, max)}, shapes to time)
SUITE = {
    "superres.onnx": ({"input": ((1, 1, 64, 64), (1, 1, 224, 224), (4, 1, 512, 512))},
                      [{"input": (1, 1, 224, 224)}, {"input": (1, 1, 512, 512)}]),
    "seg_lraspp.onnx": ({"input_1": ((1, 3, 512, 512), (1, 3, 1024, 1024), (1, 3, 1600, 1600))},
                        [{"input_1": (1, 3, 512, 512)}, {"input_1": (1, 3, 1024, 1024)},
                         {"input_1": (1, 3, 1600, 1600)}]),
    "mobilenet_v2.onnx": ({"input": ((1, 3, 224, 224), (8, 3, 224, 224), (32, 3, 224, 224))},
                          [{"input": (1, 3, 224, 224)}, {"input": (32, 3, 224, 224)}]),
    "bert_small.onnx": ({"input_ids": ((1, 1), (4, 128), (8, 512)), "attention_mask": ((1, 1), (4, 128), (8, 512))},
                        [{"input_ids": (1, 128), "attention_mask": (1, 128)},
                         {"input_ids": (8, 128), "attention_mask": (8, 128)},
                         {"input_ids": (1, 512), "attention_mask": (1, 512)}]),
}


def feeds_for(shapes, rng):
    out = {}
    for name, shape in shapes.items():
        if name == "input_ids":
            out[name] = rng.integers(0, 2048, shape).astype(np.int64)
        elif name == "attention_mask":
            out[name] = np.ones(shape, np.int64)
        else:
            out[name] = rng.standard_normal(shape).astype(np.float32)
    return out


def median_ms(fn, runs, warmup=2):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("models", nargs="*")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    print(f"machine: {platform.node()} {platform.processor()} cpus={os.cpu_count()} threads={args.threads}; "
          f"onnxruntime {ort.__version__}")
    print(f"{'model':<20} {'shape':<28} {'ductile ms':>11} {'ort ms':>9} {'ort/ductile':>12}")
    for model, (profile, shapes_list) in SUITE.items():
        if args.models and model not in args.models:
            continue
        path = os.path.join(MODELS, model)
        if not os.path.exists(path):
            print(f"{model}: skipped, not found under DUCTILE_MODELS={MODELS}")
            continue
        builder = ductile.Builder()
        network = builder.parse_onnx(path)
        prof = builder.create_optimization_profile()
        for name, (mn, op, mx) in profile.items():
            prof.set_shape(name, mn, op, mx)
        config = builder.create_builder_config()
        config.add_optimization_profile(prof)
        engine = builder.build_engine(network, config)
        ctx = engine.create_execution_context()
        ctx.set_threads(args.threads)
        so = ort.SessionOptions()
        so.intra_op_num_threads = args.threads
        sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        for shapes in shapes_list:
            feeds = feeds_for(shapes, rng)
            d = median_ms(lambda: ctx.run(feeds), args.runs)
            o = median_ms(lambda: sess.run(None, feeds), args.runs)
            label = ",".join("x".join(map(str, s)) for s in shapes.values())
            print(f"{model:<20} {label:<28} {d:>11.2f} {o:>9.2f} {o / d:>12.2f}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
