"""The CPU builder's transformer fusions against onnxruntime on small hand-built graphs:
MatMul -> Add(bias) [-> Add(residual)] -> Gelu (erf form, as exporters write it) into
FusedMatMul, and BERT's attention block (heads' Transposes, scaled Q and K, mask Add, Softmax,
IsNaN/Where, MatMul with V) into FusedAttention, at odd sizes, batch 3 and a fully masked
sequence; the layer list shows what fused, and a near miss (a bias that broadcasts up a rank)
what must not."""
import json

import numpy as np
import pytest
from onnx import TensorProto as T, helper as h, numpy_helper as nh

import ductile
from util import assert_close, ort_run

RTOL = 1e-5


def build(model, shapes):
    """An engine of the model bytes with one profile: batch and sequence from 1, opt and max
    `shapes` (the feature dims are fixed by the model)."""
    builder = ductile.Builder()
    network = builder.parse_onnx_bytes(model.SerializeToString())
    profile = builder.create_optimization_profile()
    for name, shape in shapes.items():
        profile.set_shape(name, (1, 1) + tuple(shape[2:]), shape, shape)
    config = builder.create_builder_config()
    config.add_optimization_profile(profile)
    return builder.build_engine(network, config)


def kernels(engine):
    return [layer["Kernel"] for layer in json.loads(engine.layer_info)["Layers"]]


def model_of(nodes, inits, inputs, outputs, opset=17):
    graph = h.make_graph(nodes, "g", inputs, outputs, initializer=inits)
    return h.make_model(graph, opset_imports=[h.make_opsetid("", opset)], ir_version=8)


def gelu_nodes(x, y, p):
    """Gelu as exporters write it: x * (erf(x / sqrt 2) + 1) * 0.5."""
    return [
        h.make_node("Div", [x, p + "sqrt2"], [p + "d"]), h.make_node("Erf", [p + "d"], [p + "e"]),
        h.make_node("Add", [p + "e", p + "one"], [p + "a"]), h.make_node("Mul", [x, p + "a"], [p + "m"]),
        h.make_node("Mul", [p + "m", p + "half"], [y]),
    ], [nh.from_array(np.array(1.4142135381698608, np.float32), p + "sqrt2"),
        nh.from_array(np.array(1.0, np.float32), p + "one"), nh.from_array(np.array(0.5, np.float32), p + "half")]


def ffn_model(k, n, bias_shape):
    """y = Gelu(x @ W1 + b1) @ W2 + b2 + x: the feed-forward block of an encoder layer."""
    rng = np.random.default_rng(1)
    w1 = rng.standard_normal((k, n), dtype=np.float32) * 0.2
    w2 = rng.standard_normal((n, k), dtype=np.float32) * 0.2
    b1 = rng.standard_normal(bias_shape, dtype=np.float32)
    b2 = rng.standard_normal((k,), dtype=np.float32)
    g, ginit = gelu_nodes("h", "g", "gelu_")
    nodes = [h.make_node("MatMul", ["x", "w1"], ["m1"]), h.make_node("Add", ["b1", "m1"], ["h"])] + g + [
        h.make_node("MatMul", ["g", "w2"], ["m2"]), h.make_node("Add", ["m2", "b2"], ["o"]),
        h.make_node("Add", ["o", "x"], ["y"])]
    inits = [nh.from_array(w1, "w1"), nh.from_array(w2, "w2"), nh.from_array(b1, "b1"), nh.from_array(b2, "b2")]
    return model_of(nodes, inits + ginit, [h.make_tensor_value_info("x", T.FLOAT, ["b", "s", k])],
                    [h.make_tensor_value_info("y", T.FLOAT, ["b", "s", k])])


@pytest.mark.parametrize("shape", [(3, 7), (1, 40), (2, 1)])
def test_matmul_bias_gelu_residual_fuse_and_match_onnxruntime(shape):
    k, n = 24, 70
    model = ffn_model(k, n, (n,))
    engine = build(model, {"x": shape + (k,)})
    assert kernels(engine).count("cpu.FusedMatMul") == 2
    assert not any(kern in ("cpu.Gelu", "cpu.Add") for kern in kernels(engine))
    x = np.random.default_rng(2).standard_normal(shape + (k,), dtype=np.float32)
    got = engine.create_execution_context().run({"x": x})["y"]
    assert_close(got, ort_run(model.SerializeToString(), {"x": x})["y"], rtol=RTOL)


