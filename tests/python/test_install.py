"""`make install` / `make uninstall`: the installed tree, and examples/workflow.c built against it
the three ways a C user links (pkg-config, pkg-config --static, CMake's find_package).

Everything is staged with DESTDIR under tmp_path with PREFIX=/opt/ductile, as a package build
does; pkg-config reaches the staged tree through PKG_CONFIG_SYSROOT_DIR and CMake through
CMAKE_PREFIX_PATH (the CMake package locates itself)."""
import os
import re
import shutil
import subprocess

import numpy as np
import pytest

import util

REPO = util.REPO
PREFIX = "/opt/ductile"


def header_version():
    h = (REPO / "include/ductile.h").read_text()
    return tuple(int(re.search(rf"#define DUCTILE_VERSION_{p} (\d+)", h).group(1))
                 for p in ("MAJOR", "MINOR", "PATCH"))


MAJOR, MINOR, PATCH = header_version()
VERSION = f"{MAJOR}.{MINOR}.{PATCH}"
EXPECTED = {
    "bin/ductile", "include/ductile.h", "lib/libductile.a", f"lib/libductile.so.{VERSION}",
    f"lib/libductile.so.{MAJOR}", "lib/libductile.so", "lib/pkgconfig/ductile.pc",
    "lib/pkgconfig/ductile-static.pc",
    "lib/cmake/ductile/ductile-config.cmake", "lib/cmake/ductile/ductile-config-version.cmake",
}


def make(*args):
    # A `make test` above us must not lend its flags or jobserver to this make.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    r = subprocess.run(["make", "-s", *args], cwd=REPO, capture_output=True, text=True,
                       timeout=900, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def files_under(root):
    """Every file and link under root, relative, as a set."""
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() or p.is_symlink()}


def readelf_dynamic(path):
    return subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True,
                          check=True).stdout


def run(cmd, env=None, cwd=None):
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=600)
    assert r.returncode == 0, f"{cmd}: {r.stdout}{r.stderr}"
    return r.stdout


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    """The staged install; uninstalled (and checked empty) after the module's tests."""
    for tool in ("pkg-config", "cmake", "readelf"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    stage = tmp_path_factory.mktemp("stage")
    make("install", f"DESTDIR={stage}", f"PREFIX={PREFIX}")
    yield stage, stage / PREFIX.lstrip("/")


def pkg_env(stage, root):
    env = dict(os.environ, PKG_CONFIG_PATH=str(root / "lib/pkgconfig"),
               PKG_CONFIG_SYSROOT_DIR=str(stage))
    env.pop("PKG_CONFIG_LIBDIR", None)
    return env


def test_install_writes_exactly_the_files_with_soname_and_links(staged):
    stage, root = staged
    assert files_under(stage) == {f"{PREFIX.lstrip('/')}/{f}" for f in EXPECTED}
    lib = root / "lib"
    assert os.readlink(lib / f"libductile.so.{MAJOR}") == f"libductile.so.{VERSION}"
    assert os.readlink(lib / "libductile.so") == f"libductile.so.{MAJOR}"
    assert f"Library soname: [libductile.so.{MAJOR}]" in readelf_dynamic(lib / f"libductile.so.{VERSION}")
    assert (root / "include/ductile.h").read_bytes() == (REPO / "include/ductile.h").read_bytes()
    # The CLI is linked with the static library: it runs from the staged tree as it is.
    out = run([str(root / "bin/ductile"), "--help"])
    assert "--onnx" in out


def test_pkg_config_file(staged):
    stage, root = staged
    env = pkg_env(stage, root)
    assert run(["pkg-config", "--modversion", "ductile"], env).strip() == VERSION
    assert run(["pkg-config", "--cflags", "--libs", "ductile"], env).split() == \
        [f"-I{root}/include", f"-L{root}/lib", "-lductile"]
    # What a static link needs besides the archive: libm, pthreads and, in a build with the
    # CUDA backend, the CUDA libraries (as full paths, which a pkg-config sysroot leaves alone).
    private = make("print-private-libs").split()
    assert private[:2] == ["-lm", "-pthread"]
    assert run(["pkg-config", "--static", "--libs", "ductile"], env).split() == \
        [f"-L{root}/lib", "-lductile", *private]
    assert run(["pkg-config", "--libs", "ductile-static"], env).split() == \
        [f"-L{root}/lib", "-l:libductile.a", *private]
    # The file itself names the real prefix, not the staging folder.
    pc = (root / "lib/pkgconfig/ductile.pc").read_text()
    assert f"prefix={PREFIX}\n" in pc and str(stage) not in pc


def test_default_prefix_is_usr_local():
    out = make("-n", "install", "DESTDIR=/nonexistent-stage")
    assert f"/nonexistent-stage/usr/local/lib/libductile.so.{VERSION}" in out


def build_three_ways(stage, root, out):
    """workflow.c linked via pkg-config (shared), pkg-config --static, and CMake (shared and
    static targets); returns {name: executable}."""
    src = REPO / "examples/workflow.c"
    env = pkg_env(stage, root)
    flags = run(["pkg-config", "--cflags", "--libs", "ductile"], env).split()
    static = run(["pkg-config", "--cflags", "--libs", "ductile-static"], env).split()
    exes = {"pkg-config": out / "wf_pc", "pkg-config --static": out / "wf_pc_static"}
    run(["cc", "-std=c11", "-o", str(exes["pkg-config"]), str(src), *flags])
    run(["cc", "-std=c11", "-o", str(exes["pkg-config --static"]), str(src), *static])

    proj = out / "cmake_project"
    proj.mkdir()
    shutil.copy(src, proj / "workflow.c")
    (proj / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.16)\n"
        "project(uses_ductile C)\n"
        f"find_package(ductile {MAJOR}.{MINOR} REQUIRED)\n"
        "add_executable(wf_cmake workflow.c)\n"
        "target_link_libraries(wf_cmake PRIVATE ductile::ductile)\n"
        "add_executable(wf_cmake_static workflow.c)\n"
        "target_link_libraries(wf_cmake_static PRIVATE ductile::ductile_static)\n")
    run(["cmake", "-S", str(proj), "-B", str(proj / "build"), f"-DCMAKE_PREFIX_PATH={root}"])
    run(["cmake", "--build", str(proj / "build")])
    exes["cmake"] = proj / "build/wf_cmake"
    exes["cmake static"] = proj / "build/wf_cmake_static"
    return exes


