"""One engine per served model (host.py, wire.py): the serve process loads it once and every
Triton instance forwards to it over a Unix socket, getting a thread and execution contexts
of its own on that engine. Here without Triton: instances are wire clients (and the
forwarding TritonPythonModel, through a stand-in of Triton's Python backend API), run
concurrently, each output against onnxruntime; refusals keep ductile's message and status.
tests/python/test_serve.py checks the same through the real server."""
import concurrent.futures
import importlib.util
import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import ductile
from ductile.serve import wire
from ductile.serve.cli import main
from ductile.serve.host import ModelHost
from ductile.serve.repository import FORWARD_PY, export_model
from ductile.serve.runner import EngineRunner
from serve_help import ENGINES, Request, build_engine, model_config_dict, stand_in_backend
from util import assert_close, model_path, ort_run, ort_session

# An exception in one of the host's threads (accept, an instance's) fails the test.
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")


def bert_feeds(batch, seq, seed):
    rng = np.random.default_rng(seed)
    return {"input_ids": rng.integers(0, 2048, size=(batch, seq), dtype=np.int64),
            "attention_mask": np.ones((batch, seq), np.int64)}


@pytest.fixture(scope="module")
def session():
    return ort_session(model_path(ENGINES["bert"][0]))


class Runner(EngineRunner):
    """An instance's runner whose first run waits at `barrier` (when one is set) for the other
    instance's first run: executes of different instances must overlap to get past it."""
    barrier = None

    def run(self, feeds):
        if self.barrier is not None:
            barrier, self.barrier = self.barrier, None
            barrier.wait()
        return super().run(feeds)


@pytest.fixture()
def host(tmp_path):
    engine_path = build_engine("bert", str(tmp_path / "bert.engine"))
    engine = ductile.load_engine(engine_path)
    runners = []

    def new_runner():
        runners.append(Runner(engine, threads=1))
        runners[-1].barrier = h.barrier
        return runners[-1]

    lines = []
    h = ModelHost("bert", str(tmp_path / "bert.sock"), new_runner, max_batch=4,
                  log=lines.append)
    h.engine, h.runners, h.lines, h.engine_path, h.barrier = engine, runners, lines, \
        engine_path, None
    h.start()
    try:
        yield h
    finally:
        h.stop()


def wait_for(predicate, timeout_s=30):
    deadline = time.monotonic() + timeout_s
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.05)
    return predicate()


def test_two_instances_run_at_once_on_one_engine_with_their_own_contexts(host, session):
    # Each instance's first execute waits for the other's (a barrier with a timeout): were the
    # instances' executes serialized, it would break and their requests fail.
    host.barrier = threading.Barrier(2, timeout=60)
    work = [[bert_feeds(1, 8, 1), bert_feeds(1, 8, 2), bert_feeds(2, 33, 3)],
            [bert_feeds(4, 64, 4), bert_feeds(1, 1, 5)],
            [bert_feeds(1, 8, 6), bert_feeds(1, 8, 7), bert_feeds(1, 8, 8)],
            [bert_feeds(3, 20, 9)]]

    def instance(k):
        client = wire.Client(host.path, "bert", 1000 + k)
        return client, [client.run(requests) for requests in work[k::2]]

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        done = list(pool.map(instance, range(2), timeout=120))
    for k, (_, calls) in enumerate(done):
        for requests, (results, counts) in zip(work[k::2], calls):
            assert len(results) == len(requests)
            for feeds, got in zip(requests, results):
                assert isinstance(got, dict), f"{got.status}: {got}"
                want = ort_run(None, feeds, session=session)["last_hidden_state"]
                assert_close(got["last_hidden_state"], want, what=str(feeds["input_ids"].shape))
    # Alike requests ran together: [1x8, 1x8, 2x33] in 2 executes, [1x8] x 3 in one.
    assert done[0][1][0][1] == (2, 3) and done[0][1][1][1] == (1, 3)
    # One engine; a runner per instance, each with contexts of its own.
    assert len(host.runners) == 2 and all(r.engine is host.engine for r in host.runners)
    assert host.runners[0].context(0) is not host.runners[1].context(0)
    assert sorted(pid for pid, _, _ in host.instances) == [1000, 1001]
    attached = sorted(line for line in host.lines if "attached" in line)
    assert [line.replace("1001", "1000") for line in attached] == [
        f"ductile.serve: bert: instance {n} (stub pid 1000) attached to the engine in pid "
        f"{os.getpid()}" for n in (1, 2)]
    # An instance that goes (Triton unloads the model) takes its runner and contexts along.
    for client, _ in done:
        client.close()
    assert wait_for(lambda: host.instances == [])
    assert wait_for(lambda: sum("detached" in line for line in host.lines) == 2)


