"""Dropout in training mode: with a seed, the mask and output equal ONNX's reference (numpy's
RandomState(seed)) at odd sizes and dtypes, on every run and after an engine reload; without a
seed each run draws a new mask. onnxruntime is not the reference here: its generator differs."""
import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

import ductile
from util import assert_close

TYPES = {np.float32: TensorProto.FLOAT, np.float64: TensorProto.DOUBLE, np.float16: TensorProto.FLOAT16}


def dropout_model(dtype, shape, opset=13, **attrs):
    t = TYPES[dtype]
    inputs = [helper.make_tensor_value_info("x", t, shape), helper.make_tensor_value_info("r", TensorProto.FLOAT, []),
              helper.make_tensor_value_info("t", TensorProto.BOOL, [])]
    graph = helper.make_graph([helper.make_node("Dropout", ["x", "r", "t"], ["y", "mask"], **attrs)], "dropout",
                              inputs, [helper.make_tensor_value_info("y", t, None),
                                       helper.make_tensor_value_info("mask", TensorProto.BOOL, None)])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m.SerializeToString()


def engine_of(data):
    b = ductile.Builder()
    engine = b.build_engine(b.parse_onnx_bytes(data), b.create_builder_config())
    return ductile.Runtime().deserialize_cuda_engine(engine.serialize())


@pytest.mark.parametrize("dtype,shape,ratio,seed", [
    (np.float32, (3, 7, 5), 0.75, 0),
    (np.float32, (1001,), 0.3, 12345),
    (np.float64, (13, 9), 0.5, 7),
    (np.float16, (5, 11), 0.2, 4294967295),
])
def test_seeded_dropout_matches_onnx_reference(dtype, shape, ratio, seed):
    rng = np.random.default_rng(seed % 1000)
    feeds = {"x": rng.standard_normal(shape).astype(dtype), "r": np.array(ratio, np.float32),
             "t": np.array(True)}
    data = dropout_model(dtype, shape, seed=seed)
    want_y, want_mask = ReferenceEvaluator(data).run(None, feeds)
    ctx = engine_of(data).create_execution_context()
    for _ in range(2):  # the same mask on every run
        got = ctx.run(feeds)
        np.testing.assert_array_equal(got["mask"], want_mask)
        assert got["y"].dtype == dtype
        assert_close(got["y"], want_y.astype(dtype), rtol=1e-6, what="Dropout y")


def test_unseeded_dropout_draws_a_new_mask_each_run():
    shape = (4096,)
    feeds = {"x": np.ones(shape, np.float32), "r": np.array(0.5, np.float32), "t": np.array(True)}
    ctx = engine_of(dropout_model(np.float32, shape)).create_execution_context()
    a, b = ctx.run(feeds), ctx.run(feeds)
    for got in (a, b):
        np.testing.assert_array_equal(got["y"], np.where(got["mask"], np.float32(2), np.float32(0)))
        assert 0.45 < got["mask"].mean() < 0.55
    assert not np.array_equal(a["mask"], b["mask"])


def test_training_dropout_ratio_one_is_refused():
    feeds = {"x": np.ones((3,), np.float32), "r": np.array(1.0, np.float32), "t": np.array(True)}
    ctx = engine_of(dropout_model(np.float32, (3,), seed=1)).create_execution_context()
    with pytest.raises(ductile.Error) as info:
        ctx.run(feeds)
    assert info.value.status == "DUCTILE_ERR_INVALID_ARGUMENT"
    assert str(info.value) == "node 'Dropout_0' (Dropout, opset 13): ratio 1 is outside [0, 1) in training mode"


@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
def test_dropout_of_an_empty_tensor(training):
    """An empty input (a dim 0) gives an empty output and mask, as onnxruntime; its bytes are
    none at all (the copy once passed a NULL pointer to memcpy: UBSan, fuzz_onnx, session 44)."""
    from util import ort_run
    model = dropout_model(np.float32, (2, 0, 3))
    feeds = {"x": np.zeros((2, 0, 3), np.float32), "r": np.array(0.5, np.float32), "t": np.array(training)}
    want = ort_run(model, feeds)
    got = engine_of(model).create_execution_context().run(feeds)
    for k in ("y", "mask"):
        assert got[k].shape == want[k].shape == (2, 0, 3) and got[k].dtype == want[k].dtype, (k, got[k], want[k])
