"""Shapes that follow from values: shape inputs (an int input read by Reshape, TensorRT's
shape tensors) and data computed at run time (eager engines), plus constant outputs."""
import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper as h

import ductile


def _engine(graph, profiles):
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    builder = ductile.Builder()
    network = builder.parse_onnx_bytes(model.SerializeToString())
    profile = builder.create_optimization_profile()
    for name, (mn, op, mx) in profiles.items():
        profile.set_shape(name, mn, op, mx)
    config = builder.create_builder_config()
    config.add_optimization_profile(profile)
    return builder.build_engine(network, config)


def test_shape_input_values_decide_the_output_shape_and_changes_are_seen():
    graph = h.make_graph([h.make_node("Reshape", ["x", "shape"], ["y"])], "g",
                         [h.make_tensor_value_info("x", T.FLOAT, ["n"]),
                          h.make_tensor_value_info("shape", T.INT64, [2])],
                         [h.make_tensor_value_info("y", T.FLOAT, None)])
    ctx = _engine(graph, {"x": ((1,), (12,), (24,)), "shape": ((2,), (2,), (2,))}).create_execution_context()
    x = np.arange(12, dtype=np.float32)
    y = ctx.run({"x": x, "shape": np.array([3, 4], np.int64)})["y"]
    assert y.shape == (3, 4) and np.array_equal(y, x.reshape(3, 4))
    y = ctx.run({"x": x, "shape": np.array([-1, 6], np.int64)})["y"]
    assert y.shape == (2, 6) and np.array_equal(y, x.reshape(2, 6))


def _eager_graph():
    # The Reshape's shape is computed from a float input's data: known only when running.
    return h.make_graph([h.make_node("Abs", ["s"], ["a"]),
                         h.make_node("Cast", ["a"], ["c"], to=T.INT64),
                         h.make_node("Reshape", ["x", "c"], ["y"])], "g",
                        [h.make_tensor_value_info("x", T.FLOAT, ["n"]),
                         h.make_tensor_value_info("s", T.FLOAT, [2])],
                        [h.make_tensor_value_info("y", T.FLOAT, None)])


def test_shape_computed_from_data_runs_eagerly():
    ctx = _engine(_eager_graph(), {"x": ((1,), (6,), (12,)), "s": ((2,), (2,), (2,))}).create_execution_context()
    y = ctx.run({"x": np.arange(6, dtype=np.float32), "s": np.array([-2, 3], np.float32)})["y"]
    assert y.shape == (2, 3) and np.array_equal(y.ravel(), np.arange(6, dtype=np.float32))
    y = ctx.run({"x": np.arange(12, dtype=np.float32), "s": np.array([4, -3], np.float32)})["y"]
    assert y.shape == (4, 3)


def test_data_dependent_output_shape_is_known_only_after_execute():
    ctx = _engine(_eager_graph(), {"x": ((1,), (6,), (12,)), "s": ((2,), (2,), (2,))}).create_execution_context()
    ctx.set_input_shape("x", (6,))
    ctx.set_input_shape("s", (2,))
    with pytest.raises(ductile.Error) as info:
        ctx.get_tensor_shape("y")
    assert info.value.status == "DUCTILE_ERR_STATE"
    assert str(info.value) == ("the shape of output 'y' depends on data computed at run time "
                               "(node 'Reshape_2' (Reshape)); it is known after execute")


def test_data_dependent_output_follows_new_values_at_the_same_shapes():
    # The same input shapes, new values: the shape and data of the last run must not be
    # taken for this one's (they were: the binding bound an array of the old shape, which
    # execute left unwritten).
    ctx = _engine(_eager_graph(), {"x": ((1,), (6,), (12,)), "s": ((2,), (2,), (2,))}).create_execution_context()
    x = np.arange(6, dtype=np.float32)
    for s, shape in (([-2, 3], (2, 3)), ([3, 2], (3, 2)), ([1, -6], (1, 6)), ([3, 2], (3, 2))):
        y = ctx.run({"x": x, "s": np.array(s, np.float32)})["y"]
        assert y.shape == shape and np.array_equal(y.ravel(), x)
    ctx.set_input_shape("x", (6,))
    with pytest.raises(ductile.Error) as info:
        ctx.get_tensor_shape("y")
    assert info.value.status == "DUCTILE_ERR_STATE"


def test_constant_output_is_written():
    value = np.array([[1.5, -2.0, 3.25]], np.float32)
    graph = h.make_graph([h.make_node("Constant", [], ["k"], value=h.make_tensor("v", T.FLOAT, value.shape, value.ravel())),
                          h.make_node("Relu", ["x"], ["y"])], "g",
                         [h.make_tensor_value_info("x", T.FLOAT, ["n"])],
                         [h.make_tensor_value_info("y", T.FLOAT, ["n"]), h.make_tensor_value_info("k", T.FLOAT, [1, 3])])
    ctx = _engine(graph, {"x": ((1,), (4,), (8,))}).create_execution_context()
    out = ctx.run({"x": np.array([-1, 2], np.float32)})
    assert np.array_equal(out["k"], value)
    assert np.array_equal(out["y"], np.array([0, 2], np.float32))
