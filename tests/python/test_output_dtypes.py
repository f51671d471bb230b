"""The dtype an engine reports for a tensor is the one its kernels write. A declared dtype
that differs from what the node computes is refused with the node, the tensor and both
dtypes named (builder/dtypes.c says why refusing beats returning the computed one); an
output that declares nothing gets the computed dtype."""
import struct

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import ductile
from util import ort_run

X = np.linspace(-2, 2, 12, dtype=np.float32).reshape(2, 6)


def model(nodes, outputs, value_info=(), initializers=()):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 6])
    graph = helper.make_graph(nodes, "g", [x], outputs, value_info=list(value_info),
                              initializer=list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                             ir_version=8).SerializeToString()


def relu_model(declared):
    """y = Relu(x), float32, with y declared `declared` (None: no type at all)."""
    y = (helper.make_empty_tensor_value_info("y") if declared is None
         else helper.make_tensor_value_info("y", declared, None))
    return model([helper.make_node("Relu", ["x"], ["y"], name="relu")], [y])


def parse(data):
    builder = ductile.Builder()
    return builder, builder.parse_onnx_bytes(data)


def build(builder, network):
    profile = builder.create_optimization_profile()
    profile.set_shape("x", (1, 6), (2, 6), (4, 6))
    config = builder.create_builder_config()
    config.add_optimization_profile(profile)
    return builder.build_engine(network, config)


def refused(status, message, fn, *args):
    with pytest.raises(ductile.Error) as info:
        fn(*args)
    assert (info.value.status, str(info.value)) == (status, message)


@pytest.mark.parametrize("declared", [TensorProto.FLOAT16, TensorProto.UINT8, TensorProto.INT64,
                                      TensorProto.DOUBLE])
def test_output_declared_other_than_computed_is_refused_naming_both_dtypes(declared):
    # Before: float16/uint8 made run() allocate the declared size and the kernel write past
    # it (SIGSEGV); int64/double came back as garbage.
    name = {TensorProto.FLOAT16: "float16", TensorProto.UINT8: "uint8",
            TensorProto.INT64: "int64", TensorProto.DOUBLE: "float64"}[declared]
    builder, network = parse(relu_model(declared))
    refused("DUCTILE_ERR_INVALID_ARGUMENT",
            f"node 'relu' (Relu, opset 17): output 'y' is declared {name} but the node computes float32",
            build, builder, network)


def test_output_without_declared_dtype_reports_and_returns_the_computed_one():
    # Before: reported undefined, and run() returned float64 garbage.
    data = relu_model(None)
    engine = build(*parse(data))
    assert engine.get_tensor_dtype("y") == np.float32
    got = engine.create_execution_context().run({"x": X})
    assert got["y"].dtype == np.float32
    np.testing.assert_array_equal(got["y"], np.maximum(X, 0))


def test_output_declared_as_computed_still_builds():
    engine = build(*parse(relu_model(TensorProto.FLOAT)))
    got = engine.create_execution_context().run({"x": X})
    np.testing.assert_array_equal(got["y"], np.maximum(X, 0))


def test_intermediate_value_info_other_than_computed_is_refused():
    data = model([helper.make_node("Relu", ["x"], ["h"], name="relu"),
                  helper.make_node("Neg", ["h"], ["y"], name="neg")],
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                 value_info=[helper.make_tensor_value_info("h", TensorProto.INT64, None)])
    builder, network = parse(data)
    refused("DUCTILE_ERR_INVALID_ARGUMENT",
            "node 'relu' (Relu, opset 17): tensor 'h' is declared int64 but the node computes float32",
            build, builder, network)


def test_value_info_and_output_declaring_two_dtypes_are_refused_at_parse():
    data = model([helper.make_node("Relu", ["x"], ["y"], name="relu")],
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT16, None)],
                 value_info=[helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    refused("DUCTILE_ERR_PARSE",
            "graph output 'y' is declared float16 but value_info declares it float32", parse, data)


def test_constant_output_declared_other_than_its_dtype_is_refused_at_parse():
    data = model([helper.make_node("Constant", [], ["k"], name="k",
                                   value=numpy_helper.from_array(np.ones(3, np.float32))),
                  helper.make_node("Relu", ["x"], ["y"], name="relu")],
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
                  helper.make_tensor_value_info("k", TensorProto.FLOAT16, None)])
    refused("DUCTILE_ERR_PARSE",
            "graph output 'k' is declared float16 but it is a constant of dtype float32", parse, data)


