"""ductile.serve without a server: the signature read from an engine (Triton's config), and
the batcher that merges alike requests into one execute inside the profile and splits them
back, judged against onnxruntime on each request's own inputs."""
import numpy as np
import pytest

import ductile
from ductile.serve.batcher import Stats, run_requests
from ductile.serve.runner import EngineRunner
from ductile.serve.signature import read_signature
from serve_help import ENGINES, build_engine
from util import assert_close, model_path, ort_run, ort_session


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    d = tmp_path_factory.mktemp("engines")
    return {k: build_engine(k, str(d / f"{k}.engine")) for k in ENGINES}


@pytest.fixture(scope="module")
def sessions():
    return {k: ort_session(model_path(f)) for k, (f, _) in ENGINES.items()}


def bert_feeds(batch, seq, seed):
    rng = np.random.default_rng(seed)
    mask = rng.integers(0, 2, size=(batch, seq), dtype=np.int64)
    mask[:, 0] = 1
    return {"input_ids": rng.integers(0, 2048, size=(batch, seq), dtype=np.int64),
            "attention_mask": mask}


def test_config_of_superres_engine(engines):
    text = read_signature(engines["sr"]).config_pbtxt("sr", instances=2, queue_delay_us=500)
    assert text == """name: "sr"
backend: "python"
max_batch_size: 65536
input [
  { name: "input" data_type: TYPE_FP32 dims: [ 1, -1, -1 ] }
]
output [
  { name: "output" data_type: TYPE_FP32 dims: [ 1, -1, -1 ] }
]
dynamic_batching { max_queue_delay_microseconds: 500 }
instance_group [ { count: 2 kind: KIND_CPU } ]
parameters { key: "engine" value: { string_value: "model.engine" } }
parameters { key: "threads" value: { string_value: "0" } }
parameters { key: "max_batch" value: { string_value: "4" } }
"""


def test_config_of_bert_engine_without_dynamic_batching(engines):
    sig = read_signature(engines["bert"])
    assert [(t.name, t.dtype, t.dims) for t in sig.inputs] == [
        ("input_ids", np.dtype(np.int64), (-1, -1)),
        ("attention_mask", np.dtype(np.int64), (-1, -1))]
    assert [(t.name, t.dims) for t in sig.outputs] == [("last_hidden_state", (-1, -1, 256))]
    text = sig.config_pbtxt("bert", dynamic_batching=False)
    assert "max_batch_size: 65536\n" in text and "dynamic_batching" not in text
    assert 'parameters { key: "max_batch" value: { string_value: "4" } }' in text
    # max batch 0: no batch dim, every dim in the model's own shape.
    assert '{ name: "input_ids" data_type: TYPE_INT64 dims: [ -1, -1 ] }' in \
        sig.config_pbtxt("bert", max_batch=0)


def test_max_batch_above_the_profile_is_refused(engines):
    with pytest.raises(ValueError) as e:
        read_signature(engines["bert"]).config_pbtxt("bert", max_batch=5)
    assert str(e.value) == ("model 'bert': max batch 5 is outside 0..4, the largest batch the "
                            "engine's profiles accept")


def test_alike_requests_run_as_one_execute_and_match_onnxruntime(engines, sessions):
    runner = EngineRunner(engines["bert"])
    shapes = [(1, 8), (2, 8), (1, 16), (1, 8), (3, 8), (2, 16)]
    requests = [bert_feeds(b, s, seed=i) for i, (b, s) in enumerate(shapes)]
    stats = Stats()
    results = run_requests(requests, runner, max_batch=4, stats=stats)
    # seq 8: 1+2+1 fill one execute of 4, then 3 alone; seq 16: 1+2 in one.
    assert stats.batches == [4, 3, 3]
    assert (stats.executes, stats.requests) == (3, 6)
    for feeds, got in zip(requests, results):
        want = ort_run(None, feeds, session=sessions["bert"])
        assert_close(got["last_hidden_state"], want["last_hidden_state"],
                     what=f"bert {feeds['input_ids'].shape}")


def test_superres_batches_split_back_match_onnxruntime(engines, sessions):
    rng = np.random.default_rng(3)
    shapes = [(1, 1, 20, 24), (2, 1, 20, 24), (1, 1, 33, 17), (1, 1, 20, 24)]
    requests = [{"input": rng.standard_normal(s, dtype=np.float32)} for s in shapes]
    stats = Stats()
    results = run_requests(requests, EngineRunner(engines["sr"]), max_batch=4, stats=stats)
    assert stats.batches == [4, 1]
    for feeds, got in zip(requests, results):
        want = ort_run(None, feeds, session=sessions["sr"])
        assert_close(got["output"], want["output"], what=f"sr {feeds['input'].shape}")