def test_a_refused_request_keeps_ductiles_message_and_status(host, session):
    client = wire.Client(host.path, "bert", 7)
    bad = bert_feeds(1, 8, 0)
    bad["attention_mask"] = np.ones((1, 9), np.int64)
    good = bert_feeds(1, 8, 1)
    (refused, outside, ok), counts = client.run([bad, bert_feeds(1, 65, 2), good])
    client.close()
    assert isinstance(refused, wire.RemoteError) and refused.status == "DUCTILE_ERR_SHAPE"
    assert str(refused) == ("inputs 'input_ids' (dimension 1) and 'attention_mask' (dimension "
                            "1) share the dimension 'seq' but were set to 8 and 9")
    assert str(outside) == ("input 'input_ids' dimension 1 (seq) is 65, outside the range "
                            "1..64 of profile 0")
    assert_close(ok["last_hidden_state"],
                 ort_run(None, good, session=session)["last_hidden_state"])
    assert counts == (1, 1)


def test_an_instance_of_another_model_is_turned_away(host):
    with pytest.raises(ConnectionError) as e:
        wire.Client(host.path, "sr", 1)
    assert str(e.value) == "this socket serves model 'bert', not 'sr'"
    assert host.instances == []


def test_forwarding_model_answers_through_the_backend_api(host, session, tmp_path,
                                                          monkeypatch):
    repo = tmp_path / "repository"
    export_model(str(repo), "bert", host.engine_path, instances=2, max_batch=4,
                 host_socket=host.path)
    # No engine in the repository: the host holds it.
    assert sorted(p.name for p in (repo / "bert" / "1").iterdir()) == ["model.py"]
    model_py = (repo / "bert" / "1" / "model.py").read_text()
    assert model_py == FORWARD_PY.format(
        serve_dir=os.path.dirname(os.path.abspath(wire.__file__)))
    fake = stand_in_backend()
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", fake)
    spec = importlib.util.spec_from_file_location("forwarding_bert", repo / "bert/1/model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(sys.modules["triton_model"], "pb_utils", fake)
    model = module.TritonPythonModel()
    config = model_config_dict(repo / "bert" / "config.pbtxt")
    model.initialize({"model_config": json.dumps(config), "model_repository": str(repo / "bert"),
                      "model_version": "1"})
    feeds = [bert_feeds(1, 7, 0), bert_feeds(1, 70, 1), bert_feeds(1, 7, 2)]
    responses = model.execute([Request(f) for f in feeds])
    assert [pid for pid, _, _ in host.instances] == [os.getpid()]
    model.finalize()
    assert (responses[1].error.code, responses[1].error.message) == (
        "INVALID_ARG", "input 'input_ids' dimension 1 (seq) is 70, outside the range 1..64 of "
        "profile 0")
    for i in (0, 2):
        assert responses[i].error is None
        [t] = responses[i].output_tensors
        assert_close(t.array, ort_run(None, feeds[i], session=session)["last_hidden_state"])
    assert wait_for(lambda: host.instances == [])


def test_a_forwarding_stub_never_loads_ductile(tmp_path):
    """What the stub runs (model.py, then triton_model.py and wire.py by path) imports no
    ductile module, so the library and the engine stay in the serve process."""
    repo = tmp_path / "repository"
    export_model(str(repo), "bert", build_engine("bert", str(tmp_path / "b.engine")),
                 host_socket=str(tmp_path / "none.sock"))
    probe = ("import runpy, sys; runpy.run_path(sys.argv[1]); "
             "print(sorted(m for m in sys.modules if m.split('.')[0] == 'ductile'))")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", probe, str(repo / "bert" / "1" / "model.py")],
                         capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path)
    assert (out.returncode, out.stdout) == (0, "[]\n"), out.stderr


def test_the_exported_repository_keeps_the_engine_in_each_instance(tmp_path):
    engine = build_engine("bert", str(tmp_path / "b.engine"))
    rc = main(["--model", f"bert={engine}", "--instances", "2", "--export-repository",
               str(tmp_path / "repo")])
    assert rc == 0
    config = (tmp_path / "repo" / "bert" / "config.pbtxt").read_text()
    assert "host_socket" not in config
    assert (tmp_path / "repo" / "bert" / "1" / "model.engine").is_file()
