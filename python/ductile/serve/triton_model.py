"""The Triton Python backend model that serves a ductile engine: each model repository that
`python -m ductile.serve` writes has a 1/model.py importing this class.

Two ways to run, chosen by the config's parameters:
- host_socket set (`python -m ductile.serve` on this machine): the model's one engine lives
  in the serve process (host.py) and this instance forwards each execute's requests there
  over a Unix socket (wire.py); the stub then loads this file by path, never the ductile
  package, so it holds neither the library nor an engine.
- otherwise (an exported repository, a cluster's image): each instance is a stub process
  that loads the engine itself and owns its execution contexts (runner.py).
Either way execute() gets the requests Triton's dynamic batcher gathered; batcher.py judges,
groups, concatenates, runs and splits them (in the host, or here).

Tensors cross between Triton and numpy through DLPack (np.from_dlpack, Tensor.from_dlpack),
not as_numpy()/Tensor(name, array): the backend stub bundled with nvidia-pytriton 0.7.0 was
built against numpy 1.x, and under numpy 2 an output made with Tensor(name, array) reaches
the client with 0 bytes; the DLPack path does not look inside numpy's structs at all.
The stub renames a capsule it consumed "used_dlpack" where numpy expects "used_dltensor", so
numpy's capsule destructor reports a ValueError, harmless since the stub owns the tensor by
then and frees it through the DLPack deleter; _quiet_capsules keeps that report (one per
output) out of the log.
"""
import json
import os
import sys

import numpy as np

try:
    import triton_python_backend_utils as pb_utils
except ImportError:  # imported outside Triton (tests stand a fake one in)
    pb_utils = None

try:
    from . import wire
except ImportError:  # loaded by file in a stub that forwards to the engine's host
    import wire

# ductile statuses that mean "this request is wrong" (HTTP 400, gRPC INVALID_ARGUMENT); any
# other failure is the server's (500, INTERNAL).
CLIENT_STATUSES = {"DUCTILE_ERR_SHAPE", "DUCTILE_ERR_PROFILE", "DUCTILE_ERR_INVALID_ARGUMENT"}


def _param(config, key, default):
    value = config.get("parameters", {}).get(key, {}).get("string_value")
    return default if value in (None, "") else value


def _quiet_capsules():
    previous = sys.unraisablehook

    def hook(unraisable):
        # numpy reports it with no object (PyErr_WriteUnraisable(NULL)).
        if (unraisable.object is None and isinstance(unraisable.exc_value, ValueError)
                and "PyCapsule_GetPointer called with incorrect name" in str(unraisable.exc_value)):
            return
        previous(unraisable)
    sys.unraisablehook = hook


class TritonPythonModel:
    def initialize(self, args):
        _quiet_capsules()
        config = json.loads(args["model_config"])
        here = os.path.join(args["model_repository"], args["model_version"])
        self.inputs = [t["name"] for t in config["input"]]
        self.outputs = [t["name"] for t in config["output"]]
        self.runner = self.stats = self.remote = None
        host = _param(config, "host_socket", "")
        if host:
            self.remote = wire.Client(host, config["name"], os.getpid())
        else:
            from ductile.serve.batcher import Stats
            self.runner = self.make_runner(config, here)
            self.stats = Stats()
            # The profile's max batch (executes never exceed it); Triton's max_batch_size is
            # only the bound on what it gathers (signature.py).
            self.max_batch = int(_param(config, "max_batch",
                                        str(config.get("max_batch_size", 0))))
        self._metrics(config["name"])

    def make_runner(self, config, here):
        """The runner batcher.py drives: check(feeds), run(feeds). bench/serve_bench.py
        serves onnxruntime through this same class by overriding this method."""
        from ductile.serve.runner import EngineRunner
        path = _param(config, "engine", "model.engine")
        return EngineRunner(path if os.path.isabs(path) else os.path.join(here, path),
                            threads=int(_param(config, "threads", "0")))

    def _metrics(self, model):
        """Counters on Triton's /metrics: how many executes ductile ran and how many requests
        they served (their ratio is the batching that happened inside the engine)."""
        self._executes = self._served = None
        family = getattr(pb_utils, "MetricFamily", None)
        if family is None:
            return
        try:
            ex = family(name="ductile_executes_total", description="ductile engine executes",
                        kind=family.COUNTER)
            rq = family(name="ductile_requests_total",
                        description="requests served by ductile engine executes",
                        kind=family.COUNTER)
            labels = {"model": model, "pid": str(os.getpid())}
            self._families = (ex, rq)
            self._executes, self._served = ex.Metric(labels=labels), rq.Metric(labels=labels)
        except Exception:  # metrics are a convenience: never what stops a model from loading
            self._executes = self._served = None

    def _run(self, feeds):
        """Per request, {output: array} or an error with .status; and (executes run,
        requests they served)."""
        if self.remote is None:
            from ductile.serve.batcher import run_requests
            before = (self.stats.executes, self.stats.requests)
            results = run_requests(feeds, self.runner, self.max_batch, self.stats)
            return results, (self.stats.executes - before[0], self.stats.requests - before[1])
        try:
            return self.remote.run(feeds)
        except (ConnectionError, OSError, ValueError) as e:
            gone = wire.RemoteError(f"ductile.serve: the engine's host ({self.remote.path}) "
                                    f"did not answer: {e}", "DUCTILE_ERR_INTERNAL")
            return [gone] * len(feeds), (0, 0)

    def execute(self, requests):
        feeds = []
        for request in requests:
            feeds.append({name: np.from_dlpack(pb_utils.get_input_tensor_by_name(request, name))
                          for name in self.inputs})
        results, (executes, served) = self._run(feeds)
        if self._executes is not None:
            self._executes.increment(executes)
            self._served.increment(served)
        responses = []
        for request, result in zip(requests, results):
            if not isinstance(result, dict):  # ductile.Error, or the host's RemoteError
                code = (pb_utils.TritonError.INVALID_ARG if result.status in CLIENT_STATUSES
                        else pb_utils.TritonError.INTERNAL)
                responses.append(pb_utils.InferenceResponse(
                    error=pb_utils.TritonError(str(result), code)))
                continue
            wanted = request.requested_output_names() or self.outputs
            tensors = [pb_utils.Tensor.from_dlpack(name, _dlpack_ready(result[name]))
                       for name in self.outputs if name in wanted]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
        return responses

    def finalize(self):
        self.runner = None
        if self.remote is not None:
            self.remote.close()
            self.remote = None


def _dlpack_ready(array):
    """C-contiguous and writable-agnostic, as the stub copies it out."""
    return np.ascontiguousarray(array)
