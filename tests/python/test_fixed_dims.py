"""A dim the model fixes stays fixed: a profile that ranges it is refused, naming the override
(tensor.shape = ..., ductile_network_set_input_dims, --dynamicDims) and whether the model ties
the dim to its size. Overridden dims are moved at build time, and a constant that still holds
the old size is refused even where the sizes divide (superres_op10_static at 448 used to
return 4x1x672x672: the Reshape's -1 turned the extra rows into batch)."""
import numpy as np
import pytest
import onnx
from onnx import TensorProto, helper, numpy_helper

import ductile
import util
from test_errors import raises
from util import model_path

STATIC = "superres_op10_static.onnx"

OVERRIDE_HINT = ("a dim the model fixes stays fixed unless it is overridden (C: "
                 "ductile_network_set_input_dims; Python: network.get_input(0).shape = {py}; "
                 "command line: --dynamicDims=input:{cli})")

RESHAPE_TIE = ("node '/ps/Reshape' (Reshape, opset 10): '/ps/Constant_output_0' = "
               "[-1,1,3,3,224,224] ties '/c4/Conv_output_0' dimension 2 to 224: at [1,9,448,224] "
               "it reshapes to [2,1,3,3,224,224], where dimension 0 grows instead of dimension 4")


def build(network_or_path, shapes, override=None, name="input"):
    builder = ductile.Builder()
    if isinstance(network_or_path, bytes):
        network = builder.parse_onnx_bytes(network_or_path)
    else:
        network = builder.parse_onnx(model_path(network_or_path))
    if override is not None:
        network.get_input(0).shape = override
    profile = builder.create_optimization_profile()
    profile.set_shape(name, *shapes)
    config = builder.create_builder_config()
    config.add_optimization_profile(profile)
    return builder, network, config


# (a) ---------------------------------------------------------------------------------------

def test_profile_ranging_fixed_dims_is_refused_naming_override_and_tying_reshape():
    # The command: batch 1..4 and 224..448 on a model that declares [1,1,224,224].
    builder, network, config = build(
        STATIC, ((1, 1, 224, 224), (2, 1, 224, 224), (4, 1, 448, 448)))
    raises("DUCTILE_ERR_PROFILE",
           "profile 0: input 'input' dimension 2 is fixed to 224 by the model but the profile "
           "ranges it over 224..448; "
           + OVERRIDE_HINT.format(py="(-1, 1, -1, -1)", cli="-1x1x-1x-1")
           + "; even overridden, the model ties it to 224, so it must be exported again with "
           "this dim dynamic: " + RESHAPE_TIE,
           builder.build_engine, network, config)


def test_profile_ranging_fixed_batch_is_refused_and_says_the_override_is_enough():
    builder, network, config = build(
        STATIC, ((1, 1, 224, 224), (2, 1, 224, 224), (4, 1, 224, 224)))
    raises("DUCTILE_ERR_PROFILE",
           "profile 0: input 'input' dimension 0 is fixed to 1 by the model but the profile "
           "ranges it over 1..4; "
           + OVERRIDE_HINT.format(py="(-1, 1, 224, 224)", cli="-1x1x224x224")
           + "; with the override the model passes the shape check at 1..4",
           builder.build_engine, network, config)


def test_profile_setting_a_fixed_dim_to_another_size_is_refused():
    builder, network, config = build(
        STATIC, ((1, 1, 64, 64), (1, 1, 64, 64), (1, 1, 64, 64)))
    raises("DUCTILE_ERR_PROFILE",
           "profile 0: input 'input' dimension 2 is fixed to 224 by the model but the profile "
           "sets it to 64; "
           + OVERRIDE_HINT.format(py="(1, 1, -1, -1)", cli="1x1x-1x-1")
           + "; even overridden, the model fails at 64, so it must be exported again with this "
           "dim dynamic: node '/ps/Reshape' (Reshape, opset 10): cannot reshape "
           "'/c4/Conv_output_0' of shape [1,9,64,224] (129024 elements) to "
           "'/ps/Constant_output_0' = [-1,1,3,3,224,224]: the known dims give 451584 elements, "
           "which does not divide 129024",
           builder.build_engine, network, config)


# (b) ---------------------------------------------------------------------------------------

def test_overridden_dims_tied_by_reshape_are_refused_where_sizes_divide():
    builder, network, config = build(
        STATIC, ((1, 1, 224, 224), (2, 1, 224, 224), (4, 1, 448, 448)), (-1, 1, -1, -1))
    raises("DUCTILE_ERR_PROFILE",
           "profile 0: input 'input' dimension 2 (input_dim2) ranges over 224..448 but the model "
           "ties it to its declared size 224: " + RESHAPE_TIE,
           builder.build_engine, network, config)


