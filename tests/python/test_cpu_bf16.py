"""--bf16 on the CPU (AVX512-BF16): the GEMM convolutions and the matmuls with constant
weights compute in bfloat16 with float32 accumulation. Every suite model's bf16 engine stays within rel L2 1e-2 of the float32 engine
and of onnxruntime at min, opt and max of its test profile; the choice is recorded per layer
(layer info "BF16"), survives a save and load, and an engine with bf16 layers refuses to load
on a CPU without AVX512-BF16."""
import os

import numpy as np
import pytest

import ductile
from util import MODELS, model_path, ort_run, ort_session, random_feeds, rel_l2


def cpu_has_bf16():
    with open("/proc/cpuinfo") as f:
        flags = next((l for l in f if l.startswith("flags")), "")
    return "avx512_bf16" in flags.split()


pytestmark = pytest.mark.skipif(not cpu_has_bf16(), reason="this CPU lacks AVX512-BF16 (avx512_bf16)")

POINTS = ("min", "opt", "max")
# Every suite model has layers that compute in bfloat16: GEMM convolutions, inverted-residual
# blocks, or matmuls with constant weights (bert_small's FusedMatMuls).
BF16_MODELS = set(MODELS)


def build(spec, bf16):
    builder = ductile.Builder()
    network = builder.parse_onnx(model_path(spec.filename))
    profile = builder.create_optimization_profile()
    for name, (lo, opt, hi) in spec.profile.items():
        profile.set_shape(name, lo, opt, hi)
    config = builder.create_builder_config()
    config.add_optimization_profile(profile)
    if bf16:
        config.set_flag(ductile.BuilderFlag.BF16)
    return builder.build_engine(network, config)


@pytest.fixture(scope="module", params=sorted(MODELS))
def engines(request):
    """(name, spec, float32 engine, bf16 engine, onnxruntime session), built once per model."""
    spec = MODELS[request.param]
    return (request.param, spec, build(spec, False), build(spec, True),
            ort_session(model_path(spec.filename)))


@pytest.mark.parametrize("point", POINTS)
def test_bf16_engine_within_1e_2_of_float32_and_onnxruntime(engines, point):
    name, spec, f32, b16, session = engines
    shapes = spec.shapes(point)
    feeds = random_feeds(spec, shapes, seed=10 + POINTS.index(point))
    want = ort_run(None, feeds, session=session)
    got32 = f32.create_execution_context().run(feeds)
    got16 = b16.create_execution_context().run(feeds)
    for out in want:
        e32, eort = rel_l2(got16[out], got32[out]), rel_l2(got16[out], want[out])
        print(f"{name} {point} {out}: rel L2 vs float32 {e32:.2e}, vs onnxruntime {eort:.2e}")
        assert e32 <= 1e-2, f"{name} {point} {shapes} {out}: rel L2 vs the float32 engine {e32:.3g}"
        assert eort <= 1e-2, f"{name} {point} {shapes} {out}: rel L2 vs onnxruntime {eort:.3g}"
        if name in BF16_MODELS:
            # bfloat16 did run: the result is not the float32 engine's
            assert e32 > 0, f"{name} {point} {out}: bf16 engine gave the float32 result"


def test_bf16_results_do_not_depend_on_the_thread_count(engines):
    name, spec, _, b16, _ = engines
    feeds = random_feeds(spec, spec.shapes("odd"), seed=7)
    one = b16.create_execution_context()
    one.set_threads(1)
    two = b16.create_execution_context()
    two.set_threads(2)
    want, got = one.run(feeds), two.run(feeds)
    for out in want:
        np.testing.assert_array_equal(got[out], want[out], err_msg=f"{name} {out}")


def test_layer_info_marks_bf16_layers(engines):
    name, _, f32, b16, _ = engines
    assert '"BF16"' not in f32.layer_info
    n = b16.layer_info.count('"BF16": true')
    if name in BF16_MODELS:
        assert n > 0
    assert b16.layer_info.replace(', "BF16": true', "").count('"Name"') == f32.layer_info.count('"Name"')


def test_config_has_precision_says_what_the_cpu_computes_with():
    from ductile._lib import lib
    config = ductile.Builder().create_builder_config()
    has = lambda flag: lib.ductile_config_has_precision(config._handle, int(flag))  # noqa: E731
    assert (has(ductile.BuilderFlag.FP16), has(ductile.BuilderFlag.BF16), has(ductile.BuilderFlag.TF32)) == (0, 1, 0)
    assert lib.ductile_config_has_precision(None, int(ductile.BuilderFlag.BF16)) == 0
    assert lib.ductile_config_has_precision(config._handle, 7) == 0
    os.environ["DUCTILE_CPU_BF16"] = "0"
    try:
        assert has(ductile.BuilderFlag.BF16) == 0
        # and a build with BF16 then marks nothing: a float32 engine that loads anywhere
        engine = build(MODELS["superres"], True)
    finally:
        del os.environ["DUCTILE_CPU_BF16"]
    assert '"BF16"' not in engine.layer_info


def test_bf16_engine_round_trips_and_refuses_a_cpu_without_avx512_bf16(tmp_path):
    spec = MODELS["superres"]
    engine = build(spec, True)
    path = tmp_path / "superres_bf16.engine"
    engine.save(path)
    loaded = ductile.load_engine(path)
    assert loaded.layer_info == engine.layer_info
    assert engine.layer_info.count('"BF16": true') == 4
    feeds = random_feeds(spec, spec.shapes("odd"), seed=3)
    want = engine.create_execution_context().run(feeds)
    got = loaded.create_execution_context().run(feeds)
    for out in want:
        np.testing.assert_array_equal(got[out], want[out])
    old = os.environ.get("DUCTILE_CPU_BF16")
    os.environ["DUCTILE_CPU_BF16"] = "0"   # the CPU taken as lacking AVX512-BF16
    try:
        with pytest.raises(ductile.Error) as err:
            ductile.load_engine(path)
    finally:
        if old is None:
            del os.environ["DUCTILE_CPU_BF16"]
        else:
            os.environ["DUCTILE_CPU_BF16"] = old
    assert err.value.status == "DUCTILE_ERR_UNSUPPORTED"
    assert str(err.value) == (
        f"{path}: node '/c1/Conv' (FusedConv, opset 17): the layer computes in "
        "bfloat16 (built with --bf16), which needs AVX512-BF16; this CPU lacks it: rebuild the engine on "
        "this machine")
