"""Sequences and optionals through control flow (If, Loop) and SequenceMap, compared with
onnxruntime on the same inputs, through a saved and loaded engine too, and the refusals of
models whose kinds do not agree (exact messages)."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper as h

import ductile
from util import ort_run

OPSET = 17
F, I64, B = T.FLOAT, T.INT64, T.BOOL
SEQ_F = h.make_sequence_type_proto(h.make_tensor_type_proto(F, None))


def _model(nodes, inputs, outputs, opset=OPSET):
    graph = h.make_graph(nodes, "g", inputs, outputs)
    return h.make_model(graph, opset_imports=[h.make_opsetid("", opset)], ir_version=8).SerializeToString()


def _engine(model, feeds):
    kinds = {vi.name: vi.type.WhichOneof("value") for vi in onnx.load_from_string(model).graph.input}
    builder = ductile.Builder()
    network = builder.parse_onnx_bytes(model)
    profile = builder.create_optimization_profile()
    for name, v in feeds.items():
        if kinds[name] == "tensor_type":
            profile.set_shape(name, v.shape, v.shape, v.shape)
    config = builder.create_builder_config()
    config.add_optimization_profile(profile)
    return builder.build_engine(network, config)


def _same(got, want):
    if isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want)
        for g, w in zip(got, want):
            assert g.dtype == w.dtype and g.shape == w.shape
            np.testing.assert_allclose(g, w, rtol=1e-6)
    else:
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-6)


def _check(model, feeds, names, tmp_path):
    """ductile's outputs match onnxruntime's, before and after an engine save/load."""
    want = ort_run(model, feeds)
    engine = _engine(model, feeds)
    got = engine.create_execution_context().run(feeds)
    for n in names:
        _same(got[n], want[n])
    path = tmp_path / "m.engine"
    engine.save(str(path))
    again = ductile.load_engine(str(path)).create_execution_context().run(feeds)
    for n in names:
        _same(again[n], want[n])
    return engine


def _append_loop_model():
    """A Loop appending x[:i+1] * s (s read from outside) to a carried sequence, plus a
    carried tensor sum, and the sequence's length read after the loop."""
    body = h.make_graph(
        [h.make_node("Identity", ["c"], ["c_out"]),
         h.make_node("Constant", [], ["one"], value=h.make_tensor("one", I64, [1], [1])),
         h.make_node("Constant", [], ["zero"], value=h.make_tensor("zero", I64, [1], [0])),
         h.make_node("Unsqueeze", ["i", "zero"], ["i1"]),
         h.make_node("Add", ["i1", "one"], ["end"]),
         h.make_node("Slice", ["x", "zero", "end"], ["part"]),
         h.make_node("Mul", ["part", "s"], ["scaled"]),
         h.make_node("SequenceInsert", ["seq_in", "scaled"], ["seq_out"]),
         h.make_node("ReduceSum", ["part"], ["psum"], keepdims=0),
         h.make_node("Add", ["acc_in", "psum"], ["acc_out"])],
        "body",
        [h.make_tensor_value_info("i", I64, []), h.make_tensor_value_info("c", B, []),
         h.make_value_info("seq_in", SEQ_F), h.make_tensor_value_info("acc_in", F, [])],
        [h.make_tensor_value_info("c_out", B, []), h.make_value_info("seq_out", SEQ_F),
         h.make_tensor_value_info("acc_out", F, [])])
    return _model(
        [h.make_node("SequenceEmpty", [], ["empty"], dtype=F),
         h.make_node("Loop", ["M", "", "empty", "acc0"], ["seq", "acc"], body=body),
         h.make_node("SequenceLength", ["seq"], ["n"])],
        [h.make_tensor_value_info("M", I64, []), h.make_tensor_value_info("x", F, ["N"]),
         h.make_tensor_value_info("s", F, []), h.make_tensor_value_info("acc0", F, [])],
        [h.make_value_info("seq", SEQ_F), h.make_tensor_value_info("acc", F, []),
         h.make_tensor_value_info("n", I64, [])])


