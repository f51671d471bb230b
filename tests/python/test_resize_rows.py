"""Nearest and linear Resize of the last two axes (nn_resize.c, dt_resize_rows): each input row's lerps along
the row are computed once and kept while the next output rows read them (rows of up to 2048
outputs; wider ones lerp per output row). Against onnxruntime on upscales, downscales and
unchanged rows over several images and planes, and the same bits on 1, 2 and 3 threads, whose
parts start at different output rows (a part starts with no line kept). Nearest: an output row
with the source row of the one before it is a copy of that row (within a part), and an exact x2
along the row duplicates each input (dt_resize_dup2); both against onnxruntime, at odd sizes and
on 1-3 threads, bit for bit (nearest copies values)."""
import numpy as np
import pytest
from onnx import TensorProto as T, helper as h, numpy_helper as nh

import ductile
from util import assert_close, ort_run

CASES = [
    ((1, 3, 49, 35), (98, 70), "half_pixel"),      # seg_lraspp's classifier upscale
    ((2, 5, 7, 9), (15, 31), "half_pixel"),
    ((1, 2, 13, 11), (5, 4), "half_pixel"),        # downscale: rows read once each
    ((3, 2, 6, 5), (23, 2047), "align_corners"),   # the widest rows kept
    ((1, 4, 9, 1200), (19, 2500), "half_pixel"),   # wider: lerped per output row
    ((2, 3, 17, 19), (17, 19), "pytorch_half_pixel"),
    ((1, 2, 1, 7), (5, 14), "asymmetric"),         # one input row: i0 = i1 everywhere
]


def resize_model(shape, out_hw, ctm, mode="linear"):
    sizes = np.array([shape[0], shape[1], *out_hw], np.int64)
    graph = h.make_graph(
        [h.make_node("Resize", ["x", "", "", "sizes"], ["y"], mode=mode, coordinate_transformation_mode=ctm)],
        "resize", [h.make_tensor_value_info("x", T.FLOAT, list(shape))], [h.make_tensor_value_info("y", T.FLOAT, None)],
        [nh.from_array(sizes, "sizes")])
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 18)], ir_version=8)


@pytest.mark.parametrize("shape,out_hw,ctm", CASES)
def test_linear_rows_match_onnxruntime_at_every_thread_count(shape, out_hw, ctm):
    model = resize_model(shape, out_hw, ctm)
    builder = ductile.Builder()
    network = builder.parse_onnx_bytes(model.SerializeToString())
    engine = builder.build_engine(network, builder.create_builder_config())
    x = np.random.default_rng(7).standard_normal(shape, dtype=np.float32)
    got = []
    for threads in (1, 2, 3):
        ctx = engine.create_execution_context()
        ctx.set_threads(threads)
        got.append(ctx.run({"x": x})["y"])
    assert got[0].shape == (shape[0], shape[1], *out_hw)
    assert_close(got[0], ort_run(model.SerializeToString(), {"x": x})["y"], rtol=1e-5)
    for y in got[1:]:
        np.testing.assert_array_equal(y, got[0])


NEAREST = [
    ((1, 3, 15, 11), (30, 22), "asymmetric"),      # YOLO's x2 upsample: row copies and dup2
    ((2, 3, 7, 9), (21, 18), "asymmetric"),        # x3 rows (two copies each), x2 columns
    ((1, 2, 5, 7), (10, 15), "asymmetric"),        # 15 columns: not an exact x2, the gather
    ((1, 2, 6, 8), (13, 16), "half_pixel"),        # uneven row repeats
    ((1, 1, 1, 33), (4, 66), "asymmetric"),        # one input row: every output row a copy
    ((2, 2, 9, 10), (4, 20), "asymmetric"),        # rows down, columns x2
]


@pytest.mark.parametrize("shape,out_hw,ctm", NEAREST)
def test_nearest_rows_match_onnxruntime_at_every_thread_count(shape, out_hw, ctm):
    model = resize_model(shape, out_hw, ctm, mode="nearest")
    builder = ductile.Builder()
    network = builder.parse_onnx_bytes(model.SerializeToString())
    engine = builder.build_engine(network, builder.create_builder_config())
    x = np.random.default_rng(11).standard_normal(shape, dtype=np.float32)
    want = ort_run(model.SerializeToString(), {"x": x})["y"]
    for threads in (1, 2, 3):
        ctx = engine.create_execution_context()
        ctx.set_threads(threads)
        np.testing.assert_array_equal(ctx.run({"x": x})["y"], want)
