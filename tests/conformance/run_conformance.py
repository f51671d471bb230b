"""ONNX's backend test suites run through ONNX's own runner (onnx.backend.test.BackendTest) over
ductile.backend, with fixed input dims and with every input dim symbolic.

    PYTHONPATH=python .venv/bin/python tests/conformance/run_conformance.py
        [--device CPU|CUDA|FAKE] [--suite node --suite simple ...] [--dims fixed|symbolic|both] [--filter REGEX]
        [--json build/conformance.json] [--write-expectations] [--check] [--shard K/N]

--device=FAKE runs ONNX's CUDA variants through the runtime's device path on a fake device
(build/libductile_fakedev.so, `make fakedev`: host memory the fake tracks, the CPU's kernels
behind a check that every operand is device memory), on a machine without a GPU.

Prints pass counts per suite and variant. --json writes
    {"fixed": {SUITE: {"passed", "failed", "total"}, ..., "tests": {NAME: "pass" | "fail: why"}},
     "symbolic": {... the same ...}}
--check with --device=CUDA or FAKE holds the device to the CPU's expectations.
--write-expectations rewrites expected_failures.txt (beside this file) for what was run: every
test that fails is listed with a one-line reason; entries for suites and variants not run are
kept. --check exits 1 when a test expected to pass fails, or one expected to fail passes (the
file is a ratchet: tighten it with --write-expectations).

'real' is ONNX's light models (resnet50, densenet121, ...), stored in the onnx wheel with their
expected outputs; a real test whose model would have to be downloaded is skipped with a message
(the runner's machines may have no network). Its cache goes to $ONNX_HOME (default
build/onnx_home), not ~/.onnx.
"""
import argparse
import collections
import json
import os
import re
import sys
import time
import unittest
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
EXPECTATIONS = os.path.join(HERE, "expected_failures.txt")

# ONNX's runner names its unittest classes after the suite.
SUITES = collections.OrderedDict([
    ("node", "OnnxBackendNodeModelTest"),
    ("pytorch-converted", "OnnxBackendPyTorchConvertedModelTest"),
    ("pytorch-operator", "OnnxBackendPyTorchOperatorModelTest"),
    ("real", "OnnxBackendRealModelTest"),
    ("simple", "OnnxBackendSimpleModelTest"),
])
VARIANTS = ("fixed", "symbolic")


def _backend_class():
    import ductile.backend

    class Backend(ductile.backend.DuctileBackend):
        """Loading ONNX's cases costs ~20 s, so one BackendTest serves both variants and the
        variant is switched here between runs instead of building a second BackendTest."""
        symbolic = False

        @classmethod
        def prepare(cls, model, device="CPU", **kwargs):
            return super().prepare(model, device, symbolic_dims=cls.symbolic, **kwargs)

    return Backend


def _one_line(text, limit=220):
    text = " ".join(line.strip() for line in str(text).splitlines() if line.strip())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def failure_reason(exc):
    """One line naming the cause: ductile's status and message, or how the outputs differ."""
    import ductile
    if isinstance(exc, ductile.Error):
        return _one_line(f"{exc.status}: {exc}")
    if isinstance(exc, AssertionError):
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        # np.testing's messages: the verdict, then 'Mismatched elements', then the arrays.
        keep = [line for line in lines if line.startswith(("Not equal", "Arrays are not",
                                                           "Mismatched elements", "Max absolute",
                                                           "Output", "Items are not"))]
        return "mismatch: " + _one_line("; ".join(keep[:4]) or (lines[0] if lines else
                                                                type(exc).__name__))
    return _one_line(f"{type(exc).__name__}: {exc}")


class _Result(unittest.TestResult):
    """Records each test's outcome as 'pass', 'fail: why' or 'skip: why'."""

    def __init__(self):
        super().__init__()
        self.outcome = {}

    def addSuccess(self, test):
        self.outcome[test._testMethodName] = "pass"

    def addFailure(self, test, err):
        self.outcome[test._testMethodName] = "fail: " + failure_reason(err[1])

    addError = addFailure

    def addSkip(self, test, reason):
        self.outcome[test._testMethodName] = "skip: " + _one_line(reason)

    def addExpectedFailure(self, test, err):
        self.addFailure(test, err)

    def addUnexpectedSuccess(self, test):
        self.addSuccess(test)


