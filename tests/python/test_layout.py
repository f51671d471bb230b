"""The layout pass (builder/layout.c): channels-last (NHWC) regions around convolutions, with
Transposes at their borders. The CPU never asks for it, so the CPU tests force it
(DUCTILE_LAYOUT=nhwc) and compare the rewritten engine with onnxruntime and with the plain
engine at odd sizes and symbolic batch / height / width: hand-built graphs (odd channel counts
3/5/7, stride 2, depthwise, residual Add, broadcast Mul and Add of [1,C,1,1] and [C,1,1]
constants, an unfused activation, MaxPool and AveragePool variants, GlobalAveragePool, an
output inside the region) and the suite's conv models. The layer list pins where the region goes.
On a GPU, FP16/BF16 builds take the pass where the CUDA backend prefers NHWC (half convs)
and keep it when the timed channels-last engine is faster than the channels-first one: the
tests force it (every conv channels last on cuDNN / the own NHWC kernels / cuBLASLt) and also
build the default way (all convs one layout, whichever won), comparing with the CPU float32
engine (rel L2 <= 1e-2); they skip here with "no CUDA device found"."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto as T, helper as h, numpy_helper as nh  # noqa: E402

import ductile  # noqa: E402
from util import MODELS, REPO, assert_close, models_dir, ort_run, random_feeds, rel_l2  # noqa: E402


def build(model, profile, layout, device="cpu", flags=(), outputs=(), dynamic=False):
    """An engine of `model` (ModelProto or a path) with one profile {input: (min, opt, max)};
    layout: the DUCTILE_LAYOUT the build sees ("nhwc", "nchw" or None: the backend's choice).
    outputs: more tensors to mark as network outputs; dynamic: batch, height and width of
    every input made dynamic (the models fix some)."""
    old = os.environ.pop("DUCTILE_LAYOUT", None)
    if layout:
        os.environ["DUCTILE_LAYOUT"] = layout
    try:
        b = ductile.Builder()
        net = b.parse_onnx(str(model)) if isinstance(model, (str, os.PathLike)) else \
            b.parse_onnx_bytes(model.SerializeToString())
        for name in outputs:
            net.mark_output(net.find_tensor(name))
        for i in range(net.num_inputs if dynamic else 0):
            t = net.get_input(i)
            t.shape = (-1, t.shape[1], -1, -1)
        prof = b.create_optimization_profile()
        for name, (lo, opt, hi) in profile.items():
            prof.set_shape(name, lo, opt, hi)
        cfg = b.create_builder_config()
        cfg.device = device
        for f in flags:
            cfg.set_flag(f)
        cfg.add_optimization_profile(prof)
        return b.build_engine(net, cfg)
    finally:
        os.environ.pop("DUCTILE_LAYOUT", None)
        if old is not None:
            os.environ["DUCTILE_LAYOUT"] = old


def layers(engine):
    return [(l["LayerType"], l.get("Layout", "")) for l in json.loads(engine.layer_info)["Layers"]
            if l["Stage"] == "execute"]


# ---- a hand-built block -----------------------------------------------------------------
#   c1 = Relu(Conv(x, 5x3x3x3, stride 2, pad 1))           x: [N, 3, H, W] symbolic
#   c2 = Conv(c1, 7x5x3x3, pad 1) + Conv(c1, 7x5x1x1)      (one conv takes the other as residual)
#   l  = LeakyRelu(c2)                                      (unfused: joins the region)
#   mid = Mul(l, [1,7,1,1]) ;  a = Add(mid, [7,1,1])        (broadcast constants; mid is an output)
#   d  = Clip(Conv(a, 7x1x3x3, group 7, stride 2, pad 1), 0, 6)   (depthwise)
#   p  = MaxPool(d, 2x2, stride 2)
#   y  = Flatten(GlobalAveragePool(Conv(p, 4x7x1x1)))


def block_model(seed=0):
    rng = np.random.default_rng(seed)

    def w(*shape):
        return nh.from_array((rng.standard_normal(shape) * 0.4).astype(np.float32), f"w{len(inits)}")
    inits = []
    nodes = []

    def conv(x, y, shape, **attrs):
        inits.append(w(*shape))
        wn = inits[-1].name
        inits.append(nh.from_array((rng.standard_normal(shape[0]) * 0.1).astype(np.float32), wn + "_b"))
        nodes.append(h.make_node("Conv", [x, wn, wn + "_b"], [y], **attrs))
    conv("x", "c1a", (5, 3, 3, 3), strides=[2, 2], pads=[1, 1, 1, 1])
    nodes.append(h.make_node("Relu", ["c1a"], ["c1"]))
    conv("c1", "c2a", (7, 5, 3, 3), pads=[1, 1, 1, 1])
    conv("c1", "c2b", (7, 5, 1, 1))
    nodes.append(h.make_node("Add", ["c2a", "c2b"], ["c2"]))
    nodes.append(h.make_node("LeakyRelu", ["c2"], ["l"], alpha=0.1))
    inits.append(nh.from_array(rng.uniform(0.5, 1.5, (1, 7, 1, 1)).astype(np.float32), "scale"))
    inits.append(nh.from_array(rng.standard_normal((7, 1, 1)).astype(np.float32), "shift"))
    nodes.append(h.make_node("Mul", ["l", "scale"], ["mid"]))
    nodes.append(h.make_node("Add", ["mid", "shift"], ["a"]))
    conv("a", "da", (7, 1, 3, 3), group=7, strides=[2, 2], pads=[1, 1, 1, 1])
    inits.append(nh.from_array(np.float32(0), "lo"))
    inits.append(nh.from_array(np.float32(6), "hi"))
    nodes.append(h.make_node("Clip", ["da", "lo", "hi"], ["d"]))
    nodes.append(h.make_node("MaxPool", ["d"], ["p"], kernel_shape=[2, 2], strides=[2, 2]))
    conv("p", "e", (4, 7, 1, 1))
    nodes.append(h.make_node("GlobalAveragePool", ["e"], ["g"]))
    nodes.append(h.make_node("Flatten", ["g"], ["y"]))
    graph = h.make_graph(nodes, "block", [h.make_tensor_value_info("x", T.FLOAT, ["N", 3, "H", "W"])],
                         [h.make_tensor_value_info("y", T.FLOAT, ["N", 4]),
                          h.make_tensor_value_info("mid", T.FLOAT, ["N", 7, None, None])], initializer=inits)
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 17)], ir_version=8)


BLOCK_PROFILE = {"x": ((1, 3, 8, 8), (2, 3, 33, 29), (3, 3, 64, 64))}
BLOCK_SHAPES = [(1, 3, 8, 8), (2, 3, 33, 29), (3, 3, 17, 23), (3, 3, 64, 61), (2, 3, 9, 47)]


def test_block_layers_form_one_region_per_stretch():
    engine = build(block_model(), BLOCK_PROFILE, "nhwc")
    assert layers(engine) == [
        ("Transpose", ""),                      # x in
        ("FusedConv", "NHWC"),                  # c1 (Relu fused)
        ("FusedConv", "NHWC"),                  # c2b
        ("FusedConv", "NHWC"),                  # c2a + residual c2b
        ("LeakyRelu", ""), ("Mul", ""),
        ("Transpose", ""),                      # mid out (a network output)
        ("Add", ""),
        ("FusedConv", "NHWC"),                  # depthwise, Clip fused
        ("MaxPool", "NHWC"),
        ("FusedConv", "NHWC"),
        ("ReduceMean", ""),                     # GlobalAveragePool over H, W
        ("Transpose", ""),                      # g out, for Flatten
        ("Flatten", ""),
    ]


def test_block_without_the_pass_is_unchanged():
    """The CPU prefers channels first: without DUCTILE_LAYOUT nothing moves; nchw forbids it.
    (The last conv pools its output itself: builder/fuse_pool.c, after the layout pass.)"""
    want = [("FusedConv", ""), ("FusedConv", ""), ("FusedConv", ""), ("LeakyRelu", ""), ("Mul", ""), ("Add", ""),
            ("FusedConv", ""), ("MaxPool", ""), ("FusedConv", ""), ("Flatten", "")]
    assert layers(build(block_model(), BLOCK_PROFILE, None)) == want
    assert layers(build(block_model(), BLOCK_PROFILE, "nchw")) == want


@pytest.fixture(scope="module")
def block_engines():
    model = block_model()
    return model, build(model, BLOCK_PROFILE, "nhwc"), build(model, BLOCK_PROFILE, "nchw")


@pytest.mark.parametrize("shape", BLOCK_SHAPES)
def test_block_matches_onnxruntime_and_the_plain_engine(block_engines, shape):
    model, nhwc, plain = block_engines
    x = np.random.default_rng(sum(shape)).standard_normal(shape).astype(np.float32)
    ctx = nhwc.create_execution_context()
    got = ctx.run({"x": x})
    want = ort_run(model.SerializeToString(), {"x": x})
    base = plain.create_execution_context().run({"x": x})
    for name in ("y", "mid"):
        assert got[name].shape == want[name].shape
        assert ctx.get_tensor_shape(name) == want[name].shape
        assert_close(got[name], want[name], rtol=1e-5, what=f"{name} at {shape}")
        assert_close(got[name], base[name], rtol=1e-5, what=f"{name} at {shape} vs plain")


POOLS = {
    "max_pads_dil_ceil": ("MaxPool", dict(kernel_shape=[3, 2], strides=[2, 1], pads=[1, 0, 1, 1], dilations=[1, 2],
                                          ceil_mode=1)),
    "avg_exclude_pad": ("AveragePool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
    "avg_include_pad": ("AveragePool", dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=1)),
    "max_same_upper": ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER")),
}


@pytest.mark.parametrize("name", sorted(POOLS))
def test_pools_inside_the_region_match_onnxruntime(name):
    op, attrs = POOLS[name]
    rng = np.random.default_rng(4)
    nodes = [h.make_node("Conv", ["x", "w"], ["c"]), h.make_node(op, ["c"], ["p"], **attrs),
             h.make_node("Conv", ["p", "w2"], ["y"])]
    inits = [nh.from_array(rng.standard_normal((5, 3, 1, 1)).astype(np.float32), "w"),
             nh.from_array(rng.standard_normal((2, 5, 1, 1)).astype(np.float32), "w2")]
    graph = h.make_graph(nodes, "g", [h.make_tensor_value_info("x", T.FLOAT, ["N", 3, "H", "W"])],
                         [h.make_tensor_value_info("y", T.FLOAT, None)], initializer=inits)
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)], ir_version=8)
    engine = build(model, {"x": ((1, 3, 4, 4), (2, 3, 9, 9), (3, 3, 30, 30))}, "nhwc")
    assert layers(engine) == [("Transpose", ""), ("FusedConv", "NHWC"), (op, "NHWC"), ("FusedConv", "NHWC"),
                              ("Transpose", "")]
    ctx = engine.create_execution_context()
    for shape in [(1, 3, 4, 4), (3, 3, 11, 7), (2, 3, 30, 17)]:
        x = rng.standard_normal(shape).astype(np.float32)
        want = ort_run(model.SerializeToString(), {"x": x})["y"]
        got = ctx.run({"x": x})["y"]
        assert ctx.get_tensor_shape("y") == want.shape
        assert_close(got, want, rtol=1e-5, what=f"{name} at {shape}")


@pytest.mark.parametrize("mode", ["DCR", "CRD"])
@pytest.mark.parametrize("second_reader", [False, True])
def test_depth_to_space_reads_the_channels_last_twin(mode, second_reader):
    """Conv -> DepthToSpace (superres' ending): the DepthToSpace reads the conv's channels-last
    output itself (layout NHWC), no Transpose back; with a second reader outside the region
    (Flatten) that one gets the Transpose. Odd sizes, blocksize 3, both modes, against onnxruntime."""
    rng = np.random.default_rng(5)
    nodes = [h.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             h.make_node("DepthToSpace", ["c"], ["y"], blocksize=3, mode=mode)]
    outs = [h.make_tensor_value_info("y", T.FLOAT, None)]
    if second_reader:
        nodes.append(h.make_node("Flatten", ["c"], ["z"]))
        outs.append(h.make_tensor_value_info("z", T.FLOAT, None))
    inits = [nh.from_array(rng.standard_normal((18, 3, 3, 3)).astype(np.float32), "w")]
    graph = h.make_graph(nodes, "g", [h.make_tensor_value_info("x", T.FLOAT, ["N", 3, "H", "W"])], outs,
                         initializer=inits)
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)], ir_version=8)
    engine = build(model, {"x": ((1, 3, 4, 4), (2, 3, 9, 7), (3, 3, 21, 21))}, "nhwc")
    want_layers = [("Transpose", ""), ("FusedConv", "NHWC"), ("DepthToSpace", "NHWC")]
    if second_reader:
        want_layers += [("Transpose", ""), ("Flatten", "")]
    assert layers(engine) == want_layers
    ctx = engine.create_execution_context()
    for shape in [(1, 3, 4, 4), (3, 3, 11, 7), (2, 3, 21, 5)]:
        x = rng.standard_normal(shape).astype(np.float32)
        want = ort_run(model.SerializeToString(), {"x": x})
        got = ctx.run({"x": x})
        for name in want:
            assert ctx.get_tensor_shape(name) == want[name].shape
            assert_close(got[name], want[name], rtol=1e-5, what=f"{name} {mode} at {shape}")


def test_depth_to_space_refuses_another_layout():
    node = h.make_node("DepthToSpace", ["x"], ["y"], blocksize=2, layout="NCHWc")
    graph = h.make_graph([node], "g", [h.make_tensor_value_info("x", T.FLOAT, [1, 8, 2, 2])],
                         [h.make_tensor_value_info("y", T.FLOAT, None)])
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)], ir_version=8)
    with pytest.raises(ductile.Error) as e:
        build(model, {}, None)
    assert "attribute 'layout' = 'NCHWc' is not supported (supported: NHWC)" in str(e.value)


def test_binary_op_with_an_operand_from_outside_stays_outside():
    """Sub(conv(x), z) with z a network input (Sub: an Add would fuse into the conv as its
    residual): joining would cost a transpose in and one out, staying out one back."""
    rng = np.random.default_rng(3)
    nodes = [h.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), h.make_node("Sub", ["c", "z"], ["s"]),
             h.make_node("Sigmoid", ["s"], ["y"])]
    inits = [nh.from_array(rng.standard_normal((5, 3, 3, 3)).astype(np.float32), "w")]
    graph = h.make_graph(nodes, "g", [h.make_tensor_value_info("x", T.FLOAT, ["N", 3, "H", "W"]),
                                      h.make_tensor_value_info("z", T.FLOAT, ["N", 5, "H", "W"])],
                         [h.make_tensor_value_info("y", T.FLOAT, ["N", 5, "H", "W"])], initializer=inits)
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)], ir_version=8)
    prof = {"x": ((1, 3, 4, 4), (2, 3, 9, 7), (3, 3, 20, 20)), "z": ((1, 5, 4, 4), (2, 5, 9, 7), (3, 5, 20, 20))}
    engine = build(model, prof, "nhwc")
    assert layers(engine) == [("Transpose", ""), ("FusedConv", "NHWC"), ("Transpose", ""), ("Sub", ""),
                              ("Sigmoid", "")]
    feeds = {"x": rng.standard_normal((3, 3, 11, 5)).astype(np.float32),
             "z": rng.standard_normal((3, 5, 11, 5)).astype(np.float32)}
    assert_close(engine.create_execution_context().run(feeds)["y"], ort_run(model.SerializeToString(), feeds)["y"],
                 rtol=1e-5)


def test_network_without_convs_is_left_alone():
    nodes = [h.make_node("Relu", ["x"], ["r"]), h.make_node("GlobalAveragePool", ["r"], ["y"])]
    graph = h.make_graph(nodes, "g", [h.make_tensor_value_info("x", T.FLOAT, ["N", 3, 5, 5])],
                         [h.make_tensor_value_info("y", T.FLOAT, ["N", 3, 1, 1])])
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)], ir_version=8)
    engine = build(model, {"x": ((1, 3, 5, 5), (2, 3, 5, 5), (4, 3, 5, 5))}, "nhwc")
    assert layers(engine) == [("Relu", ""), ("GlobalAveragePool", "")]


# ---- the suite's conv models ------------------------------------------------------------


@pytest.fixture(scope="module")
def resnet50_path(tmp_path_factory):
    """resnet50.onnx from $DUCTILE_MODELS, else written by bench/make_resnet50.py (numpy and
    onnx only: the same graph bench_cuda's torchvision export has, batch norms folded)."""
    p = models_dir() / "resnet50.onnx"
    if p.is_file():
        return p
    out = tmp_path_factory.mktemp("resnet50") / "resnet50.onnx"
    subprocess.run([sys.executable, str(REPO / "bench" / "make_resnet50.py"), str(out)], check=True)
    return out


# model -> (profile, odd shape, tensors inside the network to compare too)
SUITE = {
    "mobilenet_v2": ({"input": ((1, 3, 32, 32), (2, 3, 64, 64), (3, 3, 96, 96))}, {"input": (3, 3, 71, 45)}),
    "seg_lraspp": ({"input_1": ((1, 3, 64, 64), (1, 3, 96, 96), (2, 3, 160, 160))}, {"input_1": (2, 3, 97, 129)}),
    "superres": ({"input": ((1, 1, 16, 16), (2, 1, 40, 40), (3, 1, 64, 64))}, {"input": (3, 1, 37, 23)}),
    "resnet50": ({"input": ((1, 3, 64, 64), (2, 3, 96, 96), (3, 3, 128, 128))}, {"input": (3, 3, 97, 71)}),
}


def suite_path(name, resnet50_path):
    if name == "resnet50":
        return resnet50_path
    p = models_dir() / MODELS[name].filename
    if not p.is_file():
        pytest.skip(f"model {p.name} not found in {p.parent}; set DUCTILE_MODELS to the folder of the model suite")
    return p


def conv_outputs(path):
    """The outputs of every fourth Conv in the model file: intermediate tensors to compare
    (seg_lraspp's random-weight output saturates, which would hide a wrong layer)."""
    m = onnx.load(str(path), load_external_data=False)
    return [n.output[0] for n in m.graph.node if n.op_type == "Conv"][3::4]


def dynamic_model_bytes(path):
    """The model with batch, height and width of its inputs dynamic (as build(dynamic=True)
    makes them), for onnxruntime."""
    m = onnx.load(str(path))
    for i in m.graph.input:
        for d in (0, 2, 3):
            i.type.tensor_type.shape.dim[d].dim_param = f"{i.name}_d{d}"
    del m.graph.value_info[:]
    return m.SerializeToString()


@pytest.mark.parametrize("name", sorted(SUITE))
def test_suite_model_through_the_pass_matches_the_plain_engine(name, resnet50_path):
    path = suite_path(name, resnet50_path)
    profile, odd = SUITE[name]
    extra = conv_outputs(path)
    nhwc = build(path, profile, "nhwc", outputs=extra, dynamic=True)
    plain = build(path, profile, "nchw", outputs=extra, dynamic=True)
    # Every FusedConv goes channels last but those with a channel scale S (squeeze-excite's
    # Mul absorbed, builder/fuse_se.c), which only the channels-first kernels take.
    info = [l for l in json.loads(nhwc.layer_info)["Layers"] if l["Stage"] == "execute" and l["LayerType"] == "FusedConv"]
    scaled = [len(l["Inputs"]) > 4 and l["Inputs"][4] is not None for l in info]
    assert info and all(l.get("Layout", "") == ("" if sc else "NHWC") for l, sc in zip(info, scaled))
    assert any(scaled) == (name == "seg_lraspp")
    rng = np.random.default_rng(5)
    feeds = {n: rng.standard_normal(s).astype(np.float32) for n, s in odd.items()}
    got = nhwc.create_execution_context().run(feeds)
    base = plain.create_execution_context().run(feeds)
    assert sorted(got) == sorted(base)
    for out in base:
        assert got[out].shape == base[out].shape, out
        assert_close(got[out], base[out], rtol=1e-4, what=f"{name} {out}")
    want = ort_run(dynamic_model_bytes(path), feeds)
    for out, w in want.items():
        assert_close(got[out], w, rtol=1e-4, what=f"{name} {out} vs onnxruntime")


# ---- on a GPU -------------------------------------------------------------------------

GPU = None


def gpu_available():
    global GPU
    if GPU is None:
        try:
            build(block_model(), BLOCK_PROFILE, None, device="cuda")
            GPU = True
        except ductile.Error:
            GPU = False
    return GPU


@pytest.mark.parametrize("flag", ["FP16", "BF16"])
def test_cuda_half_block_runs_channels_last_and_matches_cpu_float32(block_engines, flag):
    model, _, plain = block_engines
    if not gpu_available():
        pytest.skip("no CUDA device found")
    for layout in ("nhwc", None):
        engine = build(model, BLOCK_PROFILE, layout, device="cuda", flags=(getattr(ductile.BuilderFlag, flag),))
        info = [l for l in json.loads(engine.layer_info)["Layers"] if l["Stage"] == "execute"]
        assert not [l for l in info if l.get("Placement") == "cpu fallback"], info
        convs = [l for l in info if l["LayerType"] == "FusedConv"]
        assert len(convs) == 5 and all(l["Kernel"] == "cuda.FusedConv" for l in convs), convs
        assert len({l.get("Layout", "") for l in convs}) == 1, convs   # the choice is the engine's
        if layout:
            assert all(l.get("Layout") == "NHWC" for l in convs), convs
        ctx = engine.create_execution_context()
        for shape in BLOCK_SHAPES:
            x = np.random.default_rng(sum(shape)).standard_normal(shape).astype(np.float32)
            got, want = ctx.run({"x": x}), plain.create_execution_context().run({"x": x})
            for name in ("y", "mid"):
                assert got[name].shape == want[name].shape
                err = rel_l2(got[name], want[name])
                assert err <= 1e-2, f"{flag} {layout} {name} at {shape}: rel-L2 {err:.3e}"


@pytest.mark.parametrize("name", ["resnet50", "superres"])
def test_cuda_fp16_model_channels_last_matches_cpu_float32(name, resnet50_path):
    path = suite_path(name, resnet50_path)
    profile, odd = SUITE[name]
    if not gpu_available():
        pytest.skip("no CUDA device found")
    cpu = build(path, profile, "nchw", dynamic=True)
    engine = build(path, profile, "nhwc", device="cuda", flags=(ductile.BuilderFlag.FP16,), dynamic=True)
    info = [l for l in json.loads(engine.layer_info)["Layers"] if l["Stage"] == "execute"]
    assert all(l.get("Layout") == "NHWC" for l in info if l["LayerType"] == "FusedConv"), info
    assert not [l for l in info if l.get("Placement") == "cpu fallback"], info
    ctx = engine.create_execution_context()
    rng = np.random.default_rng(7)
    for shapes in [{n: s[i] for n, s in profile.items()} for i in range(3)] + [odd]:
        feeds = {n: rng.standard_normal(s).astype(np.float32) for n, s in shapes.items()}
        got, want = ctx.run(feeds), cpu.create_execution_context().run(feeds)
        for out, w in want.items():
            err = rel_l2(got[out], w)
            assert err <= 1e-2, f"{name} {out} at {shapes}: rel-L2 {err:.3e}"


# ---- a network input's Cast folded into the Transpose into channels last ------------------
# FP16/BF16 device builds put a Cast (float32 -> half) after every network input and the layout
# pass a Transpose (NCHW -> NHWC) before the first conv: with DUCTILE_CAST_TRANSPOSE=1 the
# precision pass folds the Cast into that Transpose (attribute `to`), one kernel instead of two.
# The CPU runs such a Transpose as the reference (transpose, then Cast's rounding).

def cast_transpose_model(to, perm=(0, 2, 3, 1), dims=("N", 3, "H", "W")):
    """y = Cast(Transpose(-x, perm, to), float): the Transpose between two activations."""
    neg = h.make_node("Neg", ["x"], ["n"])
    node = h.make_node("Transpose", ["n"], ["t"], perm=list(perm), to=to)
    back = h.make_node("Cast", ["t"], ["y"], to=T.FLOAT)
    graph = h.make_graph([neg, node, back], "ct", [h.make_tensor_value_info("x", T.FLOAT, list(dims))],
                         [h.make_tensor_value_info("y", T.FLOAT, None)])
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 17)], ir_version=8)


