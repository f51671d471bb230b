#!/usr/bin/env bash
# One full GPU check on a CUDA machine, in one call (GPU time is scarce): build with the CUDA
# backend, run the C tests, the CUDA Python tests (every suite model, CUDA engine vs CPU
# engine at min/opt/max/odd, rel-L2 <= 1e-4), the CLI with --device=cuda, and
# compute-sanitizer memcheck on small runs. Logs go to $OUT (or build/cuda_check).
#   scripts/cuda_check.sh [models dir]
# QUICK=1: no C tests, sanitizers or node tests; BENCH=1: also bench/bench_cuda.py (BENCH_ARGS);
# NO_SAN=1: no compute-sanitizer runs; LAT_ARGS: scripts/cuda_latency.py options (LAT_TIMEOUT s); NO_C=1: no C tests; CTESTS="test_a test_b": only these C tests; PYTESTS="tests/python/x.py ...":
# these Python test files instead of the default CUDA ones; NO_PY=1: no Python tests, CLI runs or latency table (a run split over two calls).
set -u
export PATH=$PATH:/usr/local/cuda/bin
OUT=${OUT:-build/cuda_check}
mkdir -p "$OUT"
export DUCTILE_MODELS=${1:-${DUCTILE_MODELS:-../shared/models}}
export PYTHONUNBUFFERED=1
log() { echo "== $*" | tee -a "$OUT/summary.txt"; }

nvidia-smi -L 2>&1 | tee -a "$OUT/summary.txt"
# cuDNN: the toolkit's, else the one PyTorch's wheels bring.
MAKEVARS=()
if [ ! -f /usr/local/include/cudnn.h ]; then
    d=$(python3 -c 'import os, nvidia.cudnn as m; print(os.path.dirname(m.__file__) if m.__file__ else list(m.__path__)[0])' 2>/dev/null)
    [ -n "$d" ] && MAKEVARS=(CUDNN_INC="$d/include" CUDNN_LIB="$d/lib")
    log "cuDNN from $d"
fi
log "build"
start=$(date +%s)
make -j16 "${MAKEVARS[@]}" all > "$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; exit 1; }
log "built in $(( $(date +%s) - start )) s"

if [ -z "${QUICK:-}${NO_C:-}" ]; then
log "C tests"
CT=${CTESTS:-$(ls tests/c/test_*.c | sed 's|tests/c/\(.*\)\.c|\1|')}
make -j16 "${MAKEVARS[@]}" $(for t in $CT; do echo build/tests/$t; done) >> "$OUT/build.log" 2>&1
for t in $(for t in $CT; do echo build/tests/$t; done); do
    timeout 120 "$t" > "$OUT/ctest_$(basename "$t").log" 2>&1
    rc=$?
    echo "$(basename "$t"): rc=$rc $(tail -1 "$OUT/ctest_$(basename "$t").log")" | tee -a "$OUT/summary.txt"
done

fi
if [ -z "${NO_PY:-}" ]; then
log "Python CUDA tests"
timeout ${PYTEST_TIMEOUT:-420} python3 -m pytest -q -s -p no:cacheprovider \
    ${PYTESTS:-tests/python/test_cuda.py tests/python/test_cli_device.py tests/python/test_cuda_ops.py tests/python/test_layout.py \
     tests/python/test_cuda_attention.py tests/python/test_cuda_fusions.py tests/python/test_cuda_lazy.py tests/python/test_cuda_conv_tc.py} \
    > "$OUT/pytest_cuda.log" 2>&1
echo "pytest rc=$?" | tee -a "$OUT/summary.txt"
grep -E "CUDA-vs-CPU|PLACEMENT|CUDA async|passed|failed|Error|^FAILED|assert" "$OUT/pytest_cuda.log" | head -80 | tee -a "$OUT/summary.txt"

log "CLI --device=cuda"
M=$DUCTILE_MODELS
run_cli() { timeout 60 ./build/ductile "$@" > "$OUT/cli.log" 2>&1; echo "rc=$? $*"; grep -E "error|Latency" "$OUT/cli.log" | head -3; }
for spec in "superres.onnx input:1x1x224x224" "superres.onnx input:1x1x512x512" "mobilenet_v2.onnx input:1x3x224x224" \
            "mobilenet_v2.onnx input:32x3x224x224" "seg_lraspp.onnx input_1:1x3x512x512" "seg_lraspp.onnx input_1:1x3x1024x1024" \
            "bert_small.onnx input_ids:1x128,attention_mask:1x128" "bert_small.onnx input_ids:8x512,attention_mask:8x512"; do
    set -- $spec
    run_cli --onnx="$M/$1" --device=cuda --shapes="$2" --iterations=50 --warmUp=200 --duration=0 | tee -a "$OUT/summary.txt"
done
./build/ductile --onnx="$M/seg_lraspp.onnx" --device=cuda --shapes=input_1:1x3x512x512 --dumpLayerInfo --iterations=1 --duration=0 \
    > "$OUT/layerinfo_seg.log" 2>&1
grep -c '"Kernel": "cuda' "$OUT/layerinfo_seg.log" | sed 's/^/seg_lraspp layers on cuda: /' | tee -a "$OUT/summary.txt"

