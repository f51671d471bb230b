#!/usr/bin/env bash
# Session 22's closing GPU check, on the current C code (the kernels prebuilt: no .cu changed
# since session 19; the builder's engine rewrite, precision check, prune and the default-on
# conv -> DepthToSpace fold did), within one call: the CUDA C tests but the tactic sweep, then
# the CUDA Python tests, most important first, each file's result logged as it ends.
#     OUT=$OUT bash scripts/cuda_s22_check.sh <models dir>
set -u
OUT=${OUT:-build/s22c}
. "$(dirname "$0")/device_common.sh"
log "C tests"
for t in test_cuda_host test_device_path test_cuda_no_alloc test_cuda_dw test_cuda_pw_mma test_cuda_gemm_norm test_cuda_timer; do
    timeout 40 build/tests/$t > "$L/c_$t.log" 2>&1
    echo "$t rc=$? $(tail -1 "$L/c_$t.log")" | tee -a "$S"
done
for f in test_cuda.py test_cli_device.py test_cuda_attention.py test_cuda_ops.py test_cuda_fusions.py test_cuda_lazy.py; do
    left=$((${BUDGET_S:-330} - SECONDS))
    [ $left -lt 15 ] && { log "no time left for $f"; continue; }
    timeout $left python3 -m pytest -q -rf -p no:cacheprovider tests/python/$f > "$L/py_$f.log" 2>&1
    echo "$f rc=$? $(grep -E 'passed|failed|error' "$L/py_$f.log" | tail -1)" | tee -a "$S"
    grep -E "^FAILED|^ERROR" "$L/py_$f.log" | head -6 | tee -a "$S"
done
log "done"
tar czf "$OUT/logs.tgz" -C "$L" .