@pytest.mark.parametrize("device", ["cpu", "cuda"])
@pytest.mark.parametrize("to", ["FLOAT16", "BFLOAT16"])
def test_converting_transpose_is_transpose_then_cast(to, device):
    import ml_dtypes  # noqa: F401  (bfloat16 in numpy)
    half = np.float16 if to == "FLOAT16" else np.dtype("bfloat16")
    if device == "cuda" and not gpu_available():
        pytest.skip("no CUDA device found")
    engine = build(cast_transpose_model(getattr(T, to)), {"x": ((1, 3, 1, 1), (2, 3, 7, 5), (3, 3, 31, 33))}, None,
                   device=device)
    if device == "cuda":
        info = [l for l in json.loads(engine.layer_info)["Layers"] if l["Stage"] == "execute"]
        tr = [l for l in info if l["LayerType"] == "Transpose"]
        assert len(tr) == 1 and tr[0].get("Placement") != "cpu fallback", info
    ctx = engine.create_execution_context()
    for shape in [(1, 3, 1, 1), (2, 3, 7, 5), (3, 3, 31, 33)]:
        # values that round differently in each half type, some far from 1
        x = (np.random.default_rng(sum(shape)).standard_normal(shape) * 1000).astype(np.float32)
        got = ctx.run({"x": x})["y"]
        want = (-x).transpose(0, 2, 3, 1).astype(half).astype(np.float32)
        np.testing.assert_array_equal(got, want)


