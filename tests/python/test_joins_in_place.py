"""Concat and Split parts planned as slices of the whole (src/runtime/plan_slices.c): where a
part is contiguous in the whole (every dim before the axis 1) and starts 64 bytes aligned, its
producer writes it into the Concat's output (a Split's consumers read it from the Split's
input) and the Concat or Split copies nothing; elsewhere (batch 2, an unaligned part) it keeps
its own bytes and is copied. Either way the outputs are onnxruntime's, and bit for bit those of
the same engine loaded again and planned without slices (DUCTILE_JOINS_IN_PLACE=0)."""
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import ductile
from util import build_from_bytes, ort_run, rel_l2


def c2f_model():
    """yolo's C2f and SPPF patterns and the edge cases: x -> 1x1 conv (24 -> 40) -> Split(16, 24)
    -> y0, y1; y1 -> 3x3 conv -> Relu -> r; m = r + y1; Concat(y0, y1, m, r) -> 1x1 conv -> out;
    an SPPF-like Concat(p, MaxPool p, MaxPool MaxPool p) with p a Split(7, 9) part of x[:16]
    (odd channel counts: aligned only at some sizes) and q, the other part, a network output
    (its own buffer: copied); Concat(x, q, Relu(sppf), q), which takes the network input x and
    q twice; a Split(4, 4) whose parts are added (read in place)."""
    rng = np.random.default_rng(1)

    def w(m, c, k):
        return numpy_helper.from_array((rng.standard_normal((m, c, k, k)) * np.sqrt(2 / (c * k * k))).astype(np.float32),
                                       f"w{m}_{c}_{k}")
    inits = [w(40, 24, 1), w(24, 24, 3), w(32, 88, 1), w(8, 16, 1),
             numpy_helper.from_array(np.array([16, 24], np.int64), "s1"),
             numpy_helper.from_array(np.array([7, 9], np.int64), "s2")]
    n = helper.make_node
    nodes = [
        n("Conv", ["x", "w40_24_1"], ["c1"], name="cv1"),
        n("Split", ["c1", "s1"], ["y0", "y1"], axis=1, name="split1"),
        n("Conv", ["y1", "w24_24_3"], ["c2"], pads=[1, 1, 1, 1], name="cv2"),
        n("Relu", ["c2"], ["r"]),
        n("Add", ["r", "y1"], ["m"]),
        n("Concat", ["y0", "y1", "m", "r"], ["cat1"], axis=1, name="cat1"),
        n("Conv", ["cat1", "w32_88_1"], ["out"], name="cv3"),
        n("Slice", ["x", "st", "en", "ax"], ["x16"]),
        n("Conv", ["x16", "w8_16_1"], ["z"], name="cv4"),
        n("Split", ["z", "s3"], ["z0", "z1"], axis=1, name="split3"),
        n("Add", ["z0", "z1"], ["zsum"]),
        n("Split", ["x16", "s2"], ["p", "q"], axis=1, name="split2"),
        n("MaxPool", ["p"], ["mp1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        n("MaxPool", ["mp1"], ["mp2"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        n("Concat", ["p", "mp1", "mp2"], ["sppf"], axis=1, name="sppf"),
        n("Relu", ["sppf"], ["sppf_r"]),
        n("Concat", ["x", "q", "sppf_r", "q"], ["cat3"], axis=-3, name="cat3"),
        n("Relu", ["cat3"], ["cat3_r"]),
    ]
    inits += [numpy_helper.from_array(np.array([0], np.int64), "st"), numpy_helper.from_array(np.array([16], np.int64), "en"),
              numpy_helper.from_array(np.array([1], np.int64), "ax"), numpy_helper.from_array(np.array([4, 4], np.int64), "s3")]
    graph = helper.make_graph(
        nodes, "c2f", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 24, "h", "w"])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["n", 32, "h", "w"]),
         helper.make_tensor_value_info("cat3_r", TensorProto.FLOAT, ["n", 24 + 9 + 21 + 9, "h", "w"]),
         helper.make_tensor_value_info("q", TensorProto.FLOAT, ["n", 9, "h", "w"]),
         helper.make_tensor_value_info("zsum", TensorProto.FLOAT, ["n", 4, "h", "w"])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8).SerializeToString()


