"""python -m ductile.compare: every tensor marked, ductile and onnxruntime on the same inputs, a
table per run, the first layer beyond tolerance named, exit 0 / 1 / 2."""
import os
import re
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from util import REPO, model_path

PROG = "python -m ductile.compare"


def compare(*args, env_extra=None):
    env = dict(os.environ, PYTHONPATH=str(REPO / "python"))
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "ductile.compare", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=300)


def table_rows(stdout):
    """[(layer, op, output, shape, abs, rel, result)] of every table, in order."""
    rows, inside = [], False
    for line in stdout.splitlines():
        cols = line.split()
        if cols[:2] == ["layer", "op"]:
            inside = True
        elif not cols:
            inside = False
        elif inside:
            rows.append((*cols[:6], " ".join(cols[6:])))
    return rows


def chain_model(path, k):
    """x (dynamic batch, k) -> Transpose twice -> MatMul -> Relu."""
    rng = np.random.default_rng(1)
    w = helper.make_tensor("w", TensorProto.FLOAT, [k, 64],
                           rng.standard_normal(k * 64).astype(np.float32))
    nodes = [helper.make_node("Transpose", ["x"], ["t1"], name="t1", perm=[1, 0]),
             helper.make_node("Transpose", ["t1"], ["t2"], name="t2", perm=[1, 0]),
             helper.make_node("MatMul", ["t2", "w"], ["mm"], name="mm"),
             helper.make_node("Relu", ["mm"], ["y"], name="relu")]
    graph = helper.make_graph(nodes, "chain",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", k])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 64])],
                              [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, str(path))
    return path


def test_suite_model_agrees_and_the_table_lists_every_node():
    path = model_path("seg_lraspp.onnx")
    proc = compare(path, "--shapes=input_1:1x3x61x47", "--shapes=input_1:1x3x40x40")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    model = onnx.load(str(path), load_external_data=False)
    want = [(n.name, n.op_type, o) for n in model.graph.node for o in n.output if o]
    rows = table_rows(proc.stdout)
    assert [r[:3] for r in rows] == want * 2  # every node output, in graph order, per run
    assert all(r[6] == "ok" for r in rows)
    assert proc.stdout.splitlines()[0] == "Run 1: input_1:1x3x61x47 (profile 0)"
    assert f"Run 2: input_1:1x3x40x40 (profile 1)" in proc.stdout.splitlines()
    assert proc.stdout.splitlines()[-1] == \
        f"All {len(want)} tensors agree in 2 run(s) (atol=0.0001, rtol=0.001)"


def test_profiles_from_min_opt_max_and_each_run_in_the_first_profile_holding_it():
    path = model_path("superres.onnx")
    proc = compare(path, "--minShapes=input:1x1x8x8", "--optShapes=input:1x1x16x16",
                   "--maxShapes=input:1x1x32x32", "--minShapes=input:1x1x33x33",
                   "--optShapes=input:2x1x40x40", "--maxShapes=input:2x1x64x64",
                   "--shapes=input:1x1x9x31", "--shapes=input:2x1x50x34")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert "Run 1: input:1x1x9x31 (profile 0)" in lines
    assert "Run 2: input:2x1x50x34 (profile 1)" in lines
    shapes = [r[3] for r in table_rows(proc.stdout) if r[2] == "output"]
    assert shapes == ["1x1x27x93", "2x1x150x102"]


def conv_model(path):
    """x (n, 32, h, w) -> Transpose to NHWC and back (bit-exact in any engine) -> a 3x3 Conv of
    32 channels (a 288-term sum per value, in a different order in ductile's kernels and
    onnxruntime's MLAS) -> Relu."""
    rng = np.random.default_rng(1)
    w = helper.make_tensor("w", TensorProto.FLOAT, [32, 32, 3, 3],
                           rng.standard_normal(32 * 32 * 9).astype(np.float32))
    nodes = [helper.make_node("Transpose", ["x"], ["t1"], name="t1", perm=[0, 2, 3, 1]),
             helper.make_node("Transpose", ["t1"], ["t2"], name="t2", perm=[0, 3, 1, 2]),
             helper.make_node("Conv", ["t2", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["y"], name="relu")]
    graph = helper.make_graph(
        nodes, "conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 32, "h", "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 32, "h", "w"])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, str(path))
    return path


def test_zero_tolerance_names_the_first_diverging_layer_and_exits_1(tmp_path):
    path = conv_model(tmp_path / "conv.onnx")
    proc = compare(path, "--shapes=x:1x32x20x24", "--atol=0", "--rtol=0")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    rows = table_rows(proc.stdout)
    assert [r[:4] for r in rows] == [("t1", "Transpose", "t1", "1x20x24x32"),
                                     ("t2", "Transpose", "t2", "1x32x20x24"),
                                     ("conv", "Conv", "c", "1x32x20x24"),
                                     ("relu", "Relu", "y", "1x32x20x24")]
    # Moving data is exact; the reduction is not, and it is the first layer named.
    assert rows[0][4:] == ("0.000e+00", "0.000e+00", "ok")
    assert rows[1][4:] == ("0.000e+00", "0.000e+00", "ok")
    assert rows[2][6] == "DIVERGES" and float(rows[2][4]) > 0
    last = proc.stdout.splitlines()[-1]
    assert last == ("Run 1: first layer beyond tolerance (atol=0, rtol=0): 'conv' (Conv), output "
                    f"'c': max abs err {rows[2][4]}")
    # Within a tolerance of this model's scale (values of N(0,1) weights summed 288 times: up to
    # ~60, so a few 1e-4 of absolute error) the same run agrees.
    proc = compare(path, "--shapes=x:1x32x20x24", "--atol=1e-3")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_load_inputs_are_the_data_both_engines_run(tmp_path):
    path = conv_model(tmp_path / "conv.onnx")
    # Zeros convolve to exact zeros in any summation order: with them the zero-tolerance run
    # that random inputs fail (above) agrees, so the file is what both engines ran.
    data = tmp_path / "x.bin"
    data.write_bytes(np.zeros((1, 32, 20, 24), "<f4").tobytes())
    proc = compare(path, "--shapes=x:1x32x20x24", f"--loadInputs=x:{data}", "--atol=0", "--rtol=0")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [r[4] for r in table_rows(proc.stdout)] == ["0.000e+00"] * 4
    proc = compare(path, "--shapes=x:1x32x20x24", "--atol=0", "--rtol=0")
    assert proc.returncode == 1, proc.stdout + proc.stderr


