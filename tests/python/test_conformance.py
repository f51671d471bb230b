"""ONNX's backend suites, run by ONNX's own runner over ductile.backend, must not regress.

tests/conformance/expected_failures.txt lists every test that does not pass, with its reason
(rewrite it with `make conformance-expectations`). Here a test not listed that fails is a
regression, and a listed test that passes fails too, so the list shrinks as ops land (a ratchet).

node, pytorch-converted, pytorch-operator and simple run here, fixed and with every input dim
symbolic: ~3,900 runs, well under a minute of CPU in one process, one pytest item per suite and
variant. 'real' (the light models; vgg19 alone takes ~30 s a variant on a loaded machine) runs
in `make conformance` only.
"""
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
import warnings

import pytest
from onnx import TensorProto, helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "conformance"))
import run_conformance  # noqa: E402

import ductile  # noqa: E402
import ductile.backend  # noqa: E402

RATCHET_SUITES = ["node", "pytorch-converted", "pytorch-operator", "simple"]


@pytest.fixture(scope="module")
def onnx_runner():
    return run_conformance.load_runner()


@pytest.mark.parametrize("dims", ["fixed", "symbolic"])
@pytest.mark.parametrize("suite", RATCHET_SUITES)
def test_onnx_suite_matches_expected_failures(onnx_runner, suite, dims):
    runner, backend = onnx_runner
    chosen = run_conformance.select(runner.test_cases, [suite], "", None)
    assert chosen, f"ONNX's runner has no {suite} tests"
    results = run_conformance.run_tests(runner, backend, chosen, [dims])
    regressions, now_passing = run_conformance.compare(results, run_conformance.read_expectations())
    assert not regressions, (f"{len(regressions)} {suite} tests ({dims}) regressed:\n"
                             + "\n".join(regressions[:40]))
    # A listed test that passes now is reported, not failed: numerics that move inside a
    # test's tolerance (dft_inverse misses its atol by ~1e-7) must not break CI. The runner's
    # --check and `make conformance-expectations` tighten the list.
    if now_passing:
        warnings.warn("tighten tests/conformance/expected_failures.txt (make conformance-expectations):\n"
                      + "\n".join(now_passing[:40]))


def test_node_suite_on_the_fake_device_passes_what_the_cpu_passes():
    """The runtime's device path (device buffers, per-layer host fallbacks and copies, eager
    engines run on the host) without a GPU: run_conformance.py --device=FAKE over the fake
    device of build/libductile_fakedev.so (`make fakedev`, a prerequisite of `make pytest`),
    held to the CPU's expected failures. A separate process: the library is chosen when
    ductile is first imported."""
    import subprocess
    root = os.path.normpath(os.path.join(HERE, "..", ".."))
    lib = os.path.join(root, "build", "libductile_fakedev.so")
    assert os.path.exists(lib), f"{lib} is missing: run `make fakedev`"
    r = subprocess.run([sys.executable, os.path.join(root, "tests", "conformance", "run_conformance.py"),
                        "--device=FAKE", "--suite", "node", "--dims", "fixed", "--check"],
                       capture_output=True, text=True, timeout=900,
                       env=dict(os.environ, PYTHONPATH=os.path.join(root, "python")))
    regressions = [line for line in r.stdout.splitlines() if line.startswith("REGRESSION")]
    assert not regressions, f"{len(regressions)} node tests fail on the fake device:\n" + "\n".join(regressions[:40])
    assert r.returncode in (0, 1), r.stdout[-2000:] + r.stderr[-2000:]
    assert "node               fixed" in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]


# ---- ductile.backend on its own ----------------------------------------------------------------

