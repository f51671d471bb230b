#!/usr/bin/env bash
# Session 16's first device call: where superres' and seg_lraspp's small-shape FP16 time goes now
# (kernels per execute and their ncu durations, the CLI's per-layer tactics), and whether
# compute-sanitizer's racecheck still fails on the split-key attention (bert_small 1x16).
#     OUT=$OUT bash scripts/cuda_s16_profile.sh <models dir>
set -u
OUT=${OUT:-build/s16}
. "$(dirname "$0")/device_common.sh"
log "ncu superres 0,1 / seg_lraspp 0"
timeout 300 python3 scripts/cuda_ncu.py "$L/ncu" superres 0,1 2>&1 | tee -a "$S"
timeout 200 python3 scripts/cuda_ncu.py "$L/ncu" seg_lraspp 0 2>&1 | tee -a "$S"
log "racecheck bert_small 1x40 FP16, split-key attention forced (mma_split), PDL on / off"
DUCTILE_CUDA_ATTENTION=mma_split timeout 120 build/ductile --onnx="$M/bert_small.onnx" --device=cuda --fp16 \
    --shapes=input_ids:1x40,attention_mask:1x40 --iterations=1 --warmUp=0 --duration=0 --saveEngine="$L/bert.engine" > "$L/bert_build.log" 2>&1
echo "bert build rc=$?" | tee -a "$S"
for pdl in 1 0; do
    DUCTILE_CUDA_PDL=$pdl timeout 150 compute-sanitizer --tool racecheck --kernel-name-exclude kns=nvjet --error-exitcode 3 build/ductile \
        --loadEngine="$L/bert.engine" --shapes=input_ids:1x40,attention_mask:1x40 --iterations=1 --warmUp=0 --duration=0 \
        > "$L/racecheck_pdl$pdl.log" 2>&1
    echo "racecheck PDL=$pdl rc=$?" | tee -a "$S"
    grep -E "ERROR SUMMARY|RACECHECK SUMMARY|Internal|Error" "$L/racecheck_pdl$pdl.log" | head -8 | tee -a "$S"
done
log "done"
tar czf "$OUT/logs.tgz" -C "$L" .