def test_load_inputs_errors(tmp_path):
    path = chain_model(tmp_path / "chain.onnx", k=4)
    data = tmp_path / "x.bin"
    data.write_bytes(np.zeros((3, 4), "<f4").tobytes())
    proc = compare(path, "--shapes=x:2x4", f"--loadInputs=x:{data}")
    assert proc.returncode == 2
    assert proc.stderr == (f"{PROG}: error: --loadInputs: input 'x' (2x4 float32) needs 32 "
                           f"bytes but '{data}' has 48 bytes\n")
    proc = compare(path, "--shapes=x:3x4", f"--loadInputs=x:{tmp_path / 'none.bin'}")
    assert proc.stderr == (f"{PROG}: error: --loadInputs: cannot read "
                           f"'{tmp_path / 'none.bin'}' for input 'x': No such file or directory\n")


@pytest.mark.parametrize("flag, message", [
    ("--shapes=x3x4", "--shapes=x3x4: item 'x3x4' is not name:dims (such as input:1x3x224x224)"),
    ("--shapes=x:", "--shapes=x:: input 'x' has no dims after ':'"),
    ("--shapes=x:3xAx4", "--shapes=x:3xAx4: dim 1 of input 'x' is 'A', not a non-negative integer"),
    ("--shapes=x:3x-4", "--shapes=x:3x-4: dim 1 of input 'x' is '-4', not a non-negative integer"),
    ("--shapes=x:3x4,x:3x4", "--shapes=x:3x4,x:3x4: input 'x' given twice"),
    ("--rtol=-1", "--rtol and --atol must be finite and >= 0 (--rtol=-1.0, --atol=0.0001)"),
    ("--minShapes=x:1x4", "--minShapes, --optShapes and --maxShapes must be given the same number "
                          "of times (one each per profile): 1, 0 and 0 given"),
])
def test_bad_arguments_are_refused_by_argparse_with_exit_2(tmp_path, flag, message):
    proc = compare(chain_model(tmp_path / "chain.onnx", k=4), flag)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.splitlines()[-1] == f"{PROG}: error: {message}"


@pytest.mark.parametrize("flag, message", [
    ("--shapes=y:3x4", "--shapes=y:3x4: the model has no input 'y' (inputs: x)"),
    ("--shapes=x:3x4x1", "--shapes=x:3x4x1: input 'x' has 2 dims in the model, 3 given"),
    ("--shapes=x:3x5", "--shapes=x:3x5: dim 1 of input 'x' is fixed at 4 in the model, 5 given"),
    (None, "the model's declared shapes (no --shapes given): input 'x' has dynamic dims ?x4; "
           "give its shape"),
])
def test_shapes_that_do_not_fit_the_model_are_refused_with_exit_2(tmp_path, flag, message):
    proc = compare(chain_model(tmp_path / "chain.onnx", k=4), *([flag] if flag else []))
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr == f"{PROG}: error: {message}\n"


def test_a_model_that_cannot_be_read_is_refused(tmp_path):
    proc = compare(tmp_path / "none.onnx", "--shapes=x:1x4")
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == (f"{PROG}: error: cannot open '{tmp_path / 'none.onnx'}': No such file "
                           "or directory\n")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\xff" * 16)
    proc = compare(junk, "--shapes=x:1x4")
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr.startswith(f"{PROG}: error: '{junk}' is not an ONNX model: ")


def test_a_run_outside_every_profile_is_refused(tmp_path):
    proc = compare(chain_model(tmp_path / "chain.onnx", k=4), "--minShapes=x:1x4",
                   "--optShapes=x:2x4", "--maxShapes=x:4x4", "--shapes=x:5x4")
    assert proc.returncode == 2
    assert proc.stderr == f"{PROG}: error: --shapes=x:5x4 is inside no profile\n"
    proc = compare(chain_model(tmp_path / "chain.onnx", k=4), "--minShapes=x:1x4",
                   "--optShapes=x:2x4", "--maxShapes=x:4x5", "--shapes=x:2x4")
    assert proc.returncode == 2
    assert proc.stderr == (f"{PROG}: error: profile 0 --maxShapes: dim 1 of input 'x' is fixed "
                           "at 4 in the model, 5 given\n")


def test_without_onnxruntime_it_says_so_and_exits_2(tmp_path):
    stub = tmp_path / "stub" / "onnxruntime"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("raise ImportError('no onnxruntime here')\n")
    proc = compare(chain_model(tmp_path / "chain.onnx", k=4), "--shapes=x:1x4",
                   env_extra={"PYTHONPATH": f"{stub.parent}{os.pathsep}{REPO / 'python'}"})
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr == (f"{PROG}: onnxruntime is not installed; the comparison needs it "
                           "(pip install onnxruntime)\n")
