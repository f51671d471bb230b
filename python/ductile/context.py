"""Execution contexts: shapes, buffers and execution; run() is the numpy-in, numpy-out path."""
import ctypes

import numpy as np

from ._enums import TensorIOMode
from ._lib import Dims, Error, check, enc, free_quietly, lib, new_handle


class ExecutionContext:
    def __init__(self, engine):
        # The C context reads the engine on every call; holding it keeps it alive.
        self._engine = engine
        self._handle = new_handle(lib.ductile_context_create, engine._handle)
        self._free = lib.ductile_context_free
        names = engine.io_tensor_names
        self._inputs = [n for n in names if engine.get_tensor_mode(n) == TensorIOMode.INPUT]
        self._outputs = [n for n in names if engine.get_tensor_mode(n) == TensorIOMode.OUTPUT]
        self._dtypes = {n: engine.get_tensor_dtype(n) for n in names}

    def __del__(self):
        free_quietly(getattr(self, "_free", None), getattr(self, "_handle", None))

    @property
    def engine(self):
        return self._engine

    def set_threads(self, threads):
        check(lib.ductile_context_set_threads(self._handle, int(threads)))

    def set_optimization_profile(self, profile_index):
        check(lib.ductile_context_set_profile(self._handle, int(profile_index)))

    def set_optimization_profile_async(self, profile_index, stream=None):
        """As set_optimization_profile; the stream exists for TensorRT code and is unused."""
        self.set_optimization_profile(profile_index)
        return True

    @property
    def active_optimization_profile(self):
        return lib.ductile_context_get_profile(self._handle)

    def set_input_shape(self, name, shape):
        check(lib.ductile_context_set_input_shape(self._handle, enc(name),
                                                  ctypes.byref(Dims.of(shape))))
        return True

    def get_tensor_shape(self, name):
        dims = Dims()
        check(lib.ductile_context_get_tensor_shape(self._handle, enc(name), ctypes.byref(dims)))
        return dims.to_tuple()

    def set_tensor_address(self, name, address):
        """Binds a buffer (an address as int, or 0/None to unbind), or a device array that
        exposes __cuda_array_interface__ (PyTorch CUDA tensors, CuPy arrays; C-contiguous, of
        the engine's dtype: the caller sees to that). The caller keeps it alive and large
        enough until execution returns."""
        cai = getattr(address, "__cuda_array_interface__", None)
        if cai is not None:
            strides, shape = cai.get("strides"), tuple(cai["shape"])
            if strides is not None:
                want, step = [], int(cai["typestr"][2:])
                for d in reversed(shape):
                    want.append(step)
                    step *= d
                if tuple(strides) != tuple(reversed(want)) and 0 not in shape:
                    raise ValueError(f"set_tensor_address('{name}'): the device array is not C-contiguous")
            address = cai["data"][0]
        check(lib.ductile_context_set_tensor_address(self._handle, enc(name), address or None))
        return True

    def get_tensor_address(self, name):
        ptr = ctypes.c_void_p()
        check(lib.ductile_context_get_tensor_address(self._handle, enc(name), ctypes.byref(ptr)))
        return ptr.value or 0

    def execute(self):
        check(lib.ductile_context_execute(self._handle))
        return True

    def execute_async_v3(self, stream_handle=0):
        """TensorRT's entry point: queues the run on a CUDA stream (an int handle, e.g.
        torch.cuda.current_stream().cuda_stream; 0 is the default stream) without waiting.
        Synchronous on the CPU backend."""
        # A stream object: PyTorch's has .cuda_stream, CuPy's .ptr.
        handle = getattr(stream_handle, "cuda_stream", getattr(stream_handle, "ptr", stream_handle))
        check(lib.ductile_context_execute_async(self._handle, ctypes.c_void_p(int(handle or 0) or None)))
        return True

    def run(self, feeds):
        """Runs on {input name: array} and returns {output name: new array}.

        Shapes come from the arrays. Inputs are bound in place when they already have the
        engine's dtype and are C-contiguous; otherwise a converted copy is bound."""
        # Shapes first, as given, so the library judges unknown names, ranks and ranges.
        for name, value in feeds.items():
            self.set_input_shape(name, np.shape(value))
        missing = [n for n in self._inputs if n not in feeds]
        if missing:
            raise Error(f"run: no array given for input '{missing[0]}' (inputs: "
                        f"{', '.join(self._inputs)})", "DUCTILE_ERR_INVALID_ARGUMENT")
        bound = {}
        try:
            for name in self._inputs:
                arr = np.ascontiguousarray(feeds[name], dtype=self._dtypes[name])
                bound[name] = arr
                self.set_tensor_address(name, arr.ctypes.data)
            outputs = {}
            late = []  # outputs whose shape depends on data: known only after execute
            for name in self._outputs:
                try:
                    shape = self.get_tensor_shape(name)
                except Error as e:
                    if e.status != "DUCTILE_ERR_STATE":
                        raise
                    late.append(name)
                    continue
                out = np.empty(shape, dtype=self._dtypes[name])
                bound[name] = out
                outputs[name] = out
                self.set_tensor_address(name, out.ctypes.data)
            self.execute()
            for name in late:
                shape = self.get_tensor_shape(name)
                out = np.empty(shape, dtype=self._dtypes[name])
                if out.nbytes:
                    ctypes.memmove(out.ctypes.data, self.get_tensor_address(name), out.nbytes)
                outputs[name] = out
        finally:
            # Never leave the context pointing into arrays Python may free.
            for name in bound:
                lib.ductile_context_set_tensor_address(self._handle, enc(name), None)
        return outputs


Context = ExecutionContext
