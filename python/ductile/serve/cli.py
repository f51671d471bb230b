"""python -m ductile.serve: serve engines with Triton Inference Server on this machine, or
write the model repository (and a KServe manifest) that serves them on a cluster."""
import argparse
import os
import re
import shutil
import signal
import sys
import tempfile
import threading

from .._lib import Error


def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog="python -m ductile.serve",
        description="Serve ductile engines with Triton Inference Server (KServe v2 HTTP/gRPC).")
    ap.add_argument("--model", action="append", default=[], metavar="NAME=FILE.engine",
                    help="an engine to serve as model NAME (repeatable)")
    ap.add_argument("--http-port", type=int, default=8000)
    ap.add_argument("--grpc-port", type=int, default=8001)
    ap.add_argument("--metrics-port", type=int, default=8002, help="Prometheus; 0: off")
    ap.add_argument("--address", default="127.0.0.1",
                    help="address every endpoint binds to (default: loopback only)")
    ap.add_argument("--instances", type=int, default=1,
                    help="model instances (Triton instance_group count), each with its own "
                         "execution contexts on the model's one engine (loaded once, in this "
                         "process; an exported repository loads it in each instance)")
    ap.add_argument("--max-batch", type=int, default=None,
                    help="largest batch one execute runs (default: the profile's max batch; "
                         "0: no batch dim)")
    ap.add_argument("--max-queue-delay-us", type=int, default=100,
                    help="how long Triton's dynamic batcher waits to gather requests")
    ap.add_argument("--no-dynamic-batching", action="store_true",
                    help="each request runs alone (requests keep their batch dim)")
    ap.add_argument("--threads", type=int, default=0,
                    help="threads of each execution context (0: the library's default)")
    ap.add_argument("--log", default=None, help="write Triton's log to this file")
    ap.add_argument("--export-repository", metavar="DIR", default=None,
                    help="write the Triton model repository to DIR and exit")
    ap.add_argument("--manifest", metavar="FILE", default=None,
                    help="with --export-repository: also write a KServe InferenceService")
    ap.add_argument("--storage-uri", default="pvc://ductile-models/repository",
                    help="where the cluster finds the exported repository")
    ap.add_argument("--service-name", default="ductile")
    ap.add_argument("--image", default="ductile-triton:latest",
                    help="the serving image (deploy/Dockerfile)")
    ap.add_argument("--min-replicas", type=int, default=1)
    ap.add_argument("--max-replicas", type=int, default=4)
    ap.add_argument("--gpu-arch", default=None, metavar="MAJOR.MINOR",
                    help="serve on GPU nodes of this compute capability, the one the engines "
                         "were built for (9.0: H100, H200); default: CPU nodes")
    args = ap.parse_args(argv)
    if not args.model:
        ap.error("at least one --model NAME=FILE.engine is required")
    for flag, low in (("instances", 1), ("min_replicas", 0), ("max_replicas", 1)):
        if getattr(args, flag) < low:
            ap.error(f"--{flag.replace('_', '-')} must be at least {low}")
    if args.min_replicas > args.max_replicas:
        ap.error("--min-replicas is more than --max-replicas")
    if args.max_queue_delay_us < 0 or args.threads < 0:
        ap.error("--max-queue-delay-us and --threads must be >= 0")
    if args.manifest and not args.export_repository:
        ap.error("--manifest goes with --export-repository")
    if args.gpu_arch is not None and not re.fullmatch(r"\d+\.\d+", args.gpu_arch):
        ap.error(f"--gpu-arch '{args.gpu_arch}': expected MAJOR.MINOR, e.g. 9.0")
    return args


