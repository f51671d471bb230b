"""A model newer than what ductile implements is refused by name, not read with older semantics:
the default domain's opset (and an opset of 0 or below, which is none), and the IR version."""
import pytest
from onnx import TensorProto, helper

import ductile


def _model(opset=18, ir_version=8, domain=""):
    node = helper.make_node("Relu", ["x"], ["y"], name="relu")
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid(domain, opset)])
    m.ir_version = ir_version
    return m.SerializeToString()


def _refused(data):
    with pytest.raises(ductile.Error) as e:
        ductile.Builder().parse_onnx_bytes(data)
    return e.value.status, str(e.value)


def test_opset_newer_than_ductile_is_refused_naming_both():
    assert _refused(_model(opset=99)) == (
        "DUCTILE_ERR_UNSUPPORTED",
        "opset_import: the model uses opset 99 of the default domain (ai.onnx), newer than "
        "opset 28, the newest ductile implements")


@pytest.mark.parametrize("opset", [0, -1])
def test_opset_zero_or_negative_is_refused(opset):
    assert _refused(_model(opset=opset)) == (
        "DUCTILE_ERR_PARSE",
        f"opset_import: opset {opset} of the default domain (ai.onnx) is not an ONNX opset "
        "(expected 1..28)")


def test_ai_onnx_domain_is_the_default_domain():
    assert _refused(_model(opset=29, domain="ai.onnx"))[1].startswith(
        "opset_import: the model uses opset 29 of the default domain")


def test_no_opset_for_the_default_domain_is_refused_at_the_node():
    assert _refused(_model(domain="ai.onnx.ml", opset=3)) == (
        "DUCTILE_ERR_PARSE",
        "node 'relu' (Relu): the model's opset_import has no entry for the default domain "
        "(ai.onnx)")


def test_ir_version_newer_than_the_importer_is_refused():
    assert _refused(_model(ir_version=999)) == (
        "DUCTILE_ERR_UNSUPPORTED",
        "ir_version 999 is newer than IR version 14, the newest the ONNX importer reads")


@pytest.mark.parametrize("opset,ir_version", [(1, 3), (28, 14)])
def test_the_oldest_and_newest_known_versions_parse(opset, ir_version):
    ductile.Builder().parse_onnx_bytes(_model(opset=opset, ir_version=ir_version))
