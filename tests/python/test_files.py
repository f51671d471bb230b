"""Files that are not what they seem: a FIFO, a directory or a socket given as a model, as
external data or as an engine; external data through a symlink that leaves the model's folder
(with openat2, with the component walk forced, and with openat2 failing ENOSYS as on old
kernels); external data or a model file truncated or rewritten between parse and build.

Anything that could hang or crash (SIGBUS through a mapping) runs in a child process with a
timeout, so a hang or a crash fails the test instead of stopping the suite."""
import multiprocessing
import os
import socket
import subprocess
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

import ductile
import files_child
import util
from files_child import (X, build_truncate_run, load, parse, parse_build_run,
                         parse_build_run_enosys, parse_change_build, run, save)

TIMEOUT = 60
CLI = Path(os.environ.get("DUCTILE_CLI", util.REPO / "build" / "ductile"))
W = np.array([1.5, -2.0, 3.25], dtype=np.float32)


# ---- Running a function in a child process -------------------------------------------------

def isolated(fn, *args, env=None):
    """fn(*args) in a fresh process: ("ok", value) or ("error", status, message). A hang or a
    crash fails the calling test with what happened."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    p = ctx.Process(target=files_child._child, args=(child, fn, args, env or {}))
    p.start()
    child.close()
    p.join(TIMEOUT)
    if p.is_alive():
        p.kill()
        p.join()
        pytest.fail(f"{fn.__name__}{args} still running after {TIMEOUT} s (a hang)")
    if p.exitcode != 0 or not parent.poll():
        pytest.fail(f"{fn.__name__}{args} died with exit code {p.exitcode} "
                    f"(a negative code is the signal: -7 is SIGBUS)")
    result = parent.recv()
    if result[0] == "exception":
        pytest.fail(result[1])
    return result


# ---- Models --------------------------------------------------------------------------------

def add_model(w_tensor):
    """Y = X + w for a float [3] input X."""
    g = helper.make_graph(
        [helper.make_node("Add", ["X", "w"], ["Y"])], "add",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [3])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [3])],
        initializer=[w_tensor])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def external_model(folder, location, name="m.onnx"):
    """m.onnx in folder whose initializer w lives in `location` (not written here)."""
    t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[3],
                    data_location=TensorProto.EXTERNAL)
    t.external_data.add(key="location", value=location)
    path = Path(folder) / name
    onnx.save(add_model(t), path)
    return path


def reference(w=W):
    """onnxruntime on the same network with w inline."""
    m = add_model(helper.make_tensor("w", TensorProto.FLOAT, [3], w.tobytes(), raw=True))
    s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return s.run(None, {"X": X})[0]


def inline_model():
    w = helper.make_tensor("w", TensorProto.FLOAT, [3], W.tobytes(), raw=True)
    return add_model(w).SerializeToString()


def fifo(path):
    os.mkfifo(path)
    return path


def test_fifo_as_model_is_refused_at_once(tmp_path):
    path = fifo(tmp_path / "m.onnx")
    assert isolated(parse, path) == ("error", "DUCTILE_ERR_IO",
                                     f"'{path}' is a FIFO, not a regular file")


def test_directory_as_model_says_it_is_a_directory(tmp_path):
    assert isolated(parse, tmp_path) == ("error", "DUCTILE_ERR_IO",
                                         f"'{tmp_path}' is a directory, not a regular file")


@pytest.mark.parametrize("walk", [False, True], ids=["openat2", "walk"])
def test_fifo_as_external_data_is_refused_at_once(tmp_path, walk):
    fifo(tmp_path / "w.bin")
    path = external_model(tmp_path, "w.bin")
    env = {"DUCTILE_FILE_NO_OPENAT2": "1"} if walk else {}
    assert isolated(parse, path, env=env) == (
        "error", "DUCTILE_ERR_IO",
        "m.onnx: tensor 'w': external data file 'w.bin' is a FIFO, not a regular file")


@pytest.mark.parametrize("walk", [False, True], ids=["openat2", "walk"])
def test_socket_and_directory_as_external_data_say_what_they_are(tmp_path, walk, monkeypatch):
    env = {"DUCTILE_FILE_NO_OPENAT2": "1"} if walk else {}
    (tmp_path / "d.bin").mkdir()
    path = external_model(tmp_path, "d.bin")
    assert isolated(parse, path, env=env) == (
        "error", "DUCTILE_ERR_IO",
        "m.onnx: tensor 'w': external data file 'd.bin' is a directory, not a regular file")
    s = socket.socket(socket.AF_UNIX)
    monkeypatch.chdir(tmp_path)   # a socket's path must be short: bind it relative
    try:
        s.bind("s.bin")
        path = external_model(tmp_path, "s.bin")
        assert isolated(parse, path, env=env) == (
            "error", "DUCTILE_ERR_IO",
            "m.onnx: tensor 'w': external data file 's.bin' is a socket, not a regular file")
    finally:
        s.close()


def test_fifo_as_engine_is_refused_at_once(tmp_path):
    path = fifo(tmp_path / "e.engine")
    assert isolated(load, path) == ("error", "DUCTILE_ERR_IO",
                                    f"'{path}' is a FIFO, not a regular file")


def test_directory_as_engine_says_it_is_a_directory(tmp_path):
    assert isolated(load, tmp_path) == ("error", "DUCTILE_ERR_IO",
                                        f"'{tmp_path}' is a directory, not a regular file")


def test_saving_onto_a_fifo_or_a_directory_is_refused(tmp_path):
    path = fifo(tmp_path / "e.engine")
    assert isolated(save, path, inline_model()) == ("error", "DUCTILE_ERR_IO",
                                    f"'{path}' is a FIFO, not a regular file")
    assert isolated(save, tmp_path, inline_model()) == ("error", "DUCTILE_ERR_IO",
                                        f"'{tmp_path}' is a directory, not a regular file")


def test_saved_engine_loads_and_matches_onnxruntime(tmp_path):
    path = tmp_path / "e.engine"
    path.write_bytes(b"x" * 100000)   # an older, longer file is replaced, not overwritten
    assert isolated(save, path, inline_model()) == ("ok", None)
    np.testing.assert_array_equal(run(ductile.load_engine(str(path))), reference())


def cli(*args):
    if not CLI.exists():
        pytest.skip(f"{CLI} is not built (run make)")
    return subprocess.run([str(CLI), *map(str, args)], capture_output=True, text=True,
                          timeout=TIMEOUT)


def test_cli_fifo_as_onnx_or_engine_or_inputs_fails_at_once(tmp_path):
    path = fifo(tmp_path / "f")
    for flag in ("--onnx", "--loadEngine"):
        r = cli(f"{flag}={path}")
        assert (r.returncode, r.stderr) == (
            1, f"error: DUCTILE_ERR_IO: '{path}' is a FIFO, not a regular file\n")
    engine = tmp_path / "e.engine"
    assert isolated(save, engine, inline_model()) == ("ok", None)
    r = cli(f"--loadEngine={engine}", f"--loadInputs=X:{path}", "--iterations=1",
            "--warmUp=0", "--duration=0")
    assert (r.returncode, r.stderr) == (
        1, f"error: --loadInputs: '{path}' for input 'X' is not a regular file\n")


# ---- Symlinks and the model's folder: point 9 ----------------------------------------------

MODES = ["openat2", "walk", "enosys"]


def in_mode(mode, path):
    """parse_build_run(path) in a child: openat2 as the kernel has it, the walk forced by the
    environment, or openat2 failing ENOSYS."""
    if mode == "enosys":
        r = isolated(parse_build_run_enosys, path)
        if r == ("ok", "no seccomp"):
            pytest.skip("seccomp filters are not available here")
        return r
    env = {"DUCTILE_FILE_NO_OPENAT2": "1"} if mode == "walk" else {}
    return isolated(parse_build_run, path, env=env)


@pytest.fixture
def folders(tmp_path):
    """tmp/model (the model's folder) and tmp/outside/w.bin (weights it must not read)."""
    model, outside = tmp_path / "model", tmp_path / "outside"
    model.mkdir()
    outside.mkdir()
    (W * 100).tofile(outside / "w.bin")
    return model, outside


def escape(target, link="w.bin"):
    return ("error", "DUCTILE_ERR_IO",
            f"m.onnx: tensor 'w': external data file '{link}': symlink '{link}' -> '{target}' "
            "leaves the model's folder")


@pytest.mark.parametrize("mode", MODES)
def test_relative_symlink_out_of_the_folder_is_refused(folders, mode):
    model, outside = folders
    os.symlink("../outside/w.bin", model / "w.bin")
    assert in_mode(mode, external_model(model, "w.bin")) == escape("../outside/w.bin")


@pytest.mark.parametrize("mode", MODES)
def test_absolute_symlink_is_refused(folders, mode):
    model, outside = folders
    os.symlink(outside / "w.bin", model / "w.bin")
    assert in_mode(mode, external_model(model, "w.bin")) == escape(f"{outside}/w.bin")


@pytest.mark.parametrize("mode", MODES)
def test_symlinked_directory_out_of_the_folder_is_refused(folders, mode):
    model, outside = folders
    (model / "sub").mkdir()
    os.symlink("../../outside", model / "sub" / "data")
    assert in_mode(mode, external_model(model, "sub/data/w.bin")) == (
        "error", "DUCTILE_ERR_IO",
        "m.onnx: tensor 'w': external data file 'sub/data/w.bin': symlink 'sub/data' -> "
        "'../../outside' leaves the model's folder")


@pytest.mark.parametrize("mode", MODES)
def test_symlink_that_leaves_and_comes_back_is_refused(folders, mode):
    # ../model/w.bin ends inside, but on the way it stands outside, where openat2's
    # RESOLVE_BENEATH stops too: the two paths agree.
    model, outside = folders
    W.tofile(model / "real.bin")
    os.symlink("../model/real.bin", model / "w.bin")
    assert in_mode(mode, external_model(model, "w.bin")) == escape("../model/real.bin")


@pytest.mark.parametrize("mode", MODES)
def test_symlinks_that_stay_inside_are_followed(folders, mode):
    model, outside = folders
    (model / "data").mkdir()
    W.tofile(model / "data" / "real.bin")
    os.symlink("data", model / "d")                     # a directory link
    os.symlink("../data/real.bin", model / "data" / "up")  # '..' that stays inside
    os.symlink("d/up", model / "w.bin")                 # a chain of three
    r = in_mode(mode, external_model(model, "w.bin"))
    assert r[0] == "ok", r
    np.testing.assert_array_equal(np.array(r[1], dtype=np.float32), reference())


@pytest.mark.parametrize("mode", MODES)
def test_hardlink_is_read_like_a_file(folders, mode):
    model, outside = folders
    os.link(outside / "w.bin", model / "w.bin")
    r = in_mode(mode, external_model(model, "w.bin"))
    assert r[0] == "ok", r
    np.testing.assert_array_equal(np.array(r[1], dtype=np.float32), reference(W * 100))


@pytest.mark.parametrize("mode", MODES)
def test_symlink_loop_is_refused(folders, mode):
    model, outside = folders
    os.symlink("b", model / "w.bin")
    os.symlink("w.bin", model / "b")
    assert in_mode(mode, external_model(model, "w.bin")) == (
        "error", "DUCTILE_ERR_IO",
        "m.onnx: tensor 'w': cannot open external data file 'w.bin': "
        "Too many levels of symbolic links")


@pytest.mark.parametrize("mode", MODES)
def test_missing_file_behind_a_symlink_names_the_location(folders, mode):
    model, outside = folders
    os.symlink("absent.bin", model / "w.bin")
    assert in_mode(mode, external_model(model, "w.bin")) == (
        "error", "DUCTILE_ERR_IO",
        "m.onnx: tensor 'w': cannot open external data file 'w.bin': No such file or directory")


@pytest.mark.parametrize("location", ["../outside/w.bin", "sub/../w.bin"])
def test_dotdot_location_is_refused_before_any_lookup(folders, location):
    model, outside = folders
    assert isolated(parse, external_model(model, location)) == (
        "error", "DUCTILE_ERR_UNSUPPORTED",
        f"m.onnx: tensor 'w': external data location '{location}' is refused: it must be a "
        "relative path inside the model's folder, without '..'")


# ---- Files changed between parse and build: point 10 ---------------------------------------

def big_model(folder):
    """An inline model that reads the last bytes of a 256 KiB initializer, so a read of them
    after truncation is past the end of the mapping. uint8: its raw bytes are always aligned,
    so the parser uses them in place."""
    w = np.zeros(1 << 18, dtype=np.uint8)
    w[-3:] = [1, 254, 3]
    t = helper.make_tensor("big", TensorProto.UINT8, [1 << 18], w.tobytes(), raw=True)
    g = helper.make_graph(
        [helper.make_node("Slice", ["big", "s", "e"], ["w8"]),
         helper.make_node("Cast", ["w8"], ["w"], to=TensorProto.FLOAT),
         helper.make_node("Add", ["X", "w"], ["Y"])], "add",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [3])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [3])],
        initializer=[t, helper.make_tensor("s", TensorProto.INT64, [1], [-3]),
                     helper.make_tensor("e", TensorProto.INT64, [1], [1 << 18])])
    path = Path(folder) / "m.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)
    return path


