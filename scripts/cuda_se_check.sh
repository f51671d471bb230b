#!/usr/bin/env bash
# One device call (session 15) for FusedSqueezeExcite (builder/fuse_se_pool.c, cuda
# squeeze_excite.cu): CUDA C tests, the fusion/model/layout pytest files, and seg_lraspp's
# FP16 latency with the fusion off and on (processes alternating), plus mobilenet_v2's and
# bert_small's as a control (no SE blocks). Run from the repository root on the GPU machine
# after scripts/device_prebuild.sh here:
#     OUT=$OUT bash scripts/cuda_se_check.sh <models dir>
set -u
OUT=${OUT:-build/se}
. "$(dirname "$0")/device_common.sh"
log "C tests"
for t in test_cuda_host test_device_path test_cuda_tactics test_cuda_no_alloc; do
    timeout 120 build/tests/$t > "$L/c_$t.log" 2>&1
    echo "$t rc=$? $(tail -1 "$L/c_$t.log")" | tee -a "$S"
done
log "pytest"
timeout ${PYTEST_S:-260} python3 -m pytest -q -rf -p no:cacheprovider tests/python/test_fuse_se_pool.py \
    tests/python/test_cuda_fusions.py tests/python/test_cuda.py tests/python/test_layout.py \
    tests/python/test_cuda_ops.py > "$L/pytest.log" 2>&1
echo "pytest rc=$?" | tee -a "$S"
grep -E "passed|failed|^FAILED|^ERROR" "$L/pytest.log" | tail -25 | tee -a "$S"
log "latency FP16 (median ms, graphs off / on), SE pool fusion off / on, alternating"
for round in 1 2; do
    for sw in DUCTILE_FUSE_SE_POOL=0 DUCTILE_FUSE_SE_POOL=1; do
        echo "-- round $round $sw" | tee -a "$S"
        env $sw timeout 90 python3 scripts/cuda_latency.py "$M" --precision=fp16 --models=seg_lraspp,mobilenet_v2 2>&1 \
            | grep -v "^model" | tee -a "$S"
    done
done
log "done"
tar czf "$OUT/logs.tgz" -C "$L" .
