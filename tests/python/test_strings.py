"""String tensors (issue 9 point 5): the string ops against onnxruntime at odd sizes with UTF-8
and empty strings, string constants and an engine save/load round trip, and the refusals'
exact messages."""
import struct

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

import ductile
from ductile import Builder, Error, Runtime
from test_output_dtypes import crc32c

S = TensorProto.STRING


def model(nodes, inputs, outputs, inits=(), opset=20, ml=False):
    g = helper.make_graph(nodes, "strings", inputs, outputs, list(inits))
    imports = [helper.make_opsetid("", opset)] + ([helper.make_opsetid("ai.onnx.ml", 4)] if ml else [])
    return helper.make_model(g, opset_imports=imports, ir_version=9)


def build(m, feeds):
    b = Builder()
    net = b.parse_onnx_bytes(m.SerializeToString())
    cfg = b.create_builder_config()
    prof = b.create_optimization_profile()
    for name, arr in feeds.items():
        prof.set_shape(name, arr.shape, arr.shape, arr.shape)
    cfg.add_optimization_profile(prof)
    return b.build_engine(net, cfg)


def run(m, feeds):
    return build(m, feeds).create_execution_context().run(feeds)


def ort_run(m, feeds):
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))


def same(a, b):
    assert a.shape == b.shape, (a.shape, b.shape)
    text = ("O", "U")  # strings: ductile gives object arrays, onnx.reference str arrays
    assert a.dtype == b.dtype or (a.dtype.kind in text and b.dtype.kind in text), (a.dtype, b.dtype)
    assert a.tolist() == b.tolist()


WORDS = np.array(["", "a", "Ünïcödé", "的中", "hello world", "  x  y ", "MONDAY", "Straße", "ab.cd.ef",
                  "o-n--x-", "émoji 😀"], dtype=object)


def odd(n, shift=0):
    return np.array([WORDS[(i * 7 + shift) % len(WORDS)] for i in range(n)], dtype=object)


def check_against_ort(m, feeds):
    got, want = run(m, feeds), ort_run(m, feeds)
    for name, w in want.items():
        same(got[name], w)


def test_string_concat_broadcasts_utf8_and_empty_strings_like_onnxruntime():
    m = model([helper.make_node("StringConcat", ["x", "y"], ["z"])],
              [helper.make_tensor_value_info("x", S, [3, 5]), helper.make_tensor_value_info("y", S, [5])],
              [helper.make_tensor_value_info("z", S, [3, 5])])
    check_against_ort(m, {"x": odd(15).reshape(3, 5), "y": odd(5, 3)})


def test_equal_on_strings_broadcasts_like_onnxruntime():
    m = model([helper.make_node("Equal", ["x", "y"], ["z"])],
              [helper.make_tensor_value_info("x", S, [7, 1]), helper.make_tensor_value_info("y", S, [3])],
              [helper.make_tensor_value_info("z", TensorProto.BOOL, [7, 3])])
    check_against_ort(m, {"x": odd(7).reshape(7, 1), "y": np.array(["", "a", "的中"], dtype=object)})


@pytest.mark.parametrize("attrs", [{}, {"delimiter": "-"}, {"delimiter": "."}, {"maxsplit": 1},
                                   {"delimiter": "--", "maxsplit": 2}])
def test_string_split_matches_onnxruntime(attrs):
    m = model([helper.make_node("StringSplit", ["x"], ["y", "n"], **attrs)],
              [helper.make_tensor_value_info("x", S, [11])],
              [helper.make_tensor_value_info("y", S, None), helper.make_tensor_value_info("n", TensorProto.INT64, None)])
    check_against_ort(m, {"x": odd(11)})


@pytest.mark.parametrize("action,sensitive", [("NONE", 1), ("LOWER", 0), ("UPPER", 1), ("UPPER", 0)])
def test_string_normalizer_matches_onnxruntime(action, sensitive):
    # C.UTF-8: the locale both sides have here (onnxruntime's default en_US.UTF-8 may be absent).
    node = helper.make_node("StringNormalizer", ["x"], ["y"], case_change_action=action,
                            is_case_sensitive=sensitive, stopwords=["monday", "a"], locale="C.UTF-8")
    m = model([node], [helper.make_tensor_value_info("x", S, [1, 11])], [helper.make_tensor_value_info("y", S, None)],
              opset=17)
    check_against_ort(m, {"x": odd(11).reshape(1, 11)})


