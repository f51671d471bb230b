#!/usr/bin/env bash
# Session 44's second GPU check: test_cuda_nonfinite.py's FusedMatMul + Gelu case with cuBLASLt's
# GELU_BIAS epilogue (DUCTILE_CUDA_LT_GELU=1, the default) and the Gelu kernel after (=0), then
# bert_small's FP16 latency both ways (scripts/cuda_latency.py, one process each).
#     OUT=$OUT bash scripts/cuda_s44_gelu.sh <models dir>
set -u
OUT=${OUT:-build/s44g}
. "$(dirname "$0")/device_common.sh"
for sw in 1 0; do
    log "gelu NaN test DUCTILE_CUDA_LT_GELU=$sw"
    DUCTILE_CUDA_LT_GELU=$sw timeout 60 python3 -m pytest -q -rs -p no:cacheprovider tests/python/test_cuda_nonfinite.py -k gelu 2>&1 \
        | grep -E "passed|failed|^FAILED|^E +Assert|SKIPPED" | cut -c1-200 | tee -a "$S"
done
for sw in 0 1; do
    log "bert_small fp16 DUCTILE_CUDA_LT_GELU=$sw"
    DUCTILE_CUDA_LT_GELU=$sw timeout 90 python3 scripts/cuda_latency.py "$M" --precision=fp16 --models=bert_small 2>&1 | tee -a "$S"
done
log "done"
