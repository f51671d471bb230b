"""Loads libductile.so with ctypes and declares the prototypes of include/ductile.h.

Handles are opaque to Python, so every handle type is a c_void_p; only ductile_dims is a struct.
"""
import ctypes
import operator
import os
import pathlib

MAX_DIMS = 8

# ctypes converts a Python int to a C integer by keeping the low bits: 2**32 passed as an
# int32 becomes 0, and a dim of 2**64 + 64 becomes 64. Every int that goes to the library
# passes through c_int first, so a value the C type cannot hold is refused instead.
_C_RANGES = {
    "int32": (-2**31, 2**31 - 1),
    "int64": (-2**63, 2**63 - 1),
    "uint64": (0, 2**64 - 1),
}


def c_int(value, ctype, what):
    """value as an int that the C type ctype ("int32", "int64", "uint64") holds exactly.

    TypeError for a non-integer (a float would be truncated), ValueError naming `what` and
    the range otherwise. The library judges the value itself (a profile index that does not
    exist, a negative dim) with its own message."""
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{what} must be an integer, not {type(value).__name__} "
                        f"({value!r})") from None
    lo, hi = _C_RANGES[ctype]
    if not lo <= v <= hi:
        raise ValueError(f"{what} is {v}, outside the range of {ctype} ({lo}..{hi})")
    return v


class Dims(ctypes.Structure):
    _fields_ = [("nb_dims", ctypes.c_int32), ("d", ctypes.c_int64 * MAX_DIMS)]

    @classmethod
    def of(cls, shape, what="Dims: the shape"):
        """what names the call and the argument in messages ("set_input_shape: the shape of
        input 'x'")."""
        shape = tuple(shape)
        if len(shape) > MAX_DIMS:
            # Said here because the struct cannot even hold the shape to let the library judge it.
            raise ValueError(f"shape {shape} has {len(shape)} dims; ductile supports at most "
                             f"{MAX_DIMS}")
        dims = cls()
        dims.nb_dims = len(shape)
        for i, x in enumerate(shape):
            call, _, arg = what.rpartition(": ")
            dims.d[i] = c_int(x, "int64", f"{call}: dimension {i} of {arg}")
        return dims

    def to_tuple(self):
        if self.nb_dims < 0:
            return None
        return tuple(int(self.d[i]) for i in range(self.nb_dims))


class Item(ctypes.Structure):
    """ductile_item: one tensor of a sequence, or the tensor of an optional."""
    _fields_ = [("dtype", ctypes.c_int), ("dims", Dims), ("data", ctypes.c_void_p)]


class LayerTiming(ctypes.Structure):
    """ductile_layer_timing: one layer's report to a context's profiler."""
    _fields_ = [("layer", ctypes.c_char_p), ("op_type", ctypes.c_char_p), ("tactic", ctypes.c_char_p),
                ("ms", ctypes.c_double), ("flops", ctypes.c_double), ("index", ctypes.c_int32)]


PROFILER_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.POINTER(LayerTiming))


class Error(RuntimeError):
    """A failed library call. str(e) is the library's message; .status names the status code
    ("DUCTILE_ERR_SHAPE")."""

    def __init__(self, message, status):
        super().__init__(message)
        self.status = status


def _library_path():
    """$DUCTILE_LIB when set (an explicit choice wins), else the library inside the package
    (an installed wheel: _native/, written by setup.py), else the checkout's build/."""
    env = os.environ.get("DUCTILE_LIB")
    if env:
        return pathlib.Path(env)
    here = pathlib.Path(__file__).resolve().parent
    packaged = here / "_native" / "libductile.so"
    if packaged.is_file():
        return packaged
    return here.parents[1] / "build" / "libductile.so"


def _load():
    path = _library_path()
    try:
        return ctypes.CDLL(str(path))
    except OSError as e:
        raise ImportError(f"cannot load the ductile library at {path} ({e}); build it with "
                          "`make build/libductile.so`, install the package (pip install .) or point "
                          "DUCTILE_LIB at it") from e


