"""KServe manifests for an exported repository: the ServingRuntime (Triton in the image that
deploy/Dockerfile builds, with ductile installed for the Python backend) and the
InferenceService that serves the repository with it. One home for both texts;
deploy/*.yaml are rendered from here and tests/python/test_serve_repository.py checks they
still match.

Scaling out: KServe runs min..max replicas of the predictor, each a Triton serving the whole
repository. Engines are built for one backend and, on GPUs, one architecture (the CUDA
backend compiles for sm_90), so a GPU service pins its pods to nodes whose GPUs have that
compute capability (GPU feature discovery's labels; H100 and H200 are both 9.0); CPU
services land on any x86-64 node.
"""

RUNTIME_NAME = "ductile-triton"

SERVING_RUNTIME = """\
apiVersion: serving.kserve.io/v1alpha1
kind: ServingRuntime
metadata:
  name: {runtime}
spec:
  annotations:
    prometheus.kserve.io/port: "8002"
    prometheus.kserve.io/path: /metrics
  supportedModelFormats:
    - name: triton
      version: "2"
      autoSelect: false
  protocolVersions:
    - v2
    - grpc-v2
  containers:
    - name: kserve-container
      image: {image}
      args:
        - tritonserver
        - --model-repository=/mnt/models
        - --http-port=8080
        - --grpc-port=9000
        - --metrics-port=8002
        - --strict-readiness=true
        - --exit-timeout-secs=30
      ports:
        - containerPort: 8080
          protocol: TCP
"""

INFERENCE_SERVICE = """\
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: {name}
  annotations:
    serving.kserve.io/enable-prometheus-scraping: "true"
spec:
  predictor:
    minReplicas: {min_replicas}
    maxReplicas: {max_replicas}
    scaleMetric: concurrency
    scaleTarget: 16
    nodeSelector:
{node_selector}
    model:
      modelFormat:
        name: triton
        version: "2"
      runtime: {runtime}
      protocolVersion: v2
      storageUri: {storage_uri}
      resources:
        requests:
{requests}
        limits:
{limits}
"""


def _block(mapping, indent):
    return "\n".join(f"{' ' * indent}{k}: {v}" for k, v in mapping.items())


def serving_runtime(image):
    return SERVING_RUNTIME.format(runtime=RUNTIME_NAME, image=image)


def inference_service(name, storage_uri, image, min_replicas=1, max_replicas=4,
                      gpu_arch=None):
    """The ServingRuntime and the InferenceService, as one YAML stream of two documents.
    gpu_arch: "MAJOR.MINOR", the compute capability the engines were built for (one service
    per architecture); None: CPU nodes."""
    if gpu_arch:
        major, _, minor = gpu_arch.partition(".")
        if not (major.isdigit() and minor.isdigit()):
            raise ValueError(f"--gpu-arch '{gpu_arch}': expected MAJOR.MINOR, e.g. 9.0")
        selector = {"nvidia.com/gpu.compute.major": f'"{major}"',
                    "nvidia.com/gpu.compute.minor": f'"{minor}"'}
        requests = {"cpu": '"4"', "memory": "8Gi", "nvidia.com/gpu": '"1"'}
        limits = {"cpu": '"8"', "memory": "16Gi", "nvidia.com/gpu": '"1"'}
    else:
        selector = {"kubernetes.io/arch": "amd64"}
        requests = {"cpu": '"4"', "memory": "8Gi"}
        limits = {"cpu": '"8"', "memory": "16Gi"}
    service = INFERENCE_SERVICE.format(
        name=name, runtime=RUNTIME_NAME, storage_uri=storage_uri, min_replicas=min_replicas,
        max_replicas=max_replicas, node_selector=_block(selector, 6),
        requests=_block(requests, 10), limits=_block(limits, 10))
    return serving_runtime(image) + "---\n" + service


# deploy/'s examples: file -> inference_service's arguments. Rewritten by
# `python -m ductile.serve.manifest deploy`; a test checks they match.
EXAMPLES = {
    "kserve-cpu.yaml": dict(name="ductile", storage_uri="pvc://ductile-models/repository",
                            image="ductile-triton:latest", min_replicas=1, max_replicas=8),
    "kserve-sm90.yaml": dict(name="ductile-sm90", storage_uri="pvc://ductile-models/sm90",
                             image="ductile-triton:latest", min_replicas=1, max_replicas=4,
                             gpu_arch="9.0"),
}


def write_examples(folder):
    import os
    for filename, kwargs in EXAMPLES.items():
        with open(os.path.join(folder, filename), "w", encoding="utf-8") as f:
            f.write(inference_service(**kwargs))


if __name__ == "__main__":
    import sys
    write_examples(sys.argv[1] if len(sys.argv) > 1 else "deploy")
