"""Arguments the C types cannot hold are refused by name, never wrapped (ctypes keeps the low
bits: a dim of 2**64 + 64 would become 64, profile 2**32 would become profile 0), and paths
that are not model or engine files say what they are, in Python and in the CLI."""
import os
import subprocess
from pathlib import Path

import pytest
from onnx import TensorProto as T
from onnx import helper as h

import ductile
import util

INT32 = "outside the range of int32 (-2147483648..2147483647)"
INT64 = "outside the range of int64 (-9223372036854775808..9223372036854775807)"
UINT64 = "outside the range of uint64 (0..18446744073709551615)"
BIN = Path(os.environ.get("DUCTILE_CLI", util.REPO / "build" / "ductile"))


def _model_bytes():
    graph = h.make_graph([h.make_node("Relu", ["x"], ["y"])], "g",
                         [h.make_tensor_value_info("x", T.FLOAT, ["n", 4])],
                         [h.make_tensor_value_info("y", T.FLOAT, ["n", 4])])
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 17)],
                        ir_version=8).SerializeToString()


@pytest.fixture(scope="module")
def built():
    builder = ductile.Builder()
    network = builder.parse_onnx_bytes(_model_bytes())
    profile = builder.create_optimization_profile()
    profile.set_shape("x", (1, 4), (2, 4), (8, 4))
    config = builder.create_builder_config()
    config.add_optimization_profile(profile)
    engine = builder.build_engine(network, config)
    return builder, network, engine


def refused(error, message, fn, *args):
    with pytest.raises(error) as info:
        fn(*args)
    assert str(info.value) == message
    return info.value


def test_dims_beyond_int64_are_refused_not_wrapped(built):
    builder, _, engine = built
    ctx = engine.create_execution_context()
    refused(ValueError, f"set_input_shape: dimension 0 of the shape of input 'x' is "
                        f"18446744073709551680, {INT64}",
            ctx.set_input_shape, "x", (2**64 + 64, 4))
    refused(ValueError, f"set_input_shape: dimension 1 of the shape of input 'x' is "
                        f"-9223372036854775809, {INT64}",
            ctx.set_input_shape, "x", (1, -2**63 - 1))
    refused(TypeError, "set_input_shape: dimension 0 of the shape of input 'x' must be an "
                       "integer, not float (2.5)",
            ctx.set_input_shape, "x", (2.5, 4))
    profile = builder.create_optimization_profile()
    refused(ValueError, f"set_shape: dimension 0 of the max shape of input 'x' is "
                        f"9223372036854775808, {INT64}",
            profile.set_shape, "x", (1, 4), (2, 4), (2**63, 4))
    # In range, the library judges the value: a dim outside the profile names the range.
    e = refused(ductile.Error, "input 'x' dimension 0 (n) is 64, outside the range 1..8 of "
                               "profile 0",
                ctx.set_input_shape, "x", (64, 4))
    assert e.status == "DUCTILE_ERR_SHAPE"


def test_indices_beyond_int32_are_refused_not_wrapped(built):
    _, network, engine = built
    ctx = engine.create_execution_context()
    refused(ValueError, f"set_optimization_profile: profile_index is 4294967296, {INT32}",
            ctx.set_optimization_profile, 2**32)
    e = refused(ductile.Error, "profile 1 does not exist: the engine has 1 profile (0..0)",
                ctx.set_optimization_profile, 1)
    assert e.status == "DUCTILE_ERR_INVALID_ARGUMENT"
    refused(ValueError, f"set_threads: threads is 4294967297, {INT32}", ctx.set_threads, 2**32 + 1)
    refused(ValueError, f"get_tensor_profile_shape: profile_index is 4294967296, {INT32}",
            engine.get_tensor_profile_shape, "x", 2**32)
    # Index 2**32 would have wrapped to 0 and answered for the first tensor or layer.
    refused(ValueError, f"get_tensor_name: index is 4294967296, {INT32}", engine.get_tensor_name, 2**32)
    refused(ValueError, f"Network.get_input: index is 4294967296, {INT32}", network.get_input, 2**32)
    refused(ValueError, f"Network.get_output: index is 4294967296, {INT32}", network.get_output, 2**32)
    refused(ValueError, f"Network.get_layer: index is 4294967296, {INT32}", network.get_layer, 2**32)
    layer = network.get_layer(0)
    refused(ValueError, f"Layer.get_input: index is 4294967296, {INT32}", layer.get_input, 2**32)
    refused(ValueError, f"Layer.get_output: index is -2147483649, {INT32}", layer.get_output, -2**31 - 1)
    assert network.get_input(0).name == "x"


