"""If, Loop and Scan through the Python workflow (parse, profiles, build, run, save and load),
compared with onnxruntime on the same inputs: subgraphs that read outer-scope tensors, nested
subgraphs, loop-carried state that grows every iteration, a branch condition fed by a graph
input across a profile's range, and malformed subgraphs refused with exact messages."""
import numpy as np
import pytest
from onnx import TensorProto, helper

import ductile
from util import assert_close, ort_run, ort_session

F, I64, B = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL
OPSET = 17


def vi(name, dtype, shape):
    return helper.make_tensor_value_info(name, dtype, shape)


def model_bytes(nodes, inputs, outputs, initializers=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    return model.SerializeToString()


def const(name, value):
    return helper.make_tensor(name, TensorProto.FLOAT if value.dtype == np.float32 else TensorProto.INT64,
                              value.shape, value.flatten().tolist())


def build(data, profile):
    builder = ductile.Builder()
    network = builder.parse_onnx_bytes(data)
    config = builder.create_builder_config()
    p = builder.create_optimization_profile()
    for name, shapes in profile.items():
        p.set_shape(name, *shapes)
    config.add_optimization_profile(p)
    return builder.build_engine(network, config)


def check_against_ort(engine, data, feeds):
    got = engine.create_execution_context().run(feeds)
    want = ort_run(None, feeds, session=ort_session(data))
    for name, value in want.items():
        assert_close(got[name], value, rtol=1e-6, what=name)
    return got


# ---- If: outer-scope reads, a condition that is a graph input, branches of other shapes ----

def if_model():
    """y = If(c): then Add(a, x) with a = Relu(x) computed outside, else Concat(a, x*k)
    (another shape: [2N, 3]); k an initializer of the enclosing graph."""
    then_g = helper.make_graph([helper.make_node("Add", ["a", "x"], ["t"])], "then", [], [vi("t", F, None)])
    else_g = helper.make_graph([helper.make_node("Mul", ["x", "k"], ["xk"]),
                                helper.make_node("Concat", ["a", "xk"], ["e"], axis=0)],
                               "else", [], [vi("e", F, None)])
    nodes = [helper.make_node("Relu", ["x"], ["a"]),
             helper.make_node("If", ["c"], ["y"], name="if0", then_branch=then_g, else_branch=else_g)]
    return model_bytes(nodes, [vi("x", F, ["N", 3]), vi("c", B, [])], [vi("y", F, None)],
                       [const("k", np.array([2.0], np.float32))])


IF_PROFILE = {"x": ((1, 3), (4, 3), (8, 3)), "c": ((), (), ())}


@pytest.fixture(scope="module")
def if_engine():
    return build(if_model(), IF_PROFILE)


@pytest.mark.parametrize("n", [1, 4, 7, 8])
@pytest.mark.parametrize("cond", [True, False])
def test_if_branches_read_outer_tensors_across_the_profile(if_engine, n, cond):
    x = np.random.default_rng(n).standard_normal((n, 3)).astype(np.float32)
    got = check_against_ort(if_engine, if_model(), {"x": x, "c": np.array(cond)})
    assert got["y"].shape == ((n, 3) if cond else (2 * n, 3))


def test_if_output_shape_is_known_after_execute(if_engine):
    ctx = if_engine.create_execution_context()
    x = np.ones((2, 3), np.float32)
    for cond, shape in ((False, (4, 3)), (True, (2, 3))):
        ctx.run({"x": x, "c": np.array(cond)})
        assert ctx.get_tensor_shape("y") == shape


def test_if_engine_round_trip_gives_bitwise_equal_outputs(if_engine, tmp_path):
    path = tmp_path / "if.engine"
    if_engine.save(str(path))
    loaded = ductile.load_engine(str(path))
    x = np.random.default_rng(3).standard_normal((5, 3)).astype(np.float32)
    for cond in (True, False):
        feeds = {"x": x, "c": np.array(cond)}
        a = if_engine.create_execution_context().run(feeds)["y"]
        b = loaded.create_execution_context().run(feeds)["y"]
        assert a.shape == b.shape and a.tobytes() == b.tobytes()


# ---- Loop: state that grows every iteration, a nested If, outer reads two levels up ----

def loop_model():
    """Loop(M, cond, s0): each iteration appends a row to s (Concat: [i + 1, 3] -> [i + 2, 3]);
    the row is, by a nested If on the parity of the iteration number, x (read from two
    scopes up) or the last row of s times 2; the scan output is the row sum of s; the loop
    stops early once that sum exceeds `limit` (an outer graph input)."""
    two = helper.make_tensor("two", I64, [], [2])
    zero = helper.make_tensor("zero", I64, [], [0])
    then_g = helper.make_graph([helper.make_node("Identity", ["x"], ["r_then"])], "even", [],
                               [vi("r_then", F, None)])
    else_g = helper.make_graph([helper.make_node("Mul", ["last", "ftwo"], ["r_else"])], "odd", [],
                               [vi("r_else", F, None)])
    body = helper.make_graph(
        [helper.make_node("Constant", [], ["mone"], value=helper.make_tensor("v", I64, [1], [-1])),
         helper.make_node("Constant", [], ["big"], value=helper.make_tensor("v", I64, [1], [1 << 30])),
         helper.make_node("Slice", ["s_in", "mone", "big"], ["last"]),
         helper.make_node("Constant", [], ["ftwo"], value=helper.make_tensor("v", F, [], [2.0])),
         helper.make_node("Constant", [], ["two_c"], value=two),
         helper.make_node("Constant", [], ["zero_c"], value=zero),
         helper.make_node("Mod", ["i", "two_c"], ["parity"]),
         helper.make_node("Equal", ["parity", "zero_c"], ["even"]),
         helper.make_node("If", ["even"], ["row"], name="inner_if", then_branch=then_g, else_branch=else_g),
         helper.make_node("Concat", ["s_in", "row"], ["s_out"], axis=0),
         helper.make_node("ReduceSum", ["s_out"], ["total"], keepdims=0),
         helper.make_node("Less", ["total", "limit"], ["cond_out"])],
        "body", [vi("i", I64, []), vi("cond_in", B, []), vi("s_in", F, None)],
        [vi("cond_out", B, []), vi("s_out", F, None), vi("total", F, None)])
    nodes = [helper.make_node("Loop", ["M", "", "s0"], ["s_final", "totals"], name="loop0", body=body)]
    return model_bytes(nodes, [vi("M", I64, []), vi("s0", F, [1, 3]), vi("x", F, [1, 3]), vi("limit", F, [])],
                       [vi("s_final", F, None), vi("totals", F, None)])


LOOP_PROFILE = {"M": ((), (), ()), "s0": ((1, 3), (1, 3), (1, 3)), "x": ((1, 3), (1, 3), (1, 3)),
                "limit": ((), (), ())}


@pytest.fixture(scope="module")
def loop_engine():
    return build(loop_model(), LOOP_PROFILE)


@pytest.mark.parametrize("m,limit", [(1, 1e9), (5, 1e9), (6, 40.0), (9, 1e9)])
def test_loop_state_grows_with_a_nested_if_reading_outer_scopes(loop_engine, m, limit):
    rng = np.random.default_rng(m)
    feeds = {"M": np.array(m, np.int64), "s0": rng.random((1, 3), np.float32),
             "x": rng.random((1, 3), np.float32), "limit": np.array(limit, np.float32)}
    got = check_against_ort(loop_engine, loop_model(), feeds)
    assert got["s_final"].shape[0] == 1 + got["totals"].shape[0]


def test_loop_engine_with_nested_subgraphs_round_trips(loop_engine):
    loaded = ductile.Runtime(ductile.Logger()).deserialize_cuda_engine(loop_engine.serialize())
    feeds = {"M": np.array(7, np.int64), "s0": np.ones((1, 3), np.float32),
             "x": np.full((1, 3), 0.5, np.float32), "limit": np.array(1e9, np.float32)}
    a = loop_engine.create_execution_context().run(feeds)
    b = loaded.create_execution_context().run(feeds)
    for name in ("s_final", "totals"):
        assert a[name].shape == b[name].shape and a[name].tobytes() == b[name].tobytes()


# ---- Scan: reverse directions, output axes, state ----

def scan_model():
    """Scan over x [T, 2] forward and w [3, T] along axis 1 in reverse: the state adds
    x_t * sum(w_t); scan outputs: the running state (axis 0) and w_t (stacked on axis 1,
    reversed)."""
    body = helper.make_graph(
        [helper.make_node("ReduceSum", ["w_t"], ["ws"], keepdims=1),
         helper.make_node("Mul", ["x_t", "ws"], ["d"]),
         helper.make_node("Add", ["s_in", "d"], ["s_out"]),
         helper.make_node("Identity", ["s_out"], ["run"]),
         helper.make_node("Identity", ["w_t"], ["w_copy"])],
        "body", [vi("s_in", F, [2]), vi("x_t", F, [2]), vi("w_t", F, [3])],
        [vi("s_out", F, [2]), vi("run", F, [2]), vi("w_copy", F, [3])])
    nodes = [helper.make_node("Scan", ["s0", "x", "w"], ["s", "runs", "ws"], name="scan0", body=body,
                              num_scan_inputs=2, scan_input_axes=[0, 1], scan_input_directions=[0, 1],
                              scan_output_axes=[0, 1], scan_output_directions=[0, 1])]
    return model_bytes(nodes, [vi("s0", F, [2]), vi("x", F, ["T", 2]), vi("w", F, [3, "T"])],
                       [vi("s", F, [2]), vi("runs", F, ["T", 2]), vi("ws", F, [3, "T"])])


@pytest.mark.parametrize("t", [1, 3, 6])
def test_scan_reverse_directions_and_output_axes_match_onnxruntime(t):
    engine = build(scan_model(), {"s0": ((2,), (2,), (2,)), "x": ((1, 2), (3, 2), (6, 2)),
                                  "w": ((3, 1), (3, 3), (3, 6))})
    rng = np.random.default_rng(t)
    feeds = {"s0": rng.random(2, np.float32), "x": rng.random((t, 2), np.float32),
             "w": rng.random((3, t), np.float32)}
    check_against_ort(engine, scan_model(), feeds)


# ---- malformed subgraphs: exact messages ----

def raises(status, message, fn, *args):
    with pytest.raises(ductile.Error) as info:
        fn(*args)
    assert (info.value.status, str(info.value)) == (status, message)


def test_if_with_branches_of_different_output_counts_is_refused():
    then_g = helper.make_graph([helper.make_node("Identity", ["x"], ["t"])], "then", [], [vi("t", F, None)])
    else_g = helper.make_graph([helper.make_node("Identity", ["x"], ["e1"]), helper.make_node("Neg", ["x"], ["e2"])],
                               "else", [], [vi("e1", F, None), vi("e2", F, None)])
    data = model_bytes([helper.make_node("If", ["c"], ["y"], name="if0", then_branch=then_g, else_branch=else_g)],
                       [vi("x", F, [2]), vi("c", B, [])], [vi("y", F, None)])
    raises("DUCTILE_ERR_INVALID_ARGUMENT",
           "node 'if0' (If, opset 17): then_branch has 1 outputs and else_branch 2; both must have the node's 1",
           ductile.Builder().parse_onnx_bytes, data)


def test_loop_body_of_the_wrong_arity_is_refused():
    body = helper.make_graph([helper.make_node("Identity", ["cond_in"], ["cond_out"]),
                              helper.make_node("Identity", ["v"], ["v_out"])], "body",
                             [vi("i", I64, []), vi("cond_in", B, [])], [vi("cond_out", B, []), vi("v_out", F, None)])
    data = model_bytes([helper.make_node("Loop", ["M", "", "v"], ["v_final"], name="loop0", body=body)],
                       [vi("M", I64, []), vi("v", F, [2])], [vi("v_final", F, None)])
    raises("DUCTILE_ERR_INVALID_ARGUMENT",
           "node 'loop0' (Loop, opset 17): body has 2 inputs, expected 3 (iteration number, condition and 1 "
           "loop-carried values)",
           ductile.Builder().parse_onnx_bytes, data)


def test_scan_input_axis_out_of_range_is_refused_at_run():
    body = helper.make_graph([helper.make_node("Add", ["s_in", "x_t"], ["s_out"])], "body",
                             [vi("s_in", F, [2]), vi("x_t", F, [2])], [vi("s_out", F, [2])])
    data = model_bytes([helper.make_node("Scan", ["s0", "x"], ["s"], name="scan0", body=body, num_scan_inputs=1,
                                         scan_input_axes=[2])],
                       [vi("s0", F, [2]), vi("x", F, [3, 2])], [vi("s", F, [2])])
    engine = build(data, {"s0": ((2,), (2,), (2,)), "x": ((3, 2), (3, 2), (3, 2))})
    ctx = engine.create_execution_context()
    raises("DUCTILE_ERR_INVALID_ARGUMENT",
           "node 'scan0' (Scan, opset 17): scan_input_axes[0] is 2, out of range for scan input 0 ('x') of rank 2",
           ctx.run, {"s0": np.zeros(2, np.float32), "x": np.zeros((3, 2), np.float32)})


def test_scan_axes_list_of_the_wrong_length_is_refused():
    body = helper.make_graph([helper.make_node("Add", ["s_in", "x_t"], ["s_out"])], "body",
                             [vi("s_in", F, [2]), vi("x_t", F, [2])], [vi("s_out", F, [2])])
    data = model_bytes([helper.make_node("Scan", ["s0", "x"], ["s"], name="scan0", body=body, num_scan_inputs=1,
                                         scan_input_axes=[0, 1])],
                       [vi("s0", F, [2]), vi("x", F, [3, 2])], [vi("s", F, [2])])
    raises("DUCTILE_ERR_INVALID_ARGUMENT",
           "node 'scan0' (Scan, opset 17): scan_input_axes has 2 values, expected 1 (one per scan input)",
           ductile.Builder().parse_onnx_bytes, data)


def test_graph_attribute_on_an_op_without_subgraphs_is_refused():
    g = helper.make_graph([helper.make_node("Identity", ["x"], ["t"])], "g", [], [vi("t", F, None)])
    data = model_bytes([helper.make_node("Relu", ["x"], ["y"], name="r0", body=g)], [vi("x", F, [2])],
                       [vi("y", F, [2])])
    raises("DUCTILE_ERR_UNSUPPORTED",
           "node 'r0' (Relu, opset 17): attribute 'body' of type GRAPH is not supported by ductile",
           ductile.Builder().parse_onnx_bytes, data)


# ---- the engine file: the SUBGRAPHS section is versioned ----

def crc32c(data):
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    crc = 0xFFFFFFFF
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def test_subgraphs_section_of_another_version_is_refused_naming_it(if_engine):
    import struct
    data = bytearray(if_engine.serialize())
    header_size, count = struct.unpack_from("<II", data, 12)
    sections = {}
    for i in range(count):
        sid, _, off, size = struct.unpack_from("<IIQQ", data, header_size + 24 * i)
        sections[sid] = off
    assert 8 in sections, "an engine with an If has a SUBGRAPHS section (id 8)"
    off = sections[8]
    assert struct.unpack_from("<I", data, off)[0] == 1
    struct.pack_into("<I", data, off, 2)
    struct.pack_into("<I", data, 32, crc32c(bytes(data[:32]) + bytes(data[36:])))
    raises("DUCTILE_ERR_FORMAT",
           f"engine section SUBGRAPHS at byte offset {off}: version 2 is not supported (this build reads version 1)",
           ductile.Runtime(ductile.Logger()).deserialize_cuda_engine, bytes(data))


def test_engine_without_control_flow_has_no_subgraphs_section():
    import struct
    data = model_bytes([helper.make_node("Relu", ["x"], ["y"])], [vi("x", F, [2])], [vi("y", F, [2])])
    engine = build(data, {"x": ((2,), (2,), (2,))}).serialize()
    header_size, count = struct.unpack_from("<II", engine, 12)
    ids = [struct.unpack_from("<I", engine, header_size + 24 * i)[0] for i in range(count)]
    assert ids == [1, 2, 3, 4, 5, 6, 7]


# ---- symbolic shapes through subgraphs (network outputs after parsing) ----

def output_shapes(data):
    network = ductile.Builder().parse_onnx_bytes(data)
    return {network.get_output(i).name: (network.get_output(i).shape, network.get_output(i).dim_names)
            for i in range(network.num_outputs)}


def test_if_output_takes_the_shape_its_branches_agree_on():
    then_g = helper.make_graph([helper.make_node("Add", ["a", "x"], ["t"])], "then", [], [vi("t", F, None)])
    else_g = helper.make_graph([helper.make_node("Mul", ["x", "k"], ["e"])], "else", [], [vi("e", F, None)])
    data = model_bytes([helper.make_node("Relu", ["x"], ["a"]),
                        helper.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g)],
                       [vi("x", F, ["N", 3]), vi("c", B, [])], [vi("y", F, None)],
                       [const("k", np.array([2.0], np.float32))])
    assert output_shapes(data) == {"y": ((-1, 3), ("N", None))}
    # Branches of [N, 3] and [2N, 3]: the first dim is unknown.
    assert output_shapes(if_model()) == {"y": ((-1, 3), (None, None))}


