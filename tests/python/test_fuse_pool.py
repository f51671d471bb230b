"""GlobalAveragePool into the conv that makes its input (builder/fuse_pool.c): on the CPU the
pool of a FusedConv's or FusedInvertedResidual's output becomes that layer's second output,
summed while the conv has the planes in cache (backend/cpu/conv_pool.c). Hand-built
squeeze-excite blocks at odd sizes against onnxruntime: EfficientNet's MBConv (expand, depthwise,
SiLU, pool, two 1x1s, the scale, project), its first block (no expand), a dense 3x3 conv whose
pool and output are both network outputs. The layer list shows no pool left; the pooled values'
bits do not depend on the thread count, which picks the inverted-residual kernel's path (image
by image on one thread, images side by side on two, strips of rows on three for the batch of 2
at 150x150); DUCTILE_FUSE_POOL=0 keeps the pool; a pool of a non-conv stays. ReduceMean of the
plane's axes with keepdims (timm's squeeze-excite) fuses as the pool does, by attribute or by
constant input; over other axes or without keepdims it stays."""
import numpy as np
import pytest
from onnx import TensorProto as T, helper as h, numpy_helper as nh

import ductile
from test_cpu_half import cpu_flags
from test_fusions import kernels, model_of
from util import assert_close, build_from_bytes, ort_run

C, E, R, M = 11, 24, 5, 13


def silu(x, y):
    return [h.make_node("Sigmoid", [x], [y + "_s"]), h.make_node("Mul", [x, y + "_s"], [y])]


def pool_nodes(x, y, pool):
    """GlobalAveragePool, or ReduceMean of axes 2 and 3 kept: by attribute (opset 17), by a
    constant input (opset 18, negative axes); with keepdims 0 or of axes 1 and 2 (near misses)."""
    if pool == "gap":
        return [h.make_node("GlobalAveragePool", [x], [y])], []
    if pool == "mean17":
        return [h.make_node("ReduceMean", [x], [y], axes=[3, 2])], []
    axes = {"mean18": [-1, -2], "mean18_c": [1, 2]}.get(pool, [2, 3])
    keep = 0 if pool == "mean18_flat" else 1
    return [h.make_node("ReduceMean", [x, y + "_axes"], [y], keepdims=keep)], \
        [nh.from_array(np.array(axes, np.int64), y + "_axes")]


def mbconv(expand=True, stride=1, pool="gap"):
    """x -> [1x1 expand, SiLU] -> depthwise 3x3, SiLU -> squeeze-excite -> 1x1 project."""
    rng = np.random.default_rng(11)
    ce = E if expand else C
    w = {"wd": rng.standard_normal((ce, 1, 3, 3)) * 0.4, "bd": rng.standard_normal(ce) * 0.1,
         "w1": rng.standard_normal((R, ce, 1, 1)) * 0.3, "b1": rng.standard_normal(R) * 0.1,
         "w2": rng.standard_normal((ce, R, 1, 1)) * 0.3, "b2": rng.standard_normal(ce) * 0.1,
         "wp": rng.standard_normal((M, ce, 1, 1)) * 0.3}
    nodes = []
    x = "x"
    if expand:
        w["we"] = rng.standard_normal((E, C, 1, 1)) * 0.3
        nodes += [h.make_node("Conv", ["x", "we"], ["e"])] + silu("e", "es")
        x = "es"
    nodes += [h.make_node("Conv", [x, "wd", "bd"], ["d"], group=ce, pads=[1] * 4, strides=[stride] * 2)]
    nodes += silu("d", "ds")
    pn, pi = pool_nodes("ds", "g", pool)
    if pool == "mean18_flat":  # [N, C]: back to [N, C, 1, 1] for the 1x1s
        pn.append(h.make_node("Unsqueeze", ["g", "g_ax"], ["g4"]))
        pi.append(nh.from_array(np.array([2, 3], np.int64), "g_ax"))
    nodes += pn + [h.make_node("Conv", ["g4" if pool == "mean18_flat" else "g", "w1", "b1"], ["f1"])]
    nodes += silu("f1", "f1s")
    nodes += [h.make_node("Conv", ["f1s", "w2", "b2"], ["f2"]), h.make_node("Sigmoid", ["f2"], ["gate"]),
              h.make_node("Mul", ["ds", "gate"], ["scaled"]), h.make_node("Conv", ["scaled", "wp"], ["y"])]
    inits = [nh.from_array(v.astype(np.float32), k) for k, v in w.items()] + pi
    return model_of(nodes, inits, [h.make_tensor_value_info("x", T.FLOAT, ["n", C, "h", "w"])],
                    [h.make_tensor_value_info("y", T.FLOAT, None)], opset=17 if pool in ("gap", "mean17") else 18)


