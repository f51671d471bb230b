"""Shared by tests/python/test_serve*.py: small engines of the suite's models (profiles kept
small so a 2-core machine serves them quickly), and a `python -m ductile.serve` started on
loopback in its own process group, stopped and killed whatever happens."""
import os
import signal
import subprocess
import sys
import time
import types
import urllib.request

import numpy as np
import pytest

import ductile
from util import REPO, model_path

# name -> (model file, {input: (min, opt, max)})
ENGINES = {
    "bert": ("bert_small.onnx",
             {"input_ids": ((1, 1), (2, 16), (4, 64)),
              "attention_mask": ((1, 1), (2, 16), (4, 64))}),
    "sr": ("superres.onnx", {"input": ((1, 1, 16, 16), (2, 1, 32, 32), (4, 1, 64, 64))}),
}


def build_engine(key, path):
    filename, profile = ENGINES[key]
    builder = ductile.Builder()
    network = builder.parse_onnx(model_path(filename))
    p = builder.create_optimization_profile()
    for name, (lo, opt, hi) in profile.items():
        p.set_shape(name, lo, opt, hi)
    config = builder.create_builder_config()
    config.add_optimization_profile(p)
    builder.build_engine(network, config).save(path)
    return path


def require_server():
    """Skips, with the reason, when this Python cannot run the bundled Triton."""
    from ductile.serve.server import missing_reason
    why = missing_reason()
    if why:
        pytest.skip(f"serving tests need Triton: {why}")


class ServeProcess:
    """python -m ductile.serve ARGS on free loopback ports."""

    def __init__(self, args, log_dir):
        from ductile.serve.server import free_port
        self.http_port, self.grpc_port, self.metrics_port = free_port(), free_port(), free_port()
        self.out_path = os.path.join(log_dir, "serve.out")
        self.log_path = os.path.join(log_dir, "triton.log")
        cmd = [sys.executable, "-m", "ductile.serve", *args,
               "--http-port", str(self.http_port), "--grpc-port", str(self.grpc_port),
               "--metrics-port", str(self.metrics_port), "--log", self.log_path]
        env = dict(os.environ, PYTHONPATH=str(REPO / "python"))
        self._out = open(self.out_path, "wb")
        self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=self._out,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def http_url(self):
        return f"127.0.0.1:{self.http_port}"

    @property
    def grpc_url(self):
        return f"127.0.0.1:{self.grpc_port}"

    def output(self):
        with open(self.out_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def ready(self):
        from ductile.serve.server import http_ready
        return http_ready(self.http_url)

    def wait_ready(self, timeout_s=90):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ductile.serve exited ({self.proc.returncode}):\n"
                                   f"{self.output()}")
            if self.ready():
                return self
            time.sleep(0.2)
        raise RuntimeError(f"ductile.serve not ready after {timeout_s} s:\n{self.output()}")

    def metrics(self):
        """{(metric, model): value summed over label sets} from /metrics."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics",
                                    timeout=5) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            if line.startswith("#") or "{" not in line:
                continue
            name, rest = line.split("{", 1)
            labels, value = rest.rsplit("}", 1)
            model = dict(kv.split("=", 1) for kv in labels.split(",") if "=" in kv).get("model")
            key = (name, (model or "").strip('"'))
            out[key] = out.get(key, 0.0) + float(value)
        return out

    def group_alive(self):
        try:
            os.killpg(self.proc.pid, 0)
            return True
        except ProcessLookupError:
            return False

    def kill(self):
        """SIGKILL to the whole group (the CLI, tritonserver, the stubs)."""
        if self.group_alive():
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self._out.close()


class Tensor:
    """Triton's pb_utils.Tensor as far as the model uses it: DLPack both ways."""

    def __init__(self, name, array):
        self.name, self.array = name, array

    def __dlpack__(self, stream=None, **kwargs):
        return self.array.__dlpack__(stream=stream, **kwargs)

    def __dlpack_device__(self):
        return self.array.__dlpack_device__()

    @staticmethod
    def from_dlpack(name, obj):
        return Tensor(name, np.from_dlpack(obj).copy())


class TritonError:
    INTERNAL, INVALID_ARG = "INTERNAL", "INVALID_ARG"

    def __init__(self, message, code="UNKNOWN"):
        self.message, self.code = message, code


class Response:
    def __init__(self, output_tensors=None, error=None):
        self.output_tensors, self.error = output_tensors, error


class Request:
    def __init__(self, feeds):
        self.feeds = feeds

    def requested_output_names(self):
        return []


def stand_in_backend():
    """A stand-in of Triton's triton_python_backend_utils, as far as triton_model.py uses it."""
    m = types.ModuleType("triton_python_backend_utils")
    m.Tensor, m.TritonError, m.InferenceResponse = Tensor, TritonError, Response
    m.get_input_tensor_by_name = lambda r, name: Tensor(name, r.feeds[name])
    return m


def model_config_dict(path):
    """A config.pbtxt as Triton hands it to initialize(): JSON with the proto's field names."""
    mc = pytest.importorskip("tritonclient.grpc.model_config_pb2",
                             reason="tritonclient (requirements-serve.txt) parses config.pbtxt")
    from google.protobuf import json_format, text_format
    with open(path, encoding="utf-8") as f:
        config = text_format.Parse(f.read(), mc.ModelConfig())
    return json_format.MessageToDict(config, preserving_proto_field_name=True)
