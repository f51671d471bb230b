"""Shape inputs (TensorRT's shape tensors: an int input whose values decide shapes) are read
only after the caller wrote them: through the CLI's --loadInputs, and through the context's own
buffer in the Python API. Results are compared with onnxruntime on the same inputs."""
import ctypes
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper as h

import ductile
import util

BIN = Path(os.environ.get("DUCTILE_CLI", util.REPO / "build" / "ductile"))
RUN_ONCE = ["--iterations=1", "--warmUp=0", "--duration=0"]


def _model():
    """y = Relu(Reshape(x, shape)) * 2: the shape input decides y's shape at run time."""
    two = h.make_tensor("two", T.FLOAT, [], [2.0])
    graph = h.make_graph([h.make_node("Reshape", ["x", "shape"], ["r"]),
                          h.make_node("Relu", ["r"], ["a"]),
                          h.make_node("Mul", ["a", "two"], ["y"])], "g",
                         [h.make_tensor_value_info("x", T.FLOAT, ["n"]),
                          h.make_tensor_value_info("shape", T.INT64, [3])],
                         [h.make_tensor_value_info("y", T.FLOAT, None)], [two])
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 17)], ir_version=8)


@pytest.mark.parametrize("values", [(2, 3, 4), (-1, 6, 2), (0, 1, -1)],
                         ids=["2x3x4", "minus1", "zero-copies"])
def test_cli_runs_reshape_with_shape_input_from_load_inputs(tmp_path, values):
    if not BIN.exists():
        pytest.skip(f"{BIN} is not built (run make)")
    model = tmp_path / "reshape.onnx"
    model.write_bytes(_model().SerializeToString())
    rng = np.random.default_rng(7)
    x = rng.standard_normal(24).astype(np.float32)
    shape = np.array(values, np.int64)
    x.tofile(tmp_path / "x.bin")
    shape.tofile(tmp_path / "shape.bin")
    out = tmp_path / "out.json"
    r = subprocess.run([str(BIN), f"--onnx={model}", "--shapes=x:24,shape:3",
                        f"--loadInputs=x:{tmp_path / 'x.bin'},shape:{tmp_path / 'shape.bin'}",
                        f"--exportOutput={out}", *RUN_ONCE],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    expected = util.ort_session(_model().SerializeToString()).run(None, {"x": x, "shape": shape})[0]
    assert f"  y: {'x'.join(map(str, expected.shape))}\n" in r.stdout
    [item] = json.loads(out.read_text())
    assert item["dimensions"] == "x".join(map(str, expected.shape))
    got = np.asarray(item["values"], np.float32).reshape(expected.shape)
    util.assert_close(got, expected, rtol=util.OP_RTOL)


def _context():
    builder = ductile.Builder()
    network = builder.parse_onnx_bytes(_model().SerializeToString())
    profile = builder.create_optimization_profile()
    profile.set_shape("x", (1,), (24,), (48,))
    profile.set_shape("shape", (3,), (3,), (3,))
    config = builder.create_builder_config()
    config.add_optimization_profile(profile)
    return builder.build_engine(network, config).create_execution_context()


def test_context_buffer_of_shape_input_is_read_after_it_is_written():
    ctx = _context()
    ctx.set_input_shape("x", (24,))
    ctx.set_input_shape("shape", (3,))
    with pytest.raises(ductile.Error) as info:
        ctx.get_tensor_shape("y")
    assert info.value.status == "DUCTILE_ERR_STATE"
    assert str(info.value) == ("the values of shape input 'shape' decide shapes but were not given: "
                               "bind them with set_tensor_address, or write them into the buffer "
                               "get_tensor_address returns, first")
    # Asking for the buffers runs no shape pass: the values are not there yet.
    shape_buf = (ctypes.c_int64 * 3).from_address(ctx.get_tensor_address("shape"))
    x_buf = (ctypes.c_float * 24).from_address(ctx.get_tensor_address("x"))
    assert list(shape_buf) == [0, 0, 0]
    x = np.linspace(-1, 1, 24, dtype=np.float32)
    ctypes.memmove(x_buf, x.ctypes.data, x.nbytes)
    for values in ((4, 3, 2), (2, -1, 3)):
        shape_buf[:] = values
        expected = util.ort_session(_model().SerializeToString()).run(
            None, {"x": x, "shape": np.array(values, np.int64)})[0]
        assert ctx.get_tensor_shape("y") == expected.shape
        ctx.execute()
        y = np.ctypeslib.as_array((ctypes.c_float * 24).from_address(ctx.get_tensor_address("y")))
        util.assert_close(y.reshape(expected.shape), expected, rtol=util.OP_RTOL)
