"""Every CUDA kernel against the CPU backend on one-node models: the attribute variants the
suite models do not reach (transposed Gemm, broadcasting, negative steps, pooling pads,
Resize modes, opset-12 Softmax, ...). Each case asserts that the layer really ran on the GPU
(layer info "cuda.<op>", no "cpu fallback"), then compares: float32 rel-L2 <= 1e-5, integers
and bools exactly. Without a GPU the models are still built and run on the CPU (so the cases
stay valid), and the GPU half skips with "no CUDA device found"."""
import json

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import ductile  # noqa: E402
from util import rel_l2  # noqa: E402

F, I64, I32, B = TensorProto.FLOAT, TensorProto.INT64, TensorProto.INT32, TensorProto.BOOL
H = TensorProto.FLOAT16
NP = {F: np.float32, I64: np.int64, I32: np.int32, B: np.bool_, H: np.float16}


def _with_nonfinite(rng, shape):
    """Standard normal values with a NaN, +Inf and -Inf at a few places."""
    a = rng.standard_normal(shape).astype(np.float32)
    flat = a.reshape(-1)
    for i, v in zip((3, flat.size // 2, flat.size - 5, 17), (np.nan, np.inf, -np.inf, np.nan)):
        flat[i % flat.size] = v
    return a


def case(op, inputs, attrs=None, consts=None, opset=17, outs=1, gen=None, out_type=None, tol=None):
    """inputs: [(elem type, shape)] for network inputs x0, x1, ...; consts: {input position:
    array} for constant inputs (initializers); gen: {position: callable(rng, shape)}; out_type:
    the output's element type (default: Cast's `to`, bool for logical ops, Where's values',
    else the first input's); tol: float16 outputs compared by rel-L2 up to tol instead of bit for
    bit (sums whose order differs between the engines)."""
    if out_type is None:
        out_type = (attrs or {}).get("to") if op == "Cast" else \
            B if op in ("And", "Or", "Xor", "Not", "IsNaN") else \
            inputs[1][0] if op == "Where" else inputs[0][0]
    return dict(op=op, inputs=inputs, attrs=attrs or {}, consts=consts or {}, opset=opset, outs=outs, gen=gen or {},
                out_type=out_type, tol=tol)


CASES = {
    "add_bcast": case("Add", [(F, (2, 3, 4, 5)), (F, (3, 1, 5))]),
    "sub_scalar": case("Sub", [(F, (4, 6)), (F, ())]),
    "mul_bcast_first": case("Mul", [(F, (1, 5)), (F, (4, 1))]),
    "div": case("Div", [(F, (3, 7)), (F, (3, 7))], gen={1: lambda r, s: r.uniform(0.5, 2, s)}),
    "pow": case("Pow", [(F, (3, 7)), (F, (7,))], gen={0: lambda r, s: r.uniform(0.5, 2, s)}),
    "max": case("Max", [(F, (2, 3, 4)), (F, (4,))]),
    "min": case("Min", [(F, (2, 3, 4)), (F, (2, 1, 4))]),
    "prelu": case("PRelu", [(F, (2, 3, 4, 4)), (F, (3, 1, 1))]),
    # The binary fast paths (kernels.cu) at odd sizes: same shapes (16-byte vectors and their
    # tail), the per-channel broadcast in NCHW ([1,C,1,1], [N,C,1,1]) and NHWC ([N,1,1,C],
    # [1,1,1,C]) with either operand the small one, scalars; and the general kernel for the
    # rest. float16: one rounding of the float result on both engines, so equal bit for bit.
    # Reductions with few outputs over long rows (dt_cu_reduce_split): channels-last global
    # pooling (split over blocks, slices joined), rows (inner 1), a middle axis; and a
    # two-pass one.
    "reducemean_nhwc_split": case("ReduceMean", [(F, (1, 40, 30, 72))], {"axes": [1, 2], "keepdims": 1}),
    "reducemean_nhwc_small": case("ReduceMean", [(F, (2, 13, 11, 33))], {"axes": [1, 2], "keepdims": 1}),
    "reducemax_rows": case("ReduceMax", [(F, (3, 5, 13, 11))], {"axes": [2, 3], "keepdims": 1}),
    "reducel2_rows_split": case("ReduceL2", [(F, (2, 3, 40, 40))], {"axes": [2, 3], "keepdims": 0}),
    "reducemin_mid_split": case("ReduceMin", [(F, (3, 700, 5))], {"axes": [1], "keepdims": 1}),
    "reducesum_axes_input": case("ReduceSum", [(F, (2, 600, 7))], consts={1: np.array([1], dtype=np.int64)}),
    "reducemean_two_runs": case("ReduceMean", [(F, (2, 40, 3, 50))], {"axes": [1, 3], "keepdims": 0}),
    # Rows of whole 16-byte vectors take the one-launch cluster kernel (reduce_cluster.cu): a
    # last chunk of channels partly past inner, several chunks, rows up to its limit (32768)
    # and just past it (the split kernels again); float16 within one rounding of the CPU's.
    "reducesum_nhwc_cluster_tail": case("ReduceSum", [(F, (2, 33, 17, 12))], {"keepdims": 0},
                                         consts={1: np.array([1, 2], dtype=np.int64)}),
    "reducemax_nhwc_cluster_chunks": case("ReduceMax", [(F, (1, 29, 23, 260))], {"axes": [1, 2], "keepdims": 1}),
    "reducel2_nhwc_cluster_long": case("ReduceL2", [(F, (1, 160, 200, 8))], {"axes": [1, 2], "keepdims": 1}),
    "reducemean_nhwc_past_cluster": case("ReduceMean", [(F, (1, 190, 180, 4))], {"axes": [1, 2], "keepdims": 1}),
    "reducemean_nhwc_cluster_f16": case("ReduceMean", [(H, (2, 37, 29, 72))], {"axes": [1, 2], "keepdims": 1}, tol=2e-3),
    "reducemin_nhwc_cluster_f16": case("ReduceMin", [(H, (1, 64, 64, 40))], {"axes": [1, 2], "keepdims": 1}),
    "mul_same_odd": case("Mul", [(F, (3, 5, 7, 9)), (F, (3, 5, 7, 9))]),
    "add_same_vec": case("Add", [(F, (2, 16, 8, 8)), (F, (2, 16, 8, 8))]),
    "mul_chan_nchw": case("Mul", [(F, (3, 17, 13, 11)), (F, (1, 17, 1, 1))]),
    "mul_chan_nchw_vec": case("Mul", [(F, (2, 8, 16, 16)), (F, (1, 8, 1, 1))]),
    "sub_chan_small_first": case("Sub", [(F, (1, 17, 1, 1)), (F, (3, 17, 13, 11))]),
    "div_chan_per_image": case("Div", [(F, (3, 5, 7, 9)), (F, (3, 5, 1, 1))], gen={1: lambda r, s: r.uniform(0.5, 2, s)}),
    "add_chan_nhwc": case("Add", [(F, (3, 13, 11, 33)), (F, (3, 1, 1, 33))]),
    "max_chan_nhwc_vec": case("Max", [(F, (2, 7, 9, 16)), (F, (1, 1, 1, 16))]),
    "mul_scalar_first": case("Mul", [(F, ()), (F, (3, 5, 7, 9))]),
    "prelu_chan": case("PRelu", [(F, (3, 17, 7, 9)), (F, (17, 1, 1))]),
    "add_bcast_neither_full": case("Add", [(F, (3, 1, 7, 1)), (F, (1, 5, 1, 9))]),
    "mul_bcast_c_and_w": case("Mul", [(F, (2, 3, 4, 5)), (F, (1, 3, 1, 5))]),
    "mul_chan_nchw_f16": case("Mul", [(H, (3, 17, 13, 11)), (H, (1, 17, 1, 1))]),
    "mul_chan_nchw_vec_f16": case("Mul", [(H, (1, 96, 8, 8)), (H, (1, 96, 1, 1))]),
    "sub_chan_nhwc_f16": case("Sub", [(H, (1, 1, 1, 24)), (H, (2, 5, 7, 24))]),
    "div_same_f16": case("Div", [(H, (3, 5, 7, 9)), (H, (3, 5, 7, 9))], gen={1: lambda r, s: r.uniform(0.5, 2, s)}),
    "add_same_vec_f16": case("Add", [(H, (2, 16, 8, 8)), (H, (2, 16, 8, 8))]),
    "relu": case("Relu", [(F, (3, 50))]),
    # A NaN (and infinities) kept as the CPU keeps them (DESIGN "Non-finite inputs"):
    # fminf/fmaxf would drop a NaN
    "relu_nan": case("Relu", [(F, (3, 50))], gen={0: lambda r, s: _with_nonfinite(r, s)}),
    "clip_nan": case("Clip", [(F, (3, 50))], consts={1: np.float32(-0.5), 2: np.float32(0.7)},
                     gen={0: lambda r, s: _with_nonfinite(r, s)}),
    "hardsigmoid_nan": case("HardSigmoid", [(F, (3, 50))], {"alpha": 0.3, "beta": 0.4},
                            gen={0: lambda r, s: _with_nonfinite(r, s)}),
    "maxpool_nan": case("MaxPool", [(F, (2, 3, 11, 10))], {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 0, 1, 2]},
                        gen={0: lambda r, s: _with_nonfinite(r, s)}),
    "reducemax_nan": case("ReduceMax", [(F, (3, 5, 13, 11))], {"axes": [2, 3], "keepdims": 1},
                          gen={0: lambda r, s: _with_nonfinite(r, s)}),
    "reducemin_nan": case("ReduceMin", [(F, (3, 5, 7, 6))], {"axes": [0, 3], "keepdims": 0}, opset=13,
                          gen={0: lambda r, s: _with_nonfinite(r, s)}),
    "sigmoid": case("Sigmoid", [(F, (3, 50))]),
    "tanh": case("Tanh", [(F, (3, 50))]),
    "erf": case("Erf", [(F, (3, 50))]),
    "sqrt": case("Sqrt", [(F, (3, 50))], gen={0: lambda r, s: r.uniform(0, 4, s)}),
    "exp": case("Exp", [(F, (3, 50))]),
    "log": case("Log", [(F, (3, 50))], gen={0: lambda r, s: r.uniform(0.1, 4, s)}),
    "neg_abs": case("Abs", [(F, (3, 50))]),
    "reciprocal": case("Reciprocal", [(F, (3, 50))], gen={0: lambda r, s: r.uniform(0.5, 4, s)}),
    "hardsigmoid": case("HardSigmoid", [(F, (3, 50))], {"alpha": 0.3, "beta": 0.4}),
    "hardswish": case("HardSwish", [(F, (3, 50))]),
    "clip_inputs": case("Clip", [(F, (3, 50))], consts={1: np.float32(-0.5), 2: np.float32(0.7)}),
    "clip_attrs_opset6": case("Clip", [(F, (3, 50))], {"min": -0.2, "max": 0.3}, opset=6),
    "leakyrelu": case("LeakyRelu", [(F, (3, 50))], {"alpha": 0.07}),
    "elu": case("Elu", [(F, (3, 50))], {"alpha": 0.8}),
    "softplus": case("Softplus", [(F, (3, 50))]),
    "gelu_tanh": case("Gelu", [(F, (3, 50))], {"approximate": "tanh"}, opset=20),
    "floor": case("Floor", [(F, (3, 50))]),
    "softmax_axis1": case("Softmax", [(F, (2, 5, 3, 4))], {"axis": 1}),
    "softmax_last_long": case("Softmax", [(F, (3, 1500))]),
    "softmax_opset12_flatten": case("Softmax", [(F, (2, 3, 4))], {"axis": 1}, opset=12),
    "logsoftmax": case("LogSoftmax", [(F, (4, 33))]),
    "layernorm_axis": case("LayerNormalization", [(F, (2, 3, 8)), (F, (3, 8)), (F, (3, 8))], {"axis": -2, "epsilon": 1e-3}),
    "layernorm_no_bias": case("LayerNormalization", [(F, (5, 300)), (F, (300,))]),
    "gap": case("GlobalAveragePool", [(F, (2, 3, 7, 9))]),
    "gap_few_planes_split": case("GlobalAveragePool", [(F, (1, 3, 40, 50))]),  # planes split over blocks
    "gap_1d_split": case("GlobalAveragePool", [(F, (2, 5, 700))]),
    "maxpool_pads": case("MaxPool", [(F, (2, 3, 11, 10))], {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 0, 1, 2]}),
    "maxpool_ceil_dil": case("MaxPool", [(F, (1, 2, 12, 12))], {"kernel_shape": [2, 3], "dilations": [2, 1], "ceil_mode": 1}),
    "avgpool_exclude": case("AveragePool", [(F, (2, 3, 9, 9))], {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}),
    "avgpool_include": case("AveragePool", [(F, (2, 3, 9, 9))],
                            {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "count_include_pad": 1}),
    "transpose": case("Transpose", [(F, (2, 3, 4, 5))], {"perm": [3, 1, 0, 2]}),
    "transpose_int64": case("Transpose", [(I64, (3, 4))]),
    "gather_int32_neg": case("Gather", [(F, (5, 4, 3)), (I32, (2, 3))], {"axis": 1},
                             gen={1: lambda r, s: r.integers(-4, 4, s)}),
    "gather_i64": case("Gather", [(I64, (10, 3)), (I64, (4,))], gen={1: lambda r, s: r.integers(0, 10, s)}),
    "concat": case("Concat", [(F, (2, 3, 4)), (F, (2, 1, 4)), (F, (2, 5, 4))], {"axis": 1}),
    "reshape": case("Reshape", [(F, (2, 3, 4))], consts={1: np.array([4, -1], np.int64)}),
    "flatten": case("Flatten", [(F, (2, 3, 4))], {"axis": 2}),
    "expand": case("Expand", [(F, (3, 1))], consts={1: np.array([2, 3, 4], np.int64)}),
    "slice_neg_step": case("Slice", [(F, (6, 7, 5))], consts={1: np.array([5, 1], np.int64), 2: np.array([0, 7], np.int64),
                                                               3: np.array([0, 1], np.int64), 4: np.array([-2, 3], np.int64)}),
    "depth_to_space_dcr": case("DepthToSpace", [(F, (2, 8, 3, 4))], {"blocksize": 2}),
    "depth_to_space_crd": case("DepthToSpace", [(F, (2, 8, 3, 4))], {"blocksize": 2, "mode": "CRD"}),
    "resize_linear_half_pixel": case("Resize", [(F, (1, 2, 5, 7))], {"mode": "linear"},
                                     consts={2: np.array([1, 1, 2.5, 1.5], np.float32)}),
    "resize_linear_align": case("Resize", [(F, (1, 2, 5, 7))], {"mode": "linear", "coordinate_transformation_mode": "align_corners"},
                                consts={3: np.array([1, 2, 9, 4], np.int64)}),
    "resize_nearest_asym": case("Resize", [(F, (2, 1, 4, 6))], {"mode": "nearest", "coordinate_transformation_mode": "asymmetric",
                                                               "nearest_mode": "floor"},
                                consts={2: np.array([1, 1, 2, 3], np.float32)}),
    "resize_nearest_down": case("Resize", [(F, (1, 3, 9, 8))], {"mode": "nearest"}, consts={3: np.array([1, 3, 4, 5], np.int64)}),
    "cast_i64_f": case("Cast", [(I64, (3, 5))], {"to": F}),
    "cast_b_f": case("Cast", [(B, (3, 5))], {"to": F}),
    "cast_f_b": case("Cast", [(F, (3, 5))], {"to": B}, gen={0: lambda r, s: r.integers(-1, 2, s)}),
    "cast_i64_i32": case("Cast", [(I64, (3, 5))], {"to": I32}),
    "where_bcast": case("Where", [(B, (3, 1)), (F, (3, 4)), (F, (4,))]),
    "and_bcast": case("And", [(B, (2, 3)), (B, (3,))]),
    "or": case("Or", [(B, (2, 3)), (B, (2, 3))]),
    "not": case("Not", [(B, (2, 3))]),
    "isnan": case("IsNaN", [(F, (4, 4))], gen={0: lambda r, s: np.where(r.random(s) < 0.3, np.nan, r.random(s))}),
    "reduce_mean_keep": case("ReduceMean", [(F, (2, 3, 4, 5))], {"axes": [2, 3]}, opset=13),
    "reduce_sum_axes_input": case("ReduceSum", [(F, (2, 3, 4))], {"keepdims": 0}, consts={1: np.array([1], np.int64)}),
    "reduce_max_first": case("ReduceMax", [(F, (6, 3, 2))], {"axes": [0]}, opset=13),
    "reduce_l2": case("ReduceL2", [(F, (3, 40))], {"axes": [1]}, opset=13),
    # Axes that are not contiguous: one pass per run of reduced axes, partial results combined.
    "reduce_mean_split_axes": case("ReduceMean", [(F, (3, 5, 7, 6))], {"axes": [0, 2, 3]}, opset=13),
    "reduce_sum_split_axes": case("ReduceSum", [(F, (3, 5, 7, 6))], {"keepdims": 0},
                                  consts={1: np.array([0, 2], np.int64)}),
    "reduce_sumsq_split_axes": case("ReduceSumSquare", [(F, (3, 5, 7, 6))], {"axes": [1, 3]}, opset=13),
    "reduce_l1_split_axes": case("ReduceL1", [(F, (4, 3, 5, 2, 3))], {"axes": [0, 2, 4]}, opset=13),
    "reduce_l2_split_axes": case("ReduceL2", [(F, (4, 3, 5, 2, 3))], {"axes": [0, 2, 4]}, opset=13),
    "reduce_max_split_axes": case("ReduceMax", [(F, (3, 5, 7, 6))], {"axes": [0, 3], "keepdims": 0}, opset=13),
    "reduce_min_split_ones_between": case("ReduceMin", [(F, (3, 1, 7, 6))], {"axes": [0, 2]}, opset=13),
    "matmul_batched_bcast": case("MatMul", [(F, (2, 3, 4, 5)), (F, (5, 6))]),
    "matmul_bcast_batch_uneven": case("MatMul", [(F, (3, 1, 4, 5)), (F, (2, 5, 6))]),
    "matmul_vec": case("MatMul", [(F, (5,)), (F, (2, 5, 3))]),
    "gemm_trans": case("Gemm", [(F, (5, 4)), (F, (6, 5)), (F, (6,))], {"transA": 1, "transB": 1, "alpha": 0.5, "beta": 2.0}),
    "gemm_c_col": case("Gemm", [(F, (4, 5)), (F, (5, 6)), (F, (4, 1))]),
    "conv_group_stride_dil": case("Conv", [(F, (2, 4, 11, 10)), (F, (6, 2, 3, 3)), (F, (6,))],
                                  {"group": 2, "strides": [2, 1], "dilations": [1, 2], "pads": [1, 2, 1, 2]}),
    "conv_1d": case("Conv", [(F, (2, 3, 17)), (F, (4, 3, 5))], {"pads": [2, 2]}),
}