lib = _load()

_S = ctypes.c_int        # ductile_status and the other enums travel as int
_P = ctypes.c_void_p     # every opaque handle
_PP = ctypes.POINTER(ctypes.c_void_p)
_STR = ctypes.c_char_p
_I32 = ctypes.c_int32
_DIMS_P = ctypes.POINTER(Dims)

_PROTOTYPES = {
    "ductile_status_name": (_STR, [_S]),
    "ductile_last_error": (_STR, []),
    "ductile_version": (_STR, []),
    "ductile_dtype_name": (_STR, [_S]),
    "ductile_dtype_size": (ctypes.c_size_t, [_S]),
    "ductile_builder_create": (_S, [_PP]),
    "ductile_builder_free": (None, [_P]),
    "ductile_network_create": (_S, [_P, _PP]),
    "ductile_network_free": (None, [_P]),
    "ductile_onnx_parse_file": (_S, [_P, _STR]),
    "ductile_onnx_parse_memory": (_S, [_P, ctypes.c_char_p, ctypes.c_size_t]),
    "ductile_network_num_inputs": (_I32, [_P]),
    "ductile_network_num_outputs": (_I32, [_P]),
    "ductile_network_num_layers": (_I32, [_P]),
    "ductile_network_get_input": (_P, [_P, _I32]),
    "ductile_network_get_output": (_P, [_P, _I32]),
    "ductile_network_get_layer": (_P, [_P, _I32]),
    "ductile_network_find_tensor": (_P, [_P, _STR]),
    "ductile_network_set_input_dims": (_S, [_P, _P, _DIMS_P]),
    "ductile_network_mark_output": (_S, [_P, _P]),
    "ductile_network_unmark_output": (_S, [_P, _P]),
    "ductile_network_add_activation": (_S, [_P, _P, _S, _PP]),
    "ductile_network_add_elementwise": (_S, [_P, _P, _P, _S, _PP]),
    "ductile_layer_name": (_STR, [_P]),
    "ductile_layer_op_type": (_STR, [_P]),
    "ductile_layer_num_inputs": (_I32, [_P]),
    "ductile_layer_num_outputs": (_I32, [_P]),
    "ductile_layer_get_input": (_P, [_P, _I32]),
    "ductile_layer_get_output": (_P, [_P, _I32]),
    "ductile_tensor_name": (_STR, [_P]),
    "ductile_tensor_dtype": (_S, [_P]),
    "ductile_tensor_dims": (Dims, [_P]),
    "ductile_tensor_dim_name": (_STR, [_P, _I32]),
    "ductile_tensor_is_input": (ctypes.c_int, [_P]),
    "ductile_tensor_is_output": (ctypes.c_int, [_P]),
    "ductile_profile_create": (_S, [_P, _PP]),
    "ductile_profile_free": (None, [_P]),
    "ductile_profile_set_shape": (_S, [_P, _STR, _DIMS_P, _DIMS_P, _DIMS_P]),
    "ductile_config_create": (_S, [_P, _PP]),
    "ductile_config_free": (None, [_P]),
    "ductile_config_add_profile": (_S, [_P, _P, ctypes.POINTER(_I32)]),
    "ductile_config_set_workspace": (_S, [_P, ctypes.c_uint64]),
    "ductile_config_set_threads": (_S, [_P, _I32]),
    "ductile_config_set_flag": (_S, [_P, _S, ctypes.c_int]),
    "ductile_config_has_precision": (ctypes.c_int, [_P, _S]),
    "ductile_config_set_progress": (_S, [_P, _P, _P]),
    "ductile_config_set_device": (_S, [_P, _STR]),
    "ductile_engine_device": (_STR, [_P]),
    "ductile_context_execute_async": (_S, [_P, _P]),
    "ductile_builder_build": (_S, [_P, _P, _P, _PP]),
    "ductile_engine_serialize": (_S, [_P, _PP, ctypes.POINTER(ctypes.c_size_t)]),
    "ductile_engine_save": (_S, [_P, _STR]),
    "ductile_engine_load_file": (_S, [_STR, _PP]),
    "ductile_engine_load_memory": (_S, [ctypes.c_char_p, ctypes.c_size_t, _PP]),
    "ductile_engine_free": (None, [_P]),
    "ductile_free": (None, [_P]),
    "ductile_engine_num_io_tensors": (_I32, [_P]),
    "ductile_engine_io_tensor_name": (_STR, [_P, _I32]),
    "ductile_engine_is_input": (ctypes.c_int, [_P, _STR]),
    "ductile_engine_tensor_dtype": (_S, [_P, _STR]),
    "ductile_engine_get_tensor_dims": (_S, [_P, _STR, _DIMS_P]),
    "ductile_engine_num_profiles": (_I32, [_P]),
    "ductile_engine_get_profile_shape": (_S, [_P, _I32, _STR, _S, _DIMS_P]),
    "ductile_engine_layer_info": (_STR, [_P]),
    "ductile_context_create": (_S, [_P, _PP]),
    "ductile_context_free": (None, [_P]),
    "ductile_context_set_threads": (_S, [_P, _I32]),
    "ductile_context_set_profile": (_S, [_P, _I32]),
    "ductile_context_get_profile": (_I32, [_P]),
    "ductile_context_set_input_shape": (_S, [_P, _STR, _DIMS_P]),
    "ductile_context_get_tensor_shape": (_S, [_P, _STR, _DIMS_P]),
    "ductile_context_set_tensor_address": (_S, [_P, _STR, _P]),
    "ductile_context_get_tensor_address": (_S, [_P, _STR, _PP]),
    "ductile_context_execute": (_S, [_P]),
    "ductile_context_set_cuda_graphs": (_S, [_P, _I32]),
    "ductile_context_get_cuda_graphs": (_I32, [_P]),
    "ductile_context_get_memory_size": (_S, [_P, ctypes.POINTER(ctypes.c_uint64)]),
    "ductile_context_set_profiler": (_S, [_P, PROFILER_FN, _P]),
    "ductile_engine_tensor_kind": (ctypes.c_int, [_P, _STR]),
    "ductile_engine_tensor_location": (ctypes.c_int, [_P, _STR]),
    "ductile_context_set_sequence": (_S, [_P, _STR, ctypes.c_void_p, ctypes.c_int64]),
    "ductile_context_get_sequence": (_S, [_P, _STR, _PP, ctypes.POINTER(ctypes.c_int64)]),
}