def build(model, monkeypatch, in_place):
    monkeypatch.setenv("DUCTILE_JOINS_IN_PLACE", "1" if in_place else "0")
    return build_from_bytes(model, {"x": ((1, 24, 4, 4), (1, 24, 16, 16), (2, 24, 20, 20))})


def planned(engine, monkeypatch, in_place):
    """The same engine (its tactics too) loaded again, planned with or without slices: the plan
    is made at load. Two builds could time different tactics and differ in their bits."""
    monkeypatch.setenv("DUCTILE_JOINS_IN_PLACE", "1" if in_place else "0")
    return ductile.Runtime().deserialize_cuda_engine(engine.serialize())


def run(engine, feeds):
    ctx = engine.create_execution_context()
    ran = []
    ctx.profiler = ran.append
    return ctx.run(feeds), {t.layer: t.tactic for t in ran if t.op_type in ("Concat", "Split")}


# shape -> the joins the plan puts in place there. split2 never: p is a slice of sppf (the
# first Concat to take it), q a network output. cat3: only Relu(sppf), after x's 24 and q's 9
# channels. 16x16: every such part starts 64-byte aligned. 5x7 (35 floats a channel): a part
# after 16 or 24 channels does (35 lines), one after 4, 7, 14, 33 or 40 does not: cat1's m,
# sppf's pools, cat3's Relu(sppf) and split3's second half are copied. Batch 2: nothing is
# contiguous.
IN_PLACE = {
    (1, 24, 16, 16): {"split1": "in_place", "cat1": "in_place", "split2": None, "sppf": "in_place",
                      "cat3": "part_in_place", "split3": "in_place"},
    (1, 24, 5, 7): {"split1": "in_place", "cat1": "part_in_place", "split2": None, "sppf": "part_in_place",
                    "cat3": None, "split3": "part_in_place"},
    (2, 24, 9, 8): {"split1": None, "cat1": None, "split2": None, "sppf": None, "cat3": None, "split3": None},
}


@pytest.mark.parametrize("shape", sorted(IN_PLACE))
def test_joins_in_place_compute_what_the_copies_did(monkeypatch, shape):
    model = c2f_model()
    feeds = {"x": np.random.default_rng(2).standard_normal(shape, dtype=np.float32)}
    want = ort_run(model, feeds)
    engine = build(model, monkeypatch, True)
    got, paths = run(engine, feeds)
    copied, plain = run(planned(engine, monkeypatch, False), feeds)
    for name in want:
        assert rel_l2(got[name], want[name]) <= 1e-4, name
        np.testing.assert_array_equal(got[name], copied[name])
    tactic = {"split1": "Split", "split2": "Split", "split3": "Split"}
    expect = {k: f"cpu.{tactic.get(k, 'Concat')}" + (f".{v}" if v else "") for k, v in IN_PLACE[shape].items()}
    assert paths == expect
    assert set(plain.values()) == {"cpu.Concat", "cpu.Split"}


def test_one_context_across_shapes_places_each_shape_afresh(monkeypatch):
    """The placement is per set of shapes: one context run at shapes where the parts are
    slices, then where none is, then where some are, and back, matches onnxruntime each time."""
    model = c2f_model()
    ctx = build(model, monkeypatch, True).create_execution_context()
    ran = []
    ctx.profiler = ran.append
    for i, shape in enumerate([(1, 24, 16, 16), (2, 24, 9, 8), (1, 24, 5, 7), (1, 24, 16, 16), (2, 24, 20, 20)]):
        feeds = {"x": np.random.default_rng(10 + i).standard_normal(shape, dtype=np.float32)}
        ran.clear()
        got = ctx.run(feeds)
        want = ort_run(model, feeds)
        for name in want:
            assert rel_l2(got[name], want[name]) <= 1e-4, (shape, name)
        paths = {t.layer: t.tactic for t in ran if t.op_type in ("Concat", "Split")}
        assert paths["cat1"] == ("cpu.Concat.in_place" if shape == (1, 24, 16, 16) else
                                 "cpu.Concat.part_in_place" if shape[0] == 1 else "cpu.Concat"), (shape, paths)


