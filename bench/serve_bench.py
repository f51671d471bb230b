"""Serving under load: ductile and onnxruntime behind the same Triton, the same Python backend
model class and the same batcher, with and without dynamic batching.

    make serve-bench
    PYTHONPATH=python python bench/serve_bench.py [--quick] [--seconds S] [--model bert_small]

For each backend (ductile's engine, onnxruntime's session on the same ONNX file) and each
batching mode, a Triton (requirements-serve.txt) is started on 127.0.0.1 with 2 instances of
1 thread each, served as `python -m ductile.serve` serves: the instances forward to this
process, which holds ductile's engine once (a context per instance) or a session per
instance; a bounded gRPC load generator (tritonclient) then sends requests at
concurrency 1, 4 and 16 for each shape (and a mix of them), each point for at most --seconds
and at most --max-requests. Reported: requests/s, items/s (batch rows), p50 and p99 latency
in ms, and the executes the model ran per request (below 1: batching happened). Writes
bench/results/serve-<date>.md. Every request goes to 127.0.0.1; every loop is bounded.
"""
import argparse
import concurrent.futures
import contextlib
import datetime
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "python"))
MODELS = os.path.abspath(os.environ.get("DUCTILE_MODELS", os.path.join(ROOT, "..", "shared",
                                                                       "models")))

import numpy as np  # noqa: E402

import ductile  # noqa: E402
from ductile.serve.host import ModelHost  # noqa: E402
from ductile.serve.repository import export_model  # noqa: E402
from ductile.serve.runner import EngineRunner  # noqa: E402
from ductile.serve.server import TritonServer, free_port, missing_reason  # noqa: E402
from ductile.serve.signature import read_signature  # noqa: E402

# model: ({input: (min, opt, max)}, {label: [per-request {input: shape}, ...]})
SUITE = {
    "bert_small": ({"input_ids": ((1, 1), (4, 64), (8, 128)),
                    "attention_mask": ((1, 1), (4, 64), (8, 128))},
                   {"1x16": [(1, 16)], "1x64": [(1, 64)], "mix": [(1, 16), (1, 64), (2, 32)]}),
}
CONCURRENCY = (1, 4, 16)
INSTANCES, THREADS, QUEUE_DELAY_US = 2, 1, 2000

class OrtRunner:
    """onnxruntime behind the same host and batcher: a session per instance, no profile to
    check against."""

    def __init__(self, path, threads):
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        self.session = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        self.names = [o.name for o in self.session.get_outputs()]

    def check(self, feeds):
        return 0

    def run(self, feeds):
        return dict(zip(self.names, self.session.run(self.names, feeds)))


def build_engine(model, profile, path):
    builder = ductile.Builder()
    network = builder.parse_onnx(os.path.join(MODELS, model + ".onnx"))
    p = builder.create_optimization_profile()
    for name, (lo, opt, hi) in profile.items():
        p.set_shape(name, lo, opt, hi)
    config = builder.create_builder_config()
    config.add_optimization_profile(p)
    builder.build_engine(network, config).save(path)


def serving(work, model, engine, backend, batching):
    """(repository, host): one model served by `backend` ("ductile": the engine loaded once;
    "onnxruntime": a session per instance), its instances forwarding to the host in this
    process, as `python -m ductile.serve` serves (host.py)."""
    tag = f"{backend}-{'dyn' if batching else 'off'}"
    repo, sock = os.path.join(work, f"repo-{tag}"), os.path.join(work, f"{tag}.sock")
    if backend == "ductile":
        loaded = ductile.load_engine(engine)
        sig = read_signature(loaded)
        new_runner = lambda: EngineRunner(loaded, threads=THREADS)  # noqa: E731
    else:
        sig = read_signature(engine)
        onnx = os.path.join(MODELS, model + ".onnx")
        new_runner = lambda: OrtRunner(onnx, THREADS)  # noqa: E731
    export_model(repo, model, engine, instances=INSTANCES, queue_delay_us=QUEUE_DELAY_US,
                 dynamic_batching=batching, threads=THREADS, signature=sig, host_socket=sock)
    return repo, ModelHost(model, sock, new_runner, sig.max_batch).start()


def feeds_for(shape, rng):
    b, s = shape
    return {"input_ids": rng.integers(0, 2048, size=(b, s), dtype=np.int64),
            "attention_mask": np.ones((b, s), np.int64)}


def load(url, model, shapes, concurrency, seconds, max_requests):
    """Bounded closed-loop load: `concurrency` threads, each with its own gRPC client,
    sending until the time or the request budget runs out. Returns (latencies s, rows,
    wall s)."""
    import tritonclient.grpc as grpcclient
    rng = np.random.default_rng(0)
    prepared = []
    for i, shape in enumerate(shapes):
        feeds = feeds_for(shape, rng)
        inputs = []
        for name, a in feeds.items():
            t = grpcclient.InferInput(name, list(a.shape), "INT64")
            t.set_data_from_numpy(a)
            inputs.append(t)
        prepared.append((inputs, shape[0]))
    budget = threading.Semaphore(max_requests)
    deadline = time.monotonic() + seconds

    def worker(k):
        client = grpcclient.InferenceServerClient(url)
        lat, rows, i = [], 0, k
        while time.monotonic() < deadline and budget.acquire(blocking=False):
            inputs, b = prepared[i % len(prepared)]
            i += 1
            t0 = time.perf_counter()
            client.infer(model, inputs)
            lat.append(time.perf_counter() - t0)
            rows += b
        client.close()
        return lat, rows

    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=concurrency) as pool:
        results = list(pool.map(worker, range(concurrency)))
    wall = time.perf_counter() - t0
    return [x for lat, _ in results for x in lat], sum(r for _, r in results), wall


