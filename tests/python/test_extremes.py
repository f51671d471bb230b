"""Integer extremes in every attribute and constant input that feeds a size never crash ductile.

A generator builds one-node models for each op whose attributes or constant inputs feed an
output size, and puts INT64_MAX, INT64_MIN, -1, 0 and 2**40 in each such value in turn. Each
model is parsed, built and run (with fixed and with symbolic input dims); then:
  - no crash: the models of one op run in a child process (this file run as a script), so a
    crash fails that op's test and names the case that was running;
  - a refusal is a ductile.Error whose message names the node and the attribute or input;
  - an accepted model gives onnxruntime's outputs (exact for integers), or onnxruntime refuses
    it too and ductile's output is empty (nothing read or written out of bounds).
To find overflows, run the script against a sanitizer build:
  CFLAGS="-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined" LDLIBS= \
      make BUILD=build/ubsan build/ubsan/libductile.so
  DUCTILE_LIB=build/ubsan/libductile.so LD_PRELOAD=$(gcc -print-file-name=libasan.so) \
      ASAN_OPTIONS=detect_leaks=0 PYTHONPATH=python .venv/bin/python tests/python/test_extremes.py Conv
"""
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field

import numpy as np
import pytest
from onnx import TensorProto, ValueInfoProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
I64_MAX, I64_MIN = 2**63 - 1, -2**63
EXTREMES = {"max": I64_MAX, "min": I64_MIN, "neg1": -1, "zero": 0, "huge": 2**40}


@dataclass
class Probe:
    id: str
    node: object
    what: str                   # the attribute or input a refusal must name
    x_shape: tuple
    inits: dict = field(default_factory=dict)
    opset: int = 18
    x_dtype: type = np.float32
    n_out: int = 1


def _node(op, ins, n_out=1, **attrs):
    outs = ["y"] if n_out == 1 else [f"y{i}" for i in range(n_out)]
    return helper.make_node(op, ins, outs, name=f"{op.lower()}_node", **attrs)


def _replace(v, pos, e):
    """v (an int or a list) with element pos set to e."""
    if isinstance(v, (list, tuple)):
        v = list(v)
        v[pos] = e
        return v
    return e


def attr_probes(op, ins, attrs, x_shape, inits=None, vary=None, opset=18, pos=0, n_out=1,
                x_dtype=np.float32):
    """One probe per extreme per attribute in vary (default: every int attribute given)."""
    out = []
    for name in vary or [k for k, v in attrs.items() if not isinstance(v, (str, float))]:
        for where in _positions(attrs[name], pos):
            for tag, e in EXTREMES.items():
                a = dict(attrs)
                a[name] = _replace(a[name], where, e)
                out.append(Probe(f"{op}-{name}-{tag}{'' if where == pos else '@last'}",
                                 _node(op, ins, n_out, **a), name, x_shape, dict(inits or {}),
                                 opset, x_dtype, n_out))
    return out


def _positions(v, pos):
    """pos, and the last element too when v has more than one."""
    n = len(v) if isinstance(v, (list, tuple, np.ndarray)) else np.size(v)
    return [pos] if n <= 1 or pos in (n - 1, -1) else [pos, n - 1]


def input_probes(op, ins, inits, x_shape, vary, attrs=None, opset=18, pos=0, n_out=1,
                 x_dtype=np.float32):
    """One probe per extreme per constant input in vary (its element pos replaced)."""
    out = []
    for name in vary:
        for where in _positions(np.asarray(inits[name]).reshape(-1), pos):
            for tag, e in EXTREMES.items():
                i = dict(inits)
                v = np.array(i[name], dtype=np.int64)
                v.reshape(-1)[where] = e
                i[name] = v
                out.append(Probe(f"{op}-{name}-{tag}{'' if where == pos else '@last'}",
                                 _node(op, ins, n_out, **(attrs or {})), name, x_shape, i, opset,
                                 x_dtype, n_out))
    return out


X4 = (1, 2, 8, 8)
W = np.ones((2, 2, 3, 3), np.float32)
I = np.int64