@pytest.mark.parametrize("m", [0, 1, 4])
def test_loop_appending_to_a_sequence_matches_onnxruntime_and_survives_an_engine_file(m, tmp_path):
    feeds = {"M": np.array(m, np.int64), "x": np.arange(1, 6, dtype=np.float32), "s": np.array(2.5, np.float32),
             "acc0": np.array(1.0, np.float32)}
    _check(_append_loop_model(), feeds, ["seq", "acc", "n"], tmp_path)


def _if_seq_model():
    """If whose branches make a sequence: one splits x, the other reads the outer input
    sequence and inserts x into it."""
    then_g = h.make_graph([h.make_node("SplitToSequence", ["x"], ["t_seq"])], "then", [],
                          [h.make_value_info("t_seq", SEQ_F)])
    else_g = h.make_graph([h.make_node("SequenceInsert", ["ins", "x"], ["e_seq"])], "else", [],
                          [h.make_value_info("e_seq", SEQ_F)])
    return _model(
        [h.make_node("If", ["c"], ["out"], then_branch=then_g, else_branch=else_g),
         h.make_node("ConcatFromSequence", ["out"], ["cat"], axis=0)],
        [h.make_tensor_value_info("c", B, []), h.make_tensor_value_info("x", F, [3]),
         h.make_value_info("ins", SEQ_F)],
        [h.make_value_info("out", SEQ_F), h.make_tensor_value_info("cat", F, None)])


@pytest.mark.parametrize("c", [True, False])
def test_if_branches_making_sequences_match_onnxruntime(c, tmp_path):
    feeds = {"c": np.array(c), "x": np.array([1, 2, 3], np.float32),
             "ins": [np.array([7, 8, 9], np.float32), np.array([-1, -2, -3], np.float32)]}
    _check(_if_seq_model(), feeds, ["out", "cat"], tmp_path)


def test_if_branches_of_different_kinds_are_refused_naming_the_output():
    then_g = h.make_graph([h.make_node("SplitToSequence", ["x"], ["t_seq"])], "then", [],
                          [h.make_value_info("t_seq", SEQ_F)])
    else_g = h.make_graph([h.make_node("Identity", ["x"], ["e"])], "else", [],
                          [h.make_tensor_value_info("e", F, [3])])
    model = _model([h.make_node("If", ["c"], ["out"], name="branchy", then_branch=then_g, else_branch=else_g)],
                   [h.make_tensor_value_info("c", B, []), h.make_tensor_value_info("x", F, [3])],
                   [h.make_value_info("out", SEQ_F)])
    with pytest.raises(ductile.Error) as e:
        ductile.Builder().parse_onnx_bytes(model)
    assert str(e.value) == ("node 'branchy' (If, opset 17): output 0 ('out') is a sequence in then_branch "
                            "but a tensor in else_branch")


def test_loop_carrying_a_sequence_into_a_tensor_is_refused_naming_the_value():
    body = h.make_graph(
        [h.make_node("Identity", ["c"], ["c_out"]), h.make_node("ConcatFromSequence", ["v_in"], ["v_out"], axis=0)],
        "body",
        [h.make_tensor_value_info("i", I64, []), h.make_tensor_value_info("c", B, []),
         h.make_value_info("v_in", SEQ_F)],
        [h.make_tensor_value_info("c_out", B, []), h.make_tensor_value_info("v_out", F, None)])
    model = _model([h.make_node("SequenceEmpty", [], ["e"], dtype=F),
                    h.make_node("Loop", ["M", "", "e"], ["v"], name="looper", body=body)],
                   [h.make_tensor_value_info("M", I64, [])], [h.make_tensor_value_info("v", F, None)])
    with pytest.raises(ductile.Error) as e:
        ductile.Builder().parse_onnx_bytes(model)
    assert str(e.value) == ("node 'looper' (Loop, opset 17): loop-carried value 0 is a sequence in input 2 ('e'), "
                            "a sequence in body input 'v_in' and a tensor in body output 'v_out'")


