"""ductile: a dynamic-shape inference engine for ONNX models, with TensorRT's Python names.

    builder = ductile.Builder()
    network = builder.parse_onnx("model.onnx")
    profile = builder.create_optimization_profile()
    profile.set_shape("input", (1, 3, 64, 64), (1, 3, 256, 256), (4, 3, 512, 512))
    config = builder.create_builder_config()
    config.add_optimization_profile(profile)
    engine = builder.build_engine(network, config)
    outputs = engine.create_execution_context().run({"input": x})

A ctypes binding over libductile.so ($DUCTILE_LIB, else the one inside an installed package,
else the checkout's build/); it uses only include/ductile.h. `import ductile as trt` runs
code written for TensorRT's Python API (trt.py).
"""
from ._enums import (ActivationType, BuilderFlag, ElementWiseOperation, MemoryPoolType,
                     TensorIOMode)
from ._lib import Error, lib as _clib, text as _text
from .builder import Builder, BuilderConfig, OptimizationProfile
from .context import Context, ExecutionContext
from .engine import Engine, Runtime, load_engine
from .network import Layer, Network, OnnxParser, ParserError, Tensor

Error.__module__ = "ductile"  # tracebacks say ductile.Error, the name users catch
__version__ = _text(_clib.ductile_version())

# TensorRT's Python API: `import ductile as trt` (trt.py).
from .trt import (DataType, ILogger, IProfiler, Logger, NetworkDefinitionCreationFlag, TensorLocation,
                  __getattr__, bfloat16, bool, float16, float32, fp8, init_libnvinfer_plugins,
                  int4, int8, int32, int64, nptype, uint8, volume)

__all__ = [
    "ActivationType", "Builder", "BuilderConfig", "BuilderFlag", "Context", "ElementWiseOperation",
    "Engine", "Error", "ExecutionContext", "Layer", "Logger", "MemoryPoolType", "Network",
    "OnnxParser", "OptimizationProfile", "ParserError", "Runtime", "Tensor", "TensorIOMode",
    "load_engine",
    # TensorRT's module-level names
    "DataType", "ILogger", "IProfiler", "NetworkDefinitionCreationFlag", "TensorLocation", "bfloat16", "bool",
    "float16", "float32", "fp8", "init_libnvinfer_plugins", "int4", "int8", "int32", "int64",
    "nptype", "uint8", "volume",
]
