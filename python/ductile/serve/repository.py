"""A Triton model repository for ductile engines, the layout Triton (and KServe's Triton
runtime) loads:

    DIR/NAME/config.pbtxt       inputs, outputs, dims and batching, from the engine
    DIR/NAME/1/model.py         the Python backend model: ductile.serve.triton_model
    DIR/NAME/1/model.engine     the engine, copied

The same layout serves one machine (`python -m ductile.serve`, which writes one in a
temporary folder) and a cluster (`--export-repository DIR`, then deploy/). On one machine the
model's engine lives in the serve process (host.py), shared by every instance: model.py
then loads triton_model.py by path (FORWARD_PY), the config names the host's socket, and no
engine is copied.
"""
import os
import re
import shutil

from .signature import read_signature

MODEL_PY = '''"""Triton Python backend model: a ductile engine (written by python -m ductile.serve).
Needs the ductile package (pip install ductile) in the Python that runs Triton's stub."""
{path}from ductile.serve.triton_model import TritonPythonModel  # noqa: F401
'''
# For a repository served on this machine: the stub imports the ductile that wrote it (a
# checkout's python/, say), as the stub ignores PYTHONPATH.
PATH_LINE = "import sys\nsys.path.insert(0, {!r})\n"

# A stub that forwards to the engine's host: triton_model.py and wire.py by path, so that
# the stub never imports the ductile package (nor loads its library).
FORWARD_PY = '''"""Triton Python backend model: forwards to the ductile engine in the serve process
(written by python -m ductile.serve)."""
import sys
sys.path.insert(0, {serve_dir!r})
from triton_model import TritonPythonModel  # noqa: F401
'''

# Triton and Kubernetes both take names like these; a name is a folder and a URL part.
NAME = re.compile(r"^[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?$")


def parse_model_arg(text):
    """"NAME=FILE.engine" -> (name, path); ValueError naming what is wrong."""
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise ValueError(f"--model '{text}': expected NAME=FILE.engine")
    if not NAME.match(name):
        raise ValueError(f"--model '{text}': the name '{name}' must be 1 to 63 lowercase "
                         "letters, digits, '-' or '_', starting and ending with a letter or digit")
    if not os.path.isfile(path):
        raise ValueError(f"--model '{text}': no engine file at '{path}'")
    return name, path


def export_model(repository, name, engine_path, instances=1, max_batch=None,
                 queue_delay_us=100, dynamic_batching=True, threads=0, signature=None,
                 import_path=None, host_socket=None):
    """Writes repository/name/{config.pbtxt, 1/model.py, 1/model.engine}; returns the
    Signature read from the engine. import_path: a folder the model imports ductile from
    (local serving); None: the serving Python's installed package (a cluster's image).
    host_socket: the Unix socket of the serve process that holds the engine (host.py)."""
    sig = signature or read_signature(engine_path)
    config = sig.config_pbtxt(name, instances=instances, max_batch=max_batch,
                              queue_delay_us=queue_delay_us, dynamic_batching=dynamic_batching,
                              threads=threads)
    if host_socket:
        config += (f'parameters {{ key: "host_socket" value: {{ string_value: '
                   f'"{host_socket}" }} }}\n')
    version = os.path.join(repository, name, "1")
    os.makedirs(version, exist_ok=True)
    with open(os.path.join(repository, name, "config.pbtxt"), "w", encoding="utf-8") as f:
        f.write(config)
    with open(os.path.join(version, "model.py"), "w", encoding="utf-8") as f:
        if host_socket:
            f.write(FORWARD_PY.format(serve_dir=os.path.dirname(os.path.abspath(__file__))))
        else:
            f.write(MODEL_PY.format(path=PATH_LINE.format(import_path) if import_path else ""))
    if not host_socket:
        shutil.copyfile(engine_path, os.path.join(version, "model.engine"))
    return sig
