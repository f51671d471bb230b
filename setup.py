"""The build step of the Python package: runs the Makefile and puts what it built inside the
package, so an installed `ductile` needs no checkout, PYTHONPATH or DUCTILE_LIB.

    ductile/_native/libductile.so   what python/ductile/_lib.py loads first
    ductile/_native/ductile         the CLI, run by the `ductile` console script (_cli.py)

The version is include/ductile.h's, the one place it is written. The wheel holds a native
library but no CPython extension, so it is tagged py3-none-<platform>: one wheel per platform
serves every Python 3. Extra make variables come from $DUCTILE_MAKE_FLAGS (e.g. "CUDA=0").
"""
import os
import re
import shlex
import shutil
import subprocess

from setuptools import Distribution, setup
from setuptools.command.bdist_wheel import bdist_wheel
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))


def header_version():
    with open(os.path.join(HERE, "include", "ductile.h"), encoding="utf-8") as f:
        text = f.read()
    parts = [re.search(rf"^#define DUCTILE_VERSION_{p} (\d+)$", text, re.M).group(1)
             for p in ("MAJOR", "MINOR", "PATCH")]
    return ".".join(parts)


class BuildWithMake(build_py):
    """build_py, then `make` the shared library and the CLI and copy them into the package."""

    def run(self):
        super().run()
        build = os.environ.get("DUCTILE_BUILD", "build")  # the Makefile's BUILD
        targets = [f"{build}/libductile.so", f"{build}/ductile"]
        cmd = ["make", f"-j{os.cpu_count() or 1}", f"BUILD={build}",
               *shlex.split(os.environ.get("DUCTILE_MAKE_FLAGS", "")), *targets]
        self.announce(" ".join(cmd), level=2)
        subprocess.run(cmd, cwd=HERE, check=True)
        native = os.path.join(self.build_lib, "ductile", "_native")
        os.makedirs(native, exist_ok=True)
        for target in targets:
            shutil.copy2(os.path.join(HERE, target), native)


class NativeDistribution(Distribution):
    def has_ext_modules(self):
        return True  # a native library inside: installed to platlib, a platform wheel


class PlatformWheel(bdist_wheel):
    def get_tag(self):
        _, _, plat = super().get_tag()
        return "py3", "none", plat


setup(
    version=header_version(),
    distclass=NativeDistribution,
    cmdclass={"build_py": BuildWithMake, "bdist_wheel": PlatformWheel},
    # setuptools' own build folders under the Makefile's build/, out of its way.
    options={"build": {"build_base": "build/python"}},
)
