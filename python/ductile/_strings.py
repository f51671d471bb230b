"""String tensors across ctypes: a ductile buffer of dtype string is an array of
ductile_string {const char *data; size_t length} views (include/ductile.h); Python holds them
as numpy object arrays of str (bytes are taken too, as raw bytes)."""
import ctypes

import numpy as np

STRING = 8


class DuctileString(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("length", ctypes.c_size_t)]


class Packed:
    """Views of an array's strings in one bytes buffer; keeps both alive while bound."""

    def __init__(self, arr):
        flat = np.asarray(arr, dtype=object).reshape(-1)
        parts = []
        for i, x in enumerate(flat):
            if isinstance(x, str):
                parts.append(x.encode("utf-8"))
            elif isinstance(x, (bytes, bytearray, np.bytes_)):
                parts.append(bytes(x))
            else:
                raise TypeError(f"string tensor element {i} is a {type(x).__name__}, not str or bytes")
        self.blob = ctypes.create_string_buffer(b"".join(parts) or b"\0")
        self.views = (DuctileString * max(len(parts), 1))()
        base, pos = ctypes.addressof(self.blob), 0
        for i, b in enumerate(parts):
            self.views[i].data = base + pos if b else None
            self.views[i].length = len(b)
            pos += len(b)
        self.address = ctypes.addressof(self.views)


def empty_views(count):
    """A buffer for count views (an output the context writes)."""
    return (DuctileString * max(int(count), 1))()


def unpack(address, shape):
    """An object array of str (bytes where an element is not UTF-8) from views at address."""
    n = int(np.prod(shape, dtype=np.int64)) if len(shape) else 1
    out = np.empty(n, dtype=object)
    if n:
        views = (DuctileString * n).from_address(address)
        for i in range(n):
            raw = ctypes.string_at(views[i].data, views[i].length) if views[i].length else b""
            try:
                out[i] = raw.decode("utf-8")
            except UnicodeDecodeError:
                out[i] = raw
    return out.reshape(shape)
