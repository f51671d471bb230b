"""SiLU as PyTorch exports it, Mul(x, Sigmoid(x)), fused into the convolution before it
(builder/fuse.c: FusedConv activation "Silu"), on the CPU against onnxruntime: an
EfficientNet-style block at odd sizes (a 3x3 stride-2 stem of 3 channels, a 1x1 expansion, 3x3
and 5x5 depthwise convolutions, squeeze-excite with SiLU and Sigmoid, a projection with its
residual, each conv's SiLU in its store), in float32 and bfloat16, on 1 to 3 threads; and the
EfficientNet-B0 that bench/make_efficientnet.py writes, and the YOLOv8n-style detector of
bench/make_yolo.py at several sizes of one engine. The layer list shows the Sigmoid and Mul
layers gone; a Sigmoid whose output is also read elsewhere keeps both. On a GPU the CUDA engine
runs the block's fused convolutions itself (not the host's) in float32, float16 and bfloat16
(check_cuda's bounds); without one that test skips saying so."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto as T, helper as h, numpy_helper as nh

import ductile
from test_cpu_half import cpu_flags
from test_cuda_fusions import check_cuda
from util import assert_close, ort_run, rel_l2

REPO = Path(__file__).resolve().parents[2]
C0, C1, WIDE, SQ = 3, 13, 37, 5


def block_model(k_dw=5, keep_gate=False):
    rng = np.random.default_rng(11)
    inits, nodes = [], []

    def conv(x, cin, cout, k, stride=1, groups=1, silu=True, name=None):
        w = f"w{len(inits)}"
        b = f"b{len(inits)}"
        inits.append(nh.from_array(rng.standard_normal((cout, cin // groups, k, k)).astype(np.float32)
                                   * np.float32(1.5 / np.sqrt(cin // groups * k * k)), w))
        inits.append(nh.from_array(rng.standard_normal(cout).astype(np.float32) * np.float32(0.2), b))
        y = name or f"c{len(nodes)}"
        nodes.append(h.make_node("Conv", [x, w, b], [y], kernel_shape=[k, k], strides=[stride, stride],
                                 pads=[k // 2] * 4, group=groups))
        if not silu:
            return y
        s, m = f"s{len(nodes)}", f"m{len(nodes)}"
        nodes.append(h.make_node("Sigmoid", [y], [s]))
        nodes.append(h.make_node("Mul", [y, s], [m]))
        return m

    x = conv("x", C0, C1, 3, 2)
    y = conv(x, C1, WIDE, 1)
    gate_out = nodes[-2].output[0]        # the expansion's Sigmoid
    y = conv(y, WIDE, WIDE, 3, groups=WIDE)
    y = conv(y, WIDE, WIDE, k_dw, groups=WIDE)
    nodes.append(h.make_node("GlobalAveragePool", [y], ["g"]))
    f = conv("g", WIDE, SQ, 1)
    f = conv(f, SQ, WIDE, 1, silu=False)
    nodes.append(h.make_node("Sigmoid", [f], ["gate"]))
    nodes.append(h.make_node("Mul", [y, "gate"], ["scaled"]))
    p = conv("scaled", WIDE, C1, 1, silu=False)
    nodes.append(h.make_node("Add", [p, x], ["sum"]))
    out = conv("sum", C1, C1, 3)
    nodes.append(h.make_node("Identity", [out], ["y"]))
    outputs = [h.make_tensor_value_info("y", T.FLOAT, None)]
    if keep_gate:
        outputs.append(h.make_tensor_value_info(gate_out, T.FLOAT, None))
    graph = h.make_graph(nodes, "silu_block", [h.make_tensor_value_info("x", T.FLOAT, ["n", C0, "h", "w"])],
                         outputs, initializer=inits)
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 17)], ir_version=8)


def build(model, name, lo, shape, bf16=False, hi=None):
    """An engine of one profile: min lo, opt shape, max hi (default: shape)."""
    builder = ductile.Builder()
    network = builder.parse_onnx_bytes(model.SerializeToString())
    profile = builder.create_optimization_profile()
    profile.set_shape(name, lo, shape, hi or shape)
    config = builder.create_builder_config()
    config.add_optimization_profile(profile)
    if bf16:
        config.set_flag(ductile.BuilderFlag.BF16)
    return builder.build_engine(network, config)


def layers(engine):
    return json.loads(engine.layer_info)["Layers"]


def run(engine, feeds, threads=1):
    ctx = engine.create_execution_context()
    ctx.set_threads(threads)
    return ctx.run(feeds)


@pytest.mark.parametrize("k_dw,shape", [(5, (1, C0, 37, 29)), (3, (2, C0, 64, 51)), (5, (3, C0, 9, 130))])
def test_silu_fuses_into_every_conv_and_matches_onnxruntime(k_dw, shape):
    model = block_model(k_dw)
    engine = build(model, "x", (1, C0, 4, 4), shape)
    info = layers(engine)
    assert [L["LayerType"] for L in info if L["LayerType"] in ("Sigmoid", "Mul", "Conv")] == []
    x = np.random.default_rng(12).standard_normal(shape, dtype=np.float32)
    want = ort_run(model.SerializeToString(), {"x": x})["y"]
    got = run(engine, {"x": x})["y"]
    assert_close(got, want, rtol=1e-5)
    for threads in (2, 3):
        np.testing.assert_array_equal(run(engine, {"x": x}, threads)["y"], got)


def test_a_gate_read_elsewhere_keeps_sigmoid_and_mul_and_matches():
    model = block_model(keep_gate=True)
    shape = (2, C0, 21, 33)
    engine = build(model, "x", (1, C0, 4, 4), shape)
    types = [L["LayerType"] for L in layers(engine)]
    assert types.count("Sigmoid") == 1 and types.count("Mul") == 1
    x = np.random.default_rng(13).standard_normal(shape, dtype=np.float32)
    want = ort_run(model.SerializeToString(), {"x": x})
    got = run(engine, {"x": x})
    for name in want:
        assert_close(got[name], want[name], rtol=1e-5, what=name)


@pytest.mark.skipif("avx512_bf16" not in cpu_flags(), reason="this CPU lacks AVX512-BF16 (avx512_bf16)")
def test_silu_block_in_bfloat16_matches_within_its_budget():
    model = block_model()
    shape = (2, C0, 45, 31)
    engine = build(model, "x", (1, C0, 4, 4), shape, bf16=True)
    assert "Sigmoid" not in [L["LayerType"] for L in layers(engine)]
    x = np.random.default_rng(14).standard_normal(shape, dtype=np.float32)
    got = run(engine, {"x": x})["y"]
    assert rel_l2(got, ort_run(model.SerializeToString(), {"x": x})["y"]) <= 1e-2
    np.testing.assert_array_equal(run(engine, {"x": x}, 2)["y"], got)


def depthwise_silu_model(c=24):
    """One depthwise 3x3 conv with its SiLU: no bfloat16 kernel takes it."""
    rng = np.random.default_rng(21)
    inits = [nh.from_array((rng.standard_normal((c, 1, 3, 3)) * 0.6).astype(np.float32), "w"),
             nh.from_array((rng.standard_normal(c) * 0.3).astype(np.float32), "b")]
    nodes = [h.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3, 3], pads=[1] * 4, group=c),
             h.make_node("Sigmoid", ["c"], ["s"]), h.make_node("Mul", ["c", "s"], ["y"])]
    graph = h.make_graph(nodes, "dw_silu", [h.make_tensor_value_info("x", T.FLOAT, ["n", c, "h", "w"])],
                         [h.make_tensor_value_info("y", T.FLOAT, None)], initializer=inits)
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 17)], ir_version=8)


@pytest.mark.skipif("avx512_bf16" not in cpu_flags(), reason="this CPU lacks AVX512-BF16 (avx512_bf16)")
def test_a_float32_depthwise_of_a_bfloat16_engine_takes_the_lean_silu():
    """--bf16: the depthwise conv stays float32 (no "BF16") but its SiLU takes the half layers'
    lean sigmoid ("LeanActivation"): its bits differ from the float32 engine's, by at most the
    lean form's 1.3e-4 relative; the float32 engine keeps the exact one."""
    model = depthwise_silu_model()
    shape = (2, 24, 19, 23)
    lean = build(model, "x", (1, 24, 4, 4), shape, bf16=True)
    exact = build(model, "x", (1, 24, 4, 4), shape)
    [dw] = [L for L in layers(lean) if L["LayerType"] == "FusedConv"]
    assert dw.get("LeanActivation") is True and "BF16" not in dw
    assert all("LeanActivation" not in L for L in layers(exact))
    x = np.random.default_rng(22).standard_normal(shape, dtype=np.float32) * 3
    want = ort_run(model.SerializeToString(), {"x": x})["y"]
    got, ref = run(lean, {"x": x})["y"], run(exact, {"x": x})["y"]
    assert_close(ref, want, rtol=1e-6)
    assert not np.array_equal(got, ref)
    assert np.all(np.abs(got - ref) <= 1.3e-4 * np.abs(ref) + 1e-6)


