#!/usr/bin/env bash
# Session 19's diagnostic call: ncu's sections (speed of light, occupancy, launch, warp states)
# of superres' own conv kernels at 224x224 FP16: the small-C first conv (conv_smallc_mma_k) and
# the staged-patch kernel the timer picks for the last conv (forcing it everywhere with
# DUCTILE_CUDA_CONV=patch_mma also turned the layout pass off: call 2 profiled NCHW cuDNN).
#     OUT=$OUT bash scripts/cuda_s19_diag.sh <models dir>
set -u
OUT=${OUT:-build/s19d}
. "$(dirname "$0")/device_common.sh"
log "ncu detail: superres (the timer's choice: patch_mma on the last conv)"
NCU_WARM=1 NCU_DETAIL=1 NCU_KERNEL="conv_patch|conv_smallc" timeout 250 \
    python3 scripts/cuda_ncu.py "$L/ncu" superres 0 2>&1 | grep -v -E "PDL|Warning|warn" | tee -a "$S"
for f in "$L/ncu"/detail_*.txt; do
    echo "-- $f" >> "$S"
    grep -E "conv_|transpose|Duration|Registers Per|Achieved Occupancy|Theoretical Occupancy|Block Limit|Dynamic Shared|Stall|Warp Cycles Per Issued|Executed Ipc|Memory Throughput|DRAM Throughput|L2 Hit|Compute \(SM\)|Waves|One or More|No Eligible|Issued Warp" "$f" | head -150 >> "$S"
done
log "done"
tar czf "$OUT/logs.tgz" -C "$L" .
