"""The `ductile` console script of an installed package: runs the CLI built into the package
(ductile/_native/ductile), replacing this process so exit codes and signals are the CLI's."""
import os
import pathlib
import sys


def main():
    exe = pathlib.Path(__file__).resolve().parent / "_native" / "ductile"
    if not exe.is_file():
        sys.exit(f"ductile: the CLI is not part of this installation ({exe} is missing); "
                 "install the package with pip, or run build/ductile from a checkout")
    os.execv(exe, [str(exe), *sys.argv[1:]])


if __name__ == "__main__":
    main()