def _needs_download(runner, suite, name):
    """A real test whose model is neither in the wheel (light models) nor cached."""
    if suite != "real":
        return False
    from onnx.backend.test.loader import load_model_tests
    for case in load_model_tests(kind="real"):
        if f"{case.name}_cpu" == name:
            if case.url is None or case.url.startswith("onnx/backend/test/data/light/"):
                return False
            models = os.getenv("ONNX_MODELS", os.path.join(os.environ["ONNX_HOME"], "models"))
            return not os.path.exists(os.path.join(models, case.model_name, "model.onnx"))
    return False


DEVICE_SUFFIX = "_cpu"   # "_cuda" with --device=CUDA


def select(test_cases, suites, pattern, shard):
    """[(suite, test name, unittest class)] in a stable order; shard=(k, n) keeps every n-th."""
    chosen = []
    for suite in suites:
        cls = test_cases[SUITES[suite]]
        for name in sorted(n for n in dir(cls) if n.startswith("test_") and n.endswith(DEVICE_SUFFIX)):
            if pattern and not re.search(pattern, name):
                continue
            chosen.append((suite, name, cls))
    if shard:
        k, n = shard
        chosen = [c for i, c in enumerate(chosen) if i % n == k]
    return chosen


def load_runner():
    """ONNX's BackendTest over ductile.backend, and the backend class (to switch variants)."""
    os.environ.setdefault("ONNX_HOME", os.path.join(ROOT, "build", "onnx_home"))
    warnings.simplefilter("ignore")
    import numpy as np
    np.seterr(all="ignore")  # ONNX's case generators overflow on purpose (casts, logs of 0)
    import onnx.backend.test
    backend = _backend_class()
    runner = onnx.backend.test.BackendTest(backend, __name__)
    return runner, backend


def run_tests(runner, backend, chosen, variants, progress=None):
    """{variant: {(suite, name): 'pass' | 'fail: why' | 'skip: why'}}"""
    results = {v: collections.OrderedDict() for v in variants}
    for variant in variants:
        backend.symbolic = variant == "symbolic"
        for suite, name, cls in chosen:
            if _needs_download(runner, suite, name):
                results[variant][(suite, name)] = ("skip: its model must be downloaded and "
                                                   "this run does not download")
                continue
            result = _Result()
            started = time.monotonic()
            cls(name).run(result)
            outcome = result.outcome.get(name, "fail: no outcome recorded")
            results[variant][(suite, name)] = outcome
            if progress:
                progress(variant, suite, name, outcome, time.monotonic() - started)
    return results


def summary(results):
    """{variant: {suite: {passed, failed, total[, skipped]}}}"""
    out = {}
    for variant, tests in results.items():
        counts = collections.OrderedDict()
        for (suite, _), outcome in tests.items():
            c = counts.setdefault(suite, {"passed": 0, "failed": 0, "total": 0})
            if outcome.startswith("skip"):
                c["skipped"] = c.get("skipped", 0) + 1
                continue
            c["total"] += 1
            c["passed" if outcome == "pass" else "failed"] += 1
        out[variant] = counts
    return out


# The expectations file: '<suite>/<test> <fixed|symbolic|both> <reason>' per line.
def read_expectations(path=EXPECTATIONS):
    """{(suite, name, variant): reason}"""
    expected = {}
    if not os.path.exists(path):
        return expected
    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(None, 2)
            if len(parts) < 2 or "/" not in parts[0] or parts[1] not in VARIANTS + ("both",):
                raise ValueError(f"{path}:{number}: expected '<suite>/<test> "
                                 f"<fixed|symbolic|both> <reason>', got '{line}'")
            suite, name = parts[0].split("/", 1)
            reason = parts[2] if len(parts) > 2 else ""
            for variant in (VARIANTS if parts[1] == "both" else (parts[1],)):
                expected[(suite, name, variant)] = reason
    return expected


