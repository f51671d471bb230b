"""FlexAttention (ai.onnx.preview, opset 1) at odd sizes against ONNX's reference evaluator
(onnxruntime has no kernel for it), through a serialized and reloaded engine with dynamic
dims; the score_mod / prob_mod subgraphs (whole-tensor modifiers, as the spec defines them)
against the same reference, with symbolic sequence lengths, captures of enclosing tensors, a
save/load round trip, and their refusals word for word."""
import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

import ductile
from util import assert_close

PREVIEW = "ai.onnx.preview"
TYPES = {np.float32: TensorProto.FLOAT, np.float64: TensorProto.DOUBLE, np.float16: TensorProto.FLOAT16}


def flex_model(dtype, nodes=None, extra_inputs=(), initializers=(), **attrs):
    t = TYPES[dtype]
    nodes = nodes or [helper.make_node("FlexAttention", ["Q", "K", "V"], ["Y"], domain=PREVIEW, **attrs)]
    graph = helper.make_graph(
        nodes, "flex",
        [helper.make_tensor_value_info("Q", t, ["b", "hq", "l", "e"]),
         helper.make_tensor_value_info("K", t, ["b", "hkv", "s", "e"]),
         helper.make_tensor_value_info("V", t, ["b", "hkv", "s", "ev"]), *extra_inputs],
        [helper.make_tensor_value_info("Y", t, None)], initializer=list(initializers))
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


# ---- score_mod / prob_mod ---------------------------------------------------------------

F = TensorProto.FLOAT


def mod_graph(nodes, name="x", out="y", dtype=F, initializers=(), n_in=1, n_out=1):
    """A modifier subgraph: the scores or probabilities in, the same shape out."""
    return helper.make_graph(
        nodes, "mod",
        [helper.make_tensor_value_info(name if i == 0 else f"{name}{i}", dtype, None) for i in range(n_in)],
        [helper.make_tensor_value_info(out if i == 0 else f"{out}{i}", dtype, None) for i in range(n_out)],
        initializer=list(initializers))


def scalar(name, value, dtype=np.float32):
    return helper.make_tensor(name, TYPES[dtype], [], [value])


def soft_cap(cap=2.5, dtype=np.float32):
    """tanh(scores / cap) * cap (Gemma's soft cap)."""
    return mod_graph([helper.make_node("Div", ["x", "cap"], ["d"]), helper.make_node("Tanh", ["d"], ["t"]),
                      helper.make_node("Mul", ["t", "cap"], ["y"])],
                     dtype=TYPES[dtype], initializers=[scalar("cap", cap, dtype)])


def _indices():
    """q_idx [L, 1] and kv_idx [1, S] from the scores' own shape (int64)."""
    ints = lambda name, v: helper.make_tensor(name, TensorProto.INT64, [len(v)] if isinstance(v, list) else [], v if isinstance(v, list) else [v])
    inits = [ints("i2", 2), ints("i3", 3), ints("zero", 0), ints("one", 1), ints("qs", [-1, 1]), ints("ks", [1, -1])]
    nodes = [helper.make_node("Shape", ["x"], ["shape"]),
             helper.make_node("Gather", ["shape", "i2"], ["L"], axis=0),
             helper.make_node("Gather", ["shape", "i3"], ["S"], axis=0),
             helper.make_node("Range", ["zero", "L", "one"], ["qr"]),
             helper.make_node("Reshape", ["qr", "qs"], ["q_idx"]),
             helper.make_node("Range", ["zero", "S", "one"], ["kr"]),
             helper.make_node("Reshape", ["kr", "ks"], ["kv_idx"])]
    return nodes, inits


def relative_bias(slope=0.25):
    """scores + slope * (q_idx - kv_idx), the indices broadcast over batch and heads."""
    nodes, inits = _indices()
    nodes += [helper.make_node("Sub", ["q_idx", "kv_idx"], ["rel"]),
              helper.make_node("Cast", ["rel"], ["relf"], to=F),
              helper.make_node("Mul", ["relf", "slope"], ["bias"]),
              helper.make_node("Add", ["x", "bias"], ["y"])]
    return mod_graph(nodes, initializers=inits + [scalar("slope", slope)])


def causal_mask():
    """Where(q_idx >= kv_idx, scores, -inf)."""
    nodes, inits = _indices()
    nodes += [helper.make_node("GreaterOrEqual", ["q_idx", "kv_idx"], ["keep"]),
              helper.make_node("Where", ["keep", "x", "ninf"], ["y"])]
    return mod_graph(nodes, initializers=inits + [scalar("ninf", -np.inf)])


def prob_scale(factor=0.75):
    return mod_graph([helper.make_node("Mul", ["x", "f"], ["y"])], initializers=[scalar("f", factor)])


