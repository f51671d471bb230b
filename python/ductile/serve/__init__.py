"""Serving ductile engines with Triton Inference Server (KServe v2 HTTP/gRPC, dynamic
batching, model instances, health, Prometheus metrics):

    python -m ductile.serve --model NAME=FILE.engine [--model ...] --http-port P --grpc-port Q
    python -m ductile.serve --model NAME=FILE.engine --export-repository DIR [--manifest F]

cli.py (the command), signature.py (the engine's I/O as Triton sees it), repository.py (the
model repository), triton_model.py (the Python backend model), host.py (each model's one
engine, in the serve process, shared by its instances) and wire.py (what instances send it),
runner.py (an instance's contexts on the engine), batcher.py (dynamic batching inside the
profiles), server.py (the bundled server), manifest.py (KServe). The server and its client
come from requirements-serve.txt.
"""
