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
try:  # numpy has no bfloat16; ml_dtypes (an onnx dependency) does
    import ml_dtypes
    _TO_NUMPY[16] = ml_dtypes.bfloat16
except ImportError:
    pass


def to_numpy_dtype(code):
    """The numpy dtype of a ductile_dtype; None for types numpy has no dtype for
    (undefined, string; bfloat16 without ml_dtypes)."""
    t = _TO_NUMPY.get(int(code))
    return None if t is None else np.dtype(t)