def probes():
    p = []
    p += attr_probes("Conv", ["x", "w"], dict(strides=[1, 1], dilations=[1, 1], pads=[0, 0, 0, 0],
                                              group=1, kernel_shape=[3, 3]), X4, {"w": W})
    p += attr_probes("Conv", ["x", "w"], dict(pads=[0, 0, 0, 0]), X4, {"w": W}, pos=2)
    p += attr_probes("ConvTranspose", ["x", "w"],
                     dict(strides=[1, 1], dilations=[1, 1], pads=[0, 0, 0, 0], group=1,
                          output_padding=[0, 0], kernel_shape=[3, 3]), X4, {"w": W})
    p += attr_probes("ConvTranspose", ["x", "w"], dict(output_shape=[10, 10]), X4, {"w": W})
    for op in ("MaxPool", "AveragePool", "LpPool"):
        a = dict(kernel_shape=[2, 2], strides=[1, 1], pads=[0, 0, 0, 0], dilations=[1, 1])
        if op == "LpPool":
            a["p"] = 2
        p += attr_probes(op, ["x"], a, X4, opset=19)   # AveragePool has dilations from 19
    p += attr_probes("MaxPool", ["x"], dict(kernel_shape=[2, 2], ceil_mode=1, strides=[2, 2]), X4,
                     vary=["strides"])
    p += input_probes("Slice", ["x", "starts", "ends", "axes", "steps"],
                      {"starts": I([0]), "ends": I([8]), "axes": I([2]), "steps": I([1])}, X4,
                      ["starts", "ends", "axes", "steps"])
    p += input_probes("Slice", ["x", "starts", "ends", "axes", "steps"],
                      {"starts": I([7]), "ends": I([-9]), "axes": I([3]), "steps": I([-1])}, X4,
                      ["steps"])
    p += input_probes("Range", ["start", "limit", "delta"],
                      {"start": I(0), "limit": I(5), "delta": I(1)}, X4, ["start", "limit", "delta"])
    p += input_probes("Pad", ["x", "pads"], {"pads": I([0, 0, 1, 1, 0, 0, 1, 1])}, X4, ["pads"])
    p += input_probes("Pad", ["x", "pads", "", "axes"], {"pads": I([1, 1]), "axes": I([2])}, X4,
                      ["axes"])
    p += input_probes("Resize", ["x", "", "", "sizes"], {"sizes": I([1, 2, 4, 4])}, X4, ["sizes"],
                      pos=2)
    p += input_probes("Tile", ["x", "repeats"], {"repeats": I([1, 1, 2, 1])}, X4, ["repeats"], pos=2)
    p += input_probes("Expand", ["x", "shape"], {"shape": I([1, 2, 8, 8])}, X4, ["shape"])
    p += input_probes("Reshape", ["x", "shape"], {"shape": I([1, 2, 64])}, X4, ["shape"], pos=2)
    p += input_probes("Reshape", ["x", "shape"], {"shape": I([1, -1, 8])}, X4, ["shape"], pos=2)
    p += input_probes("Split", ["x", "split"], {"split": I([4, 4])}, X4, ["split"], n_out=2,
                      attrs=dict(axis=2))
    p += attr_probes("Split", ["x"], dict(axis=2, num_outputs=2), X4, n_out=2)
    p += attr_probes("Gather", ["x", "idx"], dict(axis=2), X4, {"idx": I([0, 0])})
    p += input_probes("TopK", ["x", "k"], {"k": I([3])}, X4, ["k"], attrs=dict(axis=3), n_out=2)
    p += attr_probes("TopK", ["x", "k"], dict(axis=3), X4, {"k": I([3])}, n_out=2)
    for op in ("DepthToSpace", "SpaceToDepth"):
        p += attr_probes(op, ["x"], dict(blocksize=2), (1, 4, 4, 4))
    p += input_probes("Col2Im", ["x", "image_shape", "block_shape"],
                      {"image_shape": I([5, 5]), "block_shape": I([2, 2])}, (1, 8, 16),
                      ["image_shape", "block_shape"])
    p += attr_probes("Col2Im", ["x", "image_shape", "block_shape"],
                     dict(strides=[1, 1], dilations=[1, 1], pads=[0, 0, 0, 0]), (1, 8, 16),
                     {"image_shape": I([5, 5]), "block_shape": I([2, 2])})
    p += input_probes("CenterCropPad", ["x", "shape"], {"shape": I([1, 2, 6, 10])}, X4, ["shape"],
                      pos=2)
    p += input_probes("Unsqueeze", ["x", "axes"], {"axes": I([1])}, X4, ["axes"])
    p += input_probes("Squeeze", ["x", "axes"], {"axes": I([0])}, X4, ["axes"])
    for op, a in (("Flatten", dict(axis=1)), ("Concat", dict(axis=1)), ("Softmax", dict(axis=1)),
                  ("ArgMax", dict(axis=1)), ("LRN", dict(size=3)), ("Trilu", dict(upper=1)),
                  ("Transpose", dict(perm=[0, 1, 3, 2]))):
        p += attr_probes(op, ["x"], a, X4)
    p += input_probes("Trilu", ["x", "k"], {"k": I(1)}, X4, ["k"])
    p += input_probes("ReduceSum", ["x", "axes"], {"axes": I([1])}, X4, ["axes"])
    p += input_probes("CumSum", ["x", "axis"], {"axis": I(1)}, X4, ["axis"])
    p += attr_probes("EyeLike", ["x"], dict(k=1), (5, 7))
    p += input_probes("OneHot", ["x", "depth", "values"], {"depth": I(4), "values": I([0, 1])},
                      (2, 3), ["depth"], x_dtype=np.int64)
    p += attr_probes("GroupNormalization", ["x", "sc", "bi"], dict(num_groups=2), X4,
                     {"sc": np.ones(2, np.float32), "bi": np.zeros(2, np.float32)})
    p += input_probes("DFT", ["x", "len", "ax"], {"len": I(4), "ax": I(1)}, (1, 8, 1),
                      ["len", "ax"], opset=20)
    p += attr_probes("Compress", ["x", "cond"], dict(axis=2), X4,
                     {"cond": np.array([1, 0, 1], np.bool_)})
    p += attr_probes("GatherElements", ["x", "idx"], dict(axis=3), X4,
                     {"idx": np.zeros((1, 2, 8, 2), np.int64)})
    p += attr_probes("MaxUnpool", ["x", "ind"], dict(kernel_shape=[2, 2], strides=[2, 2],
                                                    pads=[0, 0, 0, 0]), (1, 2, 4, 4),
                     {"ind": np.zeros((1, 2, 4, 4), np.int64)}, opset=11)
    p += attr_probes("MaxUnpool", ["x", "ind"], dict(kernel_shape=[2, 2], pads=[0, 0, 0, 0]),
                     (1, 2, 4, 4), {"ind": np.zeros((1, 2, 4, 4), np.int64)}, opset=11, pos=2,
                     vary=["pads"])
    for op, ins, inits, opset in (("HannWindow", ["n"], {"n": I(8)}, 17),
                                  ("BlackmanWindow", ["n"], {"n": I(8)}, 17),
                                  ("GatherND", ["x", "idx"], {"idx": np.zeros((1, 2), np.int64)}, 18)):
        if op == "GatherND":
            p += attr_probes(op, ins, dict(batch_dims=0), X4, inits, opset=opset)
        else:
            p += input_probes(op, ins, inits, X4, ["n"], opset=opset)
    p += input_probes("MelWeightMatrix", ["bins", "len", "rate", "lo", "hi"],
                      {"bins": I(4), "len": I(16), "rate": I(8000),
                       "lo": np.array(0, np.float32), "hi": np.array(4000, np.float32)}, X4,
                      ["bins", "len", "rate"], opset=17)
    p += input_probes("STFT", ["x", "step", "", "len"], {"step": I(2), "len": I(4)}, (1, 16, 1),
                      ["step", "len"], opset=17)
    for tag, e in {"huge": 1e30, "inf": np.inf, "nan": np.nan, "neg": -2.0, "zero": 0.0}.items():
        for op, ins, opset in (("Resize", ["x", "", "sc"], 18), ("Upsample", ["x", "sc"], 9)):
            p.append(Probe(f"{op}-scales-{tag}", _node(op, ins), "scales", X4,
                           {"sc": np.array([1, 1, e, 2], np.float32)}, opset))
    for op, gates in (("RNN", 1), ("GRU", 3), ("LSTM", 4)):
        h = 2
        p += attr_probes(op, ["x", "W", "R"], dict(hidden_size=h), (2, 1, 3),
                         {"W": np.ones((1, gates * h, 3), np.float32),
                          "R": np.ones((1, gates * h, h), np.float32)}, opset=14)
    p += attr_probes("LpNormalization", ["x"], dict(axis=1, p=2), X4)
    p += attr_probes("LayerNormalization", ["x", "sc"], dict(axis=-1), X4,
                     {"sc": np.ones(8, np.float32)})
    p += attr_probes("Hardmax", ["x"], dict(axis=1), X4)
    # ConstantOfShape reads its shape from the graph input x: the constant variant is here.
    for tag, e in EXTREMES.items():
        p.append(Probe(f"ConstantOfShape-input-{tag}",
                       _node("ConstantOfShape", ["s"]), "input", X4, {"s": I([2, e])}))
    return p


