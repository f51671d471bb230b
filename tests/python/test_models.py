"""Every model of the suite matches onnxruntime at min, opt, max and one odd shape of its
profile, with one engine per model."""
import numpy as np
import pytest

import ductile
from util import MODELS, assert_close, model_path, ort_run, ort_session, random_feeds

POINTS = ("min", "opt", "max", "odd")


def build_engine(spec):
    builder = ductile.Builder()
    network = builder.parse_onnx(model_path(spec.filename))
    profile = builder.create_optimization_profile()
    for name, (lo, opt, hi) in spec.profile.items():
        profile.set_shape(name, lo, opt, hi)
    config = builder.create_builder_config()
    config.add_optimization_profile(profile)
    return builder.build_engine(network, config)


@pytest.fixture(scope="module", params=sorted(MODELS))
def model(request):
    """(name, spec, engine, context, onnxruntime session), built once per model."""
    spec = MODELS[request.param]
    engine = build_engine(spec)
    context = engine.create_execution_context()
    return request.param, spec, engine, context, ort_session(model_path(spec.filename))


@pytest.mark.parametrize("point", POINTS)
def test_model_matches_onnxruntime_across_profile(model, point):
    name, spec, engine, context, session = model
    shapes = spec.shapes(point)
    feeds = random_feeds(spec, shapes, seed=POINTS.index(point))
    got = context.run(feeds)
    want = ort_run(None, feeds, session=session)
    assert sorted(got) == sorted(want)
    for out_name, expected in want.items():
        assert_close(got[out_name], expected, what=f"{name} {point} {shapes} {out_name}")
        # The context's shape query is what callers size buffers by; it must agree with run().
        assert context.get_tensor_shape(out_name) == expected.shape


def test_engine_reports_io_tensors_and_profile(model):
    name, spec, engine, _, _ = model
    inputs = [n for n in (engine.get_tensor_name(i) for i in range(engine.num_io_tensors))
              if engine.get_tensor_mode(n) == ductile.TensorIOMode.INPUT]
    assert inputs == list(spec.profile)
    assert engine.num_optimization_profiles == 1
    for input_name, mom in spec.profile.items():
        assert engine.get_tensor_profile_shape(input_name, 0) == tuple(map(tuple, mom))
        assert engine.get_tensor_dtype(input_name) in (np.float32, np.int64)