def test_regex_full_match_matches_onnxruntime():
    pattern = r"(\W|^)[\w.\-]{0,25}@(yahoo|gmail)\.com(\W|$)|\d+x?|[^a-z]*"
    m = model([helper.make_node("RegexFullMatch", ["x"], ["y"], pattern=pattern)],
              [helper.make_tensor_value_info("x", S, [9])], [helper.make_tensor_value_info("y", TensorProto.BOOL, [9])])
    x = np.array(["a@gmail.com", "a@b.com", "123", "123x", "12y", "", "ABC", "abc", "x.y-z@yahoo.com"], dtype=object)
    check_against_ort(m, {"x": x})


def test_label_encoder_string_to_int_matches_onnxruntime():
    node = helper.make_node("LabelEncoder", ["x"], ["y"], domain="ai.onnx.ml", keys_strings=["a", "的中", ""],
                            values_int64s=[5, 6, 7], default_int64=-9)
    m = model([node], [helper.make_tensor_value_info("x", S, [11])],
              [helper.make_tensor_value_info("y", TensorProto.INT64, [11])], ml=True)
    check_against_ort(m, {"x": odd(11)})


def test_label_encoder_int_to_string_matches_onnxruntime():
    node = helper.make_node("LabelEncoder", ["x"], ["y"], domain="ai.onnx.ml", keys_int64s=[3, 1, 2],
                            values_strings=["three", "одна", ""], default_string="?")
    m = model([node], [helper.make_tensor_value_info("x", TensorProto.INT64, [7])],
              [helper.make_tensor_value_info("y", S, [7])], ml=True)
    check_against_ort(m, {"x": np.array([1, 2, 3, 4, 0, 3, -1], dtype=np.int64)})


def string_constant_model():
    """A string initializer gathered and concatenated: constants live in the engine."""
    c = helper.make_tensor("c", S, [3], [b"-x", "\u00e9".encode(), b""])
    nodes = [helper.make_node("Gather", ["c", "i"], ["g"]), helper.make_node("StringConcat", ["x", "g"], ["y"])]
    return model(nodes, [helper.make_tensor_value_info("x", S, [5]), helper.make_tensor_value_info("i", TensorProto.INT64, [5])],
                 [helper.make_tensor_value_info("y", S, [5])], inits=[c])


def test_string_constants_survive_an_engine_save_and_load(tmp_path):
    m = string_constant_model()
    feeds = {"x": odd(5), "i": np.array([0, 2, 1, 1, 0], dtype=np.int64)}
    want = ort_run(m, feeds)["y"]
    engine = build(m, feeds)
    path = tmp_path / "strings.engine"
    engine.save(str(path))
    loaded = Runtime().deserialize_cuda_engine(path.read_bytes())
    got = loaded.create_execution_context().run(feeds)["y"]
    same(got, want)
    # The header says the engine holds strings (format.h: DT_ENGINE_FLAG_STRINGS, byte 20).
    assert path.read_bytes()[20] == 1


def sections(f):
    nsec, hs = struct.unpack_from("<I", f, 16)[0], struct.unpack_from("<I", f, 12)[0]
    return {struct.unpack_from("<I", f, hs + 24 * i)[0]: struct.unpack_from("<Q", f, hs + 24 * i + 8)[0]
            for i in range(nsec)}


def string_records(f):
    """(record offset, name index, flags, blob offset, blob size) of each string tensor."""
    off = sections(f)[2]
    for t in range(struct.unpack_from("<I", f, off)[0]):
        rec = off + 4 + 128 * t
        if struct.unpack_from("<i", f, rec + 4)[0] == 8:
            yield rec, struct.unpack_from("<I", f, rec + 12)[0], *struct.unpack_from("<QQ", f, rec + 112)


def reseal(f):
    struct.pack_into("<I", f, 32, crc32c(f[36:], crc32c(f[:32])))
    return bytes(f)


