#!/usr/bin/env bash
# Session 17's third device call: the small-C tensor-core conv with its staging loads issued
# together (tests, memcheck, its timed us), the output Cast folded into DepthToSpace (tests;
# superres FP16 latency with DUCTILE_CAST_OUTPUT=0 / 1 alternating), and ncu's sections of
# superres' and mobilenet_v2's small-shape kernels.
#     OUT=$OUT bash scripts/cuda_s17_check.sh <models dir>
set -u
OUT=${OUT:-build/s17}
. "$(dirname "$0")/device_common.sh"
log "pytest"
timeout 300 python3 -m pytest -q -rf -p no:cacheprovider tests/python/test_cuda_conv_tc.py tests/python/test_layout.py \
    tests/python/test_cuda.py -k "smallc or depth_to_space or converting or cast or superres or fp16_model" > "$L/pytest.log" 2>&1
echo "pytest rc=$?" | tee -a "$S"
grep -E "passed|failed|^FAILED|^ERROR" "$L/pytest.log" | tail -15 | tee -a "$S"
log "memcheck: forced smallc_mma"
timeout 200 compute-sanitizer --tool memcheck --print-limit 4 python3 -m pytest -q -x -p no:cacheprovider \
    tests/python/test_cuda_conv_tc.py -k "smallc_mma and fp16" > "$L/memcheck.log" 2>&1
echo "memcheck rc=$?" | tee -a "$S"
grep -E "Invalid|ERROR SUMMARY|passed|failed" "$L/memcheck.log" | head -8 | tee -a "$S"
log "tactic log superres c1/c4"
DUCTILE_TACTIC_LOG=1 timeout 120 python3 scripts/cuda_latency.py "$M" --precision=fp16 --models=superres > "$L/taclog.txt" 2>&1
grep -E "c1/Conv|c4/Conv" "$L/taclog.txt" | head -40 | tee -a "$S"
log "latency superres FP16: DUCTILE_CAST_OUTPUT 0 / 1"
ab_latency DUCTILE_CAST_OUTPUT superres,mobilenet_v2
log "ncu warm + sections: superres 0, mobilenet_v2 0"
NCU_WARM=1 NCU_DETAIL=1 timeout 200 python3 scripts/cuda_ncu.py "$L/ncu" superres 0 2>&1 | grep -v PDL | tee -a "$S"
NCU_WARM=1 NCU_DETAIL=1 timeout 200 python3 scripts/cuda_ncu.py "$L/ncu" mobilenet_v2 0 2>&1 | grep -v PDL | head -12 | tee -a "$S"
log "done"
tar czf "$OUT/logs.tgz" -C "$L" .