def export(args, repository, import_path=None, host_for=None):
    """Writes the repository; returns the model names. host_for(index, name, path): for
    local serving, (the socket of the host that holds this model's engine, its Signature)."""
    from .repository import export_model, parse_model_arg
    names = []
    for i, text in enumerate(args.model):
        name, path = parse_model_arg(text)
        if name in names:
            raise ValueError(f"--model '{text}': the name '{name}' is given twice")
        socket_path, sig = host_for(i, name, path) if host_for else (None, None)
        export_model(repository, name, path, instances=args.instances,
                     max_batch=args.max_batch, queue_delay_us=args.max_queue_delay_us,
                     dynamic_batching=not args.no_dynamic_batching, threads=args.threads,
                     import_path=import_path, signature=sig, host_socket=socket_path)
        names.append(name)
    return names


_SAY_LOCK = threading.Lock()


def _say(line):
    """One whole line at a time: the hosts' serve threads log concurrently, and print()
    writes the text and its newline apart (CI saw two lines run together)."""
    with _SAY_LOCK:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def _hosts(args, work, hosts):
    """host_for for export(): loads each engine once, here, and makes the host its instances
    attach to (host.py); the hosts start once the repository validated every model."""
    from ..engine import load_engine
    from .host import ModelHost
    from .runner import EngineRunner
    from .signature import read_signature

    def host_for(i, name, path):
        engine = load_engine(path)
        sig = read_signature(engine)
        max_batch = sig.max_batch if args.max_batch is None else args.max_batch
        socket_path = os.path.join(work, f"model{i}.sock")
        hosts.append(ModelHost(name, socket_path,
                               lambda: EngineRunner(engine, threads=args.threads), max_batch,
                               log=_say))
        _say(f"ductile.serve: {name}: loaded {path} once ({os.path.getsize(path)} bytes) in "
             f"pid {os.getpid()}, for {args.instances} instance(s)")
        return socket_path, sig
    return host_for


def serve(args):
    from .server import TritonServer, missing_reason, stub_mismatch
    why = missing_reason()
    if why:
        print(f"ductile.serve: cannot serve: {why}", file=sys.stderr)
        return 2
    warning = stub_mismatch()
    if warning:
        print(f"ductile.serve: warning: {warning}", file=sys.stderr, flush=True)
    work = tempfile.mkdtemp(prefix="ductile-serve-")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    server = None
    hosts = []
    try:
        names = export(args, os.path.join(work, "repository"),
                       host_for=_hosts(args, work, hosts))
        for host in hosts:
            host.start()
        log = args.log or os.path.join(work, "triton.log")
        server = TritonServer(os.path.join(work, "repository"), args.http_port, args.grpc_port,
                              args.metrics_port or None, address=args.address, log_path=log,
                              own_group=False)
        server.start()
        try:
            server.wait_ready(timeout_s=120)
        except RuntimeError as e:
            print(f"ductile.serve: {e}", file=sys.stderr)
            return 1
        metrics = (f", metrics http://{args.address}:{args.metrics_port}/metrics"
                   if args.metrics_port else "")
        print(f"ductile.serve: serving {', '.join(names)} on http://{server.http_url} and "
              f"grpc {server.grpc_url}{metrics}", flush=True)
        while not stop.wait(0.5):
            if server.proc.poll() is not None:
                print(f"ductile.serve: tritonserver exited with status {server.proc.returncode}"
                      f"\n{server.log_tail()}", file=sys.stderr)
                return 1
        print("ductile.serve: stopping", flush=True)
        return 0
    finally:
        for host in hosts:
            host.closing = True
        if server is not None:
            server.stop()
        for host in hosts:
            host.stop()
        shutil.rmtree(work, ignore_errors=True)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.export_repository:
            names = export(args, args.export_repository)
            print(f"ductile.serve: wrote {', '.join(names)} to {args.export_repository}")
            if args.manifest:
                from .manifest import inference_service
                text = inference_service(args.service_name, args.storage_uri, args.image,
                                         args.min_replicas, args.max_replicas,
                                         args.gpu_arch)
                with open(args.manifest, "w", encoding="utf-8") as f:
                    f.write(text)
                print(f"ductile.serve: wrote {args.manifest}")
            return 0
        return serve(args)
    except (ValueError, Error) as e:
        print(f"ductile.serve: {e}", file=sys.stderr)
        return 2