def test_loop_scan_output_has_the_trip_count_as_a_dim():
    """M = Shape(x)[0] (the symbol N), no condition input and a body whose condition is the
    constant true: N iterations. The state keeps its shape; the growing one of loop_model
    does not."""
    body = helper.make_graph(
        [helper.make_node("Constant", [], ["t"], value=helper.make_tensor("v", B, [], [True])),
         helper.make_node("Add", ["s_in", "x"], ["s_out"]),
         helper.make_node("Neg", ["s_out"], ["row"])],
        "body", [vi("i", I64, []), vi("c", B, []), vi("s_in", F, None)],
        [vi("t", B, []), vi("s_out", F, None), vi("row", F, None)])
    nodes = [helper.make_node("Shape", ["x"], ["shape"]),
             helper.make_node("Gather", ["shape", "zero"], ["M"], axis=0),
             helper.make_node("Loop", ["M", "", "x"], ["s", "rows"], body=body)]
    data = model_bytes(nodes, [vi("x", F, ["N", 4])], [vi("s", F, None), vi("rows", F, None)],
                       [helper.make_tensor("zero", I64, [], [0])])
    assert output_shapes(data) == {"s": ((-1, 4), ("N", None)), "rows": ((-1, -1, 4), ("N", "N", None))}
    engine = build(data, {"x": ((1, 4), (3, 4), (5, 4))})
    check_against_ort(engine, data, {"x": np.random.default_rng(0).random((3, 4), np.float32)})
    assert output_shapes(loop_model()) == {"s_final": ((-1, 3), (None, None)), "totals": ((-1,), (None,))}


