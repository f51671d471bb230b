"""GPU-resident latency of CUDA engines: inputs and outputs in device memory (torch tensors),
execute_async on a torch stream, timed with CUDA events; median of 30 runs after a warm-up,
with CUDA graphs off and on (two contexts on one engine), and the first two runs at each shape
apart (the first runs kernel by kernel, the second records the graph). A measurement for notes
and reports, not a test. --precision: fp32 (default), fp16, bf16, tf32, or several,
comma-separated (one row per model, shape and precision; engine I/O is float32 in all of them).
    python3 scripts/cuda_latency.py [models dir] [--precision=fp32,fp16,bf16] [--models=superres,bert_small]"""
import argparse
import os
import statistics
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import ductile  # noqa: E402

FLAGS = {"fp32": (), "fp16": (ductile.BuilderFlag.FP16,), "bf16": (ductile.BuilderFlag.BF16,),
         "tf32": (ductile.BuilderFlag.TF32,)}
CASES = [
    ("superres.onnx", {"input": [(1, 1, 224, 224), (1, 1, 512, 512), (1, 1, 1024, 1024)]}),
    ("mobilenet_v2.onnx", {"input": [(1, 3, 224, 224), (8, 3, 224, 224), (32, 3, 224, 224)]}),
    ("seg_lraspp.onnx", {"input_1": [(1, 3, 512, 512), (1, 3, 1024, 1024), (1, 3, 1600, 1600)]}),
    ("bert_small.onnx", {"input_ids": [(1, 128), (8, 128), (8, 512)], "attention_mask": [(1, 128), (8, 128), (8, 512)]}),
    # bench/make_resnet50.py's, where it was made into the models dir (skipped when missing)
    ("resnet50.onnx", {"input": [(1, 3, 224, 224), (8, 3, 224, 224), (32, 3, 224, 224)]}),
]
DT = {np.dtype(np.float32): torch.float32, np.dtype(np.int64): torch.int64}


def engine(path, shapes, flags):
    b = ductile.Builder()
    net = b.parse_onnx(path)
    prof = b.create_optimization_profile()
    for name, s in shapes.items():
        prof.set_shape(name, s[0], s[1], s[2])
    cfg = b.create_builder_config()
    cfg.device = "cuda"
    for f in flags:
        cfg.set_flag(f)
    cfg.add_optimization_profile(prof)
    return b.build_engine(net, cfg)


def bind(e, ctx, shapes, i, keep):
    """Binds fresh device tensors at shape i to every input and output of ctx."""
    for name, s in shapes.items():
        ctx.set_input_shape(name, s[i])
        dt = DT[np.dtype(e.get_tensor_dtype(name))]
        t = (torch.randint(0, 2, s[i], device="cuda", dtype=dt) if "mask" in name
             else torch.randint(0, 2048, s[i], device="cuda", dtype=dt) if dt == torch.int64
             else torch.randn(s[i], device="cuda", dtype=dt))
        keep.append(t)
        ctx.set_tensor_address(name, t.data_ptr())
    for name in e.io_tensor_names:
        if e.get_tensor_mode(name) == ductile.TensorIOMode.OUTPUT:
            o = torch.empty(ctx.get_tensor_shape(name), device="cuda", dtype=DT[np.dtype(e.get_tensor_dtype(name))])
            keep.append(o)
            ctx.set_tensor_address(name, o.data_ptr())


def timed(ctx, stream, n):
    """n runs on the stream, each between two CUDA events."""
    events = []
    for _ in range(n):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        ctx.execute_async_v3(stream.cuda_stream)
        b.record()
        events.append((a, b))
    return events


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="?", default=os.environ.get("DUCTILE_MODELS", "../shared/models"))
    ap.add_argument("--precision", default="fp32")
    # dest "only": the positional `models` (the directory) has that dest already, and an
    # option of the same dest overwrote the directory with the names.
    ap.add_argument("--models", dest="only", default="", help="comma-separated model names (default: all)")
    args = ap.parse_args()
    precisions = args.precision.split(",")
    for p in precisions:
        if p not in FLAGS:
            sys.exit(f"--precision: '{p}' is not one of {', '.join(FLAGS)}")
    models = os.path.abspath(args.models)
    print(f"{'model':<18} {'prec':<5} {'shape':<28} {'graphs off':>10} {'graphs on':>10} {'first run':>10} "
          f"{'capture run':>12}   (median ms of 30 runs; first / second run at the shape)")
    only = set(filter(None, args.only.split(",")))
    cases = [c for c in CASES if (not only or c[0][:-5] in only) and os.path.exists(os.path.join(args.models, c[0]))]
    for (fname, shapes), prec in ((c, p) for c in cases for p in precisions):
        e = engine(os.path.join(models, fname), shapes, FLAGS[prec])
        on, off = e.create_execution_context(), e.create_execution_context()
        off.cuda_graphs = 0
        stream = torch.cuda.Stream()
        for i in range(3):
            keep = []
            bind(e, on, shapes, i, keep)
            bind(e, off, shapes, i, keep)
            torch.cuda.synchronize()
            with torch.cuda.stream(stream):
                first = timed(on, stream, 2)   # kernel by kernel (plans, workspace); then recorded
                for _ in range(5):
                    on.execute_async_v3(stream.cuda_stream)
                t_on = timed(on, stream, 30)
                for _ in range(6):
                    off.execute_async_v3(stream.cuda_stream)
                t_off = timed(off, stream, 30)
            stream.synchronize()
            med = [statistics.median(a.elapsed_time(b) for a, b in t) for t in (t_off, t_on)]
            shape = ",".join("x".join(map(str, s[i])) for s in shapes.values())
            print(f"{fname[:-5]:<18} {prec:<5} {shape:<28} {med[0]:10.3f} {med[1]:10.3f} "
                  f"{first[0][0].elapsed_time(first[0][1]):10.3f} {first[1][0].elapsed_time(first[1][1]):12.3f}",
                  flush=True)


if __name__ == "__main__":
    main()
