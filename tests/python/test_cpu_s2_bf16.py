"""The bfloat16 direct stride-2 3x3 convolution (FusedConv tactic 11, conv_s2_bf16.c) in
--bf16 engines: a two-conv net (8 -> 24 channels with SiLU, 24 -> 40 with Relu, both 3x3
stride 2) built with the tactic preferred (DUCTILE_TACTIC_PREFER=11) takes it at min, opt and
max (rows of 4 to 100 pixels: groups of several output rows a tile and one) and stays within
--bf16's budget of onnxruntime at min, opt, max and an odd shape between; its bits do not
depend on the thread count and survive a save and load. The layers carry the tactic's own
weights only where it runs: the engine built preferring the padded GEMM (2) drops them and is smaller. Skipped,
saying so, on a CPU without AVX512-BF16."""
import json

import numpy as np
import pytest
from onnx import TensorProto as T, helper as h, numpy_helper as nh

import ductile
from test_cpu_half import cpu_flags
from util import ort_run, rel_l2

MIN, OPT, MAX = (1, 8, 16, 16), (2, 8, 100, 130), (2, 8, 150, 200)


def net():
    rng = np.random.default_rng(21)
    inits, nodes = [], []
    for i, (cin, cout) in enumerate([(8, 24), (24, 40)]):
        inits.append(nh.from_array((rng.standard_normal((cout, cin, 3, 3)) / np.sqrt(cin * 9)).astype(np.float32), f"w{i}"))
        inits.append(nh.from_array((rng.standard_normal(cout) * 0.1).astype(np.float32), f"b{i}"))
    nodes.append(h.make_node("Conv", ["x", "w0", "b0"], ["c0"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]))
    nodes.append(h.make_node("Sigmoid", ["c0"], ["s0"]))
    nodes.append(h.make_node("Mul", ["c0", "s0"], ["m0"]))
    nodes.append(h.make_node("Conv", ["m0", "w1", "b1"], ["c1"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]))
    nodes.append(h.make_node("Relu", ["c1"], ["y"]))
    graph = h.make_graph(nodes, "s2", [h.make_tensor_value_info("x", T.FLOAT, ["n", 8, "h", "w"])],
                         [h.make_tensor_value_info("y", T.FLOAT, None)], initializer=inits)
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 17)], ir_version=8)


def build(model, monkeypatch, prefer):
    monkeypatch.setenv("DUCTILE_TACTIC_PREFER", str(prefer))
    builder = ductile.Builder()
    network = builder.parse_onnx_bytes(model.SerializeToString())
    profile = builder.create_optimization_profile()
    profile.set_shape("x", MIN, OPT, MAX)
    config = builder.create_builder_config()
    config.add_optimization_profile(profile)
    config.set_flag(ductile.BuilderFlag.BF16)
    return builder.build_engine(network, config)


def tactics(engine):
    """{conv layer: {point: tactic id}} of profile 0."""
    return {L["Name"]: L["Tactics"][0] for L in json.loads(engine.layer_info)["Layers"] if L["LayerType"] == "FusedConv"}


def run(engine, x, threads):
    ctx = engine.create_execution_context()
    ctx.set_threads(threads)
    return ctx.run({"x": x})["y"]


def test_bf16_stride2_direct_conv_within_budget_and_weights_only_where_it_runs(monkeypatch):
    if "avx512_bf16" not in cpu_flags():
        pytest.skip("this CPU lacks AVX512-BF16 (avx512_bf16)")
    model = net()
    engine = build(model, monkeypatch, 11)
    ids = tactics(engine)
    assert len(ids) == 2, ids
    for name, points in ids.items():
        assert set(points.values()) == {11}, (name, points)
    rng = np.random.default_rng(22)
    for shape in (MIN, OPT, MAX, (1, 8, 77, 141)):
        x = rng.standard_normal(shape, dtype=np.float32)
        want = ort_run(model.SerializeToString(), {"x": x})["y"]
        got = run(engine, x, 1)
        assert rel_l2(got, want) <= 1e-2, shape
        np.testing.assert_array_equal(run(engine, x, 2), got)
    again = ductile.Runtime().deserialize_cuda_engine(engine.serialize())
    np.testing.assert_array_equal(run(again, x, 2), got)
    # preferring the padded GEMM, no point runs tactic 11: its weights are dropped
    padded = build(model, monkeypatch, 2)
    assert all(11 not in points.values() for points in tactics(padded).values())
    assert len(padded.serialize()) < len(engine.serialize())
