"""make bench-cuda: ductile's CUDA engines against PyTorch on the same GPU, at the same shapes.

Each model is built in PyTorch from its definition with random weights (fixed seed), exported
to ONNX with dynamic axes (as users export), and built into one ductile engine whose profile
spans the benchmarked shapes (min = smallest, opt = middle, max = largest). Then, per shape,
median GPU-resident latency (inputs and outputs in device memory, CUDA events around each
call, after a warm-up) of:
    ductile      the engine (FP16 unless --precision says otherwise; CUDA graphs on)
    eager        PyTorch, model.half(), torch.inference_mode()
    compile      torch.compile(dynamic=True)
    graphs       torch.compile(mode="reduce-overhead") (CUDA graphs; recompiles per shape)
and the error of ductile's output against PyTorch's float32 output (rel L2). Writes
bench/results/cuda-bench-<date>.{md,json} with the card's name and the commit.

    python3 bench/bench_cuda.py [--models a,b] [--modes eager,compile,graphs] [--precision fp16]
                                [--commit SHA] [--out DIR] [--iters N]
Runs on a machine with an NVIDIA GPU, PyTorch and torchvision (the project's H200 machine);
not part of the tests. Every loop is bounded."""
import argparse
import copy
import datetime
import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
import ductile  # noqa: E402


# ---- the models ------------------------------------------------------------------------

class SuperResolutionNet(nn.Module):
    """PyTorch's export tutorial net (the suite's superres.onnx)."""

    def __init__(self, upscale=3):
        super().__init__()
        self.relu = nn.ReLU()
        self.conv1 = nn.Conv2d(1, 64, 5, 1, 2)
        self.conv2 = nn.Conv2d(64, 64, 3, 1, 1)
        self.conv3 = nn.Conv2d(64, 32, 3, 1, 1)
        self.conv4 = nn.Conv2d(32, upscale ** 2, 3, 1, 1)
        self.shuffle = nn.PixelShuffle(upscale)

    def forward(self, x):
        x = self.relu(self.conv1(x))
        x = self.relu(self.conv2(x))
        x = self.relu(self.conv3(x))
        return self.shuffle(self.conv4(x))


class SegOut(nn.Module):
    """torchvision's LR-ASPP returns a dict; the suite's seg_lraspp returns the logit map."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x):
        return self.m(x)["out"]


class BertOut(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, input_ids, attention_mask):
        return self.m(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


def make_model(name):
    import torchvision
    if name == "superres":
        return SuperResolutionNet(), {"input": [(1, 1, 224, 224), (1, 1, 512, 512), (1, 1, 1024, 1024)]}, {"input": {0: "batch", 2: "height", 3: "width"}}
    if name == "mobilenet_v2":
        return torchvision.models.mobilenet_v2(weights=None), {"input": [(1, 3, 224, 224), (8, 3, 224, 224), (32, 3, 224, 224)]}, {"input": {0: "batch"}}
    if name == "resnet50":
        return torchvision.models.resnet50(weights=None), {"input": [(1, 3, 224, 224), (8, 3, 224, 224), (128, 3, 224, 224)]}, {"input": {0: "batch"}}
    if name == "efficientnet_b0":
        return torchvision.models.efficientnet_b0(weights=None), {"input": [(1, 3, 224, 224), (8, 3, 224, 224), (32, 3, 224, 224)]}, {"input": {0: "batch"}}
    if name == "seg_lraspp":
        m = torchvision.models.segmentation.lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=1)
        return SegOut(m), {"input": [(1, 3, 512, 512), (1, 3, 1024, 1024), (1, 3, 1600, 1600)]}, {"input": {2: "image_height", 3: "image_width"}}
    if name == "bert_small":
        from transformers import BertConfig, BertModel
        cfg = BertConfig(vocab_size=2048, hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                         intermediate_size=1024, max_position_embeddings=512)
        return (BertOut(BertModel(cfg)),
                {"input_ids": [(1, 16), (8, 128), (8, 512)], "attention_mask": [(1, 16), (8, 128), (8, 512)]},
                {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}})
    raise SystemExit(f"unknown model {name}")


def calibrate_batchnorm(model, shapes):
    """Random initialisation leaves BatchNorm's running statistics at mean 0, variance 1, and
    activations then shrink layer after layer: mobilenet_v2's logits come out near 1e-9, below
    float16's range, and every FP16 engine (PyTorch's too) reads rel-L2 1.0 against float32.
    A few training-mode passes over random inputs (cumulative averages) give statistics of the
    model's own activations, as a trained model has. Returns the model in eval mode."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if bns:
        for m in bns:
            m.reset_running_stats()
            m.momentum = None
        model.train()
        gen = torch.Generator(device="cuda").manual_seed(3)
        with torch.no_grad():
            for _ in range(4):
                model(*inputs_for(shapes, 0, torch.float32, gen, batch=4))
    return model.eval()


