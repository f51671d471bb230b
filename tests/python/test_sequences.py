"""Sequences and optionals (ONNX sequence_type, optional_type): the ops that make and read
them, as graph inputs and outputs, compared with onnxruntime on the same inputs; the engine
file keeps them; refusals name the node and what is wrong."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper as h

import ductile
from util import ort_run

OPSET = 17


def _model(nodes, inputs, outputs):
    graph = h.make_graph(nodes, "g", inputs, outputs)
    return h.make_model(graph, opset_imports=[h.make_opsetid("", OPSET)], ir_version=8).SerializeToString()


def _engine(model, profiles):
    builder = ductile.Builder()
    network = builder.parse_onnx_bytes(model)
    profile = builder.create_optimization_profile()
    for name, shape in profiles.items():
        profile.set_shape(name, shape, shape, shape)
    config = builder.create_builder_config()
    config.add_optimization_profile(profile)
    return builder.build_engine(network, config)


def _run(model, feeds):
    """ductile's outputs on feeds (tensor inputs get a profile of their own shape)."""
    kinds = {vi.name: vi.type.WhichOneof("value") for vi in onnx.load_from_string(model).graph.input}
    tensors = {k: v for k, v in feeds.items() if kinds[k] == "tensor_type"}
    ctx = _engine(model, {k: v.shape for k, v in tensors.items()}).create_execution_context()
    return ctx.run(feeds)


def _same(got, want):
    if want is None or got is None:
        assert got is None and want is None
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want)
        for g, w in zip(got, want):
            assert g.dtype == w.dtype and g.shape == w.shape
            np.testing.assert_array_equal(g, w)
    else:
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)


def _split_chain():
    """SplitToSequence -> SequenceInsert -> SequenceErase -> ConcatFromSequence, SequenceAt,
    SequenceLength, and the sequence itself as an output."""
    nodes = [h.make_node("SplitToSequence", ["x", "split"], ["parts"], axis=1, name="split"),
             h.make_node("SequenceInsert", ["parts", "y", "pos"], ["ins"], name="ins"),
             h.make_node("SequenceErase", ["ins", "erase"], ["seq"], name="erase"),
             h.make_node("ConcatFromSequence", ["seq"], ["cat"], axis=1, name="cat"),
             h.make_node("SequenceAt", ["seq", "at"], ["item"], name="at"),
             h.make_node("SequenceLength", ["seq"], ["len"], name="len")]
    inputs = [h.make_tensor_value_info("x", T.FLOAT, [3, 7]), h.make_tensor_value_info("split", T.INT64, [3]),
              h.make_tensor_value_info("y", T.FLOAT, [3, 2]), h.make_tensor_value_info("pos", T.INT64, []),
              h.make_tensor_value_info("erase", T.INT64, []), h.make_tensor_value_info("at", T.INT64, [])]
    outputs = [h.make_tensor_value_info("cat", T.FLOAT, None), h.make_tensor_value_info("item", T.FLOAT, None),
               h.make_tensor_value_info("len", T.INT64, []),
               h.make_tensor_sequence_value_info("seq", T.FLOAT, None)]
    return _model(nodes, inputs, outputs)


@pytest.mark.parametrize("pos,erase,at", [(0, 0, 0), (3, -1, -1), (-2, 2, 1), (1, -4, 2)])
def test_split_insert_erase_concat_match_onnxruntime(pos, erase, at):
    rng = np.random.default_rng(abs(pos) + 10 * abs(erase))
    feeds = {"x": rng.standard_normal((3, 7)).astype(np.float32), "split": np.array([2, 4, 1], np.int64),
             "y": rng.standard_normal((3, 2)).astype(np.float32), "pos": np.array(pos, np.int64),
             "erase": np.array(erase, np.int64), "at": np.array(at, np.int64)}
    model = _split_chain()
    want = ort_run(model, feeds)
    got = _run(model, feeds)
    for name in ("cat", "item", "len", "seq"):
        _same(got[name], want[name])


@pytest.mark.parametrize("attrs,split,concat", [
    ({"axis": 0}, None, {"axis": 0, "new_axis": 1}),
    ({"axis": -1, "keepdims": 0}, None, {"axis": -1, "new_axis": 1}),
    ({"axis": 1}, np.array(2, np.int64), {"axis": 1}),        # the last item is shorter
    ({"axis": 2}, np.array(3, np.int32), {"axis": -1, "new_axis": 0})])