def test_bias_that_broadcasts_a_rank_stays_unfused_and_matches():
    k, n = 24, 70
    model = ffn_model(k, n, (1, 1, n))      # [1, 1, N]: the Add is not a per-column bias
    engine = build(model, {"x": (2, 5, k)})
    ks = kernels(engine)
    assert ks.count("cpu.FusedMatMul") == 1   # only the second MatMul's chain
    assert "cpu.Gelu" in ks
    x = np.random.default_rng(3).standard_normal((2, 5, k), dtype=np.float32)
    got = engine.create_execution_context().run({"x": x})["y"]
    assert_close(got, ort_run(model.SerializeToString(), {"x": x})["y"], rtol=RTOL)


def attention_model(heads, d):
    """BERT's self-attention on x [B, S, H*D] with its mask path: heads split by Reshape and
    Transpose, Q and K scaled by D^-1/4 each, the [B, S] 0/1 mask made 0 / -inf, Softmax,
    IsNaN/Where for fully masked rows, the heads joined again."""
    hid = heads * d
    rng = np.random.default_rng(4)
    inits, nodes = [], []
    for name in ("q", "k", "v"):
        inits += [nh.from_array(rng.standard_normal((hid, hid), dtype=np.float32) * 0.3, "w" + name),
                  nh.from_array(rng.standard_normal((hid,), dtype=np.float32), "b" + name)]
        nodes += [h.make_node("MatMul", ["x", "w" + name], [name + "m"]),
                  h.make_node("Add", ["b" + name, name + "m"], [name + "a"]),
                  h.make_node("Reshape", [name + "a", "split"], [name + "r"])]
    scale = np.array(d ** -0.25, np.float32)
    inits += [nh.from_array(np.array([0, 0, heads, d], np.int64), "split"),
              nh.from_array(np.array([0, 0, hid], np.int64), "join"), nh.from_array(scale, "scale"),
              nh.from_array(np.array([1, 2], np.int64), "axes"), nh.from_array(np.array(0.0, np.float32), "zero"),
              nh.from_array(np.array(-np.inf, np.float32), "ninf")]
    nodes += [
        h.make_node("Transpose", ["qr"], ["qt"], perm=[0, 2, 1, 3]),
        h.make_node("Transpose", ["kr"], ["kt"], perm=[0, 2, 3, 1]),
        h.make_node("Transpose", ["vr"], ["vt"], perm=[0, 2, 1, 3]),
        h.make_node("Mul", ["qt", "scale"], ["qs"]), h.make_node("Mul", ["kt", "scale"], ["ks"]),
        h.make_node("MatMul", ["qs", "ks"], ["s"]),
        h.make_node("Cast", ["mask"], ["mb"], to=T.BOOL), h.make_node("Unsqueeze", ["mb", "axes"], ["mu"]),
        h.make_node("Where", ["mu", "zero", "ninf"], ["madd"]),
        h.make_node("Add", ["s", "madd"], ["sm"]), h.make_node("Softmax", ["sm"], ["p"], axis=-1),
        h.make_node("IsNaN", ["p"], ["pn"]), h.make_node("Where", ["pn", "zero", "p"], ["p0"]),
        h.make_node("MatMul", ["p0", "vt"], ["o"]),
        h.make_node("Transpose", ["o"], ["ot"], perm=[0, 2, 1, 3]),
        h.make_node("Reshape", ["ot", "join"], ["y"]),
    ]
    return model_of(nodes, inits, [h.make_tensor_value_info("x", T.FLOAT, ["b", "s", hid]),
                                   h.make_tensor_value_info("mask", T.INT64, ["b", "s"])],
                    [h.make_tensor_value_info("y", T.FLOAT, ["b", "s", hid])])


