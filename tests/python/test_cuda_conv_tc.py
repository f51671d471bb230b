"""The channels-last tensor-core convolution (conv_tc_nhwc.cu), forced (DUCTILE_CUDA_CONV=
tc_nhwc_<tile>, read when the engine's layers are compiled, so the builder's timing cannot
hide a tile; DUCTILE_LAYOUT=nhwc makes every conv channels last), against the CPU float32
engine on the same inputs at odd sizes: input channels 8 to 72 (one to three K slices of 32
per tap, the last one part zeros), output channels 9 / 32 / 40 / 64 / 100 (odd ones store
one channel at a time; tiles with idle columns), maps 7 / 13 / 31, kernels 1 / 3 / 5, stride
1 and 2, pads, dilation 2, batch 1 and 3, every activation FusedConv takes, a residual (a
graph input added after the bias), each of the six tiles, FP16 and BF16: rel-L2 <= 1e-2. The
same for the direct kernel of layers with fewer than 8 input channels (DUCTILE_CUDA_CONV=
smallc_nhwc): C 1 to 7, kernels 1 to 7, M across 32-channel blocks; and its tensor-core form
(smallc_mma) where K = C * KH * KW <= 64; and the staged-patch kernel (patch_mma) where C % 16
== 0.
The profiled run names the tile that ran. Without a GPU: skips with "no CUDA device found"."""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto as T, helper as h, numpy_helper as nh  # noqa: E402

from test_cuda_fusions import FLAGS, HALF, executed  # noqa: E402
from test_cuda_ops import build, gpu_available  # noqa: E402
from util import rel_l2  # noqa: E402

TILES = ["256x64", "128x128", "128x64", "64x64", "128x32", "64x32"]
ACTS = ["", "Relu", "Clip", "HardSigmoid", "HardSwish", "Sigmoid"]
BOUND = 1e-2


def conv_out(size, k, s, p, d):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def conv_model(n, c, m, hw, k, s, p, d, act, residual, seed):
    """Conv(x) + bias [+ r] [-> act]: one FusedConv. Weights scaled by 1/sqrt(K) so outputs
    are O(1) (the activations' interesting ranges)."""
    rng = np.random.default_rng(seed)
    oh, ow = conv_out(hw[0], k, s, p, d), conv_out(hw[1], k, s, p, d)
    w = (rng.standard_normal((m, c, k, k)) / np.sqrt(c * k * k)).astype(np.float32)
    b = (rng.standard_normal(m) * 0.3).astype(np.float32)
    inits = [nh.from_array(w, "w"), nh.from_array(b, "b")]
    nodes = [h.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[k, k], strides=[s, s], pads=[p] * 4,
                         dilations=[d, d])]
    inputs = [h.make_tensor_value_info("x", T.FLOAT, [n, c, hw[0], hw[1]])]
    last = "c"
    if residual:
        inputs.append(h.make_tensor_value_info("r", T.FLOAT, [n, m, oh, ow]))
        nodes.append(h.make_node("Add", [last, "r"], ["a"]))
        last = "a"
    if act == "Clip":
        inits += [nh.from_array(np.float32(-0.4), "lo"), nh.from_array(np.float32(0.7), "hi")]
        nodes.append(h.make_node("Clip", [last, "lo", "hi"], ["y"]))
    elif act == "HardSigmoid":
        nodes.append(h.make_node("HardSigmoid", [last], ["y"], alpha=0.3, beta=0.4))
    elif act:
        nodes.append(h.make_node(act, [last], ["y"]))
    else:
        nodes.append(h.make_node("Identity", [last], ["y"]))
    graph = h.make_graph(nodes, "conv", inputs, [h.make_tensor_value_info("y", T.FLOAT, [n, m, oh, ow])],
                         initializer=inits)
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)], ir_version=8)
    feeds = {"x": rng.standard_normal((n, c) + tuple(hw), dtype=np.float32)}
    if residual:
        feeds["r"] = rng.standard_normal((n, m, oh, ow), dtype=np.float32)
    return model.SerializeToString(), feeds