def inputs_for(shapes, i, dtype, gen, batch=None):
    out = []
    for name, s in shapes.items():
        shape = (batch,) + tuple(s[i][1:]) if batch else s[i]  # BatchNorm's training pass wants batch > 1
        if name == "attention_mask":
            out.append(torch.ones(shape, dtype=torch.int64, device="cuda"))
        elif name == "input_ids":
            out.append(torch.randint(0, 2048, shape, dtype=torch.int64, device="cuda", generator=gen))
        else:
            out.append(torch.randn(shape, dtype=torch.float32, device="cuda", generator=gen).to(dtype))
    return out


def export_named(name, outdir):
    """bench_cuda's model `name` (seed 0, BatchNorm calibrated) exported to outdir/name.onnx:
    (model, shapes, path, example inputs)."""
    torch.manual_seed(0)
    model, shapes, dyn = make_model(name)
    model = calibrate_batchnorm(model.cuda(), shapes)
    path = os.path.join(outdir, name + ".onnx")
    return model, shapes, path, export(model, shapes, dyn, path)


def export(model, shapes, dyn, path):
    """The model to ONNX at `path` with its dynamic axes (opset 17, TorchScript exporter; the
    dynamo exporter at opset 18 where the TorchScript one is gone)."""
    gen = torch.Generator(device="cuda").manual_seed(1)
    ex_in = tuple(inputs_for(shapes, 0, torch.float32, gen))
    names = list(shapes)
    try:
        torch.onnx.export(model, ex_in, path, input_names=names, output_names=["output"], dynamic_axes=dyn,
                          opset_version=17, dynamo=False)
    except Exception as err:  # noqa: BLE001 - the TorchScript exporter may be gone: the new one
        print(f"TorchScript export failed ({err}); exporting with dynamo=True", flush=True)
        torch.onnx.export(model, ex_in, path, input_names=names, output_names=["output"], dynamic_axes=dyn,
                          opset_version=18, dynamo=True)
    return ex_in


# ---- timing -----------------------------------------------------------------------------

def time_calls(fn, iters, warmup=5):
    """Median ms of fn() on the current stream by CUDA events, and the first call's ms."""
    s = torch.cuda.current_stream()
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record(s)
    fn()
    b.record(s)
    b.synchronize()
    first = a.elapsed_time(b)
    for _ in range(warmup):
        fn()
    ev = []
    for _ in range(iters):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record(s)
        fn()
        b.record(s)
        ev.append((a, b))
    torch.cuda.synchronize()
    return statistics.median(x.elapsed_time(y) for x, y in ev), first


def rel_l2(a, b):
    a = a.double().flatten()
    b = b.double().flatten()
    return float(torch.linalg.vector_norm(a - b) / max(float(torch.linalg.vector_norm(b)), 1e-30))


# ---- ductile ----------------------------------------------------------------------------

def build_engine(onnx_path, shapes, precision):
    b = ductile.Builder()
    net = b.parse_onnx(onnx_path)
    prof = b.create_optimization_profile()
    for name, s in shapes.items():
        prof.set_shape(name, s[0], s[1], s[2])
    cfg = b.create_builder_config()
    cfg.device = "cuda"
    if precision == "fp16":
        cfg.set_flag(ductile.BuilderFlag.FP16)
    elif precision == "bf16":
        cfg.set_flag(ductile.BuilderFlag.BF16)
    cfg.add_optimization_profile(prof)
    t0 = time.perf_counter()
    e = b.build_engine(net, cfg)
    return e, time.perf_counter() - t0


