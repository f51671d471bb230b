"""A NaN or an infinity in the input is never hidden: each output onnxruntime makes NaN or
infinite is NaN or infinite in ductile too, float32 and --bf16, and every output whose window
lacks it keeps its value.

Activations alone (Relu, HardSigmoid and Celu once returned 0 for a NaN), and fused into the
conv kernels (the stem's, stride 2, 1x1, depthwise 3x3 / 5x5 / 7x7 planes, direct 5x5): the
non-finite outputs are exactly onnxruntime's, and the finite ones within the kernel's error.
Winograd tactics mix a tile's inputs before the product, so a non-finite input makes its
tile's other outputs NaN or infinite too (and an activation then may make them finite and
wrong: Relu(-Inf) = 0); their output passes notice and run the layer again as im2col + GEMM
(winograd.h: dt_wino_exact_rerun), so they too are held to onnxruntime's exact positions:
each Winograd kernel forced (DUCTILE_TACTIC_PREFER), with and without a residual."""
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import ductile
from util import build_from_bytes, cpu_flags, ort_run

# where the bad values go: (channel, row, column) of image 0 and 1
SPOTS = [(0, 1, (2, 3)), (0, 5, (0, 0)), (1, 2, (-1, -1)), (1, 3, (4, 8))]


def _model(nodes, c, h, w, inits, opset=17):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, c, h, w])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m.SerializeToString()


def _input(c, h, w, bad):
    x = np.random.default_rng(3).uniform(-2, 2, (2, c, h, w)).astype(np.float32)
    for (n, ch, (r, col)), v in zip(SPOTS, bad):
        x[n, ch % c, r % h, col % w] = v
    return x


def _run(model, x, flag=None):
    """ductile's output, and the tactic of each layer (from the profiler)."""
    eng = build_from_bytes(model, {"x": (x.shape, x.shape, x.shape)}, flag)
    ctx = eng.create_execution_context()
    tactics = []
    ctx.profiler = lambda t: tactics.append(t.tactic)
    out = ctx.run({"x": x})
    return np.asarray(out["y"]), tactics


def _check(y, ref, rtol, exact_mask, what):
    nonfin_ref, nonfin = ~np.isfinite(ref), ~np.isfinite(y)
    hidden = np.argwhere(nonfin_ref & ~nonfin)
    assert hidden.size == 0, f"{what}: {len(hidden)} outputs finite where onnxruntime's are not, " \
                             f"first at {tuple(hidden[0])}: {y[tuple(hidden[0])]} for {ref[tuple(hidden[0])]}"
    if exact_mask:
        assert np.array_equal(np.isnan(y), np.isnan(ref)), f"{what}: NaN positions differ from onnxruntime's"
        assert np.array_equal(np.isinf(y) & (y > 0), np.isinf(ref) & (ref > 0)), f"{what}: +Inf positions differ"
        assert np.array_equal(np.isinf(y) & (y < 0), np.isinf(ref) & (ref < 0)), f"{what}: -Inf positions differ"
    both = np.isfinite(y) & np.isfinite(ref)
    assert both.sum() > y.size // 2, f"{what}: only {both.sum()} of {y.size} outputs finite"
    err = np.max(np.abs(y[both] - ref[both]) / (1.0 + np.abs(ref[both])))
    assert err <= rtol, f"{what}: finite outputs differ by {err:.3e} > {rtol:.0e}"


ACTS = [("Relu", {}, {}), ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}, {}), ("HardSwish", {}, {}),
        ("Clip", {}, {"lo": np.float32(0.0), "hi": np.float32(6.0)}), ("Celu", {"alpha": 1.5}, {}),
        ("LeakyRelu", {"alpha": 0.1}, {})]
BAD = [(np.nan, np.nan, np.nan, np.nan), (np.inf, -np.inf, np.inf, -np.inf)]


@pytest.mark.parametrize("op,attrs,inits", ACTS, ids=[a[0] for a in ACTS])
@pytest.mark.parametrize("bad", BAD, ids=["nan", "inf"])
def test_activation_keeps_nan_and_inf_as_onnxruntime(op, attrs, inits, bad):
    ins = ["x"] + list(inits)
    model = _model([helper.make_node(op, ins, ["y"], **attrs)], 8, 6, 7, inits)
    x = _input(8, 6, 7, bad)
    ref = ort_run(model, {"x": x})["y"]
    y, _ = _run(model, x)
    _check(y, ref, 1e-6, True, op)


