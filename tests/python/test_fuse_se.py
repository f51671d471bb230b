"""Squeeze-excite's Mul(X, S) -> 1x1 Conv into the FusedConv's input S (builder/fuse_se.c) on
the CPU, against onnxruntime on hand-built blocks at odd sizes: S from the block (GlobalAveragePool
-> 1x1 -> Relu -> 1x1 -> HardSigmoid, one row per image) and a constant [1, C, 1, 1] scale over a
batch of 3; the float32 path scales the packed weights, the bfloat16 one the image (its
fallback). The layer list shows the Mul gone, and near misses (the product read twice, a 3x3
conv after it) keep it. Results do not depend on the thread count."""
import numpy as np
import pytest
from onnx import TensorProto as T, helper as h, numpy_helper as nh

import ductile
from test_cpu_half import cpu_flags
from test_fusions import kernels, model_of
from util import assert_close, build_from_bytes, ort_run

C, M, R = 13, 11, 5


def se_model(scale="se", conv_k=1, extra_reader=False):
    rng = np.random.default_rng(3)
    w = rng.standard_normal((M, C, conv_k, conv_k), dtype=np.float32) * 0.3
    b = rng.standard_normal((M,), dtype=np.float32)
    inits = [nh.from_array(w, "w"), nh.from_array(b, "b")]
    if scale == "se":
        w1 = rng.standard_normal((R, C, 1, 1), dtype=np.float32) * 0.3
        w2 = rng.standard_normal((C, R, 1, 1), dtype=np.float32) * 0.3
        inits += [nh.from_array(w1, "w1"), nh.from_array(w2, "w2")]
        nodes = [h.make_node("GlobalAveragePool", ["x"], ["g"]), h.make_node("Conv", ["g", "w1"], ["f1"]),
                 h.make_node("Relu", ["f1"], ["r1"]), h.make_node("Conv", ["r1", "w2"], ["f2"]),
                 h.make_node("HardSigmoid", ["f2"], ["s"], alpha=1 / 6, beta=0.5)]
    else:
        inits.append(nh.from_array(rng.uniform(0.2, 2.0, (1, C, 1, 1)).astype(np.float32), "s"))
        nodes = []
    nodes += [h.make_node("Mul", ["x", "s"], ["xs"]),
              h.make_node("Conv", ["xs", "w", "b"], ["c"], pads=[conv_k // 2] * 4),
              h.make_node("Relu", ["c"], ["y"])]
    outputs = [h.make_tensor_value_info("y", T.FLOAT, None)]
    if extra_reader:
        nodes.append(h.make_node("Neg", ["xs"], ["z"]))
        outputs.append(h.make_tensor_value_info("z", T.FLOAT, None))
    return model_of(nodes, inits, [h.make_tensor_value_info("x", T.FLOAT, ["n", C, "h", "w"])], outputs)


def build(model, shape, bf16=False):
    """An engine with one profile: batch and plane from 1, opt and max `shape`."""
    return build_from_bytes(model.SerializeToString(), {"x": ((1, C, 1, 1), shape, shape)},
                            ductile.BuilderFlag.BF16 if bf16 else None)


def run(engine, x, threads=1):
    ctx = engine.create_execution_context()
    ctx.set_threads(threads)
    return ctx.run({"x": x})


# (2, C, 3, 3): fewer pixels than output channels, so the float32 conv scales a copy of X, not
# its weights (fused_conv.c dt_fc_scale_weights).
@pytest.mark.parametrize("scale,shape", [("se", (1, C, 9, 7)), ("se", (3, C, 17, 5)), ("const", (3, C, 6, 11)),
                                         ("se", (2, C, 3, 3))])
def test_channel_scale_fuses_into_the_1x1_and_matches_onnxruntime(scale, shape):
    model = se_model(scale)
    engine = build(model, shape)
    assert "cpu.Mul" not in kernels(engine)
    x = np.random.default_rng(4).standard_normal(shape, dtype=np.float32)
    want = ort_run(model.SerializeToString(), {"x": x})["y"]
    got = run(engine, x)["y"]
    assert_close(got, want, rtol=1e-5)
    for threads in (2, 3):
        np.testing.assert_array_equal(run(engine, x, threads)["y"], got)


@pytest.mark.parametrize("conv_k,extra_reader", [(3, False), (1, True)])
def test_near_misses_keep_the_mul_and_match(conv_k, extra_reader):
    model = se_model("se", conv_k, extra_reader)
    shape = (2, C, 7, 9)
    engine = build(model, shape)
    assert "cpu.Mul" in kernels(engine)
    x = np.random.default_rng(5).standard_normal(shape, dtype=np.float32)
    want = ort_run(model.SerializeToString(), {"x": x})
    got = run(engine, x)
    for name in want:
        assert_close(got[name], want[name], rtol=1e-5)


@pytest.mark.skipif("avx512_bf16" not in cpu_flags(), reason="this CPU lacks AVX512-BF16 (avx512_bf16)")
@pytest.mark.parametrize("shape", [(2, C, 9, 7), (2, C, 40, 37)])
def test_bf16_conv_scales_the_image_and_matches(shape):
    """The image's channels are scaled split over the threads where a plane is large (40x37:
    a few channels a part), each product as one thread makes it: the same bits at 1, 2, 3."""
    model = se_model("se")
    engine = build(model, shape, bf16=True)
    assert "cpu.Mul" not in kernels(engine)
    x = np.random.default_rng(6).standard_normal(shape, dtype=np.float32)
    got = run(engine, x)["y"]
    assert_close(got, ort_run(model.SerializeToString(), {"x": x})["y"], rtol=1e-2)
    for threads in (2, 3):
        np.testing.assert_array_equal(run(engine, x, threads)["y"], got)