def test_mixed_dtypes_untyped_outputs_match_onnxruntime():
    """Outputs of several computed dtypes (float32, int64 from Shape, bool from Greater, int32
    from Cast), none declared: each comes back in the dtype onnxruntime computes."""
    nodes = [helper.make_node("Shape", ["x"], ["s"], name="shape"),
             helper.make_node("Greater", ["x", "zero"], ["b"], name="greater"),
             helper.make_node("Cast", ["x"], ["i"], name="cast", to=TensorProto.INT32),
             helper.make_node("Relu", ["x"], ["y"], name="relu")]
    data = model(nodes, [helper.make_empty_tensor_value_info(n) for n in ("s", "b", "i", "y")],
                 initializers=[numpy_helper.from_array(np.zeros((), np.float32), "zero")])
    engine = build(*parse(data))
    got = engine.create_execution_context().run({"x": X})
    want = ort_run(data, {"x": X})
    for name, expected in want.items():
        assert engine.get_tensor_dtype(name) == expected.dtype, name
        assert got[name].dtype == expected.dtype, name
        np.testing.assert_array_equal(got[name], expected)


def test_output_added_by_editing_an_untyped_tensor_reports_float32():
    """Network editing: an activation on a tensor with no declared dtype, its output marked
    (and the untyped tensor too): both are float32 and hold the right values."""
    data = model([helper.make_node("Relu", ["x"], ["h"], name="relu"),
                  helper.make_node("Neg", ["h"], ["y"], name="neg")],
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    builder, network = parse(data)
    h = network.find_tensor("h")
    assert h.dtype is None  # nothing declared in the file; the builder settles it
    layer = network.add_activation(h, ductile.ActivationType.SIGMOID)
    network.mark_output(layer.get_output(0))
    network.mark_output(h)
    engine = build(builder, network)
    new = layer.get_output(0).name
    assert engine.get_tensor_dtype(new) == np.float32
    assert engine.get_tensor_dtype("h") == np.float32
    got = engine.create_execution_context().run({"x": X})
    relu = np.maximum(X, 0)
    np.testing.assert_array_equal(got["h"], relu)
    np.testing.assert_allclose(got[new], 1 / (1 + np.exp(-relu)), rtol=1e-6)
    np.testing.assert_array_equal(got["y"], -relu)


def test_folded_layer_with_value_info_other_than_computed_is_refused():
    """A layer the builder folds (constant inputs) is checked like one that runs."""
    data = model([helper.make_node("Neg", ["k"], ["h"], name="neg"),
                  helper.make_node("Add", ["x", "h"], ["y"], name="add")],
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                 value_info=[helper.make_tensor_value_info("h", TensorProto.DOUBLE, None)],
                 initializers=[numpy_helper.from_array(np.ones(6, np.float32), "k")])
    builder, network = parse(data)
    refused("DUCTILE_ERR_INVALID_ARGUMENT",
            "node 'neg' (Neg, opset 17): tensor 'h' is declared float64 but the node computes float32",
            build, builder, network)


def nonzero_model(declared):
    """y = Transpose(NonZero(x)): its shape depends on data, so the engine runs eagerly."""
    y = (helper.make_empty_tensor_value_info("y") if declared is None
         else helper.make_tensor_value_info("y", declared, None))
    return model([helper.make_node("NonZero", ["x"], ["nz"], name="nonzero"),
                  helper.make_node("Transpose", ["nz"], ["y"], name="transpose")], [y])


def test_eager_output_declared_as_computed_runs():
    data = nonzero_model(TensorProto.INT64)
    engine = build(*parse(data))
    got = engine.create_execution_context().run({"x": X})
    np.testing.assert_array_equal(got["y"], ort_run(data, {"x": X})["y"])


def test_eager_output_without_declared_dtype_reports_the_computed_one():
    """The shape pass stops at NonZero at build time; the builder runs the engine once on
    zeros to learn the dtypes after it."""
    data = nonzero_model(None)
    engine = build(*parse(data))
    assert engine.get_tensor_dtype("y") == np.int64
    got = engine.create_execution_context().run({"x": X})
    np.testing.assert_array_equal(got["y"], ort_run(data, {"x": X})["y"])


def test_eager_output_declared_other_than_computed_is_refused_at_build():
    builder, network = parse(nonzero_model(TensorProto.FLOAT))
    refused("DUCTILE_ERR_INVALID_ARGUMENT",
            "node 'transpose' (Transpose, opset 17): output 'y' is declared float32 but the node "
            "computes int64", build, builder, network)


def test_output_whose_dtype_no_build_time_run_reaches_must_declare_one():
    """r = Range(0, v[0], v[1]) with v a shape input: no values at build time, and zeros make
    Range's delta 0, so the builder cannot learn r's dtype; it says so."""
    v = helper.make_tensor_value_info("v", TensorProto.INT64, [2])
    nodes = [helper.make_node("Gather", ["v", "i0"], ["limit"], name="limit", axis=0),
             helper.make_node("Gather", ["v", "i1"], ["delta"], name="delta", axis=0),
             helper.make_node("Range", ["start", "limit", "delta"], ["r"], name="range")]
    inits = [numpy_helper.from_array(np.array(0, np.int64), "i0"),
             numpy_helper.from_array(np.array(1, np.int64), "i1"),
             numpy_helper.from_array(np.array(0, np.int64), "start")]
    graph = helper.make_graph(nodes, "g", [v], [helper.make_empty_tensor_value_info("r")],
                              initializer=inits)
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                             ir_version=8).SerializeToString()
    builder, network = parse(data)
    config = builder.create_builder_config()
    refused("DUCTILE_ERR_UNSUPPORTED",
            "output 'r' declares no dtype, and ductile infers it only at run time (its shape "
            "depends on the values of a shape input): declare its element type in the model",
            builder.build_engine, network, config)


