#!/usr/bin/env bash
# The GPU check of mixed precision in one call: build, test_precision, the CUDA Python tests
# (FP16/BF16/TF32 against the CPU float32 engine on every suite model, then the float32 ones
# and every CUDA kernel vs the CPU), the CLI, and GPU-resident latency fp32 vs fp16 vs bf16.
# Logs go to $OUT (or build/cuda_precision).
#   scripts/cuda_precision_check.sh [models dir]
set -u
export PATH=$PATH:/usr/local/cuda/bin
OUT=${OUT:-build/cuda_precision}
mkdir -p "$OUT"
export DUCTILE_MODELS=${1:-${DUCTILE_MODELS:-../shared/models}}
export PYTHONUNBUFFERED=1
log() { echo "== $* ($(date +%T))" | tee -a "$OUT/summary.txt"; }
MAKEVARS=()
if [ ! -f /usr/local/include/cudnn.h ]; then
    d=$(python3 -c 'import os, nvidia.cudnn as m; print(os.path.dirname(m.__file__) if m.__file__ else list(m.__path__)[0])' 2>/dev/null)
    [ -n "$d" ] && MAKEVARS=(CUDNN_INC="$d/include" CUDNN_LIB="$d/lib")
fi
log "build"
make -j16 "${MAKEVARS[@]}" all build/tests/test_precision build/tests/test_device_path > "$OUT/build.log" 2>&1 \
    || { tail -40 "$OUT/build.log" | tee -a "$OUT/summary.txt"; exit 1; }
for t in test_precision test_device_path; do
    timeout 60 build/tests/$t > "$OUT/$t.log" 2>&1; echo "$t rc=$? $(tail -1 "$OUT/$t.log")" | tee -a "$OUT/summary.txt"
done
log "precision tests"
timeout ${T_PREC:-110} python3 -m pytest -q -s -p no:cacheprovider tests/python/test_cuda.py -k precision \
    > "$OUT/pytest_precision.log" 2>&1
echo "pytest precision rc=$?" | tee -a "$OUT/summary.txt"
grep -E "PRECISION|passed|failed|Error|^FAILED|^E " "$OUT/pytest_precision.log" | head -150 >> "$OUT/summary.txt"
log "latency"
timeout ${T_LAT:-70} python3 scripts/cuda_latency.py "$DUCTILE_MODELS" --precision=fp32,fp16,bf16 >> "$OUT/summary.txt" 2>&1
log "float32 CUDA tests, kernels, CLI"
timeout ${T_REST:-70} python3 -m pytest -q -s -p no:cacheprovider tests/python/test_cuda.py tests/python/test_cuda_ops.py \
    tests/python/test_cli_device.py -k "not precision" > "$OUT/pytest_rest.log" 2>&1
echo "pytest rest rc=$?" | tee -a "$OUT/summary.txt"
grep -E "passed|failed|^FAILED|^E " "$OUT/pytest_rest.log" | head -60 >> "$OUT/summary.txt"
log "done"