def write_expectations(results, path=EXPECTATIONS, whole_suites=False):
    """Replaces the entries for what was run with its failures (skips count as failures: they
    do not pass) and keeps the others. whole_suites: every test of each suite run was run, so
    its entries for tests ONNX no longer has are dropped too."""
    expected = read_expectations(path)
    if whole_suites:
        ran = {(suite, variant) for variant, tests in results.items() for suite, _ in tests}
        expected = {k: v for k, v in expected.items() if (k[0], k[2]) not in ran}
    for variant, tests in results.items():
        for (suite, name), outcome in tests.items():
            expected.pop((suite, name, variant), None)
            if outcome.startswith("skip: "):
                expected[(suite, name, variant)] = "skipped: " + outcome[len("skip: "):]
            elif outcome != "pass":
                expected[(suite, name, variant)] = outcome[len("fail: "):]
    order = {s: i for i, s in enumerate(SUITES)}
    keys = sorted({(s, n) for s, n, _ in expected}, key=lambda k: (order.get(k[0], 99), k[1]))
    with open(path, "w") as f:
        f.write("# ONNX backend tests ductile does not pass, one line each: <suite>/<test> "
                "<fixed|symbolic|both> <reason>.\n"
                "# Generated by tests/conformance/run_conformance.py --write-expectations "
                "(make conformance-expectations);\n"
                "# tests/python/test_conformance.py fails when a test not listed here fails, "
                "or a listed one passes.\n")
        for suite, name in keys:
            fixed = expected.get((suite, name, "fixed"))
            symbolic = expected.get((suite, name, "symbolic"))
            if fixed is not None and symbolic is not None:
                f.write(f"{suite}/{name} both {fixed}\n")
            elif fixed is not None:
                f.write(f"{suite}/{name} fixed {fixed}\n")
            else:
                f.write(f"{suite}/{name} symbolic {symbolic}\n")


def compare(results, expected):
    """(regressions, unexpected passes): lines naming each test and variant."""
    regressions, fixed = [], []
    for variant, tests in results.items():
        for (suite, name), outcome in tests.items():
            listed = (suite, name, variant) in expected
            if outcome == "pass" and listed:
                fixed.append(f"{suite}/{name} ({variant}) passes now")
            elif outcome != "pass" and not listed:
                regressions.append(f"{suite}/{name} ({variant}): {outcome}")
    return regressions, fixed


def write_json(results, path):
    out = {}
    counts = summary(results)
    for variant, tests in results.items():
        out[variant] = dict(counts[variant])
        out[variant]["tests"] = {name: outcome for (_, name), outcome in tests.items()}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(out, f, indent=1)


def print_report(results, out=sys.stdout):
    for variant, counts in summary(results).items():
        for suite, c in counts.items():
            rate = 100.0 * c["passed"] / c["total"] if c["total"] else 0.0
            skipped = f", {c['skipped']} skipped" if c.get("skipped") else ""
            print(f"{suite:18s} {variant:8s} {c['passed']:5d} / {c['total']:5d} passed "
                  f"({rate:5.1f}%){skipped}", file=out)
    for variant, tests in results.items():
        skips = [o for o in tests.values() if o.startswith("skip")]
        if skips:
            print(f"{variant}: {len(skips)} skipped: {skips[0]}", file=out)
        causes = collections.Counter(_cause(o) for o in tests.values()
                                     if o != "pass" and not o.startswith("skip"))
        if causes:
            print(f"{variant}: failures by cause:", file=out)
            for cause, n in causes.most_common(40):
                print(f"  {n:5d}  {cause}", file=out)


