"""A channels-last conv -> DepthToSpace folded into the conv (builder/fuse_d2s.c; FusedConv
attribute depth_to_space, ops/fused.h) on the CUDA backend, whose staged-patch kernel
(conv_patch_mma.cu) writes the DepthToSpace's layout and the network output's float32 itself:
superres' last two layers. Against the CPU float32 engine (which never folds) on the same
inputs: blocksizes 2, 3 and 4, modes DCR and CRD, odd maps, stride 2, activations, a dynamic
profile run at its min, opt, max and an odd shape, FP16 and BF16; the executed layers have no
DepthToSpace and the conv names the kernel. The fold is on by default; DUCTILE_FUSE_CONV_D2S=0
keeps the DepthToSpace a layer. The tests force channels last (DUCTILE_LAYOUT=nhwc): a lone 1x1
conv's whole-engine layout timing may keep channels first, where there is nothing to fold.
Without a GPU: skips with "no CUDA device found"."""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto as T, helper as h, numpy_helper as nh  # noqa: E402

from test_cuda_fusions import FLAGS, executed  # noqa: E402
from test_cuda_ops import build as build_engine, gpu_available  # noqa: E402
from util import rel_l2  # noqa: E402

BOUND = 1e-2


def d2s_model(c, m, k, s, r, mode, act, seed):
    """Conv(x) + bias [-> act] -> DepthToSpace(r, mode), dims symbolic but C."""
    rng = np.random.default_rng(seed)
    w = (rng.standard_normal((m, c, k, k)) / np.sqrt(c * k * k)).astype(np.float32)
    b = (rng.standard_normal(m) * 0.3).astype(np.float32)
    nodes = [h.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[k, k], strides=[s, s], pads=[k // 2] * 4)]
    last = "c"
    if act:
        nodes.append(h.make_node(act, [last], ["a"]))
        last = "a"
    nodes.append(h.make_node("DepthToSpace", [last], ["y"], blocksize=r, mode=mode))
    graph = h.make_graph(nodes, "d2s", [h.make_tensor_value_info("x", T.FLOAT, ["n", c, "h", "w"])],
                         [h.make_tensor_value_info("y", T.FLOAT, None)],
                         initializer=[nh.from_array(w, "w"), nh.from_array(b, "b")])
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 17)], ir_version=8).SerializeToString()


def build(model, c, device, flags, shapes):
    """An engine whose profile for x is shapes' (n, h, w) as min, opt, max."""
    dims = [(n, c, hh, ww) for n, hh, ww in shapes]
    return build_engine(model, {"x": np.zeros(dims[1], np.float32)}, device, flags, profile={"x": dims})


# c, m, k, stride, blocksize, mode, activation
CASES = [
    (32, 9, 3, 1, 3, "CRD", ""),        # superres' last conv and PixelShuffle
    (16, 8, 3, 1, 2, "DCR", "Relu"),    # two output channels
    (48, 16, 1, 1, 4, "CRD", "Sigmoid"),
    (32, 12, 3, 2, 2, "DCR", ""),       # three output channels, stride 2
]
SHAPES = [(1, 9, 11), (1, 20, 37), (2, 40, 45)]   # min, opt, max of the profile
RUN_AT = SHAPES + [(2, 17, 23)]


@pytest.mark.parametrize("prec", ["fp16", "bf16"])
@pytest.mark.parametrize("i", range(len(CASES)), ids=["c{}m{}k{}s{}r{}{}{}".format(*g[:6], "_" + g[6] if g[6] else "")
                                                        for g in CASES])
def test_cuda_conv_d2s_folded_matches_cpu(monkeypatch, i, prec):
    c, m, k, s, r, mode, act = CASES[i]
    model = d2s_model(c, m, k, s, r, mode, act, seed=90 + i)
    cpu = build(model, c, "cpu", (), SHAPES).create_execution_context()
    rng = np.random.default_rng(i)
    feeds = [{"x": rng.standard_normal((n, c, hh, ww), dtype=np.float32)} for n, hh, ww in RUN_AT]
    want = [cpu.run(f)["y"] for f in feeds]
    if not gpu_available():
        pytest.skip("no CUDA device found")
    monkeypatch.delenv("DUCTILE_FUSE_CONV_D2S", raising=False)
    monkeypatch.setenv("DUCTILE_LAYOUT", "nhwc")
    engine = build(model, c, "cuda", FLAGS[prec], SHAPES)
    layers = executed(engine)
    assert not [l for l in layers if l["LayerType"] == "DepthToSpace"], [l["LayerType"] for l in layers]
    ctx = engine.create_execution_context()
    paths = []
    ctx.profiler = lambda t: paths.append(t.tactic) if t.op_type == "FusedConv" else None
    for f, wnt in zip(feeds, want):
        got = ctx.run(f)["y"]
        assert got.dtype == np.float32 and got.shape == wnt.shape, (got.dtype, got.shape, wnt.shape)
        err = rel_l2(got, wnt)
        assert err <= BOUND, f"{f['x'].shape} {prec}: rel-L2 {err:.3e}"
    assert paths and all(p.startswith("cuda.FusedConv.own_patch_mma_nhwc") for p in paths), paths


def test_cuda_conv_d2s_switch_keeps_the_layer(monkeypatch):
    c, m, k, s, r, mode, act = CASES[0]
    model = d2s_model(c, m, k, s, r, mode, act, seed=90)
    if not gpu_available():
        pytest.skip("no CUDA device found")
    monkeypatch.setenv("DUCTILE_FUSE_CONV_D2S", "0")
    monkeypatch.setenv("DUCTILE_LAYOUT", "nhwc")
    engine = build(model, c, "cuda", FLAGS["fp16"], SHAPES)
    assert [l for l in executed(engine) if l["LayerType"] == "DepthToSpace"]


def test_cpu_never_folds_the_d2s():
    """The CPU backend has no writes_d2s: its engine keeps the DepthToSpace layer (and the
    fold's FusedConv attribute is refused there: fused_conv.c)."""
    c, m, k, s, r, mode, act = CASES[0]
    engine = build(d2s_model(c, m, k, s, r, mode, act, seed=90), c, "cpu", (), SHAPES)
    assert [l for l in executed(engine) if l["LayerType"] == "DepthToSpace"]
