"""Enums under TensorRT's Python names, mapped onto ductile's C enum values, and the
dtype table between ductile_dtype and numpy."""
import enum

import numpy as np


class ActivationType(enum.IntEnum):
    RELU = 0
    SIGMOID = 1
    TANH = 2


class ElementWiseOperation(enum.IntEnum):
    SUM = 0
    PROD = 1
    SUB = 2
    DIV = 3
    MAX = 4
    MIN = 5


class BuilderFlag(enum.IntEnum):
    FP16 = 0
    BF16 = 1
    TF32 = 2


class MemoryPoolType(enum.IntEnum):
    WORKSPACE = 0


class TensorIOMode(enum.IntEnum):
    NONE = 0
    INPUT = 1
    OUTPUT = 2


_TO_NUMPY = {
    1: np.float32, 2: np.uint8, 3: np.int8, 4: np.uint16, 5: np.int16, 6: np.int32,
    7: np.int64, 9: np.bool_, 10: np.float16, 11: np.float64, 12: np.uint32, 13: np.uint64,
}
try:  # numpy has no bfloat16, float8, 4-bit or 2-bit types; ml_dtypes (an onnx dependency) does
    import ml_dtypes
    # ductile holds each of these in one byte, as ml_dtypes does (itemsize 1), so buffers pass
    # between the two unchanged.
    for _code, _name in ((16, "bfloat16"), (17, "float8_e4m3fn"), (18, "float8_e4m3fnuz"),
                         (19, "float8_e5m2"), (20, "float8_e5m2fnuz"), (21, "uint4"), (22, "int4"),
                         (23, "float4_e2m1fn"), (24, "float8_e8m0fnu"), (25, "uint2"), (26, "int2")):
        if hasattr(ml_dtypes, _name):
            _TO_NUMPY[_code] = getattr(ml_dtypes, _name)
except ImportError:
    pass

_TO_NUMPY[8] = object  # string: numpy object arrays of str (python/ductile/_strings.py)
_FROM_NUMPY = {np.dtype(t): code for code, t in _TO_NUMPY.items()}


def to_numpy_dtype(code):
    """The numpy dtype of a ductile_dtype; None for types numpy has no dtype for
    (undefined; bfloat16, float8, 4-bit and 2-bit types without ml_dtypes)."""
    t = _TO_NUMPY.get(int(code))
    return None if t is None else np.dtype(t)


def from_numpy_dtype(dtype):
    """The ductile_dtype value of a numpy dtype (ml_dtypes' types included); None for dtypes
    ductile has no type for."""
    try:
        return _FROM_NUMPY.get(np.dtype(dtype))
    except TypeError:
        return None
