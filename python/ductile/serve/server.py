"""Triton Inference Server, as nvidia-pytriton bundles it, started on a model repository.

PyTriton's wheel (pinned in requirements-serve.txt) carries tritonserver, its Python backend
and one backend stub per Python version; we start that server ourselves on our repository
rather than through PyTriton's bind(), because the Python backend lets each request of a batch
fail alone with a 400 and ductile's message (PyTriton fails a whole batch with a 500 and a
traceback), and because it is the very repository a cluster serves. (Its proxy model also
makes outputs with Tensor(name, array), which this stub sends empty under numpy 2:
triton_model.py says why.) bind() would have run K instances as threads of one process on one
engine; host.py gives our model the same: the engines stay in the serve process, the stubs
forward to them.

The stub embeds the system's libpython (on Debian, /usr/lib/x86_64-linux-gnu/libpython3.X)
and takes the standard library and site-packages of the `python3` first on PATH, this
venv's. When the venv was made by another Python (pyenv's 3.11.7 over Debian's 3.11.2), the
stub runs 3.11.2's C core under 3.11.7's pure-Python standard library: our model, which
imports little of it, works (tests/python/test_serve.py passes that way), but standard
modules that need the newer core fail (multiprocessing's resource tracker, which PyTriton's
own proxy model uses: '_thread.RLock' object has no attribute '_recursion_count'). So a
mismatch is a warning (stub_mismatch); a venv made with Debian's /usr/bin/python3 has none.
"""
import importlib.util
import os
import pathlib
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

LOOPBACK = "127.0.0.1"


def pytriton_dir():
    """nvidia-pytriton's package folder (not imported: it wants numpy 1.x), or None."""
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        return None
    return pathlib.Path(list(spec.submodule_search_locations)[0])


def missing_reason():
    """Why this Python cannot serve (a sentence), or None when it can."""
    root = pytriton_dir()
    if root is None:
        return ("nvidia-pytriton is not installed in this Python (requirements-serve.txt; "
                "`make serve-deps` installs it into .venv)")
    if not (root / "tritonserver" / "bin" / "tritonserver").is_file():
        return f"nvidia-pytriton at {root} has no bundled tritonserver"
    if not _stub(root).is_file():
        return f"nvidia-pytriton has no backend stub for Python {platform.python_version()}"
    return None


def _stub(root):
    return root / "tritonserver" / "python_backend_stubs" / \
        f"{sys.version_info[0]}.{sys.version_info[1]}" / "triton_python_backend_stub"


def _libs(root):
    return root.parent / "nvidia_pytriton.libs"


