"""ONNX backend node tests that ductile passes must keep passing.

tests/conformance/passing.txt lists them (regenerate with
`tests/conformance/run_node_tests.py --write-passing`); each is run here, with fixed and with
symbolic input dims, against the expected outputs the onnx wheel generates."""
import os
import sys
import warnings

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "conformance"))
import run_node_tests  # noqa: E402

PASSING = os.path.join(HERE, "..", "conformance", "passing.txt")


def _cases():
    if not os.path.exists(PASSING):
        return []
    with open(PASSING) as f:
        names = {line.strip() for line in f if line.strip() and not line.startswith("#")}
    warnings.simplefilter("ignore")
    from onnx.backend.test.case import node
    return [c for c in node.collect_testcases(None) if c.name in names]


CASES = _cases()


@pytest.mark.parametrize("symbolic", [False, True], ids=["fixed", "symbolic"])
def test_node_tests_that_passed_still_pass(symbolic):
    if not CASES:
        pytest.skip("tests/conformance/passing.txt is missing")
    failures = []
    for case in CASES:
        result = run_node_tests.run_case(case, symbolic)
        if result is not None:
            failures.append(f"{case.name}: {result[0]}: {result[1]}")
    assert not failures, f"{len(failures)} of {len(CASES)} regressed:\n" + "\n".join(failures[:40])
