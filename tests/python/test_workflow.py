"""The TensorRT workflow end to end: parse, edit the network, profiles, build, save and load,
switch profiles, run."""
import numpy as np
import pytest

import ductile
from util import MODELS, assert_close, model_path, ort_run, ort_session, random_feeds, sigmoid

SUPERRES = MODELS["superres"]
SEG = MODELS["seg_lraspp"]


def add_sigmoid_to_output(network):
    """The guide's edit: output 0 becomes the input of a new sigmoid, whose output is marked."""
    old = network.get_output(0)
    network.unmark_output(old)
    layer = network.add_activation(old, ductile.ActivationType.SIGMOID)
    new = layer.get_output(0)
    network.mark_output(new)
    return old, new


def build(builder, network, *profiles):
    config = builder.create_builder_config()
    for shapes in profiles:
        profile = builder.create_optimization_profile()
        for name, (lo, opt, hi) in shapes.items():
            profile.set_shape(name, lo, opt, hi)
        config.add_optimization_profile(profile)
    return builder.build_engine(network, config)


@pytest.fixture(scope="module")
def superres_engine():
    builder = ductile.Builder()
    network = builder.parse_onnx(model_path(SUPERRES.filename))
    return build(builder, network, SUPERRES.profile)


def test_parsed_network_describes_the_model():
    builder = ductile.Builder()
    network = builder.parse_onnx(model_path(SUPERRES.filename))
    assert (network.num_inputs, network.num_outputs) == (1, 1)
    x = network.get_input(0)
    assert x.name == "input" and x.dtype == np.float32
    assert x.shape == (-1, 1, -1, -1)
    assert x.dim_names == ("batch", None, "height", "width")
    assert x.is_network_input and not x.is_network_output
    y = network.get_output(0)
    assert y.name == "output" and y.is_network_output
    types = [network.get_layer(i).type for i in range(network.num_layers)]
    assert "Conv" in types and "DepthToSpace" in types
    with pytest.raises(IndexError):
        network.get_input(1)


@pytest.mark.parametrize("shape", [(1, 3, 512, 512), (1, 3, 777, 555)])
def test_sigmoid_added_to_seg_lraspp_matches_sigmoid_of_onnxruntime(shape, seg_sigmoid_engine):
    engine, out_name = seg_sigmoid_engine
    feeds = random_feeds(SEG, {"input_1": shape}, seed=1)
    got = engine.create_execution_context().run(feeds)
    assert list(got) == [out_name]
    want = ort_run(model_path(SEG.filename), feeds)["output_1"]
    assert_close(got[out_name], sigmoid(want), what=f"sigmoid(seg_lraspp) {shape}")


@pytest.fixture(scope="module")
def seg_sigmoid_engine():
    builder = ductile.Builder()
    network = builder.parse_onnx(model_path(SEG.filename))
    old, new = add_sigmoid_to_output(network)
    assert network.num_outputs == 1 and network.get_output(0) == new
    assert not old.is_network_output and new.is_network_output
    engine = build(builder, network, SEG.profile)
    return engine, new.name


def test_sigmoid_added_to_superres_matches_sigmoid_of_onnxruntime():
    builder = ductile.Builder()
    network = builder.parse_onnx(model_path(SUPERRES.filename))
    _, new = add_sigmoid_to_output(network)
    engine = build(builder, network, SUPERRES.profile)
    feeds = random_feeds(SUPERRES, {"input": (2, 1, 70, 95)}, seed=2)
    got = engine.create_execution_context().run(feeds)[new.name]
    want = ort_run(model_path(SUPERRES.filename), feeds)["output"]
    assert_close(got, sigmoid(want))


def test_elementwise_layer_combines_two_outputs():
    builder = ductile.Builder()
    network = builder.parse_onnx(model_path(SUPERRES.filename))
    y = network.get_output(0)
    network.unmark_output(y)
    relu = network.add_activation(y, ductile.ActivationType.RELU).get_output(0)
    layer = network.add_elementwise(y, relu, ductile.ElementWiseOperation.SUB)
    network.mark_output(layer.get_output(0))
    engine = build(builder, network, SUPERRES.profile)
    feeds = random_feeds(SUPERRES, {"input": (1, 1, 64, 80)}, seed=3)
    got = engine.create_execution_context().run(feeds)[layer.get_output(0).name]
    want = ort_run(model_path(SUPERRES.filename), feeds)["output"]
    assert_close(got, np.minimum(want, 0))