def check_forced(monkeypatch, tile, model, feeds, prec, force=None):
    """The CPU engine's output, then the CUDA engine's with tile `tile` forced ("" = the tile
    the kernel picks for the shapes): the conv channels last, in half, on the tile. force:
    another DUCTILE_CUDA_CONV value, whose kernel is own_<force>."""
    want = build(model, feeds, "cpu").create_execution_context().run(feeds)["y"]
    if not gpu_available():
        pytest.skip("no CUDA device found")
    monkeypatch.setenv("DUCTILE_LAYOUT", "nhwc")
    monkeypatch.setenv("DUCTILE_CUDA_CONV", force or "tc_nhwc" + (f"_{tile}" if tile else ""))
    engine = build(model, feeds, "cuda", FLAGS[prec])
    convs = [l for l in executed(engine) if l["LayerType"] == "FusedConv"]
    assert len(convs) == 1, [l["LayerType"] for l in executed(engine)]
    assert convs[0].get("Layout") == "NHWC" and convs[0].get("Placement") != "cpu fallback", convs[0]
    assert convs[0]["Outputs"][0]["Dtype"] == HALF[prec], convs[0]
    ctx = engine.create_execution_context()
    paths = []
    ctx.profiler = lambda t: paths.append(t.tactic) if t.op_type == "FusedConv" else None
    got = ctx.run(feeds)["y"]
    suffix = "_bf16" if prec == "bf16" else "_f16"
    kernel = f"own_{force}" if force else "own_tc_nhwc_" + tile if tile else "own_"
    assert paths and all(p.startswith("cuda.FusedConv." + kernel) and p.endswith(suffix) for p in paths), paths
    assert got.shape == want.shape and not np.isnan(got).any()
    err = rel_l2(got, want)
    assert err <= BOUND, f"{tile} {prec}: rel-L2 {err:.3e}"


# n, c, m, (h, w), k, stride, pad, dilation
GEOMS = [
    (1, 8, 9, (7, 7), 3, 1, 1, 1),
    (3, 16, 32, (13, 13), 3, 2, 1, 1),
    (1, 24, 40, (31, 31), 5, 1, 2, 1),
    (1, 64, 64, (31, 13), 3, 1, 2, 2),
    (3, 72, 100, (13, 7), 1, 1, 0, 1),
    (1, 64, 9, (31, 31), 3, 1, 1, 1),
    (3, 16, 64, (7, 13), 5, 2, 2, 1),
    (1, 8, 100, (13, 31), 1, 2, 0, 1),
]


@pytest.mark.parametrize("prec", ["fp16", "bf16"])
@pytest.mark.parametrize("tile", TILES)
@pytest.mark.parametrize("i", range(len(GEOMS)), ids=["n{}c{}m{}_{}x{}_k{}s{}p{}d{}".format(
    g[0], g[1], g[2], g[3][0], g[3][1], *g[4:]) for g in GEOMS])
def test_cuda_conv_tc_nhwc_tile_matches_cpu(monkeypatch, i, tile, prec):
    n, c, m, hw, k, s, p, d = GEOMS[i]
    model, feeds = conv_model(n, c, m, hw, k, s, p, d, ACTS[i % len(ACTS)], i % 2 == 1, seed=i)
    check_forced(monkeypatch, tile, model, feeds, prec)


@pytest.mark.parametrize("prec", ["fp16", "bf16"])
@pytest.mark.parametrize("act", ACTS, ids=[a or "none" for a in ACTS])
def test_cuda_conv_tc_nhwc_activation_with_residual_matches_cpu(monkeypatch, act, prec):
    model, feeds = conv_model(3, 40, 24, (13, 31), 3, 1, 1, 1, act, True, seed=17)
    check_forced(monkeypatch, "", model, feeds, prec)


def test_cuda_conv_tc_nhwc_leaves_unaligned_channels_to_cudnn(monkeypatch):
    """C = 12 (not a multiple of 8): forcing the kernel changes nothing, cuDNN runs it."""
    model, feeds = conv_model(1, 12, 16, (13, 13), 3, 1, 1, 1, "Relu", False, seed=3)
    want = build(model, feeds, "cpu").create_execution_context().run(feeds)["y"]
    if not gpu_available():
        pytest.skip("no CUDA device found")
    monkeypatch.setenv("DUCTILE_LAYOUT", "nhwc")
    monkeypatch.setenv("DUCTILE_CUDA_CONV", "tc_nhwc")
    engine = build(model, feeds, "cuda", FLAGS["fp16"])
    ctx = engine.create_execution_context()
    paths = []
    ctx.profiler = lambda t: paths.append(t.tactic) if t.op_type == "FusedConv" else None
    got = ctx.run(feeds)["y"]
    assert paths and not any("own_tc_nhwc" in p for p in paths), paths
    assert rel_l2(got, want) <= BOUND


# The direct kernel for C < 8 (conv_smallc_nhwc.cu): n, c, m, (h, w), k, stride, pad, dilation
SMALLC = [
    (1, 1, 64, (31, 13), 5, 1, 2, 1),     # superres' first conv
    (3, 3, 64, (31, 31), 7, 2, 3, 1),     # ResNet's
    (1, 3, 32, (13, 7), 3, 2, 1, 1),      # MobileNet's
    (3, 5, 9, (7, 13), 3, 1, 2, 2),       # odd M: one channel a store
    (1, 1, 100, (13, 13), 1, 1, 0, 1),
    (1, 7, 40, (31, 7), 3, 1, 1, 1),
    (2, 2, 24, (9, 11), 3, 1, 1, 1),      # every C of the kernel's template
    (1, 4, 16, (10, 9), 2, 1, 0, 1),
    (2, 6, 33, (8, 8), 3, 2, 1, 1),       # M past a 32-channel block by one
]


