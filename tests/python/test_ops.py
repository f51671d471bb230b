"""Each supported op, as a one-node (or few-node) ONNX model with symbolic dims, matches
onnxruntime at odd sizes: rel-L2 1e-5 for floats, exact for integers and bools.

Every model feeds at least one graph input: ops whose inputs are all initializers are folded
at build time and would never reach a kernel."""
import dataclasses
from dataclasses import dataclass, field

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import ductile
from util import OP_RTOL, assert_close, ort_run

F, I64, I32, B = np.float32, np.int64, np.int32, np.bool_
_ONNX_TYPE = {np.float32: TensorProto.FLOAT, np.int64: TensorProto.INT64,
              np.int32: TensorProto.INT32, np.bool_: TensorProto.BOOL,
              np.float64: TensorProto.DOUBLE, np.float16: TensorProto.FLOAT16}


@dataclass
class Case:
    id: str
    nodes: list
    inputs: list            # (name, numpy type, dims of ints and symbol names, value kind)
    outputs: list           # (name, numpy type)
    sizes: dict             # symbol -> the odd size it takes in the test
    inits: dict = field(default_factory=dict)
    opset: int = 17
    ranges: dict = field(default_factory=dict)  # symbol -> (min, max) where half..twice won't do
    # numpy reference (feeds, inits) -> {output: array}, or "onnx" for ONNX's reference evaluator,
    # for what onnxruntime does not run
    reference: object = None


def node(op, ins, outs=("y",), **attrs):
    return helper.make_node(op, list(ins), list(outs), name=f"{op.lower()}_{outs[0]}", **attrs)


def x_in(dims, kind="normal", name="x", dtype=F):
    return (name, dtype, dims, kind)


def one(op, dims=("n", "c", "h"), kind="normal", dtype=F, out=None, opset=17, sizes=None,
        **attrs):
    """A unary op on x."""
    return Case(op if dtype is F else f"{op}-{np.dtype(dtype).name}",
                [node(op, ["x"], **attrs)], [x_in(dims, kind, dtype=dtype)],
                [("y", out or dtype)], sizes or {"n": 3, "c": 5, "h": 7}, opset=opset)


def two(op, a_dims, b_dims, dtype=F, out=None, kinds=("normal", "normal"), tag="", **attrs):
    """A binary op on a and b, both graph inputs."""
    return Case(f"{op}{tag}" if dtype is F else f"{op}{tag}-{np.dtype(dtype).name}",
                [node(op, ["a", "b"], **attrs)],
                [("a", dtype, a_dims, kinds[0]), ("b", dtype, b_dims, kinds[1])],
                [("y", out or dtype)], {"n": 3, "c": 5, "h": 7})


def with_init(id, op, dims, inits, ins, sizes, opset=17, out=F, kind="normal", dtype=F,
              **attrs):
    """An op on x with the other inputs as initializers."""
    return Case(id, [node(op, ins, **attrs)], [x_in(dims, kind, dtype=dtype)], [("y", out)],
                sizes, inits={k: np.asarray(v) for k, v in inits.items()}, opset=opset)


