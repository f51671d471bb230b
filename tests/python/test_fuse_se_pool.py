"""Squeeze-excite's scale as one layer (builder/fuse_se_pool.c): GlobalAveragePool -> 1x1 Conv
[-> act] -> 1x1 Conv [-> act] becomes FusedSqueezeExcite where DUCTILE_FUSE_SE_POOL=1 asks for
it (no build makes it by itself: on the H200 the CUDA kernel did not beat the four launches it
replaces; the CPU keeps its own path, the scale taken into the next conv: fuse_se.c). The CPU's
reference kernel is tested here:
against onnxruntime at odd sizes (37 channels, 9 hidden, 11x7 and 5x13 planes, batch 1 and 3),
channels first and (DUCTILE_LAYOUT=nhwc) channels last, with every activation pair the
FusedConvs hand over (Relu, HardSigmoid with MobileNetV3's alpha, Sigmoid, HardSwish, Clip, none)
and without biases. Near misses (fc1's output read twice, a 3x3 second conv) stay unfused and
match. The CUDA engines (float32, FP16, BF16) run the fused layer on the GPU and match the CPU
engine (check_cuda: rel-L2 1e-5 / 1e-2 / 3e-2); without a GPU they skip with "no CUDA device
found". The CUDA cases cover both of its pools: in the scale's kernel (channels-last half
data of at most 1 MB an image: 64 and 96 channels) and the slices' kernel before it (float32,
37 channels, and 64 channels at 96x97: 1.2 MB)."""
import numpy as np
import pytest
from onnx import TensorProto as T, helper as h, numpy_helper as nh

import ductile
from test_cuda_fusions import check_cuda
from test_fusions import kernels, model_of
from util import assert_close, ort_run

CIN, R, M = 5, 9, 6

ACTS = {  # name: (nodes after a conv output `t` writing `y`, extra initializers)
    "": lambda t, y: ([], []),   # the conv writes y itself
    "Relu": lambda t, y: ([h.make_node("Relu", [t], [y])], []),
    "HardSigmoid": lambda t, y: ([h.make_node("HardSigmoid", [t], [y], alpha=1 / 6, beta=0.5)], []),
    "Sigmoid": lambda t, y: ([h.make_node("Sigmoid", [t], [y])], []),
    "HardSwish": lambda t, y: ([h.make_node("HardSwish", [t], [y])], []),
    "Clip": lambda t, y: ([h.make_node("Clip", [t, y + "lo", y + "hi"], [y])],
                          [nh.from_array(np.array(-0.5, np.float32), y + "lo"),
                           nh.from_array(np.array(0.75, np.float32), y + "hi")]),
}


