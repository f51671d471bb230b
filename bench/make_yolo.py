"""Writes a YOLOv8n-style detector (Ultralytics' layout at width 0.25, depth 0.33, as PyTorch's
exporter writes it with dynamic axes: batch norms folded, SiLU as Sigmoid + Mul, C2f blocks
with Split and Concat, SPPF's three 5x5 MaxPools, nearest Resize x2, the three-level head)
with random weights; input [batch, 3, height, width] (multiples of 32), output
[batch, 144, anchors]: per anchor 64 box logits (4 x 16 bins) and 80 class scores (Sigmoid).
The box decoding (DFL, anchor grid) is left out. Opset 17.
Usage: python bench/make_yolo.py OUT.onnx"""
import sys

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from onnx_gen import Names, save


def build(path, seed=0):
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    name = Names()

    def const(arr, prefix):
        n = name(prefix)
        inits.append(numpy_helper.from_array(arr, n))
        return n

    def conv(x, cin, cout, k=1, stride=1, act=True):
        w = const((rng.standard_normal((cout, cin, k, k)) * np.sqrt(2.0 / (cin * k * k))).astype(np.float32), "w")
        b = const((rng.standard_normal(cout) * 0.05).astype(np.float32), "b")
        y = name("conv")
        nodes.append(helper.make_node("Conv", [x, w, b], [y], kernel_shape=[k, k], strides=[stride, stride],
                                      pads=[k // 2] * 4))
        if not act:
            return y
        s, m = name("sigmoid"), name("silu")
        nodes.append(helper.make_node("Sigmoid", [y], [s]))
        nodes.append(helper.make_node("Mul", [y, s], [m]))
        return m

    def concat(xs):
        y = name("cat")
        nodes.append(helper.make_node("Concat", xs, [y], axis=1))
        return y

    def c2f(x, cin, cout, n, shortcut):
        c = cout // 2
        y = conv(x, cin, 2 * c)
        parts = [name("split"), name("split")]
        nodes.append(helper.make_node("Split", [y, const(np.array([c, c], np.int64), "halves")], parts, axis=1))
        ys = list(parts)
        for _ in range(n):
            h = conv(conv(ys[-1], c, c, 3), c, c, 3)
            if shortcut:
                a = name("add")
                nodes.append(helper.make_node("Add", [ys[-1], h], [a]))
                h = a
            ys.append(h)
        return conv(concat(ys), (2 + n) * c, cout)

    def sppf(x, cin, cout):
        h = conv(x, cin, cin // 2)
        ys = [h]
        for _ in range(3):
            p = name("pool")
            nodes.append(helper.make_node("MaxPool", [ys[-1]], [p], kernel_shape=[5, 5], pads=[2] * 4))
            ys.append(p)
        return conv(concat(ys), cin * 2, cout)

    def upsample(x):
        y = name("up")
        nodes.append(helper.make_node("Resize", [x, "", const(np.array([1, 1, 2, 2], np.float32), "scales")], [y],
                                      mode="nearest", coordinate_transformation_mode="asymmetric",
                                      nearest_mode="floor"))
        return y

    x = conv("images", 3, 16, 3, 2)
    x = conv(x, 16, 32, 3, 2)
    x = c2f(x, 32, 32, 1, True)
    x = conv(x, 32, 64, 3, 2)
    p3 = c2f(x, 64, 64, 2, True)
    x = conv(p3, 64, 128, 3, 2)
    p4 = c2f(x, 128, 128, 2, True)
    x = conv(p4, 128, 256, 3, 2)
    x = c2f(x, 256, 256, 1, True)
    p5 = sppf(x, 256, 256)
    h4 = c2f(concat([upsample(p5), p4]), 384, 128, 1, False)
    o3 = c2f(concat([upsample(h4), p3]), 192, 64, 1, False)
    o4 = c2f(concat([conv(o3, 64, 64, 3, 2), h4]), 192, 128, 1, False)
    o5 = c2f(concat([conv(o4, 128, 128, 3, 2), p5]), 384, 256, 1, False)
    levels = []
    shape = const(np.array([0, 144, -1], np.int64), "shape")
    for o, c in ((o3, 64), (o4, 128), (o5, 256)):
        box = conv(conv(conv(o, c, 64, 3), 64, 64, 3), 64, 64, 1, act=False)
        cls = conv(conv(conv(o, c, 80, 3), 80, 80, 3), 80, 80, 1, act=False)
        r = name("flat")
        nodes.append(helper.make_node("Reshape", [concat([box, cls]), shape], [r]))
        levels.append(r)
    allp = name("anchors")
    nodes.append(helper.make_node("Concat", levels, [allp], axis=2))
    bx, cl, sc = name("box"), name("cls"), name("scores")
    nodes.append(helper.make_node("Split", [allp, const(np.array([64, 80], np.int64), "parts")], [bx, cl], axis=1))
    nodes.append(helper.make_node("Sigmoid", [cl], [sc]))
    nodes.append(helper.make_node("Concat", [bx, sc], ["output"], axis=1))
    save(path, nodes, "yolov8n_style",
         [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, "height", "width"])],
         [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 144, "anchors"])], inits)

if __name__ == "__main__":
    build(sys.argv[1])
