"""Channels-last A/B on a GPU: GPU-resident latency (device buffers, execute_async, CUDA
events, CUDA graphs on; median of 30 runs) of FP16 engines built with the layout pass off
(DUCTILE_LAYOUT=nchw), forced on (=nhwc: every conv channels last) and as the builder
chooses by default (the backend's wish, kept when the timed channels-last engine wins),
same process, same card, per shape; plus the layer counts of each engine (convs channels
last, Transposes). A measurement for notes, not a test.
    python3 scripts/cuda_layout_ab.py MODEL.onnx[,MODEL2.onnx] [--shapes 1,8,32] [--precision fp16]"""
import argparse
import collections
import json
import os
import statistics
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import cuda_latency  # noqa: E402
import ductile  # noqa: E402


def build(path, shapes, flags, layout):
    os.environ["DUCTILE_LAYOUT"] = layout
    try:
        return cuda_latency.engine(path, shapes, flags)
    finally:
        os.environ.pop("DUCTILE_LAYOUT", None)


def summary(e):
    info = [l for l in json.loads(e.layer_info)["Layers"] if l["Stage"] == "execute"]
    c = collections.Counter(l["LayerType"] + ("/" + l["Layout"] if l.get("Layout") else "") for l in info)
    return ", ".join(f"{k} {v}" for k, v in sorted(c.items(), key=lambda kv: -kv[1]))


def median_ms(e, ctx, shapes, i, stream):
    keep = []
    cuda_latency.bind(e, ctx, shapes, i, keep)
    torch.cuda.synchronize()
    with torch.cuda.stream(stream):
        for _ in range(10):
            ctx.execute_async_v3(stream.cuda_stream)
        t = cuda_latency.timed(ctx, stream, 30)
    stream.synchronize()
    return statistics.median(a.elapsed_time(b) for a, b in t)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("models")
    ap.add_argument("--batches", default="1,8,32")
    ap.add_argument("--precision", default="fp16")
    args = ap.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    flags = cuda_latency.FLAGS[args.precision]
    print(f"{torch.cuda.get_device_name()}, {args.precision}, CUDA graphs on, median ms of 30 (GPU-resident)")
    print(f"{'model':<14} {'batch':>5} {'nchw':>8} {'nhwc':>8} {'default':>8} {'nhwc/nchw speedup':>18}")
    for path in args.models.split(","):
        name = os.path.basename(path)[:-5]
        shapes = {"input": [(b, 3, 224, 224) for b in batches]}
        if len(batches) < 3:
            shapes["input"] = (shapes["input"] * 3)[:3]
        engines = {lay: build(path, shapes, flags, lay) for lay in ("nchw", "nhwc", "default")}
        for lay, e in engines.items():
            print(f"  {name} {lay}: {summary(e)}", flush=True)
        stream = torch.cuda.Stream()
        ctxs = {lay: e.create_execution_context() for lay, e in engines.items()}
        for i, b in enumerate(batches):
            ms = {lay: median_ms(engines[lay], ctxs[lay], shapes, i, stream) for lay in engines}
            print(f"{name:<14} {b:>5} {ms['nchw']:8.3f} {ms['nhwc']:8.3f} {ms['default']:8.3f} "
                  f"{ms['nchw'] / ms['nhwc']:18.2f}", flush=True)


if __name__ == "__main__":
    main()
