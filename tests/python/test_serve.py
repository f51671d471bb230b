"""python -m ductile.serve on loopback: Triton (bundled by nvidia-pytriton) serving two engines
with two instances each, on one engine per model held by the serve process. Concurrent
requests at varying shapes over HTTP and gRPC, each output against onnxruntime; dynamic
batching seen on /metrics; out-of-profile requests get ductile's message as a 400 (gRPC
INVALID_ARGUMENT) and the server goes on; SIGTERM stops the server and every stub. Skipped,
with the reason, where this Python cannot run the server."""
import concurrent.futures
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from serve_help import ENGINES, ServeProcess, build_engine, require_server
from util import assert_close, model_path, ort_run, ort_session

QUEUE_DELAY_US = 200_000  # long enough that requests sent together are batched together


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    require_server()
    d = tmp_path_factory.mktemp("serve")
    bert = build_engine("bert", str(d / "bert.engine"))
    sr = build_engine("sr", str(d / "sr.engine"))
    s = ServeProcess(["--model", f"bert={bert}", "--model", f"sr={sr}", "--instances", "2",
                      "--max-queue-delay-us", str(QUEUE_DELAY_US), "--threads", "1"], str(d))
    try:
        s.wait_ready()
        yield s
    finally:
        s.kill()


@pytest.fixture(scope="module")
def sessions():
    return {k: ort_session(model_path(f)) for k, (f, _) in ENGINES.items()}


def clients(server):
    """{protocol: (client module, url)}; infer() opens a client per call, as the HTTP client
    (gevent) belongs to the thread that made it, and closes it."""
    import tritonclient.grpc as grpcclient
    import tritonclient.http as httpclient
    return {"http": (httpclient, server.http_url), "grpc": (grpcclient, server.grpc_url)}


TRITON_TYPES = {np.dtype(np.float32): "FP32", np.dtype(np.int64): "INT64"}


def infer(proto, model, feeds, outputs):
    module, url = proto
    inputs = []
    for name, a in feeds.items():
        i = module.InferInput(name, list(a.shape), TRITON_TYPES[a.dtype])
        i.set_data_from_numpy(a)
        inputs.append(i)
    client = module.InferenceServerClient(url)
    try:
        result = client.infer(model, inputs)
        return {n: result.as_numpy(n) for n in outputs}
    finally:
        client.close()


def bert_feeds(batch, seq, seed):
    rng = np.random.default_rng(seed)
    mask = rng.integers(0, 2, size=(batch, seq), dtype=np.int64)
    mask[:, 0] = 1
    return {"input_ids": rng.integers(0, 2048, size=(batch, seq), dtype=np.int64),
            "attention_mask": mask}


def sr_feeds(batch, h, w, seed):
    rng = np.random.default_rng(seed)
    return {"input": rng.standard_normal((batch, 1, h, w), dtype=np.float32)}


def requests_at_varying_shapes():
    """(model, feeds, outputs) at shapes across the profiles, some alike (to batch)."""
    out = []
    for i, (b, s) in enumerate([(1, 8), (2, 8), (1, 8), (1, 33), (4, 64), (1, 1), (2, 33),
                                (1, 8)]):
        out.append(("bert", bert_feeds(b, s, seed=i), ["last_hidden_state"]))
    for i, (b, h, w) in enumerate([(1, 16, 16), (2, 24, 40), (1, 24, 40), (4, 64, 64),
                                   (1, 37, 19), (1, 24, 40)]):
        out.append(("sr", sr_feeds(b, h, w, seed=100 + i), ["output"]))
    return out


def test_concurrent_requests_over_http_and_grpc_match_onnxruntime(server, sessions):
    protos = clients(server)
    work = requests_at_varying_shapes()
    jobs = [(protos[p], m, f, o) for p in ("http", "grpc") for m, f, o in work]
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(infer, proto, m, f, o) for proto, m, f, o in jobs]
        results = [fu.result(timeout=120) for fu in futures]
    assert len(results) == 2 * len(work)
    for (proto, model, feeds, outputs), got in zip(jobs, results):
        want = ort_run(None, feeds, session=sessions[model])
        for name in outputs:
            shape = next(iter(feeds.values())).shape
            assert_close(got[name], want[name], what=f"{model} {shape} {name}")


def test_requests_sent_together_run_in_fewer_executes(server):
    protos = clients(server)
    before = server.metrics()
    feeds = [bert_feeds(1, 12, seed=200 + i) for i in range(8)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda f: infer(protos["grpc"], "bert", f, ["last_hidden_state"]), feeds,
                      timeout=120))
    after = server.metrics()

    def delta(metric):
        return after.get((metric, "bert"), 0) - before.get((metric, "bert"), 0)

    assert delta("nv_inference_request_success") == 8
    assert delta("ductile_requests_total") == 8
    # Eight requests of one shape and batch 1, max batch 4, two instances: batched.
    assert 2 <= delta("ductile_executes_total") < 8


def expect_refusal(proto, model, feeds, message):
    import tritonclient.utils
    module, _ = proto
    with pytest.raises(tritonclient.utils.InferenceServerException) as e:
        infer(proto, model, feeds, [])
    assert e.value.message() == message
    # HTTP 400; gRPC's code for it.
    assert e.value.status() in ("400", "StatusCode.INVALID_ARGUMENT")


