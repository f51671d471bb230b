"""Each CUDA FusedAttention kernel, forced (DUCTILE_CUDA_ATTENTION=wmma|mma|mma_split|cores, read when
the engine's layers are compiled, so the builder's timing cannot hide a kernel), against the CPU
engine on the same inputs at odd sizes: batch 1 and 3, 3 heads, sequences 1, 7, 16, 77, 128
and 130 (one key tile of 64, several, a partial last one), head dims 24 (no tensor-core kernel
applies: the CUDA-core one runs) and 64, BERT's block (heads' Transposes absorbed, the [B, S]
mask made 0 / -inf, a fully masked sequence made 0) and un-transposed attention with each mask
shape the fusion accepts (full, per key, [S, L], 1-D per key, per query row, scalar, rank 3;
-inf entries; a fully masked row that stays NaN without nan_to_zero). The profiled run names
the kernel that ran. Bounds: FP16 rel-L2 <= 1e-2 (test_cuda.py's for half engines), BF16 3e-2
(test_cuda_fusions.py says why). BERT's block runs with its projections packed (layout bshd_qkv,
builder/fuse_qkv.c: every kernel, both half precisions) and apart (DUCTILE_FUSE_QKV=0). Without a
GPU: skips with "no CUDA device found". mma_split (keys split over 2 or 4 warps, merged at the
end: attention_split.cu) takes head dims up to 64; wider ones name and run the mma kernel.
Small grids give it several warps: 77 and 128 keys 2 tiles (2 warps), 130 keys 3 tiles (4 warps,
one without keys, whose empty state must merge as nothing; a partial last tile)."""
import numpy as np
import pytest

pytest.importorskip("onnx")

import ductile  # noqa: E402
from test_cuda_fusions import BOUND, FLAGS, HALF, cpu_reference, executed  # noqa: E402
from test_cuda_fusions import plain_attention_model  # noqa: E402
from test_cuda_ops import build, gpu_available  # noqa: E402
from test_fusions import attention_model  # noqa: E402
from util import rel_l2  # noqa: E402

PATH = {"wmma": "tensor_cores", "mma": "mma", "mma_split": "mma_split", "cores": "cuda_cores"}


def expected_path(kernel, prec, d, dv):
    tc = prec != "fp32" and all(16 <= x <= 128 and x % 16 == 0 for x in (d, dv))
    if kernel == "mma_split" and max(d, dv) > 64:
        kernel = "mma"
    return "cuda.FusedAttention." + (PATH[kernel] if tc else "cuda_cores")


def check_forced(monkeypatch, kernel, model, feeds, want, prec, d, dv, n_attention=1):
    if not gpu_available():
        pytest.skip("no CUDA device found")
    monkeypatch.setenv("DUCTILE_CUDA_ATTENTION", kernel)
    engine = build(model, feeds, "cuda", FLAGS[prec])
    fa = [l for l in executed(engine) if l["LayerType"] == "FusedAttention"]
    assert len(fa) == n_attention, [l["LayerType"] for l in executed(engine)]
    for l in fa:
        assert l.get("Placement") != "cpu fallback", l
        if prec != "fp32":
            assert l["Outputs"][0]["Dtype"] == HALF[prec], l
    ctx = engine.create_execution_context()
    paths = []
    ctx.profiler = lambda t: paths.append(t.tactic) if t.op_type == "FusedAttention" else None
    got = ctx.run(feeds)
    assert paths and set(paths) == {expected_path(kernel, prec, d, dv)}, paths
    for name, w in want.items():
        g = got[name]
        assert g.shape == w.shape and g.dtype == w.dtype
        assert np.array_equal(np.isnan(g), np.isnan(w)), name
        ok = ~np.isnan(w)
        err = rel_l2(g[ok], w[ok])
        assert err <= BOUND[prec], f"{kernel} {prec}: rel-L2 {err:.3e}"


BERT = [(1, 1), (3, 7), (1, 16), (3, 77), (1, 128), (3, 130)]


