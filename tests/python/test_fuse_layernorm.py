"""Add [-> Add] -> LayerNormalization into FusedLayerNorm (builder/fuse_norm.c) on the CPU:
BERT's embeddings (rows of a table picked by ids, negative ones too, + token type + position
[1, S, E]), addends that broadcast along any row dim ([E], [B, 1, E]), a LayerNorm over the
last two dims, without B; each against onnxruntime
and bit for bit against the unfused engine (DUCTILE_FUSE_NORM=0: the sums are formed in the
chain's order), with the layer list showing what fused. Near misses stay unfused: an addend
that broadcasts inside the normalized dims ([B, S, 1]), a sum that is also a network output."""
import numpy as np
import pytest
from onnx import TensorProto as T, helper as h, numpy_helper as nh

from test_fusions import build, kernels, model_of
from util import assert_close, ort_run

E = 40


VOCAB = 50


def ln_model(r_shapes, axis=-1, bias=True, sum_is_output=False, gather=False):
    """y = LayerNormalization(((x + r0) + r1 ...), axis): x [b, s, E] (gather: the rows of a
    [VOCAB, E] table picked by int64 ids [b, s], BERT's word embeddings), addends of r_shapes
    (inputs where a dim is symbolic, else constants); Scale and B [E] (over two dims: a suffix
    of them)."""
    rng = np.random.default_rng(3)
    scale = nh.from_array(rng.standard_normal((E,), dtype=np.float32) + 1, "scale")
    inits = [scale]
    nodes, prev = [], "x"
    if gather:
        inits.append(nh.from_array(rng.standard_normal((VOCAB, E), dtype=np.float32), "table"))
        nodes.append(h.make_node("Gather", ["table", "ids"], ["x"]))
    for i in range(len(r_shapes)):
        nodes.append(h.make_node("Add", [prev, f"r{i}"], [f"sum{i}"]))
        prev = f"sum{i}"
    ln_in = [prev, "scale"]
    if bias:
        inits.append(nh.from_array(rng.standard_normal((E,), dtype=np.float32), "bias"))
        ln_in.append("bias")
    nodes.append(h.make_node("LayerNormalization", ln_in, ["y"], axis=axis, epsilon=1e-5))
    inputs = [h.make_tensor_value_info("ids", T.INT64, ["b", "s"]) if gather else
              h.make_tensor_value_info("x", T.FLOAT, ["b", "s", E])]
    for i, shape in enumerate(r_shapes):
        if is_const(shape):
            inits.append(nh.from_array(rng.standard_normal(shape, dtype=np.float32), f"r{i}"))
        else:
            inputs.append(h.make_tensor_value_info(f"r{i}", T.FLOAT, list(shape)))
    outputs = [h.make_tensor_value_info("y", T.FLOAT, ["b", "s", E])]
    if sum_is_output:
        outputs.append(h.make_tensor_value_info(prev, T.FLOAT, ["b", "s", E]))
    return model_of(nodes, inits, inputs, outputs)


def is_const(shape):
    """Addends of fixed dims are initializers (constants), the others network inputs."""
    return all(isinstance(d, int) for d in shape)


def feeds_of(r_shapes, b, s, seed=4, gather=False):
    rng = np.random.default_rng(seed)
    dims = {"b": b, "s": s}
    if gather:   # negative ids wrap, as Gather's
        f = {"ids": rng.integers(-VOCAB, VOCAB, size=(b, s), dtype=np.int64)}
    else:
        f = {"x": rng.standard_normal((b, s, E), dtype=np.float32) * 3 + 1}
    for i, shape in enumerate(r_shapes):
        if is_const(shape):
            continue
        f[f"r{i}"] = rng.standard_normal(tuple(dims.get(d, d) for d in shape), dtype=np.float32)
    return f


# name: (addend shapes, axis, B given, x gathered from a table)
CASES = {
    "bert_embeddings": ([("b", "s", E), (1, "s", E)], -1, True, True),
    "sums_only": ([("b", "s", E), (1, "s", E)], -1, True, False),
    "per_feature": ([(E,)], -1, True, False),
    "middle_broadcast": ([("b", 1, E)], -1, False, False),
    "gather_one_addend": ([(1, 1, E)], -1, False, True),
    "two_dims": ([("b", "s", E), (1, "s", E)], 1, True, False),
}


def case(name, b, s):
    r_shapes, axis, bias, gather = CASES[name]
    return ln_model(r_shapes, axis, bias, gather=gather), feeds_of(r_shapes, b, s, gather=gather)


@pytest.mark.parametrize("b,s", [(3, 7), (1, 1), (2, 33)])
@pytest.mark.parametrize("name", list(CASES))
def test_sums_into_layernorm_fuse_match_onnxruntime_and_the_unfused_bits(monkeypatch, name, b, s):
    model, feeds = case(name, b, s)
    r_shapes = CASES[name][0]
    shapes = {k: v.shape for k, v in feeds.items()}
    fused = build(model, shapes)
    ks = kernels(fused)
    assert ks.count("cpu.FusedLayerNorm") == 1 and "cpu.Add" not in ks and "cpu.Gather" not in ks, ks
    got = fused.create_execution_context().run(feeds)["y"]
    assert_close(got, ort_run(model.SerializeToString(), feeds)["y"], rtol=1e-5)
    monkeypatch.setenv("DUCTILE_FUSE_NORM", "0")
    apart = build(model, shapes)
    assert kernels(apart).count("cpu.Add") == len(r_shapes)
    assert np.array_equal(apart.create_execution_context().run(feeds)["y"], got)


def test_gathered_id_out_of_range_is_refused_naming_it():
    model, feeds = case("bert_embeddings", 2, 5)
    feeds["ids"][1, 3] = VOCAB
    engine = build(model, {k: v.shape for k, v in feeds.items()})
    assert "cpu.FusedLayerNorm" in kernels(engine)
    with pytest.raises(Exception, match=r"input 5 \(IDS\) holds the index 50 at position 8"):
        engine.create_execution_context().run(feeds)


@pytest.mark.parametrize("r_shape,as_output", [(("b", "s", 1), False), (("b", "s", E), True)],
                         ids=["broadcast_in_row", "sum_is_output"])
def test_near_misses_stay_unfused_and_match(r_shape, as_output):
    model = ln_model([r_shape], sum_is_output=as_output)
    feeds = feeds_of([r_shape], 2, 5)
    engine = build(model, {k: v.shape for k, v in feeds.items()})
    ks = kernels(engine)
    assert "cpu.FusedLayerNorm" not in ks and "cpu.Add" in ks, ks
    got = engine.create_execution_context().run(feeds)
    want = ort_run(model.SerializeToString(), feeds)
    for k in want:
        assert_close(got[k], want[k], rtol=1e-5)