def test_dims_fixed_to_another_size_by_override_are_checked_too():
    # 448 alone divides too: fixing the dim to it is an override like -1.
    builder, network, config = build(
        STATIC, ((1, 1, 448, 224),) * 3, (1, 1, 448, 224))
    raises("DUCTILE_ERR_PROFILE",
           "profile 0: input 'input' dimension 2 ranges over 448..448 but the model ties it to "
           "its declared size 224: " + RESHAPE_TIE,
           builder.build_engine, network, config)


# (d) ---------------------------------------------------------------------------------------

def free_model(dims, slice_end=int(np.iinfo(np.int64).max)):
    """x [n, 3, h, w] -> Conv (3->4, 3x3, pad 1) -> Slice rows [0, slice_end) -> Reshape
    [0, 4, -1] -> Softmax: n, h and w are free in the graph whatever the file declares."""
    rng = np.random.default_rng(3)
    inits = [
        numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w"),
        numpy_helper.from_array(np.array([0], np.int64), "starts"),
        numpy_helper.from_array(np.array([slice_end], np.int64), "ends"),
        numpy_helper.from_array(np.array([2], np.int64), "axes"),
        numpy_helper.from_array(np.array([0, 4, -1], np.int64), "shape"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Slice", ["c", "starts", "ends", "axes"], ["s"], name="crop"),
        helper.make_node("Reshape", ["s", "shape"], ["r"], name="flat"),
        helper.make_node("Softmax", ["r"], ["y"], name="softmax", axis=-1),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(dims))
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    graph = helper.make_graph(nodes, "free", [x], [y], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8   # what the pinned onnxruntime reads
    return model.SerializeToString()


def test_override_of_genuinely_free_dims_builds_and_matches_onnxruntime():
    builder, network, config = build(
        free_model((1, 3, 8, 8)), ((1, 3, 4, 4), (2, 3, 8, 8), (3, 3, 16, 12)), (-1, 3, -1, -1),
        "x")
    assert network.get_input(0).shape == (-1, 3, -1, -1)
    assert network.get_input(0).dim_names == ("x_dim0", None, "x_dim2", "x_dim3")
    assert network.get_output(0).dim_names == ("x_dim0", None, "x_dim2*x_dim3")
    engine = builder.build_engine(network, config)
    x = np.random.default_rng(0).standard_normal((3, 3, 13, 11), dtype=np.float32)
    got = engine.create_execution_context().run({"x": x})["y"]
    # onnxruntime refuses 13x11 on the file that declares 1x3x8x8 ("Got: 13 Expected: 8"), so
    # it runs the same graph with the dims declared symbolic.
    want = util.ort_run(free_model(("n", 3, "h", "w")), {"x": x})["y"]
    assert got.shape == want.shape == (3, 4, 13 * 11)
    util.assert_close(got, want, what="free model at 3x3x13x11")


def test_override_with_a_slice_that_keeps_the_old_size_is_refused():
    # A crop to the declared 8 rows, as a static export writes x[:, :, :h] with h = 8.
    builder, network, config = build(
        free_model((1, 3, 8, 8), slice_end=8), ((1, 3, 8, 8), (1, 3, 8, 8), (1, 3, 16, 8)),
        (1, 3, -1, 8), "x")
    raises("DUCTILE_ERR_PROFILE",
           "profile 0: input 'x' dimension 2 (x_dim2) ranges over 8..16 but the model ties it "
           "to its declared size 8: node 'crop' (Slice, opset 13): ends 'ends' = [8] ties 'c' "
           "dimension 2 to 8: at 16 the output keeps 8",
           builder.build_engine, network, config)


def test_override_with_a_slice_that_takes_fewer_rows_builds():
    # x[:, :, :4] is a real crop, not the declared size: it stays 4 rows at every size.
    builder, network, config = build(
        free_model((1, 3, 8, 8), slice_end=4), ((1, 3, 8, 8), (1, 3, 8, 8), (1, 3, 16, 8)),
        (1, 3, -1, 8), "x")
    engine = builder.build_engine(network, config)
    x = np.random.default_rng(1).standard_normal((1, 3, 16, 8), dtype=np.float32)
    got = engine.create_execution_context().run({"x": x})["y"]
    want = util.ort_run(free_model((1, 3, "h", 8), slice_end=4), {"x": x})["y"]
    util.assert_close(got, want, what="crop of 4 rows at 16x8")


# (f) ---------------------------------------------------------------------------------------

def test_tensor_shape_setter_overrides_dims_and_names_symbols():
    network = ductile.Builder().parse_onnx(model_path(STATIC))
    inp = network.get_input(0)
    assert inp.shape == (1, 1, 224, 224)
    inp.shape = (-1, 1, -1, -1)
    assert inp.shape == (-1, 1, -1, -1)
    assert inp.dim_names == ("input_dim0", None, "input_dim2", "input_dim3")
    # The symbolic pass runs again: the -1 of the pixel shuffle's Reshape shows the tie.
    assert network.get_output(0).dim_names[0] == "floor(input_dim0*input_dim2*input_dim3/50176)"
    inp.shape = (1, 1, 224, 224)
    assert inp.shape == (1, 1, 224, 224) and inp.dim_names == (None,) * 4


def test_tensor_shape_setter_refuses_wrong_rank_and_non_inputs():
    network = ductile.Builder().parse_onnx(model_path(STATIC))
    raises("DUCTILE_ERR_INVALID_ARGUMENT",
           "set_input_dims: input 'input' has rank 4 but 3 dims were given",
           setattr, network.get_input(0), "shape", (-1, -1, -1))
    raises("DUCTILE_ERR_INVALID_ARGUMENT",
           "set_input_dims: input 'input' dimension 1 is -2 (expected -1 for dynamic, or >= 0)",
           setattr, network.get_input(0), "shape", (1, -2, 224, 224))
    raises("DUCTILE_ERR_INVALID_ARGUMENT",
           "set_input_dims: tensor 'output' is not a network input",
           setattr, network.get_output(0), "shape", (-1, 1, -1, -1))


def test_batch_override_on_static_superres_matches_onnxruntime_per_image():
    builder, network, config = build(
        STATIC, ((1, 1, 224, 224), (2, 1, 224, 224), (3, 1, 224, 224)), (-1, 1, 224, 224))
    engine = builder.build_engine(network, config)
    x = np.random.default_rng(2).standard_normal((3, 1, 224, 224), dtype=np.float32)
    got = engine.create_execution_context().run({"input": x})["output"]
    session = util.ort_session(model_path(STATIC))
    for k in range(3):
        want = session.run(None, {"input": x[k:k + 1]})[0]
        util.assert_close(got[k:k + 1], want, what=f"image {k} of the batch")


def resize_model(dims, sizes=None, scales=None):
    """x -> Resize (nearest) by constant sizes or scales."""
    inits, ins = [], ["x", "", ""]
    if sizes is not None:
        inits.append(numpy_helper.from_array(np.array(sizes, np.int64), "sizes"))
        ins.append("sizes")
    else:
        inits.append(numpy_helper.from_array(np.array(scales, np.float32), "scales"))
        ins[2] = "scales"
    node = helper.make_node("Resize", ins, ["y"], name="up", mode="nearest")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(dims))
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    model = helper.make_model(helper.make_graph([node], "up", [x], [y], inits),
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model.SerializeToString()


def test_override_with_a_resize_to_constant_sizes_is_refused():
    builder, network, config = build(
        resize_model((1, 3, 8, 8), sizes=[1, 3, 16, 16]),
        ((1, 3, 8, 8), (1, 3, 8, 8), (1, 3, 16, 16)), (1, 3, -1, -1), "x")
    raises("DUCTILE_ERR_PROFILE",
           "profile 0: input 'x' dimension 2 (x_dim2) ranges over 8..16 but the model ties it "
           "to its declared size 8: node 'up' (Resize, opset 13): sizes 'sizes' = [1,3,16,16] "
           "ties 'x' dimension 2 to 8: at 16 the output keeps 16",
           builder.build_engine, network, config)


def test_override_with_a_resize_by_scales_builds_and_matches_onnxruntime():
    builder, network, config = build(
        resize_model((1, 3, 8, 8), scales=[1, 1, 2, 2]),
        ((1, 3, 8, 8), (1, 3, 8, 8), (1, 3, 16, 16)), (1, 3, -1, -1), "x")
    engine = builder.build_engine(network, config)
    x = np.random.default_rng(6).standard_normal((1, 3, 13, 16), dtype=np.float32)
    got = engine.create_execution_context().run({"x": x})["y"]
    want = util.ort_run(resize_model((1, 3, "h", "w"), scales=[1, 1, 2, 2]), {"x": x})["y"]
    assert got.shape == want.shape == (1, 3, 26, 32)
    util.assert_close(got, want, what="resize by 2 at 13x16")


def test_override_of_mobilenet_image_size_builds_and_matches_onnxruntime():
    # mobilenet_v2 declares [batch, 3, 224, 224], but its head pools globally: 224 is free.
    builder, network, config = build(
        "mobilenet_v2.onnx", ((1, 3, 160, 160), (1, 3, 224, 224), (2, 3, 256, 256)),
        (-1, 3, -1, -1))
    engine = builder.build_engine(network, config)
    x = np.random.default_rng(8).standard_normal((2, 3, 192, 256), dtype=np.float32)
    got = engine.create_execution_context().run({"input": x})
    model = onnx.load(str(model_path("mobilenet_v2.onnx")))
    for d, name in ((2, "h"), (3, "w")):
        model.graph.input[0].type.tensor_type.shape.dim[d].dim_param = name
    want = util.ort_run(model.SerializeToString(), {"input": x})
    assert sorted(got) == sorted(want)
    for name in want:
        util.assert_close(got[name], want[name], what=f"mobilenet_v2 {name} at 2x3x192x256")
