#!/usr/bin/env bash
# Session 19's first device call: the staged-patch convolution (conv_patch_mma.cu, tactic 45):
# the C tests, pytest with the kernel forced at odd sizes (and the other forced-kernel tests
# of that file), compute-sanitizer memcheck and racecheck on forced runs, the builder's
# timings for superres' convs, superres' FP16 latency with DUCTILE_CUDA_PATCH_MMA=0 / 1
# alternating, ncu's warm kernel list of superres 224.
#     OUT=$OUT bash scripts/cuda_s19_patch.sh <models dir>
set -u
OUT=${OUT:-build/s19}
. "$(dirname "$0")/device_common.sh"
log "C tests"
for t in test_cuda_host test_cuda_tactics; do
    timeout 200 build/tests/$t > "$L/c_$t.log" 2>&1
    echo "$t rc=$? $(tail -1 "$L/c_$t.log")" | tee -a "$S"
    grep -E "FAIL" "$L/c_$t.log" | head -10 | tee -a "$S"
done
grep -E "tactic 45" "$L/c_test_cuda_tactics.log" | head -6 | tee -a "$S"
log "pytest patch_mma + conv_tc"
timeout 300 python3 -m pytest -q -rf -p no:cacheprovider tests/python/test_cuda_conv_tc.py -k "patch_mma or smallc_mma or 128x32" \
    > "$L/pytest.log" 2>&1
echo "pytest rc=$?" | tee -a "$S"
grep -E "passed|failed|^FAILED|^ERROR|Error" "$L/pytest.log" | tail -15 | tee -a "$S"
log "sanitizers: forced patch_mma"
for tool in memcheck racecheck; do
    DUCTILE_LAYOUT=nhwc DUCTILE_CUDA_CONV=patch_mma timeout 150 compute-sanitizer --tool $tool --print-limit 4 \
        python3 -m pytest -q -x -p no:cacheprovider tests/python/test_cuda_conv_tc.py -k "patch_mma and fp16" > "$L/san_$tool.log" 2>&1
    echo "$tool rc=$?" | tee -a "$S"
    grep -E "Invalid|ERROR SUMMARY|RACECHECK SUMMARY|hazard|passed|failed" "$L/san_$tool.log" | head -6 | tee -a "$S"
done
log "tactic log superres FP16"
DUCTILE_TACTIC_LOG=1 timeout 120 python3 scripts/cuda_latency.py "$M" --precision=fp16 --models=superres > "$L/taclog.txt" 2>&1
grep -E "^tactic" "$L/taclog.txt" | head -80 | tee -a "$S"
grep -v "^tactic" "$L/taclog.txt" | tee -a "$S"
log "latency superres / seg / mobilenet FP16: DUCTILE_CUDA_PATCH_MMA 0 / 1"
ab_latency DUCTILE_CUDA_PATCH_MMA superres,seg_lraspp,mobilenet_v2
log "ncu warm: superres 0"
NCU_WARM=1 timeout 150 python3 scripts/cuda_ncu.py "$L/ncu" superres 0 2>&1 | grep -v PDL | tee -a "$S"
log "done"
tar czf "$OUT/logs.tgz" -C "$L" .