# Refusals that rightly name something else than the value changed: the axis moved K onto
# another dim.
ALSO_NAMED = {"TopK-axis-zero": ("K",)}

# Accepted where onnxruntime refuses, with the shapes ONNX's formulas give: a stride beyond the
# input is one window (onnxruntime's shape inference overflows on it); num_outputs = 2 over a
# dim of 1 is chunks of ceil(1/2) = 1, the last one empty (onnxruntime wants a chunk each).
ORT_REFUSES = {
    **{f"{op}-strides-{t}": {"y": (1, 2, 1, 7)} for op in ("AveragePool", "MaxPool", "LpPool")
       for t in ("max", "huge")},
    **{f"Conv-strides-{t}": {"y": (1, 2, 1, 6)} for t in ("max", "huge")},
    "Split-axis-zero": {"y0": (1, 2, 8, 8), "y1": (0, 2, 8, 8)},
}


def _out_type(pr, i):
    op = pr.node.op_type
    if op in ("ArgMax", "Range") or (op == "TopK" and i == 1):
        return TensorProto.INT64
    if op == "OneHot":
        return TensorProto.INT64   # the dtype of its values input
    if op == "ConstantOfShape":
        return TensorProto.FLOAT
    return helper.np_dtype_to_tensor_dtype(np.dtype(pr.x_dtype))


