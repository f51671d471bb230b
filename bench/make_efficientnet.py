"""Writes an EfficientNet-B0 (torchvision's layout as PyTorch's exporter writes it in eval mode:
batch norms folded into the convolutions, SiLU as Sigmoid + Mul, squeeze-and-excitation as
GlobalAveragePool, two 1x1 convolutions with SiLU and Sigmoid, Mul) with random weights and a
dynamic batch dim, opset 17.
Usage: python bench/make_efficientnet.py OUT.onnx"""
import sys

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from onnx_gen import Names, save

# expand ratio, kernel, stride, in channels, out channels, layers (torchvision's efficientnet_b0)
STAGES = ((1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
          (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1))


def build(path, seed=0):
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    name = Names()

    def silu(x):
        s, m = name("sigmoid"), name("silu")
        nodes.append(helper.make_node("Sigmoid", [x], [s]))
        nodes.append(helper.make_node("Mul", [x, s], [m]))
        return m

    def conv(x, cin, cout, k, stride=1, groups=1, act=True):
        w, b, y = name("w"), name("b"), name("conv")
        fan = cin // groups * k * k
        inits.append(numpy_helper.from_array(
            (rng.standard_normal((cout, cin // groups, k, k)) * np.sqrt(2.0 / fan)).astype(np.float32), w))
        inits.append(numpy_helper.from_array((rng.standard_normal(cout) * 0.05).astype(np.float32), b))
        nodes.append(helper.make_node("Conv", [x, w, b], [y], kernel_shape=[k, k], strides=[stride, stride],
                                      pads=[k // 2] * 4, group=groups))
        return silu(y) if act else y

    def squeeze_excite(x, channels, squeezed):
        g, s, m = name("gap"), name("gate"), name("scaled")
        nodes.append(helper.make_node("GlobalAveragePool", [x], [g]))
        h = conv(g, channels, squeezed, 1)
        h = conv(h, squeezed, channels, 1, act=False)
        nodes.append(helper.make_node("Sigmoid", [h], [s]))
        nodes.append(helper.make_node("Mul", [x, s], [m]))
        return m

    x = conv("input", 3, 32, 3, 2)
    for expand, k, stride, cin, cout, layers in STAGES:
        for i in range(layers):
            c_in = cin if i == 0 else cout
            s = stride if i == 0 else 1
            wide = c_in * expand
            y = conv(x, c_in, wide, 1) if expand != 1 else x
            y = conv(y, wide, wide, k, s, groups=wide)
            y = squeeze_excite(y, wide, max(1, c_in // 4))
            y = conv(y, wide, cout, 1, act=False)
            if s == 1 and c_in == cout:
                a = name("add")
                nodes.append(helper.make_node("Add", [y, x], [a]))
                y = a
            x = y
    x = conv(x, 320, 1280, 1)
    g, f = name("gap"), name("flat")
    nodes.append(helper.make_node("GlobalAveragePool", [x], [g]))
    nodes.append(helper.make_node("Flatten", [g], [f], axis=1))
    inits.append(numpy_helper.from_array((rng.standard_normal((1000, 1280)) * 0.01).astype(np.float32), "fc_w"))
    inits.append(numpy_helper.from_array(np.zeros(1000, np.float32), "fc_b"))
    nodes.append(helper.make_node("Gemm", [f, "fc_w", "fc_b"], ["output"], transB=1))
    save(path, nodes, "efficientnet_b0",
         [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 224, 224])],
         [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 1000])], inits)

if __name__ == "__main__":
    build(sys.argv[1])