def make_model(c):
    rng_names = []
    nodes_in, inits, graph_in = [], [], []
    n_in = len(c["inputs"]) + len(c["consts"])
    k_net = 0
    for pos in range(max([n_in - 1] + list(c["consts"])) + 1):
        if pos in c["consts"]:
            name = f"c{pos}"
            inits.append(numpy_helper.from_array(np.asarray(c["consts"][pos]), name))
            nodes_in.append(name)
        elif k_net < len(c["inputs"]):
            t, shape = c["inputs"][k_net]
            name = f"x{k_net}"
            graph_in.append(helper.make_tensor_value_info(name, t, list(shape)))
            rng_names.append((name, t, shape, pos))
            nodes_in.append(name)
            k_net += 1
        else:
            nodes_in.append("")
    outs = [f"y{i}" for i in range(c["outs"])]
    node = helper.make_node(c["op"], nodes_in, outs, **c["attrs"])
    # Outputs declare their element type: run() sizes its arrays by the engine's dtype.
    graph = helper.make_graph([node], "one", graph_in, [helper.make_tensor_value_info(o, c["out_type"], None)
                                                         for o in outs], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", c["opset"])])
    return model.SerializeToString(), rng_names


def feeds_for(c, rng_names, seed):
    rng = np.random.default_rng(seed)
    feeds = {}
    for name, t, shape, pos in rng_names:
        if pos in c["gen"]:
            a = c["gen"][pos](rng, shape)
        elif t == B:
            a = rng.random(shape) < 0.5
        elif t in (I64, I32):
            a = rng.integers(-5, 6, shape)
        else:
            a = rng.standard_normal(shape)
        feeds[name] = np.asarray(a).astype(NP[t])
    return feeds


def build(model_bytes, feeds, device, flags=(), profile=None):
    """An engine with one profile: each feed's shape as min = opt = max, or profile's
    {input: (min, opt, max)} where given."""
    b = ductile.Builder()
    net = b.parse_onnx_bytes(model_bytes)
    cfg = b.create_builder_config()
    cfg.device = device
    for f in flags:
        cfg.set_flag(f)
    prof = b.create_optimization_profile()
    for name, a in feeds.items():
        prof.set_shape(name, *(profile[name] if profile else (a.shape,) * 3))
    cfg.add_optimization_profile(prof)
    return b.build_engine(net, cfg)


GPU = None


def gpu_available():
    global GPU
    if GPU is None:
        try:
            ductile.Builder().create_builder_config().device = "cuda"
            b = ductile.Builder()
            m, names = make_model(CASES["relu"])
            build(m, feeds_for(CASES["relu"], names, 0), "cuda")
            GPU = True
        except ductile.Error:
            GPU = False
    return GPU


@pytest.mark.parametrize("name", sorted(CASES))
def test_cuda_kernel_matches_cpu(name):
    c = CASES[name]
    model, names = make_model(c)
    feeds = feeds_for(c, names, seed=hash(name) % 1000)
    want = build(model, feeds, "cpu").create_execution_context().run(feeds)
    for out, w in want.items():
        assert w.dtype == NP[c["out_type"]], (out, w.dtype)
    if not gpu_available():
        pytest.skip("no CUDA device found")
    engine = build(model, feeds, "cuda")
    run = [l for l in json.loads(engine.layer_info)["Layers"] if l["Stage"] == "execute"]
    assert [l["Kernel"] for l in run] == [f"cuda.{c['op']}"], run
    got = engine.create_execution_context().run(feeds)
    for out, w in want.items():
        g = got[out]
        assert g.shape == w.shape and g.dtype == w.dtype, (g.shape, w.shape, g.dtype, w.dtype)
        if w.dtype == np.float32:
            # the non-finite values where the CPU has them, each kind; rel-L2 over the rest
            for kind in (np.isnan, np.isposinf, np.isneginf):
                assert np.array_equal(kind(g), kind(w)), f"{name}: {kind.__name__} positions differ"
            err = rel_l2(g[np.isfinite(w)], w[np.isfinite(w)])
            assert err <= 1e-5, f"{name}: rel-L2 {err:.3e}"
        elif c["tol"]:
            err = rel_l2(g.astype(np.float32), w.astype(np.float32))
            assert err <= c["tol"], f"{name}: rel-L2 {err:.3e}"
        else:
            assert np.array_equal(g, w), name


# Convolutions with what the fusion pass folds into one FusedConv (bias, residual Add, an
# activation), at odd sizes: depthwise (the own depthwise kernel, any stride, pads, dilation,
# channel multiplier), pointwise (the own tiled kernels: sizes off the tile edges) and general
# ones (cuDNN). The CUDA build times every tactic that applies at these shapes and keeps the
# fastest; the layer must run on the GPU as one fused layer and match the CPU.
# (name, x shape, w shape, group, attrs, bias, residual, activation)
CONV_CASES = [
    ("dw_s1_relu", (1, 7, 13, 11), (7, 1, 3, 3), 7, {"pads": [1, 1, 1, 1]}, True, False, "Relu"),
    ("dw_s2_clip_res", (2, 5, 15, 14), (5, 1, 3, 3), 5, {"pads": [1, 1, 1, 1], "strides": [2, 2]}, True, True, "Clip"),
    ("dw_dil_nobias", (1, 6, 12, 17), (6, 1, 3, 3), 6, {"pads": [2, 2, 2, 2], "dilations": [2, 2]}, False, False, None),
    ("dw_5x3_hswish", (3, 4, 9, 10), (4, 1, 5, 3), 4, {"pads": [2, 1, 2, 1], "strides": [1, 2]}, True, False, "HardSwish"),
    ("dw_mult2_sigmoid", (1, 3, 8, 9), (6, 1, 3, 3), 3, {}, True, False, "Sigmoid"),
    ("dw_res_hsig", (2, 9, 7, 7), (9, 1, 3, 3), 9, {"pads": [1, 1, 1, 1]}, False, True, "HardSigmoid"),
    # Channel multiplier 1 at odd sizes: the tiled depthwise kernels time against the rest.
    ("dw_c17_5x5_dil2_res", (3, 17, 13, 11), (17, 1, 5, 5), 17, {"pads": [4, 4, 4, 4], "dilations": [2, 2]}, True,
     True, "Relu"),
    ("dw_c33_s2_clip", (1, 33, 7, 9), (33, 1, 3, 3), 33, {"pads": [1, 1, 1, 1], "strides": [2, 2]}, False, False, "Clip"),
    ("dw_c96_5x5_hswish", (1, 96, 13, 11), (96, 1, 5, 5), 96, {"pads": [2, 2, 2, 2]}, True, False, "HardSwish"),
    ("dw_c3_wide_map_res", (1, 3, 40, 70), (3, 1, 3, 3), 3, {"pads": [1, 1, 1, 1]}, True, True, None),
    ("pw_odd_relu_res", (2, 19, 9, 13), (37, 19, 1, 1), 1, {}, True, True, "Relu"),
    ("pw_big_clip", (1, 70, 21, 23), (130, 70, 1, 1), 1, {}, True, False, "Clip"),
    ("pw_small_nobias", (3, 5, 3, 3), (3, 5, 1, 1), 1, {}, False, False, None),
    ("pw_1d_sigmoid", (2, 6, 29), (10, 6, 1), 1, {}, True, False, "Sigmoid"),
    ("full_3x3_s2_hswish", (2, 3, 17, 15), (8, 3, 3, 3), 1, {"pads": [1, 1, 1, 1], "strides": [2, 2]}, True, False,
     "HardSwish"),
    ("full_5x5_res", (1, 4, 12, 12), (4, 4, 5, 5), 1, {"pads": [2, 2, 2, 2]}, True, True, None),
    ("full_3x3_relu6_res", (2, 16, 10, 9), (24, 16, 3, 3), 1, {"pads": [1, 1, 1, 1]}, True, True, "Relu6"),
    ("full_3x3_relu_nobias", (1, 8, 11, 11), (8, 8, 3, 3), 1, {"pads": [1, 1, 1, 1]}, False, False, "Relu"),
    ("group2_3x3_hswish", (1, 8, 9, 9), (12, 4, 3, 3), 2, {"strides": [2, 2]}, True, False, "HardSwish"),
    ("pw_7x7_deep_res", (1, 320, 7, 7), (96, 320, 1, 1), 1, {}, True, True, None),
    ("full_3x3_deep_7x7", (1, 256, 7, 7), (64, 256, 3, 3), 1, {"pads": [1, 1, 1, 1]}, True, False, "Relu"),
]


def conv_out_shape(xs, ws, attrs):
    """ONNX's output size formula (the residual has the conv's output shape)."""
    k = ws[2:]
    st = attrs.get("strides", [1] * len(k))
    dl = attrs.get("dilations", [1] * len(k))
    pd = attrs.get("pads", [0] * (2 * len(k)))
    return (xs[0], ws[0], *[(xs[2 + i] + pd[i] + pd[i + len(k)] - dl[i] * (k[i] - 1) - 1) // st[i] + 1
                            for i in range(len(k))])


def conv_model(xs, ws, group, attrs, bias, res, act, seed):
    rng = np.random.default_rng(seed)
    w = (rng.standard_normal(ws) * 0.3).astype(np.float32)
    inits = [numpy_helper.from_array(w, "w")]
    ins = ["x", "w"]
    if bias:
        inits.append(numpy_helper.from_array(rng.standard_normal(ws[0]).astype(np.float32), "b"))
        ins.append("b")
    # The last node writes y (the fused layer's output is the graph's).
    conv_out = "c" if res or act else "y"
    nodes = [helper.make_node("Conv", ins, [conv_out], group=group, **attrs)]
    graph_in = [helper.make_tensor_value_info("x", F, list(xs))]
    last = conv_out
    if res:
        last = "a" if act else "y"
        nodes.append(helper.make_node("Add", ["c", "r"], [last]))
        # Declared with its shape: the fusion pass folds an Add whose operands provably match.
        graph_in.append(helper.make_tensor_value_info("r", F, list(conv_out_shape(xs, ws, attrs))))
    if act in ("Clip", "Relu6"):  # Relu6: Clip(0, 6), cuDNN's clipped ReLU where cuDNN runs
        lo, hi = (-0.3, 0.6) if act == "Clip" else (0.0, 6.0)
        inits += [numpy_helper.from_array(np.float32(lo), "lo"), numpy_helper.from_array(np.float32(hi), "hi")]
        nodes.append(helper.make_node("Clip", [last, "lo", "hi"], ["y"]))
    elif act == "HardSigmoid":
        nodes.append(helper.make_node("HardSigmoid", [last], ["y"], alpha=0.3, beta=0.4))
    elif act:
        nodes.append(helper.make_node(act, [last], ["y"]))
    graph = helper.make_graph(nodes, "conv", graph_in, [helper.make_tensor_value_info("y", F, None)], initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)]).SerializeToString()


