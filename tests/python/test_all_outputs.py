"""Every tensor a model computes can be a network output, as accuracy debugging marks them:
for each model of the suite, every node output (Constant outputs included) is appended to
graph.output in the ONNX file, the engine is built and run at two shapes of a profile, and
every output is compared with onnxruntime running the same file on the same inputs."""
import numpy as np
import onnx
import pytest

import ductile
from ductile import compare
from util import MODELS, assert_close, build_from_bytes, model_path, random_feeds

# Small shapes keep the whole suite at a few seconds: {model: (profile, two shapes inside it)}.
# Dims the file fixes stay at their declared size.
SMALL = {
    "superres": ({"input": ((1, 1, 8, 8), (1, 1, 16, 16), (2, 1, 24, 24))},
                 [{"input": (1, 1, 8, 8)}, {"input": (2, 1, 13, 21)}]),
    "seg_lraspp": ({"input_1": ((1, 3, 32, 32), (1, 3, 64, 64), (1, 3, 96, 96))},
                   [{"input_1": (1, 3, 32, 32)}, {"input_1": (1, 3, 77, 55)}]),
    "mobilenet_v2": ({"input": ((1, 3, 224, 224), (1, 3, 224, 224), (2, 3, 224, 224))},
                     [{"input": (1, 3, 224, 224)}, {"input": (2, 3, 224, 224)}]),
    "bert_small": ({"input_ids": ((1, 1), (2, 8), (2, 16)),
                    "attention_mask": ((1, 1), (2, 8), (2, 16))},
                   [{"input_ids": (1, 5), "attention_mask": (1, 5)},
                    {"input_ids": (2, 16), "attention_mask": (2, 16)}]),
    "superres_op10_dynbatch": ({"input": ((1, 1, 224, 224), (1, 1, 224, 224), (2, 1, 224, 224))},
                               [{"input": (1, 1, 224, 224)}, {"input": (2, 1, 224, 224)}]),
}


def mark_every_tensor(model, typed):
    """The model with every node output appended to graph.output: with the type onnx's shape
    inference gives it when `typed`, else with no type (ductile then reports what it computes);
    and the names it marked. The marking is python -m ductile.compare's."""
    original = {o.name for o in model.graph.output}
    marked, tensors = compare.mark_every_tensor(model, typed)
    return marked, [name for _, _, name in tensors if name not in original]