def test_split_to_sequence_forms_match_onnxruntime(attrs, split, concat):
    x = np.arange(2 * 5 * 4, dtype=np.float32).reshape(2, 5, 4) - 7
    ins = ["x"] + (["split"] if split is not None else [])
    inputs = [h.make_tensor_value_info("x", T.FLOAT, [2, 5, 4])]
    if split is not None:
        inputs.append(h.make_tensor_value_info("split", T.INT64 if split.dtype == np.int64 else T.INT32, []))
    model = _model([h.make_node("SplitToSequence", ins, ["seq"], **attrs),
                    h.make_node("ConcatFromSequence", ["seq"], ["cat"], **concat)],
                   inputs, [h.make_tensor_sequence_value_info("seq", T.FLOAT, None),
                            h.make_tensor_value_info("cat", T.FLOAT, None)])
    feeds = {"x": x} if split is None else {"x": x, "split": split}
    want = ort_run(model, feeds)
    got = _run(model, feeds)
    _same(got["seq"], want["seq"])
    _same(got["cat"], want["cat"])


def _sequence_io_model():
    """A sequence input in, a sequence out, and one item read out of it."""
    nodes = [h.make_node("SequenceInsert", ["s", "x"], ["out"]),
             h.make_node("SequenceAt", ["out", "at"], ["item"]),
             h.make_node("ConcatFromSequence", ["out"], ["cat"], axis=0)]
    inputs = [h.make_tensor_sequence_value_info("s", T.INT32, None), h.make_tensor_value_info("x", T.INT32, [2, 3]),
              h.make_tensor_value_info("at", T.INT64, [])]
    outputs = [h.make_tensor_sequence_value_info("out", T.INT32, None), h.make_tensor_value_info("item", T.INT32, None),
               h.make_tensor_value_info("cat", T.INT32, None)]
    return _model(nodes, inputs, outputs)


def test_sequence_input_and_output_match_onnxruntime_and_survive_an_engine_file(tmp_path):
    model = _sequence_io_model()
    s = [np.arange(6, dtype=np.int32).reshape(2, 3), np.full((4, 3), -5, np.int32), np.zeros((0, 3), np.int32)]
    feeds = {"s": s, "x": np.arange(6, dtype=np.int32).reshape(2, 3) * 10, "at": np.array(1, np.int64)}
    want = ort_run(model, feeds)
    engine = _engine(model, {"x": (2, 3), "at": ()})
    assert engine.get_tensor_kind("s") == "sequence" and engine.get_tensor_kind("out") == "sequence"
    assert engine.get_tensor_kind("x") == "tensor" and engine.get_tensor_dtype("s") == np.int32
    # The layers that move sequences are the runtime's own, not a backend's kernels.
    assert '"Kernel": "runtime.SequenceInsert"' in engine.layer_info
    got = engine.create_execution_context().run(feeds)
    for name in ("out", "item", "cat"):
        _same(got[name], want[name])
    # The same engine saved and loaded: kinds and results unchanged.
    path = tmp_path / "seq.engine"
    engine.save(str(path))
    loaded = ductile.load_engine(str(path))
    assert loaded.get_tensor_kind("s") == "sequence" and loaded.get_tensor_kind("out") == "sequence"
    again = loaded.create_execution_context().run(feeds)
    for name in ("out", "item", "cat"):
        _same(again[name], want[name])
    # A second run on the same context with a longer sequence reuses and grows its buffers.
    feeds["s"] = s + [np.ones((1, 3), np.int32)] * 3
    feeds["at"] = np.array(-1, np.int64)
    want = ort_run(model, feeds)
    ctx = loaded.create_execution_context()
    ctx.run(feeds)
    got = ctx.run(feeds)
    for name in ("out", "item", "cat"):
        _same(got[name], want[name])
    # The items the context keeps (input s and output out) count in its memory, beside the
    # buffers of the tensors read out of them (item, cat): four copies of the big item.
    big = [np.zeros((1000, 3), np.int32)]
    ctx.run(dict(feeds, s=big, at=np.array(0, np.int64)))
    assert ctx.memory_size >= 4 * big[0].nbytes


def _optional_model():
    """An optional tensor in: whether it holds one, and (through If-free arithmetic) the
    value; an optional sequence in and out through Identity."""
    nodes = [h.make_node("OptionalHasElement", ["o"], ["has"]),
             h.make_node("Identity", ["os"], ["os_out"]),
             h.make_node("Optional", ["x"], ["ox"]),
             h.make_node("OptionalGetElement", ["ox"], ["x_back"])]
    opt_t = h.make_optional_type_proto(h.make_tensor_type_proto(T.FLOAT, [2]))
    opt_s = h.make_optional_type_proto(h.make_sequence_type_proto(h.make_tensor_type_proto(T.FLOAT, None)))
    inputs = [h.make_value_info("o", opt_t), h.make_value_info("os", opt_s), h.make_tensor_value_info("x", T.FLOAT, [3])]
    outputs = [h.make_tensor_value_info("has", T.BOOL, []), h.make_value_info("os_out", opt_s),
               h.make_value_info("ox", h.make_optional_type_proto(h.make_tensor_type_proto(T.FLOAT, [3]))),
               h.make_tensor_value_info("x_back", T.FLOAT, [3])]
    return _model(nodes, inputs, outputs)