def executes(metrics_port):
    """(ductile_executes_total, ductile_requests_total) summed over instances."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out = {"ductile_executes_total": 0.0, "ductile_requests_total": 0.0}
    for line in text.splitlines():
        name = line.split("{", 1)[0]
        if name in out:
            out[name] += float(line.rsplit(" ", 1)[1])
    return out["ductile_executes_total"], out["ductile_requests_total"]


def percentile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="bert_small", choices=sorted(SUITE))
    ap.add_argument("--seconds", type=float, default=3.0, help="per point, at most")
    ap.add_argument("--max-requests", type=int, default=5000, help="per point, at most")
    ap.add_argument("--quick", action="store_true", help="1 s per point, one shape and the mix")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    why = missing_reason()
    if why:
        sys.exit(f"serve_bench: cannot serve: {why}")
    seconds = 1.0 if args.quick else args.seconds
    profile, shape_sets = SUITE[args.model]
    if args.quick:
        shape_sets = {k: v for k, v in shape_sets.items() if k in ("1x16", "mix")}
    work = tempfile.mkdtemp(prefix="serve-bench-")
    rows = []
    try:
        engine = os.path.join(work, args.model + ".engine")
        build_engine(args.model, profile, engine)
        for backend in ("ductile", "onnxruntime"):
            for batching in (True, False):
                repo, host = serving(work, args.model, engine, backend, batching)
                ports = (free_port(), free_port(), free_port())
                log = os.path.join(work, f"triton-{backend}-{batching}.log")
                with contextlib.ExitStack() as stack:
                    stack.callback(host.stop)
                    server = stack.enter_context(TritonServer(repo, *ports, log_path=log))
                    server.start().wait_ready(timeout_s=120)
                    url = server.grpc_url
                    load(url, args.model, shape_sets[next(iter(shape_sets))], 2, 0.5, 20)
                    for label, shapes in shape_sets.items():
                        for c in CONCURRENCY:
                            e0 = executes(ports[2])
                            lat, items, wall = load(url, args.model, shapes, c, seconds,
                                                    args.max_requests)
                            e1 = executes(ports[2])
                            n = len(lat)
                            rows.append(dict(
                                backend=backend, batching="dynamic" if batching else "off",
                                shape=label, concurrency=c, requests=n, rps=n / wall,
                                items=items / wall, p50=percentile(lat, 0.5) * 1e3,
                                p99=percentile(lat, 0.99) * 1e3,
                                exec_per_req=(e1[0] - e0[0]) / max(1.0, e1[1] - e0[1])))
                            r = rows[-1]
                            print(f"{backend:11s} {r['batching']:7s} {label:5s} c={c:2d} "
                                  f"{r['rps']:8.1f} req/s p50 {r['p50']:7.2f} ms "
                                  f"p99 {r['p99']:7.2f} ms exec/req {r['exec_per_req']:.2f}",
                                  flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_report(args, rows, seconds)


def write_report(args, rows, seconds):
    date = datetime.date.today().isoformat()
    out = args.out or os.path.join(HERE, "results", f"serve-{date}.md")
    lines = [f"# Serving {args.model}: ductile vs onnxruntime behind Triton, {date}", "",
             f"`bench/serve_bench.py{' --quick' if args.quick else ''}` on "
             f"{platform.node() and 'this machine'} ({os.cpu_count()} CPUs, "
             f"{platform.processor() or platform.machine()}). Triton 2.51 (nvidia-pytriton "
             f"0.7.0's), Python backend, {INSTANCES} instances x {THREADS} thread forwarding to "
             "this process (host.py: ductile's engine loaded once with a context per instance; "
             "onnxruntime a session per instance), the same model class, host and batcher "
             f"for both; dynamic batching: max queue delay "
             f"{QUEUE_DELAY_US} us, max batch 8. gRPC on 127.0.0.1, closed loop, at most "
             f"{seconds:g} s or {args.max_requests} requests per row. exec/req: engine executes "
             "per request served (below 1: requests ran together).", "",
             "| backend | batching | shape | concurrency | requests | req/s | items/s | "
             "p50 ms | p99 ms | exec/req |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['backend']} | {r['batching']} | {r['shape']} | {r['concurrency']} "
                     f"| {r['requests']} | {r['rps']:.1f} | {r['items']:.1f} | {r['p50']:.2f} "
                     f"| {r['p99']:.2f} | {r['exec_per_req']:.2f} |")
    by = {(r["backend"], r["batching"], r["shape"], r["concurrency"]): r for r in rows}
    lines += ["", "ductile / onnxruntime throughput (req/s ratio, > 1: ductile serves more):",
              "", "| batching | shape | c=1 | c=4 | c=16 |", "|---|---|---:|---:|---:|"]
    for batching in ("dynamic", "off"):
        for shape in dict.fromkeys(r["shape"] for r in rows):
            cells = []
            for c in CONCURRENCY:
                d, o = by.get(("ductile", batching, shape, c)), \
                    by.get(("onnxruntime", batching, shape, c))
                cells.append(f"{d['rps'] / o['rps']:.2f}" if d and o and o["rps"] else "-")
            lines.append(f"| {batching} | {shape} | {' | '.join(cells)} |")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
