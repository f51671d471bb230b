#!/usr/bin/env bash
# One GPU call for the channels-last tensor-core convolution (conv_tc_nhwc.cu), from this tree:
# build (and MAIN_TREE's beside it, for the A/B), its tests (every tile forced against the CPU
# engine) and the attention tests (the mma helpers moved to mma.cuh), compute-sanitizer memcheck
# and racecheck on a saved FP16 superres engine at 1x1x64x48 with the kernel forced, ductile's
# FP16 latency (bench/bench_cuda.py, CUDA graphs on) of superres and resnet50 in MAIN_TREE and
# here one after the other, and a per-layer profile of superres 1024 in both. Logs: $OUT.
#   MAIN_TREE=/tmp/m scripts/cuda_conv_tc_check.sh [models dir]
# Unpack each tree into a directory of its own that did not exist before (rm -rf it first): a warm
# device machine keeps other sessions' /tmp, and their untracked sources and newer objects
# there get compiled and linked in (session 9: libductile.so then failed to load). build/ is
# removed here for the same reason (a packed tree has none of its own).
set -u
export PATH=$PATH:/usr/local/cuda/bin
OUT=${OUT:-build/conv_tc_check}
L=$(mktemp -d)   # logs, packed into $OUT/logs.tgz after each step (few files come back)
mkdir -p "$OUT"
export DUCTILE_MODELS=${1:-${DUCTILE_MODELS:-../shared/models}}
export PYTHONUNBUFFERED=1 IMAGE=0 PYTHONPATH=python
M=$DUCTILE_MODELS
S=$OUT/summary.txt
log() { tar czf "$OUT/logs.tgz" -C "$L" . 2>/dev/null; echo "== $* ($(date +%T))" | tee -a "$S"; }
trap 'log exit' EXIT

bench() {   # tree label models
    (cd "$1" && PYTHONPATH=python timeout 130 python3 bench/bench_cuda.py --models "$3" --modes= --iters 50 \
        --out "$L/bench_$2" > "$L/bench_$2.log" 2>&1)
    echo "bench $2 rc=$?" | tee -a "$S"
    grep -E "^\||rel|error|Error" "$L/bench_$2.log" | tail -12 | tee -a "$S"
}
profile() {  # tree label
    (cd "$1" && timeout 40 ./build/ductile --onnx="$M/superres.onnx" --device=cuda --shapes=input:1x1x1024x1024 --fp16 \
        --dumpProfile --cudaGraphs=0 --iterations=50 --warmUp=200 --duration=0 > "$L/profile_$2.log" 2>&1)
    echo "profile $2 rc=$?" | tee -a "$S"
    grep -E "Latency|by tactic|FusedConv" "$L/profile_$2.log" | head -14 | tee -a "$S"
}
nvidia-smi -L 2>&1 | tee -a "$S"
d=$(python3 -c 'import os, nvidia.cudnn as m; print(os.path.dirname(m.__file__) if m.__file__ else list(m.__path__)[0])')
MK=(IMAGE=0 CUDNN_INC="$d/include" CUDNN_LIB="$d/lib"
    NVFLAGS="-O3 -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90 --threads 2")
rm -rf build ${MAIN_TREE:+"$MAIN_TREE/build"}
log "build (main in parallel: ${MAIN_TREE:-none})"
[ -n "${MAIN_TREE:-}" ] && (cd "$MAIN_TREE" && make -j8 "${MK[@]}" all > "$L/build_main.log" 2>&1; echo "main build rc=$?" >> "$S") &
J=16; [ -n "${MAIN_TREE:-}" ] && J=8
make -j$J "${MK[@]}" all > "$L/build.log" 2>&1 || { tail -30 "$L/build.log" | tee -a "$S"; exit 1; }
wait
log "built"

log "pytest test_cuda_conv_tc.py"
timeout 75 python3 -m pytest -q -p no:cacheprovider -rf tests/python/test_cuda_conv_tc.py > "$L/pytest_tc.log" 2>&1
echo "rc=$?" | tee -a "$S"
grep -E "passed|failed|^FAILED|rel-L2" "$L/pytest_tc.log" | head -30 | tee -a "$S"

