#!/usr/bin/env bash
# Session 18's diagnostic call: why gemm_norm.cu's kernel takes 10-30 us where cuBLASLt + the
# LayerNorm kernel take 6-10 (H200 calls 1-2): ncu's sections (speed of light, occupancy,
# launch, warp states, instruction counts) of the forced own paths on bert_small FP16 at
# 1x16 and 8x128, beside cuBLASLt's kernels of the same engine.
#     OUT=$OUT bash scripts/cuda_s18_diag.sh <models dir>
set -u
OUT=${OUT:-build/s18d}
. "$(dirname "$0")/device_common.sh"
for p in own64 own64_splitk; do
    log "ncu detail: DUCTILE_CUDA_MATMUL_NORM=$p"
    DUCTILE_CUDA_MATMUL_NORM=$p NCU_WARM=1 NCU_DETAIL=1 NCU_KERNEL="gemm_norm|nvjet" timeout 200 \
        python3 scripts/cuda_ncu.py "$L/ncu_$p" bert_small 0,1 2>&1 | grep -v -E "PDL|Warning|warn|padding|is_causal|return opset" | tee -a "$S"
    for f in "$L/ncu_$p"/detail_*.txt; do
        echo "-- $f" >> "$S"
        grep -E "gemm_norm_k|nvjet|Duration|Registers Per|Achieved Occupancy|Theoretical Occupancy|Block Limit|Dynamic Shared|Stall|Warp Cycles Per Issued|Executed Ipc|Memory Throughput|Compute \(SM\)|Cluster|Waves" "$f" | head -80 >> "$S"
    done
done
log "done"
tar czf "$OUT/logs.tgz" -C "$L" .
