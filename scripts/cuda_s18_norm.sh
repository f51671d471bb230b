#!/usr/bin/env bash
# Session 18's first device call: FusedMatMul with norm = 1 (the residual LayerNorm in the
# product's layer; gemm_norm.cu's tensor-core kernel holding a row in a cluster of blocks):
# its C test against a double reference, the CUDA pytest of the fusion (every path forced) and
# of the transformer fusions, compute-sanitizer memcheck of the forced cluster paths, the
# builder's tactic timings for bert_small's norm layers, and bert_small's FP16 latency with
# DUCTILE_FUSE_MATMUL_NORM=0 / 1 alternating; ncu's warm kernel list of bert 1x16.
#     OUT=$OUT bash scripts/cuda_s18_norm.sh <models dir>
set -u
OUT=${OUT:-build/s18}
. "$(dirname "$0")/device_common.sh"
log "C tests"
for t in test_cuda_gemm_norm test_cuda_tactics; do
    timeout 150 build/tests/$t > "$L/c_$t.log" 2>&1
    echo "$t rc=$? $(tail -1 "$L/c_$t.log")" | tee -a "$S"
    grep -E "rel-L2|FAIL" "$L/c_$t.log" | head -10 | tee -a "$S"
done
log "pytest"
timeout 300 python3 -m pytest -q -rf -p no:cacheprovider tests/python/test_fuse_matmul_norm.py \
    ${PYTEST_MORE:-} > "$L/pytest.log" 2>&1
echo "pytest rc=$?" | tee -a "$S"
grep -E "passed|failed|^FAILED|^ERROR" "$L/pytest.log" | tail -15 | tee -a "$S"
timeout 120 python3 -m pytest -q -rf -p no:cacheprovider tests/python/test_cuda.py -k "bert" > "$L/pytest2.log" 2>&1
echo "pytest bert rc=$?" | tee -a "$S"
grep -E "passed|failed|^FAILED|^ERROR" "$L/pytest2.log" | tail -8 | tee -a "$S"
log "memcheck: forced own paths"
for p in own16_splitk own32_splitk; do
    DUCTILE_CUDA_MATMUL_NORM=$p timeout 120 compute-sanitizer --tool memcheck --print-limit 4 python3 -m pytest -q -x \
        -p no:cacheprovider tests/python/test_fuse_matmul_norm.py -k "cuda and bert and fp16 and timed" > "$L/memcheck_$p.log" 2>&1
    echo "memcheck $p rc=$?" | tee -a "$S"
    grep -E "Invalid|ERROR SUMMARY|passed|failed" "$L/memcheck_$p.log" | head -6 | tee -a "$S"
done
log "tactic log bert_small FP16"
DUCTILE_CUDA_GEMM_NORM=1 DUCTILE_TACTIC_LOG=1 timeout 120 python3 scripts/cuda_latency.py "$M" --precision=fp16 --models=bert_small > "$L/taclog.txt" 2>&1
grep -E "layer.0/(attention/)?output/dense/MatMul" "$L/taclog.txt" | head -60 | tee -a "$S"
grep -v "^tactic" "$L/taclog.txt" | tee -a "$S"
log "latency bert_small FP16: DUCTILE_FUSE_MATMUL_NORM 0 / 1"
ab_latency DUCTILE_FUSE_MATMUL_NORM bert_small
log "ncu warm: bert_small 0"
NCU_WARM=1 timeout 150 python3 scripts/cuda_ncu.py "$L/ncu" bert_small 0 2>&1 | grep -v PDL | tee -a "$S"
if [ -n "${BENCH:-}" ]; then
    log "bench_cuda bert_small"
    timeout ${BENCH_S:-200} python3 bench/bench_cuda.py --models=bert_small --commit "${DUCTILE_COMMIT:-unknown}" \
        --out "$OUT/bench" --iters 50 > "$L/bench.log" 2>&1
    echo "bench rc=$?" | tee -a "$S"
    grep -v '^{' "$L/bench.log" | tail -8 | tee -a "$S"
fi
log "done"
tar czf "$OUT/logs.tgz" -C "$L" .
