"""The ai.onnx.ml ops (Binarizer, ArrayFeatureExtractor, TreeEnsemble) at odd sizes against
onnxruntime, through a serialized and reloaded engine, and the importer's refusals for the
rest of the domain, with their exact messages."""
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import ductile
from util import assert_close, ort_run

ML = "ai.onnx.ml"


def model(nodes, inputs, outputs, ml_opset=5, default_opset=21):
    graph = helper.make_graph(nodes, "ml", [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
                              [helper.make_tensor_value_info(n, t, None) for n, t in outputs])
    opsets = [helper.make_opsetid(ML, ml_opset)] + ([helper.make_opsetid("", default_opset)] if default_opset else [])
    m = helper.make_model(graph, opset_imports=opsets)
    m.ir_version = 10
    return m.SerializeToString()


def run_reloaded(data, feeds):
    """Builds, serializes, reloads the engine and runs it: the ops' attributes (tensor ones
    included) come back from the engine file."""
    b = ductile.Builder()
    engine = b.build_engine(b.parse_onnx_bytes(data), b.create_builder_config())
    engine = ductile.Runtime().deserialize_cuda_engine(engine.serialize())
    return engine.create_execution_context().run(feeds)


def build(data):
    b = ductile.Builder()
    return b.build_engine(b.parse_onnx_bytes(data), b.create_builder_config())


def raises(status, message, fn, *args):
    with pytest.raises(ductile.Error) as info:
        fn(*args)
    assert info.value.status == status
    assert str(info.value) == message


# ---- Binarizer ----

@pytest.mark.parametrize("threshold", [0.0, 0.3, -1.25])
def test_binarizer_matches_onnxruntime(threshold):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 7, 5)).astype(np.float32)
    x[0, 0, :2] = [threshold, np.nextafter(np.float32(threshold), np.float32(1))]
    data = model([helper.make_node("Binarizer", ["X"], ["Y"], domain=ML, threshold=threshold)],
                 [("X", TensorProto.FLOAT, x.shape)], [("Y", TensorProto.FLOAT)], ml_opset=1)
    got = run_reloaded(data, {"X": x})["Y"]
    want = ort_run(data, {"X": x})["Y"]
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype,onnx_type", [(np.float64, TensorProto.DOUBLE), (np.int64, TensorProto.INT64),
                                             (np.int32, TensorProto.INT32)])
def test_binarizer_other_dtypes(dtype, onnx_type):
    """onnxruntime runs Binarizer on float only (and refuses NaN): the other types ONNX allows
    against x > t, as ONNX's reference computes it (NaN gives 0)."""
    x = (np.arange(-7, 8).reshape(3, 5) * 0.75).astype(dtype)
    if dtype == np.float64:
        x[1, 1] = np.nan
    data = model([helper.make_node("Binarizer", ["X"], ["Y"], domain=ML, threshold=1.5)],
                 [("X", onnx_type, x.shape)], [("Y", onnx_type)], ml_opset=1)
    got = run_reloaded(data, {"X": x})["Y"]
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, (x > 1.5).astype(dtype))


# ---- ArrayFeatureExtractor ----