def test_out_of_profile_requests_get_ductiles_message_and_the_server_survives(server, sessions):
    protos = clients(server)
    for name in ("http", "grpc"):
        p = protos[name]
        expect_refusal(p, "bert", bert_feeds(1, 65, seed=0),
                       "input 'input_ids' dimension 1 (seq) is 65, outside the range 1..64 of "
                       "profile 0")
        mismatched = bert_feeds(2, 8, seed=0)
        mismatched["attention_mask"] = np.ones((2, 9), np.int64)
        expect_refusal(p, "bert", mismatched,
                       "inputs 'input_ids' (dimension 1) and 'attention_mask' (dimension 1) "
                       "share the dimension 'seq' but were set to 8 and 9")
        expect_refusal(p, "sr", sr_feeds(1, 8, 16, seed=0),
                       "input 'input' dimension 2 (height) is 8, outside the range 16..64 of "
                       "profile 0")
        # A batch above the profile's max is ductile's to refuse too (Triton's bound is far above).
        expect_refusal(p, "bert", bert_feeds(5, 8, seed=0),
                       "input 'input_ids' dimension 0 (batch) is 5, outside the range 1..4 of profile 0")
    assert server.ready()
    feeds = bert_feeds(2, 20, seed=9)
    got = infer(protos["http"], "bert", feeds, ["last_hidden_state"])
    assert_close(got["last_hidden_state"],
                 ort_run(None, feeds, session=sessions["bert"])["last_hidden_state"])


def test_a_refused_request_does_not_fail_the_others_of_its_batch(server, sessions):
    import tritonclient.utils
    protos = clients(server)
    bad = bert_feeds(1, 10, seed=0)
    bad["attention_mask"] = np.ones((1, 11), np.int64)
    good = [bert_feeds(1, 10, seed=300 + i) for i in range(3)]

    def send(feeds):
        try:
            return infer(protos["grpc"], "bert", feeds, ["last_hidden_state"])
        except tritonclient.utils.InferenceServerException as e:
            return e.message()

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(send, [good[0], bad, good[1], good[2]], timeout=120))
    assert results[1] == ("inputs 'input_ids' (dimension 1) and 'attention_mask' (dimension 1) "
                          "share the dimension 'seq' but were set to 10 and 11")
    for feeds, got in zip(good, (results[0], results[2], results[3])):
        want = ort_run(None, feeds, session=sessions["bert"])
        assert_close(got["last_hidden_state"], want["last_hidden_state"])


def stub_pids(group):
    """Triton Python backend stubs in process group `group`."""
    pids = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
            if os.getpgid(int(entry)) == group and b"triton_python_backend_stub" in cmdline:
                pids.add(int(entry))
        except (OSError, ProcessLookupError):
            pass
    return pids


def maps_library(pid):
    with open(f"/proc/{pid}/maps") as f:
        return "libductile" in f.read()


def test_instances_share_one_engine_in_the_serve_process(server):
    """Two models of two instances each: four stubs, none of which maps the library; the serve
    process loaded each engine once and every stub attached to it."""
    out, serve_pid = server.output(), server.proc.pid
    attached = set()
    for model, engine in (("bert", "bert.engine"), ("sr", "sr.engine")):
        loads = re.findall(rf"^ductile\.serve: {model}: loaded (\S+) once \(\d+ bytes\) in pid "
                           r"(\d+), for 2 instance\(s\)$", out, re.M)
        assert [(os.path.basename(p), int(pid)) for p, pid in loads] == [(engine, serve_pid)], out
        lines = re.findall(rf"^ductile\.serve: {model}: instance (\d+) \(stub pid (\d+)\) "
                           r"attached to the engine in pid (\d+)$", out, re.M)
        assert sorted(int(n) for n, _, _ in lines) == [1, 2], out
        assert {int(host) for _, _, host in lines} == {serve_pid}
        attached |= {int(pid) for _, pid, _ in lines}
    assert len(attached) == 4
    # Every stub the server runs attached to the serve process, and none holds the library.
    assert stub_pids(serve_pid) == attached
    assert [pid for pid in attached if maps_library(pid)] == []
    assert maps_library(serve_pid)


def test_sigterm_stops_the_server_and_its_stubs(server):
    """Last: it stops the module's server."""
    server.proc.send_signal(signal.SIGTERM)
    try:
        rc = server.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"ductile.serve still running 30 s after SIGTERM:\n{server.output()}")
    assert rc == 0, server.output()
    assert server.output().rstrip().endswith("ductile.serve: stopping")
    deadline = time.monotonic() + 10
    while server.group_alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not server.group_alive(), \
        f"processes left in group {server.proc.pid}: {os.popen(f'ps -g {server.proc.pid}').read()}"


def test_a_venv_of_another_python_than_the_stubs_is_named_in_a_warning(monkeypatch):
    """The bundled stub embeds the system's libpython and takes the venv's standard library:
    with a venv of another Python (pyenv's 3.11.7 over Debian's 3.11.2) standard modules that
    need the newer core fail in the stub ('_thread.RLock' object has no attribute
    '_recursion_count'); serve warns, naming both."""
    from ductile.serve import server
    if server.pytriton_dir() is None:
        pytest.skip("nvidia-pytriton is not installed in this Python")
    monkeypatch.setattr(server.platform, "python_version", lambda: "3.11.99")
    m = re.fullmatch(
        r"Triton's Python backend stub \(bundled with nvidia-pytriton\) embeds "
        r"(/\S+/libpython3\.\d+\.so\.1\.0) \(Python 3\.\d+\.\d+\) but this venv runs Python "
        r"3\.11\.99 \((\S+)\): the stub will run its own core under this venv's standard "
        r"library, where modules that need the newer core fail; make the venv with that "
        r"Python \(Debian: /usr/bin/python3 -m venv\)",
        server.stub_mismatch() or "")
    assert m and m.group(2) == sys.base_prefix
