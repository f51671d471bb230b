"""The builder's Resize -> Conv 1x1 rewrite (builder/commute_resize.c): where a nearest or linear
Resize of the spatial axes feeds a 1x1 conv of fewer output than input channels, the engine runs
the conv first and resizes its output (conv and resize commute). Each model is checked against
onnxruntime at dynamic shapes, odd sizes included, and the order the engine ran its layers in
(the profiler's) says whether the rewrite was taken: LR-ASPP's head as PyTorch exports it
(sizes = Concat(Slice(Shape(x), 0, 2), the low-resolution features' H and W)), constant scales
and constant sizes; and the cases it must leave alone (a downscale, cubic, tf_crop_and_resize,
as many output channels as input, a Resize output the network also returns). The LR-ASPP head
also on the GPU where there is one (the CUDA Resize then reads sizes of the spatial axes)."""
import json

import numpy as np
import pytest
from onnx import TensorProto as T, helper as h, numpy_helper as nh

import ductile
from test_cuda import need_gpu
from util import assert_close, model_path, ort_run

OPSET = 17


def head_model(cin=8, cout=3, mode="linear", ctm="half_pixel", sizes="torch", extra_output=False,
               static=None, scales=None):
    """x [N, cin, H, W] -> Resize -> Conv 1x1 (cin -> cout, bias) -> y. sizes: "torch" (the
    spatial dims of input `low`, as LR-ASPP exports them), "const" (static must give x's dims
    and the output's H, W) or None (constant `scales`)."""
    rng = np.random.default_rng(3)
    inits = [nh.from_array(rng.standard_normal((cout, cin, 1, 1)).astype(np.float32), "w"),
             nh.from_array(rng.standard_normal(cout).astype(np.float32), "b")]
    nodes, inputs = [], []
    xdims = static[0] if static else ["n", cin, "h", "w"]
    inputs.append(h.make_tensor_value_info("x", T.FLOAT, xdims))
    if sizes == "torch":
        inputs.append(h.make_tensor_value_info("low", T.FLOAT, ["n", 2, "lh", "lw"]))
        inits += [nh.from_array(np.array(v, np.int64), k) for k, v in
                  (("zero", [0]), ("two", [2]), ("i2", 2), ("i3", 3))]
        nodes += [h.make_node("Shape", ["x"], ["xs"]),
                  h.make_node("Slice", ["xs", "zero", "two"], ["nc"]),
                  h.make_node("Shape", ["low"], ["ls"]),
                  h.make_node("Gather", ["ls", "i2"], ["lh"], axis=0),
                  h.make_node("Gather", ["ls", "i3"], ["lw"], axis=0),
                  h.make_node("Unsqueeze", ["lh", "zero"], ["lh1"]),
                  h.make_node("Unsqueeze", ["lw", "zero"], ["lw1"]),
                  h.make_node("Concat", ["lh1", "lw1"], ["hw"], axis=0),
                  h.make_node("Cast", ["hw"], ["hw64"], to=T.INT64),
                  h.make_node("Concat", ["nc", "hw64"], ["sizes"], axis=0)]
        resize_in = ["x", "", "", "sizes"]
    elif sizes == "const":
        inits.append(nh.from_array(np.array(static[1], np.int64), "sizes"))
        resize_in = ["x", "", "", "sizes"]
    else:
        inits.append(nh.from_array(np.array(scales, np.float32), "scales"))
        resize_in = ["x", "", "scales"]
    if ctm == "tf_crop_and_resize":
        inits.append(nh.from_array(np.array([0, 0, 0.1, 0.2, 1, 1, 0.9, 0.8], np.float32), "roi"))
        resize_in[1] = "roi"
    nodes += [h.make_node("Resize", resize_in, ["up"], mode=mode, coordinate_transformation_mode=ctm),
              h.make_node("Conv", ["up", "w", "b"], ["y"])]
    outputs = [h.make_tensor_value_info("y", T.FLOAT, None)]
    if extra_output:
        outputs.append(h.make_tensor_value_info("up", T.FLOAT, None))
    graph = h.make_graph(nodes, "head", inputs, outputs, inits)
    return h.make_model(graph, opset_imports=[h.make_opsetid("", OPSET)], ir_version=8)


def build(model, profile, device="cpu"):
    builder = ductile.Builder()
    network = builder.parse_onnx_bytes(model.SerializeToString())
    config = builder.create_builder_config()
    config.device = device
    if profile:
        p = builder.create_optimization_profile()
        for name, (lo, opt, hi) in profile.items():
            p.set_shape(name, lo, opt, hi)
        config.add_optimization_profile(p)
    return builder.build_engine(network, config)


def run_in_order(engine, feeds):
    """The outputs and the op types of the layers the engine runs, in their order."""
    layers = json.loads(engine.layer_info)["Layers"]
    ops = [l["LayerType"] for l in layers if l["Stage"] == "execute"]
    return engine.create_execution_context().run(feeds), ops


def conv_first(ops):
    return ops.index("FusedConv") < ops.index("Resize")


