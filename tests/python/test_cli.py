"""The `ductile` CLI end to end: build each model of the suite with a profile, run it at the
profile's min, opt, max and an odd shape with --loadInputs/--exportOutput, and compare with
onnxruntime; plus the command-line errors a user meets first."""
import json
import os
import re
import subprocess
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

import util

REPO = util.REPO
# DUCTILE_CLI points at another build of the binary (default: build/ductile of this repo).
BIN = Path(os.environ.get("DUCTILE_CLI", REPO / "build" / "ductile"))
RUN_ONCE = ["--iterations=1", "--warmUp=0", "--duration=0"]


def dims(shape):
    return "x".join(str(d) for d in shape)


def spec(shapes):
    return ",".join(f"{name}:{dims(shape)}" for name, shape in shapes.items())


# The profiles the CLI is tested with (superres's opt is trtexec-guide's 224, not util's 256),
# and the batch/size of each run: min, opt, max, then one that is none of them.
CASES = {
    "superres": (
        {"input": ((1, 1, 64, 64), (1, 1, 224, 224), (4, 1, 512, 512))},
        [(1, 1, 64, 64), (1, 1, 224, 224), (4, 1, 512, 512), (2, 1, 333, 301)]),
    "seg_lraspp": (
        {"input_1": ((1, 3, 512, 512), (1, 3, 1024, 1024), (1, 3, 1600, 1600))},
        [(1, 3, 512, 512), (1, 3, 1024, 1024), (1, 3, 1600, 1600), (1, 3, 777, 555)]),
    "mobilenet_v2": (
        {"input": ((1, 3, 224, 224), (8, 3, 224, 224), (32, 3, 224, 224))},
        [(1, 3, 224, 224), (8, 3, 224, 224), (32, 3, 224, 224), (7, 3, 224, 224)]),
    "bert_small": (
        {name: ((1, 1), (4, 128), (8, 512)) for name in ("input_ids", "attention_mask")},
        [(1, 1), (4, 128), (8, 512), (3, 77)]),
    "superres_op10_dynbatch": (
        {"input": ((1, 1, 224, 224), (4, 1, 224, 224), (8, 1, 224, 224))},
        [(1, 1, 224, 224), (4, 1, 224, 224), (8, 1, 224, 224), (3, 1, 224, 224)]),
}


