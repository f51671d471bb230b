"""The transformer fusions on CUDA: FusedMatMul (cuBLASLt with its bias epilogue, the residual
as cuBLASLt's C, the erf Gelu after), FusedAttention (the own flash-style kernel) and
FusedLayerNorm (the sums formed in the LayerNorm kernel's load), against
the CPU engine on the same inputs, at odd sizes: sequence 7 and 40 (more than one tile of 32
keys), 3 heads, head dims 24, 64 and 160 (Q.K and the output in chunks of 128), a fully masked
sequence (NaN rows made 0), and un-transposed attention with every mask shape the CPU fusion
accepts (full, per key, per query row, per batch, scalar; -inf entries; fully masked rows
without nan_to_zero stay NaN, as on the CPU). Each case asserts on the CPU engine that the
layers fused (so the case is valid where no GPU is), then that the CUDA engine runs the fused
layers on the GPU and matches: float32 rel-L2 <= 1e-5; FP16 and BF16 engines, the fused
layers in half, <= 1e-2 (test_cuda.py's bound for half engines). Without a GPU the CUDA half
skips with "no CUDA device found"."""
import json

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto as T, helper as h, numpy_helper as nh  # noqa: E402

import ductile  # noqa: E402
from test_cuda_ops import build, gpu_available  # noqa: E402
from test_fusions import attention_model, ffn_model, model_of  # noqa: E402
from util import rel_l2  # noqa: E402

FLAGS = {"fp32": (), "fp16": (ductile.BuilderFlag.FP16,), "bf16": (ductile.BuilderFlag.BF16,)}
HALF = {"fp16": "float16", "bf16": "bfloat16"}
# BF16 keeps 8 bits of mantissa: attention_model's scores reach |s| ~ 30 (weights 0.3, 128
# features), so rounding Q and K to bfloat16 moves a score by ~0.1 and its probability by
# ~10%; the H200 measured rel-L2 1.0e-2 to 2.1e-2 for three of these blocks in BF16 (FP16: all
# within 1e-2).
BOUND = {"fp32": 1e-5, "fp16": 1e-2, "bf16": 3e-2}


def executed(engine):
    return [l for l in json.loads(engine.layer_info)["Layers"] if l["Stage"] == "execute"]


def kernels(engine):
    return [l["Kernel"] for l in executed(engine)]


def check_cuda(model_bytes, feeds, want, fused, prec, heads=None):
    """Builds the CUDA engine (precision prec), checks that the `fused` op counts ran on the GPU
    (in half for half engines), and compares with the CPU engine's outputs `want`. heads: the
    attention's (D, Dv): the profiled run names the kernel it took, a tensor-core one only
    where they apply (half, dims multiples of 16 up to 128: the builder times them there; the
    split-key mma kernel up to 64)."""
    if not gpu_available():
        pytest.skip("no CUDA device found")
    engine = build(model_bytes, feeds, "cuda", FLAGS[prec])
    ks = kernels(engine)
    for op, n in fused.items():
        assert ks.count(f"cuda.{op}") == n, ks
    for l in executed(engine):
        if l["LayerType"] in fused:
            assert l.get("Placement") != "cpu fallback", l
    if prec != "fp32":
        for l in executed(engine):
            if l["LayerType"] in fused:
                assert l["Outputs"][0]["Dtype"] == HALF[prec], l
    ctx = engine.create_execution_context()
    got = ctx.run(feeds)
    if heads:
        paths = []
        ctx.profiler = lambda t: paths.append(t.tactic) if t.op_type == "FusedAttention" else None
        again = ctx.run(feeds)
        print(f"ATTENTION-PATH {prec} D,Dv={heads}: {sorted(set(paths))}")
        tc = prec != "fp32" and all(16 <= d <= 128 and d % 16 == 0 for d in heads)
        split = tc and max(heads) <= 64   # the split-key mma kernel's head dims
        allowed = {"cuda.FusedAttention.cuda_cores"} | (
            {"cuda.FusedAttention.tensor_cores", "cuda.FusedAttention.mma"} if tc else set()) | (
            {"cuda.FusedAttention.mma_split"} if split else set())
        assert paths and set(paths) <= allowed, paths
    for name, w in want.items():
        for g in [got[name]] + ([again[name]] if heads else []):
            assert g.shape == w.shape and g.dtype == w.dtype
            assert np.array_equal(np.isnan(g), np.isnan(w)), name
            ok = ~np.isnan(w)
            err = rel_l2(g[ok], w[ok])
            assert err <= BOUND[prec], f"{prec}: rel-L2 {err:.3e}"


