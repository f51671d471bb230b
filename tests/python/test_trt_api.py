"""TensorRT's Python API: scripts written for TensorRT (tests/python/trt_scripts/, TensorRT 10's
tensor API and TensorRT 8's binding API) run with only `import tensorrt as trt` changed to
`import ductile as trt`, and compute what onnxruntime computes; the binding semantics of
several profiles; unsupported calls named in their error."""
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from onnx import TensorProto, helper

import ductile as trt
import util

SCRIPTS = pathlib.Path(__file__).resolve().parent / "trt_scripts"
SHAPES = [(1, 3, 777, 555), (1, 3, 512, 1600)]


def ported(script, tmp_path):
    """The script with its one TensorRT import replaced, and nothing else."""
    text = (SCRIPTS / script).read_text()
    lines = text.splitlines(keepends=True)
    imports = [i for i, line in enumerate(lines) if "tensorrt" in line and "import" in line]
    assert [lines[i] for i in imports] == ["import tensorrt as trt\n"]
    lines[imports[0]] = "import ductile as trt\n"
    path = tmp_path / script
    path.write_text("".join(lines))
    return path


@pytest.mark.parametrize("script", ["segment_trt10.py", "segment_trt8.py"])
def test_tensorrt_segmentation_script_runs_with_only_the_import_changed(script, tmp_path):
    model = util.model_path("seg_lraspp.onnx")
    rng = np.random.default_rng(0)
    inputs = []
    for i, shape in enumerate(SHAPES):
        inputs.append(rng.standard_normal(shape, dtype=np.float32))
        np.save(tmp_path / f"in_{i}.npy", inputs[-1])
    env = dict(os.environ, PYTHONPATH=str(util.REPO / "python"))
    r = subprocess.run([sys.executable, str(ported(script, tmp_path)), str(model), str(tmp_path),
                        *(str(tmp_path / f"in_{i}.npy") for i in range(len(SHAPES)))],
                       capture_output=True, text=True, env=env, timeout=900, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stderr == ""
    if script == "segment_trt10.py":
        assert r.stdout.splitlines() == [
            "input input_1 (1, 3, -1, -1) float32",
            "output Sigmoid_0_output (1, 1, -1, -1)",
            "profile ((1, 3, 512, 512), (1, 3, 1024, 1024), (1, 3, 1600, 1600))"]
    else:
        assert r.stdout.splitlines() == [
            "bindings [(0, 'input_1', (1, 3, -1, -1)), (1, 'Sigmoid_0_output', (1, 1, -1, -1))]",
            "profile [(1, 3, 512, 512), (1, 3, 1024, 1024), (1, 3, 1600, 1600)]"]
    session = util.ort_session(model)
    for i, x in enumerate(inputs):
        want = util.sigmoid(session.run(None, {"input_1": x})[0])
        util.assert_close(np.load(tmp_path / f"out_{i}.npy"), want, what=f"shape {x.shape}")


# ---- Semantics on a tiny model with two profiles ---------------------------------------------

@pytest.fixture(scope="module")
def two_profiles():
    """y = x + 1, x [n, 4]; profile 0: n in 1..4, profile 1: n in 5..8."""
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "one"], ["y"])], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4])],
        [helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    logger = trt.Logger(trt.Logger.ERROR)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH))
    parser = trt.OnnxParser(network, logger)
    assert parser.parse(model.SerializeToString())
    config = builder.create_builder_config()
    for lo, hi in ((1, 4), (5, 8)):
        profile = builder.create_optimization_profile()
        profile.set_shape("x", (lo, 4), (hi, 4), (hi, 4))
        config.add_optimization_profile(profile)
    return trt.Runtime(logger).deserialize_cuda_engine(builder.build_serialized_network(network,
                                                                                       config))


