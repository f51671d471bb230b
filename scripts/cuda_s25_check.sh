#!/usr/bin/env bash
# Session 25's GPU check of the SiLU activation (DT_CU_SILU, kernels prebuilt by
# scripts/device_prebuild.sh after act.cuh changed): the CUDA C tests, test_fuse_silu.py (the
# SiLU block in fp32 / fp16 / bf16 and EfficientNet-B0 on the GPU), the other CUDA Python tests
# most related first, each file's result logged as it ends; then, with BENCH=1 and time left,
# bench_cuda's EfficientNet-B0 table (FP16, against PyTorch eager / compile / CUDA graphs).
# PYTESTS names other test files (the second call: test_llama.py, the attention fusion's).
#     OUT=$OUT BUDGET_S=560 bash scripts/cuda_s25_check.sh <models dir>
set -u
OUT=${OUT:-build/s25c}
. "$(dirname "$0")/device_common.sh"
log "C tests"
for t in test_cuda_host test_device_path test_cuda_no_alloc test_cuda_dw test_cuda_pw_mma test_cuda_gemm_norm test_cuda_timer; do
    timeout 40 build/tests/$t > "$L/c_$t.log" 2>&1
    echo "$t rc=$? $(tail -1 "$L/c_$t.log")" | tee -a "$S"
done
for f in ${PYTESTS:-test_fuse_silu.py test_cuda_fusions.py test_fuse_se_pool.py test_cuda.py test_cuda_ops.py test_cuda_conv_tc.py test_cli_device.py}; do
    left=$((${BUDGET_S:-560} - SECONDS - ${BENCH_S:-0}))
    [ $left -lt 15 ] && { log "no time left for $f"; continue; }
    timeout $left python3 -m pytest -q -rf -p no:cacheprovider tests/python/$f > "$L/py_$f.log" 2>&1
    echo "$f rc=$? $(grep -E 'passed|failed|error' "$L/py_$f.log" | tail -1)" | tee -a "$S"
    grep -E "^FAILED|^ERROR" "$L/py_$f.log" | head -6 | tee -a "$S"
done
if [ "${BENCH:-0}" = 1 ]; then
    log "bench_cuda efficientnet_b0"
    mkdir -p "$OUT/bench"
    left=$((${BUDGET_S:-560} - SECONDS))
    timeout $left python3 bench/bench_cuda.py --models=efficientnet_b0 --commit "${DUCTILE_COMMIT:-unknown}" \
        --out "$OUT/bench" --iters 50 > "$L/bench.log" 2>&1
    echo "bench rc=$?" | tee -a "$S"
    grep -v '^{' "$L/bench.log" | tail -20 | tee -a "$S"
fi
log "done"
tar czf "$OUT/logs.tgz" -C "$L" .