def dense_pool():
    """A 3x3 conv with Relu whose output and pool are both network outputs."""
    rng = np.random.default_rng(12)
    inits = [nh.from_array((rng.standard_normal((M, C, 3, 3)) * 0.2).astype(np.float32), "w"),
             nh.from_array(rng.standard_normal(M).astype(np.float32), "b")]
    nodes = [h.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1] * 4), h.make_node("Relu", ["c"], ["r"]),
             h.make_node("GlobalAveragePool", ["r"], ["p"])]
    return model_of(nodes, inits, [h.make_tensor_value_info("x", T.FLOAT, ["n", C, "h", "w"])],
                    [h.make_tensor_value_info("r", T.FLOAT, None), h.make_tensor_value_info("p", T.FLOAT, None)])


def build(model, shape, bf16=False):
    lo = (1, C, 3, 3)
    return build_from_bytes(model.SerializeToString(), {"x": (lo, shape, shape)},
                            ductile.BuilderFlag.BF16 if bf16 else None)


def run(engine, x, threads=1):
    ctx = engine.create_execution_context()
    ctx.set_threads(threads)
    return ctx.run({"x": x})


def check(model, engine, shape, rtol, seed=1):
    x = np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)
    want = ort_run(model.SerializeToString(), {"x": x})
    got = run(engine, x)
    for name in want:
        assert_close(got[name], want[name], rtol=rtol, what=name)
    for threads in (2, 3):
        again = run(engine, x, threads)
        for name in want:
            np.testing.assert_array_equal(again[name], got[name], err_msg=f"{name} at {threads} threads")


@pytest.mark.parametrize("expand,stride,shape", [
    (True, 1, (1, C, 9, 7)), (True, 2, (3, C, 17, 13)), (False, 1, (2, C, 23, 5)),
    (True, 1, (2, C, 150, 150)),   # 1 thread image by image, 2 side by side, 3 in strips of 48 rows
    (False, 2, (1, C, 113, 71))])
def test_squeeze_excite_pool_fuses_into_the_depthwise_and_matches_onnxruntime(expand, stride, shape):
    model = mbconv(expand, stride)
    engine = build(model, shape)
    assert "cpu.GlobalAveragePool" not in kernels(engine)
    check(model, engine, shape, 1e-5)


@pytest.mark.parametrize("pool", ["mean17", "mean18"])
def test_reduce_mean_over_the_plane_fuses_too(pool):
    model = mbconv(True, 1, pool)
    shape = (2, C, 11, 13)
    engine = build(model, shape)
    assert "cpu.ReduceMean" not in kernels(engine) and "cpu.GlobalAveragePool" not in kernels(engine)
    check(model, engine, shape, 1e-5)


@pytest.mark.parametrize("pool", ["mean18_c", "mean18_flat"])
def test_reduce_mean_of_other_axes_or_without_keepdims_stays(pool):
    model = mbconv(True, 1, pool) if pool == "mean18_flat" else None
    if pool == "mean18_c":  # a mean over channels and rows: not a pool of the planes
        pn, pi = pool_nodes("r", "p", pool)
        model = model_of([h.make_node("Conv", ["x", "w"], ["c"]), h.make_node("Relu", ["c"], ["r"])] + pn,
                         [nh.from_array(np.ones((M, C, 1, 1), np.float32) * 0.1, "w")] + pi,
                         [h.make_tensor_value_info("x", T.FLOAT, ["n", C, "h", "w"])],
                         [h.make_tensor_value_info("p", T.FLOAT, None)], opset=18)
    shape = (2, C, 7, 9)
    engine = build(model, shape)
    assert "cpu.ReduceMean" in kernels(engine)
    check(model, engine, shape, 1e-5)


def test_pool_of_a_dense_conv_is_a_second_output_and_matches():
    model = dense_pool()
    shape = (2, C, 19, 14)
    engine = build(model, shape)
    assert "cpu.GlobalAveragePool" not in kernels(engine)
    check(model, engine, shape, 1e-5)


@pytest.mark.skipif("avx512_bf16" not in cpu_flags(), reason="this CPU lacks AVX512-BF16 (avx512_bf16)")
@pytest.mark.parametrize("shape", [(2, C, 9, 7), (2, C, 150, 150)])
def test_bf16_blocks_pool_in_the_conv_and_match(shape):
    model = mbconv(True, 1)
    engine = build(model, shape, bf16=True)
    assert "cpu.GlobalAveragePool" not in kernels(engine)
    check(model, engine, shape, 1e-2)


def test_switched_off_the_pool_stays_and_matches(monkeypatch):
    monkeypatch.setenv("DUCTILE_FUSE_POOL", "0")
    model = mbconv(True, 1)
    shape = (2, C, 9, 7)
    engine = build(model, shape)
    assert "cpu.GlobalAveragePool" in kernels(engine)
    check(model, engine, shape, 1e-5)


def test_pool_of_an_add_stays_a_pool():
    nodes = [h.make_node("Add", ["x", "x"], ["a"]), h.make_node("GlobalAveragePool", ["a"], ["p"])]
    model = model_of(nodes, [], [h.make_tensor_value_info("x", T.FLOAT, ["n", C, "h", "w"])],
                     [h.make_tensor_value_info("p", T.FLOAT, None)])
    shape = (2, C, 5, 6)
    engine = build(model, shape)
    assert "cpu.GlobalAveragePool" in kernels(engine)
    check(model, engine, shape, 1e-6)