@pytest.fixture(scope="module")
def programs(staged, tmp_path_factory):
    stage, root = staged
    return build_three_ways(stage, root, tmp_path_factory.mktemp("programs"))


def test_programs_link_the_soname_or_nothing(programs):
    for way, exe in programs.items():
        dynamic = readelf_dynamic(exe)
        needs_ductile = f"Shared library: [libductile.so.{MAJOR}]" in dynamic
        assert needs_ductile == ("static" not in way), (way, dynamic)


def test_programs_start_from_the_installed_library(staged, programs):
    """Without LD_LIBRARY_PATH a staged library cannot be found, as for any staged package;
    with the library folder given (what ldconfig does for a real install) every program
    starts and prints its usage."""
    _, root = staged
    env = dict(os.environ, LD_LIBRARY_PATH=str(root / "lib"))
    for way, exe in programs.items():
        r = subprocess.run([str(exe)], capture_output=True, text=True, env=env)
        assert (r.returncode, r.stderr) == (
            2, f"usage: {exe} model.onnx input_name engine_file\n"), way


@pytest.mark.parametrize("way", ["pkg-config", "cmake static"])
def test_installed_program_matches_onnxruntime(staged, programs, way, tmp_path):
    _, root = staged
    model = util.model_path("seg_lraspp.onnx")
    env = dict(os.environ, LD_LIBRARY_PATH=str(root / "lib"))
    out = run([str(programs[way]), str(model), "input_1", str(tmp_path / "seg.engine")], env)
    want = util.sigmoid(util.ort_session(model).run(
        None, {"input_1": np.full((1, 3, 777, 555), 0.5, np.float32)})[0]).astype(np.float64)
    name, rest = out.strip().split(": ")
    shape, mean = rest.split(", mean ")
    assert (name, shape) == ("Sigmoid_0_output", "x".join(map(str, want.shape)))
    assert abs(float(mean) - want.mean()) < 2e-6, (mean, want.mean())


def test_uninstall_removes_everything_installed(tmp_path):
    """Its own staged tree, so it does not depend on the order the other tests run in."""
    if shutil.which("readelf") is None:
        pytest.skip("readelf is not installed")
    make("install", f"DESTDIR={tmp_path}", f"PREFIX={PREFIX}")
    assert len(files_under(tmp_path)) == len(EXPECTED)
    make("uninstall", f"DESTDIR={tmp_path}", f"PREFIX={PREFIX}")
    assert files_under(tmp_path) == set()
    assert not (tmp_path / PREFIX.lstrip("/") / "lib/cmake/ductile").exists()