def run_cli(*args, timeout=900, env=None):
    if not BIN.exists():
        pytest.skip(f"{BIN} is not built (run make)")
    return subprocess.run([str(BIN), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env=None if env is None else {**os.environ, **env})


def model_path(model):
    return util.model_path(util.MODELS[model].filename)


def profile_flags(profile):
    return [f"--{which}Shapes=" + spec({name: ranges[k] for name, ranges in profile.items()})
            for k, which in enumerate(("min", "opt", "max"))]


@lru_cache(maxsize=None)
def ort_session(model):
    return util.ort_session(model_path(model))


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    """One engine file per model, built on first use with --skipInference."""
    folder = tmp_path_factory.mktemp("engines")
    built = {}

    def get(model):
        if model not in built:
            path = folder / f"{model}.engine"
            r = run_cli(f"--onnx={model_path(model)}", *profile_flags(CASES[model][0]),
                        f"--saveEngine={path}", "--skipInference")
            assert r.returncode == 0, r.stderr
            assert "Inference skipped" in r.stdout
            built[model] = path
        return built[model]

    return get


@pytest.mark.parametrize("model,index", [(m, i) for m in CASES for i in range(4)],
                         ids=[f"{m}-{dims(CASES[m][1][i])}" for m in CASES for i in range(4)])
def test_cli_output_matches_onnxruntime(model, index, engines, tmp_path):
    engine = engines(model)
    shape = CASES[model][1][index]
    # Every input of a model of the suite has the same shape (bert: ids and mask).
    inputs = util.random_feeds(util.MODELS[model], {name: shape for name in CASES[model][0]},
                               seed=index)
    load = []
    for name, array in inputs.items():
        path = tmp_path / f"{name}.bin"
        array.tofile(path)
        load.append(f"{name}:{path}")
    out = tmp_path / "out.json"
    r = run_cli(f"--loadEngine={engine}",
                "--shapes=" + spec({name: a.shape for name, a in inputs.items()}),
                "--loadInputs=" + ",".join(load), f"--exportOutput={out}", *RUN_ONCE)
    assert r.returncode == 0, r.stderr
    assert "Latency: min = " in r.stdout and "percentile(99%)" in r.stdout
    assert "Throughput: " in r.stdout

    exported = json.loads(out.read_text())
    session = ort_session(model)
    expected = session.run(None, inputs)
    names = [o.name for o in session.get_outputs()]
    assert [o["name"] for o in exported] == names
    for item, ref in zip(exported, expected):
        assert item["dimensions"] == dims(ref.shape), item["name"]
        got = np.asarray(item["values"], dtype=ref.dtype).reshape(ref.shape)
        util.assert_close(got, ref, what=f"{model} {item['name']} at {dims(shape)}")


def test_unknown_flag_is_refused_by_name():
    r = run_cli("--foo=3")
    assert r.returncode == 2
    assert r.stderr == "error: unknown flag '--foo'\n"


def test_malformed_value_names_flag_and_value():
    r = run_cli("--onnx=x.onnx", "--iterations=ten")
    assert r.returncode == 2
    assert r.stderr.startswith("error: invalid value for --iterations: 'ten'")
    r = run_cli("--onnx=x.onnx", "--minShapes=input:1x", "--optShapes=input:1",
                "--maxShapes=input:1")
    assert r.returncode == 2
    assert "--minShapes" in r.stderr and "'input:1x'" in r.stderr


def test_incomplete_profile_triple_is_refused():
    r = run_cli("--onnx=x.onnx", "--minShapes=input:1", "--optShapes=input:1")
    assert r.returncode == 2
    assert "must be given together" in r.stderr


def test_help_lists_flags_and_random_data():
    r = run_cli("--help")
    assert r.returncode == 0
    for flag in ("--onnx", "--minShapes", "--loadInputs", "--exportOutput", "--memPoolSize",
                 "--dynamicDims"):
        assert flag in r.stdout
    assert "[-1, 1)" in r.stdout and "mask" in r.stdout


def test_missing_model_is_a_library_error():
    r = run_cli("--onnx=/nonexistent/model.onnx")
    assert r.returncode == 1
    assert r.stderr.startswith("error: DUCTILE_ERR_")


def test_shape_outside_profile_exits_1_with_library_message(engines):
    r = run_cli(f"--loadEngine={engines('superres')}", "--shapes=input:1x1x1000x224", *RUN_ONCE)
    assert r.returncode == 1
    line = r.stderr.strip()
    assert line.startswith("error: DUCTILE_ERR_SHAPE: "), line
    assert "'input'" in line and "1000" in line


def test_load_inputs_with_wrong_size_gives_exact_message(engines, tmp_path):
    path = tmp_path / "short.bin"
    np.zeros(10, dtype=np.float32).tofile(path)
    r = run_cli(f"--loadEngine={engines('superres')}", "--shapes=input:1x1x64x64",
                f"--loadInputs=input:{path}", *RUN_ONCE)
    assert r.returncode == 1
    assert r.stderr == (f"error: --loadInputs: input 'input' (1x1x64x64) needs 16384 bytes "
                        f"but '{path}' has 40 bytes\n")


def test_unnamed_inputs_run_at_opt_with_random_data(engines):
    r = run_cli(f"--loadEngine={engines('bert_small')}", *RUN_ONCE)
    assert r.returncode == 0, r.stderr
    assert "input_ids: 4x128 (random data)" in r.stdout
    assert "attention_mask: 4x128 (random data)" in r.stdout


def test_first_runs_and_context_memory_are_reported(engines):
    """The first execute at the shapes and the second are timed apart from the steady state,
    and the summary gives the context's memory (host memory on the CPU: no graph recorded)."""
    r = run_cli(f"--loadEngine={engines('superres')}", "--shapes=input:1x1x64x64", "--cudaGraphs=4",
                *RUN_ONCE)
    assert r.returncode == 0, r.stderr
    first = re.search(r"^First run: ([0-9.]+) ms \(the first execute at these shapes\)$", r.stdout, re.M)
    second = re.search(r"^Second run: ([0-9.]+) ms$", r.stdout, re.M)
    memory = re.search(r"^Host memory: ([0-9.]+) MiB \(the context's: activations, scratch, I/O buffers, "
                       r"workspace\)$", r.stdout, re.M)
    assert first and second and memory, r.stdout
    assert float(memory.group(1)) > 0
    assert r.stdout.index("First run") < r.stdout.index("Timed runs") < r.stdout.index("Host memory")
    r = run_cli(f"--loadEngine={engines('superres')}", "--useCudaGraph", *RUN_ONCE)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("value", ["-1", "4097", "x"])
def test_cuda_graphs_flag_value_is_checked(value):
    r = run_cli("--onnx=x.onnx", f"--cudaGraphs={value}")
    assert r.returncode == 2
    assert r.stderr == (f"error: invalid value for --cudaGraphs: '{value}' "
                        "(expected an integer in 0..4096 (0: off))\n")


def test_profile_index_out_of_range_is_refused(engines):
    r = run_cli(f"--loadEngine={engines('superres')}", "--profile=3", *RUN_ONCE)
    assert r.returncode == 1
    assert "--profile=3" in r.stderr


# ---- A new user's first mistakes: each gets a message that says what to write instead -------

@pytest.mark.parametrize("value,reason", [
    ("input_1:1,3,512,512",
     "dims are joined by 'x', not by ',' which separates inputs: write input_1:1x3x512x512"),
    ("a:1x2,b:3,4", "dims are joined by 'x', not by ',' which separates inputs: write a:1x2,b:3x4"),
    ("1x3x224x224", "'1x3x224x224' has no input name: write name:dims, as input:1x3x224x224"),
    ("a:1x3x224x224,1x3", "'1x3' has no input name: write name:dims, as input:1x3"),
    ("input_1:1x3x512X512",
     "bad dims '1x3x512X512': dims are joined by a lowercase 'x', as 1x3x512x512"),
    ("input_1:1x3x-1x-1",
     "negative dim in '1x3x-1x-1': a shape spec gives sizes; the range of a dynamic dim goes "
     "in --minShapes/--optShapes/--maxShapes"),
    ("input_1:1x3x64x64,", "trailing ',' with no name:dims after it"),
    ("a:1,,b:2", "empty item: two ',' in a row or a leading ','"),
])
def test_shape_spec_mistakes_say_what_to_write(value, reason):
    for flag in ("shapes", "minShapes"):
        r = run_cli("--onnx=x.onnx", f"--{flag}={value}")
        assert r.returncode == 2
        assert r.stderr == f"error: invalid value for --{flag}: '{value}' ({reason})\n"


@pytest.mark.parametrize("args,message", [
    (["--iteratons=3"], "error: unknown flag '--iteratons' (did you mean --iterations?)"),
    (["--minshapes=a:1"], "error: unknown flag '--minshapes' (did you mean --minShapes?)"),
    (["--shape=a:1"], "error: unknown flag '--shape' (did you mean --shapes?)"),
    (["--fp32"], "error: unknown flag '--fp32'"),
    (["--workspace=64"],
     "error: unknown flag '--workspace' (trtexec's old spelling: use --memPoolSize=workspace:<N>)"),
    (["-onnx=m.onnx"], "error: unexpected argument '-onnx=m.onnx' (flags start with '--': "
                       "--onnx=m.onnx)"),
    (["--onnx", "m.onnx"], "error: --onnx needs its value after '=': --onnx=m.onnx"),
])
def test_flag_mistakes_name_the_flag_meant(args, message):
    r = run_cli(*args)
    assert r.returncode == 2
    assert r.stderr == message + "\n"


def test_engine_file_given_to_onnx_points_to_load_engine(engines):
    engine = engines("superres")
    r = run_cli(f"--onnx={engine}")
    assert r.returncode == 1
    why = ("this is a ductile engine file (magic \"DUCTILE\" at byte offset 0), not an ONNX "
           "model: load it with ductile_engine_load_file (Python: ductile.load_engine, CLI: "
           "--loadEngine)")
    assert r.stderr == f"error: DUCTILE_ERR_PARSE: {engine.name}: {why}\n"
    # The library says it, so Python's parser says the same, from a file or from bytes.
    import ductile
    with pytest.raises(ductile.Error) as e:
        ductile.Builder().parse_onnx(str(engine))
    assert str(e.value) == f"{engine.name}: {why}" and e.value.status == "DUCTILE_ERR_PARSE"
    with pytest.raises(ductile.Error) as e:
        ductile.Builder().parse_onnx_bytes(engine.read_bytes())
    assert str(e.value) == why


def test_onnx_file_given_to_load_engine_points_to_onnx():
    model = model_path("superres")
    r = run_cli(f"--loadEngine={model}")
    assert r.returncode == 1
    assert r.stderr == (f"error: DUCTILE_ERR_FORMAT: {model}: not a ductile engine: bad magic at "
                        f"byte offset 0 (the file starts as an ONNX model does: build it with "
                        f"--onnx={model})\n")


def test_dynamic_model_without_shape_flags_names_the_flags_to_add():
    r = run_cli(f"--onnx={model_path('seg_lraspp')}")
    assert r.returncode == 1
    spec_ = "input_1:1x3x<image_height>x<image_width>"
    assert r.stderr == (
        f"error: input 'input_1' has dynamic dims [1,3,-1,-1]: add --minShapes/--optShapes/"
        f"--maxShapes={spec_} (a range of shapes) or --shapes={spec_} (one shape), with sizes "
        f"for <...>\n")
    r = run_cli(f"--onnx={model_path('bert_small')}")
    assert r.returncode == 1
    spec_ = "input_ids:<batch>x<seq>,attention_mask:<batch>x<seq>"
    assert r.stderr == (
        f"error: inputs 'input_ids' [-1,-1], 'attention_mask' [-1,-1] have dynamic dims: add "
        f"--minShapes/--optShapes/--maxShapes={spec_} (a range of shapes) or --shapes={spec_} "
        f"(one shape), with sizes for <...>\n")


def test_dynamic_input_left_out_of_the_shape_flags_is_named():
    bert = f"--onnx={model_path('bert_small')}"
    r = run_cli(bert, "--shapes=input_ids:1x8")
    assert r.returncode == 1
    assert r.stderr == ("error: input 'attention_mask' has dynamic dims [-1,-1] but is not in "
                        "--shapes: add attention_mask:<batch>x<seq> to it, with sizes for <...>\n")
    r = run_cli(bert, "--minShapes=input_ids:1x8", "--optShapes=input_ids:1x8",
                "--maxShapes=input_ids:1x8")
    assert r.returncode == 1
    assert r.stderr == ("error: profile 0: input 'attention_mask' has dynamic dims [-1,-1] but is "
                        "not in --minShapes/--optShapes/--maxShapes: add "
                        "attention_mask:<batch>x<seq> to each, with sizes for <...>\n")


def test_wrong_name_in_shape_flags_lists_the_inputs(engines):
    onnx = f"--onnx={model_path('superres')}"
    cases = [
        ([onnx, "--shapes=inptu:1x1x8x8"],
         "--shapes: 'inptu' is not an input of the network (inputs: 'input')"),
        ([onnx, "--shapes=output:1x1x8x8"],
         "--shapes: 'output' is an output of the network, not an input (inputs: 'input')"),
        ([onnx] + [f"--{w}Shapes=/c1/Conv_output_0:1" for w in ("min", "opt", "max")],
         "--minShapes: '/c1/Conv_output_0' is an intermediate tensor of the network, not an "
         "input (inputs: 'input')"),
        ([f"--loadEngine={engines('superres')}", "--shapes=inptu:1x1x8x8"],
         "--shapes: 'inptu' is not an input of the engine (inputs: 'input')"),
        ([f"--loadEngine={engines('superres')}", "--shapes=output:1x1x8x8"],
         "--shapes: 'output' is an output of the engine, not an input (inputs: 'input')"),
        ([f"--loadEngine={engines('superres')}", "--loadInputs=output:/dev/null"],
         "--loadInputs: 'output' is an output of the engine, not an input (inputs: 'input')"),
    ]
    for args, message in cases:
        r = run_cli(*args, *RUN_ONCE)
        assert r.returncode == 1, args
        assert r.stderr == f"error: {message}\n"




BF16_LACKS = "warning: --bf16 on the CPU needs AVX512-BF16, which this CPU lacks; building float32\n"


def test_fp16_and_bf16_warn_once_where_the_cpu_lacks_them():
    # --fp16 / --bf16 build float32 on a CPU without AVX512-FP16 / AVX512-BF16, and say so.
    fp16_warn = "warning: --fp16 on the CPU needs AVX512-FP16, which this CPU lacks; "
    onnx = f"--onnx={model_path('superres')}"
    # DUCTILE_CPU_BF16=0, DUCTILE_CPU_FP16=0: the CPU taken as lacking both, as most do.
    no_half = {"DUCTILE_CPU_BF16": "0", "DUCTILE_CPU_FP16": "0"}
    for flags, want in ((["--fp16"], fp16_warn + "building float32\n"),
                        (["--bf16"], BF16_LACKS),
                        (["--fp16", "--bf16"], fp16_warn + "building float32\n" + BF16_LACKS)):
        for device in ([], ["--device=cpu"]):
            r = run_cli(onnx, "--shapes=input:1x1x8x8", *flags, *device, "--skipInference", "--dumpLayerInfo",
                        env=no_half)
            assert r.returncode == 0, r.stderr
            assert r.stderr == want
            assert '"BF16"' not in r.stdout and '"FP16"' not in r.stdout and "float16" not in r.stdout
    if "avx512_bf16" in util.cpu_flags():
        r = run_cli(onnx, "--shapes=input:1x1x8x8", "--bf16", "--skipInference", "--dumpLayerInfo")
        assert r.returncode == 0 and r.stderr == ""
        assert r.stdout.count('"BF16": true') == 4   # superres's four convolutions
        r = run_cli(onnx, "--shapes=input:1x1x8x8", "--fp16", "--bf16", "--skipInference", "--dumpLayerInfo",
                    env={"DUCTILE_CPU_FP16": "0"})
        assert r.returncode == 0 and r.stderr == fp16_warn + "--bf16 applies alone\n"
        assert r.stdout.count('"BF16": true') == 4
    if "avx512_fp16" in util.cpu_flags():
        r = run_cli(onnx, "--shapes=input:1x1x8x8", "--fp16", "--skipInference", "--dumpLayerInfo")
        assert r.returncode == 0 and r.stderr == ""
        assert r.stdout.count('"FP16": true') == 4 and "float16" not in r.stdout
        if "avx512_bf16" in util.cpu_flags():
            r = run_cli(onnx, "--shapes=input:1x1x8x8", "--fp16", "--bf16", "--skipInference", "--dumpLayerInfo")
            assert r.returncode == 0 and r.stderr == "warning: --fp16 on the CPU with --bf16: --bf16 applies alone\n"
            assert r.stdout.count('"BF16": true') == 4 and '"FP16"' not in r.stdout
    r = run_cli(onnx, "--shapes=input:1x1x8x8", "--tf32", "--skipInference", "--dumpLayerInfo")
    assert r.returncode == 0, r.stderr
    assert r.stderr == "warning: --tf32 has no effect: the CPU backend computes in float32\n"
    assert '"tf32"' not in r.stdout and "float16" not in r.stdout
    r = run_cli(onnx, "--shapes=input:1x1x8x8", "--skipInference")
    assert r.returncode == 0 and r.stderr == ""


# ---- The README's three workflows, run as written -----------------------------------------------

README = REPO / "README.md"


def readme_block(section, lang):
    """The first ```lang block after the heading `## section`."""
    text = README.read_text()
    start = text.index(f"## {section}\n")
    begin = text.index(f"```{lang}\n", start) + len(lang) + 4
    return text[begin:text.index("```\n", begin)]


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x.astype(np.float64)))


