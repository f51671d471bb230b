"""The messages between a Triton model instance (a Python backend stub process) and the
process that holds the model's one engine (host.py), over a Unix socket.

A message is an 8-byte little-endian length, that many bytes of JSON (the metadata, with
"arrays": [[dtype, shape], ...]), then each array's bytes in order, C-contiguous. Arrays are
received into fresh buffers and viewed by numpy without another copy. JSON and raw bytes, not
pickle: nothing received is ever executed.

Imports nothing of ductile: the stub loads this module (and triton_model.py) by file, so a
stub that forwards to a host never loads the library, let alone an engine.
"""
import json
import socket
import struct

import numpy as np

_LENGTH = struct.Struct("<Q")
# A bound on one message's metadata; arrays are bounded by their declared shapes.
MAX_META = 1 << 24


class RemoteError(Exception):
    """A request's failure as the host reported it: the library's message and its status
    name ("DUCTILE_ERR_PROFILE"), as ductile.Error carries them."""

    def __init__(self, message, status):
        super().__init__(message)
        self.status = status


def _exact(sock, n):
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            raise ConnectionError("the peer closed the connection")
        got += k
    return buf


def send(sock, meta, arrays=()):
    arrays = [np.ascontiguousarray(a) for a in arrays]
    head = dict(meta, arrays=[[a.dtype.str, list(a.shape)] for a in arrays])
    data = json.dumps(head).encode()
    sock.sendall(_LENGTH.pack(len(data)) + data)
    for a in arrays:
        if a.nbytes:
            sock.sendall(a.reshape(-1).view(np.uint8))


def recv(sock):
    """(meta, [arrays]); ConnectionError when the peer has gone."""
    (n,) = _LENGTH.unpack(_exact(sock, _LENGTH.size))
    if n > MAX_META:
        raise ConnectionError(f"a message's metadata of {n} bytes (at most {MAX_META})")
    meta = json.loads(bytes(_exact(sock, n)))
    arrays = []
    for dtype, shape in meta.pop("arrays"):
        dt = np.dtype(dtype)
        count = 1
        for d in shape:
            count *= d
        arrays.append(np.frombuffer(_exact(sock, count * dt.itemsize), dt).reshape(shape))
    return meta, arrays


def pack_requests(requests):
    """[{input: array}] -> (metadata names per request, arrays in order)."""
    names = [list(feeds) for feeds in requests]
    return names, [feeds[n] for feeds, ns in zip(requests, names) for n in ns]


def unpack_requests(names, arrays):
    out, k = [], 0
    for ns in names:
        out.append(dict(zip(ns, arrays[k:k + len(ns)])))
        k += len(ns)
    return out


def pack_results(results):
    """[{output: array} | exception with .status] -> (metadata, arrays)."""
    meta, arrays = [], []
    for r in results:
        if isinstance(r, dict):
            meta.append({"outputs": list(r)})
            arrays += list(r.values())
        else:
            meta.append({"error": str(r), "status": getattr(r, "status", "DUCTILE_ERR_INTERNAL")})
    return meta, arrays


def unpack_results(meta, arrays):
    out, k = [], 0
    for m in meta:
        if "error" in m:
            out.append(RemoteError(m["error"], m["status"]))
            continue
        names = m["outputs"]
        out.append(dict(zip(names, arrays[k:k + len(names)])))
        k += len(names)
    return out


class Client:
    """A stub's connection to the host of its model: hello once, then run(requests)."""

    def __init__(self, path, model, pid, timeout_s=30):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout_s)
        self.sock.connect(path)
        self.sock.settimeout(None)  # an execute takes as long as the engine does
        send(self.sock, {"op": "hello", "model": model, "pid": pid})
        self.hello, _ = recv(self.sock)
        if "error" in self.hello:
            raise ConnectionError(self.hello["error"])

    def run(self, requests):
        """Per request: {output: array} or RemoteError; and (executes, requests served)."""
        names, arrays = pack_requests(requests)
        send(self.sock, {"op": "run", "requests": names}, arrays)
        meta, arrays = recv(self.sock)
        return unpack_results(meta["results"], arrays), (meta["executes"], meta["served"])

    def close(self):
        self.sock.close()