@pytest.mark.parametrize("name,xs,ws,group,attrs,bias,res,act", CONV_CASES, ids=[c[0] for c in CONV_CASES])
def test_cuda_conv_fused_matches_cpu(name, xs, ws, group, attrs, bias, res, act):
    seed = sum(map(ord, name))
    model = conv_model(xs, ws, group, attrs, bias, res, act, seed)
    rng = np.random.default_rng(seed + 1)
    feeds = {"x": rng.standard_normal(xs).astype(np.float32)}
    if res:
        feeds["r"] = rng.standard_normal(conv_out_shape(xs, ws, attrs)).astype(np.float32)
    cpu = build(model, feeds, "cpu")
    fused = [l for l in json.loads(cpu.layer_info)["Layers"] if l["Stage"] == "execute"]
    assert [l["LayerType"] for l in fused] in (["FusedConv"], ["Conv"]), fused  # one layer: all fused
    want = cpu.create_execution_context().run(feeds)["y"]
    if not gpu_available():
        pytest.skip("no CUDA device found")
    engine = build(model, feeds, "cuda")
    run = [l for l in json.loads(engine.layer_info)["Layers"] if l["Stage"] == "execute"]
    assert [l["Kernel"] for l in run] in (["cuda.FusedConv"], ["cuda.Conv"]), run
    got = engine.create_execution_context().run(feeds)["y"]
    assert got.shape == want.shape
    err = rel_l2(got, want)
    assert err <= 1e-5, f"{name}: rel-L2 {err:.3e}"