def test_bindings_are_per_profile_as_in_tensorrt_8(two_profiles):
    engine = two_profiles
    assert engine.num_bindings == len(engine) == 4
    assert list(engine) == ["x", "y", "x [profile 1]", "y [profile 1]"]
    assert [engine.get_binding_index(n) for n in list(engine) + ["z", "x [profile 2]"]] == \
        [0, 1, 2, 3, -1, -1]
    assert (engine["y [profile 1]"], engine[2]) == (3, "x [profile 1]")
    assert [engine.binding_is_input(i) for i in range(4)] == [True, False, True, False]
    assert engine.get_binding_shape(3) == engine.get_tensor_shape("y") == (-1, 4)
    assert engine.get_binding_dtype("y") == trt.float32
    assert engine.get_profile_shape(1, "x [profile 1]") == [(5, 4), (8, 4), (8, 4)]
    with pytest.raises(IndexError) as e:
        engine.get_binding_name(4)
    assert str(e.value) == ("get_binding_name: binding index 4 out of range (the engine has 4 "
                            "bindings: 2 I/O tensors x 2 profiles)")


def test_execute_v2_uses_the_active_profiles_bindings(two_profiles):
    engine = two_profiles
    context = engine.create_execution_context()
    assert context.active_optimization_profile == 0
    assert not context.all_binding_shapes_specified
    assert context.infer_shapes() == ["x"]
    assert context.get_binding_shape(1) == (-1, 4)  # unknown yet: the declared shape
    with pytest.raises(trt.Error) as e:
        context.set_binding_shape(2, (6, 4))
    assert str(e.value) == ("set_binding_shape: binding 2 belongs to profile 1, but the active "
                            "profile is 0 (bindings 0..1)")
    context.active_optimization_profile = 1
    assert context.active_optimization_profile == 1
    assert context.set_binding_shape(2, (6, 4))
    assert context.all_binding_shapes_specified and context.infer_shapes() == []
    assert context.get_binding_shape(3) == (6, 4)
    x = np.arange(24, dtype=np.float32).reshape(6, 4)
    y = np.empty((6, 4), np.float32)
    assert context.execute_v2([0, 0, x.ctypes.data, y.ctypes.data])
    np.testing.assert_array_equal(y, x + 1)
    with pytest.raises(trt.Error) as e:
        context.execute_async_v2([x.ctypes.data, y.ctypes.data], 0)
    assert str(e.value) == ("execute_v2: 2 bindings given; the active profile 1 uses bindings "
                            "2..3")


def test_engine_tensor_shape_of_an_unknown_name_is_refused(two_profiles):
    with pytest.raises(trt.Error) as e:
        two_profiles.get_tensor_shape("nope")
    assert (str(e.value), e.value.status) == ("'nope' is not an I/O tensor of the engine",
                                              "DUCTILE_ERR_INVALID_ARGUMENT")


def test_tensor_location_is_host_on_the_cpu_and_unknown_names_are_refused(two_profiles):
    assert [two_profiles.get_tensor_location(n) for n in ("x", "y")] == [trt.TensorLocation.HOST] * 2
    with pytest.raises(trt.Error) as e:
        two_profiles.get_tensor_location("nope")
    assert str(e.value) == "'nope' is not an I/O tensor of the engine"


def test_config_reads_back_what_was_set():
    config = trt.Builder(trt.Logger()).create_builder_config()
    config.max_workspace_size = 1 << 20
    assert config.get_memory_pool_limit(trt.MemoryPoolType.WORKSPACE) == 1 << 20
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 3 << 20)
    assert config.max_workspace_size == 3 << 20
    assert not config.get_flag(trt.BuilderFlag.FP16)
    config.set_flag(trt.BuilderFlag.FP16)
    assert config.get_flag(trt.BuilderFlag.FP16)
    config.clear_flag(trt.BuilderFlag.FP16)
    assert not config.get_flag(trt.BuilderFlag.FP16)


def test_module_helpers():
    assert trt.volume((2, 3, 4)) == 24 and trt.volume(()) == 1
    assert trt.nptype(trt.float32) is np.float32 and trt.nptype(trt.int64) is np.int64
    assert trt.DataType.HALF == np.float16
    assert trt.Logger.Severity.WARNING == trt.Logger.WARNING == 2
    assert trt.init_libnvinfer_plugins(trt.Logger(), "")
    with pytest.raises(AttributeError) as e:
        trt.__wrapped__
    assert str(e.value) == "module 'ductile' has no attribute '__wrapped__'"