def ort_all(model_bytes, feeds):
    """{output: array} from onnxruntime without graph optimizations, so every tensor is the
    one the file describes."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, feeds)))


def build(model_bytes, profile_shapes):
    return build_from_bytes(model_bytes, profile_shapes)


def check_all(model, profile_shapes, shape_sets, spec):
    data = model.SerializeToString()
    engine = build(data, profile_shapes)
    context = engine.create_execution_context()
    for i, shapes in enumerate(shape_sets):
        feeds = random_feeds(spec, shapes, seed=i)
        want = ort_all(data, feeds)
        got = context.run(feeds)
        assert sorted(got) == sorted(want)
        for name, expected in want.items():
            # The dtype the engine reports is the one it writes and onnxruntime computes.
            assert engine.get_tensor_dtype(name) == expected.dtype, name
            assert got[name].dtype == expected.dtype, name
            assert_close(got[name], expected, what=f"{spec.filename} {shapes} '{name}'")


@pytest.mark.parametrize("name", sorted(SMALL))
def test_every_tensor_marked_as_output_matches_onnxruntime(name):
    spec = MODELS[name]
    model, marked = mark_every_tensor(onnx.load(str(model_path(spec.filename))), typed=True)
    assert marked
    profile_shapes, shape_sets = SMALL[name]
    check_all(model, profile_shapes, shape_sets, spec)


def test_every_tensor_marked_untyped_reports_computed_dtypes():
    """Outputs that declare no dtype get the computed one (bert mixes float, int64, bool)."""
    spec = MODELS["bert_small"]
    model, _ = mark_every_tensor(onnx.load(str(model_path(spec.filename))), typed=False)
    profile_shapes, shape_sets = SMALL["bert_small"]
    check_all(model, profile_shapes, shape_sets, spec)


def test_static_model_every_tensor_marked_matches_onnxruntime():
    """superres_op10_static fixes its one input shape: one shape is all its profile has."""
    spec = MODELS["superres_op10_dynbatch"]
    model, _ = mark_every_tensor(onnx.load(str(model_path("superres_op10_static.onnx"))), typed=True)
    shape = {"input": (1, 1, 224, 224)}
    check_all(model, {"input": (shape["input"],) * 3}, [shape], spec)


def test_seg_lraspp_constant_marked_as_output_matches_onnxruntime_without_going_eager():
    # Before: the marked constant made the engine eager and a Gather read its indices
    # through a NULL view (SIGSEGV).
    spec = MODELS["seg_lraspp"]
    model = onnx.load(str(model_path(spec.filename)))
    name = "/m/classifier/Constant_output_0"
    model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    profile_shapes, shape_sets = SMALL["seg_lraspp"]
    engine = build(model.SerializeToString(), profile_shapes)
    context = engine.create_execution_context()
    # Output shapes known before execute: the engine runs its shape program, not eagerly.
    context.set_input_shape("input_1", shape_sets[1]["input_1"])
    assert context.get_tensor_shape(name) == ()
    check_all(model, profile_shapes, shape_sets, spec)


def tiny(nodes, outputs, initializers=(), inputs=None):
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["n", 2, 5, 5])
    graph = onnx.helper.make_graph(nodes, "g", inputs or [x], outputs,
                                   initializer=list(initializers))
    return onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)],
                                  ir_version=8)


TINY_PROFILE = {"x": ((1, 2, 5, 5), (2, 2, 5, 5), (3, 2, 5, 5))}
TINY_SHAPES = [{"x": (1, 2, 5, 5)}, {"x": (3, 2, 5, 5)}]


def constant(name, array):
    return onnx.helper.make_node("Constant", [], [name], name=name,
                                 value=onnx.numpy_helper.from_array(array))


def test_constants_and_values_marked_as_outputs_and_read_by_layers():
    """BatchNormalization reading Constant outputs that are network outputs (a real model
    crashed in dt_batchnorm_range this way), and a Shape -> Gather -> Concat -> Reshape chain
    whose value tensors are outputs too: all match onnxruntime, and output shapes are known
    before execute (the engine did not turn eager)."""
    rng = np.random.default_rng(3)
    nodes = [constant("scale", rng.uniform(0.5, 2, 2).astype(np.float32)),
             constant("bias", rng.standard_normal(2).astype(np.float32)),
             constant("mean", rng.standard_normal(2).astype(np.float32)),
             constant("var", rng.uniform(0.5, 2, 2).astype(np.float32)),
             onnx.helper.make_node("BatchNormalization", ["x", "scale", "bias", "mean", "var"],
                                   ["bn"], name="bn"),
             onnx.helper.make_node("Shape", ["bn"], ["shape"], name="shape_of"),
             constant("index", np.array([0], np.int64)),
             onnx.helper.make_node("Gather", ["shape", "index"], ["batch"], name="gather", axis=0),
             constant("rest", np.array([-1], np.int64)),
             onnx.helper.make_node("Concat", ["batch", "rest"], ["target"], name="concat", axis=0),
             onnx.helper.make_node("Reshape", ["bn", "target"], ["flat"], name="reshape")]
    names = ["flat", "bn", "scale", "bias", "mean", "var", "shape", "index", "batch", "rest", "target"]
    model = tiny(nodes, [onnx.helper.make_empty_tensor_value_info(n) for n in names])
    engine = build(model.SerializeToString(), TINY_PROFILE)
    context = engine.create_execution_context()
    context.set_input_shape("x", (3, 2, 5, 5))
    assert context.get_tensor_shape("flat") == (3, 50)
    assert context.get_tensor_shape("target") == (2,)
    check_all(model, TINY_PROFILE, TINY_SHAPES, MODELS["superres"])


def test_same_tensor_listed_twice_is_one_output():
    model = tiny([onnx.helper.make_node("Relu", ["x"], ["y"], name="relu")],
                 [onnx.helper.make_empty_tensor_value_info("y")] * 2)
    engine = build(model.SerializeToString(), TINY_PROFILE)
    assert engine.io_tensor_names == ["x", "y"]
    check_all(model, TINY_PROFILE, TINY_SHAPES, MODELS["superres"])


def test_graph_input_listed_as_output_is_refused_naming_it():
    model = tiny([onnx.helper.make_node("Relu", ["x"], ["y"], name="relu")],
                 [onnx.helper.make_empty_tensor_value_info("y"),
                  onnx.helper.make_empty_tensor_value_info("x")])
    with pytest.raises(ductile.Error) as info:
        build(model.SerializeToString(), TINY_PROFILE)
    assert (info.value.status, str(info.value)) == (
        "DUCTILE_ERR_UNSUPPORTED",
        "output 'x' is also a network input; ductile needs outputs computed by a layer")


def test_initializer_marked_as_output_through_the_network_api():
    w = np.arange(5, dtype=np.float32)
    model = tiny([onnx.helper.make_node("Add", ["x", "w"], ["y"], name="add")],
                 [onnx.helper.make_empty_tensor_value_info("y")],
                 initializers=[onnx.numpy_helper.from_array(w, "w")])
    builder = ductile.Builder()
    network = builder.parse_onnx_bytes(model.SerializeToString())
    network.mark_output(network.find_tensor("w"))
    profile = builder.create_optimization_profile()
    profile.set_shape("x", *TINY_PROFILE["x"])
    config = builder.create_builder_config()
    config.add_optimization_profile(profile)
    engine = builder.build_engine(network, config)
    x = np.ones((2, 2, 5, 5), np.float32)
    got = engine.create_execution_context().run({"x": x})
    np.testing.assert_array_equal(got["w"], w)
    np.testing.assert_array_equal(got["y"], x + w)


def test_constant_output_of_an_eager_engine_read_by_a_layer():
    """NonZero makes the engine eager: a Constant that is an output and read by a layer after
    it reaches both the layer and the output buffer."""
    nodes = [constant("one", np.array(1, np.int64)),
             onnx.helper.make_node("NonZero", ["x"], ["nz"], name="nonzero"),
             onnx.helper.make_node("Add", ["nz", "one"], ["y"], name="add")]
    model = tiny(nodes, [onnx.helper.make_empty_tensor_value_info(n) for n in ("y", "one", "nz")])
    check_all(model, TINY_PROFILE, TINY_SHAPES, MODELS["superres"])