# Layers of a CUDA op that its kernel cannot compute go to the host at load ("cpu fallback")
# and match the CPU; they used to reach the kernel and fail at run ("the cuda pooling kernel
# takes 1-D and 2-D windows"). supports() decides from ranks and attributes alone.
FALLBACK_CASES = {
    "maxpool_3d": case("MaxPool", [(F, (1, 2, 6, 7, 5))], {"kernel_shape": [3, 3, 2]}),
    "avgpool_3d": case("AveragePool", [(F, (1, 2, 6, 7, 5))], {"kernel_shape": [2, 2, 2]}),
    "avgpool_include_asym_pads": case("AveragePool", [(F, (2, 3, 9, 9))],
                                      {"kernel_shape": [3, 3], "pads": [1, 0, 1, 2], "count_include_pad": 1}),
}


@pytest.mark.parametrize("name", sorted(FALLBACK_CASES))
def test_cuda_layer_the_kernel_lacks_falls_back_to_the_host(name):
    c = FALLBACK_CASES[name]
    model, names = make_model(c)
    feeds = feeds_for(c, names, seed=sum(map(ord, name)))
    want = build(model, feeds, "cpu").create_execution_context().run(feeds)
    if not gpu_available():
        pytest.skip("no CUDA device found")
    engine = build(model, feeds, "cuda")
    run = [l for l in json.loads(engine.layer_info)["Layers"] if l["Stage"] == "execute"]
    assert [(l["Kernel"], l.get("Placement")) for l in run] == [(f"cpu.{c['op']}", "cpu fallback")], run
    got = engine.create_execution_context().run(feeds)
    for out, w in want.items():
        assert got[out].shape == w.shape and np.array_equal(got[out], w), name

