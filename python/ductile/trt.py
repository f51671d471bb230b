"""TensorRT's Python API on ductile, so that code written for TensorRT runs after changing only
`import tensorrt as trt` to `import ductile as trt` (on the CPU: buffers are host pointers,
stream handles are accepted and unused, execution is synchronous).

The binding's classes (builder.py, network.py, engine.py, context.py) take the TensorRT-only
calls from the mixins here, so the TensorRT surface lives in one file and the classes keep
ductile's own API. Both API generations are covered:

  TensorRT 10 (named tensors): num_io_tensors, get_tensor_name/mode/shape/dtype,
      get_tensor_profile_shape, set_input_shape, set_tensor_address, execute_async_v3.
  TensorRT 8 (binding indices): num_bindings, binding_is_input, get_binding_*, get_profile_shape,
      set_binding_shape, active_optimization_profile (settable), all_binding_shapes_specified,
      execute_v2, execute_async_v2. As in TensorRT, an engine with P profiles has P * N
      bindings: binding k*N + i is I/O tensor i under profile k, named "name [profile k]".

A TensorRT call ductile does not implement raises AttributeError naming it
("ductile does not support TensorRT's IBuilderConfig.set_tactic_sources"), for methods and for
attributes set alike, instead of being silently ignored.
This module imports nothing of the binding's classes (they import it).
"""
import ctypes
import enum
import functools
import operator
import os

import numpy as np

from ._enums import TensorIOMode, to_numpy_dtype
from ._lib import Dims, Error, check, enc, lib


def _unsupported(trt_name, name):
    return AttributeError(f"ductile does not support TensorRT's {trt_name}.{name}")


class _TrtObject:
    """Refuses, naming the call, what TensorRT has and ductile does not. Names starting with '_'
    are the binding's own and behave as usual."""

    _TRT_NAME = "?"

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        raise _unsupported(self._TRT_NAME, name)

    def __setattr__(self, name, value):
        # Properties (max_workspace_size, active_optimization_profile) are found on the class.
        if name.startswith("_") or hasattr(type(self), name):
            object.__setattr__(self, name, value)
        else:
            raise _unsupported(self._TRT_NAME, name)

    # TensorRT 8's samples hold every object in a `with` block; objects here are freed by the
    # garbage collector, so leaving the block only ends the block.
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


# ---- Module-level names -------------------------------------------------------------------

class NetworkDefinitionCreationFlag(enum.IntEnum):
    """`1 << int(EXPLICIT_BATCH)` is what TensorRT code passes; networks here are always
    explicit-batch, so the flag is accepted and changes nothing."""
    EXPLICIT_BATCH = 0


class TensorLocation(enum.IntEnum):
    DEVICE = 0
    HOST = 1


class DataType:
    """TensorRT's data types as the numpy dtypes the binding uses for them (an engine's
    get_tensor_dtype returns numpy dtypes), so `dtype == trt.float32` and
    `trt.nptype(dtype)` both work."""
    FLOAT = np.dtype(np.float32)
    HALF = np.dtype(np.float16)
    INT8 = np.dtype(np.int8)
    INT32 = np.dtype(np.int32)
    BOOL = np.dtype(np.bool_)
    UINT8 = np.dtype(np.uint8)
    INT64 = np.dtype(np.int64)
    BF16 = to_numpy_dtype(16)   # None without ml_dtypes
    FP8 = to_numpy_dtype(17)
    INT4 = to_numpy_dtype(22)


float32, float16, int8, int32 = DataType.FLOAT, DataType.HALF, DataType.INT8, DataType.INT32
bool, uint8, int64 = DataType.BOOL, DataType.UINT8, DataType.INT64  # noqa: A001 — TensorRT's names
bfloat16, fp8, int4 = DataType.BF16, DataType.FP8, DataType.INT4