def load_error(data):
    with pytest.raises(Error) as e:
        Runtime().deserialize_cuda_engine(data)
    return str(e.value)


def constant_engine():
    return bytearray(build(string_constant_model(), {"x": odd(5), "i": np.zeros(5, dtype=np.int64)}).serialize())


def test_an_unknown_header_flag_is_refused_by_name():
    f = constant_engine()
    struct.pack_into("<I", f, 20, 3)
    assert load_error(reseal(f)) == ("engine header at byte offset 20: flags 0x00000003 name features this "
                                     "build does not know")


def test_a_string_tensor_without_the_header_flag_is_refused_at_its_record():
    f = constant_engine()
    struct.pack_into("<I", f, 20, 0)
    rec = next(string_records(f))[0]
    assert load_error(reseal(f)).startswith(f"engine section TENSORS at byte offset {rec + 4}: tensor '")
    assert load_error(reseal(f)).endswith("': dtype string without the header's flag 0x1 (strings)")


def test_a_string_length_past_its_blob_names_the_byte_offset():
    f = constant_engine()
    rec, flags, off, size = next(r for r in string_records(f) if r[1] & 4)
    blob = sections(f)[6] + off
    struct.pack_into("<Q", f, blob, size)  # element 0 claims the whole blob and more
    assert load_error(reseal(f)) == (f"engine section BLOBS at byte offset {blob}: tensor 'c': element 0's length "
                                     f"{size} runs past the blob's {size} bytes")


def build_error(m, feeds):
    with pytest.raises(Error) as e:
        build(m, feeds)
    return e.value


@pytest.mark.parametrize("op, message", [
    ("Add", "node 'n' (Add, opset 20): input 0 ('t') has dtype string; Add does not take strings"),
    ("Where", "node 'n' (Where, opset 20): input 1 ('t') has dtype string; Where does not take strings"),
])
def test_ops_without_strings_refuse_them_naming_the_node(op, message):
    """Through an Identity: the string dtype reaches the layer by inference, not a declaration."""
    ins = ["t", "t"] if op == "Add" else ["c", "t", "t"]
    m = model([helper.make_node("Identity", ["x"], ["t"]), helper.make_node(op, ins, ["y"], name="n")],
              [helper.make_tensor_value_info("x", S, [2]), helper.make_tensor_value_info("c", TensorProto.BOOL, [2])],
              [helper.make_tensor_value_info("y", S, [2])])
    assert str(build_error(m, {"x": odd(2), "c": np.ones(2, dtype=bool)})) == message


def test_unsupported_regex_syntax_is_refused_at_build_time_with_its_offset():
    m = model([helper.make_node("RegexFullMatch", ["x"], ["y"], name="re", pattern="a(?i)b")],
              [helper.make_tensor_value_info("x", S, [1])], [helper.make_tensor_value_info("y", TensorProto.BOOL, [1])])
    e = build_error(m, {"x": odd(1)})
    assert str(e) == ("node 're' (RegexFullMatch, opset 20): attribute 'pattern' ('a(?i)b'): byte 1: a group with "
                         "flags or a name ((?...)) is RE2 syntax that ductile's POSIX matcher lacks"), str(e)


def test_case_change_of_invalid_utf8_names_the_element_and_byte():
    node = helper.make_node("StringNormalizer", ["x"], ["y"], name="norm", case_change_action="UPPER")
    m = model([node], [helper.make_tensor_value_info("x", S, [3])], [helper.make_tensor_value_info("y", S, None)],
              opset=17)
    ctx = build(m, {"x": odd(3)}).create_execution_context()
    with pytest.raises(Error) as e:
        ctx.run({"x": np.array(["ok", "", b"ab\xff"], dtype=object)})
    assert str(e.value) == ("node 'norm' (StringNormalizer, opset 17): input 0 element 2: invalid UTF-8 at byte 2; "
                               "a case change needs UTF-8 text"), str(e.value)


