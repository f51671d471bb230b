"""The CUDA backend through Python: config.device, the messages without a GPU (every build
machine), and on a GPU every suite model against the CPU engine at min, opt, max and an odd
shape (float32, rel-L2 <= 1e-4; FP16 / BF16 <= 1e-2 with float32 I/O and no host fallback;
TF32 <= 1e-3), numpy in and out and torch device tensors on a stream."""
import json

import numpy as np
import pytest

import ductile
from util import MODELS, model_path, random_feeds, rel_l2

POINTS = ("min", "opt", "max", "odd")
NO_GPU = "no CUDA device found"


def build_engine(spec, device, flags=()):
    builder = ductile.Builder()
    network = builder.parse_onnx(model_path(spec.filename))
    profile = builder.create_optimization_profile()
    for name, (lo, opt, hi) in spec.profile.items():
        profile.set_shape(name, lo, opt, hi)
    config = builder.create_builder_config()
    config.device = device
    for f in flags:
        config.set_flag(f)
    config.add_optimization_profile(profile)
    return builder.build_engine(network, config)


def _cuda_state():
    """"nobuild" (CUDA=0), "nogpu", or "gpu", as the library sees this machine."""
    builder = ductile.Builder()
    config = builder.create_builder_config()
    try:
        config.device = "cuda"
    except ductile.Error as e:
        assert str(e) == "set_device: backend 'cuda', which this build of ductile lacks (built with CUDA=0)"
        return "nobuild"
    network = builder.parse_onnx(model_path("superres.onnx"))
    profile = builder.create_optimization_profile()
    profile.set_shape("input", (1, 1, 8, 8), (1, 1, 8, 8), (1, 1, 8, 8))
    config.add_optimization_profile(profile)
    try:
        builder.build_engine(network, config)
    except ductile.Error as e:
        assert str(e) == NO_GPU and e.status == "DUCTILE_ERR_UNSUPPORTED"
        return "nogpu"
    return "gpu"


STATE = None


def cuda_state():
    global STATE
    if STATE is None:
        STATE = _cuda_state()
    return STATE


def need_gpu():
    if cuda_state() != "gpu":
        pytest.skip(NO_GPU if cuda_state() == "nogpu" else "built with CUDA=0")


def test_config_device_names_are_checked():
    config = ductile.Builder().create_builder_config()
    assert config.device == "cpu"
    with pytest.raises(ductile.Error) as e:
        config.device = "gpu"
    assert str(e.value) == "set_device: 'gpu' is not a device (expected cpu or cuda)"
    config.device = "cpu"
    assert config.device == "cpu"


def test_cuda_build_without_gpu_fails_cleanly():
    """Here (no GPU) the build fails with the message; the state probe asserts it exactly."""
    state = cuda_state()
    assert state in ("nobuild", "nogpu", "gpu")
    if state == "gpu":
        pytest.skip("a GPU is present: the GPU tests below run instead")


@pytest.fixture(scope="module", params=sorted(MODELS))
def engines(request):
    need_gpu()
    spec = MODELS[request.param]
    gpu = build_engine(spec, "cuda")
    cpu = build_engine(spec, "cpu")
    assert gpu.device == "cuda" and cpu.device == "cpu"
    return request.param, spec, gpu.create_execution_context(), cpu.create_execution_context(), gpu


@pytest.mark.parametrize("point", POINTS)
def test_cuda_matches_cpu_engine(engines, point):
    name, spec, gctx, cctx, _ = engines
    shapes = spec.shapes(point)
    feeds = random_feeds(spec, shapes, seed=10 + POINTS.index(point))
    got, want = gctx.run(feeds), cctx.run(feeds)
    assert sorted(got) == sorted(want)
    for out, expected in want.items():
        assert got[out].shape == expected.shape
        err = rel_l2(got[out], expected)
        print(f"CUDA-vs-CPU {name} {point} {shapes} {out}: rel-L2 {err:.3e}")
        assert err <= 1e-4, f"{name} {point} {out}: rel-L2 {err:.3e}"


def test_layer_info_reports_placement(engines):
    name, _, _, _, gpu = engines
    layers = json.loads(gpu.layer_info)["Layers"]
    run = [l for l in layers if l["Stage"] == "execute"]
    fallback = [l["LayerType"] for l in run if l.get("Placement") == "cpu fallback"]
    print(f"PLACEMENT {name}: {len(run) - len(fallback)} of {len(run)} execute layers on the GPU; "
          f"cpu fallback: {sorted(set(fallback))}")
    for l in run:
        assert l["Kernel"].startswith("cpu." if l.get("Placement") == "cpu fallback" else "cuda.")


