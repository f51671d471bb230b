"""Per-layer GPU profiles and an FP16 accuracy probe, for finding where ductile's CUDA time goes.

Exports bench_cuda's PyTorch models (random weights, dynamic axes), then for each model and
shape runs `ductile --device=cuda [--fp16] --dumpProfile --exportProfile` and keeps the top
layers; and for each model compares, at its first shape, ductile fp32/fp16 and PyTorch fp16
against PyTorch fp32 (rel L2), so an FP16 error can be told apart from the model's own range.
    python3 scripts/cuda_profile.py OUTDIR [model,...]
Runs on the GPU machine only."""
import json
import os
import subprocess
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "bench"))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
import bench_cuda  # noqa: E402
import ductile  # noqa: E402

out = sys.argv[1]
models = (sys.argv[2] if len(sys.argv) > 2 else "resnet50,mobilenet_v2,seg_lraspp,bert_small,superres").split(",")
os.makedirs(out, exist_ok=True)
for name in models:
    model, shapes, path, ex = bench_cuda.export_named(name, out)
    # accuracy probe at the first shape
    with torch.inference_mode():
        ref = model(*ex).float()
        mh = model.half() if True else None
        got16 = mh(*[x.half() if x.is_floating_point() else x for x in ex]).float()
        model.float()
    probe = {"model": name, "torch_fp16_rel_l2": bench_cuda.rel_l2(got16, ref),
             "ref_abs_mean": float(ref.abs().mean()), "ref_abs_max": float(ref.abs().max())}
    for prec in ("fp32", "fp16"):
        e, _ = bench_cuda.build_engine(path, shapes, prec)
        run = bench_cuda.ductile_runner(e, shapes, 0, list(ex))
        run()
        torch.cuda.synchronize()
        probe[f"ductile_{prec}_rel_l2"] = bench_cuda.rel_l2(next(iter(run.outs.values())).float(), ref)
        del run, e
    print("PROBE", json.dumps(probe), flush=True)
    for i in range(3):
        spec = ",".join(f"{n}:{'x'.join(map(str, s[i]))}" for n, s in shapes.items())
        mn = ",".join(f"{n}:{'x'.join(map(str, s[0]))}" for n, s in shapes.items())
        mx = ",".join(f"{n}:{'x'.join(map(str, s[2]))}" for n, s in shapes.items())
        for prec in ("fp32", "fp16"):
            tag = f"{name}_{i}_{prec}"
            cmd = ["./build/ductile", f"--onnx={path}", "--device=cuda", f"--minShapes={mn}", f"--optShapes={spec}",
                   f"--maxShapes={mx}", f"--shapes={spec}", "--iterations=30", "--warmUp=100", "--duration=0",
                   "--dumpProfile", f"--exportProfile={out}/prof_{tag}.json"] + (["--fp16"] if prec == "fp16" else [])
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
            txt = r.stdout + r.stderr
            with open(f"{out}/prof_{tag}.log", "w") as f:
                f.write(txt)
            lat = [l for l in txt.splitlines() if l.startswith("Latency")]
            print(f"== {tag} {spec} rc={r.returncode} {lat[0] if lat else ''}", flush=True)
            # the profile table: time share per tactic, then the top layers
            rows = []
            for l in txt.splitlines():
                f = l.split()
                if len(f) >= 5 and f[0].replace(".", "").isdigit() and "." in f[3]:
                    try:
                        rows.append((float(f[2]), f[3], f[4]))
                    except ValueError:
                        pass
            agg = {}
            for pct, tac, _ in rows:
                agg[tac] = agg.get(tac, 0.0) + pct
            print("    by tactic:", ", ".join(f"{t} {p:.1f}%" for t, p in sorted(agg.items(), key=lambda x: -x[1])[:10]), flush=True)
            for pct, tac, layer in sorted(rows, reverse=True)[:6]:
                print(f"    {pct:5.1f}% {tac:32s} {layer[:90]}", flush=True)