@pytest.mark.parametrize("qkv", ["packed", "separate"])
@pytest.mark.parametrize("b,s", [(3, 13), (1, 40), (2, 1)])
def test_attention_block_fuses_and_matches_onnxruntime(monkeypatch, b, s, qkv):
    """packed: the three projections one FusedMatMul and the attention layout bshd_qkv
    (builder/fuse_qkv.c); separate (DUCTILE_FUSE_QKV=0): three, layout bshd."""
    heads, d = 3, 8
    model = attention_model(heads, d)
    if qkv == "separate":
        monkeypatch.setenv("DUCTILE_FUSE_QKV", "0")
    engine = build(model, {"x": (b, s, heads * d), "mask": (b, s)})
    ks = kernels(engine)
    assert ks.count("cpu.FusedAttention") == 1
    assert ks.count("cpu.FusedMatMul") == (1 if qkv == "packed" else 3)
    assert not any(kern in ("cpu.Transpose", "cpu.Softmax", "cpu.IsNaN") for kern in ks)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((b, s, heads * d), dtype=np.float32)
    mask = rng.integers(0, 2, size=(b, s), dtype=np.int64)
    mask[:, 0] = 1
    if b > 1:
        mask[-1] = 0     # a fully masked sequence: Softmax of -inf rows is NaN, made 0
    feeds = {"x": x, "mask": mask}
    got = engine.create_execution_context().run(feeds)["y"]
    want = ort_run(model.SerializeToString(), feeds)["y"]
    assert_close(got, want, rtol=RTOL)
    if b > 1:
        assert np.all(np.isfinite(got))


@pytest.mark.parametrize("b,s", [(1, 1), (3, 77), (2, 130)])
def test_bert_small_packed_projections_match_onnxruntime(b, s):
    """bert_small's four self-attention layers each get one FusedMatMul for Q, K and V and a
    FusedAttention of layout bshd_qkv (builder/fuse_qkv.c): 16 FusedMatMul where there were 24,
    the outputs onnxruntime's at odd shapes."""
    from util import MODELS, model_path, random_feeds

    spec = MODELS["bert_small"]
    path = model_path(spec.filename)
    shapes = {"input_ids": (b, s), "attention_mask": (b, s)}
    builder = ductile.Builder()
    network = builder.parse_onnx_bytes(path.read_bytes())
    profile = builder.create_optimization_profile()
    for name, shape in shapes.items():
        profile.set_shape(name, shape, shape, shape)
    config = builder.create_builder_config()
    config.add_optimization_profile(profile)
    engine = builder.build_engine(network, config)
    ks = [layer["Kernel"] for layer in json.loads(engine.layer_info)["Layers"] if layer["Stage"] == "execute"]
    assert ks.count("cpu.FusedAttention") == 4
    assert ks.count("cpu.FusedMatMul") == 16, ks
    feeds = random_feeds(spec, shapes, seed=11)
    got = engine.create_execution_context().run(feeds)
    want = ort_run(str(path), feeds)
    for name, w in want.items():
        assert_close(got[name], w)


@pytest.mark.parametrize("src", [(2, 3), (2, 1)])
def test_expand_to_its_own_shape_is_a_view_and_matches_onnxruntime(src):
    """y = Relu(Expand(x, Shape(x2))): with x2 of x's shape the Expand changes nothing and runs as
    a view (a Reshape alias, builder/fuse.c); from [b, 1] it broadcasts and stays an Expand."""
    nodes = [h.make_node("Shape", ["x2"], ["s"]), h.make_node("Expand", ["x", "s"], ["e"]),
             h.make_node("Relu", ["e"], ["y"])]
    model = model_of(nodes, [], [h.make_tensor_value_info("x", T.FLOAT, ["b", src[1]]),
                                 h.make_tensor_value_info("x2", T.FLOAT, ["b", 3])],
                     [h.make_tensor_value_info("y", T.FLOAT, ["b", 3])])
    builder = ductile.Builder()
    network = builder.parse_onnx_bytes(model.SerializeToString())
    profile = builder.create_optimization_profile()
    profile.set_shape("x", (1, src[1]), (2, src[1]), (4, src[1]))
    profile.set_shape("x2", (1, 3), (2, 3), (4, 3))
    config = builder.create_builder_config()
    config.add_optimization_profile(profile)
    engine = builder.build_engine(network, config)
    ks = [l["Kernel"] for l in json.loads(engine.layer_info)["Layers"] if l["Stage"] == "execute"]
    assert ("cpu.Expand" in ks) == (src[1] == 1), ks
    rng = np.random.default_rng(6)
    feeds = {"x": rng.standard_normal((3, src[1]), dtype=np.float32), "x2": np.zeros((3, 3), np.float32)}
    got = engine.create_execution_context().run(feeds)["y"]
    assert np.array_equal(got, ort_run(model.SerializeToString(), feeds)["y"])
