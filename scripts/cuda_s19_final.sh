#!/usr/bin/env bash
# Session 19's closing device call: the C tests that force every conv tactic on the suite
# models (the staged-patch kernel and the 32-channel small-C blocks included), the model tests of
# test_cuda.py for the three conv models those kernels run in, then `bench_cuda.py` (= make
# bench-cuda) for all five models in one run, each step within BUDGET_S.
#     DUCTILE_COMMIT=<sha> OUT=$OUT bash scripts/cuda_s19_final.sh <models dir>
set -u
OUT=${OUT:-build/s19f}
. "$(dirname "$0")/device_common.sh"
log "C tests"
for t in test_cuda_host test_cuda_tactics test_device_path; do
    timeout 120 build/tests/$t > "$L/c_$t.log" 2>&1
    echo "$t rc=$? $(tail -1 "$L/c_$t.log")" | tee -a "$S"
done
log "pytest (conv models)"
timeout 120 python3 -m pytest -q -rf -p no:cacheprovider tests/python/test_cuda.py -k "superres or mobilenet or seg" \
    tests/python/test_cuda_conv_tc.py tests/python/test_cli_device.py > "$L/py.log" 2>&1
echo "pytest rc=$? $(grep -E 'passed|failed|error' "$L/py.log" | tail -1)" | tee -a "$S"
grep -E "^FAILED|^ERROR" "$L/py.log" | head -8 | tee -a "$S"
log "bench_cuda: all five models"
left=$((${BUDGET_S:-560} - SECONDS))
timeout $left python3 bench/bench_cuda.py --commit "${DUCTILE_COMMIT:-unknown}" --out "$OUT/bench" --iters 50 > "$L/bench.log" 2>&1
echo "bench rc=$?" | tee -a "$S"
grep -v '^{' "$L/bench.log" | tail -30 | tee -a "$S"
log "done"
tar czf "$OUT/logs.tgz" -C "$L" .