def _cause(outcome):
    """Groups failures: the op or domain ductile lacks, else the message with its names,
    shapes and numbers blanked (so one cause over many tests counts once)."""
    m = re.search(r"op type '([^']+)' is not supported", outcome)
    if m:
        return f"unsupported op {m.group(1)}"
    m = re.search(r"domain '([^']+)' is not supported", outcome)
    if m:
        return f"unsupported domain {m.group(1)}"
    text = outcome[len("fail: "):] if outcome.startswith("fail: ") else outcome
    if text.startswith("mismatch: "):
        return "outputs differ from ONNX's beyond the test's tolerance"
    m = re.search(r"\(([\w.]+), opset \d+\): (.*)", text)
    if m:  # the node's op type, then what is wrong with it
        text = f"{m.group(1)}: {m.group(2)}"
        # One cause for every dtype an op lacks (QuantizeLinear to int4, uint2, float8 ...).
        text = re.sub(r"(dtype|quantizing to) \w+", r"\1 _", text)
    text = re.sub(r"'[^']*'", "'_'", text)
    text = re.sub(r"\[[^\]]*\]", "[_]", text)
    text = re.sub(r"(?<![A-Za-z_\d])\d+(\.\d+)?(e[-+]?\d+)?", "N", text)
    return text[:110]


def _parse_shard(text):
    m = re.fullmatch(r"(\d+)/(\d+)", text or "")
    if not m or not 0 <= int(m.group(1)) < int(m.group(2)):
        raise argparse.ArgumentTypeError(f"--shard takes K/N with 0 <= K < N, got '{text}'")
    return int(m.group(1)), int(m.group(2))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--suite", action="append", choices=list(SUITES),
                    help="a suite to run (repeatable; default: all five)")
    ap.add_argument("--dims", choices=["fixed", "symbolic", "both"], default="both")
    ap.add_argument("--device", choices=["CPU", "CUDA", "FAKE"], default="CPU",
                    help="run ONNX's test variants for this device (CUDA: the CUDA backend; FAKE: "
                         "the CUDA variants on the fake device of build/libductile_fakedev.so)")
    ap.add_argument("--filter", default="", help="run tests whose name matches this regex")
    ap.add_argument("--shard", type=_parse_shard, default=None, help="K/N: every N-th test from K")
    ap.add_argument("--json", default="", help="write the results here")
    ap.add_argument("--write-expectations", action="store_true")
    ap.add_argument("--check", action="store_true",
                    help="exit 1 on a difference from expected_failures.txt")
    ap.add_argument("--verbose", action="store_true", help="print each test as it runs")
    args = ap.parse_args(argv)
    global DEVICE_SUFFIX
    device = args.device
    if device == "FAKE":
        lib = os.path.join(ROOT, "build", "libductile_fakedev.so")
        if not os.path.exists(lib):
            ap.error(f"--device=FAKE needs {os.path.relpath(lib)}: run `make fakedev` first")
        os.environ["DUCTILE_LIB"] = lib  # read when ductile is first imported (load_runner)
        device = "CUDA"
    DEVICE_SUFFIX = "_" + device.lower()
    variants = VARIANTS if args.dims == "both" else (args.dims,)
    runner, backend = load_runner()
    chosen = select(runner.test_cases, args.suite or list(SUITES), args.filter, args.shard)

    def progress(variant, suite, name, outcome, seconds):
        print(f"{variant:8s} {suite}/{name} {seconds:6.2f}s {outcome}", flush=True)

    started = time.monotonic()
    results = run_tests(runner, backend, chosen, variants, progress if args.verbose else None)
    print_report(results)
    print(f"{sum(len(t) for t in results.values())} runs in {time.monotonic() - started:.0f} s")
    if args.json:
        write_json(results, args.json)
        print(f"wrote {args.json}")
    if args.write_expectations:
        write_expectations(results, whole_suites=not args.filter and not args.shard)
        print(f"wrote {os.path.relpath(EXPECTATIONS)}")
    if args.check:
        # The expectations are the CPU's (test names end in _cpu): a device must pass what
        # the CPU passes, so its results are checked under the CPU's names.
        as_cpu = {v: collections.OrderedDict(((suite, name[:-len(DEVICE_SUFFIX)] + "_cpu"), outcome)
                                             for (suite, name), outcome in tests.items())
                  for v, tests in results.items()}
        regressions, fixed = compare(as_cpu, read_expectations())
        for line in regressions:
            print("REGRESSION " + line)
        for line in fixed:
            print("NOW PASSES " + line + " (run --write-expectations to tighten the ratchet)")
        return 1 if regressions or fixed else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
