"""Every failure a user can provoke raises ductile.Error with the status and the library's
exact message: the message must name what is at fault, so it is pinned verbatim."""
import re
import struct

import numpy as np
import onnxruntime
import pytest
from onnx import TensorProto, helper

import ductile
from util import MODELS, model_path

SUPERRES = MODELS["superres"]

# The parser names the file by its base name, so the message does not depend on tmp_path.
TRUNCATED_MODEL = ("half.onnx: truncated at byte offset 23: field 'graph' (ModelProto field 7) "
                   "needs 239853 bytes, 119917 remain")


def raises(status, message, fn, *args):
    with pytest.raises(ductile.Error) as info:
        fn(*args)
    assert info.value.status == status
    if isinstance(message, re.Pattern):
        assert message.fullmatch(str(info.value)), str(info.value)
    else:
        assert str(info.value) == message
    return info.value


@pytest.fixture(scope="module")
def superres_engine():
    builder = ductile.Builder()
    network = builder.parse_onnx(model_path(SUPERRES.filename))
    profile = builder.create_optimization_profile()
    profile.set_shape("input", *SUPERRES.profile["input"])
    config = builder.create_builder_config()
    config.add_optimization_profile(profile)
    return builder.build_engine(network, config)


@pytest.fixture
def context(superres_engine):
    return superres_engine.create_execution_context()


@pytest.fixture(scope="module")
def engine_bytes(superres_engine):
    return superres_engine.serialize()


def test_shape_outside_profile_names_input_dim_and_range(context):
    raises("DUCTILE_ERR_SHAPE",
           "input 'input' dimension 2 (height) is 32, outside the range 64..512 of profile 0",
           context.set_input_shape, "input", (1, 1, 32, 64))


def test_shape_of_wrong_rank_names_input_and_rank(context):
    raises("DUCTILE_ERR_SHAPE",
           "input 'input' has rank 4 but the shape given has 3 dimensions",
           context.set_input_shape, "input", (1, 64, 64))


def test_unknown_input_name_is_named(context):
    raises("DUCTILE_ERR_INVALID_ARGUMENT",
           "'image' is not an input of the engine (inputs: 'input')",
           context.set_input_shape, "image", (1, 1, 64, 64))


def test_run_with_unknown_input_reports_the_library_message(context):
    x = np.zeros((1, 1, 64, 64), np.float32)
    raises("DUCTILE_ERR_INVALID_ARGUMENT",
           "'image' is not an input of the engine (inputs: 'input')",
           context.run, {"input": x, "image": x})


def test_run_with_out_of_profile_array_reports_the_library_message(context):
    raises("DUCTILE_ERR_SHAPE",
           "input 'input' dimension 0 (batch) is 5, outside the range 1..4 of profile 0",
           context.run, {"input": np.zeros((5, 1, 64, 64), np.float32)})


def test_output_shape_before_input_shapes_is_a_state_error(context):
    raises("DUCTILE_ERR_STATE",
           "the shape of input 'input' is not set (call set_input_shape for every dynamic "
           "input)",
           context.get_tensor_shape, "output")


def test_profile_index_out_of_range(context):
    raises("DUCTILE_ERR_INVALID_ARGUMENT",
           "profile 1 does not exist: the engine has 1 profile (0..0)",
           context.set_optimization_profile, 1)


def test_profile_with_min_above_opt_names_input_and_dim():
    profile = ductile.Builder().create_optimization_profile()
    raises("DUCTILE_ERR_PROFILE",
           "input 'input' dimension 2: min 256, opt 128, max 512; expected min <= opt <= max",
           profile.set_shape, "input", (1, 1, 256, 256), (1, 1, 128, 128), (1, 1, 512, 512))