log "latency: this branch, then main (superres, resnet50; FP16, graphs on)"
bench . branch superres
log "sanitizers: FP16 superres 1x1x64x48, DUCTILE_CUDA_CONV=tc_nhwc, NHWC"
E=$(mktemp)
export DUCTILE_CUDA_CONV=tc_nhwc
DUCTILE_LAYOUT=nhwc ./build/ductile --onnx="$M/superres.onnx" --device=cuda --shapes=input:1x1x64x48 --fp16 \
    --iterations=1 --warmUp=0 --duration=0 --saveEngine="$E" > "$L/san_build.log" 2>&1
echo "engine saved rc=$?" | tee -a "$S"
./build/ductile --loadEngine="$E" --shapes=input:1x1x64x48 --iterations=2 --warmUp=0 --duration=0 --dumpProfile \
    > "$L/san_profile.log" 2>&1
echo "kernels: $(grep -o 'own_tc_nhwc[a-z0-9_]*\|cudnn_nhwc[a-z0-9_]*' "$L/san_profile.log" | sort | uniq -c | tr '\n' ' ')" | tee -a "$S"
timeout 60 compute-sanitizer --tool memcheck --error-exitcode 3 ./build/ductile --loadEngine="$E" \
    --shapes=input:1x1x64x48 --iterations=2 --warmUp=0 --duration=0 > "$L/memcheck.log" 2>&1
echo "memcheck rc=$? $(grep -E 'ERROR SUMMARY' "$L/memcheck.log")" | tee -a "$S"
timeout 60 compute-sanitizer --tool racecheck --error-exitcode 3 ./build/ductile --loadEngine="$E" \
    --shapes=input:1x1x64x48 --iterations=1 --warmUp=0 --duration=0 > "$L/racecheck.log" 2>&1
echo "racecheck rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$L/racecheck.log")" | tee -a "$S"
unset DUCTILE_CUDA_CONV
rm -f "$E"

log "per-layer profile, superres 1x1x1024x1024 FP16, graphs off"
profile . branch
log "each kernel forced on superres 1024 (NHWC, graphs off): per-layer ms"
for f in tc_nhwc_256x64 tc_nhwc_128x128 tc_nhwc_128x64 tc_nhwc_64x64 tc_nhwc_128x32 smallc_nhwc; do
    DUCTILE_LAYOUT=nhwc DUCTILE_CUDA_CONV=$f timeout 30 ./build/ductile --onnx="$M/superres.onnx" --device=cuda \
        --shapes=input:1x1x1024x1024 --fp16 --dumpProfile --cudaGraphs=0 --iterations=20 --warmUp=50 --duration=0 \
        > "$L/forced_$f.log" 2>&1
    echo "$f: $(grep -E 'FusedConv\.' "$L/forced_$f.log" | awk '{print $5 "=" $2 "(" $4 ")"}' | sed 's/cuda.FusedConv.own_//g' | tr '\n' ' ')" | tee -a "$S"
done
[ -n "${MAIN_TREE:-}" ] && bench "$MAIN_TREE" main superres,resnet50
[ -n "${MAIN_TREE:-}" ] && profile "$MAIN_TREE" main
if [ -n "${MORE:-}" ]; then
    log "latency: mobilenet_v2, seg_lraspp"
    [ -n "${MAIN_TREE:-}" ] && bench "$MAIN_TREE" main2 mobilenet_v2,seg_lraspp
    bench . branch2 mobilenet_v2,seg_lraspp
fi
bench . branch_resnet resnet50
log "pytest test_cuda_attention.py (mma.cuh)"
timeout 50 python3 -m pytest -q -p no:cacheprovider -x tests/python/test_cuda_attention.py > "$L/pytest_attn.log" 2>&1
echo "rc=$? $(tail -1 "$L/pytest_attn.log")" | tee -a "$S"
log "done"