@pytest.mark.parametrize("shape,index_shape,dtype,onnx_type", [
    ((3, 5, 7), (4,), np.float32, TensorProto.FLOAT),
    ((9,), (1, 3), np.float32, TensorProto.FLOAT),
    ((2, 11), (2, 2), np.int64, TensorProto.INT64),
    ((5, 3), (), np.float64, TensorProto.DOUBLE),
])
def test_array_feature_extractor_matches_onnxruntime(shape, index_shape, dtype, onnx_type):
    rng = np.random.default_rng(len(shape) * 10 + len(index_shape))
    x = (rng.standard_normal(shape) * 100).astype(dtype)
    idx = rng.integers(0, shape[-1], index_shape).astype(np.int64)
    data = model([helper.make_node("ArrayFeatureExtractor", ["X", "I"], ["Y"], domain=ML)],
                 [("X", onnx_type, shape), ("I", TensorProto.INT64, index_shape)], [("Y", onnx_type)], ml_opset=1)
    feeds = {"X": x, "I": idx}
    got = run_reloaded(data, feeds)["Y"]
    want = ort_run(data, feeds)["Y"]
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def test_array_feature_extractor_index_out_of_range():
    data = model([helper.make_node("ArrayFeatureExtractor", ["X", "I"], ["Y"], domain=ML)],
                 [("X", TensorProto.FLOAT, (2, 5)), ("I", TensorProto.INT64, (3,))], [("Y", TensorProto.FLOAT)],
                 ml_opset=1)
    ctx = build(data).create_execution_context()
    feeds = {"X": np.zeros((2, 5), np.float32), "I": np.array([1, 5, 0], np.int64)}
    raises("DUCTILE_ERR_INVALID_ARGUMENT",
           "node 'ArrayFeatureExtractor_0' (ArrayFeatureExtractor, opset 1): input 1 (Y)[1] = 5 is out of range: "
           "expected an index into the last dim of X, [0, 5)", ctx.run, feeds)


# ---- TreeEnsemble ----

def random_forest(rng, n_trees, depth, n_features, n_targets, dtype, member=True):
    """Complete trees of the given depth, every mode (MEMBER with sets of 1 to 3 values, unless
    member is false), some nodes sending missing values to the true branch. Returns the node
    attributes and membership_values."""
    a = {k: [] for k in ("featureids", "truenodeids", "falsenodeids", "trueleafs", "falseleafs", "modes", "splits",
                         "missing", "targets", "weights", "roots")}
    sets = []

    def leaf():
        a["targets"].append(int(rng.integers(0, n_targets)))
        a["weights"].append(float(np.round(rng.standard_normal() * 4, 3)))
        return len(a["targets"]) - 1

    def node(d):
        i = len(a["featureids"])
        for k in ("featureids", "truenodeids", "falsenodeids", "trueleafs", "falseleafs", "modes", "splits", "missing"):
            a[k].append(0)
        mode = int(rng.integers(0, 7 if member else 6))
        a["featureids"][i] = int(rng.integers(0, n_features))
        a["modes"][i] = mode
        a["splits"][i] = float(rng.integers(-2, 3)) / 2 if mode in (4, 5) else float(np.round(rng.standard_normal(), 2))
        a["missing"][i] = int(rng.integers(0, 2))
        if mode == 6:
            # No 0.0: ONNX's reference ends a set at a member that is false in Python.
            sets.append(sorted(set(rng.choice([-2.0, -1.0, 1.0, 2.0], int(rng.integers(1, 4))).tolist())))
        for side in ("true", "false"):
            if d == depth:
                a[side + "nodeids"][i], a[side + "leafs"][i] = leaf(), 1
            else:
                a[side + "nodeids"][i], a[side + "leafs"][i] = node(d + 1), 0
        return i

    for _ in range(n_trees):
        a["roots"].append(node(1))
    # membership_values lists the sets in the order of the MEMBER nodes (node index order).
    members = [v for s in sets for v in s + [np.nan]]
    return a, members


def tree_node(a, members, dtype, n_targets, **attrs):
    t = lambda v, dt: numpy_helper.from_array(np.array(v, dt))
    kw = dict(nodes_featureids=a["featureids"], nodes_truenodeids=a["truenodeids"],
              nodes_falsenodeids=a["falsenodeids"], nodes_trueleafs=a["trueleafs"], nodes_falseleafs=a["falseleafs"],
              nodes_modes=t(a["modes"], np.uint8), nodes_splits=t(a["splits"], dtype),
              nodes_missing_value_tracks_true=a["missing"], leaf_targetids=a["targets"],
              leaf_weights=t(a["weights"], dtype), tree_roots=a["roots"], n_targets=n_targets)
    if members:
        kw["membership_values"] = t(members, dtype)
    kw.update(attrs)
    return helper.make_node("TreeEnsemble", ["X"], ["Y"], domain=ML, **kw)


