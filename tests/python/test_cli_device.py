"""`ductile --device=cuda`: the flag's value is checked, the build fails with the library's
message where there is no GPU (or no CUDA backend in the build), and on a GPU the outputs
equal the CPU run's on the same inputs (--loadInputs / --exportOutput), with every layer on
the GPU in --dumpLayerInfo."""
import json
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

import util

BIN = Path(os.environ.get("DUCTILE_CLI", util.REPO / "build" / "ductile"))
RUN_ONCE = ["--iterations=1", "--warmUp=0", "--duration=0"]
NO_GPU = "error: DUCTILE_ERR_UNSUPPORTED: no CUDA device found"
NO_BACKEND = ("error: DUCTILE_ERR_UNSUPPORTED: set_device: backend 'cuda', which this build of ductile "
              "lacks (built with CUDA=0)")


def run_cli(*args):
    if not BIN.exists():
        pytest.skip(f"{BIN} is not built (run make)")
    return subprocess.run([str(BIN), *map(str, args)], capture_output=True, text=True, timeout=600,
                          cwd=util.REPO)


def test_device_value_is_checked():
    r = run_cli("--onnx=x.onnx", "--device=gpu")
    assert r.returncode == 2
    assert r.stderr == "error: invalid value for --device: 'gpu' (expected cpu or cuda)\n"


def test_cuda_build_without_gpu_fails_with_the_library_message_or_matches_cpu(tmp_path):
    model = util.model_path("superres.onnx")
    x = np.random.default_rng(5).standard_normal((2, 1, 40, 36), dtype=np.float32)
    x.tofile(tmp_path / "x.bin")
    common = [f"--onnx={model}", "--shapes=input:2x1x40x36", f"--loadInputs=input:{tmp_path / 'x.bin'}", *RUN_ONCE]
    r = run_cli(*common, "--device=cuda", f"--exportOutput={tmp_path / 'gpu.json'}", "--dumpLayerInfo")
    if r.returncode == 1:
        assert r.stderr.strip() in (NO_GPU, NO_BACKEND), r.stderr
        pytest.skip("no CUDA device found" if r.stderr.strip() == NO_GPU else "built with CUDA=0")
    assert r.returncode == 0, r.stderr
    assert '"Kernel": "cuda.FusedConv"' in r.stdout and "cpu fallback" not in r.stdout
    # The second run records the CUDA graph; the summary gives the context's device memory.
    assert re.search(r"^Second run: [0-9.]+ ms \(records the CUDA graph\)$", r.stdout, re.M), r.stdout
    assert re.search(r"^Device memory: [0-9.]+ MiB ", r.stdout, re.M), r.stdout
    r = run_cli(*common, "--device=cpu", f"--exportOutput={tmp_path / 'cpu.json'}")
    assert r.returncode == 0, r.stderr
    gpu = json.loads((tmp_path / "gpu.json").read_text())[0]
    cpu = json.loads((tmp_path / "cpu.json").read_text())[0]
    assert gpu["dimensions"] == cpu["dimensions"] == "2x1x120x108"
    assert util.rel_l2(gpu["values"], cpu["values"]) <= 1e-4


