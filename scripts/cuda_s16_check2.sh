#!/usr/bin/env bash
# Session 16's third device call: where the small-C tensor-core conv faults (memcheck on one
# forced case, its kernel built with -lineinfo), then with it not offered
# (DUCTILE_CUDA_SMALLC_MMA=0) the one-launch reductions' tests and FP16 latency of superres,
# seg_lraspp and mobilenet_v2 with DUCTILE_CUDA_REDUCE_CLUSTER=0 / 1 alternating.
#     OUT=$OUT bash scripts/cuda_s16_check2.sh <models dir>
set -u
OUT=${OUT:-build/s16}
. "$(dirname "$0")/device_common.sh"
log "memcheck: forced smallc_mma, superres' first conv"
timeout 200 compute-sanitizer --tool memcheck --show-backtrace device --print-limit 4 python3 -m pytest -q -x -p no:cacheprovider \
    tests/python/test_cuda_conv_tc.py -k "smallc_mma and n1c1m64 and fp16" > "$L/memcheck.log" 2>&1
echo "memcheck rc=$?" | tee -a "$S"
grep -E "Invalid|at 0x|by thread|Address|is out of bounds|ERROR SUMMARY|conv_smallc_mma.cu|passed|failed" "$L/memcheck.log" | head -30 | tee -a "$S"
export DUCTILE_CUDA_SMALLC_MMA=0
log "pytest (smallc_mma not offered)"
timeout 200 python3 -m pytest -q -rf -p no:cacheprovider tests/python/test_cuda_ops.py tests/python/test_cuda.py \
    -k "reduce or seg or superres or mobilenet" > "$L/pytest.log" 2>&1
echo "pytest rc=$?" | tee -a "$S"
grep -E "passed|failed|^FAILED|^ERROR" "$L/pytest.log" | tail -15 | tee -a "$S"
log "latency FP16 (median ms, graphs off / on): reduce cluster off, on, off, on"
for round in 1 2; do
    for sw in 0 1; do
        echo "-- round $round DUCTILE_CUDA_REDUCE_CLUSTER=$sw" | tee -a "$S"
        DUCTILE_CUDA_REDUCE_CLUSTER=$sw timeout 100 python3 scripts/cuda_latency.py "$M" --precision=fp16 --models=seg_lraspp,mobilenet_v2 2>&1 \
            | grep -v "^model" | tee -a "$S"
    done
done
log "ncu seg_lraspp 512 (cluster on)"
timeout 150 python3 scripts/cuda_ncu.py "$L/ncu" seg_lraspp 0 2>&1 | grep -v "PDL" | head -16 | tee -a "$S"
log "done"
tar czf "$OUT/logs.tgz" -C "$L" .