def cpu_reference(model_bytes, feeds, fused):
    engine = build(model_bytes, feeds, "cpu")
    ks = kernels(engine)
    for op, n in fused.items():
        assert ks.count(f"cpu.{op}") == n, ks
    return engine.create_execution_context().run(feeds)


@pytest.mark.parametrize("prec", ["fp32", "fp16", "bf16"])
@pytest.mark.parametrize("shape", [(3, 7), (1, 40), (2, 1)])
def test_cuda_fused_matmul_bias_gelu_residual_matches_cpu(shape, prec):
    k, n = 24, 70
    model = ffn_model(k, n, (n,)).SerializeToString()
    x = np.random.default_rng(2).standard_normal(shape + (k,), dtype=np.float32)
    feeds = {"x": x}
    want = cpu_reference(model, feeds, {"FusedMatMul": 2})
    check_cuda(model, feeds, want, {"FusedMatMul": 2}, prec)


@pytest.mark.parametrize("qkv", ["packed", "separate"])
@pytest.mark.parametrize("prec", ["fp32", "fp16", "bf16"])
@pytest.mark.parametrize("b,s,heads,d", [(3, 7, 3, 24), (1, 40, 3, 24), (2, 1, 3, 64), (2, 70, 2, 64),
                                         (2, 9, 2, 160)])
def test_cuda_fused_attention_bert_block_matches_cpu(monkeypatch, b, s, heads, d, prec, qkv):
    """BERT's block (attention_model): the heads' Transposes absorbed (layout bshd), Q and K
    scaled, the [B, S] mask made 0 / -inf, one sequence fully masked (NaN rows made 0), and
    the three projections as one FusedMatMul (packed: layout bshd_qkv, builder/fuse_qkv.c) or,
    with DUCTILE_FUSE_QKV=0, three."""
    if qkv == "separate":
        monkeypatch.setenv("DUCTILE_FUSE_QKV", "0")
    model = attention_model(heads, d).SerializeToString()
    rng = np.random.default_rng(5)
    x = rng.standard_normal((b, s, heads * d), dtype=np.float32)
    mask = rng.integers(0, 2, size=(b, s), dtype=np.int64)
    mask[:, 0] = 1
    if b > 1:
        mask[-1] = 0
    feeds = {"x": x, "mask": mask}
    fused = {"FusedAttention": 1, "FusedMatMul": 1 if qkv == "packed" else 3}
    want = cpu_reference(model, feeds, fused)
    if b > 1:
        assert np.all(want["y"][-1] == 0)   # the fully masked sequence
    check_cuda(model, feeds, want, fused, prec, heads=(d, d))


def plain_attention_model(q_shape, kt_shape, v_shape, mask_shape, nan_to_zero):
    """Mul(Q, a) and Mul(Kt, b) -> MatMul -> Add(mask) -> Softmax [-> IsNaN/Where] -> MatMul(V)
    on graph inputs, no Transposes (layout ""); the mask an input of mask_shape."""
    nodes = [h.make_node("Mul", ["q", "a"], ["qs"]), h.make_node("Mul", ["kt", "b"], ["ks"]),
             h.make_node("MatMul", ["qs", "ks"], ["s"]), h.make_node("Add", ["s", "mask"], ["sm"]),
             h.make_node("Softmax", ["sm"], ["p"], axis=-1)]
    if nan_to_zero:
        nodes += [h.make_node("IsNaN", ["p"], ["pn"]), h.make_node("Where", ["pn", "zero", "p"], ["p0"])]
    nodes.append(h.make_node("MatMul", ["p0" if nan_to_zero else "p", "v"], ["y"]))
    inits = [nh.from_array(np.array(0.7, np.float32), "a"), nh.from_array(np.array(0.45, np.float32), "b"),
             nh.from_array(np.array(0.0, np.float32), "zero")]
    ins = [h.make_tensor_value_info(n, T.FLOAT, list(s)) for n, s in
           (("q", q_shape), ("kt", kt_shape), ("v", v_shape), ("mask", mask_shape))]
    return model_of(nodes, inits, ins, [h.make_tensor_value_info("y", T.FLOAT, None)]).SerializeToString()