@pytest.mark.parametrize("half", ["fp16", "bf16"])
@pytest.mark.parametrize("name,xs,ws,group,attrs,bias,res,act", CONV_CASES, ids=[c[0] for c in CONV_CASES])
def test_cuda_conv_fused_half_matches_cpu(name, xs, ws, group, attrs, bias, res, act, half):
    """The same convolutions in FP16 / BF16 engines: the conv runs in half (own half kernels,
    tensor-core ones, or cuDNN: the fastest at these shapes) as one fused layer, near the
    CPU's float32 (rel-L2 <= 1e-2, test_cuda.py's bound for half engines)."""
    if not gpu_available():
        pytest.skip("no CUDA device found")
    seed = sum(map(ord, name))
    model = conv_model(xs, ws, group, attrs, bias, res, act, seed)
    rng = np.random.default_rng(seed + 1)
    feeds = {"x": rng.standard_normal(xs).astype(np.float32)}
    if res:
        feeds["r"] = rng.standard_normal(conv_out_shape(xs, ws, attrs)).astype(np.float32)
    want = build(model, feeds, "cpu").create_execution_context().run(feeds)["y"]
    flag = ductile.BuilderFlag.FP16 if half == "fp16" else ductile.BuilderFlag.BF16
    engine = build(model, feeds, "cuda", (flag,))
    run = [l for l in json.loads(engine.layer_info)["Layers"] if l["Stage"] == "execute"]
    convs = [l for l in run if l["Kernel"] in ("cuda.FusedConv", "cuda.Conv")]
    assert len(convs) == 1 and convs[0]["Outputs"][0]["Dtype"] == ("float16" if half == "fp16" else "bfloat16"), run
    got = engine.create_execution_context().run(feeds)["y"]
    assert got.shape == want.shape and got.dtype == np.float32
    err = rel_l2(got, want)
    assert err <= 1e-2, f"{name} {half}: rel-L2 {err:.3e}"