def tree_inputs(rng, n, f, dtype):
    # Values on a half-integer grid hit the EQ / NEQ / MEMBER splits; some NaNs test missing values.
    x = (rng.integers(-3, 4, (n, f)) / 2 + np.where(rng.random((n, f)) < 0.4, rng.standard_normal((n, f)), 0))
    x[rng.random((n, f)) < 0.1] = np.nan
    return x.astype(dtype)


@pytest.mark.parametrize("dtype,onnx_type", [(np.float32, TensorProto.FLOAT), (np.float64, TensorProto.DOUBLE)])
@pytest.mark.parametrize("aggregate", [0, 1, 2, 3])
def test_tree_ensemble_matches_onnxruntime(dtype, onnx_type, aggregate):
    """Modes LEQ to NEQ (onnxruntime truncates values to int32 before a BRANCH_MEMBER test, so
    -1.5 is a member of {-1} there: the next test checks MEMBER against ONNX's reference)."""
    rng = np.random.default_rng(11 + aggregate)
    a, members = random_forest(rng, n_trees=5, depth=3, n_features=7, n_targets=3, dtype=dtype, member=False)
    data = model([tree_node(a, members, dtype, 3, aggregate_function=aggregate)],
                 [("X", onnx_type, (13, 7))], [("Y", onnx_type)])
    x = tree_inputs(rng, 13, 7, dtype)
    got = run_reloaded(data, {"X": x})["Y"]
    want = ort_run(data, {"X": x})["Y"]
    assert got.dtype == dtype and got.shape == (13, 3)
    assert_close(got, want, rtol=1e-6, what=f"TreeEnsemble aggregate {aggregate}")


@pytest.mark.parametrize("dtype,onnx_type", [(np.float32, TensorProto.FLOAT), (np.float64, TensorProto.DOUBLE)])
@pytest.mark.parametrize("aggregate", [0, 1])
def test_tree_ensemble_member_matches_onnx_reference(dtype, onnx_type, aggregate):
    """Every mode, BRANCH_MEMBER included, against ONNX's reference (SUM and AVERAGE: the
    reference starts MIN and MAX at the type's extremes, which stay where no leaf counts)."""
    from onnx.reference import ReferenceEvaluator
    rng = np.random.default_rng(21 + aggregate)
    a, members = random_forest(rng, n_trees=6, depth=3, n_features=5, n_targets=2, dtype=dtype)
    assert 6 in a["modes"]
    data = model([tree_node(a, members, dtype, 2, aggregate_function=aggregate)],
                 [("X", onnx_type, (17, 5))], [("Y", onnx_type)])
    x = tree_inputs(rng, 17, 5, dtype)
    got = run_reloaded(data, {"X": x})["Y"]
    want = ReferenceEvaluator(data).run(None, {"X": x})[0]
    assert got.dtype == dtype and got.shape == (17, 2)
    assert_close(got, want, rtol=1e-6, what=f"TreeEnsemble aggregate {aggregate}")


@pytest.mark.parametrize("post", [1, 2])
def test_tree_ensemble_post_transform(post):
    """SOFTMAX (1) and LOGISTIC (2) as ONNX numbers them, on the scores of post_transform NONE
    (onnxruntime 1.30 swaps the two codes, and ONNX's reference ignores the attribute)."""
    rng = np.random.default_rng(5)
    a, members = random_forest(rng, n_trees=4, depth=2, n_features=3, n_targets=4, dtype=np.float32)
    x = tree_inputs(rng, 9, 3, np.float32)
    scores = run_reloaded(model([tree_node(a, members, np.float32, 4)], [("X", TensorProto.FLOAT, (9, 3))],
                                [("Y", TensorProto.FLOAT)]), {"X": x})["Y"].astype(np.float64)
    got = run_reloaded(model([tree_node(a, members, np.float32, 4, post_transform=post)],
                             [("X", TensorProto.FLOAT, (9, 3))], [("Y", TensorProto.FLOAT)]), {"X": x})["Y"]
    if post == 1:
        e = np.exp(scores - scores.max(1, keepdims=True))
        want = e / e.sum(1, keepdims=True)
    else:
        want = 1 / (1 + np.exp(-scores))
    assert_close(got, want.astype(np.float32), rtol=1e-6, what=f"post_transform {post}")


