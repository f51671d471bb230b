"""Which change breaks superres' half engines on the GPU (session 13): rel-L2 of CUDA FP16 /
BF16 engines against the CPU float32 engine at 1x1x64x64 and 1x1x37x23, each setting in its
own process (the switches are read once per process). Runs on the GPU machine only.
    python3 scripts/cuda_superres_probe.py MODELS_DIR"""
import os
import subprocess
import sys

if len(sys.argv) > 2:  # child: one setting
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
    import numpy as np
    import ductile

    def build(device, flag):
        b = ductile.Builder()
        net = b.parse_onnx(os.path.join(sys.argv[1], "superres.onnx"))
        prof = b.create_optimization_profile()
        prof.set_shape("input", (1, 1, 16, 16), (1, 1, 64, 64), (1, 1, 128, 128))
        cfg = b.create_builder_config()
        cfg.device = device
        if flag:
            cfg.set_flag(getattr(ductile.BuilderFlag, flag))
        cfg.add_optimization_profile(prof)
        return b.build_engine(net, cfg)
    cpu = build("cpu", None).create_execution_context()
    for flag in ("FP16", "BF16"):
        e = build("cuda", flag)
        layers = [(l["LayerType"], l.get("Layout", ""), l.get("Tactics", "")) for l in
                  __import__("json").loads(e.layer_info)["Layers"] if l["Stage"] == "execute"]
        ctx = e.create_execution_context()
        for shape in ((1, 1, 64, 64), (1, 1, 37, 23)):
            x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
            want = cpu.run({"input": x})["output"]
            for run in range(3):  # kernel by kernel, recording, replay
                got = ctx.run({"input": x})["output"]
                err = float(np.linalg.norm((got - want).ravel()) / np.linalg.norm(want.ravel()))
                print(f"{sys.argv[2]:<45} {flag} {shape} run {run}: rel-L2 {err:.3e}", flush=True)
        print(f"{sys.argv[2]:<45} {flag} layers {layers}", flush=True)
    sys.exit(0)

for sw in ["", "DUCTILE_CUDNN_FUSED_HALF=0", "DUCTILE_LAYOUT_D2S=0", "DUCTILE_CUDNN_FUSED_HALF=0 DUCTILE_LAYOUT_D2S=0"]:
    env = dict(os.environ, **dict(kv.split("=") for kv in sw.split()))
    subprocess.run([sys.executable, __file__, sys.argv[1], sw or "defaults"], env=env, timeout=120)