for _name, (_res, _args) in _PROTOTYPES.items():
    _fn = getattr(lib, _name)
    _fn.restype = _res
    _fn.argtypes = _args


def text(raw):
    """A library string (bytes or NULL) as str or None."""
    return None if raw is None else raw.decode("utf-8")


def enc(name):
    """A str for a const char * argument. A NUL inside would silently cut the string short
    in C (ctypes passes the bytes as they are), so it is refused."""
    raw = os.fsencode(name) if isinstance(name, os.PathLike) else str(name).encode("utf-8")
    if b"\0" in raw:
        raise ValueError(f"{name!r} contains a NUL character, which no ductile name or path "
                         "may hold")
    return raw


def check(status):
    """Raises Error with the library's message when a call did not return DUCTILE_OK."""
    if status != 0:
        # Read at once: the message is per thread and replaced by the next failing call.
        message = text(lib.ductile_last_error()) or ""
        raise Error(message, text(lib.ductile_status_name(status)))


def new_handle(create, *args):
    """Calls a ductile_*_create(..., **out) and returns the handle."""
    out = ctypes.c_void_p()
    check(create(*args, ctypes.byref(out)))
    return out.value


def free_quietly(free, handle):
    """For __del__: at interpreter shutdown the library function may already be gone."""
    if handle and free is not None:
        try:
            free(handle)
        except Exception:  # noqa: BLE001 — nothing sensible to do in a finalizer
            pass