def se_model(c, act1, act2, bias=True, fc1_read_twice=False, fc2_k=1):
    """x [n, CIN, h, w] -> 3x3 conv (c channels) -> Relu -> a; s = SE(a); y = 1x1 conv of a * s."""
    rng = np.random.default_rng(11)
    f = lambda *shape: (rng.standard_normal(shape, dtype=np.float32) * 0.4)  # noqa: E731
    inits = [nh.from_array(f(c, CIN, 3, 3), "w0"), nh.from_array(f(R, c, 1, 1), "w1"),
             nh.from_array(f(c, R, fc2_k, fc2_k), "w2"), nh.from_array(f(M, c, 1, 1), "w3")]
    b = []
    if bias:
        inits += [nh.from_array(f(R), "b1"), nh.from_array(f(c) + 0.5, "b2")]
        b = [["b1"], ["b2"]]
    else:
        b = [[], []]
    nodes = [h.make_node("Conv", ["x", "w0"], ["c0"], pads=[1, 1, 1, 1]), h.make_node("Relu", ["c0"], ["a"]),
             h.make_node("GlobalAveragePool", ["a"], ["g"]), h.make_node("Conv", ["g", "w1"] + b[0], ["f1" if act1 else "h1"])]
    n1, i1 = ACTS[act1]("f1", "h1")
    nodes += n1
    nodes.append(h.make_node("Conv", ["h1", "w2"] + b[1], ["f2" if act2 else "s"], pads=[fc2_k // 2] * 4))
    n2, i2 = ACTS[act2]("f2", "s")
    nodes += n2 + [h.make_node("Mul", ["a", "s"], ["m"]), h.make_node("Conv", ["m", "w3"], ["y"])]
    outputs = [h.make_tensor_value_info("y", T.FLOAT, None)]
    if fc1_read_twice:
        nodes.append(h.make_node("Neg", ["h1"], ["z"]))
        outputs.append(h.make_tensor_value_info("z", T.FLOAT, None))
    return model_of(nodes, inits + i1 + i2, [h.make_tensor_value_info("x", T.FLOAT, ["n", CIN, "h", "w"])],
                    outputs, opset=17)


def build_cpu(model, shape):
    builder = ductile.Builder()
    network = builder.parse_onnx_bytes(model.SerializeToString())
    profile = builder.create_optimization_profile()
    profile.set_shape("x", (1, CIN, 1, 1), shape, shape)
    config = builder.create_builder_config()
    config.add_optimization_profile(profile)
    return builder.build_engine(network, config)


PAIRS = [("Relu", "HardSigmoid"), ("", "Sigmoid"), ("HardSwish", "Clip"), ("Clip", "")]


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
@pytest.mark.parametrize("act1,act2", PAIRS)
@pytest.mark.parametrize("shape,bias", [((1, CIN, 11, 7), True), ((3, CIN, 5, 13), False)])
def test_se_pool_fuses_on_request_and_matches_onnxruntime(monkeypatch, layout, act1, act2, shape, bias):
    monkeypatch.setenv("DUCTILE_FUSE_SE_POOL", "1")
    monkeypatch.setenv("DUCTILE_LAYOUT", layout)
    model = se_model(37, act1, act2, bias)
    engine = build_cpu(model, shape)
    ks = kernels(engine)
    assert ks.count("cpu.FusedSqueezeExcite") == 1, ks
    assert "cpu.GlobalAveragePool" not in ks and "cpu.ReduceMean" not in ks, ks
    x = np.random.default_rng(5).standard_normal(shape, dtype=np.float32)
    want = ort_run(model.SerializeToString(), {"x": x})["y"]
    assert_close(engine.create_execution_context().run({"x": x})["y"], want, rtol=1e-5)


def test_builds_do_not_make_it_unasked(monkeypatch):
    monkeypatch.delenv("DUCTILE_FUSE_SE_POOL", raising=False)
    monkeypatch.setenv("DUCTILE_FUSE_POOL", "0")  # else the CPU's conv takes the pool (fuse_pool.c)
    ks = kernels(build_cpu(se_model(37, "Relu", "HardSigmoid"), (1, CIN, 11, 7)))
    assert "cpu.FusedSqueezeExcite" not in ks and "cpu.GlobalAveragePool" in ks, ks


@pytest.mark.parametrize("read_twice,fc2_k", [(True, 1), (False, 3)])
def test_near_misses_stay_unfused_and_match(monkeypatch, read_twice, fc2_k):
    monkeypatch.setenv("DUCTILE_FUSE_SE_POOL", "1")
    monkeypatch.setenv("DUCTILE_FUSE_POOL", "0")  # else the CPU's conv takes the pool (fuse_pool.c)
    model = se_model(37, "Relu", "HardSigmoid", fc1_read_twice=read_twice, fc2_k=fc2_k)
    shape = (2, CIN, 6, 9)
    engine = build_cpu(model, shape)
    ks = kernels(engine)
    assert "cpu.FusedSqueezeExcite" not in ks and "cpu.GlobalAveragePool" in ks, ks
    x = np.random.default_rng(6).standard_normal(shape, dtype=np.float32)
    want = ort_run(model.SerializeToString(), {"x": x})
    got = engine.create_execution_context().run({"x": x})
    for name in want:
        assert_close(got[name], want[name], rtol=1e-5)


@pytest.mark.parametrize("prec", ["fp32", "fp16", "bf16"])
@pytest.mark.parametrize("c,act1,act2,shape", [(37, "Relu", "HardSigmoid", (1, CIN, 11, 7)),
                                               (64, "HardSwish", "Sigmoid", (3, CIN, 20, 13)),
                                               (96, "Relu", "HardSigmoid", (1, CIN, 64, 64)),
                                               (64, "Relu", "HardSigmoid", (1, CIN, 96, 97))])
def test_cuda_runs_the_fused_scale_and_matches_cpu(monkeypatch, c, act1, act2, shape, prec):
    monkeypatch.setenv("DUCTILE_FUSE_SE_POOL", "1")
    model = se_model(c, act1, act2)
    x = np.random.default_rng(7).standard_normal(shape, dtype=np.float32)
    feeds = {"x": x}
    want = {"y": ort_run(model.SerializeToString(), feeds)["y"]}
    check_cuda(model.SerializeToString(), feeds, want, {"FusedSqueezeExcite": 1}, prec)
