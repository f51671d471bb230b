"""Engines: built, saved, loaded and queried; the factory of execution contexts."""
import ctypes
import os

from ._enums import TensorIOMode, to_numpy_dtype
from ._lib import Dims, c_int, check, enc, free_quietly, lib, new_handle, text
from .trt import TrtEngine, TrtRuntime


class Engine(TrtEngine):
    """An immutable engine. Owns its C handle; contexts keep it alive."""

    def __init__(self, handle):
        self._handle = handle
        self._free = lib.ductile_engine_free
        self._contexts = 0  # live contexts; the C engine must outlive them

    def __del__(self):
        # A context keeps its engine alive, but the garbage collector finalizes a cycle
        # holding both (a traceback's frames, say) in any order: the last one frees it.
        if getattr(self, "_contexts", 0):
            self._deferred = True
            return
        free_quietly(getattr(self, "_free", None), getattr(self, "_handle", None))
        self._handle = None

    def serialize(self):
        data = ctypes.c_void_p()
        size = ctypes.c_size_t()
        check(lib.ductile_engine_serialize(self._handle, ctypes.byref(data), ctypes.byref(size)))
        try:
            return ctypes.string_at(data.value, size.value)
        finally:
            lib.ductile_free(data.value)

    def save(self, path):
        check(lib.ductile_engine_save(self._handle, enc(os.fspath(path))))

    @property
    def num_io_tensors(self):
        return lib.ductile_engine_num_io_tensors(self._handle)

    def get_tensor_name(self, index):
        index = c_int(index, "int32", "get_tensor_name: index")
        name = text(lib.ductile_engine_io_tensor_name(self._handle, index))
        if name is None:
            raise IndexError(f"I/O tensor index {index} out of range")
        return name

    @property
    def io_tensor_names(self):
        return [self.get_tensor_name(i) for i in range(self.num_io_tensors)]

    def get_tensor_mode(self, name):
        mode = lib.ductile_engine_is_input(self._handle, enc(name))
        return {1: TensorIOMode.INPUT, 0: TensorIOMode.OUTPUT}.get(mode, TensorIOMode.NONE)

    def get_tensor_dtype(self, name):
        """The numpy dtype of a tensor; of a sequence's or optional's items for those."""
        return to_numpy_dtype(lib.ductile_engine_tensor_dtype(self._handle, enc(name)))

    def get_tensor_kind(self, name):
        """"tensor", "sequence", "optional_tensor" or "optional_sequence" (ductile_value_kind);
        None for a name that is no I/O tensor."""
        kind = lib.ductile_engine_tensor_kind(self._handle, enc(name))
        return {0: "tensor", 1: "sequence", 2: "optional_tensor", 3: "optional_sequence"}.get(kind)

    @property
    def num_optimization_profiles(self):
        return lib.ductile_engine_num_profiles(self._handle)

    def get_tensor_profile_shape(self, name, profile_index):
        profile_index = c_int(profile_index, "int32", "get_tensor_profile_shape: profile_index")
        shapes = []
        for which in range(3):
            dims = Dims()
            check(lib.ductile_engine_get_profile_shape(self._handle, profile_index, enc(name),
                                                       which, ctypes.byref(dims)))
            shapes.append(dims.to_tuple())
        return tuple(shapes)

    @property
    def device(self):
        """The backend the engine runs on: "cpu" or "cuda"."""
        return text(lib.ductile_engine_device(self._handle))

    @property
    def layer_info(self):
        return text(lib.ductile_engine_layer_info(self._handle))

    def create_execution_context(self):
        from .context import ExecutionContext
        return ExecutionContext(self)


def _load_file(path):
    return Engine(new_handle(lib.ductile_engine_load_file, enc(os.fspath(path))))


def load_engine(path):
    """Reads an engine saved with Engine.save."""
    return _load_file(path)


class Runtime(TrtRuntime):
    """TensorRT's deserializer; the logger is accepted and ignored."""

    def __init__(self, logger=None):
        pass

    def deserialize_cuda_engine(self, data):
        data = bytes(data)
        return Engine(new_handle(lib.ductile_engine_load_memory, data, len(data)))
