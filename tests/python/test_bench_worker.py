"""bench/worker.py's run-queue wait: the part of a run's wall time that other processes took; and
bench/xcore.c, the core-to-core round trip bench.py reports beside each 2-thread row."""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from util import load_file_module

REPO = Path(__file__).resolve().parents[2]


def load_worker():
    return load_file_module("bench_worker", "bench/worker.py")


@pytest.mark.skipif(not os.path.exists("/proc/self/task") or not hasattr(os, "sched_setaffinity"),
                    reason="Linux schedstat and affinity only")
def test_run_wait_counts_time_another_process_holds_the_cpu():
    w = load_worker()
    before = w.run_wait_ms()
    if before is None:
        pytest.skip("no /proc/<pid>/task/*/schedstat here")
    cpu = sorted(os.sched_getaffinity(0))[0]
    old = os.sched_getaffinity(0)
    # A spinning child on our one CPU: the scheduler shares it, so our spin waits about half.
    child = subprocess.Popen([sys.executable, "-c", f"import os; os.sched_setaffinity(0, {{{cpu}}})\nwhile True: pass"])
    try:
        os.sched_setaffinity(0, {cpu})
        time.sleep(0.2)  # the child is spinning
        w0 = w.run_wait_ms()
        t = time.perf_counter()
        while time.perf_counter() - t < 0.4:
            pass
        waited = w.run_wait_ms() - w0
    finally:
        os.sched_setaffinity(0, old)
        child.kill()
        child.wait()
    assert 50 < waited < 1000, waited
    assert w.run_wait_ms() >= before + waited   # a running total, never reset


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="needs two CPUs and affinity")
def test_xcore_times_a_round_trip_between_two_cpus_and_says_null_on_one(tmp_path):
    """bench/xcore.c (bench.py's x-core column): a positive round trip between the process's
    first two CPUs, well under a millisecond; null where the process has one CPU."""
    exe = tmp_path / "xcore"
    subprocess.run([os.environ.get("CC", "cc"), "-O2", "-std=c11", "-D_GNU_SOURCE", "-pthread",
                    str(REPO / "bench" / "xcore.c"), "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    ns = __import__("json").loads(out)["round_trip_ns"]
    assert 0 < ns < 1e6, out
    one = sorted(os.sched_getaffinity(0))[0]
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True,
                         preexec_fn=lambda: os.sched_setaffinity(0, {one})).stdout
    assert out.strip() == '{"round_trip_ns": null}'


class _SleepyWorker:
    """A stand-in for bench.Worker: each request sleeps 0.2 s and says which try it was."""

    def __init__(self):
        self.calls = 0

    def ask(self, **req):
        self.calls += 1
        time.sleep(0.2)
        return {"ms": [float(self.calls)]}


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="Linux /proc/stat only")
def test_bench_asks_a_request_again_while_another_process_keeps_a_core_busy():
    """bench.py's ask_quiet: a request during which another process spins counts only after
    --retries more tries (all loud here: the quietest of them counts), and its load is reported;
    with --quiet negative the first try counts, and so it does where the load is under --quiet."""
    b = load_file_module("bench_main", "bench/bench.py")
    me = [os.getpid()]
    child = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.1)
        w, loads = _SleepyWorker(), []
        b.QUIET, b.RETRIES = 0.25, 2
        ans = b.ask_quiet(w, me, {}, loads)
        assert w.calls == 3 and ans["ms"][0] in (1.0, 2.0, 3.0)
        assert len(loads) == 1 and loads[0] > 0.5, loads
        w, loads = _SleepyWorker(), []
        b.QUIET = -1.0
        b.ask_quiet(w, me, {}, loads)
        assert w.calls == 1 and loads[0] > 0.5, loads
    finally:
        child.kill()
        child.wait()
    w, loads = _SleepyWorker(), []
    b.QUIET, b.RETRIES = 100.0, 2   # any load this machine can have counts as quiet: one try
    b.ask_quiet(w, me, {}, loads)
    assert w.calls == 1 and len(loads) == 1, loads
