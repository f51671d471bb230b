"""The small Llama-style decoder that bench/make_llama.py writes (Hugging Face's prefill graph as
PyTorch exports it: Gather embedding, RMSNorm in seven ops, rotary embedding, a causal mask from
Range comparisons, Softmax attention, the SwiGLU MLP) against onnxruntime: one engine over batch
1-4 and sequences 1-512, at a single token, a short prompt and an odd batch and length; the
same bits on 1 and 2 threads."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ductile
from util import assert_close, ort_run

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    out = tmp_path_factory.mktemp("llama") / "llama.onnx"
    subprocess.run([sys.executable, str(REPO / "bench" / "make_llama.py"), str(out)], check=True)
    return out


@pytest.fixture(scope="module")
def engine(llama):
    builder = ductile.Builder()
    network = builder.parse_onnx(str(llama))
    profile = builder.create_optimization_profile()
    profile.set_shape("input_ids", (1, 1), (1, 128), (4, 512))
    config = builder.create_builder_config()
    config.add_optimization_profile(profile)
    return builder.build_engine(network, config)


@pytest.mark.parametrize("shape", [(1, 1), (1, 16), (3, 77)])
def test_llama_style_decoder_matches_onnxruntime(llama, engine, shape):
    ids = np.random.default_rng(19).integers(0, 2048, shape).astype(np.int64)
    want = ort_run(llama.read_bytes(), {"input_ids": ids})["logits"]
    ctx = engine.create_execution_context()
    got = ctx.run({"input_ids": ids})["logits"]
    assert_close(got, want, rtol=1e-5)
    ctx.set_threads(2)
    np.testing.assert_array_equal(ctx.run({"input_ids": ids})["logits"], got)
