"""Builder, optimization profiles and the builder config: network + config -> engine."""
import ctypes

from ._enums import BuilderFlag, MemoryPoolType
from ._lib import Dims, Error, c_int, check, enc, free_quietly, lib, new_handle
from .engine import Engine
from .network import Network
from .trt import TrtBuilder, TrtConfig, TrtProfile


class OptimizationProfile(TrtProfile):
    def __init__(self, builder_handle):
        self._handle = new_handle(lib.ductile_profile_create, builder_handle)
        self._free = lib.ductile_profile_free
        self._shapes = {}

    def __del__(self):
        free_quietly(getattr(self, "_free", None), getattr(self, "_handle", None))

    def set_shape(self, input, min, opt, max):
        dims = [Dims.of(s, f"set_shape: the {which} shape of input '{input}'")
                for s, which in ((min, "min"), (opt, "opt"), (max, "max"))]
        check(lib.ductile_profile_set_shape(self._handle, enc(input), *map(ctypes.byref, dims)))
        self._shapes[str(input)] = tuple(d.to_tuple() for d in dims)

    def get_shape(self, input):
        """(min, opt, max) as set; the C API keeps no getter, so the binding remembers them."""
        return self._shapes[str(input)]


class BuilderConfig(TrtConfig):
    def __init__(self, builder_handle):
        self._handle = new_handle(lib.ductile_config_create, builder_handle)
        self._free = lib.ductile_config_free

    def __del__(self):
        free_quietly(getattr(self, "_free", None), getattr(self, "_handle", None))

    def add_optimization_profile(self, profile):
        index = ctypes.c_int32()
        check(lib.ductile_config_add_profile(self._handle, profile._handle, ctypes.byref(index)))
        return index.value

    def set_memory_pool_limit(self, pool, size):
        if MemoryPoolType(pool) is not MemoryPoolType.WORKSPACE:
            raise ValueError(f"memory pool {pool!r} is not supported")
        size = c_int(size, "uint64", "set_memory_pool_limit: size")
        check(lib.ductile_config_set_workspace(self._handle, size))
        self._limits()[int(pool)] = size

    @property
    def threads(self):
        """Threads the engine's contexts will run with; the CPU's tactics are timed on this
        many. 0 (default): the number of online CPUs."""
        return getattr(self, "_threads", 0)

    @threads.setter
    def threads(self, n):
        check(lib.ductile_config_set_threads(self._handle, c_int(n, "int32", "set_threads: threads")))
        self._threads = int(n)

    @property
    def device(self):
        """The backend the engine is built for: "cpu" (default) or "cuda"."""
        return getattr(self, "_device", "cpu")

    @device.setter
    def device(self, name):
        check(lib.ductile_config_set_device(self._handle, enc(name)))
        self._device = str(name)

    def set_flag(self, flag):
        check(lib.ductile_config_set_flag(self._handle, int(BuilderFlag(flag)), 1))
        self._remember_flag(flag, True)

    def clear_flag(self, flag):
        check(lib.ductile_config_set_flag(self._handle, int(BuilderFlag(flag)), 0))
        self._remember_flag(flag, False)


# A one-Relu ONNX model (opset 13), to ask whether an engine can be built for CUDA here.
_PROBE_MODEL = (b'\x08\x08:3\n\x0c\n\x01x\x12\x01y"\x04Relu\x12\x01pZ\x0f\n\x01x\x12\n\n\x08\x08\x01'
                b'\x12\x04\n\x02\x08\x01b\x0f\n\x01y\x12\n\n\x08\x08\x01\x12\x04\n\x02\x08\x01B\x04\n\x00\x10\r')
_CUDA = None


def cuda_available():
    """Whether this build has the CUDA backend and a GPU is found: one tiny build, once."""
    global _CUDA
    if _CUDA is None:
        try:
            b = Builder()
            config = b.create_builder_config()
            config.device = "cuda"
            b.build_engine(b.parse_onnx_bytes(_PROBE_MODEL), config)
            _CUDA = True
        except Error:
            _CUDA = False
    return _CUDA


class Builder(TrtBuilder):
    def __init__(self, logger=None):
        """logger: TensorRT's first argument. A builder made the TensorRT way
        (`trt.Builder(logger)`) builds for the GPU when one is found, as TensorRT does, so
        code ported by changing its import runs where it ran; ductile's own `Builder()`
        builds for the CPU unless config.device says otherwise."""
        self._handle = new_handle(lib.ductile_builder_create)
        self._free = lib.ductile_builder_free
        self._gpu_default = logger is not None

    def __del__(self):
        free_quietly(getattr(self, "_free", None), getattr(self, "_handle", None))

    def create_network(self, flags=0):
        """An empty network; flags are accepted for TensorRT code (networks are always
        explicit-batch)."""
        return Network(self._handle)

    def parse_onnx(self, path):
        network = Network(self._handle)
        network._parse_file(path)
        return network

    def parse_onnx_bytes(self, data):
        network = Network(self._handle)
        network._parse_bytes(data)
        return network

    def create_optimization_profile(self):
        return OptimizationProfile(self._handle)

    def create_builder_config(self):
        config = BuilderConfig(self._handle)
        if getattr(self, "_gpu_default", False) and cuda_available():
            config.device = "cuda"
        return config

    def build_engine(self, network, config):
        out = ctypes.c_void_p()
        check(lib.ductile_builder_build(self._handle, network._handle, config._handle,
                                        ctypes.byref(out)))
        return Engine(out.value)

    def build_serialized_network(self, network, config):
        return self.build_engine(network, config).serialize()