def test_string_outputs_stay_valid_across_runs_in_python():
    m = model([helper.make_node("StringConcat", ["x", "x"], ["y"])], [helper.make_tensor_value_info("x", S, [4])],
              [helper.make_tensor_value_info("y", S, [4])])
    ctx = build(m, {"x": odd(4)}).create_execution_context()
    first = ctx.run({"x": odd(4)})["y"]
    second = ctx.run({"x": odd(4, 5)})["y"]
    assert first.tolist() == [s + s for s in odd(4)]
    assert second.tolist() == [s + s for s in odd(4, 5)]


def cast_model(frm, to, n):
    return model([helper.make_node("Cast", ["x"], ["y"], name="cast", to=to)], [helper.make_tensor_value_info("x", frm, [n])],
                 [helper.make_tensor_value_info("y", to, [n])], opset=21)


FLOATS = [0.1, 1 / 3, 1e10, 1e-7, -0.0, 0.0, np.inf, -np.inf, np.nan, 100.5, 3.0, 16777216.0, 1.17549435e-38,
          123456789.0, 999999.0, 1e6, 1e-4, 9.9e-5, 1e16, 5e15, 65504.0, 999.0, 1000.0, 1e-45, 2.5e-310]


@pytest.mark.parametrize("np_type, onnx_type", [(np.float32, TensorProto.FLOAT), (np.float64, TensorProto.DOUBLE),
                                                (np.float16, TensorProto.FLOAT16)])
def test_cast_floats_to_string_writes_what_onnx_reference_writes(np_type, onnx_type):
    from onnx.reference import ReferenceEvaluator
    with np.errstate(over="ignore"):
        x = np.array(FLOATS, dtype=np_type)
    m = cast_model(onnx_type, S, len(x))
    want = ReferenceEvaluator(m).run(None, {"x": x})[0]
    # onnxruntime writes its own forms ("-0", "INF", "3"): ONNX leaves the text open.
    same(run(m, {"x": x})["y"], want)


@pytest.mark.parametrize("np_type, onnx_type", [(np.int64, TensorProto.INT64), (np.uint64, TensorProto.UINT64),
                                                (np.int8, TensorProto.INT8), (np.bool_, TensorProto.BOOL)])
def test_cast_integers_and_bool_to_string_like_onnx_reference(np_type, onnx_type):
    from onnx.reference import ReferenceEvaluator
    x = np.array([0, 1, 127, 5, 1] if np_type != np.bool_ else [True, False, True], dtype=np_type)
    if np_type == np.int64:
        x = np.array([0, -5, 2**62, -2**63, 2**63 - 1], dtype=np.int64)
    if np_type == np.uint64:
        x = np.array([0, 2**64 - 1, 7], dtype=np.uint64)
    m = cast_model(onnx_type, S, len(x))
    same(run(m, {"x": x})["y"], ReferenceEvaluator(m).run(None, {"x": x})[0])


@pytest.mark.parametrize("onnx_type", [TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16])
def test_cast_string_to_floats_reads_onnx_literals_like_onnxruntime(onnx_type):
    x = np.array(["3.14", "1e-5", "1E8", "+INF", "inf", "-Inf", "NaN", "nan", " 7", "100.5", "-0", "1e40", "INF"],
                 dtype=object)
    m = cast_model(S, onnx_type, len(x))
    got, want = run(m, {"x": x})["y"], ort_run(m, {"x": x})["y"]
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    assert np.signbit(got).tolist() == np.signbit(want).tolist()


@pytest.mark.parametrize("onnx_type", [TensorProto.INT64, TensorProto.INT32, TensorProto.UINT8, TensorProto.UINT64])
def test_cast_string_to_integers_like_onnxruntime(onnx_type):
    x = np.array(["12", "-3", "+4", "007", " 42 ", "255", "100.5"], dtype=object)
    if onnx_type in (TensorProto.UINT8, TensorProto.UINT64):
        x = np.array(["12", "+4", "007", " 42 ", "255", "100.5"], dtype=object)
    m = cast_model(S, onnx_type, len(x))
    got, want = run(m, {"x": x})["y"], ort_run(m, {"x": x})["y"]
    assert got.dtype == want.dtype
    assert got.tolist() == want.tolist()