def model_bytes(pr, symbolic):
    """The probe's model: x a graph input (fixed or symbolic dims) unless the node does not read
    it, initializers for the rest, outputs of unknown shape."""
    uses_x = "x" in pr.node.input
    dims = [f"d{i}" for i in range(len(pr.x_shape))] if symbolic else list(pr.x_shape)
    inputs = [helper.make_tensor_value_info("x", helper.np_dtype_to_tensor_dtype(np.dtype(pr.x_dtype)),
                                            dims)] if uses_x else []
    inits = [numpy_helper.from_array(np.asarray(v), k) for k, v in pr.inits.items()]
    outs = [ValueInfoProto(name=o) for o in pr.node.output]
    nodes = [pr.node]
    if not uses_x:   # a graph input keeps the engine from folding everything away
        inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)]
        nodes = [pr.node, helper.make_node("Identity", ["x"], ["xo"], name="keep_x")]
        outs.append(helper.make_tensor_value_info("xo", TensorProto.FLOAT, None))
    g = helper.make_graph(nodes, "extreme", inputs, outs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", pr.opset)])
    m.ir_version = 8
    # The outputs' dtypes (onnx's own inference allocates what these values say, so not it).
    for i, o in enumerate(m.graph.output):
        if o.name != "xo":
            o.type.tensor_type.elem_type = _out_type(pr, i)
    return m.SerializeToString()


def _ductile(data, feeds):
    import ductile
    b = ductile.Builder()
    net = b.parse_onnx_bytes(data)
    prof = b.create_optimization_profile()
    for k, v in feeds.items():
        prof.set_shape(k, v.shape, v.shape, v.shape)
    cfg = b.create_builder_config()
    cfg.add_optimization_profile(prof)
    return b.build_engine(net, cfg).create_execution_context().run(feeds)


def _ort(data, feeds):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    s = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in s.get_outputs()], s.run(None, feeds)))


def verdict(pr, symbolic):
    """None when the probe behaves, else what is wrong."""
    import ductile
    data = model_bytes(pr, symbolic)
    x = np.arange(np.prod(pr.x_shape)).reshape(pr.x_shape) % 3
    feeds = {"x": x.astype(pr.x_dtype if "x" in pr.node.input else np.float32)}
    try:
        got = _ductile(data, feeds)
    except ductile.Error as e:
        msg = str(e)
        if e.status == "DUCTILE_ERR_OUT_OF_MEMORY":
            return None   # an output too large to allocate: refused, by size, at run time
        names = ALSO_NAMED.get(pr.id, ()) + (pr.what,)
        if f"node '{pr.node.name}'" not in msg or not any(n in msg for n in names):
            return f"refusal does not name node '{pr.node.name}' and '{pr.what}': {msg}"
        return None
    except MemoryError:
        return "MemoryError: ductile reported an output too large to allocate"
    try:
        want = _ort(data, feeds)
    except Exception as e:  # onnxruntime refuses: ductile must not have made up a size
        shapes = {k: v.shape for k, v in got.items() if k != "xo"}
        if shapes == ORT_REFUSES.get(pr.id, {k: v.shape for k, v in got.items() if not v.size}):
            return None
        return f"accepted (outputs {shapes}) what onnxruntime refuses: {str(e)[:200]}"
    for k, w in want.items():
        g = got.get(k)
        if g is None or g.shape != w.shape:
            return f"output {k}: shape {None if g is None else g.shape}, onnxruntime {w.shape}"
        if not np.allclose(g.astype(np.float64), w.astype(np.float64), rtol=1e-5, atol=1e-6,
                           equal_nan=True):
            return f"output {k}: values differ from onnxruntime"
    return None


