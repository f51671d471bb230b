"""The profiler's arithmetic count (ops/flops.c: 2 per multiply-add of every convolution and
matrix product, whatever layer they were fused into) against the same count made from the
ONNX file with onnx's shape inference: mobilenet_v2's engine fuses its convolutions into
FusedConv and FusedInvertedResidual layers (expand 1x1, depthwise, project 1x1 in one), and
the engine's total must still be the model's."""
import numpy as np
import onnx
import pytest
from onnx import shape_inference

import ductile
from util import model_path


def onnx_flops(path, input_shape):
    """2 * output elements * reduction length of every Conv, Gemm and MatMul of the model."""
    m = onnx.load(str(path))
    dims = m.graph.input[0].type.tensor_type.shape.dim
    for d, v in zip(dims, input_shape):
        d.ClearField("dim_param")
        d.dim_value = v
    m = shape_inference.infer_shapes(m)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in list(m.graph.value_info) + list(m.graph.output) + list(m.graph.input)}
    inits = {t.name: list(t.dims) for t in m.graph.initializer}
    total = 0
    for n in m.graph.node:
        if n.op_type == "Conv":
            w = inits[n.input[1]]
            total += 2 * int(np.prod(shapes[n.output[0]])) * int(np.prod(w[1:]))
        elif n.op_type == "Gemm":
            a = shapes.get(n.input[0])
            trans_a = next((x.i for x in n.attribute if x.name == "transA"), 0)
            total += 2 * int(np.prod(shapes[n.output[0]])) * a[0 if trans_a else 1]
        elif n.op_type == "MatMul":
            total += 2 * int(np.prod(shapes[n.output[0]])) * shapes[n.input[0]][-1]
    return total


@pytest.mark.parametrize("batch", [1, 3])
def test_profiled_flops_of_mobilenet_equal_the_onnx_models(batch):
    path = model_path("mobilenet_v2.onnx")
    shape = (batch, 3, 224, 224)
    builder = ductile.Builder()
    network = builder.parse_onnx(str(path))
    profile = builder.create_optimization_profile()
    profile.set_shape("input", (1, 3, 224, 224), shape, (4, 3, 224, 224))
    config = builder.create_builder_config()
    config.add_optimization_profile(profile)
    ctx = builder.build_engine(network, config).create_execution_context()
    timings = []
    ctx.profiler = timings.append
    ctx.run({"input": np.random.default_rng(0).standard_normal(shape, dtype=np.float32)})
    irb = [t for t in timings if t.op_type == "FusedInvertedResidual"]
    assert len(irb) == 17 and all(t.flops > 0 for t in irb), [(t.layer, t.flops) for t in irb]
    want = onnx_flops(path, shape)
    assert want > 0
    assert sum(t.flops for t in timings) == pytest.approx(want, rel=1e-12)
