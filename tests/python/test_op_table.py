"""README.md's table of supported ops (scripts/op_table.py): up to date with the code and the
node-test results; a change to an op table in the sources or to the conformance ratchet makes
it stale; and the ops the script reads from the sources are the ones the built library takes
(every listed op gets past the importer's op check, every op ONNX tests that is not listed is
refused as unsupported)."""
import importlib.util
import shutil

import pytest

import ductile
from util import REPO

spec = importlib.util.spec_from_file_location("op_table", REPO / "scripts" / "op_table.py")
op_table = importlib.util.module_from_spec(spec)
spec.loader.exec_module(op_table)


def test_readme_table_is_up_to_date(capsys):
    assert op_table.main(["--check"]) == 0, capsys.readouterr().err


def source_copy(tmp_path):
    """The sources the script reads, in a tmp folder."""
    for part in ("src/ops", "src/backend/cpu", "src/backend/cuda", "src/onnx"):
        shutil.copytree(REPO / part, tmp_path / part)
    return tmp_path


def test_an_op_added_to_the_sources_makes_the_table_stale(tmp_path):
    root = source_copy(tmp_path)
    readme = (REPO / "README.md").read_text()
    assert op_table.splice(readme, op_table.table(root=root)) == readme
    ops = root / "src/ops/elementwise.c"
    ops.write_text(ops.read_text().replace('DT_EW("Relu"),', 'DT_EW("Relu"), DT_EW("Frobnicate"),'))
    # A definition without a CPU kernel is not an op ductile runs.
    assert "Frobnicate" not in op_table.code_ops(root)
    cpu = root / "src/backend/cpu/elementwise.c"
    text = cpu.read_text()
    relu = next(line for line in text.splitlines() if '{"Relu"' in line)
    cpu.write_text(text.replace(relu, relu + "\n" + relu.replace('"Relu"', '"Frobnicate"')))
    assert op_table.code_ops(root)["Frobnicate"] == {
        "op": "Frobnicate", "domain": "", "family": "elementwise", "cpu": True, "cuda": False}
    stale = op_table.table(root=root)
    assert "| Frobnicate | elementwise |  | - | - |" in stale.splitlines()
    assert op_table.splice(readme, stale) != readme


def test_a_cuda_kernel_and_its_refusal_show_in_the_cuda_column(tmp_path):
    root = source_copy(tmp_path)
    assert op_table.code_ops(root)["Sign"]["cuda"] is False
    assert op_table.code_ops(root)["Identity"]["cuda"] is False  # in a table, always refused
    layers = root / "src/backend/cuda/layers_eltwise.c"
    assert '{"Floor", DT_CU_FLOOR},' in layers.read_text()
    layers.write_text(layers.read_text().replace('{"Floor", DT_CU_FLOOR},',
                                                 '{"Floor", DT_CU_FLOOR}, {"Sign", 99},'))
    assert op_table.code_ops(root)["Sign"]["cuda"] is True


def test_a_new_failure_in_the_ratchet_changes_the_counts(tmp_path, monkeypatch):
    ops_map, _ = op_table.read_ops_map()
    assert [t for t, op in ops_map.items() if op == "Abs"] == ["test_abs_cpu"]
    before = op_table.counts(ops_map, op_table.results_from_expectations(ops_map))
    assert before["Abs"] == [1, 1, 1]
    ratchet = tmp_path / "expected_failures.txt"
    ratchet.write_text((REPO / "tests/conformance/expected_failures.txt").read_text()
                       + "node/test_abs_cpu fixed mismatch: made up\n")
    after = op_table.counts(ops_map, op_table.results_from_expectations(ops_map, ratchet))
    assert after["Abs"] == [1, 0, 1]
    monkeypatch.setattr(op_table, "EXPECTATIONS", str(ratchet))
    assert "| Abs | elementwise | yes | 0/1 | 1/1 |" in op_table.table().splitlines()
    assert op_table.main(["--check"]) == 1


def test_counts_from_a_conformance_run_agree_with_the_ratchet():
    path = REPO / "build" / "conformance.json"
    if not path.exists():
        pytest.skip("no build/conformance.json (make conformance)")
    ops_map, _ = op_table.read_ops_map()
    from_run = op_table.results_from_conformance(ops_map, str(path))
    if from_run is None:
        pytest.skip("build/conformance.json is of part of the node suite")
    assert op_table.counts(ops_map, from_run) == \
        op_table.counts(ops_map, op_table.results_from_expectations(ops_map))


def import_message(op, domain=""):
    """What building a one-node model of `op` says (None: it built)."""
    from onnx import TensorProto as T
    from onnx import helper as h
    node = h.make_node(op, ["x"], ["y"], domain=domain)
    graph = h.make_graph([node], "g", [h.make_tensor_value_info("x", T.FLOAT, [2])],
                         [h.make_tensor_value_info("y", T.FLOAT, [2])])
    opsets = [h.make_opsetid("", 21)] + ([h.make_opsetid(domain, 1)] if domain else [])
    model = h.make_model(graph, opset_imports=opsets, ir_version=10)
    builder = ductile.Builder()
    try:
        network = builder.parse_onnx_bytes(model.SerializeToString())
        builder.build_engine(network, builder.create_builder_config())
    except ductile.Error as e:
        return str(e)
    return None


def test_the_ops_read_from_the_sources_are_the_ones_the_library_takes():
    ops = op_table.code_ops()
    for key, v in ops.items():
        message = import_message(v["op"], v["domain"]) or ""
        assert f"op type '{v['op']}' is not supported" not in message, (key, message)
    ops_map, _ = op_table.read_ops_map()
    lacking = sorted({op for op in ops_map.values() if op not in ops and "." not in op})
    # Each op ONNX tests that ductile lacks is refused as such; since ImageDecoder there is none,
    # so an op no one defines stands in for them.
    for op in lacking or ["Frobnicate"]:
        assert import_message(op) == (f"node '{op}_0' ({op}, opset 21): op type '{op}' is not "
                                      "supported by ductile")
