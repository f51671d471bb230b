#!/usr/bin/env bash
# Session 16's fourth device call: the small-C tensor-core conv after its fix (memcheck on a
# forced case, its tests and the reductions', the suite models' CUDA tests), superres FP16
# latency with it not offered / offered (alternating processes), seg_lraspp and mobilenet_v2
# with the one-launch reductions now only where the split kernels split, then bench_cuda
# (ductile against PyTorch, FP16) for superres and seg_lraspp into $OUT/bench.
#     DUCTILE_COMMIT=<hash> OUT=$OUT bash scripts/cuda_s16_check3.sh <models dir>
set -u
OUT=${OUT:-build/s16}
. "$(dirname "$0")/device_common.sh"
log "memcheck: forced smallc_mma"
timeout 120 compute-sanitizer --tool memcheck --print-limit 4 python3 -m pytest -q -x -p no:cacheprovider \
    tests/python/test_cuda_conv_tc.py -k "smallc_mma and (n1c1m64 or n2c7) and fp16" > "$L/memcheck.log" 2>&1
echo "memcheck rc=$?" | tee -a "$S"
grep -E "Invalid|at 0x|ERROR SUMMARY|passed|failed" "$L/memcheck.log" | head -12 | tee -a "$S"
log "C tests"
timeout 60 build/tests/test_cuda_host > "$L/c_host.log" 2>&1; echo "test_cuda_host rc=$? $(tail -1 "$L/c_host.log")" | tee -a "$S"
log "pytest"
timeout 200 python3 -m pytest -q -rf -p no:cacheprovider tests/python/test_cuda_conv_tc.py tests/python/test_cuda_ops.py \
    tests/python/test_cuda.py tests/python/test_cli_device.py -k "smallc or reduce or seg or superres or mobilenet" > "$L/pytest.log" 2>&1
echo "pytest rc=$?" | tee -a "$S"
grep -E "passed|failed|^FAILED|^ERROR" "$L/pytest.log" | tail -15 | tee -a "$S"
log "latency FP16 (median ms, graphs off / on)"
for round in 1 2; do
    for sw in 0 1; do
        echo "-- round $round DUCTILE_CUDA_SMALLC_MMA=$sw" | tee -a "$S"
        DUCTILE_CUDA_SMALLC_MMA=$sw timeout 60 python3 scripts/cuda_latency.py "$M" --precision=fp16 --models=superres 2>&1 \
            | grep -v "^model" | tee -a "$S"
    done
done
echo "-- defaults" | tee -a "$S"
timeout 100 python3 scripts/cuda_latency.py "$M" --precision=fp16 --models=seg_lraspp,mobilenet_v2 2>&1 | grep -v "^model" | tee -a "$S"
log "bench_cuda superres, seg_lraspp"
timeout ${BENCH_S:-250} python3 bench/bench_cuda.py --models=superres,seg_lraspp --commit "${DUCTILE_COMMIT:-unknown}" --out "$OUT/bench" \
    --iters 50 > "$L/bench.log" 2>&1
echo "bench rc=$?" | tee -a "$S"
grep -v '^{' "$L/bench.log" | tail -12 | tee -a "$S"
log "done"
tar czf "$OUT/logs.tgz" -C "$L" .
