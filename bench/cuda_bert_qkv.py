"""A/B of the packed Q, K, V projections (builder/fuse_qkv.c) on CUDA in one build and one
process: the suite's bert_small.onnx built twice (DUCTILE_FUSE_QKV=0 and default), each one
engine whose profile spans 1x16 / 8x128 / 8x512 (min / opt / max, as bench_cuda.py), then per
shape the GPU-resident median latency (CUDA graphs on; scripts/cuda_latency.py's binding and
CUDA-event timing) of both engines in alternating rounds, so drift hits both alike, and the
largest difference between their outputs. A measurement for notes, not a test.
    python3 bench/cuda_bert_qkv.py [models dir] [--precision fp16] [--rounds 5]"""
import argparse
import json
import os
import statistics
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "scripts"))
from cuda_latency import FLAGS, bind, engine, timed  # noqa: E402

SHAPES = {"input_ids": [(1, 16), (8, 128), (8, 512)], "attention_mask": [(1, 16), (8, 128), (8, 512)]}


def counts(e):
    ls = [l for l in json.loads(e.layer_info)["Layers"] if l["Stage"] == "execute"]
    ops = [l["LayerType"] for l in ls]
    return len(ls), {op: ops.count(op) for op in ("FusedMatMul", "FusedAttention", "Cast", "Reshape")}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="?", default=os.environ.get("DUCTILE_MODELS", "../shared/models"))
    ap.add_argument("--precision", default="fp16", choices=list(FLAGS))
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    path = os.path.join(os.path.abspath(args.models), "bert_small.onnx")
    engines = {}
    for name, env in (("separate", "0"), ("packed", "1")):
        os.environ["DUCTILE_FUSE_QKV"] = env
        engines[name] = engine(path, SHAPES, FLAGS[args.precision])
        n, c = counts(engines[name])
        print(f"{name}: {n} layers executed, {c}", flush=True)
    os.environ.pop("DUCTILE_FUSE_QKV")
    stream = torch.cuda.Stream()
    print(f"{'shape':<16} {'separate ms':>12} {'packed ms':>10} {'packed/sep':>10} {'max |diff|':>11}   "
          f"(median of {args.rounds} rounds x 30 runs, graphs on, {args.precision})")
    for i in range(3):
        ctx, keep, outs = {}, [], {}
        for name, e in engines.items():
            ctx[name] = e.create_execution_context()
            bind(e, ctx[name], SHAPES, i, keep)
        # The same inputs for both: the second binding's inputs copied into the first's.
        n_in = len(SHAPES)
        for k in range(n_in):
            keep[k].copy_(keep[n_in + 1 + k])
        torch.cuda.synchronize()
        med = {name: [] for name in engines}
        with torch.cuda.stream(stream):
            for name in engines:
                for _ in range(8):
                    ctx[name].execute_async_v3(stream.cuda_stream)
            for r in range(args.rounds):
                for name in (engines if r % 2 == 0 else reversed(list(engines))):
                    t = timed(ctx[name], stream, 30)
                    stream.synchronize()
                    med[name].append(statistics.median(a.elapsed_time(b) for a, b in t))
        stream.synchronize()
        outs = [keep[n_in], keep[2 * n_in + 1]]
        diff = (outs[0].float() - outs[1].float()).abs().max().item()
        m = {name: statistics.median(v) for name, v in med.items()}
        shape = "x".join(map(str, SHAPES["input_ids"][i]))
        print(f"{shape:<16} {m['separate']:12.4f} {m['packed']:10.4f} {m['packed'] / m['separate']:10.3f} {diff:11.2e}",
              flush=True)


if __name__ == "__main__":
    main()
