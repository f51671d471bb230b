"""Gradient (ai.onnx.preview.training), rewritten at import into ordinary ops: outputs against
numpy-computed derivatives (onnxruntime has no Gradient outside its training build), through a
serialized and reloaded engine; broadcast operands get their gradients summed back to their
shapes; the refusals carry their exact messages."""
import numpy as np
import pytest
from onnx import TensorProto, helper

import ductile

TRAIN = "ai.onnx.preview.training"


def model(nodes, inputs, outputs, default_opset=17):
    graph = helper.make_graph(nodes, "grad", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", default_opset), helper.make_opsetid(TRAIN, 1)])
    m.ir_version = 8
    return m.SerializeToString()


def grad(xs, y, outs, inputs=None, name="g"):
    return helper.make_node("Gradient", inputs or xs, outs, name=name, domain=TRAIN, xs=xs, y=y)


def run_reloaded(data, feeds):
    """Build, serialize, reload, run: the rewritten ops come back from the engine file."""
    b = ductile.Builder()
    engine = b.build_engine(b.parse_onnx_bytes(data), b.create_builder_config())
    engine = ductile.Runtime().deserialize_cuda_engine(engine.serialize())
    return engine.create_execution_context().run(feeds)


def parse_error(data):
    with pytest.raises(ductile.Error) as info:
        ductile.Builder().parse_onnx_bytes(data)
    return info.value.status, str(info.value)


def test_broadcast_add_mul_sums_back_to_each_shape():
    # d = (a + b) * a with a [3,1], b [1,4]: dd/da = sum_j (2a + b), dd/db = sum_i a.
    rng = np.random.default_rng(1)
    a = rng.standard_normal((3, 1)).astype(np.float32)
    b = rng.standard_normal((1, 4)).astype(np.float32)
    data = model([helper.make_node("Add", ["a", "b"], ["c"]), helper.make_node("Mul", ["c", "a"], ["d"]),
                  grad(["a", "b"], "d", ["da", "db"])],
                 [("a", [3, 1]), ("b", [1, 4])], ["d", "da", "db"])
    got = run_reloaded(data, {"a": a, "b": b})
    np.testing.assert_allclose(got["d"], (a + b) * a, rtol=1e-6)
    assert got["da"].shape == (3, 1) and got["db"].shape == (1, 4)
    np.testing.assert_allclose(got["da"], (2 * a + b).sum(axis=1, keepdims=True), rtol=1e-5)
    np.testing.assert_allclose(got["db"], np.broadcast_to(a, (3, 4)).sum(axis=0, keepdims=True), rtol=1e-5)


def test_sub_div_lower_rank_operand():
    # d = (a - b) / b, a [2,3], b [3] (broadcast over a leading axis it lacks).
    rng = np.random.default_rng(2)
    a = rng.standard_normal((2, 3)).astype(np.float32)
    b = (rng.uniform(0.5, 2.0, 3) * np.array([1, -1, 1])).astype(np.float32)
    data = model([helper.make_node("Sub", ["a", "b"], ["c"]), helper.make_node("Div", ["c", "b"], ["d"]),
                  grad(["a", "b"], "d", ["da", "db"])],
                 [("a", [2, 3]), ("b", [3])], ["da", "db"])
    got = run_reloaded(data, {"a": a, "b": b})
    assert got["da"].shape == (2, 3) and got["db"].shape == (3,)
    np.testing.assert_allclose(got["da"], np.broadcast_to(1 / b, (2, 3)), rtol=1e-5)
    np.testing.assert_allclose(got["db"], (-1 / b - (a - b) / (b * b)).sum(axis=0), rtol=1e-5)


def test_activations_neg_identity_and_a_reused_tensor():
    # e = Tanh(Sigmoid(Relu(a) * a)) - Neg(Identity(a)); a feeds three consumers.
    a = np.array([[-1.5, -0.25, 0.3], [0.8, 1.7, -2.0]], np.float32)
    nodes = [helper.make_node("Relu", ["a"], ["r"]), helper.make_node("Mul", ["r", "a"], ["m"]),
             helper.make_node("Sigmoid", ["m"], ["s"]), helper.make_node("Tanh", ["s"], ["t"]),
             helper.make_node("Identity", ["a"], ["i"]), helper.make_node("Neg", ["i"], ["n"]),
             helper.make_node("Sub", ["t", "n"], ["e"]), grad(["a"], "e", ["da"])]
    got = run_reloaded(model(nodes, [("a", [2, 3])], ["da"]), {"a": a})
    a64 = a.astype(np.float64)
    m = np.maximum(a64, 0) * a64
    s = 1 / (1 + np.exp(-m))
    t = np.tanh(s)
    dm = np.where(a64 > 0, 2 * a64, 0.0)
    want = (1 - t * t) * s * (1 - s) * dm + 1
    np.testing.assert_allclose(got["da"], want, rtol=1e-5, atol=1e-6)


def test_y_independent_of_an_x_gives_zeros_and_y_equal_x_gives_ones():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.ones((4,), np.float32)
    data = model([helper.make_node("Mul", ["a", "a"], ["y"]), grad(["a", "b"], "y", ["da", "db"]),
                  grad(["a"], "a", ["daa"], name="g2")],
                 [("a", [2, 3]), ("b", [4])], ["da", "db", "daa"])
    got = run_reloaded(data, {"a": a, "b": b})
    np.testing.assert_allclose(got["da"], 2 * a)
    np.testing.assert_array_equal(got["db"], np.zeros(4, np.float32))
    np.testing.assert_array_equal(got["daa"], np.ones((2, 3), np.float32))


def test_matmul_on_the_path_is_refused():
    data = model([helper.make_node("MatMul", ["a", "b"], ["c"], name="mm"), helper.make_node("Add", ["c", "a"], ["d"]),
                  grad(["a", "b"], "d", ["da", "db"], name="my_gradient")],
                 [("a", [2, 2]), ("b", [2, 2])], ["da"])
    assert parse_error(data) == (
        "DUCTILE_ERR_UNSUPPORTED",
        "node 'my_gradient' (ai.onnx.preview.training.Gradient, opset 1): cannot differentiate node 'mm' (MatMul) "
        "on the path from xs to y 'd'; ductile differentiates Add, Sub, Mul, Div, Neg, Identity, Relu, Sigmoid and Tanh")


def test_matmul_off_the_path_is_fine():
    # MatMul reads a, but y does not depend on its output: nothing to differentiate there.
    a = np.eye(2, dtype=np.float32)
    data = model([helper.make_node("MatMul", ["a", "a"], ["c"], name="mm"), helper.make_node("Add", ["a", "a"], ["d"]),
                  grad(["a"], "d", ["da"])],
                 [("a", [2, 2])], ["c", "da"])
    np.testing.assert_array_equal(run_reloaded(data, {"a": a})["da"], np.full((2, 2), 2, np.float32))


def test_malformed_nodes_are_refused_by_name():
    inputs = [("a", [2]), ("b", [2])]
    add = helper.make_node("Add", ["a", "b"], ["c"])
    assert parse_error(model([add, grad(["a", "b"], "c", ["da", "db"], inputs=["b", "a"])], inputs, ["c"])) == (
        "DUCTILE_ERR_PARSE",
        "node 'g' (ai.onnx.preview.training.Gradient, opset 1): input 0 is 'b' but xs[0] is 'a'")
    assert parse_error(model([add, grad(["a", "b"], "c", ["da"])], inputs, ["c"])) == (
        "DUCTILE_ERR_PARSE",
        "node 'g' (ai.onnx.preview.training.Gradient, opset 1): has 2 inputs and 1 outputs; expected the 2 xs "
        "then the 0 zs as inputs and one output per x (xs is not empty)")
    assert parse_error(model([grad(["a"], "c", ["da"]), add], inputs, ["c"])) == (
        "DUCTILE_ERR_PARSE",
        "node 'g' (ai.onnx.preview.training.Gradient, opset 1): y 'c' is not computed by any earlier node, "
        "initializer or graph input")
    assert parse_error(model([add, helper.make_node("Gradient", ["a"], ["da"], name="g", domain=TRAIN, xs=["a"])],
                             inputs, ["c"])) == (
        "DUCTILE_ERR_PARSE", "node 'g' (ai.onnx.preview.training.Gradient, opset 1): attribute 'y' is missing")


def test_dynamic_dims_sum_back_whichever_side_broadcasts_at_run_time():
    # a [n,k] * b [j]: which operand broadcasts (k == j, j == 1, k == 1) is known only when
    # running; one engine (serialized and reloaded) serves all three.
    data = model([helper.make_node("Mul", ["a", "b"], ["c"]), helper.make_node("Add", ["c", "b"], ["d"]),
                  grad(["a", "b"], "d", ["da", "db"])],
                 [("a", ["n", "k"]), ("b", ["j"])], ["da", "db"])
    b = ductile.Builder()
    profile = b.create_optimization_profile()
    profile.set_shape("a", (1, 1), (2, 3), (4, 5))
    profile.set_shape("b", (1,), (3,), (5,))
    config = b.create_builder_config()
    config.add_optimization_profile(profile)
    engine = b.build_engine(b.parse_onnx_bytes(data), config)
    ctx = ductile.Runtime().deserialize_cuda_engine(engine.serialize()).create_execution_context()
    rng = np.random.default_rng(5)
    for sa, sb in [((2, 3), (3,)), ((4, 3), (1,)), ((3, 1), (5,))]:
        a = rng.standard_normal(sa).astype(np.float32)
        bv = rng.standard_normal(sb).astype(np.float32)
        got = ctx.run({"a": a, "b": bv})
        shape = np.broadcast_shapes(sa, sb)
        assert got["da"].shape == sa and got["db"].shape == sb
        # dd/da = b (summed over what a broadcast along); dd/db = a + 1 (summed likewise).
        np.testing.assert_allclose(got["da"], np.broadcast_to(bv, shape).sum(axis=tuple(
            i for i in range(2) if sa[i] == 1 and shape[i] != 1), keepdims=True), rtol=1e-5)
        want_db = np.broadcast_to(a + 1, shape).sum(axis=0)
        if sb[0] == 1:
            want_db = want_db.sum(keepdims=True)
        np.testing.assert_allclose(got["db"], want_db, rtol=1e-5)


def test_double_inputs_and_zs_that_get_no_gradient():
    # The seed takes y's dtype (float64 here); zs are inputs of the node but not differentiated.
    a = np.array([0.3, -0.7, 1.1], np.float64)
    w = np.array([2.0, -3.0, 0.5], np.float64)
    graph = helper.make_graph(
        [helper.make_node("Mul", ["a", "w"], ["m"]), helper.make_node("Tanh", ["m"], ["y"]),
         helper.make_node("Gradient", ["a", "w"], ["da"], name="g", domain=TRAIN, xs=["a"], zs=["w"], y="y")],
        "grad", [helper.make_tensor_value_info(n, TensorProto.DOUBLE, [3]) for n in ("a", "w")],
        [helper.make_tensor_value_info("da", TensorProto.DOUBLE, None)])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(TRAIN, 1)])
    m.ir_version = 8
    got = run_reloaded(m.SerializeToString(), {"a": a, "w": w})["da"]
    assert got.dtype == np.float64
    # The sum back to a's shape is a ReduceSum, which the CPU backend computes in float32 for
    # other dtypes (backend/cpu/nn_reduce.c): float32's precision, not double's.
    np.testing.assert_allclose(got, (1 - np.tanh(a * w) ** 2) * w, rtol=1e-6)
