"""The builder's common-subexpression pass (src/builder/cse.c) end to end on the CPU: engines
lose the repeated layers and their outputs stay onnxruntime's. bert_small computes its additive
attention mask (Where over the expanded mask and two constants of its own) once per encoder
layer, four times; the engine keeps one. A hand-built graph repeats a chain three times over
constants of equal value (one with a different value stays), and holds a RandomUniformLike pair
that must not merge (its outputs differ)."""
import json

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto as T, helper as h, numpy_helper as nh  # noqa: E402

import ductile  # noqa: E402
from util import MODELS, assert_close, model_path, ort_run, random_feeds  # noqa: E402


def build(model_bytes, shapes):
    b = ductile.Builder()
    net = b.parse_onnx_bytes(model_bytes)
    cfg = b.create_builder_config()
    prof = b.create_optimization_profile()
    for name, s in shapes.items():
        prof.set_shape(name, s, s, s)
    cfg.add_optimization_profile(prof)
    return b.build_engine(net, cfg)


def layers(engine):
    return [l for l in json.loads(engine.layer_info)["Layers"] if l.get("Stage") == "execute"]


def test_cse_bert_small_one_mask_where_matches_onnxruntime():
    spec = MODELS["bert_small"]
    path = model_path(spec.filename)
    shapes = {"input_ids": (3, 77), "attention_mask": (3, 77)}
    engine = build(path.read_bytes(), shapes)
    ls = layers(engine)
    wheres = [l for l in ls if l["LayerType"] == "Where"]
    assert len(wheres) == 1, [l["Name"] for l in wheres]
    assert sum(l["LayerType"] == "FusedAttention" for l in ls) == 4
    feeds = random_feeds(spec, shapes, seed=3)
    got = engine.create_execution_context().run(feeds)
    want = ort_run(str(path), feeds)
    for name, w in want.items():
        assert_close(got[name], w)


def repeated_model():
    """y = sum over three copies of Relu(Where(x > c0, x * c1, c2)) with each copy's constants
    its own initializers of equal value, plus a fourth copy with another c1; z: two
    RandomUniformLike of x (no seed: a fresh one per layer) subtracted: not zero, two draws."""
    inits, nodes, parts = [], [], []
    for i in range(4):
        c1 = 2.0 if i < 3 else 3.0
        inits += [nh.from_array(np.array(0.25, np.float32), f"c0_{i}"),
                  nh.from_array(np.full((5,), c1, np.float32), f"c1_{i}"),
                  nh.from_array(np.array([-1.0], np.float32), f"c2_{i}")]
        nodes += [h.make_node("Greater", ["x", f"c0_{i}"], [f"g{i}"]),
                  h.make_node("Mul", ["x", f"c1_{i}"], [f"m{i}"]),
                  h.make_node("Where", [f"g{i}", f"m{i}", f"c2_{i}"], [f"w{i}"]),
                  h.make_node("Relu", [f"w{i}"], [f"r{i}"])]
        parts.append(f"r{i}")
    nodes += [h.make_node("Sum", parts, ["y"]),
              h.make_node("RandomUniformLike", ["x"], ["n0"]),
              h.make_node("RandomUniformLike", ["x"], ["n1"]),
              h.make_node("Sub", ["n0", "n1"], ["z"])]
    graph = h.make_graph(nodes, "g", [h.make_tensor_value_info("x", T.FLOAT, ["b", 5])],
                         [h.make_tensor_value_info("y", T.FLOAT, None), h.make_tensor_value_info("z", T.FLOAT, None)],
                         initializer=inits)
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 17)], ir_version=8)


def test_cse_repeated_chains_merge_and_match_onnxruntime():
    model = repeated_model()
    engine = build(model.SerializeToString(), {"x": (3, 5)})
    ls = layers(engine)
    count = {op: sum(l["LayerType"] == op for l in ls) for op in ("Greater", "Mul", "Where", "Relu", "RandomUniformLike")}
    # Greater is the same in all four copies; Mul, Where and Relu in three (the fourth's c1 differs).
    assert count == {"Greater": 1, "Mul": 2, "Where": 2, "Relu": 2, "RandomUniformLike": 2}, count
    x = np.random.default_rng(1).standard_normal((3, 5), dtype=np.float32)
    got = engine.create_execution_context().run({"x": x})
    want = ort_run(model.SerializeToString(), {"x": x})
    assert_close(got["y"], want["y"])
    assert np.any(got["z"] != 0)   # two draws, not one layer read twice