def test_refused_request_gets_ductiles_message_and_the_others_run(engines, sessions):
    runner = EngineRunner(engines["bert"])
    bad_seq = bert_feeds(1, 65, seed=1)
    mismatched = bert_feeds(1, 8, seed=2)
    mismatched["attention_mask"] = np.ones((1, 9), np.int64)
    good = [bert_feeds(1, 8, seed=3), bert_feeds(1, 8, seed=4)]
    stats = Stats()
    results = run_requests([good[0], bad_seq, mismatched, good[1]], runner, 4, stats)
    assert isinstance(results[1], ductile.Error) and isinstance(results[2], ductile.Error)
    assert str(results[1]) == ("input 'input_ids' dimension 1 (seq) is 65, outside the range "
                               "1..64 of profile 0")
    assert results[1].status == "DUCTILE_ERR_SHAPE"
    assert str(results[2]) == ("inputs 'input_ids' (dimension 1) and 'attention_mask' "
                               "(dimension 1) share the dimension 'seq' but were set to 8 and 9")
    assert stats.batches == [2]
    for i, feeds in ((0, good[0]), (3, good[1])):
        want = ort_run(None, feeds, session=sessions["bert"])
        assert_close(results[i]["last_hidden_state"], want["last_hidden_state"])


class FailsMerged:
    """A runner whose merged executes fail: the batcher must fall back to one by one."""

    def __init__(self):
        self.calls = []

    def check(self, feeds):
        return 0

    def run(self, feeds):
        b = feeds["x"].shape[0]
        self.calls.append(b)
        if b > 1:
            raise ductile.Error("out of memory (merged)", "DUCTILE_ERR_OUT_OF_MEMORY")
        return {"y": feeds["x"] * 2}


def test_failed_merged_execute_runs_each_request_alone():
    runner = FailsMerged()
    requests = [{"x": np.full((1, 3), i, np.float32)} for i in range(3)]
    results = run_requests(requests, runner, max_batch=4)
    assert runner.calls == [3, 1, 1, 1]
    for i, r in enumerate(results):
        np.testing.assert_array_equal(r["y"], np.full((1, 3), 2 * i, np.float32))


def test_without_a_batch_dim_every_request_runs_alone():
    runner = FailsMerged()
    results = run_requests([{"x": np.ones((1, 2), np.float32)}] * 3, runner, max_batch=0)
    assert runner.calls == [1, 1, 1] and all(isinstance(r, dict) for r in results)


def build_bytes(model_bytes, profiles):
    builder = ductile.Builder()
    network = builder.parse_onnx_bytes(model_bytes)
    config = builder.create_builder_config()
    for shapes in profiles:
        p = builder.create_optimization_profile()
        for name, (lo, opt, hi) in shapes.items():
            p.set_shape(name, lo, opt, hi)
        config.add_optimization_profile(p)
    return builder.build_engine(network, config)


def tiny_model(transpose):
    """x (N, 4) -> y = x * 2, or its transpose (4, N) whose dim 0 is not the batch."""
    from onnx import TensorProto, helper
    two = helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])
    nodes = [helper.make_node("Mul", ["x", "two"], ["m" if transpose else "y"])]
    if transpose:
        nodes.append(helper.make_node("Transpose", ["m"], ["y"], perm=[1, 0]))
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [two])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              ir_version=8)
    return model.SerializeToString()


def test_an_output_whose_dim_0_is_not_the_batch_turns_batching_off():
    engine = build_bytes(tiny_model(transpose=True), [{"x": ((1, 4), (2, 4), (8, 4))}])
    sig = read_signature(engine)
    assert sig.max_batch == 0
    assert [(t.name, t.dims) for t in sig.inputs] == [("x", (-1, 4))]
    assert [(t.name, t.dims) for t in sig.outputs] == [("y", (4, -1))]
    assert "max_batch_size: 0\n" in sig.config_pbtxt("t")
    with pytest.raises(ValueError) as e:
        sig.config_pbtxt("t", max_batch=2)
    assert str(e.value) == ("model 't': the engine cannot be batched along dim 0 (an input's "
                            "dim 0 is fixed, or an output's dim 0 does not follow it), so its "
                            "max batch must be 0")
    # Not batchable: requests run one by one, each its own shape.
    requests = [{"x": np.full((n, 4), n, np.float32)} for n in (1, 2, 3)]
    stats = Stats()
    results = run_requests(requests, EngineRunner(engine), sig.max_batch, stats)
    assert stats.batches == [1, 2, 3]
    for n, r in zip((1, 2, 3), results):
        np.testing.assert_array_equal(r["y"], np.full((4, n), 2 * n, np.float32))


def test_each_request_runs_in_the_first_profile_that_holds_it():
    engine = build_bytes(tiny_model(transpose=False),
                         [{"x": ((1, 4), (2, 4), (4, 4))}, {"x": ((5, 4), (6, 4), (8, 4))}])
    sig = read_signature(engine)
    assert sig.max_batch == 8 and sig.inputs[0].dims == (-1, 4)
    runner = EngineRunner(engine)
    assert runner.check({"x": np.zeros((3, 4), np.float32)}) == 0
    assert runner.check({"x": np.zeros((7, 4), np.float32)}) == 1
    requests = [{"x": np.full((n, 4), n, np.float32)} for n in (3, 7, 9, 2)]
    stats = Stats()
    results = run_requests(requests, runner, sig.max_batch, stats)
    assert str(results[2]) == (
        "profile 0: input 'x' dimension 0 (N) is 9, outside the range 1..4 of profile 0; "
        "profile 1: input 'x' dimension 0 (N) is 9, outside the range 5..8 of profile 1")
    # 3 and 2 fit one merged execute of 5 (profile 1); 7 runs alone.
    assert stats.batches == [5, 7]
    for i, n in ((0, 3), (1, 7), (3, 2)):
        np.testing.assert_array_equal(results[i]["y"], np.full((n, 4), 2 * n, np.float32))
