"""FlexAttention (ai.onnx.preview, opset 1) at odd sizes against ONNX's reference evaluator
(onnxruntime has no kernel for it), through a serialized and reloaded engine with dynamic
dims; the modifier subgraphs are refused naming the attribute."""
import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

import ductile
from util import assert_close

PREVIEW = "ai.onnx.preview"
TYPES = {np.float32: TensorProto.FLOAT, np.float64: TensorProto.DOUBLE, np.float16: TensorProto.FLOAT16}


def flex_model(dtype, nodes=None, **attrs):
    t = TYPES[dtype]
    nodes = nodes or [helper.make_node("FlexAttention", ["Q", "K", "V"], ["Y"], domain=PREVIEW, **attrs)]
    graph = helper.make_graph(
        nodes, "flex",
        [helper.make_tensor_value_info("Q", t, ["b", "hq", "l", "e"]),
         helper.make_tensor_value_info("K", t, ["b", "hkv", "s", "e"]),
         helper.make_tensor_value_info("V", t, ["b", "hkv", "s", "ev"])],
        [helper.make_tensor_value_info("Y", t, None)])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 26), helper.make_opsetid(PREVIEW, 1)])
    m.ir_version = 11
    return m.SerializeToString()


@pytest.mark.parametrize("dtype,hq,hkv,e,ev,attrs", [
    (np.float32, 3, 3, 5, 5, {}),
    (np.float32, 6, 2, 7, 3, {}),                      # grouped KV heads, V's head size differs
    (np.float32, 4, 1, 9, 9, {"scale": 0.37}),
    (np.float64, 5, 5, 3, 11, {}),
    (np.float16, 4, 2, 8, 6, {}),
    (np.float32, 2, 2, 5, 4, {"softmax_precision": 11}),
])
def test_flex_attention_matches_onnx_reference(dtype, hq, hkv, e, ev, attrs):
    rng = np.random.default_rng(hq * 7 + e)
    b, l, s = 2, 7, 11
    feeds = {"Q": rng.standard_normal((b, hq, l, e)).astype(dtype),
             "K": rng.standard_normal((b, hkv, s, e)).astype(dtype),
             "V": rng.standard_normal((b, hkv, s, ev)).astype(dtype)}
    data = flex_model(dtype, **attrs)
    want = ReferenceEvaluator(data).run(None, feeds)[0]
    builder = ductile.Builder()
    network = builder.parse_onnx_bytes(data)
    profile = builder.create_optimization_profile()
    for name, x in feeds.items():
        profile.set_shape(name, tuple(max(1, d // 2) for d in x.shape), x.shape, tuple(2 * d for d in x.shape))
    config = builder.create_builder_config()
    config.add_optimization_profile(profile)
    engine = builder.build_engine(network, config)
    engine = ductile.Runtime().deserialize_cuda_engine(engine.serialize())
    got = engine.create_execution_context().run(feeds)["Y"]
    assert got.dtype == dtype and got.shape == (b, hq, l, ev)
    # float16: the reference rounds Q K^T to float16 before its float32 softmax; ductile does not.
    assert_close(got, want, rtol=2e-3 if dtype == np.float16 else 1e-6, what="FlexAttention")


def test_flex_attention_refusals():
    b = ductile.Builder()
    # A score_mod subgraph: refused by name (the importer refuses GRAPH attributes until
    # subgraphs are supported; the op refuses its modifiers after that).
    body = helper.make_graph([helper.make_node("Identity", ["s"], ["o"])], "mod",
                             [helper.make_tensor_value_info("s", TensorProto.FLOAT, None)],
                             [helper.make_tensor_value_info("o", TensorProto.FLOAT, None)])
    node = helper.make_node("FlexAttention", ["Q", "K", "V"], ["Y"], domain=PREVIEW, score_mod=body)
    with pytest.raises(ductile.Error) as info:
        b.build_engine(b.parse_onnx_bytes(flex_model(np.float32, [node])), b.create_builder_config())
    assert info.value.status == "DUCTILE_ERR_UNSUPPORTED"
    assert str(info.value) in (
        "node 'FlexAttention_0' (FlexAttention, opset 1): attribute 'score_mod' of type GRAPH is not supported by "
        "ductile",
        "node 'FlexAttention_0' (FlexAttention, opset 1): attribute 'score_mod' (a modifier subgraph) is not "
        "supported by ductile")
    # Heads that do not group.
    data = flex_model(np.float32)
    network = b.parse_onnx_bytes(data)
    profile = b.create_optimization_profile()
    for name, shape in (("Q", (1, 3, 2, 4)), ("K", (1, 2, 5, 4)), ("V", (1, 2, 5, 4))):
        profile.set_shape(name, shape, shape, shape)
    config = b.create_builder_config()
    config.add_optimization_profile(profile)
    with pytest.raises(ductile.Error) as info:
        b.build_engine(network, config)
    assert info.value.status == "DUCTILE_ERR_PROFILE"
    assert str(info.value) == ("profile 0 at shapes 'Q' [1,3,2,4], 'K' [1,2,5,4], 'V' [1,2,5,4]: node "
                               "'FlexAttention_0' (FlexAttention, opset 1): Q has 3 heads and K 2; Q's must be a "
                               "multiple of K's")