def _model(input_shape=(2, 3)):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(input_shape))
    b = helper.make_tensor("b", TensorProto.FLOAT, [3], [0.5, -1.0, 2.0])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    z = helper.make_tensor_value_info("z", TensorProto.FLOAT, None)
    nodes = [helper.make_node("Add", ["x", "b"], ["s"]),
             helper.make_node("Relu", ["s"], ["y"]),
             helper.make_node("ReduceSum", ["s"], ["z"], keepdims=0)]
    graph = helper.make_graph(nodes, "g", [x], [y, z], initializer=[b])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def _onnxruntime(model, feeds):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def test_backend_outputs_match_onnxruntime_in_model_order():
    model = _model()
    x = np.random.default_rng(1).standard_normal((2, 3)).astype(np.float32)
    got = ductile.backend.run_model(model, [x])
    want = _onnxruntime(model, {"x": x})
    assert got._fields == ("y", "z")
    for have, ref in zip(got, want):
        assert have.dtype == ref.dtype and have.shape == ref.shape
        np.testing.assert_allclose(have, ref, rtol=1e-6, atol=1e-6)


def test_symbolic_dims_build_one_engine_per_shape_and_match_onnxruntime():
    model = _model(("n", 3))
    rep = ductile.backend.prepare(model, "CPU", symbolic_dims=True)
    dims = [d.dim_param for d in rep._model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["in0_d0", "in0_d1"]
    rng = np.random.default_rng(2)
    for n in (1, 4, 1):
        x = rng.standard_normal((n, 3)).astype(np.float32)
        for have, ref in zip(rep.run({"x": x}), _onnxruntime(model, {"x": x})):
            np.testing.assert_allclose(have, ref, rtol=1e-6, atol=1e-6)
    assert sorted(key[0][1] for key in rep._contexts) == [(1, 3), (4, 3)]


def test_fixed_dims_bind_as_declared():
    rep = ductile.backend.prepare(_model((2, 3)))
    with pytest.raises(ductile.Error) as e:
        rep.run([np.zeros((5, 3), np.float32)])
    assert str(e.value) == "run: input 'x' has shape [5, 3]; the model declares [2,3] (dimension 0 is 2)"
    with pytest.raises(ductile.Error) as e:
        rep.run([np.zeros((6,), np.float32)])
    assert str(e.value) == "run: input 'x' has rank 1; the model declares [2,3]"
    assert not rep._contexts


def test_run_node_runs_one_node():
    node = helper.make_node("Mul", ["a", "b"], ["c"])
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.full((2, 3), 2.5, np.float32)
    (c,) = ductile.backend.run_node(node, [a, b])
    np.testing.assert_array_equal(c, a * b)


def test_map_graph_input_is_refused_by_name():
    # Sequences and optionals of tensors are read (tests/python/test_sequences.py); a map is not.
    m = helper.make_map_type_proto(TensorProto.INT64, helper.make_tensor_type_proto(TensorProto.FLOAT, []))
    inp = helper.make_value_info("m", m)
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [])
    graph = helper.make_graph([helper.make_node("Identity", ["m"], ["y"])], "g", [inp], [out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    with pytest.raises(ductile.Error) as e:
        ductile.backend.prepare(model)
    assert str(e.value) == ("graph input 'm': only tensors, and sequences and optionals of tensors, are "
                            "supported by ductile")
    assert e.value.status == "DUCTILE_ERR_UNSUPPORTED"


def test_non_array_feed_is_refused():
    rep = ductile.backend.prepare(_model())
    with pytest.raises(ductile.Error) as e:
        rep.run([[np.zeros((2, 3), np.float32)]])
    assert str(e.value) == "run: input 'x' is a list, not a tensor (the model declares a tensor)"
    assert e.value.status == "DUCTILE_ERR_INVALID_ARGUMENT"


def test_too_many_inputs_are_refused_by_count():
    rep = ductile.backend.prepare(_model())
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(ductile.Error) as e:
        rep.run([x, x])
    assert str(e.value) == "run: 2 inputs given, the model has 1 (x)"


def test_devices():
    """CPU always; CUDA exactly where an engine can be built for it (backend and GPU), which
    the CPU engine's own probe decides the same way."""
    assert ductile.backend.supports_device("CPU")
    assert not ductile.backend.supports_device("TPU")
    builder = ductile.Builder()
    config = builder.create_builder_config()
    try:
        config.device = "cuda"
        builder.build_engine(builder.parse_onnx_bytes(_model().SerializeToString()), config)
        gpu = True
    except ductile.Error:
        gpu = False
    assert ductile.backend.supports_device("CUDA") == gpu
    if not gpu:
        with pytest.raises(ductile.Error) as e:
            ductile.backend.prepare(_model(), "CUDA")
        assert str(e.value) == ("prepare: device 'CUDA' is not supported here (ductile runs on the CPU, "
                                "and on CUDA where this build has the backend and a GPU is found)")


# ---- the runner's bookkeeping ------------------------------------------------------------------

def test_expectations_round_trip_and_keep_what_was_not_run(tmp_path):
    path = tmp_path / "expected.txt"
    path.write_text("# header\nsimple/test_a_cpu both why a\nnode/test_keep_cpu symbolic kept\n")
    results = {
        "fixed": {("simple", "test_a_cpu"): "pass", ("node", "test_b_cpu"): "fail: DUCTILE_ERR_X: b"},
        "symbolic": {("simple", "test_a_cpu"): "fail: still a", ("node", "test_b_cpu"): "fail: b2"},
    }
    run_conformance.write_expectations(results, str(path))
    lines = [line for line in path.read_text().splitlines() if not line.startswith("#")]
    assert lines == ["node/test_b_cpu both DUCTILE_ERR_X: b",
                     "node/test_keep_cpu symbolic kept",
                     "simple/test_a_cpu symbolic still a"]
    expected = run_conformance.read_expectations(str(path))
    assert expected == {("node", "test_b_cpu", "fixed"): "DUCTILE_ERR_X: b",
                        ("node", "test_b_cpu", "symbolic"): "DUCTILE_ERR_X: b",
                        ("node", "test_keep_cpu", "symbolic"): "kept",
                        ("simple", "test_a_cpu", "symbolic"): "still a"}


def test_expectations_of_a_whole_suite_drop_tests_onnx_no_longer_has(tmp_path):
    path = tmp_path / "expected.txt"
    path.write_text("simple/test_gone_cpu both gone\nnode/test_other_cpu fixed other\n")
    results = {"fixed": {("simple", "test_a_cpu"): "fail: a"}}
    run_conformance.write_expectations(results, str(path), whole_suites=True)
    assert run_conformance.read_expectations(str(path)) == {
        ("simple", "test_gone_cpu", "symbolic"): "gone",
        ("node", "test_other_cpu", "fixed"): "other",
        ("simple", "test_a_cpu", "fixed"): "a"}


def test_compare_reports_regressions_and_new_passes():
    expected = {("node", "test_x_cpu", "fixed"): "why"}
    results = {"fixed": {("node", "test_x_cpu"): "pass", ("node", "test_y_cpu"): "fail: boom"}}
    assert run_conformance.compare(results, expected) == (
        ["node/test_y_cpu (fixed): fail: boom"], ["node/test_x_cpu (fixed) passes now"])


def test_malformed_expectation_line_is_named(tmp_path):
    path = tmp_path / "expected.txt"
    path.write_text("node/test_x_cpu sometimes why\n")
    with pytest.raises(ValueError) as e:
        run_conformance.read_expectations(str(path))
    assert str(e.value) == (f"{path}:1: expected '<suite>/<test> <fixed|symbolic|both> <reason>', "
                            "got 'node/test_x_cpu sometimes why'")


def test_failure_reason_is_one_line():
    try:
        np.testing.assert_allclose(np.array([1.0, 2.0]), np.array([1.0, 3.0]), rtol=1e-3, atol=0)
    except AssertionError as exc:
        reason = run_conformance.failure_reason(exc)
    assert "\n" not in reason
    assert reason.startswith("mismatch: Not equal to tolerance rtol=0.001, atol=0; "
                             "Mismatched elements: 1 / 2 (50%)")
    assert run_conformance.failure_reason(ductile.Error("a\nb", "DUCTILE_ERR_SHAPE")) == \
        "DUCTILE_ERR_SHAPE: a b"