def test_tree_ensemble_refusals():
    rng = np.random.default_rng(2)
    a, members = random_forest(rng, n_trees=1, depth=2, n_features=2, n_targets=1, dtype=np.float32)
    x_in = [("X", TensorProto.FLOAT, (2, 2))]
    y_out = [("Y", TensorProto.FLOAT)]
    raises("DUCTILE_ERR_UNSUPPORTED",
           "node 'TreeEnsemble_0' (TreeEnsemble, opset 5): attribute 'post_transform' = 4 (PROBIT) is not supported by "
           "ductile (NONE, SOFTMAX and LOGISTIC are)",
           build, model([tree_node(a, members, np.float32, 1, post_transform=4)], x_in, y_out))
    raises("DUCTILE_ERR_UNSUPPORTED",
           "node 'TreeEnsemble_0' (TreeEnsemble, opset 3): TreeEnsemble is defined from opset 5 of domain 'ai.onnx.ml'; "
           "the model imports 3", build, model([tree_node(a, members, np.float32, 1)], x_in, y_out, ml_opset=3))
    bad = dict(a, falsenodeids=list(a["falsenodeids"]))
    bad["falsenodeids"][0] = 99
    bad["falseleafs"] = [0] + a["falseleafs"][1:]
    raises("DUCTILE_ERR_INVALID_ARGUMENT",
           f"node 'TreeEnsemble_0' (TreeEnsemble, opset 5): attribute 'nodes_falsenodeids'[0] = 99 is out of range: "
           f"expected a node id in [0, {len(a['featureids'])})",
           build, model([tree_node(bad, members, np.float32, 1)], x_in, y_out))
    # A cycle: node 1's true branch goes back to the root; found when a row walks it.
    loop = dict(a, truenodeids=list(a["truenodeids"]), trueleafs=list(a["trueleafs"]),
                missing=[1] * len(a["missing"]))
    loop["truenodeids"][1], loop["trueleafs"][1] = 0, 0
    ctx = build(model([tree_node(loop, members, np.float32, 1)], x_in, y_out)).create_execution_context()
    raises("DUCTILE_ERR_INVALID_ARGUMENT",
           "node 'TreeEnsemble_0' (TreeEnsemble, opset 5): tree 0 (root node 0) has a cycle: its node ids never reach a leaf",
           ctx.run, {"X": np.full((2, 2), np.nan, np.float32)})


# ---- the domain ----

def test_other_ml_ops_and_default_domain_refused():
    """Only the three ops are admitted from ai.onnx.ml, and only from there."""
    x_in = [("X", TensorProto.FLOAT, (2, 3))]
    raises("DUCTILE_ERR_UNSUPPORTED",
           "node 'Scaler_0' (ai.onnx.ml.Scaler, opset 1): op type 'Scaler' of domain 'ai.onnx.ml' is not supported "
           "by ductile",
           ductile.Builder().parse_onnx_bytes,
           model([helper.make_node("Scaler", ["X"], ["Y"], domain=ML, scale=[2.0])], x_in, [("Y", TensorProto.FLOAT)],
                 ml_opset=1))
    raises("DUCTILE_ERR_UNSUPPORTED",
           "node 'Binarizer_0' (Binarizer, opset 21): op type 'Binarizer' is not in the default domain (ai.onnx); "
           "ductile runs it from domain 'ai.onnx.ml'",
           ductile.Builder().parse_onnx_bytes,
           model([helper.make_node("Binarizer", ["X"], ["Y"])], x_in, [("Y", TensorProto.FLOAT)], ml_opset=1))