def build(data, feeds, lo=None, hi=None):
    """An engine whose every dim ranges (lo, hi: per input, else half and twice the feeds')."""
    builder = ductile.Builder()
    network = builder.parse_onnx_bytes(data)
    profile = builder.create_optimization_profile()
    for name, x in feeds.items():
        profile.set_shape(name, lo[name] if lo else tuple(max(1, d // 2) for d in x.shape), x.shape,
                          hi[name] if hi else tuple(2 * d for d in x.shape))
    config = builder.create_builder_config()
    config.add_optimization_profile(profile)
    return builder.build_engine(network, config)


def qkv(dtype, b=2, hq=3, hkv=3, l=7, s=7, e=5, ev=4, seed=0):
    rng = np.random.default_rng(seed)
    return {"Q": rng.standard_normal((b, hq, l, e)).astype(dtype),
            "K": rng.standard_normal((b, hkv, s, e)).astype(dtype),
            "V": rng.standard_normal((b, hkv, s, ev)).astype(dtype)}


MODS = {
    "soft_cap": {"score_mod": soft_cap()},
    "relative_bias": {"score_mod": relative_bias()},
    "causal_mask": {"score_mod": causal_mask()},
    "prob_scale": {"prob_mod": prob_scale()},
    "causal_and_prob_scale": {"score_mod": causal_mask(), "prob_mod": prob_scale(1.5)},
}


@pytest.mark.parametrize("mods", MODS, ids=list(MODS))
@pytest.mark.parametrize("hq,hkv,l,s", [(3, 3, 7, 7), (6, 3, 7, 5), (3, 1, 5, 9)])
def test_flex_attention_modifiers_match_onnx_reference(mods, hq, hkv, l, s):
    feeds = qkv(np.float32, hq=hq, hkv=hkv, l=l, s=s, seed=hq + l)
    data = flex_model(np.float32, **MODS[mods])
    want = ReferenceEvaluator(data).run(None, feeds)[0]
    engine = build(data, feeds)
    got = engine.create_execution_context().run(feeds)["Y"]
    assert got.dtype == np.float32 and got.shape == want.shape
    # Fully masked rows (causal with L > S) are NaN in both.
    assert np.array_equal(np.isnan(got), np.isnan(want))
    assert_close(got, want, rtol=1e-6, what=f"FlexAttention {mods}")


def test_flex_attention_modifier_sees_the_softmax_dtype():
    """float16 inputs: the scores reach score_mod as float32 (the default softmax dtype);
    float64 inputs, and softmax_precision = double, as float64; softmax_precision = float16
    as float16."""
    for dtype, attrs, mod_dtype in ((np.float16, {}, np.float32), (np.float64, {}, np.float64),
                                    (np.float32, {"softmax_precision": 11}, np.float64),
                                    (np.float32, {"softmax_precision": 10}, np.float16)):
        feeds = qkv(dtype, seed=3)
        data = flex_model(dtype, score_mod=soft_cap(1.5, mod_dtype), **attrs)
        want = ReferenceEvaluator(data).run(None, feeds)[0]
        got = build(data, feeds).create_execution_context().run(feeds)["Y"]
        assert got.dtype == dtype
        half = np.float16 in (dtype, mod_dtype)
        assert_close(got, want, rtol=2e-3 if half else 1e-6, what=f"{np.dtype(dtype)} {attrs}")


def test_flex_attention_symbolic_sequence_length_and_save_load():
    """One engine over a range of sequence lengths (L = S, both symbolic), then serialized and
    loaded: the same outputs, bit for bit, and equal to the reference at every length."""
    data = flex_model(np.float32, score_mod=relative_bias(0.5), prob_mod=prob_scale(0.5))
    assert ductile.Builder().parse_onnx_bytes(data).get_output(0).dim_names == ("b", "hq", "l", "ev")
    feeds = qkv(np.float32, b=1, hq=3, l=7, s=7)
    lo = {n: (1, 3, 1, x.shape[3]) for n, x in feeds.items()}
    hi = {n: (2, 3, 16, x.shape[3]) for n, x in feeds.items()}
    engine = build(data, feeds, lo, hi)
    loaded = ductile.Runtime().deserialize_cuda_engine(engine.serialize())
    built_ctx, loaded_ctx = engine.create_execution_context(), loaded.create_execution_context()
    ref = ReferenceEvaluator(data)
    for n in (7, 1, 16, 5):
        f = qkv(np.float32, b=2 if n == 5 else 1, l=n, s=n, seed=n)
        got = built_ctx.run(f)["Y"]
        assert got.shape == (f["Q"].shape[0], 3, n, 4)
        assert_close(got, ref.run(None, f)[0], rtol=1e-6, what=f"seq {n}")
        assert np.array_equal(loaded_ctx.run(f)["Y"], got)


def test_flex_attention_modifier_reads_enclosing_tensors():
    """A modifier that reads a graph input and an initializer of the enclosing graph (ONNX's
    outer-scope names): the node lists them as inputs, and the engine feeds them per run."""
    temp = helper.make_tensor_value_info("temp", F, [1])
    bias = helper.make_tensor("bias", F, [1], [0.125])
    score_mod = mod_graph([helper.make_node("Mul", ["x", "temp"], ["t"]), helper.make_node("Add", ["t", "bias"], ["y"])])
    node = helper.make_node("FlexAttention", ["Q", "K", "V"], ["Y"], domain=PREVIEW, score_mod=score_mod)
    data = flex_model(np.float32, [node], extra_inputs=[temp], initializers=[bias])
    feeds = qkv(np.float32, seed=5)
    engine = build(data, feeds)
    engine = ductile.Runtime().deserialize_cuda_engine(engine.serialize())
    ctx = engine.create_execution_context()
    for t in (0.5, 2.0):
        # The reference does not pass outer scopes into modifiers: compare with the same model
        # with the values written into the subgraph.
        inline = mod_graph([helper.make_node("Mul", ["x", "tc"], ["t"]), helper.make_node("Add", ["t", "bc"], ["y"])],
                           initializers=[helper.make_tensor("tc", F, [1], [t]), helper.make_tensor("bc", F, [1], [0.125])])
        want = ReferenceEvaluator(flex_model(np.float32, score_mod=inline)).run(None, feeds)[0]
        got = ctx.run({**feeds, "temp": np.array([t], np.float32)})["Y"]
        assert_close(got, want, rtol=1e-6, what=f"temp {t}")


def refusal(data, feeds=None):
    """The error of parsing and building data (feeds: also run it)."""
    b = ductile.Builder()
    with pytest.raises(ductile.Error) as info:
        if feeds is None:
            b.build_engine(b.parse_onnx_bytes(data), b.create_builder_config())
        else:
            build(data, feeds).create_execution_context().run(feeds)
    return info.value.status, str(info.value)


def test_flex_attention_modifier_refusals():
    node = "node 'FlexAttention_0' (FlexAttention, opset 1): "
    two_in = mod_graph([helper.make_node("Add", ["x", "x1"], ["y"])], n_in=2)
    assert refusal(flex_model(np.float32, score_mod=two_in)) == (
        "DUCTILE_ERR_INVALID_ARGUMENT",
        node + "attribute 'score_mod' has 2 inputs; expected 1 (the scores, [batch, heads, query, key])")
    two_out = mod_graph([helper.make_node("Identity", ["x"], ["y"]), helper.make_node("Neg", ["x"], ["y1"])], n_out=2)
    assert refusal(flex_model(np.float32, prob_mod=two_out)) == (
        "DUCTILE_ERR_INVALID_ARGUMENT",
        node + "attribute 'prob_mod' has 2 outputs; expected 1 (the probabilities, modified)")
    # Only score_mod and prob_mod are subgraphs of FlexAttention.
    body = mod_graph([helper.make_node("Identity", ["x"], ["y"])])
    assert refusal(flex_model(np.float32, body=body)) == (
        "DUCTILE_ERR_UNSUPPORTED", node + "attribute 'body' of type GRAPH is not supported by ductile")
    # A modifier declared with another dtype than the softmax's (float32 here).
    half = mod_graph([helper.make_node("Identity", ["x"], ["y"])], dtype=TensorProto.FLOAT16)
    feeds = qkv(np.float32)
    status, message = refusal(flex_model(np.float32, score_mod=half), feeds)
    assert status == "DUCTILE_ERR_PROFILE"
    assert message.endswith(
        node + "attribute 'score_mod': input 'x' is declared float16; expected float32 (the softmax dtype: "
        "softmax_precision, else float64 for float64 inputs and float32 for others)"), message
    rank2 = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "mod",
                              [helper.make_tensor_value_info("x", F, [2, 3])], [helper.make_tensor_value_info("y", F, None)])
    status, message = refusal(flex_model(np.float32, score_mod=rank2), feeds)
    assert status == "DUCTILE_ERR_PROFILE"
    assert message.endswith(node + "attribute 'score_mod': input 'x' is declared with rank 2; expected 4 ([batch, "
                            "heads, query, key])"), message
    # An output of another dtype (undeclared) or shape than the scores: refused when it runs,
    # naming both.
    cast = helper.make_graph([helper.make_node("Cast", ["x"], ["y"], to=TensorProto.FLOAT16)], "mod",
                             [helper.make_tensor_value_info("x", F, None)], [helper.make_tensor_value_info("y", 0, None)])
    assert refusal(flex_model(np.float32, prob_mod=cast), feeds) == (
        "DUCTILE_ERR_SHAPE",
        node + "prob_mod: output 0 ('y') is float16 [2,3,7,7]; expected float32 [2,3,7,7] (the dtype and shape of "
        "its input)")
    shrink = mod_graph([helper.make_node("ReduceMax", ["x", "axes"], ["y"], keepdims=1)],
                       initializers=[helper.make_tensor("axes", TensorProto.INT64, [1], [3])])
    assert refusal(flex_model(np.float32, score_mod=shrink), feeds) == (
        "DUCTILE_ERR_SHAPE",
        node + "score_mod: output 0 ('y') is float32 [2,3,7,1]; expected float32 [2,3,7,7] (the dtype and shape of "
        "its input)")


def test_flex_attention_modifiers_on_constants_and_inside_a_loop():
    """Q, K, V constants: the layer runs in the shape pass (never folded: its subgraph is the
    runtime's); inside a Loop body: the body's run lends the kernel the same runner."""
    feeds = qkv(np.float32, seed=9)
    want = ReferenceEvaluator(flex_model(np.float32, score_mod=causal_mask())).run(None, feeds)[0]
    consts = [helper.make_tensor(n, F, x.shape, x.ravel()) for n, x in feeds.items()]
    flex = helper.make_node("FlexAttention", ["Q", "K", "V"], ["Y0"], domain=PREVIEW, score_mod=causal_mask())
    graph = helper.make_graph([flex, helper.make_node("Add", ["Y0", "x"], ["Y"])], "consts",
                              [helper.make_tensor_value_info("x", F, [1])], [helper.make_tensor_value_info("Y", F, None)],
                              initializer=consts)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 26), helper.make_opsetid(PREVIEW, 1)])
    m.ir_version = 11
    x = {"x": np.array([0.5], np.float32)}
    got = build(m.SerializeToString(), x, {"x": (1,)}, {"x": (1,)}).create_execution_context().run(x)["Y"]
    assert_close(got, want + 0.5, rtol=1e-6, what="constant Q, K, V")

    # Loop: acc += FlexAttention(Q, K, V) twice, Q, K, V read from the enclosing graph.
    body = helper.make_graph(
        [helper.make_node("FlexAttention", ["Q", "K", "V"], ["y"], domain=PREVIEW, score_mod=causal_mask()),
         helper.make_node("Add", ["acc", "y"], ["acc_out"]), helper.make_node("Identity", ["cond"], ["cond_out"])],
        "body", [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                 helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
                 helper.make_tensor_value_info("acc", F, None)],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []), helper.make_tensor_value_info("acc_out", F, None)])
    loop = helper.make_node("Loop", ["M", "", "A"], ["Y"], body=body)
    graph = helper.make_graph(
        [loop], "loop",
        [helper.make_tensor_value_info(n, F, d) for n, d in (("Q", ["b", "h", "l", "e"]), ("K", ["b", "h", "s", "e"]),
                                                              ("V", ["b", "h", "s", "ev"]))] +
        [helper.make_tensor_value_info("A", F, ["b", "h", "l", "ev"])], [helper.make_tensor_value_info("Y", F, None)],
        initializer=[helper.make_tensor("M", TensorProto.INT64, [], [2])])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 26), helper.make_opsetid(PREVIEW, 1)])
    m.ir_version = 11
    f = {**feeds, "A": np.ones(want.shape, np.float32)}
    got = build(m.SerializeToString(), f).create_execution_context().run(f)["Y"]
    assert_close(got, 1 + 2 * want, rtol=1e-6, what="inside a Loop")


def test_flex_attention_modifier_buffers_count_in_the_context_memory():
    """The subgraph runs a context keeps count in its memory size: a score_mod with one more
    [B, Hq, L, S] float32 tensor holds exactly that many more bytes."""
    feeds = qkv(np.float32, b=2, hq=3, l=7, s=5)
    sizes = []
    for n_neg in (2, 3):
        names = ["x"] + [f"n{i}" for i in range(n_neg - 1)] + ["y"]
        mod = mod_graph([helper.make_node("Neg", [names[i]], [names[i + 1]]) for i in range(n_neg)])
        ctx = build(flex_model(np.float32, score_mod=mod), feeds).create_execution_context()
        ctx.run(feeds)
        sizes.append(ctx.memory_size)
    assert sizes[1] - sizes[0] == 2 * 3 * 7 * 5 * 4
