#!/usr/bin/env bash
# One device call that checked session 10's CUDA changes, then behind switches (DESIGN.md:
# "Session 10's device time ran out ...") and measured them against the defaults (session 12
# turned them on: now "on" is the default, and the "defaults" row is the same as "all on"). Run from the repository root on the GPU machine, after
# scripts/device_prebuild.sh here (carry ".devbuild/obj/src/backend/cuda" and the suite models):
#     OUT=$OUT bash scripts/cuda_verify_switches.sh <models dir>
# About 400-500 s: link (~30 s with prebuilt kernels), C tests, the CUDA pytest files with every
# switch on, GPU-resident FP16 latency with the switches off / on one at a time / all on,
# compute-sanitizer on the small-C kernel and the split-key attention. Logs: $OUT/logs.tgz.
set -u
OUT=${OUT:-build/verify}
. "$(dirname "$0")/device_common.sh"
ON=(DUCTILE_TACTIC_TIMING=replay DUCTILE_CUDA_FASTDIV=1 DUCTILE_CUDA_CONV_TC=1 DUCTILE_CAST_TRANSPOSE=1)
log "C tests, every switch on"
for t in $CT; do
    env "${ON[@]}" timeout 90 build/tests/$t > "$L/c_$t.log" 2>&1
    echo "$t rc=$? $(tail -1 "$L/c_$t.log")" | tee -a "$S"
done
log "latency FP16 (median ms, graphs on): defaults, each switch alone, all on"
for sw in "" "${ON[@]}" "${ON[*]}"; do
    echo "-- ${sw:-defaults}" | tee -a "$S"
    env $sw timeout 70 python3 scripts/cuda_latency.py "$M" --precision=fp16 --models=superres,mobilenet_v2,bert_small 2>&1 \
        | grep -v "^model" | awk '{print $1, $3, $5}' | tr '\n' ';' | tee -a "$S"
    echo | tee -a "$S"
done
log "pytest, every switch on"
env "${ON[@]}" timeout 200 python3 -m pytest -q -rf -p no:cacheprovider tests/python/test_cuda_conv_tc.py tests/python/test_cuda_ops.py \
    tests/python/test_layout.py tests/python/test_cuda_attention.py tests/python/test_cuda_fusions.py tests/python/test_fuse_layernorm.py \
    tests/python/test_cuda.py > "$L/pytest.log" 2>&1
echo "pytest rc=$?" | tee -a "$S"
grep -E "passed|failed|^FAILED" "$L/pytest.log" | tail -15 | tee -a "$S"
log "sanitizers: small-C kernel (superres FP16, forced), split-key attention (bert FP16 2x40)"
E=$(mktemp)
for spec in "superres.onnx input:1x1x40x36 DUCTILE_CUDA_CONV=smallc_nhwc" "bert_small.onnx input_ids:2x40,attention_mask:2x40 DUCTILE_CUDA_ATTENTION=mma_split"; do
    set -- $spec
    env "$3" DUCTILE_LAYOUT=nhwc ./build/ductile --onnx="$M/$1" --device=cuda --shapes="$2" --fp16 --iterations=1 --warmUp=0 \
        --duration=0 --saveEngine="$E" > /dev/null 2>&1
    for tool in memcheck racecheck; do
        env "$3" timeout 120 compute-sanitizer --tool $tool --kernel-name-exclude kns=nvjet --error-exitcode 3 ./build/ductile \
            --loadEngine="$E" --shapes="$2" --iterations=1 --warmUp=0 --duration=0 > "$L/san.log" 2>&1
        echo "$tool $1 $3 rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$L/san.log")" | tee -a "$S"
    done
done
rm -f "$E"
log "done"
tar czf "$OUT/logs.tgz" -C "$L" .
