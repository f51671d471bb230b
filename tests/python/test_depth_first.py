"""Depth first over the batch (src/runtime/depth_first.h): on one thread the first layers of a
batch run one image at a time (on two, two images at a time: one a thread), through the prefix,
before the next image (or two). The outputs are
onnxruntime's and bit for bit those of the same engine run layer by layer
(DUCTILE_DEPTH_FIRST_BYTES=0); the activation memory shrinks, as the tensors written and read
inside the prefix hold one group. DUCTILE_DEPTH_FIRST_BYTES=1 takes every eligible layer into
the prefix, so that these small maps exercise it (the default wants an operand of 1 MiB an
image); DUCTILE_DEPTH_FIRST_GROUP=g runs groups of g images at any thread count."""
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from util import build_from_bytes, ort_run, rel_l2


def prefix_model():
    """x [n, 3, h, w] -> 3x3 conv + Relu (r1, also a network output) -> depthwise 3x3 + Clip ->
    1x1 conv -> + r1 -> * s (a network input [1, 8, 1, 1]: broadcast, never cut) -> Sigmoid
    -> 3x3 stride-2 conv + Relu -> MaxPool 2x2 -> 1x1 conv -> GlobalAveragePool -> Flatten (a
    view: the prefix ends) -> Gemm -> out."""
    rng = np.random.default_rng(3)

    def t(name, *shape, scale=0.3):
        return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)
    inits = [t("w1", 8, 3, 3, 3), t("b1", 8), t("wd", 8, 1, 3, 3), t("bd", 8), t("wp", 8, 8, 1, 1),
             t("w2", 16, 8, 3, 3), t("w3", 16, 16, 1, 1), t("wg", 16, 10), t("bg", 10),
             numpy_helper.from_array(np.float32(0), "lo"), numpy_helper.from_array(np.float32(6), "hi")]
    n = helper.make_node
    nodes = [
        n("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="stem"),
        n("Relu", ["c1"], ["r1"], name="stem_relu"),
        n("Conv", ["r1", "wd", "bd"], ["dw"], pads=[1, 1, 1, 1], group=8, name="dw"),
        n("Clip", ["dw", "lo", "hi"], ["dwc"], name="dw_clip"),
        n("Conv", ["dwc", "wp"], ["pj"], name="project"),
        n("Add", ["pj", "r1"], ["res"], name="residual"),
        n("Mul", ["res", "s"], ["sc"], name="scale"),
        n("Sigmoid", ["sc"], ["sg"], name="sigmoid"),
        n("Conv", ["sg", "w2"], ["c2"], pads=[1, 1, 1, 1], strides=[2, 2], name="down"),
        n("Relu", ["c2"], ["r2"], name="down_relu"),
        n("MaxPool", ["r2"], ["mp"], kernel_shape=[2, 2], strides=[2, 2], name="pool"),
        n("Conv", ["mp", "w3"], ["c3"], name="wide"),
        n("GlobalAveragePool", ["c3"], ["gap"], name="gap"),
        n("Flatten", ["gap"], ["flat"], name="flatten"),
        n("Gemm", ["flat", "wg", "bg"], ["out"], name="head"),
    ]
    graph = helper.make_graph(
        nodes, "prefix",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, "h", "w"]),
         helper.make_tensor_value_info("s", TensorProto.FLOAT, [1, 8, 1, 1])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["n", 10]),
         helper.make_tensor_value_info("r1", TensorProto.FLOAT, ["n", 8, "h", "w"])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8).SerializeToString()


SHAPES = {"x": ((1, 3, 8, 8), (4, 3, 24, 20), (9, 3, 32, 32)), "s": ((1, 8, 1, 1),) * 3}


@pytest.fixture(scope="module")
def engine():
    return build_from_bytes(prefix_model(), SHAPES)


def feeds(n, h, w, seed):
    rng = np.random.default_rng(seed)
    return {"x": rng.standard_normal((n, 3, h, w), dtype=np.float32),
            "s": rng.uniform(0.5, 1.5, (1, 8, 1, 1)).astype(np.float32)}


def run(engine, monkeypatch, depth_first, threads, f, group=None):
    """Outputs, activation memory and the profiler's (layer, FLOPs) of one run on a new context."""
    monkeypatch.setenv("DUCTILE_DEPTH_FIRST_BYTES", "1" if depth_first else "0")
    if group:
        monkeypatch.setenv("DUCTILE_DEPTH_FIRST_GROUP", str(group))
    else:
        monkeypatch.delenv("DUCTILE_DEPTH_FIRST_GROUP", raising=False)
    ctx = engine.create_execution_context()
    ctx.set_threads(threads)
    ran = []
    ctx.profiler = ran.append
    got = ctx.run(f)
    return got, ctx.memory_size, [(t.layer, t.flops) for t in ran]


@pytest.mark.parametrize("threads,group,n", [(1, None, 5), (1, None, 2), (2, None, 5), (2, None, 9), (2, 2, 4),
                                             (1, 3, 7), (2, 3, 7)])
def test_depth_first_computes_what_layer_by_layer_did_in_less_memory(engine, monkeypatch, threads, group, n):
    """One image at a time on one thread, two on two; groups of `group` images where set: 5 in
    twos leaves a last group of one, 7 in threes of one."""
    f = feeds(n, 31, 29, seed=n)
    want = ort_run(prefix_model(), f)
    got, mem, layers = run(engine, monkeypatch, True, threads, f, group)
    plain, plain_mem, plain_layers = run(engine, monkeypatch, False, threads, f)
    for name in want:
        assert rel_l2(got[name], want[name]) <= 1e-5, name
        np.testing.assert_array_equal(got[name], plain[name])
    assert layers == plain_layers  # each layer once, in order, with the whole batch's FLOPs
    assert mem < plain_mem, (mem, plain_mem)


@pytest.mark.parametrize("threads,group,n", [(2, None, 2), (2, 2, 2), (1, None, 1), (2, 4, 3)])
def test_no_more_images_than_a_group_run_layer_by_layer(engine, monkeypatch, threads, group, n):
    """With no more images than a group (by default as many as threads), nothing is cut: the
    same memory plan as layer by layer."""
    f = feeds(n, 16, 16, seed=7)
    got, mem, _ = run(engine, monkeypatch, True, threads, f, group)
    plain, plain_mem, _ = run(engine, monkeypatch, False, threads, f)
    np.testing.assert_array_equal(got["out"], plain["out"])
    assert mem == plain_mem


def test_one_context_across_batches_plans_each_afresh(engine, monkeypatch):
    """The prefix and its memory plan follow the shapes: batches 5, 1, 9, 3 in one context."""
    monkeypatch.setenv("DUCTILE_DEPTH_FIRST_BYTES", "1")
    ctx = engine.create_execution_context()
    ctx.set_threads(1)
    for i, (n, h, w) in enumerate([(5, 17, 23), (1, 8, 8), (9, 32, 32), (3, 12, 30)]):
        f = feeds(n, h, w, seed=20 + i)
        want = ort_run(prefix_model(), f)
        got = ctx.run(f)
        for name in want:
            assert rel_l2(got[name], want[name]) <= 1e-5, (n, name)
