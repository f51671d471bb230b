#!/usr/bin/env bash
# Session 18's closing device call: every CUDA C test, then the GPU pytest files, those not run
# since session 16 first (the CLI on the device, attention, lazy loading, the transformer
# fusions with FusedMatMul norm = 1 in every BERT engine), each file's summary line.
#     OUT=$OUT bash scripts/cuda_s18_final.sh <models dir>
set -u
OUT=${OUT:-build/s18f}
. "$(dirname "$0")/device_common.sh"
log "C tests"
for t in $CT; do
    timeout 120 build/tests/$t > "$L/c_$t.log" 2>&1
    echo "$t rc=$? $(tail -1 "$L/c_$t.log")" | tee -a "$S"
done
log "pytest"
for f in test_cli_device test_cuda_attention test_cuda_lazy test_cuda_fusions test_fuse_matmul_norm test_cuda_pdl_rule \
         test_cuda test_cuda_ops test_cuda_conv_tc; do
    left=$((${BUDGET_S:-330} - SECONDS))
    [ $left -lt 20 ] && { echo "$f: not run (time)" | tee -a "$S"; continue; }
    timeout $left python3 -m pytest -q -rf -p no:cacheprovider tests/python/$f.py > "$L/py_$f.log" 2>&1
    echo "$f rc=$? $(grep -E 'passed|failed|error' "$L/py_$f.log" | tail -1)" | tee -a "$S"
    grep -E "^FAILED|^ERROR" "$L/py_$f.log" | head -8 | tee -a "$S"
done
log "done"
tar czf "$OUT/logs.tgz" -C "$L" .