def test_shared_symbol_with_different_ranges_is_refused_at_build():
    builder = ductile.Builder()
    network = builder.parse_onnx(model_path("bert_small.onnx"))
    profile = builder.create_optimization_profile()
    profile.set_shape("input_ids", (1, 1), (4, 128), (8, 512))
    profile.set_shape("attention_mask", (1, 1), (4, 128), (8, 256))
    config = builder.create_builder_config()
    config.add_optimization_profile(profile)
    raises("DUCTILE_ERR_PROFILE",
           "profile 0: inputs 'input_ids' and 'attention_mask' share the dimension 'seq' "
           "(dimension 1 of 'input_ids', dimension 1 of 'attention_mask') but their ranges "
           "differ: min 1, opt 128, max 512 vs min 1, opt 128, max 256",
           builder.build_engine, network, config)


def test_hardcoded_reshape_contradicting_profile_names_node_constant_and_range():
    builder = ductile.Builder()
    network = builder.parse_onnx(model_path("superres_op10_static.onnx"))
    # The file fixes 224 (test_fixed_dims.py); overridden, the sizes that do not divide fail.
    network.get_input(0).shape = (1, 1, -1, -1)
    profile = builder.create_optimization_profile()
    profile.set_shape("input", (1, 1, 64, 64), (1, 1, 224, 224), (1, 1, 512, 512))
    config = builder.create_builder_config()
    config.add_optimization_profile(profile)
    raises("DUCTILE_ERR_PROFILE",
           "profile 0: input 'input' dimension 2 (input_dim2) ranges over 64..512 but the model "
           "fails at 64: "
           "node '/ps/Reshape' (Reshape, opset 10): cannot reshape '/c4/Conv_output_0' of shape "
           "[1,9,64,224] (129024 elements) to '/ps/Constant_output_0' = [-1,1,3,3,224,224]: "
           "the known dims give 451584 elements, which does not divide 129024",
           builder.build_engine, network, config)


def unknown_op_model():
    """ductile runs every op of ONNX's node tests (ImageDecoder was the last), so an op type no
    one defines stands for one it lacks."""
    x = helper.make_tensor_value_info("x", TensorProto.UINT8, ["n"])
    y = helper.make_tensor_value_info("y", TensorProto.UINT8, None)
    graph = helper.make_graph([helper.make_node("Frobnicate", ["x"], ["y"], name="f0")], "f", [x], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])


def test_unsupported_op_names_node_op_and_opset():
    raises("DUCTILE_ERR_UNSUPPORTED",
           "node 'f0' (Frobnicate, opset 20): op type 'Frobnicate' is not supported by ductile",
           ductile.Builder().parse_onnx_bytes, unknown_op_model().SerializeToString())