@pytest.mark.parametrize("o,os", [(None, None), (np.array([1.5, -2], np.float32), []),
                                  (np.array([0, 0], np.float32), [np.ones((2, 2), np.float32), np.zeros(3, np.float32)])])
def test_optionals_match_onnxruntime(o, os):
    model = _optional_model()
    feeds = {"o": o, "os": os, "x": np.array([3, -1, 0.5], np.float32)}
    want = ort_run(model, feeds)
    got = _run(model, feeds)
    for name in ("has", "os_out", "ox", "x_back"):
        _same(got[name], want[name])


# ---- refusals ----


def _fails(model, feeds, message, status):
    with pytest.raises(ductile.Error) as e:
        _run(model, feeds)
    assert str(e.value) == message
    assert e.value.status == status


def test_sequence_at_out_of_range_names_the_node_the_position_and_the_length():
    model = _model([h.make_node("SequenceConstruct", ["x", "x", "x"], ["s3"], name="make"),
                    h.make_node("SequenceAt", ["s3", "at"], ["y"], name="pick")],
                   [h.make_tensor_value_info("x", T.FLOAT, [2]), h.make_tensor_value_info("at", T.INT64, [])],
                   [h.make_tensor_value_info("y", T.FLOAT, None)])
    x = np.ones(2, np.float32)
    _fails(model, {"x": x, "at": np.array(3, np.int64)},
           "node 'pick' (SequenceAt, opset 17): position 3 is out of range for a sequence of length 3 (expected -3..2)",
           "DUCTILE_ERR_INVALID_ARGUMENT")
    _fails(model, {"x": x, "at": np.array(-4, np.int64)},
           "node 'pick' (SequenceAt, opset 17): position -4 is out of range for a sequence of length 3 (expected -3..2)",
           "DUCTILE_ERR_INVALID_ARGUMENT")


def test_position_of_another_dtype_and_mixed_dtypes_are_refused_at_run_time():
    # Both pass the import (their dtypes are those of the run); the run names the node.
    model = _model([h.make_node("SequenceConstruct", ["x", "x"], ["s2"]),
                    h.make_node("SequenceAt", ["s2", "at"], ["y"], name="pick")],
                   [h.make_tensor_value_info("x", T.FLOAT, [2]), h.make_tensor_value_info("at", T.FLOAT, [])],
                   [h.make_tensor_value_info("y", T.FLOAT, None)])
    _fails(model, {"x": np.ones(2, np.float32), "at": np.array(0, np.float32)},
           "node 'pick' (SequenceAt, opset 17): input 1 (position) has dtype float32; expected int32 or int64",
           "DUCTILE_ERR_INVALID_ARGUMENT")
    model = _model([h.make_node("SequenceConstruct", ["x", "x"], ["s2"]),
                    h.make_node("SequenceAt", ["s2", "at"], ["y"], name="pick")],
                   [h.make_tensor_value_info("x", T.FLOAT, [2]), h.make_tensor_value_info("at", T.INT64, [2])],
                   [h.make_tensor_value_info("y", T.FLOAT, None)])
    _fails(model, {"x": np.ones(2, np.float32), "at": np.zeros(2, np.int64)},
           "node 'pick' (SequenceAt, opset 17): input 1 (position) has 2 elements; expected one",
           "DUCTILE_ERR_INVALID_ARGUMENT")
    model = _model([h.make_node("SequenceConstruct", ["x", "i"], ["s2"], name="make"),
                    h.make_node("SequenceLength", ["s2"], ["n"])],
                   [h.make_tensor_value_info("x", T.FLOAT, [2]), h.make_tensor_value_info("i", T.INT64, [2])],
                   [h.make_tensor_value_info("n", T.INT64, [])])
    _fails(model, {"x": np.ones(2, np.float32), "i": np.ones(2, np.int64)},
           "node 'make' (SequenceConstruct, opset 17): input 1 ('i') has dtype int64 but input 0 has float32; a "
           "sequence holds one dtype", "DUCTILE_ERR_INVALID_ARGUMENT")