def test_converting_transpose_of_unit_dims_is_not_a_view():
    """[N,1,1,C] -> [N,C,1,1] moves only dims of 1: a plain Transpose so is planned as a view
    (runtime/plan.c); one that converts has other bytes to write."""
    engine = build(cast_transpose_model(T.FLOAT16, (0, 3, 1, 2), ("N", 1, 1, 5)),
                   {"x": ((1, 1, 1, 5), (2, 1, 1, 5), (3, 1, 1, 5))}, None)
    x = (np.random.default_rng(3).standard_normal((2, 1, 1, 5)) * 1000).astype(np.float32)
    got = engine.create_execution_context().run({"x": x})["y"]
    np.testing.assert_array_equal(got, (-x).transpose(0, 3, 1, 2).astype(np.float16).astype(np.float32))


def test_converting_transpose_refuses_an_integer_target():
    with pytest.raises(ductile.Error, match="'to'"):
        build(cast_transpose_model(T.INT64), {"x": ((1, 3, 1, 1), (2, 3, 7, 5), (3, 3, 31, 33))}, None)


# ---- the Cast back to float32 of a network output folded into its DepthToSpace -------------
# FP16/BF16 device builds end superres conv -> DepthToSpace -> Cast (half -> float32): the
# precision pass gives the DepthToSpace (or a Transpose) writing a network output attribute
# `to` = FLOAT, one kernel instead of two. The CPU runs it as the reference (the copy, then
# Cast's conversion).

