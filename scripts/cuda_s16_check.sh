#!/usr/bin/env bash
# Session 16's second device call: the one-launch channels-last reductions (reduce_cluster.cu)
# and the small-C tensor-core conv (conv_smallc_mma.cu): their tests, then FP16 latency of
# superres and seg_lraspp with each switched off / on (alternating processes), then where the
# kernels' time goes (ncu) with both on.
#     OUT=$OUT bash scripts/cuda_s16_check.sh <models dir>
set -u
OUT=${OUT:-build/s16}
. "$(dirname "$0")/device_common.sh"
log "C tests"
for t in test_cuda_host test_cuda_tactics; do
    timeout 150 build/tests/$t > "$L/c_$t.log" 2>&1
    echo "$t rc=$? $(tail -1 "$L/c_$t.log")" | tee -a "$S"
    grep -E "FAIL|smallc|tactic 38" "$L/c_$t.log" | head -8 | tee -a "$S"
done
log "pytest"
timeout 240 python3 -m pytest -q -rf -p no:cacheprovider tests/python/test_cuda_conv_tc.py tests/python/test_cuda_ops.py \
    tests/python/test_cli_device.py "tests/python/test_cuda.py" -k "smallc or reduce or mobilenet or superres or seg or tactic" \
    > "$L/pytest.log" 2>&1
echo "pytest rc=$?" | tee -a "$S"
grep -E "passed|failed|^FAILED|^ERROR" "$L/pytest.log" | tail -15 | tee -a "$S"
log "latency FP16 (median ms, graphs off / on): switches off, on, off, on"
for round in 1 2; do
    for sw in "DUCTILE_CUDA_REDUCE_CLUSTER=0 DUCTILE_CUDA_SMALLC_MMA=0" "DUCTILE_CUDA_REDUCE_CLUSTER=1 DUCTILE_CUDA_SMALLC_MMA=1"; do
        echo "-- round $round $sw" | tee -a "$S"
        env $sw timeout 120 python3 scripts/cuda_latency.py "$M" --precision=fp16 --models=superres,seg_lraspp,mobilenet_v2 2>&1 \
            | grep -v "^model" | tee -a "$S"
    done
done
log "ncu"
timeout 150 python3 scripts/cuda_ncu.py "$L/ncu" superres 0,1 2>&1 | grep -v "PDL" | tee -a "$S"
timeout 150 python3 scripts/cuda_ncu.py "$L/ncu" seg_lraspp 0 2>&1 | grep -v "PDL" | head -20 | tee -a "$S"
log "done"
tar czf "$OUT/logs.tgz" -C "$L" .
