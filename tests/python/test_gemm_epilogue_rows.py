"""Convolutions over 1x1 maps (squeeze-excite gates: a matrix-vector product, one column of C)
run their epilogue over the whole column at once (gemm.c dt_gemm_epi_rows: rows of C that are
contiguous form one run) instead of one call per output channel. Sigmoid (exact in float32,
the lean form in bfloat16 layers), Relu after a residual Add, at batch 1 and 3, against
onnxruntime."""
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import ductile
from util import build_from_bytes, ort_run, rel_l2


def cpu_flags():
    with open("/proc/cpuinfo") as f:
        return set(next((l for l in f if l.startswith("flags")), "").split())


def gate_model():
    rng = np.random.default_rng(4)
    t = numpy_helper.from_array
    inits = [t((rng.standard_normal((1152, 48, 1, 1)) * 0.2).astype(np.float32), "w1"),
             t((rng.standard_normal(1152) * 0.1).astype(np.float32), "b1"),
             t((rng.standard_normal((48, 48, 1, 1)) * 0.2).astype(np.float32), "w2"),
             t((rng.standard_normal(48) * 0.1).astype(np.float32), "b2")]
    n = helper.make_node
    nodes = [n("Conv", ["x", "w1", "b1"], ["c1"]), n("Sigmoid", ["c1"], ["gate"]),
             n("Conv", ["x", "w2", "b2"], ["c2"]), n("Add", ["c2", "x"], ["s"]), n("Relu", ["s"], ["res"])]
    graph = helper.make_graph(
        nodes, "gate", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 48, 1, 1])],
        [helper.make_tensor_value_info("gate", TensorProto.FLOAT, ["n", 1152, 1, 1]),
         helper.make_tensor_value_info("res", TensorProto.FLOAT, ["n", 48, 1, 1])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8).SerializeToString()


@pytest.mark.parametrize("bf16", [False, True])
def test_epilogue_over_a_column_of_c(bf16):
    if bf16 and "avx512_bf16" not in cpu_flags():
        pytest.skip("this CPU lacks AVX512-BF16 (avx512_bf16)")
    model = gate_model()
    engine = build_from_bytes(model, {"x": ((1, 48, 1, 1), (1, 48, 1, 1), (3, 48, 1, 1))},
                              ductile.BuilderFlag.BF16 if bf16 else None)
    ctx = engine.create_execution_context()
    for batch in (1, 3, 1):
        feeds = {"x": np.random.default_rng(batch).standard_normal((batch, 48, 1, 1), dtype=np.float32)}
        got, want = ctx.run(feeds), ort_run(model, feeds)
        for name in want:
            assert rel_l2(got[name], want[name]) <= (1e-2 if bf16 else 1e-5), (bf16, batch, name)