def test_readme_c_block_is_examples_workflow_c():
    assert readme_block("The workflow in C", "c") == (REPO / "examples/workflow.c").read_text()


@pytest.mark.parametrize("binary", ["workflow", "workflow_shared"])
def test_readme_c_program_runs_on_seg_lraspp(binary, tmp_path):
    """make test builds examples/workflow.c with the README's static and shared link lines."""
    exe = REPO / "build" / "examples" / binary
    if not exe.exists():
        pytest.skip(f"{exe} is not built (run make examples)")
    model = model_path("seg_lraspp")
    r = subprocess.run([str(exe), str(model), "input_1", str(tmp_path / "seg.engine")],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    # The program feeds 0.5 everywhere and prints the sigmoid output's shape and mean.
    want = sigmoid(ort_session("seg_lraspp").run(
        None, {"input_1": np.full((1, 3, 777, 555), 0.5, np.float32)})[0])
    name, rest = r.stdout.split(": ")
    shape, mean = rest.split(", mean ")
    assert name == "Sigmoid_0_output" and shape == dims(want.shape)
    assert abs(float(mean) - want.mean()) < 2e-6, (mean, want.mean())


def test_readme_cli_commands_run(tmp_path):
    script = readme_block("The workflow on the command line", "sh")
    model = model_path("seg_lraspp")
    assert script.count("build/ductile ") == 2 and "--onnx=seg_lraspp.onnx" in script
    if not BIN.exists():
        pytest.skip(f"{BIN} is not built (run make)")
    script = script.replace("build/ductile ", f"{BIN} ").replace("seg_lraspp.onnx", str(model))
    r = subprocess.run(["bash", "-ec", script], capture_output=True, text=True, timeout=900,
                       cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "percentile(90%)" in r.stdout and "percentile(99%)" in r.stdout
    # --iterations=20 is a minimum; the default --duration=3 may add runs.
    assert int(re.search(r"Timed runs: (\d+) iterations", r.stdout).group(1)) >= 20
    exported = json.loads((tmp_path / "out.json").read_text())
    assert [(o["name"], o["dimensions"]) for o in exported] == [("output_1", "1x1x777x555")]


def test_readme_python_snippet_runs_at_small_shapes(tmp_path, monkeypatch, capsys):
    code = readme_block("The workflow in Python", "python")
    # The README's sizes, made small so the test is quick: each replacement must still match.
    small = {"(1, 3, 512, 512), (1, 3, 1024, 1024), (1, 3, 1600, 1600)":
             "(1, 3, 64, 64), (1, 3, 128, 128), (1, 3, 256, 256)",
             "np.random.rand(1, 3, 777, 555)": "np.random.rand(1, 3, 97, 75)",
             '"seg_lraspp.onnx"': repr(str(model_path("seg_lraspp")))}
    for old, new in small.items():
        assert code.count(old) == 1, old
        code = code.replace(old, new)
    monkeypatch.chdir(tmp_path)
    np.random.seed(5)
    scope = {}
    exec(compile(code, "README.md", "exec"), scope)
    # What the snippet prints is what its comment says it prints.
    printed = capsys.readouterr().out
    comment = code.split("print(logits.shape, logits.dim_names)")[1].split("\n")[0]
    assert printed == comment.strip().lstrip("#").strip() + "\n"
    np.random.seed(5)
    image = np.random.rand(1, 3, 97, 75).astype(np.float32)
    want = sigmoid(ort_session("seg_lraspp").run(None, {"input_1": image})[0])
    (got,) = scope["outputs"].values()
    util.assert_close(got, want, what="README's Python snippet")


def test_readme_c_program_reports_a_failed_call_and_exits_1(tmp_path):
    exe = REPO / "build" / "examples" / "workflow"
    if not exe.exists():
        pytest.skip(f"{exe} is not built (run make examples)")
    r = subprocess.run([str(exe), str(model_path("seg_lraspp")), "image", str(tmp_path / "e")],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr == ("DUCTILE_ERR_PROFILE: profile 0 names 'image', which is not an input of "
                        "the network (inputs: 'input_1')\n")
    r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr == f"usage: {exe} model.onnx input_name engine_file\n"


STATIC_PROFILE = ["--minShapes=input:1x1x224x224", "--optShapes=input:2x1x224x224",
                  "--maxShapes=input:4x1x448x448"]
RESHAPE_TIE = ("node '/ps/Reshape' (Reshape, opset 10): '/ps/Constant_output_0' = "
               "[-1,1,3,3,224,224] ties '/c4/Conv_output_0' dimension 2 to 224: at [1,9,448,224] "
               "it reshapes to [2,1,3,3,224,224], where dimension 0 grows instead of dimension 4")


def test_profile_ranging_fixed_dims_is_refused_naming_the_dynamic_dims_flag():
    r = run_cli(f"--onnx={util.model_path('superres_op10_static.onnx')}", *STATIC_PROFILE,
                "--skipInference")
    assert r.returncode == 1
    assert r.stderr == (
        "error: DUCTILE_ERR_PROFILE: profile 0: input 'input' dimension 2 is fixed to 224 by the "
        "model but the profile ranges it over 224..448; a dim the model fixes stays fixed unless "
        "it is overridden (C: ductile_network_set_input_dims; Python: network.get_input(0).shape "
        "= (-1, 1, -1, -1); command line: --dynamicDims=input:-1x1x-1x-1); even overridden, the "
        "model ties it to 224, so it must be exported again with this dim dynamic: "
        + RESHAPE_TIE + "\n")


def test_dynamic_dims_flag_with_tied_dims_is_refused_naming_the_reshape():
    r = run_cli(f"--onnx={util.model_path('superres_op10_static.onnx')}",
                "--dynamicDims=input:-1x1x-1x-1", *STATIC_PROFILE, "--skipInference")
    assert r.returncode == 1
    assert "  input: float32 [input_dim0, 1, input_dim2, input_dim3]\n" in r.stdout
    assert r.stderr == (
        "error: DUCTILE_ERR_PROFILE: profile 0: input 'input' dimension 2 (input_dim2) ranges "
        "over 224..448 but the model ties it to its declared size 224: " + RESHAPE_TIE + "\n")


def test_dynamic_dims_flag_makes_batch_dynamic_and_matches_onnxruntime(tmp_path):
    x = np.random.default_rng(4).standard_normal((3, 1, 224, 224), dtype=np.float32)
    x.tofile(tmp_path / "x.bin")
    out = tmp_path / "out.json"
    r = run_cli(f"--onnx={util.model_path('superres_op10_static.onnx')}",
                "--dynamicDims=input:-1x1x224x224", "--minShapes=input:1x1x224x224",
                "--optShapes=input:2x1x224x224", "--maxShapes=input:4x1x224x224",
                "--shapes=input:3x1x224x224", f"--loadInputs=input:{tmp_path / 'x.bin'}",
                f"--exportOutput={out}", *RUN_ONCE)
    assert r.returncode == 0, r.stderr
    (item,) = json.loads(out.read_text())
    assert item["dimensions"] == "3x1x672x672"
    got = np.asarray(item["values"], dtype=np.float32).reshape(3, 1, 672, 672)
    # onnxruntime takes only the declared batch of 1: one image at a time.
    session = util.ort_session(util.model_path("superres_op10_static.onnx"))
    for k in range(3):
        util.assert_close(got[k:k + 1], session.run(None, {"input": x[k:k + 1]})[0],
                          what=f"image {k}")


def test_dynamic_dims_flag_refuses_unknown_inputs_and_bad_dims():
    r = run_cli(f"--onnx={util.model_path('superres_op10_static.onnx')}",
                "--dynamicDims=image:-1x1x224x224", "--skipInference")
    assert r.returncode == 1
    assert r.stderr == ("error: --dynamicDims names 'image', which is not an input of the network "
                        "(inputs: 'input')\n")
    r = run_cli("--onnx=x.onnx", "--dynamicDims=input:-2x1")
    assert r.returncode == 2
    assert r.stderr == ("error: invalid value for --dynamicDims: 'input:-2x1' (bad dims '-2x1' "
                        "(expected -1 or non-negative integers joined by 'x', as -1x3x-1x-1))\n")


def test_dump_profile_lists_each_executed_layer_with_tactic_and_op_totals(tmp_path):
    """--dumpProfile: trtexec's table (execution order, Total = 100%) with the tactic of
    each layer that execute runs (the engine's layer info, stage "execute"), then the totals
    per op type, largest first; --exportProfile writes the same rows as trtexec's JSON."""
    bert = {name: ((1, 1), (1, 16), (2, 32)) for name in ("input_ids", "attention_mask")}
    out = tmp_path / "profile.json"
    r = run_cli(f"--onnx={model_path('bert_small')}", *profile_flags(bert),
                "--iterations=3", "--warmUp=0", "--duration=0", "--dumpLayerInfo", "--dumpProfile",
                f"--exportProfile={out}")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout.split("Layer information:\n", 1)[1].split("\n}\n", 1)[0] + "\n}")
    executed = [(l["Name"], l["LayerType"]) for l in info["Layers"] if l["Stage"] == "execute"]
    # 38: the Q, K, V projections merge (builder/fuse_qkv.c) and the residual LayerNorms join
    # the products before them (builder/fuse_matmul_norm.c)
    assert len(executed) >= 38

    text = r.stdout.split("=== Profile (", 1)[1]
    head, rows = text.split("\n", 1)
    assert re.fullmatch(r"(\d+) iterations \) ===", head)
    runs = int(head.split()[0])
    assert runs >= 3
    lines = rows.split("\n")
    assert lines[0].split() == ["Time(ms)", "Avg.(ms)", "Time(%)", "Tactic", "Layer"]
    row = re.compile(r"\s*(\d+\.\d\d)\s+(\d+\.\d{4})\s+(\d+\.\d)   (\S+)\s+(\S+)")
    layers = [row.fullmatch(line) for line in lines[1:1 + len(executed)]]
    assert all(layers), lines[1:1 + len(executed)]
    assert [m.group(5) for m in layers] == [name for name, _ in executed]
    for m, (name, op) in zip(layers, executed):
        assert m.group(4).startswith(f"cpu.{op}"), (name, m.group(4))
        # Time has 2 decimals, Avg. 4: equal up to their rounding.
        assert abs(float(m.group(2)) * runs - float(m.group(1))) <= 0.005 + 0.00005 * runs
    # bert's projections: MatMul + bias (+ Gelu, residual) fused, on B packed at build time
    assert any(m.group(4) == "cpu.FusedMatMul.packed_b" for m in layers)
    total = re.fullmatch(r"\s*(\d+\.\d\d)\s+(\d+\.\d{4})\s+100\.0\s+Total", lines[1 + len(executed)])
    assert total, lines[1 + len(executed)]
    assert abs(sum(float(m.group(1)) for m in layers) - float(total.group(1))) <= 0.01 * len(layers)

    by_op = r.stdout.split("=== Profile by op type ===\n", 1)[1].split("\n\n", 1)[0].split("\n")
    assert by_op[0].split() == ["Time(ms)", "Avg.(ms)", "Time(%)", "Layers", "Op", "type"]
    op_rows = [line.split() for line in by_op[1:]]
    counts = {}
    for _, op in executed:
        counts[op] = counts.get(op, 0) + 1
    assert {o[4]: int(o[3]) for o in op_rows} == counts
    times = [float(o[0]) for o in op_rows]
    assert times == sorted(times, reverse=True)

    exported = json.loads(out.read_text())
    assert exported[0] == {"count": runs}
    assert [(l["name"], l["opType"]) for l in exported[1:]] == executed
    assert set(exported[1]) == {"name", "timeMs", "averageMs", "percentage", "opType", "tactic", "flops"}
    assert abs(sum(l["percentage"] for l in exported[1:]) - 100) < 0.01
    # The query projection of layer 0: [1, 16, hidden] x [hidden, hidden].
    q = next(l for l in exported[1:] if l["name"].endswith("layer.0/attention/self/query/MatMul"))
    assert q["flops"] > 0 and q["flops"] % (2 * 16) == 0
    # Attention's two products: [1, 4, 16, 64] x [.., 64, 16], then x [.., 16, 64].
    att = next(l for l in exported[1:] if l["opType"] == "FusedAttention")
    assert att["flops"] == 2 * 2 * (4 * 16 * 16 * 64)
    assert all(l["flops"] == 0 for l in exported[1:]
               if l["opType"] not in ("MatMul", "Gemm", "FusedConv", "FusedMatMul", "FusedAttention"))


def test_dump_layer_info_shows_the_tactic_per_profile_and_shape_point(tmp_path):
    """The builder times tactics at each profile's min, opt and max shapes; --dumpLayerInfo
    shows, for every layer that stores some, one object per profile with the id a run takes
    at each point (the CPU's conv algorithms: 0 heuristic, 1 im2col, 2 padded, 4 winograd,
    7 the few-channel direct conv),
    and an engine saved and loaded again shows the same."""
    engine = tmp_path / "sr.engine"
    sr = {"input": ((1, 1, 8, 8), (1, 1, 16, 16), (1, 1, 32, 32))}
    two = {"input": ((1, 1, 33, 33), (1, 1, 40, 40), (1, 1, 48, 48))}

    def tactics(stdout):
        info = json.loads(stdout.split("Layer information:\n", 1)[1].split("\n}\n", 1)[0] + "\n}")
        return {l["Name"]: l["Tactics"] for l in info["Layers"] if "Tactics" in l}

    r = run_cli(f"--onnx={model_path('superres')}", *profile_flags(sr), *profile_flags(two),
                f"--saveEngine={engine}", "--skipInference", "--dumpLayerInfo")
    assert r.returncode == 0, r.stderr
    built = tactics(r.stdout)
    assert len(built) >= 3, built
    for name, per_profile in built.items():
        assert len(per_profile) == 2, (name, per_profile)
        for ids in per_profile:
            assert list(ids) == ["min", "opt", "max"], (name, ids)
            assert all(v in (0, 1, 2, 4, 7) for v in ids.values()), (name, ids)
    r = run_cli(f"--loadEngine={engine}", "--skipInference", "--dumpLayerInfo")
    assert r.returncode == 0, r.stderr
    assert tactics(r.stdout) == built