def test_a_0d_item_keeps_its_rank_through_set_sequence_and_a_loop(tmp_path):
    """set_sequence once made a 0-d item 1-d (np.ascontiguousarray); the item here goes
    through a Loop that carries the sequence unchanged."""
    body = h.make_graph(
        [h.make_node("Identity", ["c"], ["c_out"]), h.make_node("Identity", ["v_in"], ["v_out"])], "body",
        [h.make_tensor_value_info("i", I64, []), h.make_tensor_value_info("c", B, []), h.make_value_info("v_in", SEQ_F)],
        [h.make_tensor_value_info("c_out", B, []), h.make_value_info("v_out", SEQ_F)])
    model = _model([h.make_node("Loop", ["M", "", "s"], ["v"], body=body)],
                   [h.make_tensor_value_info("M", I64, []), h.make_value_info("s", SEQ_F)], [h.make_value_info("v", SEQ_F)])
    feeds = {"M": np.array(3, np.int64), "s": [np.array(4.5, np.float32), np.array([1, 2], np.float32)]}
    _check(model, feeds, ["v"], tmp_path)


def _seqmap_model(second_is_sequence):
    """SequenceMap whose body adds the item of x to y (an item of y too when y is a
    sequence, else y whole, broadcast) and also returns the item's shape."""
    body = h.make_graph(
        [h.make_node("Add", ["a", "b"], ["sum"]), h.make_node("Shape", ["a"], ["shape"])], "body",
        [h.make_tensor_value_info("a", F, ["N"]), h.make_tensor_value_info("b", F, None)],
        [h.make_tensor_value_info("sum", F, None), h.make_tensor_value_info("shape", I64, [1])])
    y = h.make_value_info("y", SEQ_F) if second_is_sequence else h.make_tensor_value_info("y", F, [1])
    return _model([h.make_node("SequenceMap", ["x", "y"], ["sums", "shapes"], name="mapper", body=body)],
                  [h.make_value_info("x", SEQ_F), y],
                  [h.make_value_info("sums", SEQ_F),
                   h.make_value_info("shapes", h.make_sequence_type_proto(h.make_tensor_type_proto(I64, [1])))])


@pytest.mark.parametrize("n", [0, 1, 3])
def test_sequence_map_with_a_tensor_side_input_matches_onnxruntime(n, tmp_path):
    xs = [np.arange(j + 2, dtype=np.float32) * (j + 1) for j in range(n)]
    feeds = {"x": xs, "y": np.array([0.5], np.float32)}
    if n == 0:
        # onnxruntime cannot take an empty sequence input here; the answer is two empty sequences.
        engine = _engine(_seqmap_model(False), feeds)
        got = engine.create_execution_context().run(feeds)
        assert got["sums"] == [] and got["shapes"] == []
        return
    engine = _check(_seqmap_model(False), feeds, ["sums", "shapes"], tmp_path)
    assert engine.get_tensor_kind("sums") == "sequence" and engine.get_tensor_dtype("shapes") == np.int64


def test_sequence_map_over_two_sequences_matches_onnxruntime(tmp_path):
    feeds = {"x": [np.arange(3, dtype=np.float32), np.ones(5, np.float32)],
             "y": [np.full(3, 2, np.float32), np.arange(5, dtype=np.float32)]}
    _check(_seqmap_model(True), feeds, ["sums", "shapes"], tmp_path)


def test_sequence_map_over_sequences_of_different_lengths_is_refused_naming_them():
    feeds = {"x": [np.arange(3, dtype=np.float32)] * 2, "y": [np.full(3, 2, np.float32)]}
    ctx = _engine(_seqmap_model(True), feeds).create_execution_context()
    with pytest.raises(ductile.Error) as e:
        ctx.run(feeds)
    assert str(e.value) == ("node 'mapper' (SequenceMap, opset 17): input 1 ('y') has 1 items but input 0 ('x') has 2; "
                            "the sequences are read position by position")


def test_sequence_map_with_a_body_of_the_wrong_arity_is_refused_at_parse():
    body = h.make_graph([h.make_node("Identity", ["a"], ["o"])], "body", [h.make_tensor_value_info("a", F, None)],
                        [h.make_tensor_value_info("o", F, None)])
    model = _model([h.make_node("SequenceMap", ["x", "y"], ["o"], name="mapper", body=body)],
                   [h.make_value_info("x", SEQ_F), h.make_tensor_value_info("y", F, [1])], [h.make_value_info("o", SEQ_F)])
    with pytest.raises(ductile.Error) as e:
        ductile.Builder().parse_onnx_bytes(model)
    assert str(e.value) == "node 'mapper' (SequenceMap, opset 17): body has 1 inputs, expected the node's 2"