def ductile_runner(e, shapes, i, xs):
    ctx = e.create_execution_context()
    keep = list(xs)
    for (name, s), x in zip(shapes.items(), xs):
        ctx.set_input_shape(name, s[i])
        ctx.set_tensor_address(name, x.data_ptr())
    outs = {}
    for name in e.io_tensor_names:
        if e.get_tensor_mode(name) == ductile.TensorIOMode.OUTPUT:
            dt = torch.float32 if np.dtype(e.get_tensor_dtype(name)) == np.float32 else torch.float16
            o = torch.empty(tuple(ctx.get_tensor_shape(name)), dtype=dt, device="cuda")
            keep.append(o)
            outs[name] = o
            ctx.set_tensor_address(name, o.data_ptr())
    stream = torch.cuda.current_stream().cuda_stream

    def run():
        ctx.execute_async_v3(stream)
    run.ctx, run.keep, run.outs = ctx, keep, outs
    return run


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="superres,mobilenet_v2,resnet50,seg_lraspp,bert_small")
    ap.add_argument("--modes", default="eager,compile,graphs")
    ap.add_argument("--precision", default="fp16", choices=["fp32", "fp16", "bf16"])
    ap.add_argument("--commit", default=os.environ.get("DUCTILE_COMMIT", "unknown"))
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--nchw-too", action="store_true",
                    help="also time an engine built with the layout pass off (DUCTILE_LAYOUT=nchw): ductile_nchw_ms")
    ap.add_argument("--graphs-shapes", type=int, default=2,
                    help="reduce-overhead at this many of the smallest shapes (it recompiles per shape)")
    ap.add_argument("--append", action="store_true",
                    help="keep the rows of other models already in today's table under --out (a run of the five "
                         "models split over several processes, each timing both engines side by side, as on a "
                         "machine whose calls are capped at 10 minutes)")
    args = ap.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    torch.backends.cudnn.benchmark = True
    # The float32 reference must be float32: PyTorch runs convolutions in TF32 by default
    # (cudnn.allow_tf32), which put ductile's exact float32 engine 1.8e-2 away from it on a
    # BatchNorm-calibrated resnet50 (H200, session 6).
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    card = torch.cuda.get_device_name()
    rows = kept_rows(args) if args.append else []
    tmp = tempfile.mkdtemp(prefix="bench_cuda_")
    half = torch.float16 if args.precision == "fp16" else torch.bfloat16 if args.precision == "bf16" else torch.float32
    for name in [m for m in args.models.split(",") if m]:
        torch.manual_seed(0)
        try:
            model, shapes, dyn = make_model(name)
        except ImportError as err:
            print(f"{name}: skipped ({err})", flush=True)
            continue
        model = calibrate_batchnorm(model.cuda(), shapes)
        path = os.path.join(tmp, name + ".onnx")
        t0 = time.perf_counter()
        export(model, shapes, dyn, path)
        print(f"{name}: exported in {time.perf_counter() - t0:.1f} s", flush=True)
        engine, build_s = build_engine(path, shapes, args.precision)
        print(f"{name}: ductile engine ({args.precision}) built in {build_s:.1f} s", flush=True)
        engine_nchw = None
        if args.nchw_too:  # the "before" of the layout pass, same export, same process
            os.environ["DUCTILE_LAYOUT"] = "nchw"
            try:
                engine_nchw, _ = build_engine(path, shapes, args.precision)
            finally:
                os.environ.pop("DUCTILE_LAYOUT", None)
        mh = copy.deepcopy(model).to(half) if half != torch.float32 else model
        compiled = torch.compile(mh, dynamic=True) if "compile" in modes else None
        for i in range(3):
            shape = ",".join("x".join(map(str, s[i])) for s in shapes.values())
            x32 = inputs_for(shapes, i, torch.float32, torch.Generator(device="cuda").manual_seed(2 + i))
            xh = [x.to(half) if x.is_floating_point() else x for x in x32]
            row = {"model": name, "shape": shape, "card": card, "commit": args.commit, "precision": args.precision,
                   "build_s": round(build_s, 2),
                   # layers the builder kept channels last (builder/layout.c; 0: it chose NCHW)
                   "nhwc_layers": sum(1 for l in json.loads(engine.layer_info)["Layers"] if l.get("Layout") == "NHWC")}
            with torch.inference_mode():
                ref = model(*x32).float()
                run = ductile_runner(engine, shapes, i, x32)
                row["ductile_ms"], row["ductile_first_ms"] = time_calls(run, args.iters)
                out = next(iter(run.outs.values()))
                row["ductile_rel_l2"] = rel_l2(out.float(), ref)
                row["ductile_memory_mib"] = None
                get_mem = getattr(run.ctx, "memory_size", None) or getattr(run.ctx, "device_memory_size", None)
                if get_mem is not None:
                    try:
                        row["ductile_memory_mib"] = round((get_mem() if callable(get_mem) else get_mem) / 2**20, 1)
                    except Exception:  # noqa: BLE001 - a report, not a test
                        pass
                del run
                if engine_nchw is not None:
                    run = ductile_runner(engine_nchw, shapes, i, x32)
                    row["ductile_nchw_ms"], _ = time_calls(run, args.iters)
                    del run
                if "eager" in modes:
                    row["eager_ms"], _ = time_calls(lambda: mh(*xh), args.iters)
                if compiled is not None:
                    row["compile_ms"], row["compile_first_ms"] = time_calls(lambda: compiled(*xh), args.iters)
                if "graphs" in modes and i < min(args.graphs_shapes, 2):  # recompiles per shape; the largest is left out, as in the issue
                    g = torch.compile(mh, mode="reduce-overhead")

                    def step():
                        torch.compiler.cudagraph_mark_step_begin()
                        return g(*xh)
                    row["graphs_ms"], row["graphs_first_ms"] = time_calls(step, args.iters)
                    del g
            best = min(row[k] for k in ("eager_ms", "compile_ms", "graphs_ms") if k in row) if any(
                k in row for k in ("eager_ms", "compile_ms", "graphs_ms")) else None
            row["speedup_vs_best"] = round(best / row["ductile_ms"], 3) if best else None
            rows.append(row)
            print(json.dumps(row), flush=True)
        del engine, engine_nchw, compiled
        torch.cuda.empty_cache()
        write(rows, args)  # after each model: a run cut short still leaves its rows