def nptype(trt_type):
    """The numpy scalar type of a data type (TensorRT: trt.nptype(trt.float32) is np.float32)."""
    if trt_type is None:
        raise TypeError("nptype: no numpy type for this data type (install ml_dtypes for "
                        "bfloat16, float8 and int4)")
    return np.dtype(trt_type).type


def volume(shape):
    """The number of elements of a shape (TensorRT: trt.volume); 1 for a scalar."""
    return functools.reduce(operator.mul, (int(d) for d in shape), 1)


class Logger(_TrtObject):
    """TensorRT's logger. ductile reports failures through exceptions, not a logger, so the
    severity only decides what log() prints."""
    _TRT_NAME = "Logger"

    class Severity(enum.IntEnum):
        INTERNAL_ERROR = 0
        ERROR = 1
        WARNING = 2
        INFO = 3
        VERBOSE = 4

    INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = (Severity.INTERNAL_ERROR, Severity.ERROR,
                                                     Severity.WARNING, Severity.INFO,
                                                     Severity.VERBOSE)

    def __init__(self, min_severity=Severity.WARNING):
        self.min_severity = min_severity

    min_severity = Severity.WARNING  # a class attribute, so that setting it is allowed

    def log(self, severity, msg):
        if severity <= self.min_severity:
            print(f"[{Logger.Severity(severity).name}] {msg}")


ILogger = Logger


class IProfiler:
    """TensorRT's profiler interface: subclass it, override report_layer_time and set an
    instance as context.profiler; it is called after each layer an execute runs."""

    def __init__(self):
        pass

    def report_layer_time(self, layer_name, ms):
        pass


def init_libnvinfer_plugins(logger, namespace):
    """Registers TensorRT's plugin library; ductile has no plugins, so there is nothing to do."""
    return True


def __getattr__(name):
    """The module's unknown names (PEP 562), re-exported by ductile/__init__.py."""
    if name.startswith("__"):  # probes by tools (__wrapped__, __file__ of a frozen module)
        raise AttributeError(f"module 'ductile' has no attribute '{name}'")
    raise AttributeError(f"module 'ductile' has no attribute '{name}': ductile does not "
                         f"support TensorRT's trt.{name}")


# ---- Builder, config, network, parser, profile --------------------------------------------

class TrtBuilder(_TrtObject):
    _TRT_NAME = "Builder"
    max_batch_size = 1  # TensorRT 8's implicit-batch setting; explicit-batch networks ignore it

    @property
    def platform_has_fast_fp16(self):
        """True where this builder builds for a GPU (the CUDA backend's half kernels); the CPU
        backend computes float16 layers in float32."""
        from .builder import cuda_available
        # (`bool` is numpy's dtype in this module, as trt.bool is.)
        return True if getattr(self, "_gpu_default", False) and cuda_available() else False

    @property
    def platform_has_fast_int8(self):
        return False


def _physical_memory():
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


class TrtConfig(_TrtObject):
    """The config remembers what it was given: the C API sets and does not read back."""
    _TRT_NAME = "IBuilderConfig"

    def _limits(self):
        return self.__dict__.setdefault("_trt_limits", {})

    def get_memory_pool_limit(self, pool):
        # The default is the CPU backend's: the machine's memory.
        return self._limits().get(int(pool), _physical_memory())

    @property
    def max_workspace_size(self):
        """TensorRT 8's name for the workspace pool limit."""
        from ._enums import MemoryPoolType
        return self.get_memory_pool_limit(MemoryPoolType.WORKSPACE)

    @max_workspace_size.setter
    def max_workspace_size(self, size):
        from ._enums import MemoryPoolType
        self.set_memory_pool_limit(MemoryPoolType.WORKSPACE, size)

    def get_flag(self, flag):
        return int(flag) in self.__dict__.get("_trt_flags", set())

    def _remember_flag(self, flag, on):
        flags = self.__dict__.setdefault("_trt_flags", set())
        (flags.add if on else flags.discard)(int(flag))


