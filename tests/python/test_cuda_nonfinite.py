"""A NaN or an infinity in a convolution's input on the GPU: the outputs that are NaN, +Inf and
-Inf are exactly the CPU engine's (which test_nonfinite.py holds to onnxruntime's), whichever
kernel the layer runs: each CUDA conv tactic that the layer is offered forced in turn
(DUCTILE_TACTIC_PREFER), 1x1 and 3x3, float32 and float16, with Relu fused (Relu(-Inf) = 0, so
a kernel that spreads an infinity over its neighbours would show finite wrong values) and
without, in the backend's layout and channels last (DUCTILE_LAYOUT=nhwc: the tensor-core and
cuBLASLt kernels). cuDNN's FFT and Winograd algorithms mix many inputs into each output (a plane's or a
tile's), so they are not offered (backend/cuda/tactics.c: dt_cudnn_algo_allowed); cuDNN's
conv-bias-activation propagates NaN through its ReLU (it made NaN 0 with NOT_PROPAGATE_NAN) and
cuBLASLt's RELU epilogue is not used (conv.c: dt_conv_lt_relu). Skips without a GPU."""
import json

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import ductile
from util import rel_l2

# id: DUCTILE_TACTIC_PREFER value (backend/cuda/conv_own.h: 1 + cuDNN's algorithm, 9 + it
# plain), None: the timer's choice
TACTICS = {"auto": None, "cudnn-implicit-gemm": 1, "cudnn-precomp-gemm": 2, "cudnn-gemm": 3, "cudnn-fft": 5,
           "cudnn-fft-tiling": 6, "cudnn-winograd": 7, "cudnn-implicit-gemm-plain": 9, "cudnn-precomp-gemm-plain": 10,
           "pointwise64": 17, "igemm64": 19, "tc-pointwise": 23, "cublaslt-nhwc": 28, "tc-nhwc": 31,
           "pw-mma64": 40}
SPOTS = [(0, 0, 1, 2), (0, 3, 5, 0), (1, 1, 2, 34), (1, 5, 20, 17)]
KERNELS = [1, 3]   # a 1x1 conv (16 -> 32) and a 3x3 (8 -> 16, padded)


def _model(act, k=3):
    rng = np.random.default_rng(7)
    c, m = (8, 16) if k == 3 else (16, 32)
    w = (rng.standard_normal((m, c, k, k)) * 0.3).astype(np.float32)
    b = (rng.standard_normal(m) * 0.1).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "W", "B"], ["z" if act else "y"], kernel_shape=[k, k], pads=[k // 2] * 4)]
    if act:
        nodes.append(helper.make_node(act, ["z"], ["y"]))
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, c, 33, 35])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m.SerializeToString()


def _build(model, device, flag=None, c=8, shape=None):
    """An engine of input x at one shape: (2, c, 33, 35), or shape."""
    shape = shape or (2, c, 33, 35)
    b = ductile.Builder()
    net = b.parse_onnx_bytes(model)
    cfg = b.create_builder_config()
    cfg.device = device
    if flag:
        cfg.set_flag(flag)
    prof = b.create_optimization_profile()
    prof.set_shape("x", shape, shape, shape)
    cfg.add_optimization_profile(prof)
    return b.build_engine(net, cfg)


def _gpu():
    try:
        _build(_model(None), "cuda")
        return True
    except ductile.Error:
        return False


@pytest.mark.parametrize("tactic", TACTICS, ids=list(TACTICS))
@pytest.mark.parametrize("act", [None, "Relu"], ids=["none", "Relu"])
@pytest.mark.parametrize("half", [False, True], ids=["fp32", "fp16"])
@pytest.mark.parametrize("k", KERNELS, ids=[f"{k}x{k}" for k in KERNELS])
@pytest.mark.parametrize("layout", [None, "nhwc"], ids=["backend", "nhwc"])
def test_cuda_conv_keeps_nonfinite_positions(tactic, act, half, k, layout, monkeypatch):
    model = _model(act, k)
    c = 8 if k == 3 else 16
    x = np.random.default_rng(8).uniform(-2, 2, (2, c, 33, 35)).astype(np.float32)
    for spot, v in zip(SPOTS, (np.nan, np.inf, -np.inf, -np.inf)):
        x[spot] = v
    want = _build(model, "cpu", c=c).create_execution_context().run({"x": x})["y"]
    if not _gpu():
        pytest.skip("no CUDA device found")
    if TACTICS[tactic] is not None:
        monkeypatch.setenv("DUCTILE_TACTIC_PREFER", str(TACTICS[tactic]))
    if layout:  # channels last, whatever the backend prefers for this one conv
        monkeypatch.setenv("DUCTILE_LAYOUT", layout)
    engine = _build(model, "cuda", ductile.BuilderFlag.FP16 if half else None, c)
    ids = {t for layer in json.loads(engine.layer_info)["Layers"] if layer["LayerType"] in ("Conv", "FusedConv")
           for per_profile in layer.get("Tactics", []) for t in per_profile.values()}
    if TACTICS[tactic] is not None and TACTICS[tactic] not in ids:
        pytest.skip(f"tactic {TACTICS[tactic]} not offered for this layer ({sorted(ids)})")
    got = engine.create_execution_context().run({"x": x})["y"].astype(np.float32)
    for kind in (np.isnan, np.isposinf, np.isneginf):
        bad = np.argwhere(kind(got) != kind(want))
        assert bad.size == 0, f"{kind.__name__} positions differ at {len(bad)} outputs, first {tuple(bad[0])}: " \
                              f"GPU {got[tuple(bad[0])]}, CPU {want[tuple(bad[0])]} (tactics {sorted(ids)})"
    fin = np.isfinite(want)
    assert rel_l2(got[fin], want[fin]) <= (2e-3 if half else 1e-4)


def _matmul_gelu():
    rng = np.random.default_rng(9)
    w = (rng.standard_normal((37, 64)) * 0.2).astype(np.float32)
    b = (rng.standard_normal(64) * 0.1).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x", "W"], ["m"]), helper.make_node("Add", ["m", "B"], ["a"]),
             helper.make_node("Gelu", ["a"], ["y"])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 16, 37])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 20)])
    m.ir_version = 9
    return m.SerializeToString()


@pytest.mark.parametrize("half", [False, True], ids=["fp32", "fp16"])
def test_cuda_matmul_gelu_keeps_nan_rows(half):
    """MatMul + bias + Gelu (one FusedMatMul; in float16 cuBLASLt's GELU_BIAS epilogue unless
    DUCTILE_CUDA_LT_GELU=0): a NaN in a row of A makes that output row NaN, as on the CPU."""
    model = _matmul_gelu()
    x = np.random.default_rng(10).uniform(-2, 2, (2, 16, 37)).astype(np.float32)
    x[0, 3, 5] = x[1, 15, 36] = x[1, 0, 0] = np.nan
    want = _build(model, "cpu", shape=x.shape).create_execution_context().run({"x": x})["y"]
    assert np.isnan(want).sum() == 3 * 64
    if not _gpu():
        pytest.skip("no CUDA device found")
    engine = _build(model, "cuda", ductile.BuilderFlag.FP16 if half else None, shape=x.shape)
    got = engine.create_execution_context().run({"x": x})["y"].astype(np.float32)
    bad = np.argwhere(np.isnan(got) != np.isnan(want))
    assert bad.size == 0, f"NaN positions differ at {len(bad)} outputs, first {tuple(bad[0])}: GPU {got[tuple(bad[0])]}"
    fin = ~np.isnan(want)
    assert rel_l2(got[fin], want[fin]) <= (3e-3 if half else 1e-4)