def table_base(out):
    return os.path.join(out, f"cuda-bench-{datetime.date.today().isoformat()}")


def kept_rows(args):
    """Today's rows under --out of the models this run does not measure (--append)."""
    try:
        with open(table_base(args.out) + ".json") as f:
            old = json.load(f)
    except (OSError, ValueError):
        return []
    again = {m for m in args.models.split(",") if m}
    return [r for r in old if r.get("model") not in again]


def write(rows, args):
    os.makedirs(args.out, exist_ok=True)
    day = datetime.date.today().isoformat()
    base = table_base(args.out)
    with open(base + ".json", "w") as f:
        json.dump(rows, f, indent=1)

    def fmt(v):
        return "-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)
    head = ["model", "shape", "ductile_ms"] + (["ductile_nchw_ms"] if args.nchw_too else []) + ["eager_ms", "compile_ms", "graphs_ms", "speedup_vs_best",
            "ductile_first_ms", "ductile_rel_l2", "ductile_memory_mib", "nhwc_layers", "build_s"]
    lines = [f"# ductile CUDA vs PyTorch, {rows[0]['card'] if rows else '?'}, {rows[0]['precision'] if rows else ''}, "
             f"commit {args.commit}, {day}", "",
             "Median ms, GPU-resident (CUDA events); speedup = fastest PyTorch variant / ductile; "
             "rel_l2 against PyTorch float32.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lines.append("| " + " | ".join(fmt(r.get(k)) for k in head) + " |")
    with open(base + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