def test_concat_from_sequence_of_mismatched_shapes_names_the_items():
    model = _model([h.make_node("SequenceConstruct", ["a", "b"], ["s2"]),
                    h.make_node("ConcatFromSequence", ["s2"], ["y"], axis=1, name="cat")],
                   [h.make_tensor_value_info("a", T.FLOAT, [2, 3]), h.make_tensor_value_info("b", T.FLOAT, [4, 3])],
                   [h.make_tensor_value_info("y", T.FLOAT, None)])
    _fails(model, {"a": np.ones((2, 3), np.float32), "b": np.ones((4, 3), np.float32)},
           "node 'cat' (ConcatFromSequence, opset 17): item 1 has shape [4,3] of float32 but item 0 has [2,3] of "
           "float32; they may differ only in dimension 1", "DUCTILE_ERR_SHAPE")


def test_empty_sequence_where_a_tensor_is_needed_is_refused():
    model = _model([h.make_node("SequenceEmpty", [], ["e"], dtype=T.FLOAT, name="empty"),
                    h.make_node("ConcatFromSequence", ["e"], ["y"], axis=0, name="cat")],
                   [], [h.make_tensor_value_info("y", T.FLOAT, None)])
    _fails(model, {}, "node 'cat' (ConcatFromSequence, opset 17): input 0 ('e') is an empty sequence; "
           "ConcatFromSequence needs at least one tensor", "DUCTILE_ERR_INVALID_ARGUMENT")


def test_empty_optional_where_a_tensor_is_needed_is_refused():
    opt_t = h.make_optional_type_proto(h.make_tensor_type_proto(T.FLOAT, [2]))
    model = _model([h.make_node("OptionalGetElement", ["o"], ["y"], name="get")],
                   [h.make_value_info("o", opt_t)], [h.make_tensor_value_info("y", T.FLOAT, None)])
    _fails(model, {"o": None}, "node 'get' (OptionalGetElement, opset 17): input 0 ('o') is an empty optional; "
           "OptionalGetElement needs a value", "DUCTILE_ERR_INVALID_ARGUMENT")


@pytest.mark.parametrize("node,inputs,message", [
    (h.make_node("SequenceAt", ["x", "at"], ["y"], name="pick"),
     [h.make_tensor_value_info("x", T.FLOAT, [2]), h.make_tensor_value_info("at", T.INT64, [])],
     "node 'pick' (SequenceAt, opset 17): input 0 ('x') is a tensor; SequenceAt takes a sequence there"),
    (h.make_node("Relu", ["s"], ["y"], name="relu"),
     [h.make_tensor_sequence_value_info("s", T.FLOAT, None)],
     "node 'relu' (Relu, opset 17): input 0 ('s') is a sequence; Relu takes a tensor there"),
])
def test_a_value_of_the_wrong_kind_is_refused_at_parse(node, inputs, message):
    model = _model([node], inputs, [h.make_tensor_value_info("y", T.FLOAT, None)])
    with pytest.raises(ductile.Error) as e:
        ductile.Builder().parse_onnx_bytes(model)
    assert str(e.value) == message
    assert e.value.status == "DUCTILE_ERR_INVALID_ARGUMENT"


def test_set_sequence_refuses_an_item_of_another_dtype_and_a_missing_value():
    ctx = _engine(_sequence_io_model(), {"x": (2, 3), "at": ()}).create_execution_context()
    with pytest.raises(ductile.Error) as e:
        ctx.set_sequence("s", [np.zeros(2, np.int32), np.zeros(2, np.int64)])
    assert str(e.value) == "input 's': item 1 has dtype int64; expected int32"
    with pytest.raises(ductile.Error) as e:
        ctx.set_sequence("s", None)
    assert str(e.value) == "input 's' is a sequence: -1 items given; expected 0 or more"
    with pytest.raises(ductile.Error) as e:
        ctx.get_tensor_shape("out")
    assert str(e.value) == "'out' is a sequence, not a tensor: use set_sequence / get_sequence"
    ctx.set_input_shape("x", (2, 3))
    ctx.set_input_shape("at", ())
    ctx.set_tensor_address("x", np.zeros((2, 3), np.int32).ctypes.data)
    ctx.set_tensor_address("at", np.zeros((), np.int64).ctypes.data)
    with pytest.raises(ductile.Error) as e:
        ctx.execute()
    assert str(e.value) == "input 's' (a sequence) has no value: set it with set_sequence before execute"
    assert e.value.status == "DUCTILE_ERR_STATE"
    with pytest.raises(ductile.Error) as e:
        ctx.get_sequence("out")
    assert str(e.value) == "'out' has no value yet: it is known after execute"
