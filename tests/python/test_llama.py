"""The small Llama-style decoder that bench/make_llama.py writes (Hugging Face's prefill graph as
PyTorch exports it: Gather embedding, RMSNorm in seven ops, rotary embedding, a causal mask from
Range comparisons, Softmax attention, the SwiGLU MLP) against onnxruntime: one engine over batch
1-4 and sequences 1-512, at a single token, a short prompt and an odd batch and length; the
same bits on 1 and 2 threads (2x130: blocks of query rows that leave the keys the causal mask hides
out of the products). Its attention divides the scores by sqrt(64) after the product:
that chain fuses (a power-of-two factor moves onto K exactly) with the unfused bits, other
factors stay unfused. On a GPU the CUDA engine runs the four attentions fused (else those
tests skip, saying so)."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ductile
from util import assert_close, ort_run

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    out = tmp_path_factory.mktemp("llama") / "llama.onnx"
    subprocess.run([sys.executable, str(REPO / "bench" / "make_llama.py"), str(out)], check=True)
    return out


@pytest.fixture(scope="module")
def engine(llama):
    builder = ductile.Builder()
    network = builder.parse_onnx(str(llama))
    profile = builder.create_optimization_profile()
    profile.set_shape("input_ids", (1, 1), (1, 128), (4, 512))
    config = builder.create_builder_config()
    config.add_optimization_profile(profile)
    return builder.build_engine(network, config)


@pytest.mark.parametrize("shape", [(1, 1), (1, 16), (3, 77), (2, 130)])
def test_llama_style_decoder_matches_onnxruntime(llama, engine, shape):
    ids = np.random.default_rng(19).integers(0, 2048, shape).astype(np.int64)
    want = ort_run(llama.read_bytes(), {"input_ids": ids})["logits"]
    ctx = engine.create_execution_context()
    got = ctx.run({"input_ids": ids})["logits"]
    assert_close(got, want, rtol=1e-5)
    ctx.set_threads(2)
    np.testing.assert_array_equal(ctx.run({"input_ids": ids})["logits"], got)


def test_llama_fuses_projection_epilogues_and_rmsnorms(engine):
    """Bias-free projections fuse what follows them: o_proj and down_proj their residual Add,
    gate_proj its SiLU (Sigmoid and Mul): three FusedMatMuls a layer, no Sigmoid left; the
    RMSNorms and the rotary embeddings fuse too (on the CPU: the CUDA backend has neither
    kernel)."""
    import collections
    import json
    types = collections.Counter(L["LayerType"] for L in json.loads(engine.layer_info)["Layers"])
    assert types["FusedMatMul"] == 12 and types["Sigmoid"] == 0 and types["FusedAttention"] == 4
    assert types["MatMul"] == 4 * 4 + 1   # q, k, v, up in each layer; the logits
    # each RMSNorm's seven layers are one RMSNormalization (two a layer and the final one)
    assert types["RMSNormalization"] == 9 and types["Pow"] == 0 and types["Reciprocal"] == 0
    # rotate_half's seven layers are one FusedRotary, for the queries and the keys of each layer
    assert types["FusedRotary"] == 8 and types["Neg"] == 0 and types["Concat"] == 0
    # K's Transpose to Kt goes into the attention (layout "krows"): Q, K, V and the output's remain
    assert types["Transpose"] == 4 * 4


def attention_model(op, c, keep_scores=False, d=64):
    """Q [B, 4, S, d] times K transposed, the scores divided (or multiplied) by c after the
    product as Hugging Face's eager attention writes it, a causal-style [S, S] mask, Softmax,
    times V; keep_scores also outputs the scaled scores (the chain then stays unfused)."""
    from onnx import TensorProto as T, helper as h, numpy_helper as nh
    nodes = [h.make_node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]), h.make_node("MatMul", ["q", "kt"], ["s"]),
             h.make_node(op, ["s", "c"], ["ss"]), h.make_node("Add", ["ss", "mask"], ["sm"]),
             h.make_node("Softmax", ["sm"], ["p"], axis=-1), h.make_node("MatMul", ["p", "v"], ["y"])]
    ins = [h.make_tensor_value_info(n, T.FLOAT, ["b", 4, "s", d]) for n in "qkv"]
    ins.append(h.make_tensor_value_info("mask", T.FLOAT, ["s", "s"]))
    outs = [h.make_tensor_value_info("y", T.FLOAT, None)]
    if keep_scores:
        outs.append(h.make_tensor_value_info("ss", T.FLOAT, None))
    graph = h.make_graph(nodes, "attention", ins, outs, [nh.from_array(np.array(c, np.float32), "c")])
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 17)], ir_version=8)


def attention_engine(model):
    builder = ductile.Builder()
    network = builder.parse_onnx_bytes(model.SerializeToString())
    profile = builder.create_optimization_profile()
    for n in "qkv":
        profile.set_shape(n, (1, 4, 1, 64), (2, 4, 33, 64), (2, 4, 70, 64))
    profile.set_shape("mask", (1, 1), (33, 33), (70, 70))
    config = builder.create_builder_config()
    config.add_optimization_profile(profile)
    return builder.build_engine(network, config)


@pytest.mark.parametrize("op,c,fused", [("Div", 8.0, True), ("Mul", 0.125, True), ("Div", 7.0, False),
                                        ("Mul", 0.3, False)])
def test_scores_scaled_after_the_product_fuse_where_exact(op, c, fused):
    """A power-of-two factor moves onto K (exact): one FusedAttention with the unfused chain's
    bits (the same model with the scores also an output stays unfused); any other factor keeps
    the chain unfused. Both against onnxruntime. 67 rows: the first block of query rows
    (fused_attention.c) leaves the keys its causal mask hides out of the products, bits kept."""
    import json
    rng = np.random.default_rng(20)
    b, s = 2, 67
    feeds = {n: rng.standard_normal((b, 4, s, 64), dtype=np.float32) for n in "qkv"}
    feeds["mask"] = np.where(np.arange(s)[None, :] > np.arange(s)[:, None], np.finfo(np.float32).min,
                             0.0).astype(np.float32)
    model = attention_model(op, c)
    engine = attention_engine(model)
    types = [L["LayerType"] for L in json.loads(engine.layer_info)["Layers"]]
    assert ("FusedAttention" in types) == fused and ("Softmax" in types) == (not fused)
    got = engine.create_execution_context().run(feeds)["y"]
    assert_close(got, ort_run(model.SerializeToString(), feeds)["y"], rtol=1e-5)
    unfused = attention_engine(attention_model(op, c, keep_scores=True))
    assert "Softmax" in [L["LayerType"] for L in json.loads(unfused.layer_info)["Layers"]]
    np.testing.assert_array_equal(unfused.create_execution_context().run(feeds)["y"], got)


@pytest.mark.parametrize("prec", ["fp32", "fp16"])
def test_cuda_runs_the_scaled_attention_fused_and_matches(prec):
    from test_cuda_fusions import check_cuda
    rng = np.random.default_rng(21)
    s = 40
    feeds = {n: rng.standard_normal((2, 4, s, 64), dtype=np.float32) for n in "qkv"}
    feeds["mask"] = np.where(np.arange(s)[None, :] > np.arange(s)[:, None], np.finfo(np.float32).min,
                             0.0).astype(np.float32)
    model = attention_model("Div", 8.0).SerializeToString()
    check_cuda(model, feeds, {"y": ort_run(model, feeds)["y"]}, {"FusedAttention": 1}, prec)


@pytest.mark.parametrize("prec", ["fp32", "fp16"])
def test_cuda_llama_style_decoder_matches(llama, prec):
    from test_cuda_fusions import check_cuda
    ids = np.random.default_rng(22).integers(0, 2048, (2, 45)).astype(np.int64)
    model = llama.read_bytes()
    check_cuda(model, {"input_ids": ids}, {"logits": ort_run(model, {"input_ids": ids})["logits"]},
               {"FusedAttention": 4}, prec)
