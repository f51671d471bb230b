"""Execution contexts: shapes, buffers and execution; run() is the numpy-in, numpy-out path."""
import collections
import contextlib
import ctypes
import threading

import numpy as np

from . import _strings
from ._enums import TensorIOMode, from_numpy_dtype, to_numpy_dtype
from ._lib import PROFILER_FN, Dims, Error, Item, c_int, check, enc, free_quietly, lib, new_handle, text
from .trt import TrtContext


# One layer's report to a profiler (ductile_layer_timing): name, op type, the kernel and path
# that ran ("cpu.FusedConv.winograd"), wall ms, FLOPs of a conv or matmul (else 0), and its
# index in execution order.
LayerTiming = collections.namedtuple("LayerTiming", "layer op_type tactic ms flops index")


class ExecutionContext(TrtContext):
    """One thread at a time: a call made while another thread is inside a call on the same
    context raises Error (DUCTILE_ERR_STATE) instead of racing on its buffers, as the C
    library does for each of its calls; here the whole of run() counts as one call."""

    def __init__(self, engine):
        # Taken without waiting by every method (see _owned); run() holds it throughout, so
        # another thread cannot rebind buffers or reshape between its steps.
        self._busy = threading.Lock()
        # The C context reads the engine on every call; holding it keeps it alive.
        self._engine = engine
        self._handle = new_handle(lib.ductile_context_create, engine._handle)
        self._free = lib.ductile_context_free
        engine._contexts += 1
        names = engine.io_tensor_names
        self._inputs = [n for n in names if engine.get_tensor_mode(n) == TensorIOMode.INPUT]
        self._outputs = [n for n in names if engine.get_tensor_mode(n) == TensorIOMode.OUTPUT]
        self._dtypes = {n: engine.get_tensor_dtype(n) for n in names}
        # Sequences and optionals: name -> kind ("sequence", "optional_tensor", ...).
        self._kinds = {n: engine.get_tensor_kind(n) for n in names}
        self._kinds = {n: k for n, k in self._kinds.items() if k != "tensor"}
        # What run() needs per call, worked out once: it is on every request's path, and for a
        # small model (bert_small at 1x16: ~1 ms) the Python around execute cost 0.07-0.14 ms
        # a run (session 12), much of it in encoding names and building Dims.
        self._names = {n: enc(n) for n in names}
        self._string_names = {n for n in names if self._is_string(n)}
        self._shape_dims = {}  # input name -> (shape, Dims) of the last shape set through run()
        self._out_dims = Dims()

    def __del__(self):
        if getattr(self, "_handle", None) is None:
            return
        free_quietly(getattr(self, "_free", None), self._handle)
        self._handle = None
        engine = self._engine
        engine._contexts -= 1
        if engine._contexts == 0 and getattr(engine, "_deferred", False):
            engine.__del__()  # its finalizer ran first (a collected cycle) and left it to us

    @contextlib.contextmanager
    def _owned(self, call):
        if not self._busy.acquire(blocking=False):
            raise Error(f"{call}: the context is in use by another thread; a context belongs to "
                        "one thread at a time (create one context per thread)",
                        "DUCTILE_ERR_STATE")
        try:
            yield
        finally:
            self._busy.release()

    @property
    def engine(self):
        return self._engine

    @property
    def cuda_graphs(self):
        """How many CUDA graphs the context keeps, one per shape and set of device buffers
        (ductile_context_set_cuda_graphs): 16 by default, 0 = off. A shape's second run
        records its graph, later runs replay it. No effect on the CPU."""
        return lib.ductile_context_get_cuda_graphs(self._handle)

    @cuda_graphs.setter
    def cuda_graphs(self, max_graphs):
        with self._owned("cuda_graphs"):
            max_graphs = c_int(max_graphs, "int32", "cuda_graphs")
            check(lib.ductile_context_set_cuda_graphs(self._handle, max_graphs))

    @property
    def memory_size(self):
        """Bytes of backend memory the context holds (device memory on CUDA): activations,
        scratch, its own I/O buffers and workspace, for the largest shapes run so far
        (ductile_context_get_memory_size). The engine's weights are not counted."""
        with self._owned("memory_size"):
            size = ctypes.c_uint64()
            check(lib.ductile_context_get_memory_size(self._handle, ctypes.byref(size)))
            return size.value

    @property
    def profiler(self):
        """Per-layer timing (ductile_context_set_profiler), as TensorRT's context.profiler:
        an object with report_layer_time(layer_name, ms) (a trt.IProfiler), or any callable,
        which gets a LayerTiming (layer, op_type, tactic, ms, flops, index) instead. Called
        after each layer an execute runs, on the executing thread; None turns it off. An
        exception it raises is printed and the run goes on (it cannot cross the C library)."""
        return getattr(self, "_profiler", None)

    @profiler.setter
    def profiler(self, profiler):
        with self._owned("profiler"):
            if profiler is None:
                check(lib.ductile_context_set_profiler(self._handle, PROFILER_FN(), None))
                self._profiler = self._profiler_fn = None
                return
            report = getattr(profiler, "report_layer_time", None)
            if report is None and not callable(profiler):
                raise TypeError("profiler: expected an object with report_layer_time(layer_name, ms) "
                                f"or a callable, not {type(profiler).__name__}")

            def fn(user, t):
                t = t.contents
                if report is not None:
                    report(t.layer.decode("utf-8"), t.ms)
                else:
                    profiler(LayerTiming(t.layer.decode("utf-8"), t.op_type.decode("utf-8"),
                                         t.tactic.decode("utf-8"), t.ms, t.flops, t.index))

            c_fn = PROFILER_FN(fn)  # kept alive as long as the library may call it
            check(lib.ductile_context_set_profiler(self._handle, c_fn, None))
            self._profiler, self._profiler_fn = profiler, c_fn

    def set_threads(self, threads):
        with self._owned("set_threads"):
            threads = c_int(threads, "int32", "set_threads: threads")
            check(lib.ductile_context_set_threads(self._handle, threads))

    def set_optimization_profile(self, profile_index):
        with self._owned("set_optimization_profile"):
            profile_index = c_int(profile_index, "int32", "set_optimization_profile: profile_index")
            check(lib.ductile_context_set_profile(self._handle, profile_index))

    def set_optimization_profile_async(self, profile_index, stream=None):
        """As set_optimization_profile; the stream exists for TensorRT code and is unused."""
        self.set_optimization_profile(profile_index)
        return True

    def set_input_shape(self, name, shape):
        with self._owned("set_input_shape"):
            self._set_input_shape(name, shape)
        return True

    def _set_input_shape(self, name, shape):
        check(lib.ductile_context_set_input_shape(self._handle, enc(name),
                                                  ctypes.byref(Dims.of(shape, f"set_input_shape: the shape of input '{name}'"))))

    def get_tensor_shape(self, name):
        with self._owned("get_tensor_shape"):
            return self._get_tensor_shape(name)

    def _get_tensor_shape(self, name):
        dims = Dims()
        check(lib.ductile_context_get_tensor_shape(self._handle, enc(name), ctypes.byref(dims)))
        return dims.to_tuple()

    def set_tensor_address(self, name, address):
        """Binds a buffer (an address as int, or 0/None to unbind), or a device array that
        exposes __cuda_array_interface__ (PyTorch CUDA tensors, CuPy arrays; C-contiguous, of
        the engine's dtype: the caller sees to that). The caller keeps it alive and large
        enough until execution returns."""
        with self._owned("set_tensor_address"):
            self._set_tensor_address(name, address)
        return True

    def _set_tensor_address(self, name, address):
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
        address = c_int(address or 0, "uint64", f"set_tensor_address: the address for '{name}'")
        check(lib.ductile_context_set_tensor_address(self._handle, enc(name), address or None))

    def get_tensor_address(self, name):
        with self._owned("get_tensor_address"):
            return self._get_tensor_address(name)

    def _get_tensor_address(self, name):
        ptr = ctypes.c_void_p()
        check(lib.ductile_context_get_tensor_address(self._handle, enc(name), ctypes.byref(ptr)))
        return ptr.value or 0

    def execute(self):
        with self._owned("execute"):
            check(lib.ductile_context_execute(self._handle))
        return True

    def execute_async_v3(self, stream_handle=0):
        """TensorRT's entry point: queues the run on a CUDA stream (an int handle, e.g.
        torch.cuda.current_stream().cuda_stream; 0 is the default stream) without waiting.
        Synchronous on the CPU backend."""
        # A stream object: PyTorch's has .cuda_stream, CuPy's .ptr.
        handle = getattr(stream_handle, "cuda_stream", getattr(stream_handle, "ptr", stream_handle))
        handle = c_int(handle or 0, "uint64", "execute_async_v3: stream_handle")
        with self._owned("execute_async_v3"):
            check(lib.ductile_context_execute_async(self._handle, ctypes.c_void_p(handle or None)))
        return True

    def _is_string(self, name):
        return lib.ductile_engine_tensor_dtype(self._engine._handle, enc(name)) == _strings.STRING

    def set_sequence(self, name, value):
        """Sets a sequence input (a list of arrays) or an optional input (None: empty; an
        array for an optional tensor, a list for an optional sequence). Copied at once."""
        with self._owned("set_sequence"):
            self._set_sequence(name, value)

    def _set_sequence(self, name, value):
        kind = self._kinds.get(name)
        if value is None:
            arrays, n = [], -1
        elif kind == "optional_tensor":
            arrays = [value]
            n = 1
        else:
            if isinstance(value, np.ndarray) or not isinstance(value, (list, tuple)):
                raise Error(f"set_sequence: input '{name}' is a {(kind or 'tensor').replace('_', ' ')}; "
                            f"expected a list of arrays, not {type(value).__name__}",
                            "DUCTILE_ERR_INVALID_ARGUMENT")
            arrays, n = list(value), len(value)
        # np.asarray, not np.ascontiguousarray: the latter makes a 0-d item 1-d.
        arrays = [np.asarray(a, order="C") for a in arrays]
        items = (Item * max(len(arrays), 1))()
        for j, a in enumerate(arrays):
            code = from_numpy_dtype(a.dtype)
            items[j].dtype = -1 if code is None else code
            items[j].dims = Dims.of(a.shape, f"set_sequence: the shape of item {j} of '{name}'")
            items[j].data = a.ctypes.data
        check(lib.ductile_context_set_sequence(self._handle, enc(name), items, n))

    def get_sequence(self, name):
        """A sequence or optional output after execute: a list of new arrays, an array (an
        optional tensor) or None (an empty optional)."""
        with self._owned("get_sequence"):
            return self._get_sequence(name)

    def _get_sequence(self, name):
        ptr = ctypes.c_void_p()
        n = ctypes.c_int64()
        check(lib.ductile_context_get_sequence(self._handle, enc(name), ctypes.byref(ptr), ctypes.byref(n)))
        if n.value < 0:
            return None
        items = ctypes.cast(ptr, ctypes.POINTER(Item))
        arrays = []
        for j in range(n.value):
            it = items[j]
            dtype = to_numpy_dtype(it.dtype)
            if dtype is None:
                raise Error(f"get_sequence: '{name}' holds dtype {text(lib.ductile_dtype_name(it.dtype))}, "
                            "which numpy cannot hold", "DUCTILE_ERR_UNSUPPORTED")
            out = np.empty(it.dims.to_tuple(), dtype=dtype)
            if out.nbytes:
                ctypes.memmove(out.ctypes.data, it.data, out.nbytes)
            arrays.append(out)
        return arrays[0] if self._kinds.get(name) == "optional_tensor" else arrays

    def _numpy_dtype(self, name):
        """The numpy dtype run() allocates or converts to; an engine dtype numpy cannot hold
        is refused rather than read as float64 (np.empty's default)."""
        dtype = self._dtypes[name]
        if dtype is None:
            code = lib.ductile_engine_tensor_dtype(self._engine._handle, enc(name))
            raise Error(f"run: tensor '{name}' has dtype {text(lib.ductile_dtype_name(code))}, "
                        "which numpy cannot hold (ml_dtypes provides bfloat16, float8, 4-bit "
                        "and 2-bit types)", "DUCTILE_ERR_UNSUPPORTED")
        return dtype

    def run(self, feeds):
        """Runs on {input name: array} and returns {output name: new array}.

        Shapes come from the arrays. Inputs are bound in place when they already have the
        engine's dtype and are C-contiguous; otherwise a converted copy is bound."""
        if not self._busy.acquire(blocking=False):
            raise Error("run: the context is in use by another thread; a context belongs to "
                        "one thread at a time (create one context per thread)",
                        "DUCTILE_ERR_STATE")
        try:
            return self._run(feeds)
        finally:
            self._busy.release()

    def _run_shape(self, name, value):
        """set_input_shape from an array, with the Dims of the last call reused when the
        shape is the same (the library itself skips planning again then)."""
        shape = np.shape(value)
        known = self._shape_dims.get(name)
        if known is None or known[0] != shape:
            known = (shape, Dims.of(shape, f"set_input_shape: the shape of input '{name}'"))
            self._shape_dims[name] = known
        check(lib.ductile_context_set_input_shape(self._handle, self._names[name], ctypes.byref(known[1])))

    def _bind(self, name, address):
        """set_tensor_address for an I/O name of the engine and an address from numpy or
        ctypes (always a valid pointer, so not range-checked as a caller's int is)."""
        check(lib.ductile_context_set_tensor_address(self._handle, self._names[name], address))

    def _run(self, feeds):
        # Shapes first, as given, so the library judges unknown names, ranks and ranges.
        for name, value in feeds.items():
            if name in self._kinds:
                self._set_sequence(name, value)
            elif name in self._names:
                self._run_shape(name, value)
            else:
                self._set_input_shape(name, np.shape(value))
        missing = [n for n in self._inputs if n not in feeds]
        if missing:
            raise Error(f"run: no array given for input '{missing[0]}' (inputs: "
                        f"{', '.join(self._inputs)})", "DUCTILE_ERR_INVALID_ARGUMENT")
        bound = {}
        try:
            for name in self._inputs:
                if name in self._kinds:
                    continue
                if name in self._string_names:
                    bound[name] = _strings.Packed(feeds[name])
                    self._bind(name, bound[name].address)
                    continue
                arr = np.ascontiguousarray(feeds[name], dtype=self._numpy_dtype(name))
                bound[name] = arr
                self._bind(name, arr.ctypes.data)
            outputs = {}
            late = []  # outputs whose shape depends on data: known only after execute
            strings = {}  # string outputs: name -> (address of their views, shape)
            dims = self._out_dims
            for name in self._outputs:
                if name in self._kinds:
                    continue
                status = lib.ductile_context_get_tensor_shape(self._handle, self._names[name], ctypes.byref(dims))
                if status != 0:
                    try:
                        check(status)
                    except Error as e:
                        if e.status != "DUCTILE_ERR_STATE":
                            raise
                        late.append(name)
                        continue
                shape = dims.to_tuple()
                if name in self._string_names:
                    views = _strings.empty_views(np.prod(shape, dtype=np.int64))
                    bound[name] = views
                    strings[name] = (ctypes.addressof(views), tuple(shape))
                    self._bind(name, ctypes.addressof(views))
                    continue
                out = np.empty(shape, dtype=self._numpy_dtype(name))
                bound[name] = out
                outputs[name] = out
                self._bind(name, out.ctypes.data)
            check(lib.ductile_context_execute(self._handle))
            # Views point into the context's bytes (valid until the next execute): copied now.
            for name, (address, shape) in strings.items():
                outputs[name] = _strings.unpack(address, shape)
            for name in late:
                shape = self._get_tensor_shape(name)
                if self._is_string(name):
                    outputs[name] = _strings.unpack(self._get_tensor_address(name), tuple(shape))
                    continue
                out = np.empty(shape, dtype=self._numpy_dtype(name))
                if out.nbytes:
                    ctypes.memmove(out.ctypes.data, self._get_tensor_address(name), out.nbytes)
                outputs[name] = out
            for name in self._outputs:
                if name in self._kinds:
                    outputs[name] = self._get_sequence(name)
        finally:
            # Never leave the context pointing into arrays Python may free.
            for name in bound:
                lib.ductile_context_set_tensor_address(self._handle, self._names[name], None)
        return outputs


Context = ExecutionContext