def test_execute_async_on_torch_stream_with_device_buffers():
    need_gpu()
    torch = pytest.importorskip("torch")
    spec = MODELS["superres"]
    gpu = build_engine(spec, "cuda")
    cpu = build_engine(spec, "cpu")
    ctx = gpu.create_execution_context()
    feeds = random_feeds(spec, {"input": (2, 1, 96, 80)}, seed=3)
    want = cpu.create_execution_context().run(feeds)["output"]
    x = torch.from_numpy(feeds["input"]).cuda()
    ctx.set_input_shape("input", tuple(x.shape))
    y = torch.full(ctx.get_tensor_shape("output"), float("nan"), device="cuda")
    ctx.set_tensor_address("input", x)              # __cuda_array_interface__
    ctx.set_tensor_address("output", y.data_ptr())  # a plain address
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        ctx.execute_async_v3(stream)                 # the stream object
    stream.synchronize()
    err = rel_l2(y.cpu().numpy(), want)
    print(f"CUDA async torch stream superres: rel-L2 {err:.3e}")
    assert err <= 1e-4


# ---- precision: FP16 / BF16 (mixed, float32 I/O) and TF32 -----------------------------------

PRECISIONS = {
    "fp16": ((ductile.BuilderFlag.FP16,), 1e-2, "float16"),
    "bf16": ((ductile.BuilderFlag.BF16,), 1e-2, "bfloat16"),
    "tf32": ((ductile.BuilderFlag.TF32,), 1e-3, None),
}


@pytest.fixture(scope="module", params=[(m, p) for m in sorted(MODELS) for p in PRECISIONS], ids=lambda x: f"{x[0]}-{x[1]}")
def precision_engines(request):
    need_gpu()
    model, prec = request.param
    spec = MODELS[model]
    flags, tol, half = PRECISIONS[prec]
    gpu = build_engine(spec, "cuda", flags)
    cpu = build_engine(spec, "cpu")
    return model, prec, spec, tol, half, gpu, gpu.create_execution_context(), cpu.create_execution_context()


@pytest.mark.parametrize("point", POINTS)
def test_precision_matches_cpu_float32_engine(precision_engines, point):
    name, prec, spec, tol, half, gpu, gctx, cctx = precision_engines
    shapes = spec.shapes(point)
    feeds = random_feeds(spec, shapes, seed=20 + POINTS.index(point))
    got, want = gctx.run(feeds), cctx.run(feeds)
    assert sorted(got) == sorted(want)
    for out, expected in want.items():
        assert got[out].dtype == expected.dtype  # engine I/O keeps the model's dtypes
        # mobilenet_v2's random weights shrink activations to ~1e-8 (outputs ~3e-9), below
        # float16's subnormals (6e-8): no float16 engine holds them (TensorRT's neither).
        # bfloat16 has float32's range and passes on it.
        peak = float(np.abs(expected).max()) if expected.size else 1.0
        if half == "float16" and peak < 2.0 ** -14:
            err = rel_l2(got[out], expected)
            print(f"PRECISION {prec} {name} {point} {shapes} {out}: rel-L2 {err:.3e} (max |output| {peak:.1e})")
            pytest.xfail(f"{name}: max |{out}| = {peak:.1e}, below float16's smallest normal 2^-14")
        assert got[out].shape == expected.shape
        err = rel_l2(got[out], expected)
        print(f"PRECISION {prec} {name} {point} {shapes} {out}: rel-L2 {err:.3e}")
        assert err <= tol, f"{prec} {name} {point} {out}: rel-L2 {err:.3e}"


def test_precision_layers_run_on_the_gpu_in_half(precision_engines):
    """No layer goes to the host because of precision; FP16/BF16 engines compute in half
    (most execute layers write a half tensor); TF32 marks the float32 convolutions and matmuls
    ("TF32": true in the layer info)."""
    name, prec, _, _, half, gpu, _, _ = precision_engines
    layers = json.loads(gpu.layer_info)["Layers"]
    run = [l for l in layers if l["Stage"] == "execute"]
    fallback = [l["LayerType"] for l in run if l.get("Placement") == "cpu fallback"]
    assert not fallback, f"{name} {prec}: cpu fallback {fallback}"
    for io in gpu.io_tensor_names:
        assert np.dtype(gpu.get_tensor_dtype(io)) != np.float16
    if half:
        lowered = [l for l in run if any(o["Dtype"] == half for o in l["Outputs"])]
        f32 = sorted({l["LayerType"] for l in run if l not in lowered and l["LayerType"] != "Cast"
                      and any(o["Dtype"] == "float32" for o in l["Outputs"])})
        casts = sum(l["LayerType"] == "Cast" for l in run)
        print(f"PRECISION-LAYERS {name} {prec}: {len(lowered)} of {len(run)} execute layers in {half}, "
              f"{casts} casts; float32: {f32}")
        # Every execute layer computing float32 is lowered, but those kept for accuracy.
        assert set(f32) <= {"Pow", "ReduceSumSquare", "ReduceL2", "ReduceLogSumExp"}, f32
        assert lowered
    else:
        marked = [l["LayerType"] for l in run if l.get("TF32")]
        print(f"PRECISION-LAYERS {name} {prec}: TF32 in {len(marked)} layers: {sorted(set(marked))}")
        assert marked and set(marked) <= {"Conv", "FusedConv", "MatMul", "Gemm"}
