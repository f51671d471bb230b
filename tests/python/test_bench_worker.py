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
