"""One engine per served model, shared by every Triton instance of that model.

Triton's Python backend runs each model instance (instance_group count K) in a stub process
of its own; loading the engine there would give K copies. So `python -m ductile.serve` loads
each engine once, in its own process, and the stubs forward to it (triton_model.py, which
then never loads the library): each stub connects to its model's Unix socket, and gets here
a thread and a runner of its own, that is its own execution contexts on the shared engine
(the engine is immutable; a context belongs to one thread). Triton calls an instance's
execute on one thread at a time, so the instance's thread here owns its contexts, and K
instances run K executes at once (the library releases the GIL).

Batching stays where it was: Triton's dynamic batcher hands an instance the requests that
arrived together; batcher.py, run here on that instance's runner, groups, concatenates, runs
and splits them, and a refused request gets its own error.

The exported repository (--export-repository) keeps the engine inside each stub, as a cluster
image has no such host process.
"""
import os
import socket
import threading

from . import wire
from .batcher import Stats, run_requests


class ModelHost:
    """Listens on `path` for the instances of model `name`. new_runner(): a runner for one
    instance (check(feeds), run(feeds)), all on the one engine; log(line): where attach and
    detach lines go."""

    def __init__(self, name, path, new_runner, max_batch, log=None):
        self.name, self.path = name, path
        self.new_runner = new_runner
        self.max_batch = max_batch
        self.log = log or (lambda line: None)
        self.instances = []  # (stub pid, runner, Stats) of the instances attached now
        self.attached = 0  # instances attached so far (a reloaded model attaches anew)
        self._lock = threading.Lock()
        self._sock = None
        self._threads = []
        self._conns = []
        self.closing = False  # set before Triton stops: detaches are then expected, not logged

    def start(self):
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(self.path)
        os.chmod(self.path, 0o600)  # this user's stubs only
        self._sock.listen(64)
        t = threading.Thread(target=self._accept, args=(self._sock,), daemon=True,
                             name=f"ductile-host-{self.name}")
        t.start()
        self._threads.append(t)
        return self

    def _accept(self, listening):
        # The socket is passed in, not read from self: stop() clears self._sock under us.
        while True:
            try:
                conn, _ = listening.accept()
            except OSError:  # closed by stop()
                return
            with self._lock:
                self._conns.append(conn)
            self._threads = [t for t in self._threads if t.is_alive()]
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True,
                                 name=f"ductile-instance-{self.name}")
            t.start()
            self._threads.append(t)

    def _serve(self, conn):
        pid = entry = None
        try:
            meta, _ = wire.recv(conn)
            if meta.get("op") != "hello" or meta.get("model") != self.name:
                wire.send(conn, {"error": f"this socket serves model '{self.name}', not "
                                          f"{meta.get('model')!r}"})
                return
            pid = meta.get("pid")
            runner, stats = self.new_runner(), Stats()
            entry = (pid, runner, stats)
            with self._lock:
                self.instances.append(entry)
                self.attached += 1
                n = self.attached
            self.log(f"ductile.serve: {self.name}: instance {n} (stub pid {pid}) attached to "
                     f"the engine in pid {os.getpid()}")
            wire.send(conn, {"host_pid": os.getpid(), "instance": n})
            while True:
                meta, arrays = wire.recv(conn)
                requests = wire.unpack_requests(meta["requests"], arrays)
                before = (stats.executes, stats.requests)
                try:
                    results = run_requests(requests, runner, self.max_batch, stats)
                except Exception as e:  # a bug here: every request of the call says so
                    results = [wire.RemoteError(f"ductile.serve: {type(e).__name__}: {e}",
                                                "DUCTILE_ERR_INTERNAL")] * len(requests)
                rmeta, rarrays = wire.pack_results(results)
                wire.send(conn, {"results": rmeta, "executes": stats.executes - before[0],
                                 "served": stats.requests - before[1]}, rarrays)
        except (ConnectionError, OSError, ValueError, KeyError):
            pass  # the stub went away (Triton unloads the model or stops) or spoke nonsense
        finally:
            conn.close()
            with self._lock:
                if entry in self.instances:  # its contexts go with it
                    self.instances.remove(entry)
                if conn in self._conns:
                    self._conns.remove(conn)
            if entry is not None and not self.closing:
                self.log(f"ductile.serve: {self.name}: instance (stub pid {pid}) detached")

    def stop(self):
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._sock.close()
            self._sock = None
        with self._lock:
            for c in self._conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        for t in self._threads:
            t.join(timeout=5)
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
