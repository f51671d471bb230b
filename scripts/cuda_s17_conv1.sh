#!/usr/bin/env bash
# Session 17's second device call: why superres' first conv (1 -> 64, 5x5) runs on cuDNN's
# convolve_common_engine (22 us warm at 224x224, a third of the model) and not on the small-C
# tensor-core kernel: the tactic timer's numbers (DUCTILE_TACTIC_LOG=1), then FP16 latency with
# the timer's choice and with the kernel forced (DUCTILE_CUDA_CONV=smallc_mma), alternating, and
# ncu (warm) of the forced engine at 224.
#     OUT=$OUT bash scripts/cuda_s17_conv1.sh <models dir>
set -u
OUT=${OUT:-build/s17}
. "$(dirname "$0")/device_common.sh"
log "tactic log, superres FP16 224/512/1024"
DUCTILE_TACTIC_LOG=1 timeout 120 python3 scripts/cuda_latency.py "$M" --precision=fp16 --models=superres > "$L/taclog.txt" 2>&1
grep -E "conv1|conv4" "$L/taclog.txt" | head -80 | tee -a "$S"
grep -v "^tactic" "$L/taclog.txt" | tee -a "$S"
for round in 1 2; do
    for sw in "" smallc_mma; do
        echo "-- round $round DUCTILE_CUDA_CONV=$sw" | tee -a "$S"
        DUCTILE_CUDA_CONV=$sw timeout 100 python3 scripts/cuda_latency.py "$M" --precision=fp16 --models=superres 2>&1 \
            | grep -v "^model" | tee -a "$S"
    done
done
log "ncu warm, forced"
DUCTILE_CUDA_CONV=smallc_mma NCU_WARM=1 timeout 150 python3 scripts/cuda_ncu.py "$L/ncu" superres 0 2>&1 | grep -v PDL | tee -a "$S"
log "done"
tar czf "$OUT/logs.tgz" -C "$L" .
