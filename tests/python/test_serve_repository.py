"""More than one machine: `python -m ductile.serve --export-repository DIR --manifest FILE`
writes the Triton model repository and the KServe manifests that serve it. No cluster runs
here, so: config.pbtxt is parsed with Triton's own ModelConfig protobuf (tritonclient's);
the exported model.py runs through a stand-in of Triton's Python backend API, its outputs
against onnxruntime; the manifests are parsed as YAML and checked field by field; deploy/'s
examples must be what the generator writes."""
import importlib.util
import json
import pathlib
import sys

import numpy as np
import pytest

from ductile.serve import manifest
from ductile.serve.cli import main
from ductile.serve.repository import MODEL_PY
from serve_help import ENGINES, Request as _Request, build_engine, stand_in_backend
from util import REPO, assert_close, model_path, ort_run, ort_session


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    d = tmp_path_factory.mktemp("export")
    bert = build_engine("bert", str(d / "bert.engine"))
    sr = build_engine("sr", str(d / "sr.engine"))
    repo, mf = d / "repository", d / "kserve.yaml"
    rc = main(["--model", f"bert={bert}", "--model", f"sr={sr}", "--instances", "3",
               "--max-batch", "2", "--max-queue-delay-us", "500", "--export-repository",
               str(repo), "--manifest", str(mf), "--storage-uri", "s3://models/ductile",
               "--image", "registry.example/ductile-triton:1", "--min-replicas", "2",
               "--max-replicas", "6"])
    assert rc == 0
    return {"repo": repo, "manifest": mf, "engines": {"bert": bert, "sr": sr}}


def model_config(path):
    mc = pytest.importorskip("tritonclient.grpc.model_config_pb2",
                             reason="tritonclient (requirements-serve.txt) parses config.pbtxt")
    from google.protobuf import text_format
    return text_format.Parse(pathlib.Path(path).read_text(), mc.ModelConfig())


def test_repository_layout_and_config_as_triton_reads_it(exported):
    repo = exported["repo"]
    assert sorted(p.name for p in repo.iterdir()) == ["bert", "sr"]
    for name in ("bert", "sr"):
        assert sorted(str(p.relative_to(repo / name)) for p in (repo / name).rglob("*")) == \
            ["1", "1/model.engine", "1/model.py", "config.pbtxt"]
        assert (repo / name / "1" / "model.engine").read_bytes() == \
            pathlib.Path(exported["engines"][name]).read_bytes()
        # Exported for a cluster: imports the installed ductile, no local path.
        assert (repo / name / "1" / "model.py").read_text() == MODEL_PY.format(path="")

    mc = pytest.importorskip("tritonclient.grpc.model_config_pb2")
    c = model_config(repo / "sr" / "config.pbtxt")
    # Triton's bound is far above the profile's (requests beyond it get ductile's message);
    # the profile's max batch is the model's own parameter.
    assert (c.name, c.backend, c.max_batch_size) == ("sr", "python", 65536)
    assert c.parameters["max_batch"].string_value == "2"
    assert [(t.name, t.data_type, list(t.dims)) for t in c.input] == \
        [("input", mc.TYPE_FP32, [1, -1, -1])]
    assert [(t.name, list(t.dims)) for t in c.output] == [("output", [1, -1, -1])]
    assert c.dynamic_batching.max_queue_delay_microseconds == 500
    assert [(g.count, g.kind) for g in c.instance_group] == \
        [(3, mc.ModelInstanceGroup.KIND_CPU)]
    assert c.parameters["engine"].string_value == "model.engine"

    c = model_config(repo / "bert" / "config.pbtxt")
    assert [(t.name, list(t.dims)) for t in c.input] == [("input_ids", [-1]),
                                                         ("attention_mask", [-1])]
    assert [(t.name, list(t.dims)) for t in c.output] == [("last_hidden_state", [-1, 256])]