def _worker(op):
    if "LD_PRELOAD" not in os.environ:   # huge sizes fail to allocate instead of swapping
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))
    for pr in probes():
        if pr.id.split("-")[0] != op:
            continue
        for symbolic in (False, True):
            cid = f"{pr.id}{'-sym' if symbolic else ''}"
            print(json.dumps({"start": cid}), flush=True)
            print(json.dumps({"case": cid, "bad": verdict(pr, symbolic)}), flush=True)


OPS = sorted({p.id.split("-")[0] for p in probes()})


@pytest.mark.parametrize("op", OPS)
def test_integer_extremes_are_refused_by_name_or_match_onnxruntime(op):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(HERE, "..", "..", "python"),
                                                       os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, os.path.abspath(__file__), op], capture_output=True,
                       text=True, env=env, timeout=600)
    lines = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
    started = [x["start"] for x in lines if "start" in x]
    assert r.returncode == 0, (f"crashed (rc {r.returncode}) in {started[-1] if started else '?'}:"
                               f"\n{r.stderr[-3000:]}")
    bad = [f"{x['case']}: {x['bad']}" for x in lines if x.get("bad")]
    assert len(started) == len([x for x in lines if "case" in x])
    assert not bad, "\n".join(bad)


if __name__ == "__main__":
    sys.path.insert(0, HERE)
    _worker(sys.argv[1])


# ---- the cases of the issue, pinned ----

def _parse(model):
    import ductile
    return ductile.Builder().parse_onnx_bytes(model.SerializeToString())


def _one_node(node, x_dims, inits, out_type=TensorProto.FLOAT, opset=18):
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_dims)],
                          [helper.make_tensor_value_info("y", out_type, None)],
                          [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def test_conv_dilation_int64_max_is_refused_at_parse_naming_node_and_attribute():
    # No kernel_shape: the taps come from W's dims.
    import ductile
    m = _one_node(helper.make_node("Conv", ["x", "w"], ["y"], name="c1", dilations=[I64_MAX, 1]),
                  [1, 2, 8, 8], {"w": W})
    with pytest.raises(ductile.Error) as e:
        _parse(m)
    assert e.value.status == "DUCTILE_ERR_INVALID_ARGUMENT"
    assert str(e.value) == ("node 'c1' (Conv, opset 18): attribute 'dilations'[0] = "
                            "9223372036854775807: the dilated kernel (3 - 1)*9223372036854775807 + 1 "
                            "overflows int64")


def test_pool_dilation_int64_max_is_refused_naming_node_and_attribute():
    import ductile
    m = _one_node(helper.make_node("MaxPool", ["x"], ["y"], name="p1", kernel_shape=[2, 2],
                                   dilations=[1, I64_MAX]), [1, 2, 8, 8], {}, opset=19)
    with pytest.raises(ductile.Error) as e:
        _parse(m)
    assert str(e.value) == ("node 'p1' (MaxPool, opset 19): attribute 'dilations'[1] = "
                            "9223372036854775807: the dilated kernel (2 - 1)*9223372036854775807 + 1 "
                            "overflows int64")


@pytest.mark.parametrize("dims", [[1, 2, 8, 8], ["n", "c", "h", "w"]], ids=["fixed", "symbolic"])
@pytest.mark.parametrize("case", ["slice-steps", "slice-steps-reversed", "range-delta"])
def test_steps_and_delta_of_int64_extremes_parse_and_match_onnxruntime(case, dims):
    """Symbolic inference overflowed on these and dereferenced NULL while parsing."""
    if case == "range-delta":
        node = helper.make_node("Range", ["a", "b", "d"], ["r"], name="r1")
        inits = {"a": I(0), "b": I(5), "d": I(I64_MAX)}
        g = helper.make_graph([node, helper.make_node("Identity", ["x"], ["y"], name="keep")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
                               helper.make_tensor_value_info("r", TensorProto.INT64, None)],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
        m.ir_version = 8
    else:
        rev = case.endswith("reversed")
        node = helper.make_node("Slice", ["x", "s", "e", "a", "st"], ["y"], name="s1")
        m = _one_node(node, dims, {"s": I([7 if rev else 0]), "e": I([-9 if rev else 8]),
                                   "a": I([2]), "st": I([I64_MIN if rev else I64_MAX])})
    data = m.SerializeToString()
    x = np.arange(128, dtype=np.float32).reshape(1, 2, 8, 8)
    got = _ductile(data, {"x": x})
    want = _ort(data, {"x": x})
    assert sorted(got) == sorted(want)
    for k, w in want.items():
        assert got[k].shape == w.shape and np.array_equal(got[k], w), k