TORCH_PROFILE = {"x": ((1, 8, 3, 3), (1, 8, 16, 16), (2, 8, 40, 40)),
                 "low": ((1, 2, 5, 5), (1, 2, 32, 32), (2, 2, 80, 80))}


@pytest.mark.parametrize("mode,ctm", [("linear", "half_pixel"), ("linear", "align_corners"),
                                      ("nearest", "asymmetric"), ("linear", "pytorch_half_pixel")])
@pytest.mark.parametrize("xs,ls", [((1, 8, 16, 16), (1, 2, 32, 32)), ((2, 8, 7, 5), (2, 2, 13, 11)),
                                   ((1, 8, 3, 9), (1, 2, 5, 17))])
@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_lraspp_head_runs_the_conv_first_and_matches_onnxruntime(mode, ctm, xs, ls, device):
    if device == "cuda":
        need_gpu()
    model = head_model(mode=mode, ctm=ctm)
    engine = build(model, TORCH_PROFILE, device)
    rng = np.random.default_rng(11)
    feeds = {"x": rng.standard_normal(xs, dtype=np.float32), "low": rng.standard_normal(ls, dtype=np.float32)}
    got, ops = run_in_order(engine, feeds)
    assert conv_first(ops), ops
    assert_close(got["y"], ort_run(model.SerializeToString(), feeds)["y"], rtol=1e-5 if device == "cpu" else 1e-4)
    assert got["y"].shape == (xs[0], 3, ls[2], ls[3])


@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_constant_scales_upscale_runs_the_conv_first(mode):
    model = head_model(sizes=None, scales=[1, 1, 2, 3], mode=mode, ctm="asymmetric")
    engine = build(model, {"x": ((1, 8, 2, 2), (1, 8, 9, 7), (3, 8, 20, 20))})
    x = np.random.default_rng(5).standard_normal((3, 8, 9, 7), dtype=np.float32)
    got, ops = run_in_order(engine, {"x": x})
    assert conv_first(ops), ops
    assert_close(got["y"], ort_run(model.SerializeToString(), {"x": x})["y"], rtol=1e-5)


def test_constant_sizes_of_a_static_model_run_the_conv_first():
    model = head_model(sizes="const", static=([1, 8, 6, 5], [1, 8, 13, 11]))
    engine = build(model, None)
    x = np.random.default_rng(6).standard_normal((1, 8, 6, 5), dtype=np.float32)
    got, ops = run_in_order(engine, {"x": x})
    assert conv_first(ops), ops
    assert_close(got["y"], ort_run(model.SerializeToString(), {"x": x})["y"], rtol=1e-5)


LEFT_ALONE = {
    "downscale": dict(sizes="const", static=([1, 8, 16, 16], [1, 8, 7, 9])),
    "cubic": dict(sizes=None, scales=[1, 1, 2, 2], mode="cubic"),
    "tf_crop_and_resize": dict(sizes=None, scales=[1, 1, 2, 2], ctm="tf_crop_and_resize"),
    "as many channels out": dict(sizes=None, scales=[1, 1, 2, 2], cout=8),
    "resize output returned": dict(sizes=None, scales=[1, 1, 2, 2], extra_output=True),
}


@pytest.mark.parametrize("case", sorted(LEFT_ALONE))
def test_cases_the_rewrite_must_not_take_keep_the_resize_first(case):
    kw = dict(LEFT_ALONE[case])
    static = kw.get("static")
    model = head_model(**kw)
    shape = tuple(static[0]) if static else (2, 8, 5, 7)
    engine = build(model, None if static else {"x": ((1, 8, 2, 2), shape, (2, 8, 9, 9))})
    x = np.random.default_rng(8).standard_normal(shape, dtype=np.float32)
    got, ops = run_in_order(engine, {"x": x})
    assert not conv_first(ops), ops
    want = ort_run(model.SerializeToString(), {"x": x})
    for name in want:
        assert_close(got[name], want[name], rtol=1e-5, what=name)


def test_seg_lraspp_head_runs_its_classifier_conv_first_with_the_scale_folded():
    """The suite's LR-ASPP: its classifier Resize runs after high_classifier, and the SE scale
    (Mul) that fed the Resize is folded into that conv (the shape layers that read the Mul's
    output for the old sizes are dropped before fusion). Its outputs against onnxruntime are
    test_models' job."""
    builder = ductile.Builder()
    network = builder.parse_onnx(model_path("seg_lraspp.onnx"))
    config = builder.create_builder_config()
    p = builder.create_optimization_profile()
    p.set_shape("input_1", (1, 3, 64, 64), (1, 3, 256, 256), (1, 3, 512, 512))
    config.add_optimization_profile(p)
    layers = [l for l in json.loads(builder.build_engine(network, config).layer_info)["Layers"] if l["Stage"] == "execute"]
    names = [l["Name"] for l in layers]
    assert "Mul" not in [l["LayerType"] for l in layers]
    assert names.index("/m/classifier/high_classifier/Conv") < names.index("/m/classifier/Resize"), names