@pytest.fixture(scope="module")
def efficientnet(tmp_path_factory):
    out = tmp_path_factory.mktemp("effnet") / "efficientnet_b0.onnx"
    subprocess.run([sys.executable, str(REPO / "bench" / "make_efficientnet.py"), str(out)], check=True)
    return out


@pytest.mark.parametrize("batch", [1, 3])
def test_efficientnet_b0_matches_onnxruntime(efficientnet, batch):
    import onnx
    model = onnx.load(str(efficientnet))
    engine = build(model, "input", (1, 3, 224, 224), (2, 3, 224, 224), hi=(4, 3, 224, 224))
    types = [L["LayerType"] for L in layers(engine)]
    assert "Sigmoid" not in types and "Mul" not in types
    x = np.random.default_rng(15).standard_normal((batch, 3, 224, 224), dtype=np.float32)
    want = ort_run(model.SerializeToString(), {"input": x})["output"]
    got = run(engine, {"input": x}, 2)["output"]
    assert_close(got, want, rtol=1e-4)


@pytest.mark.skipif("avx512_bf16" not in cpu_flags(), reason="this CPU lacks AVX512-BF16 (avx512_bf16)")
def test_efficientnet_b0_in_bfloat16_within_its_budget(efficientnet):
    """--bf16: the inverted-residual blocks, the stem and the 1x1s compute in bfloat16 and their
    SiLUs take the lean sigmoid (relative error below 1e-4, backend/cpu/exp_approx.h); the
    output stays within 1e-2 (relative L2) of onnxruntime's float32, the engine's results the
    same on 1 and 2 threads."""
    import onnx
    model = onnx.load(str(efficientnet))
    engine = build(model, "input", (1, 3, 224, 224), (2, 3, 224, 224), bf16=True, hi=(3, 3, 224, 224))
    half = [L for L in layers(engine) if L.get("BF16")]
    assert {L["LayerType"] for L in half} >= {"FusedInvertedResidual", "FusedConv"}
    x = np.random.default_rng(16).standard_normal((3, 3, 224, 224), dtype=np.float32)
    want = ort_run(model.SerializeToString(), {"input": x})["output"]
    got = run(engine, {"input": x})["output"]
    assert rel_l2(got, want) <= 1e-2
    np.testing.assert_array_equal(run(engine, {"input": x}, 2)["output"], got)