def test_cast_refuses_text_that_is_no_number_naming_the_element():
    m = cast_model(S, TensorProto.FLOAT, 3)
    ctx = build(m, {"x": odd(3)}).create_execution_context()
    with pytest.raises(Error) as e:
        ctx.run({"x": np.array(["1", "2", "two"], dtype=object)})
    assert str(e.value) == "node 'cast' (Cast, opset 21): input 0 element 2: 'two' is not a number float32 can hold"


def test_cast_between_strings_and_bfloat16_is_refused_at_build_time():
    m = cast_model(S, TensorProto.BFLOAT16, 2)
    assert str(build_error(m, {"x": odd(2)})) == (
        "profile 0 at shapes 'x' [2]: node 'cast' (Cast, opset 21): Cast from string to bfloat16 is not supported (strings cast to and from "
        "float16, float32, float64, the integer types and bool)")


def test_cast_string_round_trip_through_float_in_one_graph():
    """A string made by Cast feeds StringConcat: bytes made in one layer read by the next."""
    nodes = [helper.make_node("Cast", ["x"], ["s"], to=S), helper.make_node("StringConcat", ["s", "u"], ["y"])]
    m = model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4]), helper.make_tensor_value_info("u", S, [1])],
              [helper.make_tensor_value_info("y", S, [4])], opset=21)
    from onnx.reference import ReferenceEvaluator
    feeds = {"x": np.array([1.5, -0.0, np.inf, 0.1], dtype=np.float32), "u": np.array([" kg"], dtype=object)}
    same(run(m, feeds)["y"], ReferenceEvaluator(m).run(None, feeds)[0])


@pytest.mark.parametrize("shape, words, want", [([1, 3], ["a", "A", "a"], [[""]]), ([3], ["a", "b", "a"], ["b"]),
                                                ([1, 2], ["b", "c"], [["b", "c"]])])
def test_string_normalizer_keeps_its_rank_and_one_empty_string_like_onnxruntime(shape, words, want):
    node = helper.make_node("StringNormalizer", ["x"], ["y"], stopwords=["a"], locale="C.UTF-8")
    m = model([node], [helper.make_tensor_value_info("x", S, shape)], [helper.make_tensor_value_info("y", S, None)], opset=17)
    feeds = {"x": np.array(words, dtype=object).reshape(shape)}
    assert run(m, feeds)["y"].tolist() == want
    check_against_ort(m, feeds)


@pytest.mark.parametrize("shape", [[0], [1, 0], [2, 2]])
def test_string_normalizer_refuses_shapes_onnxruntime_refuses(shape):
    node = helper.make_node("StringNormalizer", ["x"], ["y"], name="norm", stopwords=["a"])
    m = model([node], [helper.make_tensor_value_info("x", S, shape)], [helper.make_tensor_value_info("y", S, None)], opset=17)
    text = "[" + ",".join(str(d) for d in shape) + "]"
    with pytest.raises(Error) as e:  # an eager engine (stopwords): its shapes are inferred at execute
        run(m, {"x": np.array(["a"] * int(np.prod(shape)), dtype=object).reshape(shape)})
    msg = str(e.value)
    assert msg == (f"node 'norm' (StringNormalizer, opset 17): input 0 ('x') has shape {text}; expected [C] or "
                        "[1, C] with C >= 1"), msg