def crc32c(data, crc=0):
    """CRC-32C (Castagnoli, reflected), as the engine header's checksum."""
    crc ^= 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def retype_outputs(engine_bytes, dtype):
    """The engine with every network-output tensor record's dtype set to `dtype` and the
    checksum resealed (docs: format/format.h, TENSORS is section 2)."""
    f = bytearray(engine_bytes)
    nsec, hs = struct.unpack_from("<I", f, 16)[0], struct.unpack_from("<I", f, 12)[0]
    off = next(struct.unpack_from("<Q", f, hs + 24 * i + 8)[0] for i in range(nsec)
               if struct.unpack_from("<I", f, hs + 24 * i)[0] == 2)
    for t in range(struct.unpack_from("<I", f, off)[0]):
        rec = off + 4 + 128 * t
        if struct.unpack_from("<I", f, rec + 12)[0] & 2:
            struct.pack_into("<i", f, rec + 4, dtype)
    struct.pack_into("<I", f, 32, crc32c(f[36:], crc32c(f[:32])))
    return bytes(f)


@pytest.mark.parametrize("claim, status, message", [
    (10, "DUCTILE_ERR_FORMAT",
     "node 'relu' (Relu, opset 17): output 'y' is declared float16 but the node computes float32"),
    (0, "DUCTILE_ERR_UNSUPPORTED",
     "run: tensor 'y' has dtype undefined, which numpy cannot hold (ml_dtypes provides bfloat16, "
     "float8, 4-bit and 2-bit types)"),
])
def test_engine_bytes_claiming_another_output_dtype_are_refused_at_run(claim, status, message):
    """Engine files are untrusted: one whose output record claims another dtype than its node
    computes is refused before a buffer sized by the claim is written."""
    engine = build(*parse(relu_model(TensorProto.FLOAT)))
    bad = ductile.Runtime().deserialize_cuda_engine(retype_outputs(engine.serialize(), claim))
    refused(status, message, bad.create_execution_context().run, {"x": X})


def test_eager_engine_bytes_claiming_another_output_dtype_are_refused_at_run():
    engine = build(*parse(nonzero_model(TensorProto.INT64)))
    bad = ductile.Runtime().deserialize_cuda_engine(retype_outputs(engine.serialize(), 1))
    refused("DUCTILE_ERR_FORMAT",
            "node 'transpose' (Transpose, opset 17): output 'y' is declared float32 but the node "
            "computes int64", bad.create_execution_context().run, {"x": X})


def test_eager_output_whose_dtype_no_build_time_run_reaches_names_the_node():
    """r = Range(0, 5, int(sum(x))): eager (Range reads computed values), and on zeros its
    delta is 0, so the build-time run fails before r; the message names Range."""
    nodes = [helper.make_node("ReduceSum", ["x"], ["sum"], name="sum", keepdims=0),
             helper.make_node("Cast", ["sum"], ["delta"], name="cast", to=TensorProto.INT64),
             helper.make_node("Range", ["start", "limit", "delta"], ["r"], name="range")]
    data = model(nodes, [helper.make_empty_tensor_value_info("r")],
                 initializers=[numpy_helper.from_array(np.array(0, np.int64), "start"),
                               numpy_helper.from_array(np.array(5, np.int64), "limit")])
    builder, network = parse(data)
    refused("DUCTILE_ERR_UNSUPPORTED",
            "output 'r' declares no dtype, and ductile infers it only at run time (it follows node "
            "'range' (Range), whose output shape depends on data): declare its element type in "
            "the model", build, builder, network)