@pytest.mark.parametrize("prec", ["fp32", "fp16", "bf16"])
def test_cuda_runs_silu_convs_and_matches(prec):
    model = block_model()
    x = np.random.default_rng(16).standard_normal((2, C0, 45, 31), dtype=np.float32)
    feeds = {"x": x}
    want = {"y": ort_run(model.SerializeToString(), feeds)["y"]}
    check_cuda(model.SerializeToString(), feeds, want, {"FusedConv": 8}, prec)


@pytest.mark.parametrize("prec", ["fp32", "fp16"])
def test_cuda_efficientnet_b0_runs_its_convs_on_the_gpu_and_matches(efficientnet, prec):
    import onnx
    model = onnx.load(str(efficientnet))
    x = np.random.default_rng(17).standard_normal((2, 3, 224, 224), dtype=np.float32)
    feeds = {"input": x}
    want = {"output": ort_run(model.SerializeToString(), feeds)["output"]}
    check_cuda(model.SerializeToString(), feeds, want, {"FusedConv": 81}, prec)


@pytest.fixture(scope="module")
def yolo(tmp_path_factory):
    out = tmp_path_factory.mktemp("yolo") / "yolo.onnx"
    subprocess.run([sys.executable, str(REPO / "bench" / "make_yolo.py"), str(out)], check=True)
    return out


def test_yolo_style_detector_matches_onnxruntime_at_several_sizes(yolo):
    """bench/make_yolo.py's YOLOv8n-style net: every conv's SiLU fused (the one Sigmoid left is
    the class scores'), one engine for sizes from 64 to 256 with batch 1-2, on 2 threads."""
    import onnx
    proto = onnx.load(str(yolo))
    model = proto.SerializeToString()
    engine = build(proto, "images", (1, 3, 64, 64), (1, 3, 160, 224), hi=(2, 3, 256, 256))
    types = [L["LayerType"] for L in layers(engine)]
    assert types.count("Sigmoid") == 1 and "Mul" not in types and "Conv" not in types
    for shape in [(1, 3, 160, 224), (2, 3, 96, 64), (1, 3, 256, 192)]:
        x = np.random.default_rng(18).standard_normal(shape, dtype=np.float32)
        want = ort_run(model, {"images": x})["output"]
        got = run(engine, {"images": x}, 2)["output"]
        assert_close(got, want, rtol=1e-5, what=f"output at {shape}")
