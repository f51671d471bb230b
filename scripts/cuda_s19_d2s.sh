#!/usr/bin/env bash
# The GPU check of session 19's last CUDA work, which no device time was left to run (run it
# first next session, then turn the fold on by default): the conv -> DepthToSpace fold
# (builder/fuse_d2s.c, conv_patch_mma.cu's DepthToSpace store) and the shared epilogue store
# (conv_epi.cuh), most important first, each step logged as it ends: the fold's pytest, memcheck
# on it, superres FP16 latency with DUCTILE_FUSE_CONV_D2S=0 / 1, the superres model tests, the
# conv-tactic C tests (every conv tactic forced on the suite models), the forced-kernel pytest.
#     OUT=$OUT bash scripts/cuda_s19_d2s.sh <models dir>
set -u
OUT=${OUT:-build/s19e}
. "$(dirname "$0")/device_common.sh"
log "pytest: the fold"
timeout 90 python3 -m pytest -q -rf -p no:cacheprovider tests/python/test_cuda_fuse_d2s.py > "$L/py_d2s.log" 2>&1
echo "test_cuda_fuse_d2s rc=$? $(grep -E 'passed|failed|error' "$L/py_d2s.log" | tail -1)" | tee -a "$S"
grep -E "^FAILED|^E  " "$L/py_d2s.log" | head -12 | tee -a "$S"
log "latency superres FP16: DUCTILE_FUSE_CONV_D2S 0 / 1"
for sw in 0 1; do
    echo "-- DUCTILE_FUSE_CONV_D2S=$sw" | tee -a "$S"
    DUCTILE_FUSE_CONV_D2S=$sw timeout 60 python3 scripts/cuda_latency.py "$M" --precision=fp16 --models=superres 2>&1 \
        | grep -v "^model" | tee -a "$S"
done
log "memcheck: the fold"
timeout 60 compute-sanitizer --tool memcheck --print-limit 4 python3 -m pytest -q -x -p no:cacheprovider \
    tests/python/test_cuda_fuse_d2s.py -k "fp16" > "$L/memcheck.log" 2>&1
echo "memcheck rc=$?" | tee -a "$S"
grep -E "Invalid|ERROR SUMMARY|passed|failed" "$L/memcheck.log" | head -6 | tee -a "$S"
log "pytest: superres model tests, forced kernels"
timeout 100 python3 -m pytest -q -rf -p no:cacheprovider tests/python/test_cuda.py -k superres tests/python/test_cuda_conv_tc.py \
    tests/python/test_layout.py > "$L/py.log" 2>&1
echo "pytest rc=$? $(grep -E 'passed|failed|error' "$L/py.log" | tail -1)" | tee -a "$S"
grep -E "^FAILED" "$L/py.log" | head -8 | tee -a "$S"
log "C tests"
for t in test_cuda_tactics test_cuda_host; do
    timeout 60 build/tests/$t > "$L/c_$t.log" 2>&1
    echo "$t rc=$? $(tail -1 "$L/c_$t.log")" | tee -a "$S"
done
log "done"
tar czf "$OUT/logs.tgz" -C "$L" .
