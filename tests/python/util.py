"""Helpers shared by the Python tests: where the models are, their profiles, fixed-seed inputs,
and the onnxruntime reference every result is compared with."""
import os
import pathlib
from dataclasses import dataclass, field

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
BUILD = REPO / "build"

# The tolerance of the model suite: float32 kernels that reorder sums differ from onnxruntime
# well below this, a wrong kernel differs far above it.
MODEL_RTOL = 1e-4
OP_RTOL = 1e-5


def cpu_flags():
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none): which kernels
    and tactics this host can run ("avx512f", "avx512_bf16", "avx512_fp16", ...)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def load_file_module(name, path):
    """The Python file at path (relative to the repo root) as module `name` (bench/ and scripts/
    are not packages)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, REPO / path)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


def models_dir():
    """The model suite folder: $DUCTILE_MODELS, relative to the repo root when not absolute."""
    d = pathlib.Path(os.environ.get("DUCTILE_MODELS", "../shared/models"))
    return d if d.is_absolute() else (REPO / d).resolve()


def model_path(filename):
    """Path of a model of the suite; skips the test when the suite is not there."""
    p = models_dir() / filename
    if not p.is_file():
        pytest.skip(f"model {filename} not found in {p.parent}; set DUCTILE_MODELS to the "
                    "folder of the model suite")
    return p


@dataclass
class ModelSpec:
    filename: str
    # input name -> (min, opt, max) shapes of the profile the tests build with
    profile: dict
    # input name -> a shape inside the profile that is not min, opt or max
    odd: dict
    # input name -> (low, high) for integer inputs drawn uniformly; masks are handled apart
    int_ranges: dict = field(default_factory=dict)
    mask_inputs: tuple = ()

    def shapes(self, which):
        """{input: shape} at "min", "opt", "max" or "odd"."""
        if which == "odd":
            return dict(self.odd)
        i = ("min", "opt", "max").index(which)
        return {name: tuple(mom[i]) for name, mom in self.profile.items()}


MODELS = {
    "superres": ModelSpec(
        "superres.onnx",
        {"input": ((1, 1, 64, 64), (1, 1, 256, 256), (4, 1, 512, 512))},
        {"input": (2, 1, 333, 301)}),
    "seg_lraspp": ModelSpec(
        "seg_lraspp.onnx",
        {"input_1": ((1, 3, 512, 512), (1, 3, 1024, 1024), (1, 3, 1600, 1600))},
        {"input_1": (1, 3, 777, 555)}),
    "mobilenet_v2": ModelSpec(
        "mobilenet_v2.onnx",
        {"input": ((1, 3, 224, 224), (8, 3, 224, 224), (32, 3, 224, 224))},
        {"input": (7, 3, 224, 224)}),
    "bert_small": ModelSpec(
        "bert_small.onnx",
        {"input_ids": ((1, 1), (4, 128), (8, 512)),
         "attention_mask": ((1, 1), (4, 128), (8, 512))},
        {"input_ids": (3, 77), "attention_mask": (3, 77)},
        int_ranges={"input_ids": (0, 2048)},
        mask_inputs=("attention_mask",)),
    "superres_op10_dynbatch": ModelSpec(
        "superres_op10_dynbatch.onnx",
        {"input": ((1, 1, 224, 224), (4, 1, 224, 224), (8, 1, 224, 224))},
        {"input": (3, 1, 224, 224)}),
}


def random_feeds(spec, shapes, seed=0):
    """Fixed-seed inputs for a model at the given shapes: float32 normal, token ids in range,
    0/1 masks with at least one 1 per row (an all-zero row makes attention undefined)."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for name, shape in shapes.items():
        if name in spec.mask_inputs:
            m = rng.integers(0, 2, size=shape, dtype=np.int64)
            m[..., 0] = 1
            feeds[name] = m
        elif name in spec.int_ranges:
            lo, hi = spec.int_ranges[name]
            feeds[name] = rng.integers(lo, hi, size=shape, dtype=np.int64)
        else:
            feeds[name] = rng.standard_normal(shape, dtype=np.float32)
    return feeds


def ort_session(model):
    """An onnxruntime CPU session on a path or model bytes, 2 threads as in the anchors."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    so.inter_op_num_threads = 1
    src = model if isinstance(model, (bytes, bytearray)) else str(model)
    return ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])


def ort_run(model, feeds, session=None):
    """{output name: array} computed by onnxruntime."""
    sess = session or ort_session(model)
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, feeds)))


def rel_l2(a, b):
    """||a - b|| / ||b|| in float64; 0 when both are zero."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    num = np.linalg.norm((a - b).ravel())
    den = np.linalg.norm(b.ravel())
    if den == 0.0:
        return 0.0 if num == 0.0 else float("inf")
    return float(num / den)


def assert_close(actual, expected, rtol=MODEL_RTOL, what="output"):
    """Same shape, and floats within rel-L2 rtol; integers and bools exactly equal."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, \
        f"{what}: shape {actual.shape} != expected {expected.shape}"
    if np.issubdtype(expected.dtype, np.floating):
        assert np.all(np.isfinite(actual) == np.isfinite(expected)), f"{what}: non-finite mismatch"
        fin = np.isfinite(expected)
        err = rel_l2(actual[fin], expected[fin])
        assert err <= rtol, f"{what}: rel-L2 {err:.3e} > {rtol:.0e}"
    else:
        assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
        assert np.array_equal(actual, expected), f"{what}: values differ"


def sigmoid(x):
    return (1.0 / (1.0 + np.exp(-x.astype(np.float64)))).astype(np.float32)


def build_profiled(builder, network, shapes, flag=None, limit=None):
    """builder's engine of network with one profile, shapes {input: (min, opt, max)}, the
    builder flag `flag` (a ductile.BuilderFlag) and the workspace limit `limit` if given."""
    import ductile
    profile = builder.create_optimization_profile()
    for name, (lo, opt, hi) in shapes.items():
        profile.set_shape(name, lo, opt, hi)
    config = builder.create_builder_config()
    config.add_optimization_profile(profile)
    if flag is not None:
        config.set_flag(flag)
    if limit is not None:
        config.set_memory_pool_limit(ductile.MemoryPoolType.WORKSPACE, limit)
    return builder.build_engine(network, config)


def build_from_bytes(model, shapes, flag=None):
    """An engine of ONNX bytes with one profile (build_profiled)."""
    import ductile
    builder = ductile.Builder()
    return build_profiled(builder, builder.parse_onnx_bytes(model), shapes, flag)
