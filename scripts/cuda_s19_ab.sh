#!/usr/bin/env bash
# Session 19's second measuring call: the staged-patch kernel's second form (one m16 tile a
# warp, multiply-shift divisions) and the small-C tensor-core kernel with blocks of 32 output
# channels (DUCTILE_CUDA_SMALLC_MMA_NT=4): the C host test, pytest of both kernels forced (both
# block widths), the builder's timings for superres, FP16 latency A/Bs (processes alternating),
# ncu's warm kernel list of superres 224 with each block width.
#     OUT=$OUT bash scripts/cuda_s19_ab.sh <models dir>
set -u
OUT=${OUT:-build/s19b}
. "$(dirname "$0")/device_common.sh"
log "C tests"
timeout 200 build/tests/test_cuda_host > "$L/c_host.log" 2>&1
echo "test_cuda_host rc=$? $(tail -1 "$L/c_host.log")" | tee -a "$S"
grep FAIL "$L/c_host.log" | head -5 | tee -a "$S"
log "pytest"
for nt in 8 4; do
    DUCTILE_CUDA_SMALLC_MMA_NT=$nt timeout 200 python3 -m pytest -q -rf -p no:cacheprovider tests/python/test_cuda_conv_tc.py \
        -k "patch_mma or smallc_mma" > "$L/pytest_$nt.log" 2>&1
    echo "pytest NT=$nt rc=$?" | tee -a "$S"
    grep -E "passed|failed|^FAILED|^ERROR" "$L/pytest_$nt.log" | tail -8 | tee -a "$S"
done
log "tactic log superres FP16 (NT=4)"
DUCTILE_CUDA_SMALLC_MMA_NT=4 DUCTILE_TACTIC_LOG=1 timeout 120 python3 scripts/cuda_latency.py "$M" --precision=fp16 \
    --models=superres > "$L/taclog.txt" 2>&1
grep -E "^tactic.*(c1|c2|c3|c4)/Conv' profile 0 point 0" "$L/taclog.txt" | tee -a "$S"
log "latency: DUCTILE_CUDA_SMALLC_MMA_NT 8 / 4"
for round in 1 2; do
    for nt in 8 4; do
        echo "-- round $round NT=$nt" | tee -a "$S"
        DUCTILE_CUDA_SMALLC_MMA_NT=$nt timeout 100 python3 scripts/cuda_latency.py "$M" --precision=fp16 \
            --models=superres,mobilenet_v2 2>&1 | grep -v "^model" | tee -a "$S"
    done
done
log "latency: DUCTILE_CUDA_PATCH_MMA 0 / 1 (NT=4)"
DUCTILE_CUDA_SMALLC_MMA_NT=4 ab_latency DUCTILE_CUDA_PATCH_MMA superres
for nt in 8 4; do
    log "ncu warm: superres 0, NT=$nt"
    DUCTILE_CUDA_SMALLC_MMA_NT=$nt NCU_WARM=1 timeout 150 python3 scripts/cuda_ncu.py "$L/ncu$nt" superres 0 2>&1 | grep -v PDL | tee -a "$S"
done
log "done"
tar czf "$OUT/logs.tgz" -C "$L" .