class TrtNetwork(_TrtObject):
    _TRT_NAME = "INetworkDefinition"

    @property
    def has_implicit_batch_dimension(self):
        return False


class TrtParser(_TrtObject):
    _TRT_NAME = "OnnxParser"


class TrtProfile(_TrtObject):
    _TRT_NAME = "IOptimizationProfile"


class TrtRuntime(_TrtObject):
    _TRT_NAME = "Runtime"


# ---- Engine ---------------------------------------------------------------------------------

class TrtEngine(_TrtObject):
    """The engine's TensorRT 10 shape query and its TensorRT 8 binding API."""
    _TRT_NAME = "ICudaEngine"
    max_batch_size = 1
    has_implicit_batch_dimension = False

    def get_tensor_shape(self, name):
        """The shape the network declares: -1 where a dim is dynamic (a context gives the
        concrete shape once inputs are set)."""
        dims = Dims()
        check(lib.ductile_engine_get_tensor_dims(self._handle, enc(name), ctypes.byref(dims)))
        return dims.to_tuple()

    def get_tensor_location(self, name):
        """Where the tensor's buffers are (ductile_engine_tensor_location): DEVICE for a CUDA
        engine's tensors; HOST on the CPU, and on CUDA for shape inputs, strings, sequences and
        every I/O tensor of an engine that runs on the host (data-dependent output shapes)."""
        location = lib.ductile_engine_tensor_location(self._handle, enc(name))
        if location < 0:
            self.get_tensor_shape(name)  # raises, naming the tensor that is no I/O tensor
        return TensorLocation(location)

    # TensorRT 8: bindings.
    @property
    def num_bindings(self):
        return self.num_io_tensors * max(self.num_optimization_profiles, 1)

    def _binding(self, binding, call):
        """(I/O tensor name, profile) of a binding given by index or by name."""
        n = self.num_io_tensors
        if isinstance(binding, str):
            index = self.get_binding_index(binding)
            if index < 0:
                raise Error(f"{call}: '{binding}' is not a binding of the engine (bindings: "
                            f"{', '.join(self.io_tensor_names)})", "DUCTILE_ERR_INVALID_ARGUMENT")
            binding = index
        index = operator.index(binding)
        if not 0 <= index < self.num_bindings:
            raise IndexError(f"{call}: binding index {index} out of range (the engine has "
                             f"{self.num_bindings} bindings: {n} I/O tensors x "
                             f"{max(self.num_optimization_profiles, 1)} profiles)")
        return self.get_tensor_name(index % n), index // n

    def get_binding_name(self, index):
        name, profile = self._binding(index, "get_binding_name")
        return name if profile == 0 else f"{name} [profile {profile}]"

    def get_binding_index(self, name):
        """-1 when no binding has that name, as TensorRT returns."""
        base, profile = name, 0
        if name.endswith("]") and " [profile " in name:
            base, _, k = name[:-1].rpartition(" [profile ")
            if not k.isdigit():
                return -1
            profile = int(k)
        names = self.io_tensor_names
        if base not in names or not 0 <= profile < max(self.num_optimization_profiles, 1):
            return -1
        return profile * len(names) + names.index(base)

    def binding_is_input(self, binding):
        name, _ = self._binding(binding, "binding_is_input")
        return self.get_tensor_mode(name) == TensorIOMode.INPUT

    def get_binding_shape(self, binding):
        return self.get_tensor_shape(self._binding(binding, "get_binding_shape")[0])

    def get_binding_dtype(self, binding):
        return self.get_tensor_dtype(self._binding(binding, "get_binding_dtype")[0])

    def get_profile_shape(self, profile_index, binding):
        """[min, opt, max] of an input in a profile (TensorRT 8's argument order)."""
        return list(self.get_tensor_profile_shape(self._binding(binding, "get_profile_shape")[0],
                                                  profile_index))

    def __len__(self):
        return self.num_bindings

    def __iter__(self):
        return (self.get_binding_name(i) for i in range(self.num_bindings))

    def __getitem__(self, key):
        """engine[i] is binding i's name, engine[name] its index (TensorRT 8)."""
        if isinstance(key, str):
            return self.get_binding_index(key)
        return self.get_binding_name(key)


