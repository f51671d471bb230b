"""RoiAlign's refusals, each with its whole message: attributes at build time, region data
(batch indices out of range, regions that are not finite) at execute. Outputs are compared
with onnxruntime in test_ops.py."""
import numpy as np
import pytest
from onnx import TensorProto, helper

import ductile


def model(rois_rows=2, **attrs):
    g = helper.make_graph(
        [helper.make_node("RoiAlign", ["x", "rois", "bi"], ["y"], name="roi", **attrs)], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 8, 8]),
         helper.make_tensor_value_info("rois", TensorProto.FLOAT, [rois_rows, 4]),
         helper.make_tensor_value_info("bi", TensorProto.INT64, [rois_rows])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 16)]).SerializeToString()


def build(data):
    b = ductile.Builder()
    net = b.parse_onnx_bytes(data)
    return b.build_engine(net, b.create_builder_config())


def run(rois, bi):
    ctx = build(model()).create_execution_context()
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    return ctx.run({"x": x, "rois": np.asarray(rois, np.float32), "bi": np.asarray(bi, np.int64)})


def test_refuses_bad_attributes_at_build():
    with pytest.raises(ductile.Error) as e:
        build(model(mode="min"))
    assert str(e.value).endswith("node 'roi' (RoiAlign, opset 16): attribute 'mode' = 'min' is not supported "
                                 "(supported: avg, max)")
    with pytest.raises(ductile.Error) as e:
        build(model(sampling_ratio=-1))
    assert str(e.value).endswith("node 'roi' (RoiAlign, opset 16): attribute 'sampling_ratio' = -1; expected 0 "
                                 "(adaptive) to 1024")


def test_refuses_batch_index_out_of_range():
    with pytest.raises(ductile.Error) as e:
        run([[0, 0, 4, 4], [1, 1, 3, 3]], [0, 2])
    assert str(e.value) == ("node 'roi' (RoiAlign, opset 16): input 2 (batch_indices)[1] = 2; expected 0..1 "
                            "(the batch of input 0 (X))")


def test_refuses_regions_that_are_not_finite_or_too_large():
    for bad in ([0, 0, np.inf, 4], [0, 0, 4, np.nan], [0, 0, 3e9, 4]):
        with pytest.raises(ductile.Error) as e:
            run([[0, 0, 4, 4], bad], [0, 1])
        assert str(e.value).startswith("node 'roi' (RoiAlign, opset 16): input 1 (rois) row 1 = [")
        assert str(e.value).endswith("]: the region is not finite or needs over 1048576 samples per bin")
    assert run([[0, 0, 4, 4], [1, 1, 3, 3]], [0, 1])["y"].shape == (2, 3, 1, 1)