def test_data_movement_ops_carry_strings_like_onnx_reference():
    """Concat, Reshape, Transpose, Slice, Unsqueeze, Squeeze, Flatten, Expand, Tile, Split,
    Gather, Identity and Shape on strings: views move, bytes stay put."""
    I = TensorProto.INT64
    c = lambda name, v: helper.make_tensor(name, I, [len(v)], v)
    nodes = [
        helper.make_node("Concat", ["x", "y"], ["cat"], axis=0),                       # [6]
        helper.make_node("Reshape", ["cat", "shape23"], ["r"]),                       # [2,3]
        helper.make_node("Transpose", ["r"], ["t"], perm=[1, 0]),                     # [3,2]
        helper.make_node("Slice", ["t", "st", "en", "ax"], ["sl"]),                   # [2,2]
        helper.make_node("Unsqueeze", ["sl", "ax0"], ["un"]),                         # [1,2,2]
        helper.make_node("Squeeze", ["un", "ax0"], ["sq"]),                           # [2,2]
        helper.make_node("Flatten", ["sq"], ["fl"], axis=1),                          # [2,2]
        helper.make_node("Expand", ["fl", "shape322"], ["ex"]),                       # [3,2,2]
        helper.make_node("Tile", ["sq", "reps"], ["ti"]),                             # [2,4]
        helper.make_node("Split", ["ti", "halves"], ["s0", "s1"], axis=1),           # [2,2] x2
        helper.make_node("Gather", ["s1", "idx"], ["ga"], axis=0),                    # [3,2]
        helper.make_node("Identity", ["ga"], ["out"]),
        helper.make_node("Shape", ["ex"], ["shp"]),
    ]
    inits = [c("shape23", [2, 3]), c("st", [1]), c("en", [3]), c("ax", [0]), c("ax0", [0]), c("shape322", [3, 2, 2]),
             c("reps", [1, 2]), c("halves", [2, 2]), c("idx", [1, 0, 1])]
    m = model(nodes, [helper.make_tensor_value_info("x", S, [4]), helper.make_tensor_value_info("y", S, [2])],
              [helper.make_tensor_value_info(n, S, None) for n in ("ex", "s0", "out")] +
              [helper.make_tensor_value_info("shp", I, None)], inits=inits, opset=18)
    # onnx.reference, not onnxruntime: onnxruntime 1.30 gives '' for half of 'out' here (its
    # Split -> Gather on strings; with s1 also an output it is right).
    from onnx.reference import ReferenceEvaluator
    feeds = {"x": odd(4), "y": odd(2, 3)}
    got, want = run(m, feeds), ReferenceEvaluator(m).run(None, feeds)
    for name, w in zip(("ex", "s0", "out", "shp"), want):
        same(got[name], w)


@pytest.mark.parametrize("pattern, words", [
    (".", ["é", "a", "的", "ab", ""]),
    ("[^a]+", ["é的", "ba", ""]),
    (r"\w+", ["é", "abc_1", "a b"]),
    (r"\s*x\s*", ["\tx ", "\u00a0x"]),
    ("[αβγ]+", ["αβγ", "aβ"]),
    (r"\d+", ["١٢", "12"]),
    ("[[:alpha:]]+", ["é", "ab"]),
    ("(?:ab)+?c|x{2,3}", ["ababc", "xxx", "xxxx", "c"]),
])
def test_regex_full_match_takes_code_points_and_ascii_classes_like_re2(pattern, words):
    """Under whatever locale the process has: RE2's '.' takes a code point, its classes are ASCII."""
    m = model([helper.make_node("RegexFullMatch", ["x"], ["y"], pattern=pattern)],
              [helper.make_tensor_value_info("x", S, [len(words)])],
              [helper.make_tensor_value_info("y", TensorProto.BOOL, [len(words)])])
    check_against_ort(m, {"x": np.array(words, dtype=object)})


def test_regex_ranges_beyond_ascii_are_refused_at_build_time():
    m = model([helper.make_node("RegexFullMatch", ["x"], ["y"], name="re", pattern="[a-zα-ω]+")],
              [helper.make_tensor_value_info("x", S, [1])], [helper.make_tensor_value_info("y", TensorProto.BOOL, [1])])
    assert str(build_error(m, {"x": odd(1)})) == (
        "node 're' (RegexFullMatch, opset 20): attribute 'pattern' ('[a-zα-ω]+'): byte 6: a range of characters "
        "beyond ASCII inside [...] is RE2 syntax that ductile's POSIX matcher lacks")


def test_regex_full_match_refuses_invalid_utf8_naming_the_element_and_byte():
    m = model([helper.make_node("RegexFullMatch", ["x"], ["y"], name="re", pattern=".*")],
              [helper.make_tensor_value_info("x", S, [2])], [helper.make_tensor_value_info("y", TensorProto.BOOL, [2])])
    with pytest.raises(Error) as e:
        run(m, {"x": np.array(["ok", b"a\xc3"], dtype=object)})
    assert str(e.value) == ("node 're' (RegexFullMatch, opset 20): input 0 element 1: invalid UTF-8 at byte 1; "
                            "RegexFullMatch matches UTF-8 text")