def test_tensorrt_style_parser_and_config_calls():
    builder = ductile.Builder(ductile.Logger())
    network = builder.create_network(0)
    parser = ductile.OnnxParser(network, ductile.Logger())
    assert parser.parse_from_file(str(model_path(SUPERRES.filename)))
    assert parser.num_errors == 0
    config = builder.create_builder_config()
    config.set_memory_pool_limit(ductile.MemoryPoolType.WORKSPACE, 1 << 30)
    config.set_flag(ductile.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    profile.set_shape("input", *SUPERRES.profile["input"])
    assert config.add_optimization_profile(profile) == 0
    data = builder.build_serialized_network(network, config)
    engine = ductile.Runtime(ductile.Logger()).deserialize_cuda_engine(data)
    context = engine.create_execution_context()
    context.set_optimization_profile_async(0, 0)
    context.set_input_shape("input", (1, 1, 64, 64))
    assert context.get_tensor_shape("output") == (1, 1, 192, 192)
    assert "Conv" in engine.layer_info


def test_two_profiles_alternate_and_each_computes_correctly():
    builder = ductile.Builder()
    network = builder.parse_onnx(model_path(SUPERRES.filename))
    small = {"input": ((1, 1, 64, 64), (1, 1, 128, 128), (2, 1, 256, 256))}
    large = {"input": ((1, 1, 256, 256), (1, 1, 384, 384), (2, 1, 512, 512))}
    engine = build(builder, network, small, large)
    assert engine.num_optimization_profiles == 2
    assert engine.get_tensor_profile_shape("input", 1) == large["input"]
    session = ort_session(model_path(SUPERRES.filename))
    context = engine.create_execution_context()
    runs = [(0, (2, 1, 100, 77)), (1, (1, 1, 300, 450)), (0, (1, 1, 256, 64)),
            (1, (2, 1, 511, 257))]
    for seed, (profile, shape) in enumerate(runs):
        context.set_optimization_profile(profile)
        assert context.active_optimization_profile == profile
        feeds = random_feeds(SUPERRES, {"input": shape}, seed=seed)
        got = context.run(feeds)["output"]
        assert_close(got, ort_run(None, feeds, session=session)["output"],
                     what=f"profile {profile} {shape}")


def test_saved_engine_loads_and_computes_bitwise_the_same(superres_engine, tmp_path):
    path = tmp_path / "superres.engine"
    superres_engine.save(path)
    loaded = ductile.load_engine(path)
    feeds = random_feeds(SUPERRES, {"input": (2, 1, 97, 130)}, seed=4)
    want = superres_engine.create_execution_context().run(feeds)["output"]
    got = loaded.create_execution_context().run(feeds)["output"]
    assert np.array_equal(got, want)
    assert loaded.get_tensor_profile_shape("input", 0) == SUPERRES.profile["input"]


def test_serialized_engine_round_trips_through_bytes(superres_engine):
    data = superres_engine.serialize()
    loaded = ductile.Runtime().deserialize_cuda_engine(data)
    # The format is deterministic: what was read writes back to the same bytes.
    assert loaded.serialize() == data
    feeds = random_feeds(SUPERRES, {"input": (1, 1, 64, 333)}, seed=5)
    want = superres_engine.create_execution_context().run(feeds)["output"]
    got = loaded.create_execution_context().run(feeds)["output"]
    assert np.array_equal(got, want)


def test_run_binds_inputs_without_copy_and_converts_when_needed(superres_engine):
    context = superres_engine.create_execution_context()
    context.set_threads(1)
    x = random_feeds(SUPERRES, {"input": (1, 1, 64, 64)}, seed=6)["input"]
    want = context.run({"input": x})["output"]
    # float64 and a non-contiguous view are converted; the result is the same.
    wide = np.zeros((1, 1, 64, 128), dtype=np.float64)
    wide[..., ::2] = x
    assert np.array_equal(context.run({"input": wide[..., ::2]})["output"], want)


def test_model_bytes_parse_like_the_file():
    builder = ductile.Builder()
    data = model_path(SUPERRES.filename).read_bytes()
    network = builder.parse_onnx_bytes(data)
    engine = build(builder, network, SUPERRES.profile)
    feeds = random_feeds(SUPERRES, {"input": (1, 1, 65, 66)}, seed=7)
    got = engine.create_execution_context().run(feeds)["output"]
    assert_close(got, ort_run(model_path(SUPERRES.filename), feeds)["output"])


def test_contexts_on_one_engine_run_in_parallel_threads(superres_engine):
    """The engine is shared read-only; each thread has its own context (the header's rule)."""
    from concurrent.futures import ThreadPoolExecutor
    shapes = [(1, 1, 64 + 7 * i, 96 - 5 * i) for i in range(6)]
    feeds = [random_feeds(SUPERRES, {"input": s}, seed=10 + i) for i, s in enumerate(shapes)]
    # One thread per context on both sides, so bitwise equality does not depend on how a
    # kernel splits its work.
    alone = superres_engine.create_execution_context()
    alone.set_threads(1)
    serial = [alone.run(f)["output"] for f in feeds]

    def work(i):
        context = superres_engine.create_execution_context()
        context.set_threads(1)
        return [context.run(feeds[j])["output"] for j in range(i, len(feeds), 3)]

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(work, range(3)))
    for i in range(3):
        for k, j in enumerate(range(i, len(feeds), 3)):
            assert np.array_equal(results[i][k], serial[j]), f"thread {i} shape {shapes[j]}"