def bert_block_feeds(b, s, hid, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((b, s, hid), dtype=np.float32)
    mask = rng.integers(0, 2, size=(b, s), dtype=np.int64)
    mask[:, 0] = 1
    if b > 1:
        mask[-1] = 0     # a fully masked sequence: NaN rows made 0
    return {"x": x, "mask": mask}


@pytest.mark.parametrize("qkv", ["packed", "separate"])
@pytest.mark.parametrize("kernel", ["mma", "mma_split", "wmma"])
@pytest.mark.parametrize("d", [24, 64])
@pytest.mark.parametrize("b,s", BERT, ids=[f"{b}x{s}" for b, s in BERT])
def test_cuda_attention_kernel_bert_block_fp16(monkeypatch, b, s, d, kernel, qkv):
    """packed: Q, K and V from one FusedMatMul, layout bshd_qkv (builder/fuse_qkv.c);
    separate (DUCTILE_FUSE_QKV=0, the CPU reference too): three inputs, layout bshd."""
    heads = 3
    if qkv == "separate":
        monkeypatch.setenv("DUCTILE_FUSE_QKV", "0")
    model = attention_model(heads, d).SerializeToString()
    feeds = bert_block_feeds(b, s, heads * d, 7)
    want = cpu_reference(model, feeds, {"FusedAttention": 1, "FusedMatMul": 1 if qkv == "packed" else 3})
    check_forced(monkeypatch, kernel, model, feeds, want, "fp16", d, d)


PACKED = [(1, 1), (3, 7), (2, 77), (1, 130)]


@pytest.mark.parametrize("prec", ["fp16", "bf16"])
@pytest.mark.parametrize("kernel", ["mma", "mma_split", "wmma", "cores"])
@pytest.mark.parametrize("b,s", PACKED, ids=[f"{b}x{s}" for b, s in PACKED])
def test_cuda_attention_kernel_packed_qkv(monkeypatch, b, s, kernel, prec):
    """Layout bshd_qkv (rows of 3 H D, K and V H D and 2 H D into Q's rows) with each kernel
    forced, in both half precisions: 4 heads of 64 as in bert_small."""
    heads, d = 4, 64
    model = attention_model(heads, d).SerializeToString()
    feeds = bert_block_feeds(b, s, heads * d, 9)
    want = cpu_reference(model, feeds, {"FusedAttention": 1, "FusedMatMul": 1})
    check_forced(monkeypatch, kernel, model, feeds, want, prec, d, d)


@pytest.mark.parametrize("kernel", ["mma", "mma_split"])
@pytest.mark.parametrize("b,s", [(3, 77), (1, 130)])
def test_cuda_attention_mma_bert_block_bf16(monkeypatch, b, s, kernel):
    heads, d = 3, 64
    model = attention_model(heads, d).SerializeToString()
    rng = np.random.default_rng(8)
    feeds = {"x": rng.standard_normal((b, s, heads * d), dtype=np.float32),
             "mask": np.ones((b, s), dtype=np.int64)}
    want = cpu_reference(model, feeds, {"FusedAttention": 1})
    check_forced(monkeypatch, kernel, model, feeds, want, "bf16", d, d)


# (name, Q [.., S, D], L, Dv, mask shape, nan_to_zero): head dims the tensor-core kernels take
PLAIN = [
    ("full_mask", (2, 3, 7, 32), 9, 48, (2, 3, 7, 9), True),
    ("key_mask_bert", (3, 3, 16, 64), 130, 64, (3, 1, 1, 130), True),
    ("scores_2d_mask", (2, 3, 77, 64), 77, 64, (77, 77), False),
    ("per_key_1d", (1, 2, 6, 16), 40, 16, (40,), True),
    ("per_row", (2, 3, 7, 128), 11, 128, (2, 3, 7, 1), False),
    ("scalar_mask", (3, 130, 64), 128, 64, (), True),
    ("one_mask_rank3", (3, 1, 96), 12, 112, (3, 1, 12), False),
]


@pytest.mark.parametrize("prec", ["fp16", "bf16"])
@pytest.mark.parametrize("kernel", ["mma", "mma_split", "wmma", "cores"])
@pytest.mark.parametrize("name,qs,L,dv,ms,nan0", PLAIN, ids=[p[0] for p in PLAIN])
def test_cuda_attention_kernel_masks_match_cpu(monkeypatch, name, qs, L, dv, ms, nan0, kernel, prec):
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
    check_forced(monkeypatch, kernel, model, feeds, want, prec, qs[-1], dv)


# (b, s, d): K transposed for the product as Hugging Face's decoders write it (layout "krows"),
# with a causal [S, S] mask: one key tile, several, a partial last one; d = 64 and 24
KROWS = [(2, 7, 64), (1, 77, 64), (3, 130, 64), (2, 33, 24)]


@pytest.mark.parametrize("prec", ["fp16", "bf16"])
@pytest.mark.parametrize("kernel", ["mma", "mma_split", "wmma", "cores"])
@pytest.mark.parametrize("b,s,d", KROWS, ids=[f"{b}x{s}x{d}" for b, s, d in KROWS])
def test_cuda_attention_kernel_k_rows(monkeypatch, b, s, d, kernel, prec):
    """Kt = Transpose(K) absorbed (layout "krows": K's rows are the keys, as bshd's): each kernel
    forced, against the CPU engine."""
    from test_llama import attention_model as scaled_attention_model
    model = scaled_attention_model("Div", 8.0, d=d).SerializeToString()
    rng = np.random.default_rng(s + d)
    feeds = {n: rng.standard_normal((b, 4, s, d), dtype=np.float32) for n in "qkv"}
    feeds["mask"] = np.where(np.arange(s)[None, :] > np.arange(s)[:, None], np.finfo(np.float32).min,
                             0.0).astype(np.float32)
    want = cpu_reference(model, feeds, {"FusedAttention": 1})
    check_forced(monkeypatch, kernel, model, feeds, want, prec, d, d)