def stub_mismatch():
    """None when the bundled stub embeds this venv's Python; else a warning saying so."""
    root = pytriton_dir()
    stub = _stub(root)
    env = dict(os.environ, LD_LIBRARY_PATH=_ld_path(root))
    try:
        ldd = subprocess.run(["ldd", str(stub)], capture_output=True, text=True, env=env,
                             timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"cannot inspect the backend stub {stub}: {e}"
    m = re.search(r"(libpython\S+)\s*=>\s*(\S+)", ldd)
    if not m or m.group(2) == "not":
        return (f"the backend stub {stub} needs {m.group(1) if m else 'libpython'}, which is "
                "not installed (Debian: apt-get install libpython3-dev)")
    # The library's version, read in a child (loading a second libpython here is no business
    # of this process).
    probe = ("import ctypes,sys; f=ctypes.CDLL(sys.argv[1]).Py_GetVersion; "
             "f.restype=ctypes.c_char_p; print(f().decode().split()[0])")
    try:
        lib_version = subprocess.run([sys.executable, "-c", probe, m.group(2)], timeout=20,
                                     capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"cannot read the version of {m.group(2)}: {e}"
    if lib_version != platform.python_version():
        return (f"Triton's Python backend stub (bundled with nvidia-pytriton) embeds "
                f"{m.group(2)} (Python {lib_version}) but this venv runs Python "
                f"{platform.python_version()} ({sys.base_prefix}): the stub will run its "
                "own core under this venv's standard library, where modules that need the "
                "newer core fail; make the venv with that Python "
                "(Debian: /usr/bin/python3 -m venv)")
    return None


def _ld_path(root):
    old = os.environ.get("LD_LIBRARY_PATH")
    return f"{_libs(root)}:{old}" if old else str(_libs(root))


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    import socket
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def http_ready(http_url):
    """Whether the server at host:port answers KServe v2's readiness probe (server and models
    ready); False while it is not listening yet."""
    try:
        with urllib.request.urlopen(f"http://{http_url}/v2/health/ready", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


class TritonServer:
    """tritonserver on a repository, bound to `address`. own_group: in a process group of
    its own (with its stubs), which stop() kills whole; else in the caller's group, so that
    whoever kills the caller's group (a test, a terminal's Ctrl-C) reaches the server too."""

    def __init__(self, repository, http_port, grpc_port, metrics_port=None, address=LOOPBACK,
                 log_path=None, exit_timeout_s=5, own_group=True):
        self.own_group = own_group
        self.repository = os.fspath(repository)
        self.address = address
        self.http_port, self.grpc_port = http_port, grpc_port
        self.metrics_port = metrics_port
        self.exit_timeout_s = exit_timeout_s
        self.log_path = log_path
        self.proc = None
        self._work = None
        self._log = None

    @property
    def http_url(self):
        return f"{self.address}:{self.http_port}"

    @property
    def grpc_url(self):
        return f"{self.address}:{self.grpc_port}"

    def _backends(self):
        """A backend folder with the Python backend and this Python's stub beside it, where
        the backend looks for it."""
        root = pytriton_dir()
        self._work = tempfile.mkdtemp(prefix="ductile-triton-")
        python = pathlib.Path(self._work, "backends", "python")
        shutil.copytree(root / "tritonserver" / "backends" / "python", python,
                        ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(_stub(root), python / "triton_python_backend_stub")
        return root, python.parent

    def start(self):
        why = missing_reason()
        if why:
            raise RuntimeError(why)
        root, backends = self._backends()
        cmd = [str(root / "tritonserver" / "bin" / "tritonserver"),
               f"--model-repository={self.repository}", f"--backend-directory={backends}",
               f"--cache-directory={root / 'tritonserver' / 'caches'}",
               f"--http-address={self.address}", f"--http-port={self.http_port}",
               f"--grpc-address={self.address}", f"--grpc-port={self.grpc_port}",
               f"--exit-timeout-secs={self.exit_timeout_s}", "--strict-readiness=true",
               "--allow-gpu-metrics=false"]
        if self.metrics_port:
            cmd += [f"--metrics-address={self.address}", f"--metrics-port={self.metrics_port}"]
        else:
            cmd += ["--allow-metrics=false"]
        # The stub takes the standard library and site-packages of the `python3` first on
        # PATH: this one's.
        env = dict(os.environ, LD_LIBRARY_PATH=_ld_path(root),
                   PATH=f"{pathlib.Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
        self._log = open(self.log_path, "wb") if self.log_path else None
        self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL,
                                     stdout=self._log or subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT, start_new_session=self.own_group)
        return self

    def ready(self):
        return http_ready(self.http_url)

    def wait_ready(self, timeout_s=60):
        """Until the server and every model are ready; RuntimeError with the log's tail when
        it exits or the time runs out."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"tritonserver exited with status {self.proc.returncode} "
                                   f"before it was ready\n{self.log_tail()}")
            if self.ready():
                return self
            time.sleep(0.2)
        raise RuntimeError(f"tritonserver not ready after {timeout_s} s\n{self.log_tail()}")

    def log_tail(self, chars=4000):
        if not self.log_path or not os.path.exists(self.log_path):
            return "(no log kept)"
        with open(self.log_path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - chars))
            return f.read().decode("utf-8", "replace")

    def stop(self):
        """SIGTERM to the server, which unloads its models and stops their stubs; then
        SIGKILL for anything left by the server's own exit timeout plus a margin (its whole
        process group when it has its own)."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout=self.exit_timeout_s + 5)
            except subprocess.TimeoutExpired:
                pass
            except ProcessLookupError:
                pass
        if self.proc is not None:
            try:
                if self.own_group:
                    os.killpg(self.proc.pid, signal.SIGKILL)  # stubs that outlived the server
                elif self.proc.poll() is None:
                    self.proc.kill()
            except (ProcessLookupError, PermissionError):
                pass
            self.proc.wait(timeout=10)
        if self._log:
            self._log.close()
            self._log = None
        if self._work:
            shutil.rmtree(self._work, ignore_errors=True)
            self._work = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
