"""Every failure a user can provoke raises ductile.Error with the status and the library's
exact message: the message must name what is at fault, so it is pinned verbatim."""
import struct

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import ductile
from util import MODELS, model_path

SUPERRES = MODELS["superres"]


def raises(status, message, fn, *args):
    with pytest.raises(ductile.Error) as info:
        fn(*args)
    assert info.value.status == status
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
           "MSG_OUT_OF_PROFILE",
           context.set_input_shape, "input", (1, 1, 32, 64))


def test_shape_of_wrong_rank_names_input_and_rank(context):
    raises("DUCTILE_ERR_SHAPE",
           "MSG_WRONG_RANK",
           context.set_input_shape, "input", (1, 64, 64))


def test_unknown_input_name_is_named(context):
    raises("DUCTILE_ERR_INVALID_ARGUMENT",
           "MSG_UNKNOWN_INPUT",
           context.set_input_shape, "image", (1, 1, 64, 64))


def test_run_with_unknown_input_reports_the_library_message(context):
    x = np.zeros((1, 1, 64, 64), np.float32)
    raises("DUCTILE_ERR_INVALID_ARGUMENT",
           "MSG_UNKNOWN_INPUT",
           context.run, {"input": x, "image": x})


def test_run_with_out_of_profile_array_reports_the_library_message(context):
    raises("DUCTILE_ERR_SHAPE",
           "MSG_OUT_OF_PROFILE_RUN",
           context.run, {"input": np.zeros((5, 1, 64, 64), np.float32)})


def test_output_shape_before_input_shapes_is_a_state_error(context):
    raises("DUCTILE_ERR_STATE",
           "MSG_OUTPUT_SHAPE_EARLY",
           context.get_tensor_shape, "output")


def test_profile_index_out_of_range(context):
    raises("DUCTILE_ERR_INVALID_ARGUMENT",
           "MSG_PROFILE_INDEX",
           context.set_optimization_profile, 1)


def test_profile_with_min_above_opt_names_input_and_dim():
    profile = ductile.Builder().create_optimization_profile()
    raises("DUCTILE_ERR_PROFILE",
           "MSG_MIN_ABOVE_OPT",
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
           "MSG_SHARED_SYMBOL",
           builder.build_engine, network, config)


def test_hardcoded_reshape_contradicting_profile_names_node_constant_and_range():
    builder = ductile.Builder()
    network = builder.parse_onnx(model_path("superres_op10_static.onnx"))
    profile = builder.create_optimization_profile()
    profile.set_shape("input", (1, 1, 64, 64), (1, 1, 224, 224), (1, 1, 512, 512))
    config = builder.create_builder_config()
    config.add_optimization_profile(profile)
    raises("DUCTILE_ERR_PROFILE",
           "MSG_STATIC_RESHAPE",
           builder.build_engine, network, config)


def det_model():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n"])
    graph = helper.make_graph([helper.make_node("Det", ["x"], ["y"], name="det0")], "det", [x], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_unsupported_op_names_node_op_and_opset():
    raises("DUCTILE_ERR_UNSUPPORTED",
           "MSG_UNSUPPORTED_OP",
           ductile.Builder().parse_onnx_bytes, det_model().SerializeToString())


def test_truncated_model_file_is_a_parse_error(tmp_path):
    data = model_path(SUPERRES.filename).read_bytes()
    path = tmp_path / "half.onnx"
    path.write_bytes(data[: len(data) // 2])
    raises("DUCTILE_ERR_PARSE",
           "MSG_TRUNCATED_MODEL",
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
    assert parser.get_error(0).desc() == "MSG_TRUNCATED_MODEL"


def test_missing_model_file_is_an_io_error(tmp_path):
    raises("DUCTILE_ERR_IO",
           "MSG_MISSING_FILE",
           ductile.Builder().parse_onnx, tmp_path / "absent.onnx")


def test_corrupted_engine_file_is_refused(engine_bytes, tmp_path):
    data = bytearray(engine_bytes)
    data[len(data) // 2] ^= 0xFF
    path = tmp_path / "corrupt.engine"
    path.write_bytes(bytes(data))
    raises("DUCTILE_ERR_FORMAT",
           "MSG_CORRUPT_ENGINE",
           ductile.load_engine, path)


def test_engine_of_another_format_version_is_refused(engine_bytes, tmp_path):
    data = bytearray(engine_bytes)
    (version,) = struct.unpack_from("<I", data, 8)
    struct.pack_into("<I", data, 8, version + 1)
    path = tmp_path / "future.engine"
    path.write_bytes(bytes(data))
    raises("DUCTILE_ERR_FORMAT",
           "MSG_ENGINE_VERSION",
           ductile.load_engine, path)


def test_truncated_engine_bytes_are_refused(engine_bytes):
    raises("DUCTILE_ERR_FORMAT",
           "MSG_TRUNCATED_ENGINE",
           ductile.Runtime().deserialize_cuda_engine, engine_bytes[: len(engine_bytes) // 3])


def test_unmarking_a_tensor_that_is_not_an_output_is_refused():
    network = ductile.Builder().parse_onnx(model_path(SUPERRES.filename))
    raises("DUCTILE_ERR_INVALID_ARGUMENT",
           "MSG_UNMARK_NON_OUTPUT",
           network.unmark_output, network.get_input(0))


def test_dynamic_input_without_profile_is_refused_at_build():
    builder = ductile.Builder()
    network = builder.parse_onnx(model_path(SUPERRES.filename))
    raises("DUCTILE_ERR_PROFILE",
           "MSG_NO_PROFILE",
           builder.build_engine, network, builder.create_builder_config())