def test_scan_outputs_have_the_sequence_length_on_their_axis():
    assert output_shapes(scan_model()) == {"s": ((2,), (None,)), "runs": ((-1, 2), ("T", None)),
                                           "ws": ((3, -1), (None, "T"))}


def test_scan8_batches_with_sequence_lens_and_reverse_match_onnxruntime():
    """Scan before opset 9: batch dim first, sequence_lens per batch element (shorter ones stop
    early, their scan outputs zero-padded), one input scanned in reverse."""
    body = helper.make_graph(
        [helper.make_node("Add", ["s_in", "x_t"], ["s1"]),
         helper.make_node("Mul", ["s1", "y_t"], ["s_out"]),
         helper.make_node("Identity", ["s_out"], ["run"])],
        "body", [vi("s_in", F, [2]), vi("x_t", F, [2]), vi("y_t", F, [2])],
        [vi("s_out", F, [2]), vi("run", F, [2])])
    graph = helper.make_graph(
        [helper.make_node("Scan", ["lens", "s0", "x", "y"], ["s", "runs"], name="scan8", body=body, num_scan_inputs=2,
                          directions=[0, 1])],
        "g", [vi("lens", I64, [3]), vi("s0", F, [3, 2]), vi("x", F, [3, 4, 2]), vi("y", F, [3, 4, 2])],
        [vi("s", F, [3, 2]), vi("runs", F, [3, 4, 2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 8)])
    model.ir_version = 3
    data = model.SerializeToString()
    engine = build(data, {"lens": ((3,), (3,), (3,)), "s0": ((3, 2), (3, 2), (3, 2)),
                          "x": ((3, 4, 2), (3, 4, 2), (3, 4, 2)), "y": ((3, 4, 2), (3, 4, 2), (3, 4, 2))})
    rng = np.random.default_rng(8)
    feeds = {"lens": np.array([4, 2, 1], np.int64), "s0": rng.random((3, 2), np.float32),
             "x": rng.random((3, 4, 2), np.float32), "y": rng.random((3, 4, 2), np.float32) + 0.5}
    check_against_ort(engine, data, feeds)


def test_while_loop_that_never_ends_on_zeros_still_builds():
    """The builder runs eager engines once on zeros to learn dtypes; with step = 0 this loop's
    condition stays true forever, so that run gives up after a bounded number of iterations and
    the build takes the declared dtypes."""
    one = helper.make_tensor("one", F, [], [1.0])
    body = helper.make_graph(
        [helper.make_node("Add", ["s_in", "step"], ["s_out"]),
         helper.make_node("Constant", [], ["one_c"], value=one),
         helper.make_node("Add", ["limit", "one_c"], ["bound"]),
         helper.make_node("Less", ["s_out", "bound"], ["cond_out"])],
        "body", [vi("i", I64, []), vi("cond_in", B, []), vi("s_in", F, [])],
        [vi("cond_out", B, []), vi("s_out", F, [])])
    # c0 = Not(stop): true on zeros, so the loop starts.
    data = model_bytes([helper.make_node("Not", ["stop"], ["c0"]),
                        helper.make_node("Loop", ["", "c0", "s0"], ["s"], body=body)],
                       [vi("stop", B, []), vi("s0", F, []), vi("step", F, []), vi("limit", F, [])],
                       [vi("s", F, [])])
    engine = build(data, {n: ((), (), ()) for n in ("stop", "s0", "step", "limit")})
    feeds = {"stop": np.array(False), "s0": np.array(0.0, np.float32), "step": np.array(1.5, np.float32),
             "limit": np.array(7.0, np.float32)}
    got = check_against_ort(engine, data, feeds)
    assert got["s"] == np.float32(9.0)


def test_cli_runs_an_if_model_whose_output_shape_follows_the_branch(tmp_path):
    """trtexec's workflow: build from the model, load inputs from files, export the outputs;
    the output's shape is known only after execute, and matches onnxruntime's."""
    import json
    import subprocess
    from util import BUILD, REPO
    exe = BUILD / "ductile"
    if not exe.exists():
        pytest.skip(f"{exe} is not built (run make)")
    (tmp_path / "m.onnx").write_bytes(if_model())
    x = np.arange(15, dtype=np.float32).reshape(5, 3) - 7
    x.tofile(tmp_path / "x.bin")
    for cond in (False, True):
        np.array(cond).tofile(tmp_path / "c.bin")
        out = tmp_path / f"out_{cond}.json"
        r = subprocess.run([str(exe), f"--onnx={tmp_path / 'm.onnx'}", "--minShapes=x:1x3", "--optShapes=x:4x3",
                            "--maxShapes=x:8x3", "--shapes=x:5x3", "--iterations=1", "--duration=0", "--warmUp=0",
                            f"--loadInputs=x:{tmp_path / 'x.bin'},c:{tmp_path / 'c.bin'}", f"--exportOutput={out}"],
                           capture_output=True, text=True, timeout=300, cwd=REPO)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "  y: known after execute (it depends on computed data)\n" in r.stdout
        (entry,) = json.loads(out.read_text())
        want = ort_run(None, {"x": x, "c": np.array(cond)}, session=ort_session(if_model()))["y"]
        assert entry["dimensions"] == "x".join(map(str, want.shape))
        assert np.array_equal(np.array(entry["values"], np.float32).reshape(want.shape), want)
