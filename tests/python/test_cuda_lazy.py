"""The GPU libraries are loaded only when the CUDA backend is asked for (backend/cuda/dynload.c):
a fresh Python process that imports ductile and builds and runs a CPU engine maps no cuBLASLt,
cuDNN or CUDA runtime library; asking for device "cuda" without a GPU keeps the exact message
and still maps none; with a GPU, the CUDA build maps cuBLASLt and cuDNN then."""
import json
import os
import pathlib
import subprocess
import sys

import pytest

from util import model_path

ROOT = pathlib.Path(__file__).resolve().parents[2]

# Run in a child: this pytest process may have loaded the libraries already (test_cuda*.py).
CHILD = r"""
import json, sys
import numpy as np
import ductile

def mapped():
    maps = open("/proc/self/maps").read()
    return {lib: lib in maps for lib in ("libcublasLt", "libcudnn", "libcudart")}

out = {"import": mapped()}
builder = ductile.Builder()
network = builder.parse_onnx(sys.argv[1])
profile = builder.create_optimization_profile()
profile.set_shape("input", (1, 1, 8, 8), (1, 1, 8, 8), (1, 1, 8, 8))
config = builder.create_builder_config()
config.add_optimization_profile(profile)
engine = builder.build_engine(network, config)
context = engine.create_execution_context()
y = context.run({"input": np.ones((1, 1, 8, 8), np.float32)})
out["cpu_output_shape"] = list(y["output"].shape)
out["cpu_run"] = mapped()
try:
    config.device = "cuda"
    builder.build_engine(network, config)
    out["cuda"] = "gpu"
except ductile.Error as e:
    out["cuda"] = str(e)
out["cuda_asked"] = mapped()
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def child():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "python"),
                                                                     os.environ.get("PYTHONPATH")])))
    r = subprocess.run([sys.executable, "-c", CHILD, str(model_path("superres.onnx"))], capture_output=True,
                       text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


NONE = {"libcublasLt": False, "libcudnn": False, "libcudart": False}


def test_cpu_engine_maps_no_gpu_library(child):
    assert child["cpu_output_shape"] == [1, 1, 24, 24]
    assert child["import"] == NONE
    assert child["cpu_run"] == NONE


def test_cuda_without_gpu_keeps_its_message_and_maps_nothing(child):
    if child["cuda"].endswith("(built with CUDA=0)"):
        pytest.skip("built with CUDA=0")
    if child["cuda"] == "gpu":
        assert child["cuda_asked"]["libcublasLt"] and child["cuda_asked"]["libcudnn"]
    else:
        assert child["cuda"] == "no CUDA device found"
        assert child["cuda_asked"] == NONE