def np_depth_to_space(x, b, mode):
    n, c, hh, ww = x.shape
    if mode == "DCR":
        t = x.reshape(n, b, b, c // (b * b), hh, ww).transpose(0, 3, 4, 1, 5, 2)
    else:
        t = x.reshape(n, c // (b * b), b, b, hh, ww).transpose(0, 1, 4, 2, 5, 3)
    return t.reshape(n, c // (b * b), hh * b, ww * b)


def converting_d2s_model(half, to, b, mode):
    """y = DepthToSpace(Cast(x, half), to): the DepthToSpace converting its half input."""
    cast = h.make_node("Cast", ["x"], ["c"], to=half)
    node = h.make_node("DepthToSpace", ["c"], ["y"], blocksize=b, mode=mode, to=to)
    graph = h.make_graph([cast, node], "d2s", [h.make_tensor_value_info("x", T.FLOAT, ["N", b * b * 2, "H", "W"])],
                         [h.make_tensor_value_info("y", T.FLOAT, None)])
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 17)], ir_version=8)


@pytest.mark.parametrize("device", ["cpu", "cuda"])
@pytest.mark.parametrize("half", ["FLOAT16", "BFLOAT16"])
@pytest.mark.parametrize("b,mode", [(3, "CRD"), (2, "DCR")])
def test_converting_depth_to_space_is_copy_then_cast(half, b, mode, device):
    import ml_dtypes  # noqa: F401  (bfloat16 in numpy)
    ht = np.float16 if half == "FLOAT16" else np.dtype("bfloat16")
    if device == "cuda" and not gpu_available():
        pytest.skip("no CUDA device found")
    c = b * b * 2
    engine = build(converting_d2s_model(getattr(T, half), T.FLOAT, b, mode),
                   {"x": ((1, c, 1, 1), (2, c, 7, 5), (3, c, 31, 33))}, None, device=device)
    if device == "cuda":
        info = [l for l in json.loads(engine.layer_info)["Layers"] if l["Stage"] == "execute"]
        d2s = [l for l in info if l["LayerType"] == "DepthToSpace"]
        assert len(d2s) == 1 and d2s[0].get("Placement") != "cpu fallback", info
    ctx = engine.create_execution_context()
    for shape in [(1, c, 1, 1), (2, c, 7, 5), (3, c, 31, 33)]:
        x = (np.random.default_rng(sum(shape)).standard_normal(shape) * 1000).astype(np.float32)
        got = ctx.run({"x": x})["y"]
        assert got.dtype == np.float32 and got.shape == (shape[0], 2, shape[2] * b, shape[3] * b)
        want = np_depth_to_space(x.astype(ht), b, mode).astype(np.float32)
        np.testing.assert_array_equal(got, want)


