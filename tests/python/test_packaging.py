"""`pip install .` and a wheel from `python -m build`, each into a fresh virtual environment:
the package carries its library and CLI, imports from outside the checkout with no PYTHONPATH
or DUCTILE_LIB, and computes what onnxruntime computes.

Needs PyPI (pip's isolated build fetches setuptools; the fresh venvs fetch numpy and build).
Both builds reuse the checkout's build/ through make, so they take seconds once `make` ran."""
import json
import os
import re
import subprocess
import sys
import venv

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import util

REPO = util.REPO

# Run inside the fresh venv, from a folder outside the checkout.
PROBE = r"""
import json, sys
import numpy as np
import ductile
x = np.load(sys.argv[2])
builder = ductile.Builder()
network = builder.parse_onnx(sys.argv[1])
profile = builder.create_optimization_profile()
profile.set_shape("x", (1, 4), (2, 4), (8, 4))
config = builder.create_builder_config()
config.add_optimization_profile(profile)
engine = builder.build_engine(network, config)
y = engine.create_execution_context().run({"x": x})["y"]
np.save(sys.argv[3], y)
print(json.dumps({"module": ductile.__file__, "library": str(ductile._lib._library_path()),
                  "version": ductile.__version__}))
"""


def header_version():
    h = (REPO / "include/ductile.h").read_text()
    return ".".join(re.search(rf"#define DUCTILE_VERSION_{p} (\d+)", h).group(1)
                    for p in ("MAJOR", "MINOR", "PATCH"))


def clean_env():
    """The environment without what would let a broken package work from the checkout."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "DUCTILE_LIB", "VIRTUAL_ENV", "PYTHONHOME",
                        # a `make test` above us must not lend its jobserver to setup.py's make
                        "MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    return env


def sh(cmd, cwd, timeout=600):
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, env=clean_env(), capture_output=True,
                       text=True, timeout=timeout)
    assert r.returncode == 0, f"{cmd}:\n{r.stdout}\n{r.stderr}"
    return r.stdout


def fresh_venv(path):
    # Without pip of its own (ensurepip is most of a venv's creation time): this interpreter's
    # pip installs into it with --python.
    venv.EnvBuilder(with_pip=False, clear=True).create(path)
    return path / "bin"


def pip(bindir, *args, cwd):
    return sh([sys.executable, "-m", "pip", "--python", bindir / "python", "install", "--quiet",
               "--disable-pip-version-check", *args], cwd)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """y = relu(x) + 1 with a dynamic batch, and an input for it."""
    d = tmp_path_factory.mktemp("tiny")
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Add", ["r", "one"], ["y"])],
        "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4])],
        [helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, d / "tiny.onnx")
    x = np.random.default_rng(0).standard_normal((3, 4), dtype=np.float32)
    np.save(d / "x.npy", x)
    want = util.ort_session(str(d / "tiny.onnx")).run(None, {"x": x})[0]
    return d / "tiny.onnx", d / "x.npy", want


def check_installed(bindir, tiny, work):
    """Imports and runs the package of the venv at bindir from `work` (outside the checkout)."""
    model, x, want = tiny
    prefix = bindir.parent.resolve()
    (work / "probe.py").write_text(PROBE)
    out = json.loads(sh([bindir / "python", work / "probe.py", model, x, work / "y.npy"], work))
    assert out["module"].startswith(str(prefix)), out
    assert out["library"].startswith(str(prefix)) and out["library"].endswith(
        "ductile/_native/libductile.so"), out
    assert out["version"] == header_version()
    np.testing.assert_allclose(np.load(work / "y.npy"), want, rtol=util.OP_RTOL)
    # The CLI: a console script of the venv that runs the binary inside the package.
    assert (bindir / "ductile").is_file()
    env = dict(clean_env(), PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    r = subprocess.run(["ductile", f"--onnx={model}", "--shapes=x:3x4", "--iterations=1",
                        "--duration=0", "--warmUp=0"], cwd=work, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"ductile {header_version()}\n")
    r = subprocess.run(["ductile", "--nonsense"], cwd=work, env=env, capture_output=True,
                       text=True)
    assert r.returncode == 2  # the CLI's own exit code comes through the console script


def test_pip_install_dot_into_a_fresh_venv(tmp_path, tiny):
    bindir = fresh_venv(tmp_path / "venv")
    pip(bindir, str(REPO), cwd=tmp_path)
    check_installed(bindir, tiny, tmp_path)


def test_wheel_from_python_m_build(tmp_path, tiny):
    builder = fresh_venv(tmp_path / "build-venv")
    pip(builder, "build", cwd=tmp_path)
    sh([builder / "python", "-m", "build", "--wheel", "--outdir", tmp_path / "dist", REPO],
       tmp_path)
    wheels = list((tmp_path / "dist").glob("*.whl"))
    # One wheel per platform for every Python 3: ctypes, no CPython extension.
    assert [w.name for w in wheels] == [
        f"ductile-{header_version()}-py3-none-linux_{os.uname().machine}.whl"]
    pip(builder, wheels[0], cwd=tmp_path)  # into the venv that built it: it is fresh too
    check_installed(builder, tiny, tmp_path)
