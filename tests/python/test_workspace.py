"""The workspace limit bounds a profile's activation memory: the build plans it at min, opt and
max and refuses a profile that needs more, naming the bytes, the corner and the limit; with no
limit set, the machine's memory is the limit, so an absurd max fails the build, not a run."""
import os

import numpy as np
import pytest
from onnx import TensorProto, helper

import ductile
from test_cli import run_cli
from util import MODELS, build_profiled, model_path

SUPERRES = MODELS["superres"]
HOW = ("(ductile_config_set_workspace; --memPoolSize=workspace:N in the CLI; "
       "set_memory_pool_limit in Python): raise the limit or shrink the profile")


def human(n):
    """The library's "N bytes (x.y MiB)"."""
    v, units = float(n), ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
    u = -1
    while v >= 1024 and u < 5:
        v /= 1024
        u += 1
    return f"{n} bytes" if u < 0 else f"{n} bytes ({v:.1f} {units[u]})"


def machine_memory():
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGESIZE")


def build(network_of, shapes, limit=None):
    builder = ductile.Builder()
    return build_profiled(builder, network_of(builder), shapes, limit=limit)


def superres(builder):
    return builder.parse_onnx(model_path(SUPERRES.filename))


def test_workspace_limit_refuses_a_profile_that_needs_more():
    # superres at 4x1x512x512: two 64-channel float planes live at once, 512 MiB.
    with pytest.raises(ductile.Error) as info:
        build(superres, SUPERRES.profile, limit=1 << 20)
    assert info.value.status == "DUCTILE_ERR_PROFILE"
    assert str(info.value) == (
        "profile 0 needs 536870912 bytes (512.0 MiB) of activation memory at its max shapes "
        "'input' [4,1,512,512], more than the workspace limit of 1048576 bytes (1.0 MiB) " + HOW)
    assert build(superres, SUPERRES.profile, limit=536870912) is not None


def shrinking_model(builder):
    """y = Relu(ReduceSum(x) * ones(1000000 - n)) summed: the less x has, the more memory."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, [1])
    nodes = [
        helper.make_node("ReduceSum", ["x"], ["s"], keepdims=1),
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Sub", ["big", "shape"], ["len"]),
        helper.make_node("ConstantOfShape", ["len"], ["ones"],
                         value=helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0])),
        helper.make_node("Mul", ["s", "ones"], ["t"]),
        helper.make_node("Relu", ["t"], ["u"]),
        helper.make_node("ReduceSum", ["u"], ["out"], keepdims=1),
    ]
    big = helper.make_tensor("big", TensorProto.INT64, [1], [1000000])
    graph = helper.make_graph(nodes, "shrink", [x], [out], initializer=[big])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    return builder.parse_onnx_bytes(model.SerializeToString())


def test_limit_is_checked_at_every_corner_not_only_max():
    shapes = {"x": ((1,), (500,), (1000,))}
    # t and u live together: 2 * 4 * (1000000 - n) bytes, 64-byte aligned each: 8000000 at
    # min, 7996032 at opt, 7992064 at max. A limit between max and min is refused at min.
    with pytest.raises(ductile.Error) as info:
        build(shrinking_model, shapes, limit=7995000)
    assert str(info.value) == (
        "profile 0 needs 8000000 bytes (7.6 MiB) of activation memory at its min shapes 'x' [1], "
        "more than the workspace limit of 7995000 bytes (7.6 MiB) " + HOW)
    engine = build(shrinking_model, shapes, limit=8000000)
    x = np.full(3, 0.5, np.float32)
    got = engine.create_execution_context().run({"x": x})["out"]
    np.testing.assert_allclose(got, [1.5 * 999997], rtol=1e-6)


def test_cli_memory_pool_limit_refuses_the_profile():
    r = run_cli(f"--onnx={model_path(SUPERRES.filename)}", "--minShapes=input:1x1x64x64",
                "--optShapes=input:1x1x256x256", "--maxShapes=input:4x1x512x512",
                "--memPoolSize=workspace:1M", "--skipInference")
    assert r.returncode == 1
    assert r.stderr == (
        "error: DUCTILE_ERR_PROFILE: profile 0 needs 536870912 bytes (512.0 MiB) of activation "
        "memory at its max shapes 'input' [4,1,512,512], more than the workspace limit of "
        "1048576 bytes (1.0 MiB) " + HOW + "\n")


def test_cli_absurd_max_is_refused_at_build_without_a_limit():
    r = run_cli(f"--onnx={model_path(SUPERRES.filename)}", "--minShapes=input:1x1x64x64",
                "--optShapes=input:1x1x256x256", "--maxShapes=input:4x1x1000000000000x512",
                "--skipInference")
    assert r.returncode == 1
    # The first conv's 64 channels and the next layer's, at 4x10^12x512 floats each.
    assert r.stderr == (
        "error: DUCTILE_ERR_PROFILE: profile 0 needs 1048576000000000000 bytes (931.3 PiB) of "
        "activation memory at its max shapes 'input' [4,1,1000000000000,512], more than the "
        f"{human(machine_memory())} of memory of the cpu backend (the limit when no workspace "
        "limit is set): shrink the profile\n")