def test_truncated_model_file_is_a_parse_error(tmp_path):
    data = model_path(SUPERRES.filename).read_bytes()
    path = tmp_path / "half.onnx"
    path.write_bytes(data[: len(data) // 2])
    raises("DUCTILE_ERR_PARSE",
           TRUNCATED_MODEL,
           ductile.Builder().parse_onnx, path)


def test_parser_records_the_error_instead_of_raising(tmp_path):
    data = model_path(SUPERRES.filename).read_bytes()
    path = tmp_path / "half.onnx"
    path.write_bytes(data[: len(data) // 2])
    builder = ductile.Builder()
    parser = ductile.OnnxParser(builder.create_network())
    assert not parser.parse_from_file(str(path))
    assert parser.num_errors == 1
    assert parser.get_error(0).code() == "DUCTILE_ERR_PARSE"
    assert parser.get_error(0).desc() == TRUNCATED_MODEL


def test_missing_model_file_is_an_io_error(tmp_path):
    raises("DUCTILE_ERR_IO",
           f"cannot open '{tmp_path / 'absent.onnx'}': No such file or directory",
           ductile.Builder().parse_onnx, tmp_path / "absent.onnx")


def test_corrupted_engine_file_is_refused(engine_bytes, tmp_path):
    data = bytearray(engine_bytes)
    data[len(data) // 2] ^= 0xFF
    path = tmp_path / "corrupt.engine"
    path.write_bytes(bytes(data))
    raises("DUCTILE_ERR_FORMAT",
           # The checksums change with every engine; the rest of the message is pinned.
           re.compile(re.escape(f"{path}: engine checksum mismatch: stored ") + "0x[0-9a-f]{8}"
                      + re.escape(", computed ") + "0x[0-9a-f]{8}"
                      + re.escape(" (the file is corrupted)")),
           ductile.load_engine, path)


def test_engine_of_another_format_version_is_refused(engine_bytes, tmp_path):
    data = bytearray(engine_bytes)
    (version,) = struct.unpack_from("<I", data, 8)
    struct.pack_into("<I", data, 8, version + 1)
    path = tmp_path / "future.engine"
    path.write_bytes(bytes(data))
    raises("DUCTILE_ERR_FORMAT",
           f"{path}: engine format version 3 is not supported (this build reads version 2)",
           ductile.load_engine, path)


def test_truncated_engine_bytes_are_refused(engine_bytes):
    raises("DUCTILE_ERR_FORMAT",
           f"truncated engine: the header says {len(engine_bytes)} bytes, got "
           f"{len(engine_bytes) // 3}",
           ductile.Runtime().deserialize_cuda_engine, engine_bytes[: len(engine_bytes) // 3])


def test_unmarking_a_tensor_that_is_not_an_output_is_refused():
    network = ductile.Builder().parse_onnx(model_path(SUPERRES.filename))
    raises("DUCTILE_ERR_INVALID_ARGUMENT",
           "unmark_output: tensor 'input' is not a network output",
           network.unmark_output, network.get_input(0))


def test_dynamic_input_without_profile_is_refused_at_build():
    builder = ductile.Builder()
    network = builder.parse_onnx(model_path(SUPERRES.filename))
    raises("DUCTILE_ERR_PROFILE",
           "input 'input' has dynamic dimensions ([batch,1,height,width]): add an optimization "
           "profile that covers it",
           builder.build_engine, network, builder.create_builder_config())


def test_run_without_an_input_array_names_the_missing_input(context):
    # Checked by the binding: the context would otherwise run on the shape and buffer of the
    # previous call.
    raises("DUCTILE_ERR_INVALID_ARGUMENT",
           "run: no array given for input 'input' (inputs: input)",
           context.run, {})


def clip6_model(dtype):
    x = helper.make_tensor_value_info("x", dtype, ["n", 3])
    y = helper.make_tensor_value_info("y", dtype, ["n", 3])
    node = helper.make_node("Clip", ["x"], ["y"], name="clip0", min=-1.0, max=1.0)
    graph = helper.make_graph([node], "clip", [x], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 6)], ir_version=8)


def build_n_by_3(model):
    builder = ductile.Builder()
    network = builder.parse_onnx_bytes(model.SerializeToString())
    profile = builder.create_optimization_profile()
    profile.set_shape("x", (1, 3), (2, 3), (4, 3))
    config = builder.create_builder_config()
    config.add_optimization_profile(profile)
    return builder.build_engine(network, config)


def test_kernel_refusal_known_from_the_layer_fails_the_build_naming_the_node():
    # Kernels are compiled when the engine is loaded, and the build loads its engine: what a
    # kernel refuses from the layer alone (here Clip-6's float32-only bounds) fails the build,
    # not the first run.
    raises("DUCTILE_ERR_UNSUPPORTED",
           "node 'clip0' (Clip, opset 6): Clip before opset 11 supports float32 here, not float64",
           build_n_by_3, clip6_model(TensorProto.DOUBLE))
    model = clip6_model(TensorProto.FLOAT)
    x = np.array([[-3, 0.5, 2], [7, -0.25, -1]], dtype=np.float32)
    got = build_n_by_3(model).create_execution_context().run({"x": x})["y"]
    want = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert np.array_equal(got, want)