@pytest.mark.parametrize("prec", ["fp16", "bf16"])
@pytest.mark.parametrize("i", range(len(SMALLC)), ids=["n{}c{}m{}_{}x{}_k{}s{}p{}d{}".format(
    g[0], g[1], g[2], g[3][0], g[3][1], *g[4:]) for g in SMALLC])
def test_cuda_conv_smallc_nhwc_matches_cpu(monkeypatch, i, prec):
    n, c, m, hw, k, s, p, d = SMALLC[i]
    model, feeds = conv_model(n, c, m, hw, k, s, p, d, ACTS[(i + 1) % len(ACTS)], i % 2 == 0, seed=40 + i)
    check_forced(monkeypatch, "", model, feeds, prec, force="smallc_nhwc")


# Its tensor-core form (conv_smallc_mma.cu, K = C * KH * KW <= 64): output tiles of 8 x 32
# pixels cut by the map's edges, one to four k-steps (K 9, 25, 27, 50, 64), M in 64-channel
# groups with a partial one and odd M (one channel a store), stride 2 and 3, dilation, pads
# wider than the kernel's reach, batches.
SMALLC_MMA = [
    (1, 1, 64, (37, 45), 5, 1, 2, 1),     # superres' first conv
    (2, 3, 32, (33, 35), 3, 2, 1, 1),     # MobileNet's
    (1, 2, 100, (17, 70), 5, 1, 2, 1),    # K 50, two channel groups
    (3, 1, 9, (9, 40), 3, 1, 1, 2),       # odd M, dilation
    (1, 1, 48, (20, 20), 8, 3, 4, 1),     # K 64, stride 3
    (2, 7, 66, (11, 13), 3, 1, 3, 1),     # C 7: K 63; pads past the kernel
    (1, 4, 16, (40, 9), 2, 2, 0, 1),
]


@pytest.mark.parametrize("prec", ["fp16", "bf16"])
@pytest.mark.parametrize("i", range(len(SMALLC_MMA)), ids=["n{}c{}m{}_{}x{}_k{}s{}p{}d{}".format(
    g[0], g[1], g[2], g[3][0], g[3][1], *g[4:]) for g in SMALLC_MMA])
def test_cuda_conv_smallc_mma_matches_cpu(monkeypatch, i, prec):
    n, c, m, hw, k, s, p, d = SMALLC_MMA[i]
    model, feeds = conv_model(n, c, m, hw, k, s, p, d, ACTS[i % len(ACTS)], i % 2 == 1, seed=60 + i)
    check_forced(monkeypatch, "", model, feeds, prec, force="smallc_mma")


# The staged-patch kernel (conv_patch_mma.cu, C % 16 == 0): output tiles of 4 x 32 pixels cut
# by the map's edges, M of one to three n8 pairs per group (9, 16, 17 -> 32-channel blocks, 64
# and 70 -> 64-channel groups, the last one partial; odd M: one channel a store), C 16 / 32 / 48
# (one to three k-steps a tap), kernels 1 / 3, stride 2, dilation 2, pads past the kernel's
# reach, batches.
PATCH_MMA = [
    (1, 32, 9, (37, 45), 3, 1, 1, 1),     # superres' last conv
    (1, 64, 64, (33, 35), 3, 1, 1, 1),    # superres' 64-channel ones
    (2, 16, 17, (13, 70), 3, 2, 1, 1),
    (3, 48, 70, (9, 11), 3, 1, 2, 1),
    (1, 32, 16, (20, 19), 3, 1, 2, 2),
    (2, 16, 1, (11, 13), 1, 1, 0, 1),
    (1, 64, 33, (7, 40), 3, 1, 3, 1),
]


@pytest.mark.parametrize("prec", ["fp16", "bf16"])
@pytest.mark.parametrize("i", range(len(PATCH_MMA)), ids=["n{}c{}m{}_{}x{}_k{}s{}p{}d{}".format(
    g[0], g[1], g[2], g[3][0], g[3][1], *g[4:]) for g in PATCH_MMA])
def test_cuda_conv_patch_mma_matches_cpu(monkeypatch, i, prec):
    n, c, m, hw, k, s, p, d = PATCH_MMA[i]
    model, feeds = conv_model(n, c, m, hw, k, s, p, d, ACTS[i % len(ACTS)], i % 2 == 1, seed=80 + i)
    check_forced(monkeypatch, "", model, feeds, prec, force="patch_mma")