def _optional_type_model(elem_type):
    """If whose then branch is an Optional without input (its `type` a sequence or a tensor of
    elem_type), the other an Optional of a value; OptionalHasElement reads the result."""
    if elem_type == "sequence":
        tp, val = SEQ_F, [h.make_node("SequenceConstruct", ["x"], ["v"])]
    else:
        tp, val = h.make_tensor_type_proto(F, None), [h.make_node("Identity", ["x"], ["v"])]
    opt = h.make_optional_type_proto(tp)
    then_g = h.make_graph([h.make_node("Optional", [], ["none"], type=tp)], "then", [], [h.make_value_info("none", opt)])
    else_g = h.make_graph(val + [h.make_node("Optional", ["v"], ["some"])], "else", [], [h.make_value_info("some", opt)])
    return _model([h.make_node("If", ["c"], ["o"], then_branch=then_g, else_branch=else_g),
                   h.make_node("OptionalHasElement", ["o"], ["has"])],
                  [h.make_tensor_value_info("c", B, []), h.make_tensor_value_info("x", F, [2])],
                  [h.make_value_info("o", opt), h.make_tensor_value_info("has", B, [])], opset=18)


@pytest.mark.parametrize("kind", ["sequence", "tensor"])
@pytest.mark.parametrize("c", [True, False])
def test_optional_without_input_matches_onnxruntime_and_survives_an_engine_file(kind, c, tmp_path):
    model = _optional_type_model(kind)
    feeds = {"c": np.array(c), "x": np.array([1.5, -2], np.float32)}
    want = ort_run(model, feeds)
    engine = _engine(model, feeds)
    path = tmp_path / "o.engine"
    engine.save(str(path))
    loaded = ductile.load_engine(str(path))
    assert loaded.get_tensor_kind("o") == ("optional_sequence" if kind == "sequence" else "optional_tensor")
    for e in (engine, loaded):
        got = e.create_execution_context().run(feeds)
        _same(got["has"], want["has"])
        if want["o"] is None:
            assert got["o"] is None
        else:
            _same(got["o"], want["o"])


def test_optional_type_of_a_map_is_refused_naming_the_attribute():
    tp = h.make_map_type_proto(T.INT64, h.make_tensor_type_proto(F, None))
    model = _model([h.make_node("Optional", [], ["o"], name="opt", type=tp)], [],
                   [h.make_value_info("o", h.make_optional_type_proto(tp))], opset=18)
    with pytest.raises(ductile.Error) as e:
        ductile.Builder().parse_onnx_bytes(model)
    assert str(e.value) == ("node 'opt' (Optional, opset 18): attribute 'type' (TYPE_PROTO) is not a tensor or a sequence "
                            "of tensors with an element type; ductile supports those")


def test_a_loop_that_runs_no_iteration_cannot_turn_an_empty_optional_into_a_sequence():
    opt = h.make_optional_type_proto(SEQ_F)
    body = h.make_graph(
        [h.make_node("Identity", ["c"], ["c_out"]), h.make_node("OptionalGetElement", ["o_in"], ["s_out"])], "body",
        [h.make_tensor_value_info("i", I64, []), h.make_tensor_value_info("c", B, []), h.make_value_info("o_in", opt)],
        [h.make_tensor_value_info("c_out", B, []), h.make_value_info("s_out", SEQ_F)])
    model = _model([h.make_node("Loop", ["M", "", "o"], ["s"], name="looper", body=body)],
                   [h.make_tensor_value_info("M", I64, []), h.make_value_info("o", opt)], [h.make_value_info("s", SEQ_F)])
    feeds = {"M": np.array(0, np.int64), "o": None}
    ctx = _engine(model, {"M": feeds["M"]}).create_execution_context()
    with pytest.raises(ductile.Error) as e:
        ctx.run(feeds)
    assert str(e.value) == "node 'looper' (Loop, opset 17): output 0 ('s') is a sequence but its value is an empty optional"
    # One iteration with a value: the sequence comes out.
    got = ctx.run({"M": np.array(1, np.int64), "o": [np.ones(2, np.float32)]})
    _same(got["s"], [np.ones(2, np.float32)])