def conv(id, c_in, c_out, k, group=1, bias=True, sizes=None, **attrs):
    rng = np.random.default_rng(len(id))
    inits = {"w": rng.standard_normal((c_out, c_in // group, k, k), dtype=F)}
    if bias:
        inits["b"] = rng.standard_normal(c_out, dtype=F)
    return with_init(id, "Conv", ("n", c_in, "h", "w"), inits, ["x", "w"] + (["b"] if bias else []),
                     sizes or {"n": 2, "h": 13, "w": 11}, group=group, **attrs)


def conv3d(id, c_in, c_out, k, group=1, bias=True, relu=False, sizes=None, **attrs):
    """A 3-D conv (the direct path); relu: followed by a Relu, which the builder fuses."""
    rng = np.random.default_rng(len(id) + 7)
    k = k if isinstance(k, tuple) else (k, k, k)
    inits = {"w": rng.standard_normal((c_out, c_in // group, *k), dtype=F)}
    if bias:
        inits["b"] = rng.standard_normal(c_out, dtype=F)
    nodes = [node("Conv", ["x", "w"] + (["b"] if bias else []), ["c" if relu else "y"], group=group, **attrs)]
    if relu:
        nodes.append(node("Relu", ["c"], ["y"]))
    return Case(id, nodes, [x_in(("n", c_in, "d", "h", "w"))], [("y", F)],
                sizes or {"n": 2, "d": 5, "h": 7, "w": 6}, inits=inits)


R = np.random.default_rng(1234)
SHAPE_CHAIN_NODES = [node("Shape", ["x"], ["s"]),
                     node("Gather", ["s", "i1"], ["d"], axis=0)]

CASES = [
    # unary and activations
    *[one(op) for op in ("Relu", "Sigmoid", "Tanh", "Erf", "Exp", "Neg", "Abs", "Floor", "Ceil",
                         "HardSwish", "Softplus", "Identity")],
    one("Log", kind="pos"), one("Sqrt", kind="pos"), one("Reciprocal", kind="pos"),
    one("HardSigmoid", alpha=0.3, beta=0.4), one("LeakyRelu", alpha=0.07), one("Elu", alpha=0.8),
    one("IsNaN", kind="nan", out=B), one("Not", kind="bool", dtype=B),
    one("Relu", kind="int", dtype=I32), one("Neg", kind="int", dtype=I32),
    one("Abs", kind="int", dtype=I64), one("Identity", kind="int", dtype=I64),
    # Clip: inputs since opset 11, attributes before
    with_init("Clip", "Clip", ("n", "c"), {"lo": F(-0.5), "hi": F(0.7)}, ["x", "lo", "hi"],
              {"n": 3, "c": 9}, opset=13),
    with_init("Clip-min-only", "Clip", ("n", "c"), {"lo": F(0.1)}, ["x", "lo"], {"n": 3, "c": 9},
              opset=13),
    with_init("Clip-relu6", "Clip", ("n", "c"), {"lo": F(0), "hi": F(6)}, ["x", "lo", "hi"],
              {"n": 3, "c": 9}, opset=13, kind="wide"),
    Case("Clip-opset10-attributes", [node("Clip", ["x"], min=-0.3, max=0.2)], [x_in(("n", "c"))],
         [("y", F)], {"n": 4, "c": 5}, opset=10),
    with_init("Clip-int64", "Clip", ("n", "c"), {"lo": I64(-3), "hi": I64(4)}, ["x", "lo", "hi"],
              {"n": 3, "c": 9}, opset=13, out=I64, kind="int", dtype=I64),
    # binary arithmetic with broadcasting
    *[two(op, ("n", "c", "h"), ("c", 1)) for op in ("Add", "Sub", "Mul")],
    two("Div", ("n", "c", "h"), ("h",), kinds=("normal", "pos")),
    two("Pow", ("n", "c", "h"), ("c", "h"), kinds=("pos", "small")),
    two("Add", ("n", 1, "h"), ("c", 1), tag="-both-broadcast"),
    two("Add", ("n", "c"), ("n", "c"), dtype=I64, kinds=("int", "int")),
    two("Mul", ("n", "c"), ("c",), dtype=I32, kinds=("int", "int")),
    two("Sub", ("n", "c"), ("c",), dtype=I64, kinds=("int", "int")),
    two("Div", ("n", "c"), ("c",), dtype=I64, kinds=("int", "nonzero")),
    Case("Max-3", [node("Max", ["a", "b", "c"])],
         [("a", F, ("n", "h"), "normal"), ("b", F, ("h",), "normal"), ("c", F, ("n", 1), "normal")],
         [("y", F)], {"n": 3, "h": 7}),
    Case("Min-3", [node("Min", ["a", "b", "c"])],
         [("a", F, ("n", "h"), "normal"), ("b", F, ("h",), "normal"), ("c", F, ("n", 1), "normal")],
         [("y", F)], {"n": 3, "h": 7}),
    Case("Sum-3", [node("Sum", ["a", "b", "c"])],
         [("a", F, ("n", "h"), "normal"), ("b", F, ("h",), "normal"), ("c", F, ("n", 1), "normal")],
         [("y", F)], {"n": 3, "h": 7}),
    Case("Mean-2", [node("Mean", ["a", "b"])],
         [("a", F, ("n", "h"), "normal"), ("b", F, ("h",), "normal")], [("y", F)], {"n": 3, "h": 7}),
    # comparisons and logic
    two("Equal", ("n", "c"), ("c",), dtype=I64, out=B, kinds=("int", "int")),
    two("Equal", ("n", "c"), ("n", "c"), out=B, kinds=("coarse", "coarse")),
    *[two(op, ("n", "c"), ("c",), out=B, kinds=("coarse", "coarse"))
      for op in ("Less", "LessOrEqual", "Greater", "GreaterOrEqual")],
    two("Less", ("n", "c"), ("c",), dtype=I64, out=B, kinds=("int", "int")),
    *[two(op, ("n", "c"), ("c",), dtype=B, kinds=("bool", "bool")) for op in ("And", "Or", "Xor")],
    Case("Where", [node("Where", ["cond", "a", "b"])],
         [("cond", B, ("n", "c"), "bool"), ("a", F, ("n", "c"), "normal"), ("b", F, ("c",), "normal")],
         [("y", F)], {"n": 4, "c": 9}),
    Case("Where-int64", [node("Where", ["cond", "a", "b"])],
         [("cond", B, ("n", 1), "bool"), ("a", I64, ("n", "c"), "int"), ("b", I64, ("c",), "int")],
         [("y", I64)], {"n": 4, "c": 9}),
    # Cast
    *[Case(f"Cast-{np.dtype(src).name}-{np.dtype(dst).name}",
           [node("Cast", ["x"], to=_ONNX_TYPE[dst])], [x_in(("n", "c"), kind, dtype=src)],
           [("y", dst)], {"n": 3, "c": 11})
      for src, dst, kind in ((F, I64, "wide"), (I64, F, "int"), (F, B, "coarse"), (B, F, "bool"),
                             (I32, I64, "int"), (I64, I32, "int"), (F, I32, "wide"),
                             (B, I64, "bool"))],
    # shapes and indexing
    Case("Shape", [node("Shape", ["x"])], [x_in(("n", "c", "h"))], [("y", I64)],
         {"n": 3, "c": 5, "h": 7}),
    Case("Shape-start-end", [node("Shape", ["x"], start=1, end=-1)], [x_in(("n", "c", "h"))],
         [("y", I64)], {"n": 3, "c": 5, "h": 7}),
    Case("Size", [node("Size", ["x"])], [x_in(("n", "c"))], [("y", I64)], {"n": 3, "c": 5}),
    Case("Gather-axis1", [node("Gather", ["x", "i"], axis=1)],
         [x_in(("n", "c")), ("i", I64, ("k",), "index:c")], [("y", F)], {"n": 3, "c": 9, "k": 5}),
    Case("Gather-embedding", [node("Gather", ["table", "ids"], axis=0)],
         [("ids", I64, ("b", "s"), "index:50")], [("y", F)], {"b": 2, "s": 13},
         inits={"table": R.standard_normal((50, 16), dtype=F)}),
    Case("Gather-scalar-index", [node("Gather", ["x", "i"], axis=0)],
         [x_in(("n", "c"))], [("y", F)], {"n": 3, "c": 9}, inits={"i": np.array(-1, I64)}),
    Case("GatherElements", [node("GatherElements", ["x", "i"], axis=1)],
         [x_in(("n", "c")), ("i", I64, ("n", "k"), "index:c")], [("y", F)],
         {"n": 3, "c": 9, "k": 4}),
    with_init("Unsqueeze", "Unsqueeze", ("n", "c"), {"axes": np.array([1, -1], I64)}, ["x", "axes"],
              {"n": 3, "c": 5}, opset=13),
    with_init("Squeeze", "Squeeze", ("n", 1, "c"), {"axes": np.array([1], I64)}, ["x", "axes"],
              {"n": 3, "c": 5}, opset=13),
    Case("Concat-axis1", [node("Concat", ["a", "b", "c"], axis=1)],
         [("a", F, ("n", "p", "h"), "normal"), ("b", F, ("n", 3, "h"), "normal"),
          ("c", F, ("n", "q", "h"), "normal")], [("y", F)], {"n": 2, "p": 5, "q": 1, "h": 7}),
    Case("Concat-int64-last", [node("Concat", ["a", "b"], axis=-1)],
         [("a", I64, ("n", "p"), "int"), ("b", I64, ("n", "q"), "int")], [("y", I64)],
         {"n": 2, "p": 5, "q": 3}),
    with_init("Slice", "Slice", ("n", "c", "h"),
              {"st": np.array([1, -6], I64), "en": np.array([1000, -1], I64),
               "ax": np.array([1, 2], I64), "sp": np.array([1, 2], I64)},
              ["x", "st", "en", "ax", "sp"], {"n": 2, "c": 5, "h": 13}),
    with_init("Slice-negative-step", "Slice", ("n", "c"),
              {"st": np.array([-2], I64), "en": np.array([-1000], I64),
               "ax": np.array([1], I64), "sp": np.array([-3], I64)},
              ["x", "st", "en", "ax", "sp"], {"n": 2, "c": 11}),
    with_init("Reshape-keep-and-infer", "Reshape", ("n", "c", "h"), {"s": np.array([0, -1], I64)},
              ["x", "s"], {"n": 3, "c": 5, "h": 7}),
    with_init("Reshape-split-fixed-dim", "Reshape", ("n", 6, "h"),
              {"s": np.array([0, 2, 3, -1], I64)}, ["x", "s"], {"n": 3, "h": 7}),
    Case("Transpose", [node("Transpose", ["x"], perm=[2, 0, 1])], [x_in(("n", "c", "h"))],
         [("y", F)], {"n": 3, "c": 5, "h": 7}),
    Case("Transpose-4d", [node("Transpose", ["x"], perm=[0, 2, 1, 3])],
         [x_in(("n", "s", "h", "d"))], [("y", F)], {"n": 2, "s": 9, "h": 4, "d": 8}),
    Case("Flatten", [node("Flatten", ["x"], axis=2)], [x_in(("n", "c", "h", "w"))], [("y", F)],
         {"n": 2, "c": 3, "h": 5, "w": 7}),
    with_init("Expand", "Expand", ("c", 1), {"s": np.array([2, 1, 5], I64)}, ["x", "s"],
              {"c": 7}),
    Case("ConstantOfShape-of-Shape",
         [node("Shape", ["x"], ["s"]),
          node("ConstantOfShape", ["s"], value=helper.make_tensor("v", TensorProto.FLOAT, [1],
                                                                    [1.5]))],
         [x_in(("n", "c"))], [("y", F)], {"n": 3, "c": 7}),
    Case("Range-of-dim", [*SHAPE_CHAIN_NODES, node("Range", ["zero", "d", "one"])],
         [x_in(("n", "s"))], [("y", I64)], {"n": 2, "s": 13},
         inits={"i1": np.array(1, I64), "zero": np.array(0, I64), "one": np.array(1, I64)}),
    Case("DepthToSpace-CRD", [node("DepthToSpace", ["x"], blocksize=3, mode="CRD")],
         [x_in(("n", 18, "h", "w"))], [("y", F)], {"n": 2, "h": 5, "w": 7}),
    Case("DepthToSpace-DCR", [node("DepthToSpace", ["x"], blocksize=2, mode="DCR")],
         [x_in(("n", 8, "h", "w"))], [("y", F)], {"n": 2, "h": 5, "w": 7}),
    Case("SpaceToDepth", [node("SpaceToDepth", ["x"], blocksize=2)],
         [x_in(("n", 3, "h", "w"))], [("y", F)], {"n": 2, "h": 6, "w": 10},
         ranges={"h": (2, 12), "w": (2, 20)}),
    with_init("Tile", "Tile", ("n", "c"), {"r": np.array([2, 3], I64)}, ["x", "r"],
              {"n": 3, "c": 5}),
    with_init("Pad-constant", "Pad", ("n", "c", "h"),
              {"p": np.array([0, 1, 2, 0, 0, 3], I64), "v": F(0.5)}, ["x", "p", "v"],
              {"n": 2, "c": 3, "h": 7}, mode="constant"),
    with_init("Pad-reflect", "Pad", ("n", "c", "h"), {"p": np.array([0, 0, 2, 0, 0, 3], I64)},
              ["x", "p"], {"n": 2, "c": 3, "h": 7}, mode="reflect"),
    with_init("Pad-edge", "Pad", ("n", "c", "h"), {"p": np.array([0, 0, 2, 0, 0, 3], I64)},
              ["x", "p"], {"n": 2, "c": 3, "h": 7}, mode="edge"),
    Case("Split", [node("Split", ["x", "s"], ["y", "z"], axis=1)], [x_in(("n", 5, "h"))],
         [("y", F), ("z", F)], {"n": 3, "h": 7}, inits={"s": np.array([2, 3], I64)}, opset=13),
    Case("Split-equal", [node("Split", ["x"], ["y", "z"], axis=-1)], [x_in(("n", 6))],
         [("y", F), ("z", F)], {"n": 3}, opset=13),
    # convolutions
    conv("Conv", 3, 8, 3, pads=[1, 1, 1, 1]),
    conv("Conv-nobias-valid", 3, 4, 3, bias=False),
    conv("Conv-depthwise", 8, 8, 3, group=8, pads=[1, 1, 1, 1]),
    conv("Conv-strided", 3, 6, 3, strides=[2, 2], pads=[1, 1, 1, 1]),
    conv("Conv-dilated", 4, 5, 3, dilations=[2, 2], pads=[2, 2, 2, 2]),
    conv("Conv-grouped", 4, 6, 3, group=2, pads=[1, 1, 1, 1]),
    conv("Conv-1x1", 16, 24, 1),
    conv("Conv-5x5-asym-pads", 1, 4, 5, pads=[2, 1, 0, 2]),
    conv("Conv-depthwise-strided", 6, 6, 3, group=6, strides=[2, 2], pads=[1, 1, 1, 1]),
    conv("Conv-same-upper", 3, 5, 3, strides=[2, 2], auto_pad="SAME_UPPER"),
    conv3d("Conv3d", 3, 4, 3, pads=[1, 1, 1, 1, 1, 1]),
    conv3d("Conv3d-nobias-valid", 2, 5, 2, bias=False),
    conv3d("Conv3d-grouped-strided", 4, 6, 3, group=2, strides=[2, 1, 2], pads=[1, 0, 1, 1, 2, 0]),
    conv3d("Conv3d-dilated", 3, 3, (2, 3, 2), dilations=[2, 1, 2], pads=[1, 1, 1, 1, 1, 1]),
    conv3d("Conv3d-depthwise-relu", 5, 5, 3, group=5, relu=True, pads=[1, 1, 1, 1, 1, 1]),
    conv3d("Conv3d-same-lower", 3, 2, 3, strides=[2, 2, 2], auto_pad="SAME_LOWER"),
    # linear algebra
    Case("Gemm-transB-bias", [node("Gemm", ["x", "w", "b"], transB=1)], [x_in(("n", 24))],
         [("y", F)], {"n": 5},
         inits={"w": R.standard_normal((10, 24), dtype=F), "b": R.standard_normal(10, dtype=F)}),
    Case("Gemm-alpha-beta", [node("Gemm", ["x", "w", "b"], alpha=0.5, beta=2.0)],
         [x_in(("n", 24))], [("y", F)], {"n": 5},
         inits={"w": R.standard_normal((24, 10), dtype=F), "b": R.standard_normal((1, 10), dtype=F)}),
    Case("Gemm-transA", [node("Gemm", ["x", "w"], transA=1)], [x_in((24, "n"))], [("y", F)],
         {"n": 5}, inits={"w": R.standard_normal((24, 10), dtype=F)}),
    Case("MatMul-weights", [node("MatMul", ["x", "w"])], [x_in(("b", "s", 32))], [("y", F)],
         {"b": 2, "s": 13}, inits={"w": R.standard_normal((32, 20), dtype=F)}),
    Case("MatMul-batched", [node("MatMul", ["a", "b"])],
         [("a", F, ("n", 4, "s", 8), "normal"), ("b", F, ("n", 4, 8, "s"), "normal")],
         [("y", F)], {"n": 2, "s": 11}),
    Case("MatMul-broadcast", [node("MatMul", ["a", "b"])],
         [("a", F, ("n", 1, "s", 8), "normal"), ("b", F, (3, 8, "t"), "normal")],
         [("y", F)], {"n": 2, "s": 11, "t": 5}),
    Case("MatMul-vector", [node("MatMul", ["a", "b"])],
         [("a", F, ("k",), "normal"), ("b", F, ("n", "k", "m"), "normal")],
         [("y", F)], {"n": 2, "k": 9, "m": 5}),
    # pooling, resize, normalization, reductions
    one("GlobalAveragePool", dims=("n", "c", "h", "w"), sizes={"n": 2, "c": 5, "h": 7, "w": 9}),
    one("GlobalMaxPool", dims=("n", "c", "h", "w"), sizes={"n": 2, "c": 5, "h": 7, "w": 9}),
    one("MaxPool", dims=("n", "c", "h", "w"), sizes={"n": 2, "c": 3, "h": 11, "w": 9},
        kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
    one("AveragePool", dims=("n", "c", "h", "w"), sizes={"n": 2, "c": 3, "h": 11, "w": 9},
        kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
    *[Case(f"MaxPool-indices-{tag}", [node("MaxPool", ["x"], ["y", "i"], **attrs)], [x_in(dims)],
           [("y", F), ("i", np.int64)], sizes)
      for tag, dims, sizes, attrs in [
          ("rows", ("n", "c", "h", "w"), {"n": 2, "c": 3, "h": 11, "w": 9},
           dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
          ("cols", ("n", "c", "h", "w"), {"n": 2, "c": 3, "h": 11, "w": 9},
           dict(kernel_shape=[3, 2], strides=[2, 1], pads=[1, 0, 1, 1], storage_order=1)),
          ("dilated-1d", ("n", "c", "w"), {"n": 2, "c": 3, "w": 13}, dict(kernel_shape=[3], dilations=[2])),
          ("3d", ("n", "c", "d", "h", "w"), {"n": 1, "c": 2, "d": 5, "h": 6, "w": 7},
           dict(kernel_shape=[2, 3, 2], strides=[2, 2, 1], pads=[0, 1, 1, 1, 1, 0]))]],
    # PRelu: numpy broadcasting from opset 7; before, a [C] slope is per channel (dim 1)
    with_init("PRelu-channel-slope", "PRelu", ("n", 4, "h", "w"), {"s": R.standard_normal((4, 1, 1), dtype=F)},
              ["x", "s"], {"n": 2, "h": 3, "w": 5}),
    # (onnxruntime has no PRelu-6: numpy is the reference)
    *[Case(f"PRelu-opset6-channel-slope-{len(dims) - 2}d", [node("PRelu", ["x", "s"])], [x_in(dims)], [("y", F)],
           sizes, inits={"s": R.standard_normal(dims[1], dtype=F)}, opset=6,
           reference=lambda f, i: {"y": np.where(f["x"] < 0, f["x"] * i["s"].reshape(-1, *[1] * (f["x"].ndim - 2)),
                                                 f["x"])})
      for dims, sizes in [(("n", 4, "h", "w"), {"n": 2, "h": 3, "w": 5}), (("n", 3, "w"), {"n": 2, "w": 3}),
                          (("n", 2, "d", "h", "w"), {"n": 1, "d": 2, "h": 3, "w": 2})]],
    # RoiAlign: regions inside, across the border, beyond it, degenerate; adaptive and fixed grids
    *[Case(f"RoiAlign-{tag}", [node("RoiAlign", ["x", "rois", "bi"], **attrs)], [x_in(("n", 3, "h", "w"))],
           [("y", F)], {"n": 2, "h": 9, "w": 11}, opset=opset,
           inits={"rois": np.array([[0.5, 1.0, 6.5, 7.25], [-2.0, -1.0, 4.0, 3.0], [3.0, 2.0, 3.2, 2.1],
                                    [8.0, 6.0, 14.0, 12.5], [0, 0, 10, 8]], F),
                  "bi": np.array([0, 1, 1, 0, 1], np.int64)})
      for tag, opset, attrs in [
          ("avg", 16, dict(output_height=3, output_width=4)),
          ("max", 16, dict(mode="max", output_height=2, output_width=3, sampling_ratio=2)),
          ("output-half-pixel", 16, dict(coordinate_transformation_mode="output_half_pixel", output_height=5,
                                         output_width=2, spatial_scale=0.5)),
          ("opset10", 10, dict(output_height=2, output_width=2, sampling_ratio=3))]],
    # BatchNormalization with training_mode = 1: batch statistics, running mean and variance
    Case("BatchNormalization-training", [node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y", "rm", "rv"],
                                              training_mode=1, momentum=0.8, epsilon=1e-3)],
         [x_in(("n", 3, "h", "w"))], [("y", F), ("rm", F), ("rv", F)], {"n": 2, "h": 5, "w": 3}, opset=15,
         inits={"s": R.standard_normal(3, dtype=F), "b": R.standard_normal(3, dtype=F),
                "m": R.standard_normal(3, dtype=F), "v": R.uniform(0.5, 2, 3).astype(F)},
         reference=lambda f, i: (lambda x, mean, var: {
             "y": ((x - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-3) * i["s"][:, None, None]
                   + i["b"][:, None, None]).astype(F),
             "rm": (i["m"] * 0.8 + mean * 0.2).astype(F), "rv": (i["v"] * 0.8 + var * 0.2).astype(F)})(
             f["x"].astype(np.float64), f["x"].astype(np.float64).mean(axis=(0, 2, 3)),
             f["x"].astype(np.float64).var(axis=(0, 2, 3)))),
    # DeformConv: onnxruntime runs none of these here; ONNX's reference evaluator is the reference
    *[Case(f"DeformConv-{tag}", [node("DeformConv", ins, **attrs)], [x_in(("n", 4, "h", "w"))], [("y", F)],
           {"n": 2, "h": 7, "w": 6}, opset=19, ranges={"n": (2, 2), "h": (7, 7), "w": (6, 6)}, inits=inits,
           reference="onnx")
      for tag, ins, attrs, inits in [
          ("plain", ["x", "w", "off"], dict(), {
              "w": R.standard_normal((3, 4, 3, 3), dtype=F),
              "off": (R.standard_normal((2, 18, 5, 4)) * 1.5).astype(F)}),
          ("groups-bias-mask", ["x", "w", "off", "b", "m"],
           dict(group=2, offset_group=2, pads=[1, 0, 1, 1], strides=[2, 1], dilations=[1, 2]), {
              "w": R.standard_normal((6, 2, 2, 3), dtype=F),
              "off": (R.standard_normal((2, 24, 4, 3)) * 2).astype(F),
              "b": R.standard_normal(6, dtype=F), "m": R.uniform(0, 1, (2, 12, 4, 3)).astype(F)})]],
    # TfIdfVectorizer: unigrams and bigrams with skips, each weighting, repeated n-grams in the pool
    *[Case(f"TfIdfVectorizer-{mode}-{tag}", [node("TfIdfVectorizer", ["x"], mode=mode, **attrs)],
           [("x", dt, ("b", "c"), "tokens")], [("y", F)], {"b": 3, "c": 11})
      for mode in ("TF", "IDF", "TFIDF") for tag, dt, attrs in [
          ("bigrams-skip2", np.int64, dict(min_gram_length=1, max_gram_length=2, max_skip_count=2,
                                           ngram_counts=[0, 4], ngram_indexes=[0, 1, 2, 3, 4, 5, 6],
                                           pool_int64s=[2, 3, 1, 4, 1, 2, 3, 4, 2, 1])),
          ("trigrams-weights-int32", np.int32, dict(min_gram_length=2, max_gram_length=3, max_skip_count=1,
                                                    ngram_counts=[0, 3, 7], ngram_indexes=[4, 0, 3, 1, 2, 5, 6],
                                                    pool_int64s=[1, 2, 3, 1, 2, 2, 1, 1, 2, 3, 2, 1, 1],
                                                    weights=[0.5, 2.0, 1.5, 0.25, 3.0, 1.0, 0.75]))]],
    # QuantizeLinear -> DequantizeLinear through the 4- and 2-bit integers and the minifloats
    # (per-axis scales; zero points where the type has them), ONNX's reference evaluator
    *[Case(f"QDQ-{name}", [node("QuantizeLinear", ["x", "s"] + (["z"] if zp else []), ["q"], axis=1, **qattrs),
                           node("DequantizeLinear", ["q", "s"] + (["z"] if zp else []), ["y"], axis=1)],
           [x_in(("n", 3, "w"), "wide")], [("y", F)], {"n": 2, "w": 5}, opset=23, reference="onnx",
           inits={"s": np.array([0.5, 1.5, 0.25], F),
                  **({"z": helper.make_tensor("z", dtype, [3], zp)} if zp else {})})
      for name, dtype, zp, qattrs in [
          ("int4", TensorProto.INT4, [1, -2, 0], {}), ("uint4", TensorProto.UINT4, [3, 8, 0], {}),
          ("int2", TensorProto.INT2, [0, -1, 1], {}), ("uint2", TensorProto.UINT2, [1, 0, 2], {}),
          ("float8e4m3fn", TensorProto.FLOAT8E4M3FN, None, {}),
          ("float8e5m2-nosaturate", TensorProto.FLOAT8E5M2, None, {"output_dtype": TensorProto.FLOAT8E5M2,
                                                                   "saturate": 0}),
          ("float4e2m1", TensorProto.FLOAT4E2M1, None, {"output_dtype": TensorProto.FLOAT4E2M1})]],
    Case("AveragePool-count-pad", [node("AveragePool", ["x"], kernel_shape=[2, 2], pads=[1, 1, 0, 0],
                                        count_include_pad=1)],
         [x_in(("n", "c", "h", "w"))], [("y", F)], {"n": 2, "c": 3, "h": 7, "w": 6}),
    with_init("Resize-nearest-scales", "Resize", ("n", "c", "h", "w"),
              {"sc": np.array([1, 1, 2, 3], F)}, ["x", "", "sc"],
              {"n": 2, "c": 3, "h": 5, "w": 7}, mode="nearest"),
    with_init("Resize-linear-half-pixel", "Resize", ("n", "c", "h", "w"),
              {"sc": np.array([1, 1, 2, 2], F)}, ["x", "", "sc"],
              {"n": 2, "c": 3, "h": 5, "w": 7}, mode="linear",
              coordinate_transformation_mode="half_pixel"),
    with_init("Resize-linear-align-corners-down", "Resize", ("n", "c", "h", "w"),
              {"sz": np.array([1, 3, 5, 4], np.int64)}, ["x", "", "", "sz"],
              {"n": 1, "c": 3, "h": 13, "w": 9}, mode="linear",
              coordinate_transformation_mode="align_corners"),
    # Scales that do not divide the dims: length_resized (13 * 0.5 = 6.5) is fractional, and
    # ONNX's transforms divide by it, not by the output dim (onnxruntime does the latter, so
    # these compare with ONNX's reference: onnx/onnx#2462).
    *[dataclasses.replace(with_init(f"Resize-{mode}-{ctm}-fractional-{'down' if sc[2] < 1 else 'up'}"
                                    f"{'-to-1' if sc[2] < 0.2 else ''}",
                                    "Resize", ("n", "c", "h", "w"), {"sc": np.array(sc, F)},
                                    ["x", "", "sc"], {"n": 1, "c": 2, "h": 13, "w": 9},
                                    mode=mode, coordinate_transformation_mode=ctm),
                          reference="onnx")
      for mode in ("linear", "cubic")
      for ctm in ("align_corners", "pytorch_half_pixel", "half_pixel_symmetric")
      # 0.1 * 13 = 1.3: one output, but length_resized > 1 (pytorch_half_pixel's formula)
      for sc in ([1, 1, 0.5, 0.6], [1, 1, 1.7, 2.3], [1, 1, 0.1, 0.15])],
    dataclasses.replace(with_init("Resize-linear-tf-crop-fractional", "Resize", ("n", "c", "h", "w"),
                                  {"roi": np.array([0, 0, 0.1, 0.2, 1, 1, 0.9, 0.7], F),
                                   "sc": np.array([1, 1, 0.7, 1.3], F)}, ["x", "roi", "sc"],
                                  {"n": 1, "c": 2, "h": 13, "w": 9}, mode="linear",
                                  coordinate_transformation_mode="tf_crop_and_resize"),
                        reference="onnx"),
    Case("Resize-sizes-from-shape",
         [node("Shape", ["x"], ["sx"]), node("Shape", ["ref"], ["sr"]),
          node("Slice", ["sx", "i0", "i2"], ["nc"]), node("Slice", ["sr", "i2", "i4"], ["hw"]),
          node("Concat", ["nc", "hw"], ["sizes"], axis=0),
          node("Resize", ["x", "", "", "sizes"], mode="linear",
               coordinate_transformation_mode="pytorch_half_pixel")],
         [x_in(("n", "c", "h", "w")), ("ref", F, ("n", 1, "H", "W"), "normal")], [("y", F)],
         {"n": 1, "c": 3, "h": 5, "w": 7, "H": 17, "W": 12},
         inits={"i0": np.array([0], I64), "i2": np.array([2], I64), "i4": np.array([4], I64)}),
    one("Softmax", axis=-1), one("Softmax", dims=("n", "c", "h"), axis=1, opset=13),
    one("LogSoftmax", axis=-1),
    Case("LayerNormalization", [node("LayerNormalization", ["x", "g", "b"], axis=-1, epsilon=1e-5)],
         [x_in(("n", "s", 32))], [("y", F)], {"n": 2, "s": 13},
         inits={"g": R.standard_normal(32, dtype=F), "b": R.standard_normal(32, dtype=F)}),
    Case("BatchNormalization", [node("BatchNormalization", ["x", "g", "b", "m", "v"])],
         [x_in(("n", 4, "h", "w"))], [("y", F)], {"n": 2, "h": 5, "w": 7},
         inits={"g": R.standard_normal(4, dtype=F), "b": R.standard_normal(4, dtype=F),
                "m": R.standard_normal(4, dtype=F), "v": R.uniform(0.5, 2, 4).astype(F)}),
    Case("InstanceNormalization", [node("InstanceNormalization", ["x", "g", "b"])],
         [x_in(("n", 4, "h", "w"))], [("y", F)], {"n": 2, "h": 5, "w": 7},
         inits={"g": R.standard_normal(4, dtype=F), "b": R.standard_normal(4, dtype=F)}),
    one("ReduceMean", axes=[-1], keepdims=1, opset=13),
    one("ReduceMin", keepdims=0, opset=13),
    with_init("ReduceSum-axes-input", "ReduceSum", ("n", "c", "h"), {"a": np.array([1], I64)},
              ["x", "a"], {"n": 3, "c": 5, "h": 7}, opset=13, keepdims=0),
    with_init("ReduceMax-opset18", "ReduceMax", ("n", "c", "h"), {"a": np.array([0, 2], I64)},
              ["x", "a"], {"n": 3, "c": 5, "h": 7}, opset=18),
]


def make_model(case):
    def vi(name, dtype, dims):
        return helper.make_tensor_value_info(name, _ONNX_TYPE[dtype], dims)
    graph = helper.make_graph(
        case.nodes, case.id.replace("-", "_"),
        [vi(n, t, d) for n, t, d, _ in case.inputs],
        [vi(n, t, None) for n, t in case.outputs],
        initializer=[v if isinstance(v, TensorProto) else numpy_helper.from_array(np.asarray(v), k)
                     for k, v in case.inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", case.opset)])
    model.ir_version = 8
    return model.SerializeToString()


def values(kind, dtype, shape, sizes, rng):
    """Test data; 'coarse' makes ties for comparisons, 'pos' and 'nonzero' keep Log, Sqrt and
    Div defined, 'index:<n|symbol>' draws valid (also negative) indices."""
    if kind == "bool":
        return rng.integers(0, 2, shape).astype(B)
    if kind.startswith("index:"):
        bound = kind.split(":")[1]
        n = sizes[bound] if bound in sizes else int(bound)
        return rng.integers(-n, n, shape).astype(dtype)
    if kind == "int":
        return rng.integers(-20, 20, shape).astype(dtype)
    if kind == "tokens":  # a small vocabulary, so that n-grams repeat
        return rng.integers(1, 5, shape).astype(dtype)
    if kind == "nonzero":
        v = rng.integers(1, 7, shape) * rng.choice([-1, 1], shape)
        return v.astype(dtype)
    x = {"normal": lambda: rng.standard_normal(shape),
         "pos": lambda: rng.uniform(0.5, 2.0, shape),
         "small": lambda: rng.uniform(-2.0, 2.0, shape),
         "wide": lambda: rng.uniform(-9.0, 9.0, shape),
         "coarse": lambda: rng.integers(-2, 3, shape).astype(np.float64),
         "nan": lambda: np.where(rng.random(shape) < 0.3, np.nan, rng.standard_normal(shape))}[kind]()
    return x.astype(dtype)


def profile_dims(dims, case):
    """(min, opt, max): the odd size is opt; the range around it covers half to twice it."""
    def span(d):
        if not isinstance(d, str):
            return d, d, d
        v = case.sizes[d]
        lo, hi = case.ranges.get(d, (max(1, (v + 1) // 2), v * 2))
        return lo, v, hi
    spans = [span(d) for d in dims]
    return tuple([s[i] for s in spans] for i in range(3))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_op_matches_onnxruntime(case):
    data = make_model(case)
    rng = np.random.default_rng(7)
    feeds = {}
    for name, dtype, dims, kind in case.inputs:
        shape = tuple(case.sizes[d] if isinstance(d, str) else d for d in dims)
        feeds[name] = values(kind, dtype, shape, case.sizes, rng)
    if case.reference == "onnx":
        from onnx.reference import ReferenceEvaluator
        want = dict(zip([o for o, _ in case.outputs], ReferenceEvaluator(data).run(None, feeds)))
    else:
        want = case.reference(feeds, case.inits) if case.reference else ort_run(data, feeds)

    builder = ductile.Builder()
    network = builder.parse_onnx_bytes(data)
    profile = builder.create_optimization_profile()
    for name, _, dims, _ in case.inputs:
        profile.set_shape(name, *profile_dims(dims, case))
    config = builder.create_builder_config()
    config.add_optimization_profile(profile)
    engine = builder.build_engine(network, config)
    got = engine.create_execution_context().run(feeds)

    assert sorted(got) == sorted(want)
    for name, expected in want.items():
        assert got[name].dtype == expected.dtype, f"{name}: {got[name].dtype} != {expected.dtype}"
        assert_close(got[name], expected, rtol=OP_RTOL, what=f"{case.id} {name}")


def test_batchnorm_training_outputs_need_training_mode():
    """Outputs 1 and 2 exist only in training mode (opset 14 on); elsewhere the build refuses."""
    for opset, attrs in ((15, {}), (9, {})):
        g = helper.make_graph(
            [helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y", "rm"], name="bn", **attrs)], "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])],
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("y", "rm")],
            [numpy_helper.from_array(np.ones(3, F), n) for n in ("s", "b", "m", "v")])
        data = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)]).SerializeToString()
        b = ductile.Builder()
        with pytest.raises(ductile.Error) as e:
            b.parse_onnx_bytes(data)
            b.build_engine(b.parse_onnx_bytes(data), b.create_builder_config())
        assert str(e.value).endswith(
            f"node 'bn' (BatchNormalization, opset {opset}): output 1 of BatchNormalization is only produced in "
            "training mode, which is supported from opset 14 (training_mode = 1, outputs running_mean and running_var)")


def test_deformconv_refuses_an_offset_of_the_wrong_shape():
    g = helper.make_graph(
        [helper.make_node("DeformConv", ["x", "w", "off"], ["y"], name="dc", offset_group=2)], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.ones((3, 4, 3, 3), F), "w"), numpy_helper.from_array(np.ones((1, 18, 4, 4), F), "off")])
    data = helper.make_model(g, opset_imports=[helper.make_opsetid("", 19)]).SerializeToString()
    b = ductile.Builder()
    with pytest.raises(ductile.Error) as e:
        b.build_engine(b.parse_onnx_bytes(data), b.create_builder_config())
    assert str(e.value).endswith(
        "node 'dc' (DeformConv, opset 19): input 2 (offset) has shape [1,18,4,4]; expected [1, 36, 4, 4] "
        "(N, offset_group*2*kH*kW, output height, width)")


def test_tfidf_refuses_a_pool_of_strings_and_misplaced_ngram_counts():
    def build(**attrs):
        g = helper.make_graph([helper.make_node("TfIdfVectorizer", ["x"], ["y"], name="tf", mode="TF",
                                                min_gram_length=1, max_gram_length=2, **attrs)], "g",
                              [helper.make_tensor_value_info("x", TensorProto.INT64, [2, 5])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
        data = helper.make_model(g, opset_imports=[helper.make_opsetid("", 9)]).SerializeToString()
        b = ductile.Builder()
        with pytest.raises(ductile.Error) as e:
            b.build_engine(b.parse_onnx_bytes(data), b.create_builder_config())
        return str(e.value)
    assert build(ngram_counts=[0, 1], ngram_indexes=[0, 1], pool_strings=["a", "b", "c"]).endswith(
        "node 'tf' (TfIdfVectorizer, opset 9): attribute 'pool_strings': string tensors are not supported by ductile "
        "(a pool of int64 tokens, pool_int64s, is)")
    assert build(ngram_counts=[0, 2], ngram_indexes=[0, 1, 2], pool_int64s=[1, 2, 3]).endswith(
        "node 'tf' (TfIdfVectorizer, opset 9): attribute 'ngram_counts'[1] = 2: the 2-grams must take "
        "pool_int64s[2..3), a multiple of 2 items within the pool of 3")


@pytest.mark.parametrize("op,attrs,states", [
    ("Adagrad", dict(decay_factor=0.1, epsilon=1e-5, norm_coefficient=0.01), 1),
    ("Momentum", dict(alpha=0.9, beta=0.5, mode="nesterov", norm_coefficient=0.02), 1),
    ("Momentum", dict(alpha=0.8, beta=1.0, mode="standard", norm_coefficient=0.0), 1),
    ("Adam", dict(alpha=0.85, beta=0.95, epsilon=1e-4, norm_coefficient=0.01, norm_coefficient_post=0.02), 2)])
def test_training_optimizers_match_onnx_reference(op, attrs, states):
    """Adagrad / Momentum / Adam of ai.onnx.preview.training, two tensors of odd shapes, against
    ONNX's reference evaluator (onnxruntime has no CPU kernels for them)."""
    from onnx.reference import ReferenceEvaluator
    rng = np.random.default_rng(len(op) + states)
    shapes = [(3, 5), (7,)]
    n = len(shapes)
    groups = ["X", "G", "V", "H"][:2 + states] if op == "Adam" else ["X", "G", "H" if op == "Adagrad" else "V"]
    ins = ["R", "T"] + [f"{g}{i}" for g in groups for i in range(n)]
    outs = [f"{g}{i}_new" for g in [groups[0]] + groups[2:] for i in range(n)]
    vis = [helper.make_tensor_value_info("R", TensorProto.FLOAT, []), helper.make_tensor_value_info("T", TensorProto.INT64, [])]
    vis += [helper.make_tensor_value_info(f"{g}{i}", TensorProto.FLOAT, list(shapes[i])) for g in groups for i in range(n)]
    graph = helper.make_graph([helper.make_node(op, ins, outs, domain="ai.onnx.preview.training", **attrs)], "train", vis,
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("ai.onnx.preview.training", 1)])
    model.ir_version = 8
    data = model.SerializeToString()
    feeds = {"R": np.array(0.1, F), "T": np.array(3, np.int64)}
    for g in groups:
        for i in range(n):
            v = rng.standard_normal(shapes[i]).astype(F)
            feeds[f"{g}{i}"] = np.abs(v) if g == "H" else v
    want = dict(zip(outs, ReferenceEvaluator(data).run(None, feeds)))
    b = ductile.Builder()
    engine = b.build_engine(b.parse_onnx_bytes(data), b.create_builder_config())
    got = engine.create_execution_context().run(feeds)
    for name in outs:
        assert_close(got[name], want[name].astype(F), rtol=1e-5, what=f"{op} {name}")