def test_unsupported_tensorrt_calls_name_the_call():
    logger = trt.Logger()
    builder = trt.Builder(logger)
    config = builder.create_builder_config()
    cases = [
        (lambda: trt.IInt8EntropyCalibrator2,
         "module 'ductile' has no attribute 'IInt8EntropyCalibrator2': ductile does not support "
         "TensorRT's trt.IInt8EntropyCalibrator2"),
        (lambda: config.set_tactic_sources(0),
         "ductile does not support TensorRT's IBuilderConfig.set_tactic_sources"),
        (lambda: setattr(config, "int8_calibrator", None),
         "ductile does not support TensorRT's IBuilderConfig.int8_calibrator"),
        (lambda: builder.build_cuda_graph,
         "ductile does not support TensorRT's Builder.build_cuda_graph"),
        (lambda: builder.create_network(0).add_plugin_v2([], None),
         "ductile does not support TensorRT's INetworkDefinition.add_plugin_v2"),
        (lambda: trt.Runtime(logger).deserialize_cuda_engine_v2,
         "ductile does not support TensorRT's Runtime.deserialize_cuda_engine_v2"),
    ]
    for call, message in cases:
        with pytest.raises(AttributeError) as e:
            call()
        assert str(e.value) == message


def test_tensorrt_code_with_device_pointers_runs_on_the_gpu(tmp_path):
    """TensorRT 10 code as its samples write it for the GPU: torch CUDA tensors bound by
    data_ptr(), execute_async_v3 on torch's stream, then a stream sync; only the import is
    ductile's. Compared with onnxruntime."""
    import ductile as trt
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device found (torch)")
    from ductile.builder import cuda_available
    if not cuda_available():
        pytest.skip("no CUDA device found (this build of ductile has no CUDA backend or no GPU)")
    path = util.model_path("superres.onnx")
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH))
    parser = trt.OnnxParser(network, logger)
    assert parser.parse_from_file(str(path))
    config = builder.create_builder_config()
    assert config.device == "cuda"
    profile = builder.create_optimization_profile()
    profile.set_shape("input", (1, 1, 64, 64), (1, 1, 224, 224), (2, 1, 300, 300))
    config.add_optimization_profile(profile)
    engine = trt.Runtime(logger).deserialize_cuda_engine(builder.build_serialized_network(network, config))
    context = engine.create_execution_context()
    x = np.random.default_rng(3).standard_normal((2, 1, 123, 77)).astype(np.float32)
    context.set_input_shape("input", x.shape)
    out_shape = tuple(context.get_tensor_shape("output"))
    x_dev = torch.from_numpy(x).cuda()
    y_dev = torch.empty(out_shape, dtype=torch.float32, device="cuda")
    context.set_tensor_address("input", x_dev.data_ptr())
    context.set_tensor_address("output", y_dev.data_ptr())
    stream = torch.cuda.Stream()
    context.execute_async_v3(stream.cuda_stream)
    stream.synchronize()
    got = y_dev.cpu().numpy()
    import onnxruntime as ort
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    assert got.shape == want.shape
    assert np.linalg.norm(got - want) <= 1e-4 * np.linalg.norm(want)


def test_profiler_reports_each_executed_layer_as_tensorrt_and_with_details(two_profiles):
    """context.profiler takes a trt.IProfiler (report_layer_time(name, ms)) or a callable
    that gets ductile's LayerTiming; None turns it off."""
    context = two_profiles.create_execution_context()

    class Times(trt.IProfiler):
        def __init__(self):
            trt.IProfiler.__init__(self)
            self.times = []

        def report_layer_time(self, layer_name, ms):
            self.times.append((layer_name, ms))

    times = Times()
    context.profiler = times
    assert context.profiler is times
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    np.testing.assert_array_equal(context.run({"x": x})["y"], x + 1)
    # The unnamed node gets the importer's name: op type and index.
    assert [name for name, _ in times.times] == ["Add_0"] and times.times[0][1] >= 0

    details = []
    context.profiler = details.append
    context.run({"x": x})
    assert len(details) == 1
    t = details[0]
    assert (t.layer, t.op_type, t.tactic, t.flops, t.index) == ("Add_0", "Add", "cpu.Add", 0.0, 0)
    assert t.ms >= 0

    context.profiler = None
    context.run({"x": x})
    assert len(details) == 1 and len(times.times) == 1
    with pytest.raises(TypeError) as e:
        context.profiler = 3
    assert str(e.value) == ("profiler: expected an object with report_layer_time(layer_name, ms) "
                            "or a callable, not int")