def test_exported_model_runs_through_the_python_backend_api(exported, monkeypatch):
    from google.protobuf import json_format
    fake = stand_in_backend()
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", fake)
    import ductile.serve.triton_model as tm
    monkeypatch.setattr(tm, "pb_utils", fake)
    repo = exported["repo"]
    spec = importlib.util.spec_from_file_location("exported_bert", repo / "bert/1/model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.TritonPythonModel()
    # What Triton hands initialize: the config as JSON with the proto's field names.
    config = json_format.MessageToDict(model_config(repo / "bert" / "config.pbtxt"),
                                       preserving_proto_field_name=True)
    model.initialize({"model_config": json.dumps(config), "model_repository":
                      str(repo / "bert"), "model_version": "1"})

    rng = np.random.default_rng(0)
    feeds = [{"input_ids": rng.integers(0, 2048, size=(1, n), dtype=np.int64),
              "attention_mask": np.ones((1, n), np.int64)} for n in (7, 7, 70, 7)]
    responses = model.execute([_Request(f) for f in feeds])
    assert responses[2].error.code == "INVALID_ARG"
    assert responses[2].error.message == ("input 'input_ids' dimension 1 (seq) is 70, outside "
                                          "the range 1..64 of profile 0")
    assert model.stats.batches == [2, 1]  # max batch 2 as exported
    session = ort_session(model_path(ENGINES["bert"][0]))
    for i in (0, 1, 3):
        assert responses[i].error is None
        [t] = responses[i].output_tensors
        assert t.name == "last_hidden_state"
        assert_close(t.array, ort_run(None, feeds[i], session=session)["last_hidden_state"])


def test_manifest_serves_the_repository_with_triton(exported):
    yaml = pytest.importorskip("yaml", reason="PyYAML (requirements-serve.txt) reads it")
    runtime, service = list(yaml.safe_load_all(exported["manifest"].read_text()))
    assert (runtime["apiVersion"], runtime["kind"]) == ("serving.kserve.io/v1alpha1",
                                                         "ServingRuntime")
    assert runtime["metadata"]["name"] == manifest.RUNTIME_NAME
    assert runtime["spec"]["supportedModelFormats"][0]["name"] == "triton"
    [container] = runtime["spec"]["containers"]
    assert container["image"] == "registry.example/ductile-triton:1"
    assert container["args"][:2] == ["tritonserver", "--model-repository=/mnt/models"]
    assert "--http-port=8080" in container["args"] and "--grpc-port=9000" in container["args"]

    assert (service["apiVersion"], service["kind"]) == ("serving.kserve.io/v1beta1",
                                                        "InferenceService")
    predictor = service["spec"]["predictor"]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (2, 6)
    assert predictor["nodeSelector"] == {"kubernetes.io/arch": "amd64"}
    model = predictor["model"]
    assert model["runtime"] == manifest.RUNTIME_NAME
    assert model["modelFormat"]["name"] == "triton"
    assert model["storageUri"] == "s3://models/ductile"
    assert "nvidia.com/gpu" not in model["resources"]["limits"]


def test_gpu_manifest_pins_the_engines_architecture():
    yaml = pytest.importorskip("yaml", reason="PyYAML (requirements-serve.txt) reads it")
    _, service = yaml.safe_load_all(manifest.inference_service(
        "d", "pvc://m/r", "img", gpu_arch="9.0"))
    predictor = service["spec"]["predictor"]
    assert predictor["nodeSelector"] == {"nvidia.com/gpu.compute.major": "9",
                                         "nvidia.com/gpu.compute.minor": "0"}
    assert predictor["model"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    with pytest.raises(ValueError) as e:
        manifest.inference_service("d", "pvc://m/r", "img", gpu_arch="hopper")
    assert str(e.value) == "--gpu-arch 'hopper': expected MAJOR.MINOR, e.g. 9.0"


def test_deploy_examples_are_what_the_generator_writes():
    for filename, kwargs in manifest.EXAMPLES.items():
        assert (REPO / "deploy" / filename).read_text() == manifest.inference_service(**kwargs), \
            f"deploy/{filename} is stale: python -m ductile.serve.manifest deploy"


@pytest.mark.parametrize("arg, message", [
    ("bert", "--model 'bert': expected NAME=FILE.engine"),
    ("Bert=x.engine", "--model 'Bert=x.engine': the name 'Bert' must be 1 to 63 lowercase "
                      "letters, digits, '-' or '_', starting and ending with a letter or digit"),
    ("bert=/nonexistent.engine", "--model 'bert=/nonexistent.engine': no engine file at "
                                 "'/nonexistent.engine'"),
])
def test_bad_model_arguments_are_refused_by_name(arg, message, tmp_path, capsys):
    assert main(["--model", arg, "--export-repository", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err == f"ductile.serve: {message}\n"


def test_readme_serving_commands_run(tmp_path):
    """README's "Serving" block: the export command runs (engines of the suite's models in
    tmp), the serving command's flags parse (test_serve.py serves with the same ones), the
    make targets exist."""
    import shlex
    import subprocess
    from test_cli import readme_block
    from ductile.serve.cli import parse_args
    if "\n## Serving\n" not in (REPO / "README.md").read_text():
        pytest.skip("README.md has no Serving section yet")
    script = readme_block("Serving", "sh").replace("\\\n", " ")
    files = {"superres.engine": build_engine("sr", str(tmp_path / "sr.engine")),
             "bert_small.engine": build_engine("bert", str(tmp_path / "bert.engine")),
             "repo": str(tmp_path / "repo"), "kserve.yaml": str(tmp_path / "kserve.yaml")}
    ran = []
    for line in script.splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        if words[0] == "make":
            r = subprocess.run(["make", "-n", "-C", str(REPO), *words[1:]],
                               capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stderr
            ran.append(words[1])
            continue
        assert words[:4] == ["PYTHONPATH=python", ".venv/bin/python", "-m", "ductile.serve"]
        args = [w.split("=", 1)[0] + "=" + files[w.split("=", 1)[1]]
                if "=" in w and w.split("=", 1)[1] in files else files.get(w, w)
                for w in words[4:]]
        if "--export-repository" in args:
            assert main(args) == 0
            assert (tmp_path / "repo" / "sr" / "config.pbtxt").is_file()
            assert (tmp_path / "kserve.yaml").is_file()
            ran.append("export")
        else:
            parse_args(args)
            ran.append("serve")
    assert ran == ["serve-deps", "serve", "export", "serve-bench"]


def test_bad_flags_are_refused_before_anything_is_written(exported, tmp_path, capsys):
    bert = exported["engines"]["bert"]
    with pytest.raises(SystemExit) as e:
        main(["--model", f"bert={bert}", "--export-repository", str(tmp_path / "r"),
              "--manifest", str(tmp_path / "m.yaml"), "--gpu-arch", "hopper"])
    assert e.value.code == 2
    assert capsys.readouterr().err.endswith(
        "python -m ductile.serve: error: --gpu-arch 'hopper': expected MAJOR.MINOR, e.g. 9.0\n")
    assert main(["--model", f"bert={bert}", "--export-repository", str(tmp_path / "r"),
                 "--max-batch", "5"]) == 2
    assert capsys.readouterr().err == (
        "ductile.serve: model 'bert': max batch 5 is outside 0..4, the largest batch the "
        "engine's profiles accept\n")
    assert not (tmp_path / "m.yaml").exists() and not (tmp_path / "r" / "bert").exists()