def test_sizes_and_addresses_beyond_uint64_are_refused(built):
    builder, _, engine = built
    config = builder.create_builder_config()
    refused(ValueError, f"set_memory_pool_limit: size is -1, {UINT64}",
            config.set_memory_pool_limit, ductile.MemoryPoolType.WORKSPACE, -1)
    refused(ValueError, f"set_memory_pool_limit: size is 18446744073709551616, {UINT64}",
            config.set_memory_pool_limit, ductile.MemoryPoolType.WORKSPACE, 2**64)
    ctx = engine.create_execution_context()
    refused(ValueError, f"set_tensor_address: the address for 'x' is 18446744073709551621, {UINT64}",
            ctx.set_tensor_address, "x", 2**64 + 5)
    refused(ValueError, f"set_tensor_address: the address for 'x' is -1, {UINT64}",
            ctx.set_tensor_address, "x", -1)


def test_names_with_nul_are_refused_not_cut_short(built):
    _, _, engine = built
    ctx = engine.create_execution_context()
    refused(ValueError, "'x\\x00junk' contains a NUL character, which no ductile name or path "
                        "may hold",
            ctx.set_input_shape, "x\0junk", (2, 4))


def test_paths_that_are_not_files_say_what_they_are(built, tmp_path):
    _, _, engine = built
    e = refused(ductile.Error, f"'{tmp_path}' is a directory, not a regular file",
                ductile.load_engine, tmp_path)
    assert e.status == "DUCTILE_ERR_IO"
    empty = tmp_path / "empty.engine"
    empty.write_bytes(b"")
    e = refused(ductile.Error, f"'{empty}' is empty (0 bytes), not an engine file",
                ductile.load_engine, empty)
    assert e.status == "DUCTILE_ERR_FORMAT"
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    refused(ductile.Error, f"'{fifo}' is a FIFO, not a regular file", ductile.load_engine, fifo)
    refused(ductile.Error, f"'{fifo}' is a FIFO, not a regular file",
            ductile.Builder().parse_onnx, fifo)
    e = refused(ductile.Error, f"'{tmp_path}' is a directory, not a regular file",
                ductile.Builder().parse_onnx, tmp_path)
    assert e.status == "DUCTILE_ERR_IO"
    refused(ductile.Error, f"'{tmp_path}' is a directory, not a regular file", engine.save, tmp_path)
    refused(ductile.Error, f"cannot create '{tmp_path}/sub/m.engine': No such file or directory",
            engine.save, tmp_path / "sub" / "m.engine")


@pytest.mark.parametrize("flag,what", [("--loadEngine", "an engine file"),
                                       ("--onnx", "an ONNX model")])
def test_cli_names_a_directory_given_as_model_or_engine(tmp_path, flag, what):
    if not BIN.exists():
        pytest.skip(f"{BIN} is not built (run make)")
    r = subprocess.run([str(BIN), f"{flag}={tmp_path}"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 1
    assert r.stderr == f"error: DUCTILE_ERR_IO: '{tmp_path}' is a directory, not a regular file\n"


def test_cli_names_an_empty_engine_file_and_a_fifo_input(tmp_path):
    if not BIN.exists():
        pytest.skip(f"{BIN} is not built (run make)")
    empty = tmp_path / "empty.engine"
    empty.write_bytes(b"")
    r = subprocess.run([str(BIN), f"--loadEngine={empty}"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 1
    assert r.stderr == f"error: DUCTILE_ERR_FORMAT: '{empty}' is empty (0 bytes), not an engine file\n"
    model = tmp_path / "relu.onnx"
    model.write_bytes(_model_bytes())
    fifo = tmp_path / "x.fifo"
    os.mkfifo(fifo)
    r = subprocess.run([str(BIN), f"--onnx={model}", "--shapes=x:2x4", f"--loadInputs=x:{fifo}",
                        "--iterations=1", "--warmUp=0", "--duration=0"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert r.stderr == f"error: --loadInputs: '{fifo}' for input 'x' is not a regular file\n"
