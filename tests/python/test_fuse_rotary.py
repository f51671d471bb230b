"""The rotary position embedding as Hugging Face's rotate_half writes it (Slice, Slice, Neg,
Concat, Mul, Mul, Add) fuses into one FusedRotary on the CPU, with the unfused layers' bits
(the same model with an intermediate also an output stays unfused) and onnxruntime's values,
for cos / sin tables of each broadcast form, odd head sizes and sequence lengths; near misses
(a slice that is not the halves, a Concat in the other order) stay unfused."""
import json

import numpy as np
import pytest

import ductile
from util import assert_close, ort_run


def rotary_model(d, table_shape, half=None, swap=False, keep_rot=False):
    """x [b, h, s, d] (the head size d static, as exporters write it) rotated by cos and sin of
    table_shape (names symbolic)."""
    from onnx import TensorProto as T, helper as h, numpy_helper as nh
    i64 = lambda n, v: nh.from_array(np.array([v], np.int64), n)
    inits = [i64("zero", 0), i64("half", half if half is not None else 0), i64("end", 2 ** 62), i64("last", -1)]
    nodes = [
        h.make_node("Slice", ["x", "zero", "half", "last"], ["x1"]),
        h.make_node("Slice", ["x", "half", "end", "last"], ["x2"]),
        h.make_node("Neg", ["x2"], ["nx2"]),
        h.make_node("Concat", ["x1", "nx2"] if swap else ["nx2", "x1"], ["rot"], axis=-1),
        h.make_node("Mul", ["x", "cos"], ["xc"]),
        h.make_node("Mul", ["rot", "sin"], ["rs"]),
        h.make_node("Add", ["xc", "rs"], ["y"]),
    ]
    ins = [h.make_tensor_value_info("x", T.FLOAT, ["b", "h", "s", d]),
           h.make_tensor_value_info("cos", T.FLOAT, table_shape), h.make_tensor_value_info("sin", T.FLOAT, table_shape)]
    outs = [h.make_tensor_value_info("y", T.FLOAT, None)]
    if keep_rot:
        outs.append(h.make_tensor_value_info("rot", T.FLOAT, None))
    graph = h.make_graph(nodes, "rotary", ins, outs, inits)
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 17)], ir_version=8)


def run(model, feeds):
    builder = ductile.Builder()
    network = builder.parse_onnx_bytes(model.SerializeToString())
    profile = builder.create_optimization_profile()
    for n, a in feeds.items():
        profile.set_shape(n, a.shape, a.shape, a.shape)
    config = builder.create_builder_config()
    config.add_optimization_profile(profile)
    engine = builder.build_engine(network, config)
    types = [L["LayerType"] for L in json.loads(engine.layer_info)["Layers"]]
    return types, engine.create_execution_context().run(feeds)


@pytest.mark.parametrize("b,h,s,d,table", [
    (1, 4, 16, 64, "s,d"),          # a [S, D] table
    (2, 3, 7, 10, "1,1,s,d"),       # odd sizes, the table [1, 1, S, D]
    (3, 2, 33, 64, "b,1,s,d"),      # a table per batch
])
def test_rotary_fuses_with_the_unfused_bits(b, h, s, d, table):
    rng = np.random.default_rng(7)
    dims = {"b": b, "h": h, "s": s, "d": d}
    tshape = [dims.get(t, 1) if not t.isdigit() else int(t) for t in table.split(",")]
    feeds = {"x": rng.standard_normal((b, h, s, d), dtype=np.float32),
             "cos": rng.standard_normal(tshape, dtype=np.float32),
             "sin": rng.standard_normal(tshape, dtype=np.float32)}
    sym = [d if t == "d" else int(t) if t.isdigit() else t for t in table.split(",")]
    model = rotary_model(d, sym, half=d // 2)
    types, got = run(model, feeds)
    assert types.count("FusedRotary") == 1 and "Concat" not in types and "Neg" not in types
    assert_close(got["y"], ort_run(model.SerializeToString(), feeds)["y"], rtol=1e-6)
    types_u, unfused = run(rotary_model(d, sym, half=d // 2, keep_rot=True), feeds)
    assert "FusedRotary" not in types_u and "Concat" in types_u
    np.testing.assert_array_equal(got["y"], unfused["y"])


@pytest.mark.parametrize("half,swap", [(3, False), (None, True)])
def test_rotary_near_misses_stay_unfused(half, swap):
    rng = np.random.default_rng(8)
    d = 8
    feeds = {"x": rng.standard_normal((1, 2, 5, d), dtype=np.float32),
             "cos": rng.standard_normal((5, d), dtype=np.float32),
             "sin": rng.standard_normal((5, d), dtype=np.float32)}
    model = rotary_model(d, ["s", d], half=d // 2 if half is None else half, swap=swap)
    types, got = run(model, feeds)
    assert "FusedRotary" not in types and "Concat" in types
    assert_close(got["y"], ort_run(model.SerializeToString(), feeds)["y"], rtol=1e-6)