log "GPU-resident latency (device buffers, execute_async, CUDA events)"
timeout ${LAT_TIMEOUT:-150} python3 scripts/cuda_latency.py "$M" ${LAT_ARGS:-} 2>&1 | tee -a "$OUT/summary.txt"
fi
M=$DUCTILE_MODELS

log "compute-sanitizer memcheck"
if [ -n "${QUICK:-}${NO_SAN:-}" ]; then
    log "QUICK or NO_SAN: sanitizers skipped"
elif command -v compute-sanitizer > /dev/null; then
    # The float32 specs run the build under memcheck too (every timed candidate kernel); the
    # "--fp16" specs (tensor-core attention forced to mma or wmma, NHWC convolutions, tiled
    # depthwise) check the run of a saved engine: half builds time twice the candidates.
    SAN_ENGINE=$(mktemp)
    for spec in "superres.onnx input:2x1x40x36" "bert_small.onnx input_ids:2x9,attention_mask:2x9" "seg_lraspp.onnx input_1:1x3x96x80" \
                "bert_small.onnx input_ids:2x40,attention_mask:2x40 --fp16 mma" "bert_small.onnx input_ids:2x40,attention_mask:2x40 --fp16 wmma" \
                "mobilenet_v2.onnx input:2x3x224x224 --fp16" "seg_lraspp.onnx input_1:1x3x96x80 --fp16"; do
        set -- $spec
        if [ -n "${3:-}" ]; then
            env ${4:+DUCTILE_CUDA_ATTENTION=$4} ./build/ductile --onnx="$M/$1" --device=cuda --shapes="$2" $3 --iterations=1 \
                --warmUp=0 --duration=0 --saveEngine="$SAN_ENGINE" > /dev/null 2>&1
            SRC=(--loadEngine="$SAN_ENGINE")
        else
            SRC=(--onnx="$M/$1" --device=cuda)
        fi
        timeout 150 compute-sanitizer --tool memcheck --error-exitcode 3 ./build/ductile "${SRC[@]}" \
            --shapes="$2" --iterations=2 --warmUp=0 --duration=0 > "$OUT/memcheck.log" 2>&1
        echo "memcheck $1 ${3:-} ${4:-} rc=$? $(grep -E 'ERROR SUMMARY' "$OUT/memcheck.log")" | tee -a "$OUT/summary.txt"
    done
    # racecheck on the run of a saved engine: the build's tactic timing launches every
    # candidate kernel dozens of times, which racecheck makes take minutes. cuBLASLt's sm90
    # kernels (nvjet_*) sync through mbarriers and TMA that racecheck does not model: it reports
    # hazards inside them (session 9: 3 in nvjet_sm90_hsh_40x64_64x16_4x1_v_bz_TNN on mobilenet
    # FP16); they are NVIDIA's kernels, not ours, so they are left out of the check.
    for spec in "superres.onnx input:1x1x24x20" "bert_small.onnx input_ids:1x7,attention_mask:1x7" \
                "bert_small.onnx input_ids:1x40,attention_mask:1x40 --fp16 mma" "mobilenet_v2.onnx input:1x3x224x224 --fp16"; do
        set -- $spec
        env ${4:+DUCTILE_CUDA_ATTENTION=$4} ./build/ductile --onnx="$M/$1" --device=cuda --shapes="$2" ${3:-} --iterations=1 --warmUp=0 --duration=0 \
            --saveEngine="$SAN_ENGINE" > /dev/null 2>&1
        timeout 150 compute-sanitizer --tool racecheck --kernel-name-exclude kns=nvjet --error-exitcode 3 ./build/ductile --loadEngine="$SAN_ENGINE" \
            --shapes="$2" --iterations=1 --warmUp=0 --duration=0 > "$OUT/racecheck.log" 2>&1
        echo "racecheck $1 ${3:-} ${4:-} rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/racecheck.log")" | tee -a "$OUT/summary.txt"
    done
    rm -f "$SAN_ENGINE"
else
    log "compute-sanitizer not found"
fi
if [ -z "${QUICK:-}" ]; then
log "ONNX node tests through the CUDA backend"
PYTHONPATH=python timeout ${CONF_TIMEOUT:-200} python3 tests/conformance/run_conformance.py --device=CUDA --suite node --dims fixed --json "$OUT/conformance_cuda.json" \
    > "$OUT/conformance.log" 2>&1
echo "conformance rc=$?" | tee -a "$OUT/summary.txt"
head -60 "$OUT/conformance.log" | tee -a "$OUT/summary.txt"
fi
if [ -n "${BENCH:-}" ]; then
    log "bench-cuda (ductile vs PyTorch)"
    PYTHONPATH=python timeout ${BENCH_TIMEOUT:-400} python3 bench/bench_cuda.py --out "$OUT" --commit "${DUCTILE_COMMIT:-unknown}" \
        ${BENCH_ARGS:-} > "$OUT/bench_cuda.log" 2>&1
    echo "bench rc=$?" | tee -a "$OUT/summary.txt"
    grep -E "^\||skipped|failed|Error" "$OUT/bench_cuda.log" | tail -30 | tee -a "$OUT/summary.txt"
fi
log "done"
# Few files come back from a lent machine: the logs travel as one archive.
(cd "$OUT" && tar czf logs.tgz ./*.log $(ls ./*.json 2>/dev/null) $(ls ./*.tsv 2>/dev/null) && rm -f ctest_*.log memcheck.log racecheck.log cli.log build.log layerinfo_seg.log)
