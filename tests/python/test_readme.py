"""Every fenced block of README.md is run here, or checked here, or pinned to the test that runs
it elsewhere; a block none of these claims fails test_every_block_is_run_or_checked, so the
README and the tests cannot drift apart.

Blocks are named (heading, language, n): the n-th block of that language under that `## `
heading. Commands run with the fewest substitutions that keep them cheap and inside tmp
folders: HOME is a tmp folder (so PREFIX=$HOME/.local installs there), `make` runs in the
checkout (`make -C`), app.c is examples/workflow.c, model names are the suite's files."""
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from util import BUILD, REPO, model_path

README = REPO / "README.md"


def blocks():
    """{(heading, lang, n): text} of README.md's fenced blocks."""
    out, count = {}, {}
    heading, lang, body = None, None, None
    for line in README.read_text().splitlines(keepends=True):
        if body is None:
            if line.startswith("## "):
                heading = line[3:].strip()
            elif line.startswith("```"):
                lang, body = line[3:].strip(), []
        elif line.rstrip("\n") == "```":
            n = count.get((heading, lang), 0)
            count[(heading, lang)] = n + 1
            out[(heading, lang, n)] = "".join(body)
            body = None
        else:
            body.append(line)
    return out


# Blocks run by another test, which reads the first block of its language under the heading
# (test_cli.readme_block): (file, test function).
ELSEWHERE = {
    ("The workflow in C", "c", 0): ("test_cli.py", "test_readme_c_block_is_examples_workflow_c"),
    ("The workflow on the command line", "sh", 0): ("test_cli.py", "test_readme_cli_commands_run"),
    ("The workflow in Python", "python", 0):
        ("test_cli.py", "test_readme_python_snippet_runs_at_small_shapes"),
    ("Serving", "sh", 0): ("test_serve_repository.py", "test_readme_serving_commands_run"),
}

# pip's block needs PyPI and a few minutes: test_packaging.py runs exactly these commands (pip
# install . into a fresh venv, the venv's ductile console script on a model, python -m build).
# The block is pinned here so that a change to it is a change to this test too.
PIP_BLOCK = """\
python -m venv venv && venv/bin/pip install .     # builds the library with make; no PYTHONPATH needed
venv/bin/ductile --onnx=model.onnx --shapes=input:1x3x224x224
python -m build                                   # an sdist and a py3-none-<platform> wheel
"""

MAKE_TARGETS = [("Two commands", "sh", 0), ("Two commands", "sh", 1)]
LINK_LINES = [("The workflow in C", "sh", 0), ("The workflow in C", "sh", 1)]
INSTALL = ("Install and link from C", "sh", 0)
CMAKE = ("Install and link from C", "cmake", 0)
PIP = ("pip install", "sh", 0)
COMPARE = ("Comparing with onnxruntime, layer by layer", "sh", 0)

CLAIMED = {*ELSEWHERE, *MAKE_TARGETS, *LINK_LINES, INSTALL, CMAKE, PIP, COMPARE}


def test_every_block_is_run_or_checked():
    found = set(blocks())
    assert sorted(found - CLAIMED) == [], "README blocks that no test runs or checks"
    assert sorted(CLAIMED - found) == [], "tests of README blocks that are gone"


@pytest.mark.parametrize("key", sorted(ELSEWHERE))
def test_block_run_elsewhere_is_the_one_that_test_reads(key):
    filename, function = ELSEWHERE[key]
    source = (REPO / "tests/python" / filename).read_text()
    assert f"\ndef {function}(" in source
    heading, lang, n = key
    assert n == 0  # readme_block reads the first block of its language under the heading
    assert f'readme_block("{heading}", "{lang}")' in source


def test_pip_block_is_the_one_test_packaging_runs():
    assert blocks()[PIP] == PIP_BLOCK
    source = (REPO / "tests/python/test_packaging.py").read_text()
    for function in ("test_pip_install_dot_into_a_fresh_venv", "test_wheel_from_python_m_build"):
        assert f"\ndef {function}(" in source


def commands(script):
    """The commands of a sh block: comments and comment-only lines dropped, '&&' split,
    backslash continuations joined."""
    out = []
    for line in script.replace("\\\n", " ").splitlines():
        line = line.split("#")[0].strip()
        out += [c.strip() for c in line.split("&&") if c.strip()]
    return out


def make_targets():
    """The targets of the checkout's Makefile, from make's database: -p prints it and a goal
    that does not exist makes make stop there, so nothing is run."""
    r = subprocess.run(["make", "-C", str(REPO), "-pq", "readme-no-such-target"],
                       capture_output=True, text=True, timeout=120)
    targets, previous = set(), ""
    for line in r.stdout.splitlines():
        if ":" in line and not line.startswith(("#", "\t", " ")) and "=" not in line.split(":")[0]:
            if previous != "# Not a target:":
                targets.add(line.split(":")[0].strip())
        previous = line
    return targets