# ---- Execution context ------------------------------------------------------------------------

class TrtContext(_TrtObject):
    _TRT_NAME = "IExecutionContext"

    @property
    def active_optimization_profile(self):
        return lib.ductile_context_get_profile(self._handle)

    @active_optimization_profile.setter
    def active_optimization_profile(self, index):
        # TensorRT 7/8's synchronous setter.
        self.set_optimization_profile(index)

    def _context_binding(self, binding, call):
        """The I/O tensor of a binding, which must belong to the active profile."""
        name, profile = self.engine._binding(binding, call)
        active = self.active_optimization_profile
        if profile != active:
            raise Error(f"{call}: binding {binding} belongs to profile {profile}, but the active "
                        f"profile is {active} (bindings {active * self.engine.num_io_tensors}.."
                        f"{(active + 1) * self.engine.num_io_tensors - 1})",
                        "DUCTILE_ERR_INVALID_ARGUMENT")
        return name

    def set_binding_shape(self, binding, shape):
        return self.set_input_shape(self._context_binding(binding, "set_binding_shape"), shape)

    def get_binding_shape(self, binding):
        """The concrete shape; the declared one (-1 where dynamic) while an input it depends
        on has no shape yet, as TensorRT answers."""
        name = self._context_binding(binding, "get_binding_shape")
        try:
            return self.get_tensor_shape(name)
        except Error as e:
            if e.status != "DUCTILE_ERR_STATE":
                raise
            return self.engine.get_tensor_shape(name)

    def infer_shapes(self):
        """TensorRT 10: the names of the inputs whose shapes are still missing ([] when every
        output shape can be computed)."""
        engine = self.engine
        missing = []
        for name in engine.io_tensor_names:
            if engine.get_tensor_mode(name) != TensorIOMode.INPUT:
                continue
            try:
                self.get_tensor_shape(name)
            except Error as e:
                if e.status != "DUCTILE_ERR_STATE":
                    raise
                missing.append(name)
        return missing

    @property
    def all_binding_shapes_specified(self):
        return not self.infer_shapes()

    def update_device_memory_size_for_shapes(self):
        """TensorRT 10: the memory the current input shapes need. Here the context plans them
        and takes that memory itself (it has no caller-supplied memory), and returns what it
        holds (memory_size). Every input shape must be set."""
        engine = self.engine
        for name in engine.io_tensor_names:
            if engine.get_tensor_mode(name) == TensorIOMode.OUTPUT:
                try:
                    self.get_tensor_shape(name)  # plans memory for the shapes
                except Error as e:
                    # An output known only after execute (data-dependent shapes) is the one
                    # DUCTILE_ERR_STATE left once every input shape is set.
                    if e.status != "DUCTILE_ERR_STATE" or self.infer_shapes():
                        raise
        return self.memory_size

    def execute_v2(self, bindings):
        """Binds the active profile's part of `bindings` (addresses in binding order) and runs."""
        engine = self.engine
        n = engine.num_io_tensors
        first = self.active_optimization_profile * n
        if len(bindings) < first + n:
            raise Error(f"execute_v2: {len(bindings)} bindings given; the active profile "
                        f"{first // n} uses bindings {first}..{first + n - 1}",
                        "DUCTILE_ERR_INVALID_ARGUMENT")
        for i, name in enumerate(engine.io_tensor_names):
            self.set_tensor_address(name, int(bindings[first + i] or 0))
        return self.execute()

    def execute_async_v2(self, bindings, stream_handle=0):
        """As execute_v2; the stream is unused (the CPU runs synchronously)."""
        return self.execute_v2(bindings)
