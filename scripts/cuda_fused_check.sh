#!/usr/bin/env bash
# One device call (session 13) that checks cuDNN's conv-bias-activation on half data
# (conv.c, DUCTILE_CUDNN_FUSED_HALF) and the block limit of programmatic dependent launch
# (launch.c, DUCTILE_CUDA_PDL_MAX_BLOCKS): CUDA C tests and the model/fusion/layout pytest
# files with the defaults, FP16 latency (GPU-resident, graphs) per setting, and bench_cuda's
# five models (ductile only, defaults). Run from the
# repository root on the GPU machine after scripts/device_prebuild.sh here:
#     OUT=$OUT bash scripts/cuda_fused_check.sh <models dir>
set -u
OUT=${OUT:-build/fused}
. "$(dirname "$0")/device_common.sh"
log "C tests (defaults)"
for t in test_cuda_tactics test_cuda_host test_device_path test_cuda_pw_mma test_cuda_no_alloc; do
    timeout 90 build/tests/$t > "$L/c_$t.log" 2>&1
    echo "$t rc=$? $(tail -1 "$L/c_$t.log")" | tee -a "$S"
done
log "pytest (defaults)"
timeout 200 python3 -m pytest -q -rf -p no:cacheprovider tests/python/test_cuda.py tests/python/test_cuda_fusions.py tests/python/test_cuda_ops.py \
    tests/python/test_layout.py tests/python/test_cuda_conv_tc.py > "$L/pytest.log" 2>&1
echo "pytest rc=$?" | tee -a "$S"
grep -E "passed|failed|^FAILED" "$L/pytest.log" | tail -15 | tee -a "$S"
log "latency FP16 (median ms, graphs off / on)"
for sw in "" DUCTILE_CUDNN_FUSED_HALF=0; do
    echo "-- ${sw:-defaults}" | tee -a "$S"
    env $sw timeout 60 python3 scripts/cuda_latency.py "$M" --precision=fp16 2>&1 | grep -v "^model" | tee -a "$S"
done
log "bench_cuda, ductile only (defaults)"
timeout ${BENCH_S:-200} python3 bench/bench_cuda.py --modes= --iters 50 --out "$L/bench" 2>&1 \
    | grep '"ductile_ms"' | grep -o '"model": "[^"]*"\|"shape": "[^"]*"\|"ductile_ms": [0-9.]*\|"ductile_rel_l2": [0-9.e-]*' \
    | paste -d' ' - - - - | tee -a "$S"
log "done"
tar czf "$OUT/logs.tgz" -C "$L" .
