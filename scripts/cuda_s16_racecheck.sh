#!/usr/bin/env bash
# Session 16: which kernel racecheck's "Internal Sanitizer Error" (a hardware exception it fails
# to handle, then error 700 at the next layer) comes from on bert_small 1x40 FP16 with the
# split-key attention forced: racecheck on the attention kernel alone, then on every kernel but
# it.
#     OUT=$OUT bash scripts/cuda_s16_racecheck.sh <models dir>
set -u
OUT=${OUT:-build/s16}
. "$(dirname "$0")/device_common.sh"
SH=input_ids:1x40,attention_mask:1x40
DUCTILE_CUDA_ATTENTION=mma_split timeout 120 build/ductile --onnx="$M/bert_small.onnx" --device=cuda --fp16 --shapes=$SH \
    --iterations=1 --warmUp=0 --duration=0 --saveEngine="$L/bert.engine" --dumpLayerInfo > "$L/bert_build.log" 2>&1
echo "bert build rc=$?" | tee -a "$S"
run() {
    timeout 60 compute-sanitizer "$@" build/ductile --loadEngine="$L/bert.engine" --shapes=$SH --iterations=1 --warmUp=0 \
        --duration=0 --cudaGraphs=0 > "$L/san.log" 2>&1
    echo "$* rc=$?" | tee -a "$S"
    grep -E "ERROR SUMMARY|RACECHECK SUMMARY|Internal|error:|Invalid|at 0x" "$L/san.log" | head -6 | tee -a "$S"
}
run --tool racecheck --kernel-name kns=attention_split
run --tool racecheck --kernel-name-exclude kns=attention_split
grep -iE "attention|Where" "$L/bert_build.log" | head -8 | tee -a "$S"
log "done"