@pytest.fixture
def external(tmp_path):
    """m.onnx with w in w.bin, 64 KiB so that truncation leaves whole pages unbacked."""
    w = np.zeros(1 << 14, dtype=np.float32)
    w[-3:] = W
    w.tofile(tmp_path / "w.bin")
    t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[3],
                    data_location=TensorProto.EXTERNAL)
    t.external_data.add(key="location", value="w.bin")
    t.external_data.add(key="offset", value=str(w.nbytes - 12))
    path = tmp_path / "m.onnx"
    onnx.save(add_model(t), path)
    return path


def test_external_data_truncated_after_parse_is_refused_by_build(external):
    assert isolated(parse_change_build, external, external.parent / "w.bin", "truncate",
                    False) == (
        "error", "DUCTILE_ERR_IO",
        "external data file 'w.bin' changed since parsing (65536 bytes then, 4 now); "
        "parse the model again")


def test_external_data_rewritten_after_parse_is_refused_by_build(external):
    assert isolated(parse_change_build, external, external.parent / "w.bin", "rewrite",
                    False) == (
        "error", "DUCTILE_ERR_IO",
        "external data file 'w.bin' changed since parsing (written to after it was read); "
        "parse the model again")


def test_model_file_truncated_after_parse_is_refused_by_build(tmp_path):
    path = big_model(tmp_path)
    size = path.stat().st_size
    assert isolated(parse_change_build, path, path, "truncate", False) == (
        "error", "DUCTILE_ERR_IO",
        f"model file 'm.onnx' changed since parsing ({size} bytes then, 4 now); "
        "parse the model again")


@pytest.mark.parametrize("how", ["replace", "delete"])
@pytest.mark.parametrize("changed", ["w.bin", "m.onnx"])
def test_replaced_or_deleted_files_build_from_what_was_parsed(external, changed, how):
    # The mapping keeps the parsed inode alive and intact: the build reads what was parsed.
    r = isolated(parse_change_build, external, external.parent / changed, how, True)
    assert r[0] == "ok", r
    np.testing.assert_array_equal(np.array(r[1], dtype=np.float32), reference())


def test_engine_does_not_read_the_files_after_build(external):
    r = isolated(build_truncate_run, external)
    assert r[0] == "ok", r
    np.testing.assert_array_equal(np.array(r[1], dtype=np.float32), reference())