def shape_input_model():
    """y = Expand(Reshape(Add(x, x), rshape), eshape): both shapes are graph inputs (shape tensors)."""
    nodes = [helper.make_node("Add", ["x", "x"], ["s"], name="add"),
             helper.make_node("Reshape", ["s", "rshape"], ["r"], name="reshape"),
             helper.make_node("Expand", ["r", "eshape"], ["y"], name="expand")]
    ins = [helper.make_tensor_value_info("x", F, ["a", "b"]), helper.make_tensor_value_info("rshape", I64, [2]),
           helper.make_tensor_value_info("eshape", I64, [3])]
    graph = helper.make_graph(nodes, "shapes", ins, [helper.make_tensor_value_info("y", F, None)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def test_cuda_shape_inputs_are_host_memory_and_match_cpu():
    """Shape inputs run on CUDA as in TensorRT: host memory (run() binds numpy arrays), the
    layers whose dims follow from their values on the host, the rest on the GPU; one context,
    two sets of shape values, each equal to the CPU engine."""
    model = shape_input_model()
    x = np.arange(12, dtype=np.float32).reshape(2, 6)
    runs = [{"x": x, "rshape": np.array([3, 4], np.int64), "eshape": np.array([2, 1, 4], np.int64)},
            {"x": x, "rshape": np.array([6, -1], np.int64), "eshape": np.array([2, 6, 1], np.int64)}]
    shapes = {"x": x.shape, "rshape": (2,), "eshape": (3,)}

    def build_for(device):
        b = ductile.Builder()
        net = b.parse_onnx_bytes(model)
        cfg = b.create_builder_config()
        cfg.device = device
        prof = b.create_optimization_profile()
        for name, s in shapes.items():
            prof.set_shape(name, s, s, s)
        cfg.add_optimization_profile(prof)
        return b.build_engine(net, cfg)

    cpu = build_for("cpu").create_execution_context()
    want = [cpu.run(f)["y"] for f in runs]
    assert [w.shape for w in want] == [(2, 3, 4), (2, 6, 2)]
    if not gpu_available():
        pytest.skip("no CUDA device found")
    engine = build_for("cuda")
    run = [l for l in json.loads(engine.layer_info)["Layers"] if l["Stage"] == "execute"]
    assert [(l["Kernel"], l.get("Placement")) for l in run] == [
        ("cuda.Add", None), ("cpu.Reshape", "cpu fallback"), ("cpu.Expand", "cpu fallback")], run
    ctx = engine.create_execution_context()
    for f, w in zip(runs, want):
        got = ctx.run(f)["y"]
        assert got.shape == w.shape and np.array_equal(got, w)
