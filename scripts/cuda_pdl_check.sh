#!/usr/bin/env bash
# One device call that checks programmatic dependent launch (src/backend/cuda/launch.cuh, on by
# default) on the GPU: the CUDA C tests and the CUDA pytest files with it on, then FP16 latency
# of the suite models with it off and on (alternating processes). Run from the repository root
# on the GPU machine after scripts/device_prebuild.sh here (carry the suite models and the
# prebuilt kernels; see device_prebuild.sh):
#     OUT=$OUT bash scripts/cuda_pdl_check.sh <models dir>
# Logs: $OUT/logs.tgz, summary $OUT/summary.txt.
set -u
OUT=${OUT:-build/pdl}
. "$(dirname "$0")/device_common.sh"
log "C tests (PDL on)"
for t in $CT; do
    timeout 90 build/tests/$t > "$L/c_$t.log" 2>&1
    echo "$t rc=$? $(tail -1 "$L/c_$t.log")" | tee -a "$S"
done
log "pytest (PDL on)"
timeout ${PYTEST_S:-240} python3 -m pytest -q -rf -p no:cacheprovider tests/python/test_cuda_conv_tc.py tests/python/test_cuda_ops.py \
    tests/python/test_layout.py tests/python/test_cuda_attention.py tests/python/test_cuda_fusions.py tests/python/test_fuse_layernorm.py \
    tests/python/test_cuda.py > "$L/pytest.log" 2>&1
echo "pytest rc=$?" | tee -a "$S"
grep -E "passed|failed|^FAILED" "$L/pytest.log" | tail -15 | tee -a "$S"
log "latency FP16 (median ms, graphs off / on): PDL off, on, off, on"
for pdl in 0 1 0 1; do
    echo "-- DUCTILE_CUDA_PDL=$pdl" | tee -a "$S"
    DUCTILE_CUDA_PDL=$pdl timeout 100 python3 scripts/cuda_latency.py "$M" --precision=fp16 2>&1 | grep -v "^model" | tee -a "$S"
done
log "done"
tar czf "$OUT/logs.tgz" -C "$L" .
