#!/usr/bin/env bash
# Session 17's fourth device call: the half types' 8-channel 3x3 depthwise NHWC kernel (its C
# test, the suite tests, mobilenet_v2 / superres FP16 latency with DUCTILE_CUDA_DW8=0 / 1
# alternating) and ncu stall reasons of the kernels that run superres 224 slowly (the forced
# small-C tensor-core conv, conv_tc_nhwc_k) and of mobilenet_v2 b1's depthwise kernels.
#     OUT=$OUT bash scripts/cuda_s17_check2.sh <models dir>
set -u
OUT=${OUT:-build/s17}
. "$(dirname "$0")/device_common.sh"
log "test_cuda_dw"
timeout 120 build/tests/test_cuda_dw 2>&1 | tail -5 | tee -a "$S"
log "pytest"
timeout 300 python3 -m pytest -q -rf -p no:cacheprovider tests/python/test_cuda.py tests/python/test_layout.py \
    -k "mobilenet or superres or precision or cuda" > "$L/pytest.log" 2>&1
echo "pytest rc=$?" | tee -a "$S"
grep -E "passed|failed|^FAILED|^ERROR" "$L/pytest.log" | tail -15 | tee -a "$S"
log "latency FP16: DUCTILE_CUDA_DW8 0 / 1"
ab_latency DUCTILE_CUDA_DW8 mobilenet_v2,superres
log "ncu stalls: superres 224 forced smallc_mma; mobilenet_v2 b1 depthwise"
DUCTILE_CUDA_CONV=smallc_mma NCU_WARM=1 NCU_DETAIL=1 NCU_KERNEL="smallc|conv_tc_nhwc" timeout 200 python3 scripts/cuda_ncu.py "$L/ncu" superres 0 2>&1 | grep -v PDL | tee -a "$S"
NCU_WARM=1 NCU_DETAIL=1 NCU_KERNEL="dw3|depthwise" timeout 200 python3 scripts/cuda_ncu.py "$L/ncu" mobilenet_v2 0 2>&1 | grep -v PDL | head -14 | tee -a "$S"
log "done"
tar czf "$OUT/logs.tgz" -C "$L" .