def test_converting_depth_to_space_refuses_an_integer_target():
    with pytest.raises(ductile.Error, match="attribute 'to': expected float, float16 or bfloat16"):
        build(converting_d2s_model(T.FLOAT16, T.INT32, 2, "DCR"), {"x": ((1, 8, 1, 1), (1, 8, 2, 2), (1, 8, 3, 3))}, None)


@pytest.mark.parametrize("flag", ["FP16", "BF16"])
def test_cuda_output_cast_folds_into_the_depth_to_space(flag, monkeypatch):
    """Conv -> DepthToSpace as the network's output (superres' ending): with the fold (default)
    the engine has no Cast after the DepthToSpace, without it (DUCTILE_CAST_OUTPUT=0) one more
    layer; both within FP16/BF16 tolerance of the CPU float32 engine at odd sizes."""
    if not gpu_available():
        pytest.skip("no CUDA device found")
    rng = np.random.default_rng(11)
    nodes = [h.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             h.make_node("DepthToSpace", ["c"], ["y"], blocksize=3, mode="CRD")]
    inits = [nh.from_array(rng.standard_normal((18, 8, 3, 3)).astype(np.float32) * 0.2, "w")]
    graph = h.make_graph(nodes, "g", [h.make_tensor_value_info("x", T.FLOAT, ["N", 8, "H", "W"])],
                         [h.make_tensor_value_info("y", T.FLOAT, None)], initializer=inits)
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)], ir_version=8)
    profile = {"x": ((1, 8, 4, 4), (2, 8, 19, 17), (3, 8, 40, 40))}
    cpu = build(model, profile, None)
    engines = {}
    for fold in ("0", "1"):
        monkeypatch.setenv("DUCTILE_CAST_OUTPUT", fold)
        engines[fold] = build(model, profile, "nhwc", device="cuda", flags=(getattr(ductile.BuilderFlag, flag),))
    kinds = {f: [l["LayerType"] for l in json.loads(e.layer_info)["Layers"] if l["Stage"] == "execute"]
             for f, e in engines.items()}
    assert kinds["0"][-2:] == ["DepthToSpace", "Cast"], kinds["0"]
    assert kinds["1"][-1] == "DepthToSpace" and len(kinds["1"]) == len(kinds["0"]) - 1, kinds
    for shape in [(1, 8, 4, 4), (3, 8, 11, 7), (2, 8, 40, 33)]:
        x = rng.standard_normal(shape).astype(np.float32)
        want = cpu.create_execution_context().run({"x": x})["y"]
        for fold, e in engines.items():
            got = e.create_execution_context().run({"x": x})["y"]
            assert got.dtype == np.float32
            err = rel_l2(got, want)
            assert err <= 1e-2, f"{flag} fold {fold} at {shape}: rel-L2 {err:.3e}"


