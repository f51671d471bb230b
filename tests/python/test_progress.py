"""Build progress: ductile_config_set_progress is called once per layer examined while tactics are
timed, per profile; the CLI shows it on a terminal and says nothing on stderr otherwise."""
import ctypes
import os
import pty
import subprocess

import numpy as np
import onnx
from onnx import TensorProto, helper

import ductile
from ductile._lib import lib
from util import BUILD

PROGRESS_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int32, ctypes.c_int32,
                               ctypes.c_int32, ctypes.c_int32)


def conv_model():
    """Conv -> Relu -> Conv over a dynamic H and W: convolutions are where the CPU backend has
    tactics to time."""
    rng = np.random.default_rng(0)
    w1 = helper.make_tensor("w1", TensorProto.FLOAT, [8, 3, 3, 3],
                            rng.standard_normal(8 * 3 * 3 * 3).astype(np.float32))
    w2 = helper.make_tensor("w2", TensorProto.FLOAT, [4, 8, 3, 3],
                            rng.standard_normal(4 * 8 * 3 * 3).astype(np.float32))
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
         helper.make_node("Conv", ["r1", "w2"], ["y"], name="conv2", pads=[1, 1, 1, 1])],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, "h", "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, "h", "w"])], [w1, w2])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_progress_counts_every_layer_of_every_profile():
    builder = ductile.Builder()
    network = builder.parse_onnx_bytes(conv_model().SerializeToString())
    config = builder.create_builder_config()
    for lo, hi in ((8, 32), (33, 64)):
        profile = builder.create_optimization_profile()
        profile.set_shape("x", (1, 3, lo, lo), (1, 3, hi, hi), (1, 3, hi, hi))
        config.add_optimization_profile(profile)
    calls = []
    fn = PROGRESS_FN(lambda user, p, n, done, total: calls.append((user, p, n, done, total)))
    marker = ctypes.c_int(7)
    assert lib.ductile_config_set_progress(config._handle, fn, ctypes.byref(marker)) == 0
    builder.build_engine(network, config)
    addr = ctypes.addressof(marker)
    # The engine's two layers (the Relu is fused into conv1), in order, for profile 0 then
    # profile 1, with the user pointer as given.
    assert calls == [(addr, p, 2, done, 2) for p in (0, 1) for done in (1, 2)]


def test_progress_off_again_with_null():
    builder = ductile.Builder()
    network = builder.parse_onnx_bytes(conv_model().SerializeToString())
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    profile.set_shape("x", (1, 3, 8, 8), (1, 3, 16, 16), (1, 3, 16, 16))
    config.add_optimization_profile(profile)
    calls = []
    fn = PROGRESS_FN(lambda *a: calls.append(a))
    assert lib.ductile_config_set_progress(config._handle, fn, None) == 0
    assert lib.ductile_config_set_progress(config._handle, None, None) == 0
    builder.build_engine(network, config)
    assert calls == []


def test_progress_on_null_config_is_an_error():
    assert lib.ductile_config_set_progress(None, None, None) != 0
    assert ductile._text(lib.ductile_last_error()) == "set_progress: config is NULL"


def cli_args(tmp_path):
    model = tmp_path / "conv.onnx"
    onnx.save(conv_model(), str(model))
    return [str(BUILD / "ductile"), f"--onnx={model}", "--minShapes=x:1x3x8x8",
            "--optShapes=x:1x3x16x16", "--maxShapes=x:1x3x16x16", "--minShapes=x:1x3x17x17",
            "--optShapes=x:1x3x24x24", "--maxShapes=x:1x3x24x24", "--skipInference"]


def test_cli_shows_progress_on_a_terminal(tmp_path):
    rc, err = run_on_terminal(cli_args(tmp_path))
    assert rc == 0
    want = "".join(f"\rTiming tactics: profile {p}/2, layer {d}/2" for p in (1, 2) for d in (1, 2))
    # The terminal turns the closing "\n" into "\r\n".
    assert err == want + "\r\n"


def conv_chain(n):
    """n 1x1 Convs of 4 channels in a row: n layers to time."""
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 4, 1, 1], np.eye(4, dtype=np.float32).ravel())
    names = ["x"] + [f"c{i}" for i in range(n - 1)] + ["y"]
    nodes = [helper.make_node("Conv", [names[i], "w"], [names[i + 1]], name=f"conv{i}")
             for i in range(n)]
    graph = helper.make_graph(
        nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, "h", "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, "h", "w"])], [w])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def run_on_terminal(args):
    """(exit status, what the program wrote to stderr, a terminal)."""
    leader, follower = pty.openpty()
    try:
        proc = subprocess.run(args, stdout=subprocess.PIPE, stderr=follower, timeout=120)
        os.close(follower)
        follower = -1
        err = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the terminal's other side is closed and drained
                break
            if not chunk:
                break
            err += chunk
    finally:
        if follower >= 0:
            os.close(follower)
        os.close(leader)
    return proc.returncode, err.decode()


def test_cli_progress_pads_counts_so_each_line_covers_the_last(tmp_path):
    model = tmp_path / "chain.onnx"
    onnx.save(conv_chain(12), str(model))
    rc, err = run_on_terminal([str(BUILD / "ductile"), f"--onnx={model}", "--shapes=x:1x4x8x8",
                               "--skipInference"])
    assert rc == 0
    want = "".join(f"\rTiming tactics: profile 1/1, layer {d:2d}/12" for d in range(1, 13))
    assert err == want + "\r\n"


def test_cli_is_quiet_when_stderr_is_not_a_terminal(tmp_path):
    proc = subprocess.run(cli_args(tmp_path), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert "Build time:" in proc.stdout


def tasks_during_build(threads):
    """The process's thread count seen from the progress callback (the tactics' pool is alive
    then), building conv_model with config.threads = threads."""
    builder = ductile.Builder()
    network = builder.parse_onnx_bytes(conv_model().SerializeToString())
    config = builder.create_builder_config()
    config.threads = threads
    profile = builder.create_optimization_profile()
    profile.set_shape("x", (1, 3, 8, 8), (1, 3, 16, 16), (1, 3, 24, 24))
    config.add_optimization_profile(profile)
    seen = []
    fn = PROGRESS_FN(lambda user, p, n, done, total: seen.append(len(os.listdir("/proc/self/task"))))
    assert lib.ductile_config_set_progress(config._handle, fn, None) == 0
    engine = builder.build_engine(network, config)
    assert seen
    return max(seen), engine


def test_tactics_are_timed_on_the_configs_threads():
    one, engine = tasks_during_build(1)
    three, _ = tasks_during_build(3)
    # A pool of n threads is the building thread and n - 1 workers.
    assert three - one == 2, (one, three)
    x = np.random.default_rng(3).standard_normal((1, 3, 13, 11)).astype(np.float32)
    got = engine.create_execution_context().run({"x": x})["y"]
    import onnxruntime as ort
    model = conv_model()
    model.ir_version = 8  # the pinned onnxruntime reads IR <= 13
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_config_threads_out_of_range():
    config = ductile.Builder().create_builder_config()
    for bad in (-1, 65):
        try:
            config.threads = bad
        except ductile.Error as e:
            assert str(e).startswith(f"set_threads: {bad} threads is out of range (expected 1..64, or 0 for the online CPUs)"), str(e)
        else:
            raise AssertionError(f"threads {bad} accepted")
    config.threads = 0
    assert config.threads == 0
