"""A/B of builder and kernel switches for bert_small on CUDA in one process: the suite's
bert_small.onnx built once per variant (each a set of environment variables read at build:
DUCTILE_FUSE_QKV, DUCTILE_FUSE_NORM, DUCTILE_CUDA_ATTENTION, ...), each engine one profile
spanning 1x16 / 8x128 / 8x512 (min / opt / max, as bench_cuda.py), then per shape the
GPU-resident median latency (CUDA graphs on; scripts/cuda_latency.py's binding and CUDA-event
timing) of all engines in alternating rounds, so drift hits them alike, and the largest
difference of each output from the first variant's. A measurement for notes, not a test.
    python3 bench/cuda_bert_ab.py [models dir] [--precision fp16] [--rounds 5]
        [--variants "separate:DUCTILE_FUSE_QKV=0 packed:DUCTILE_FUSE_QKV=1"]
A variant is name:VAR=value[,VAR=value...] (name: alone, the defaults); the first is the
reference of the ratio and difference columns."""
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
    att = [l.get("Tactics") for l in ls if l["LayerType"] == "FusedAttention"][:1]
    return len(ls), {op: ops.count(op) for op in sorted(set(ops))}, att


def parse(spec):
    out = []
    for tok in spec.split():
        name, _, envs = tok.partition(":")
        out.append((name, dict(kv.split("=", 1) for kv in envs.split(",") if kv)))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="?", default=os.environ.get("DUCTILE_MODELS", "../shared/models"))
    ap.add_argument("--precision", default="fp16", choices=list(FLAGS))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--variants", default="separate:DUCTILE_FUSE_QKV=0 packed:DUCTILE_FUSE_QKV=1")
    args = ap.parse_args()
    path = os.path.join(os.path.abspath(args.models), "bert_small.onnx")
    engines = {}
    for name, env in parse(args.variants):
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        engines[name] = engine(path, SHAPES, FLAGS[args.precision])
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k)
            else:
                os.environ[k] = v
        n, c, att = counts(engines[name])
        print(f"{name} {env}: {n} layers executed, {c}, attention tactics (1 wmma, 2 cores, 3 mma, 4 mma_split) "
              f"{att}", flush=True)
    names = list(engines)
    stream = torch.cuda.Stream()
    print(f"{'shape':<10} " + " ".join(f"{n + ' ms':>14}" for n in names) + " " +
          " ".join(f"{n + '/' + names[0]:>18} {'max|diff|':>10}" for n in names[1:]) +
          f"   (median of {args.rounds} rounds x 30 runs, graphs on, {args.precision})")
    n_in = len(SHAPES)
    for i in range(3):
        ctx, keep = {}, []
        for name, e in engines.items():
            ctx[name] = e.create_execution_context()
            bind(e, ctx[name], SHAPES, i, keep)
        # The same inputs for all: the first binding's inputs copied into the others'.
        for v in range(1, len(names)):
            for k in range(n_in):
                keep[v * (n_in + 1) + k].copy_(keep[k])
        torch.cuda.synchronize()
        med = {name: [] for name in engines}
        with torch.cuda.stream(stream):
            for name in engines:
                for _ in range(8):
                    ctx[name].execute_async_v3(stream.cuda_stream)
            for r in range(args.rounds):
                for name in (names if r % 2 == 0 else reversed(names)):
                    t = timed(ctx[name], stream, 30)
                    stream.synchronize()
                    med[name].append(statistics.median(a.elapsed_time(b) for a, b in t))
        stream.synchronize()
        outs = [keep[v * (n_in + 1) + n_in].float() for v in range(len(names))]
        m = {name: statistics.median(v) for name, v in med.items()}
        shape = "x".join(map(str, SHAPES["input_ids"][i]))
        print(f"{shape:<10} " + " ".join(f"{m[n]:14.4f}" for n in names) + " " +
              " ".join(f"{m[n] / m[names[0]]:18.3f} {(outs[v] - outs[0]).abs().max().item():10.2e}"
                       for v, n in enumerate(names) if v), flush=True)


if __name__ == "__main__":
    main()