# (input channels, output channels, height, width, kernel, stride, groups): the stem (3 -> 32
# 3x3 stride 2 and 7x7), a stride-2 conv, 1x1 at strides 1 and 2, depthwise 3x3 and 5x5 at
# strides 1 and 2 on planes of 7 (the 16-channel kernels) to 40, direct 5x5 over few channels
CONVS = [(3, 32, 40, 46, 3, 2, 1), (3, 64, 40, 46, 7, 2, 1), (1, 16, 30, 34, 5, 1, 1), (16, 32, 30, 34, 3, 2, 1),
         (32, 64, 20, 22, 1, 1, 1), (32, 64, 20, 22, 1, 2, 1), (32, 32, 30, 34, 3, 1, 32),
         (32, 32, 30, 34, 3, 2, 32), (48, 48, 14, 14, 5, 1, 48), (48, 48, 28, 28, 5, 2, 48),
         (32, 32, 7, 7, 3, 1, 32), (160, 160, 7, 7, 3, 1, 160), (32, 32, 40, 40, 5, 1, 32),
         (8, 16, 33, 35, 3, 1, 1), (32, 48, 30, 34, 3, 1, 1)]
FUSED = [None, "Relu", "Clip", "HardSigmoid"]


@pytest.mark.parametrize("conv", CONVS, ids=["x".join(map(str, c)) for c in CONVS])
@pytest.mark.parametrize("act", FUSED, ids=[a or "none" for a in FUSED])
@pytest.mark.parametrize("flag", [None, "BF16"], ids=["f32", "bf16"])
def test_conv_keeps_nan_and_inf_as_onnxruntime(conv, act, flag):
    c, m, h, w, k, s, g = conv
    rng = np.random.default_rng(4)
    inits = {"W": (rng.standard_normal((m, c // g, k, k)) * 0.3).astype(np.float32),
             "B": (rng.standard_normal(m) * 0.1).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["x", "W", "B"], ["z" if act else "y"], kernel_shape=[k, k], strides=[s, s],
                              pads=[k // 2] * 4, group=g)]
    if act == "Clip":
        inits.update(lo=np.float32(0.0), hi=np.float32(6.0))
        nodes.append(helper.make_node("Clip", ["z", "lo", "hi"], ["y"]))
    elif act:
        nodes.append(helper.make_node(act, ["z"], ["y"]))
    model = _model(nodes, c, h, w, inits)
    bf16 = flag is not None
    for bad in BAD:
        x = _input(c, h, w, bad)
        ref = ort_run(model, {"x": x})["y"]
        y, tactics = _run(model, x, getattr(ductile.BuilderFlag, flag) if bf16 else None)
        _check(y, ref, 3e-2 if bf16 else 1e-4, True, f"{conv} {act} {bad[0]} {tactics}")


# (name, tactic id, builder flag, environment, tactic name it must show): float32 F(4x4, 3x3)
# with the AVX-512 and the portable transforms, F(4x4) with bfloat16 GEMMs, bfloat16 F(2x2)
# (maps of at most 64 tiles); the bfloat16 ones past the precision check, which would take
# them out of these small layers
WINO = [("f4x4", "4", None, {}, "winograd"), ("f4x4-portable", "4", None, {"DT_WINO_GENERIC": "1"}, "winograd"),
        ("f4x4-bf16", "9", "BF16", {"DUCTILE_PRECISION_CHECK": "accept"}, "winograd.bf16"),
        ("f2x2-bf16", "8", "BF16", {"DUCTILE_PRECISION_CHECK": "accept"}, "winograd2")]
# (input channels, output channels, height, width, residual): 9x11 is 3x3 F(4x4) tiles, 5x6 F(2x2)
WCONVS = [(8, 16, 33, 35, False), (16, 16, 33, 35, True), (16, 16, 9, 11, False), (16, 16, 9, 11, True)]


@pytest.mark.parametrize("wino", WINO, ids=[w[0] for w in WINO])
@pytest.mark.parametrize("conv", WCONVS, ids=["x".join(map(str, c[:4])) + ("+res" if c[4] else "") for c in WCONVS])
@pytest.mark.parametrize("act", [None, "Relu"], ids=["none", "Relu"])
def test_winograd_keeps_nan_and_inf_where_onnxruntime_does(wino, conv, act, monkeypatch):
    name, tactic, flag, env, shown = wino
    c, m, h, w, residual = conv
    if flag == "BF16" and "avx512_bf16" not in cpu_flags():
        pytest.skip("the bfloat16 Winograd tactics need AVX512-BF16, which this CPU lacks")
    if name == "f2x2-bf16" and (h + 1) // 2 * ((w + 1) // 2) > 64:
        pytest.skip("F(2x2, 3x3) is offered on maps of at most 64 tiles")
    monkeypatch.setenv("DUCTILE_TACTIC_PREFER", tactic)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    rng = np.random.default_rng(5)
    inits = {"W": (rng.standard_normal((m, c, 3, 3)) * 0.3).astype(np.float32),
             "B": (rng.standard_normal(m) * 0.1).astype(np.float32)}
    out = "y" if not residual and not act else "z"
    nodes = [helper.make_node("Conv", ["x", "W", "B"], [out], kernel_shape=[3, 3], pads=[1] * 4)]
    if residual:
        nodes.append(helper.make_node("Add", ["z", "x"], ["r" if act else "y"]))
    if act:
        nodes.append(helper.make_node(act, ["r" if residual else "z"], ["y"]))
    model = _model(nodes, c, h, w, inits)
    for bad in BAD:
        x = _input(c, h, w, bad)
        ref = ort_run(model, {"x": x})["y"]
        y, tactics = _run(model, x, getattr(ductile.BuilderFlag, flag) if flag else None)
        conv_tactic = [t for t in tactics if "FusedConv" in t]
        assert conv_tactic and shown in conv_tactic[0], f"{name}: the conv ran {tactics}"
        if name != "f2x2-bf16":
            assert "winograd2" not in conv_tactic[0], tactics
        # bfloat16: the rerun's im2col in bfloat16, 3.05e-2 at most here (rel L2 2.1e-3)
        _check(y, ref, 4e-2 if flag else 1e-4, True, f"{name} {conv} {act} {bad[0]} {tactics}")


def _pool_ref(x, k, s, p, d=1):
    """MaxPool with a NaN kept (PyTorch's max_pool2d): the window's max, NaN where it holds one;
    padding never taken."""
    n, c, h, w = x.shape
    oh, ow = (h + 2 * p - d * (k - 1) - 1) // s + 1, (w + 2 * p - d * (k - 1) - 1) // s + 1
    xp = np.full((n, c, h + 2 * p, w + 2 * p), -np.inf, np.float32)
    xp[:, :, p:p + h, p:p + w] = x
    y = np.empty((n, c, oh, ow), np.float32)
    for i in range(oh):
        for j in range(ow):
            win = xp[:, :, i * s:i * s + d * (k - 1) + 1:d, j * s:j * s + d * (k - 1) + 1:d].reshape(n, c, -1)
            y[:, :, i, j] = np.where(np.isnan(win).any(-1), np.nan, np.max(np.where(np.isnan(win), -np.inf, win), -1))
    return y


# (kernel, stride, pad, dilation, height, width): mobile nets' 2x2 / 3x3, resnet50's 3x3
# stride 2 (its own plane kernel), yolo's 5x5 stride 1 (the stride-1 plane kernel), a dilated one
POOLS = [(2, 2, 0, 1, 12, 14), (3, 1, 1, 1, 12, 14), (3, 2, 1, 1, 24, 40), (5, 1, 2, 1, 20, 20), (3, 1, 0, 2, 13, 17)]


@pytest.mark.parametrize("pool", POOLS, ids=["k%ds%dp%dd%d-%dx%d" % p for p in POOLS])
def test_maxpool_keeps_nan_in_every_window_that_holds_one(pool):
    k, s, p, d, h, w = pool
    model = _model([helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[k, k], strides=[s, s], pads=[p] * 4,
                                     dilations=[d, d])], 16, h, w, {})
    x = _input(16, h, w, (np.nan, np.nan, np.inf, -np.inf))
    for ch in range(4, 16):   # a NaN at each place of a window, one channel each
        x[ch % 2, ch, (ch * 5) % h, (ch * 3) % w] = np.nan
    ref = _pool_ref(x, k, s, p, d)
    y, _ = _run(model, x)
    assert np.isnan(ref).sum() > 12
    assert np.array_equal(np.isnan(y), np.isnan(ref)), "NaN positions differ from the NaN-keeping max"
    fin = ~np.isnan(ref)
    assert np.array_equal(y[fin], ref[fin])


@pytest.mark.parametrize("op,axes", [("ReduceMax", [2, 3]), ("ReduceMin", [3]), ("GlobalMaxPool", None)])
def test_max_and_min_reductions_keep_nan_as_onnx_reference(op, axes):
    from onnx.reference import ReferenceEvaluator
    node = helper.make_node(op, ["x"], ["y"], **({"axes": axes} if axes else {}))
    model = _model([node], 8, 6, 37, {}, opset=13)
    x = _input(8, 6, 37, (np.nan, np.inf, np.nan, -np.inf))
    ref = ReferenceEvaluator(model).run(None, {"x": x})[0]
    y, _ = _run(model, x)
    assert np.isnan(ref).any()
    assert np.array_equal(np.isnan(y), np.isnan(ref)), f"{op}: NaN positions differ from onnx.reference"
    fin = ~np.isnan(ref)
    assert np.array_equal(y[fin], ref[fin])
