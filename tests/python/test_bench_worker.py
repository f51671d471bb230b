"""bench/worker.py's run-queue wait: the part of a run's wall time that other processes took."""
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def load_worker():
    spec = importlib.util.spec_from_file_location("bench_worker", REPO / "bench" / "worker.py")
    w = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(w)
    return w


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
