"""Writes OUTDIR/superres_demo.onnx: the super-resolution net of PyTorch's ONNX export tutorial,
built with onnx.helper (no torch, no download) with seeded He-initialised weights.

usage: make_demo_model.py OUTDIR
"""
import pathlib
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

UPSCALE = 3
# (in channels, out channels, kernel): the tutorial's four convolutions
CONVS = [(1, 64, 5), (64, 64, 3), (64, 32, 3), (32, UPSCALE * UPSCALE, 3)]


def build_model(seed=0):
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    x = "input"
    for i, (c_in, c_out, k) in enumerate(CONVS):
        fan_in = c_in * k * k
        w = (rng.standard_normal((c_out, c_in, k, k)) * np.sqrt(2.0 / fan_in)).astype(np.float32)
        b = np.zeros(c_out, np.float32)
        inits += [numpy_helper.from_array(w, f"conv{i + 1}.weight"),
                  numpy_helper.from_array(b, f"conv{i + 1}.bias")]
        y = f"conv{i + 1}_out"
        pad = k // 2
        nodes.append(helper.make_node("Conv", [x, f"conv{i + 1}.weight", f"conv{i + 1}.bias"], [y],
                                      name=f"conv{i + 1}", kernel_shape=[k, k],
                                      pads=[pad, pad, pad, pad]))
        x = y
        if i + 1 < len(CONVS):
            nodes.append(helper.make_node("Relu", [x], [f"relu{i + 1}_out"], name=f"relu{i + 1}"))
            x = f"relu{i + 1}_out"
    nodes.append(helper.make_node("DepthToSpace", [x], ["output"], name="pixel_shuffle",
                                  blocksize=UPSCALE, mode="CRD"))
    graph = helper.make_graph(
        nodes, "superres_demo",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, "height", "width"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT,
                                       ["batch", 1, "out_height", "out_width"])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="ductile make_demo_model.py")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def main(argv):
    if len(argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    out = pathlib.Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    path = out / "superres_demo.onnx"
    onnx.save(build_model(), str(path))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