@pytest.mark.parametrize("key", MAKE_TARGETS)
def test_make_commands_name_existing_targets_and_scripts(key):
    """These targets install, benchmark or fuzz for minutes: only that they exist is checked."""
    targets = make_targets()
    assert "all" in targets and "install" in targets  # the database was read
    cmds = commands(blocks()[key])
    assert cmds
    for cmd in cmds:
        word, *args = cmd.split()
        if word == "make":
            for target in args:
                assert target in targets, f"README: make {target}: no such target"
        else:
            script = REPO / word
            assert script.is_file() and os.access(script, os.X_OK), f"README: {word} missing"


def no_args_usage(exe, env=None):
    """The workflow program run without arguments: it starts (its library is found) and says
    how to call it."""
    r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60, env=env)
    assert (r.returncode, r.stdout, r.stderr) == \
        (2, "", f"usage: {exe} model.onnx input_name engine_file\n")


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if k not in ("LD_LIBRARY_PATH", "PKG_CONFIG_PATH", "CMAKE_PREFIX_PATH")}
    env.update(extra)
    return env


@pytest.mark.parametrize("key", LINK_LINES)
def test_link_lines_build_examples_workflow_c(key, tmp_path):
    line = blocks()[key]
    assert line.count("app.c") == 1 and line.count("-o app") == 1
    if not (BUILD / "libductile.a").exists():
        pytest.skip("build/ is not built (run make)")
    exe = tmp_path / "app"
    line = line.replace("app.c", str(REPO / "examples/workflow.c")).replace("-o app", f"-o {exe}")
    r = subprocess.run(["bash", "-ec", line], cwd=REPO, env=clean_env(PWD=str(REPO)),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    no_args_usage(exe, clean_env())


def sh(script, cwd, env, timeout=600):
    r = subprocess.run(["bash", "-ec", script], cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def test_install_block_installs_links_and_uninstalls(tmp_path):
    if not shutil.which("pkg-config"):
        pytest.skip("pkg-config is not installed")
    lines = blocks()[INSTALL].splitlines(keepends=True)
    assert lines[0].startswith("make install PREFIX=$HOME/.local")
    assert lines[-1] == "make uninstall PREFIX=$HOME/.local\n"
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(REPO / "examples/workflow.c", tmp_path / "app.c")
    env = clean_env(HOME=str(home))
    # Everything up to the uninstall: the install and both programs.
    sh("".join(lines[:-1]).replace("make ", f"make -C {REPO} "), tmp_path, env)
    prefix = home / ".local"
    assert (prefix / "lib/libductile.so.0").exists()
    no_args_usage(tmp_path / "app", clean_env())         # found through its rpath
    no_args_usage(tmp_path / "app_static", clean_env())
    sh(lines[-1].replace("make ", f"make -C {REPO} "), tmp_path, env)
    assert [p for p in prefix.rglob("*") if not p.is_dir()] == []


def test_cmake_block_links_examples_workflow_c(tmp_path):
    if not shutil.which("cmake"):
        pytest.skip("cmake is not installed")
    prefix = tmp_path / "prefix"
    sh(f"make -C {REPO} install PREFIX={prefix}", tmp_path, clean_env())
    proj = tmp_path / "project"
    proj.mkdir()
    shutil.copy(REPO / "examples/workflow.c", proj / "app.c")
    (proj / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.16)\nproject(app C)\nadd_executable(app app.c)\n"
        + blocks()[CMAKE])
    sh(f"cmake -S {proj} -B {proj / 'build'} -DCMAKE_PREFIX_PATH={prefix} >/dev/null && "
       f"cmake --build {proj / 'build'} >/dev/null", tmp_path, clean_env())
    no_args_usage(proj / "build/app", clean_env())


def test_compare_block_runs_on_the_suite_models(tmp_path):
    script = blocks()[COMPARE]
    assert script.count("python -m ductile.compare ") == 2
    for name in ("seg_lraspp.onnx", "bert_small.onnx"):
        script = script.replace(f" {name} ", f" {model_path(name)} ")
    script = script.replace("python -m ductile.compare ", f"{sys.executable} -m ductile.compare ")
    r = sh(script, tmp_path, clean_env(PYTHONPATH=str(REPO / "python")))
    runs = [line for line in r.stdout.splitlines() if line.startswith("All ")]
    assert len(runs) == 2 and all(line.endswith("(atol=0.0001, rtol=0.001)") for line in runs)
    assert " in 1 run(s) " in runs[0] and " in 2 run(s) " in runs[1]
