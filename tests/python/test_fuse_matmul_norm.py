"""FusedMatMul -> LayerNormalization into one FusedMatMul with norm = 1
(builder/fuse_matmul_norm.c): BERT's output projections, MatMul + bias [+ residual] [-> Gelu]
then a LayerNorm over the last axis, at odd sizes (K 24 to 1024, N 64 to 256, rows 1 to 40).
On the CPU: against onnxruntime and bit for bit against the unfused engine
(DUCTILE_FUSE_MATMUL_NORM=0: the same GEMM, then the LayerNorm's rows in place), with the layer
list showing what fused; near misses (a LayerNorm over two dims, a product that is also a
network output) stay apart. On CUDA: the fused layer on the GPU against the CPU engine,
float32 (cuBLASLt + the LayerNorm kernel) rel-L2 <= 1e-5, FP16 / BF16 <= 1e-2 through each
path forced (DUCTILE_CUDA_MATMUL_NORM: lt, own16, own16_splitk, own32, own32_splitk: the
tensor-core kernel whose blocks hold 16 or 32 whole rows, K split over a cluster or not) and the one the builder's timer picks;
the profiled run names the path. Without a GPU the CUDA half skips with "no CUDA device
found"."""
import numpy as np
import pytest
from onnx import TensorProto as T, helper as h, numpy_helper as nh

import ductile
from test_fusions import build, gelu_nodes, kernels, model_of
from util import assert_close, ort_run


def mm_norm_model(k, n, residual=True, ln_bias=True, gelu=False, axis=-1, product_out=False):
    """y = LayerNormalization(act(x @ W + b [+ r]), axis) with x [b, s, k], r [b, s, n]."""
    rng = np.random.default_rng(k * 1000 + n)
    inits = [nh.from_array((rng.standard_normal((k, n)) / np.sqrt(k)).astype(np.float32), "w"),
             nh.from_array(rng.standard_normal(n).astype(np.float32), "b"),
             nh.from_array((1 + 0.5 * rng.standard_normal(n)).astype(np.float32), "scale")]
    nodes = [h.make_node("MatMul", ["x", "w"], ["p"]), h.make_node("Add", ["p", "b"], ["pb"])]
    prev = "pb"
    if residual:
        nodes.append(h.make_node("Add", [prev, "r"], ["pr"]))
        prev = "pr"
    if gelu:
        g, c = gelu_nodes(prev, "pg", "g_")
        nodes += g
        inits += c
        prev = "pg"
    ln_in = [prev, "scale"]
    if ln_bias:
        inits.append(nh.from_array(rng.standard_normal(n).astype(np.float32), "lb"))
        ln_in.append("lb")
    nodes.append(h.make_node("LayerNormalization", ln_in, ["y"], axis=axis, epsilon=1e-5))
    inputs = [h.make_tensor_value_info("x", T.FLOAT, ["b", "s", k])]
    if residual:
        inputs.append(h.make_tensor_value_info("r", T.FLOAT, ["b", "s", n]))
    outputs = [h.make_tensor_value_info("y", T.FLOAT, ["b", "s", n])]
    if product_out:
        outputs.append(h.make_tensor_value_info(prev, T.FLOAT, ["b", "s", n]))
    return model_of(nodes, inits, inputs, outputs)


def feeds_of(k, n, b, s, residual=True, seed=7):
    rng = np.random.default_rng(seed)
    f = {"x": rng.standard_normal((b, s, k), dtype=np.float32)}
    if residual:
        f["r"] = 2 * rng.standard_normal((b, s, n), dtype=np.float32)
    return f


# name: (K, N, residual, LayerNorm's B, Gelu)
CASES = {
    "bert_out_proj": (256, 256, True, True, False),
    "bert_ffn2": (1024, 256, True, True, False),
    "small": (24, 64, True, True, False),
    "no_residual_no_b": (40, 128, False, False, False),
    "gelu_odd_n": (72, 192, True, True, True),
    "wide": (48, 512, True, True, False),
}
SHAPES = [(3, 7), (1, 40), (2, 1)]


