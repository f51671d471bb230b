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


def test_model_outputs_do_not_depend_on_the_thread_count(model):
    """Each value is computed the same way whichever thread computes it, however a layer splits
    (by images side by side, by GEMM rows or columns, by Winograd blocks): the outputs on 2
    and 3 threads equal those on 1 bit for bit. The odd shapes give batches of 2, 3 and 7
    (images left over after the ones that run side by side)."""
    name, spec, engine, _, _ = model
    feeds = random_feeds(spec, spec.shapes("odd"), seed=11)
    outs = {}
    for threads in (1, 2, 3):
        context = engine.create_execution_context()
        context.set_threads(threads)
        outs[threads] = context.run(feeds)
    for threads in (2, 3):
        for out_name, want in outs[1].items():
            got = outs[threads][out_name]
            assert np.array_equal(got, want), (
                f"{name} {spec.shapes('odd')} {out_name}: {threads} threads differ from 1 in "
                f"{np.count_nonzero(got != want)} of {want.size} values")
