"""What the tests of test_files.py run in a child process (see isolated() there): only ductile
and numpy are imported, so each child starts fast."""
import ctypes
import os
import traceback
from pathlib import Path

import numpy as np

import ductile

X = np.array([10.0, 20.0, 30.0], dtype=np.float32)


def _child(pipe, fn, args, env):
    os.environ.update(env)
    try:
        pipe.send(("ok", fn(*args)))
    except ductile.Error as e:
        pipe.send(("error", e.status, str(e)))
    except BaseException:  # noqa: BLE001 - reported to the parent verbatim
        pipe.send(("exception", traceback.format_exc()))


def build(network):
    builder = ductile.Builder()
    return builder.build_engine(network, builder.create_builder_config())


def run(engine):
    return engine.create_execution_context().run({"X": X})["Y"]


def parse_build_run(path):
    """Parses, builds and runs; returns Y (a list, to cross the process boundary)."""
    return run(build(ductile.Builder().parse_onnx(str(path)))).tolist()


def parse(path):
    ductile.Builder().parse_onnx(str(path))


def load(path):
    ductile.load_engine(str(path))


def save(path, model):
    """Builds the model (bytes) and saves the engine at path."""
    build(ductile.Builder().parse_onnx_bytes(model)).save(str(path))


# ---- FIFOs, directories, sockets: point 8 --------------------------------------------------

def _enosys_openat2():
    """Makes openat2 fail with ENOSYS in this process (a seccomp filter), as on kernels before
    5.6 and in sandboxes that do not know it; False when seccomp is not available."""
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
    OPENAT2 = 437   # the same number on every architecture (after the tables were unified)

    class Insn(ctypes.Structure):
        _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                    ("k", ctypes.c_uint32)]

    class Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Insn))]

    insns = (Insn * 4)(
        Insn(0x20, 0, 0, 0),                  # A = seccomp_data.nr
        Insn(0x15, 0, 1, OPENAT2),            # A == openat2 ? next : skip one
        Insn(0x06, 0, 0, 0x00050000 | 38),    # SECCOMP_RET_ERRNO | ENOSYS
        Insn(0x06, 0, 0, 0x7FFF0000))         # SECCOMP_RET_ALLOW
    prog = Prog(4, insns)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return False
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        return False
    # The filter is in force: openat2 now fails as on an old kernel.
    assert libc.syscall(OPENAT2, -100, b".", None, 0) == -1 and ctypes.get_errno() == 38
    return True


def parse_build_run_enosys(path):
    if not _enosys_openat2():
        return "no seccomp"
    return parse_build_run(path)


def parse_change_build(path, changed, how, then_run):
    """Parses path, changes the file `changed` (truncate, rewrite in place, replace by rename,
    delete), then builds and runs (then_run) or just builds."""
    network = ductile.Builder().parse_onnx(str(path))
    data = Path(changed).read_bytes()
    st = os.stat(changed)
    if how == "truncate":
        os.truncate(changed, 4)
    elif how == "rewrite":
        with open(changed, "r+b") as f:   # same size, other bytes
            f.write(bytes(len(data)))
        # A rewrite moves the modification time; make it visible even on a coarse clock.
        os.utime(changed, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    elif how == "replace":
        tmp = Path(changed).with_suffix(".new")
        tmp.write_bytes(bytes(len(data)))
        os.replace(tmp, changed)
    elif how == "delete":
        os.unlink(changed)
    engine = build(network)
    return run(engine).tolist() if then_run else None


def build_truncate_run(path):
    """The engine holds its own copy of the weights: truncating the files after the build
    changes nothing."""
    engine = build(ductile.Builder().parse_onnx(str(path)))
    os.truncate(path.parent / "w.bin", 0)
    os.truncate(path, 0)
    return run(engine).tolist()