def case(name, b, s):
    k, n, res, lb, gelu = CASES[name]
    return mm_norm_model(k, n, res, lb, gelu), feeds_of(k, n, b, s, res)


@pytest.mark.parametrize("b,s", SHAPES)
@pytest.mark.parametrize("name", list(CASES))
def test_layernorm_fuses_into_the_product_matching_onnxruntime_and_the_unfused_bits(monkeypatch, name, b, s):
    model, feeds = case(name, b, s)
    shapes = {k: v.shape for k, v in feeds.items()}
    fused = build(model, shapes)
    ks = kernels(fused)
    assert ks.count("cpu.FusedMatMul") == 1 and "cpu.LayerNormalization" not in ks, ks
    got = fused.create_execution_context().run(feeds)["y"]
    assert_close(got, ort_run(model.SerializeToString(), feeds)["y"], rtol=1e-5)
    monkeypatch.setenv("DUCTILE_FUSE_MATMUL_NORM", "0")
    apart = build(model, shapes)
    assert kernels(apart).count("cpu.LayerNormalization") == 1
    assert np.array_equal(apart.create_execution_context().run(feeds)["y"], got)


@pytest.mark.parametrize("axis,product_out", [(1, False), (-1, True)], ids=["two_dims", "product_is_output"])
def test_near_misses_stay_apart_and_match(axis, product_out):
    model = mm_norm_model(24, 64, axis=axis, product_out=product_out)
    feeds = feeds_of(24, 64, 2, 5)
    engine = build(model, {k: v.shape for k, v in feeds.items()})
    assert "cpu.LayerNormalization" in kernels(engine)
    got = engine.create_execution_context().run(feeds)
    # Over two dims the Scale and B of [N] broadcast to the normalized [S, N]: onnxruntime 1.31
    # applies them otherwise (max |diff| 0.6 here), onnx.reference as ONNX specifies, as ductile.
    if axis == 1:
        from onnx.reference import ReferenceEvaluator
        want = dict(zip(["y"], ReferenceEvaluator(model).run(["y"], feeds)))
    else:
        want = ort_run(model.SerializeToString(), feeds)
    for k in want:
        assert_close(got[k], want[k], rtol=1e-5)


# ---- CUDA ----

PATHS = ["timed", "lt", "own16", "own16_splitk", "own32", "own32_splitk"]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("prec", ["fp32", "fp16", "bf16"])
@pytest.mark.parametrize("b,s", SHAPES)
@pytest.mark.parametrize("name", list(CASES))
def test_cuda_fused_matmul_norm_matches_cpu(monkeypatch, name, b, s, prec, path):
    from test_cuda_fusions import FLAGS, check_cuda, cpu_reference, gpu_available
    if prec == "fp32" and path != "timed":
        pytest.skip("float32 has one path (cuBLASLt, then the LayerNorm kernel)")
    if path != "timed" and (b, s) != (3, 7):
        pytest.skip("each forced path at 3x7 (the timed one at every shape)")
    model, feeds = case(name, b, s)
    model = model.SerializeToString()
    want = cpu_reference(model, feeds, {"FusedMatMul": 1})
    if not gpu_available():
        pytest.skip("no CUDA device found")
    if path != "timed":
        monkeypatch.setenv("DUCTILE_CUDA_MATMUL_NORM", path)
    check_cuda(model, feeds, want, {"FusedMatMul": 1}, prec)
    from test_cuda_ops import build as build_on
    ctx = build_on(model, feeds, "cuda", FLAGS[prec]).create_execution_context()
    paths = []
    ctx.profiler = lambda t: paths.append(t.tactic) if t.op_type == "FusedMatMul" else None
    ctx.run(feeds)
    k, n = CASES[name][:2]
    own = prec != "fp32" and path.startswith("own") and n in (128, 256, 512)
    if path == "lt" or prec == "fp32" or (path.startswith("own") and not own):
        assert paths == ["cuda.FusedMatMul.cublaslt_layernorm"], paths
    elif own:
        assert paths and paths[0].startswith("cuda.FusedMatMul.own_gemm_norm"), paths
