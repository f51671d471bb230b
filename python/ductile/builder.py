"""Builder, optimization profiles and the builder config: network + config -> engine."""
import ctypes

from ._enums import BuilderFlag, MemoryPoolType
from ._lib import Dims, c_int, check, enc, free_quietly, lib, new_handle
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


class Builder(TrtBuilder):
    def __init__(self, logger=None):
        self._handle = new_handle(lib.ductile_builder_create)
        self._free = lib.ductile_builder_free

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
        return BuilderConfig(self._handle)

    def build_engine(self, network, config):
        out = ctypes.c_void_p()
        check(lib.ductile_builder_build(self._handle, network._handle, config._handle,
                                        ctypes.byref(out)))
        return Engine(out.value)

    def build_serialized_network(self, network, config):
        return self.build_engine(network, config).serialize()
