"""ExecutionContext.run() works out names and shapes once per context and reuses them
(context.py): these pin that what it reuses never outlives the shapes it was made for."""
import ctypes

import numpy as np
import pytest
from onnx import TensorProto as T, helper as h

import ductile


def two_input_context():
    """y = Relu(a) + b and z = a * b over [n, m], and the rank-1 s = Relu(c) over [k]."""
    nodes = [h.make_node("Relu", ["a"], ["r"]), h.make_node("Add", ["r", "b"], ["y"]),
             h.make_node("Mul", ["a", "b"], ["z"]), h.make_node("Relu", ["c"], ["s"])]
    graph = h.make_graph(nodes, "g",
                         [h.make_tensor_value_info("a", T.FLOAT, ["n", "m"]),
                          h.make_tensor_value_info("b", T.FLOAT, ["n", "m"]),
                          h.make_tensor_value_info("c", T.FLOAT, ["k"])],
                         [h.make_tensor_value_info("y", T.FLOAT, ["n", "m"]),
                          h.make_tensor_value_info("z", T.FLOAT, ["n", "m"]),
                          h.make_tensor_value_info("s", T.FLOAT, ["k"])])
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)], ir_version=8)
    builder = ductile.Builder()
    network = builder.parse_onnx_bytes(model.SerializeToString())
    profile = builder.create_optimization_profile()
    profile.set_shape("a", (1, 1), (4, 33), (16, 67))
    profile.set_shape("b", (1, 1), (4, 33), (16, 67))
    profile.set_shape("c", (1,), (17,), (101,))
    config = builder.create_builder_config()
    config.add_optimization_profile(profile)
    ctx = builder.build_engine(network, config).create_execution_context()
    ctx.set_threads(1)
    return ctx


def test_run_gives_each_shape_its_own_outputs_when_shapes_come_back():
    ctx = two_input_context()
    rng = np.random.default_rng(0)
    # A shape, another, the first again, then one input's shape alone changing: each run's
    # outputs have that run's shapes and values, never the Dims of a shape run before.
    for n, m, k in [(3, 5, 17), (13, 67, 101), (3, 5, 17), (3, 7, 17), (3, 7, 2), (1, 1, 1)]:
        a = rng.standard_normal((n, m)).astype(np.float32)
        b = rng.standard_normal((n, m)).astype(np.float32)
        c = rng.standard_normal((k,)).astype(np.float32)
        out = ctx.run({"a": a, "b": b, "c": c})
        assert out["y"].shape == (n, m) and out["z"].shape == (n, m) and out["s"].shape == (k,)
        np.testing.assert_array_equal(out["y"], np.maximum(a, 0) + b)
        np.testing.assert_array_equal(out["z"], a * b)
        np.testing.assert_array_equal(out["s"], np.maximum(c, 0))


def test_run_converts_and_binds_inputs_that_are_not_contiguous_float32():
    ctx = two_input_context()
    a = np.arange(2 * 9, dtype=np.float64).reshape(9, 2).T - 5   # float64, transposed
    b = np.ones((2, 9), np.float32)[:, ::1]
    out = ctx.run({"a": a, "b": b, "c": np.arange(-3, 4)})       # int64
    np.testing.assert_array_equal(out["y"], np.maximum(a, 0).astype(np.float32) + 1)
    np.testing.assert_array_equal(out["s"], np.maximum(np.arange(-3, 4), 0).astype(np.float32))


def test_run_leaves_no_caller_array_bound():
    ctx = two_input_context()
    feeds = {"a": np.ones((2, 3), np.float32), "b": np.ones((2, 3), np.float32), "c": np.ones(4, np.float32)}
    out = ctx.run(feeds)
    # After run() every I/O tensor reads or writes the context's own buffer again, none of
    # the arrays run() bound (which Python may free).
    callers = {name: arr.ctypes.data for name, arr in {**feeds, **out}.items()}
    for name, address in callers.items():
        assert ctx.get_tensor_address(name) not in (0, address), name


@pytest.mark.parametrize("feeds, message", [
    ({"q": np.ones((2, 3), np.float32)}, "'q' is not an input of the engine"),
    ({"a": np.ones((2, 3, 1), np.float32)}, "input 'a' has rank 2"),
    ({"a": np.ones((2, 3), np.float32), "b": np.ones((2, 3), np.float32)}, "no array given for input 'c'"),
])
def test_run_refuses_what_set_input_shape_refuses(feeds, message):
    ctx = two_input_context()
    with pytest.raises(ductile.Error, match=message):
        ctx.run(feeds)
    # The refusal leaves the context usable.
    out = ctx.run({"a": np.ones((2, 3), np.float32), "b": np.ones((2, 3), np.float32), "c": np.ones(4, np.float32)})
    np.testing.assert_array_equal(out["y"], np.full((2, 3), 2, np.float32))


def test_run_refuses_a_second_thread_with_the_rule():
    ctx = two_input_context()
    assert ctx._busy.acquire(blocking=False)   # as if another thread were inside run()
    try:
        with pytest.raises(ductile.Error, match="run: the context is in use by another thread"):
            ctx.run({"a": np.ones((1, 1), np.float32), "b": np.ones((1, 1), np.float32), "c": np.ones(1, np.float32)})
    finally:
        ctx._busy.release()
    assert ctypes.c_void_p(ctx._handle).value