def random_join_model(seed):
    """A random network of 1x1 and 3x3 convs, Relu, MaxPool, Add, Split and Concat on maps of
    one size (channels 1..40), whose outputs are the last tensor made and one other."""
    rng = np.random.default_rng(seed)
    n = helper.make_node
    c0 = int(rng.integers(1, 24))
    pool = [("x", c0)]
    nodes, inits = [], []
    for i in range(int(rng.integers(6, 14))):
        op = rng.choice(["conv", "conv", "relu", "pool", "add", "split", "concat", "concat"])
        a, ca = pool[int(rng.integers(len(pool)))]
        t = f"t{i}"
        if op == "conv":
            m, k = int(rng.integers(1, 41)), int(rng.choice([1, 3]))
            w = (rng.standard_normal((m, ca, k, k)) * np.sqrt(1 / (ca * k * k))).astype(np.float32)
            inits.append(numpy_helper.from_array(w, f"w{i}"))
            nodes.append(n("Conv", [a, f"w{i}"], [t], pads=[k // 2] * 4))
            pool.append((t, m))
        elif op == "relu":
            nodes.append(n("Relu", [a], [t]))
            pool.append((t, ca))
        elif op == "pool":
            nodes.append(n("MaxPool", [a], [t], kernel_shape=[3, 3], pads=[1, 1, 1, 1]))
            pool.append((t, ca))
        elif op == "add":
            same = [p for p in pool if p[1] == ca]
            b = same[int(rng.integers(len(same)))][0]
            nodes.append(n("Add", [a, b], [t]))
            pool.append((t, ca))
        elif op == "split" and ca >= 2:
            parts = int(rng.integers(2, min(ca, 3) + 1))
            cuts = sorted(rng.choice(np.arange(1, ca), parts - 1, replace=False).tolist())
            sizes = np.diff([0] + cuts + [ca]).astype(np.int64)
            inits.append(numpy_helper.from_array(sizes, f"s{i}"))
            outs = [f"{t}_{j}" for j in range(parts)]
            nodes.append(n("Split", [a, f"s{i}"], outs, axis=1))
            pool += list(zip(outs, sizes.tolist()))
        elif op == "concat":
            k = int(rng.integers(2, 5))
            picks = [pool[int(rng.integers(len(pool)))] for _ in range(k)]
            nodes.append(n("Concat", [p[0] for p in picks], [t], axis=1))
            pool.append((t, sum(p[1] for p in picks)))
    made = [p for p in pool if p[0] != "x"]
    outs = [made[-1]] + ([made[int(rng.integers(len(made) - 1))]] if len(made) > 1 else [])
    outs = list(dict(outs).items())
    graph = helper.make_graph(
        nodes, f"joins{seed}", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", c0, "h", "w"])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["n", c, "h", "w"]) for name, c in outs], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8).SerializeToString(), c0


@pytest.mark.parametrize("seed", range(24))
def test_random_networks_of_joins_match_onnxruntime(monkeypatch, seed):
    """Random networks (random_join_model) at sizes where the parts are slices, where some are
    and where none is: onnxruntime's outputs, and the bits of the engine planned without
    slices."""
    model, c0 = random_join_model(seed)
    monkeypatch.setenv("DUCTILE_JOINS_IN_PLACE", "1")
    engine = build_from_bytes(model, {"x": ((1, c0, 2, 2), (1, c0, 8, 8), (2, c0, 12, 12))})
    engines = {True: engine.create_execution_context(),
               False: planned(engine, monkeypatch, False).create_execution_context()}
    for i, shape in enumerate([(1, c0, 8, 8), (1, c0, 5, 7), (2, c0, 3, 4), (1, c0, 12, 11)]):
        feeds = {"x": np.random.default_rng(100 + i).standard_normal(shape, dtype=np.float32)}
        want = ort_run(model, feeds)
        got, plain = engines[True].run(feeds), engines[False].run(feeds)
        for name in want:
            assert rel_l2(got[name], want[name]) <= 1e-4, (seed, shape, name)
            np.testing.assert_array_equal(got[name], plain[name])
