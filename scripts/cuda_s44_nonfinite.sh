#!/usr/bin/env bash
# Session 44's GPU check: test_cuda_nonfinite.py (each CUDA conv tactic forced, the NaN / +Inf /
# -Inf positions against the CPU engine's) with cuBLASLt's RELU epilogue (DUCTILE_CUDA_LT_RELU=1)
# and without, then resnet50's FP16 latency both ways. (Its first form ran the test with
# cuDNN's FFT / Winograd offered and not, DUCTILE_CUDA_CONV_MIXING, and DUCTILE_TACTIC_LOG=1
# builds of the models with them offered: they won no layer of EfficientNet-B0, mobilenet_v2
# or resnet50, float32 or float16.)
#     OUT=$OUT bash scripts/cuda_s44_nonfinite.sh <models dir>
set -u
OUT=${OUT:-build/s44}
. "$(dirname "$0")/device_common.sh"
# cuBLASLt's RELU epilogue used (DUCTILE_CUDA_LT_RELU=1, as before session 44) and not
for lt in 1 0; do
    log "test_cuda_nonfinite DUCTILE_CUDA_LT_RELU=$lt"
    DUCTILE_CUDA_LT_RELU=$lt timeout 200 python3 -m pytest -q -rf -p no:cacheprovider tests/python/test_cuda_nonfinite.py > "$L/nf$lt.log" 2>&1
    echo "rc=$? $(tail -1 "$L/nf$lt.log")" | tee -a "$S"
    grep -E "^FAILED" "$L/nf$lt.log" | head -40 | tee -a "$S"
    grep -E "^E +AssertionError" "$L/nf$lt.log" | cut -c1-160 | sort | uniq -c | head -20 | tee -a "$S"
    cp "$L/nf$lt.log" "$OUT/"
done
python3 bench/make_resnet50.py "$M/resnet50.onnx" > /dev/null 2>&1
log "resnet50 fp16 latency, cuBLASLt's RELU epilogue or the epilogue kernel"
ab_latency DUCTILE_CUDA_LT_RELU resnet50 fp16
log "done"