# (name, Q [.., S, D], L, Dv, mask shape, nan_to_zero)
PLAIN = [
    ("full_mask", (2, 3, 7, 24), 9, 40, (2, 3, 7, 9), True),
    ("key_mask_bert", (2, 3, 7, 24), 37, 24, (2, 1, 1, 37), True),
    ("scores_2d_mask", (2, 3, 5, 64), 33, 64, (5, 33), False),
    ("per_key_1d", (1, 2, 6, 16), 40, 8, (40,), True),
    ("per_row", (2, 3, 7, 24), 11, 24, (2, 3, 7, 1), False),
    ("scalar_mask", (3, 7, 24), 7, 24, (), True),
    ("one_mask_rank3", (3, 7, 24), 12, 20, (3, 1, 12), False),
    ("rank2_wide_heads", (5, 200), 45, 150, (5, 45), True),
]


@pytest.mark.parametrize("prec", ["fp32", "fp16", "bf16"])
@pytest.mark.parametrize("name,qs,L,dv,ms,nan0", PLAIN, ids=[p[0] for p in PLAIN])
def test_cuda_fused_attention_masks_match_cpu(name, qs, L, dv, ms, nan0, prec):
    kts = qs[:-2] + (qs[-1], L)
    vs = qs[:-2] + (L, dv)
    model = plain_attention_model(qs, kts, vs, ms, nan0)
    rng = np.random.default_rng(sum(map(ord, name)))
    mask = rng.standard_normal(ms).astype(np.float32)
    if mask.ndim and mask.size > 2:
        mask.flat[rng.choice(mask.size, mask.size // 4, replace=False)] = -np.inf
        if ms[-1] != 1:   # one row fully masked: NaN (0 with nan_to_zero) on the CPU
            mask.reshape(-1, ms[-1])[0] = -np.inf
    feeds = {"q": rng.standard_normal(qs, dtype=np.float32), "kt": rng.standard_normal(kts, dtype=np.float32),
             "v": rng.standard_normal(vs, dtype=np.float32), "mask": mask}
    want = cpu_reference(model, feeds, {"FusedAttention": 1})
    check_cuda(model, feeds, want, {"FusedAttention": 1}, prec, heads=(qs[-1], dv))


@pytest.mark.parametrize("prec", ["fp32", "fp16", "bf16"])
@pytest.mark.parametrize("b,s", [(3, 7), (2, 33)])
@pytest.mark.parametrize("name", ["bert_embeddings", "sums_only", "per_feature", "middle_broadcast",
                                  "gather_one_addend", "two_dims"])
def test_cuda_fused_layernorm_matches_cpu(name, b, s, prec):
    """FusedLayerNorm (builder/fuse_norm.c) on the GPU: test_fuse_layernorm's cases (rows of a
    table by ids, negative ones too), a warp per row. Over two dims the Scale and B of [E] are a
    suffix of the normalized [S, E], which the CUDA LayerNorm kernels do not repeat (nor for
    LayerNormalization): the run refuses it naming the size (H200, session 10: so at 3x7 and
    2x33 in all three precisions)."""
    from test_fuse_layernorm import case
    model, feeds = case(name, b, s)
    model = model.SerializeToString()
    want = cpu_reference(model, feeds, {"FusedLayerNorm": 1})
    if name == "two_dims":
        if not gpu_available():
            pytest.skip("no CUDA device found")
        engine = build(model, feeds, "cuda", FLAGS[prec])
        with pytest.raises(ductile.Error, match=f"needs Scale and B of {s * 40} elements"):
            engine.create_execution_context().run(feeds)
        return
    check_cuda(model, feeds, want, {"FusedLayerNorm": 1}, prec)
