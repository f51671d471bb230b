"""The C engine must outlive its contexts. A context holds its engine, but the garbage
collector finalizes an unreachable cycle holding both (an exception's traceback frames, say)
in any order; the binding then frees the engine after the last context, whichever finalizer
runs first."""
import gc

import numpy as np
from onnx import TensorProto, helper

import ductile


def relu_engine():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    builder = ductile.Builder()
    return builder.build_engine(builder.parse_onnx_bytes(data), builder.create_builder_config())


def recorded(obj, what, calls):
    real = obj._free
    obj._free = lambda handle: (calls.append(what), real(handle))


def test_engine_finalized_before_its_context_is_freed_after_it():
    engine = relu_engine()
    context = engine.create_execution_context()
    calls = []
    recorded(engine, "engine", calls)
    recorded(context, "context", calls)
    engine.__del__()  # as the collector may, while the context still needs the engine
    assert calls == []
    out = context.run({"x": np.array([[-1, 2, -3], [4, -5, 6]], np.float32)})
    np.testing.assert_array_equal(out["y"], [[0, 2, 0], [4, 0, 6]])
    del context
    gc.collect()
    assert calls == ["context", "engine"]


def test_engine_without_contexts_is_freed_by_its_finalizer():
    engine = relu_engine()
    calls = []
    recorded(engine, "engine", calls)
    del engine
    gc.collect()
    assert calls == ["engine"]
