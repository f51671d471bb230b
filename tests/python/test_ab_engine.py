"""bench/ab_engine.py: both libraries run the one engine file in their own processes, each a
median per round; a worker that fails stops the A/B naming the library."""
import subprocess
import sys

import numpy as np
from onnx import TensorProto as T, helper as h, numpy_helper as nh

from ductile._lib import _library_path
from test_fusions import model_of
from util import REPO, build_from_bytes


def small_engine(path):
    w = nh.from_array(np.random.default_rng(1).standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    model = model_of([h.make_node("Conv", ["x", "w"], ["y"], pads=[1] * 4)], [w],
                     [h.make_tensor_value_info("x", T.FLOAT, [1, 3, 9, 7])],
                     [h.make_tensor_value_info("y", T.FLOAT, None)])
    build_from_bytes(model.SerializeToString(), {"x": ((1, 3, 9, 7),) * 3}).save(str(path))


def ab(libs, engine, rounds=2):
    return subprocess.run([sys.executable, str(REPO / "bench" / "ab_engine.py"), "--libs", libs, "--rounds",
                           str(rounds), "--runs", "3", str(engine), "x=1x3x9x7"], capture_output=True, text=True)


def test_each_library_gets_a_median_and_its_rounds(tmp_path):
    small_engine(tmp_path / "e.eng")
    lib = str(_library_path())
    p = ab(f"one={lib},two={lib}", tmp_path / "e.eng", rounds=3)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.strip().splitlines()
    assert [l.split()[0] for l in lines] == ["one", "two"]
    for l in lines:
        parts = l.split()
        assert parts[2] == "ms" and parts[3] == "rounds" and len(parts) == 7
        assert float(parts[1]) > 0 and all(float(v) > 0 for v in parts[4:])


def test_a_failing_worker_names_its_library(tmp_path):
    lib = str(_library_path())
    p = ab(f"one={lib}", tmp_path / "missing.eng")
    assert p.returncode == 1
    assert p.stderr.startswith("one: worker failed (1):")