@pytest.mark.parametrize("flag,dtype", [("--fp16", "float16"), ("--bf16", "bfloat16")])
def test_half_flags_on_cuda_do_not_warn_and_lower_layers(tmp_path, flag, dtype):
    """On the CPU --fp16/--bf16 warn (test_cli.py); with --device=cuda they lower layers: no
    warning, half dtypes in --dumpLayerInfo, float32 engine I/O, outputs near the CPU's."""
    model = util.model_path("superres.onnx")
    x = np.random.default_rng(6).standard_normal((1, 1, 32, 24), dtype=np.float32)
    x.tofile(tmp_path / "x.bin")
    common = [f"--onnx={model}", "--shapes=input:1x1x32x24", f"--loadInputs=input:{tmp_path / 'x.bin'}", *RUN_ONCE]
    r = run_cli(*common, "--device=cuda", flag, f"--exportOutput={tmp_path / 'gpu.json'}", "--dumpLayerInfo")
    if r.returncode == 1:
        assert r.stderr.strip() in (NO_GPU, NO_BACKEND), r.stderr
        pytest.skip("no CUDA device found" if r.stderr.strip() == NO_GPU else "built with CUDA=0")
    assert r.returncode == 0, r.stderr
    assert "warning" not in r.stderr, r.stderr
    assert f'"Dtype": "{dtype}"' in r.stdout and "cpu fallback" not in r.stdout
    r = run_cli(*common, "--device=cpu", f"--exportOutput={tmp_path / 'cpu.json'}")
    assert r.returncode == 0, r.stderr
    gpu = json.loads((tmp_path / "gpu.json").read_text())[0]
    cpu = json.loads((tmp_path / "cpu.json").read_text())[0]
    assert gpu["dimensions"] == cpu["dimensions"]
    assert util.rel_l2(gpu["values"], cpu["values"]) <= 1e-2


@pytest.mark.parametrize("flag,suffix", [(None, "f32"), ("--fp16", "f16")])
def test_cuda_profile_names_the_conv_kernel_that_ran(tmp_path, flag, suffix):
    """--exportProfile on the GPU: each conv's tactic names the kernel the run took, as the
    CPU's do ("cuda.FusedConv.own_dw_f16", "cuda.FusedConv.cudnn_algo1"): one of the own
    kernels in the engine's precision, or a cuDNN algorithm. Prints the counts (what the
    tactic timer chose at the opt shapes)."""
    model = util.model_path("mobilenet_v2.onnx")
    out = tmp_path / "profile.json"
    args = [f"--onnx={model}", "--shapes=input:1x3x224x224", "--device=cuda", "--iterations=2", "--warmUp=0",
            "--duration=0", f"--exportProfile={out}"]
    r = run_cli(*args, *([flag] if flag else []))
    if r.returncode == 1:
        assert r.stderr.strip() in (NO_GPU, NO_BACKEND), r.stderr
        pytest.skip("no CUDA device found" if r.stderr.strip() == NO_GPU else "built with CUDA=0")
    assert r.returncode == 0, r.stderr
    rows = json.loads(out.read_text())[1:]
    convs = [l["tactic"] for l in rows if l["opType"] in ("Conv", "FusedConv")]
    assert len(convs) >= 50, convs
    kernels = ("dw|dw_tiled|dw_tiled_nhwc|pw64|pw32|igemm64|igemm32|pw32_splitk|igemm32_splitk|tc_pw|tc_igemm|tc_pw_splitk|"
               "tc_igemm_splitk|dw_nhwc|pw_mma128_nhwc|pw_mma64_nhwc|pw_mma32_nhwc|pw_mma64_splitk_nhwc|pw_mma32_splitk_nhwc|"
               "tc_nhwc_(256x64|128x128|128x64|64x64|128x32|64x32)|smallc_nhwc|smallc_mma_nhwc|patch_mma_nhwc")
    # Half engines may be channels last (builder/layout.c): cuDNN's NHWC algorithms, the own
    # NHWC depthwise, 1x1 mma and tensor-core kernels and cuBLASLt's product for 1x1 convs; a
    # cuDNN algorithm of half data also in its plain form (the convolution, then the epilogue
    # kernel: tactics.c), named "_plain" (the H200 ran this test with the pattern lacking it in
    # session 18: cudnn_nhwc_algo1_plain, chosen since session 13).
    own = re.compile(rf"cuda\.(Fused)?Conv\.(own_({kernels})|cublaslt_nhwc)_{suffix}")
    cudnn = re.compile(r"cuda\.(Fused)?Conv\.cudnn_(nhwc_)?(algo[0-7](_plain)?|heuristic)")
    assert all(own.fullmatch(t) or cudnn.fullmatch(t) for t in convs), convs
    counts = {}
    for t in convs:
        counts[t] = counts.get(t, 0) + 1
    print(f"CONV-TACTICS mobilenet_v2 b1 {suffix}: {sorted(counts.items())}")