@pytest.mark.parametrize("flag", ["FP16", "BF16"])
def test_cuda_input_cast_folds_into_the_layout_transpose(block_engines, flag, monkeypatch):
    model, _, plain = block_engines
    if not gpu_available():
        pytest.skip("no CUDA device found")
    engines = {}
    for fold in ("0", "1"):
        monkeypatch.setenv("DUCTILE_CAST_TRANSPOSE", fold)
        engines[fold] = build(model, BLOCK_PROFILE, "nhwc", device="cuda", flags=(getattr(ductile.BuilderFlag, flag),))
    kinds = {f: [l["LayerType"] for l in json.loads(e.layer_info)["Layers"] if l["Stage"] == "execute"]
             for f, e in engines.items()}
    assert kinds["0"][:2] == ["Cast", "Transpose"], kinds["0"]
    assert kinds["1"][0] == "Transpose" and kinds["1"][1] != "Cast", kinds["1"]
    assert len(kinds["1"]) == len(kinds["0"]) - 1, kinds
    for shape in BLOCK_SHAPES:
        x = np.random.default_rng(sum(shape)).standard_normal(shape).astype(np.float32)
        want = plain.create_execution_context().run({"x": x})
        got = {f: e.create_execution_context().run({"x": x}) for f, e in engines.items()}
        for (fold, name) in [(f, n) for f in got for n in ("y", "mid")]:
            err = rel_l2(got[fold][name], want[name])
            assert err <= 1e-2, f"{flag} fold {fold} {name} at {shape}: rel-L2 {err:.3e}"
