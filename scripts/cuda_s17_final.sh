#!/usr/bin/env bash
# Session 17's closing device call: with the activations' rare cases out of line (act.cuh) every
# own kernel changed, so the C tests that run them all against references (test_cuda_host,
# test_cuda_tactics: every conv tactic forced, test_cuda_dw, test_cuda_pw_mma), the CUDA pytest
# subsets, then bench_cuda for the two rows short of issue 7's goal (superres, mobilenet_v2)
# against PyTorch on the same GPU.
#     DUCTILE_COMMIT=<hash> OUT=$OUT bash scripts/cuda_s17_final.sh <models dir>
set -u
OUT=${OUT:-build/final}
. "$(dirname "$0")/device_common.sh"
log "C tests"
for t in test_cuda_host test_cuda_dw test_cuda_pw_mma test_cuda_tactics; do
    timeout 150 build/tests/$t > "$L/c_$t.log" 2>&1
    echo "$t rc=$? $(tail -1 "$L/c_$t.log")" | tee -a "$S"
done
log "pytest"
timeout 200 python3 -m pytest -q -rf -p no:cacheprovider tests/python/test_cuda.py tests/python/test_cuda_ops.py \
    tests/python/test_cuda_conv_tc.py -k "superres or mobilenet or conv or act or unary or relu or sigmoid" > "$L/pytest.log" 2>&1
echo "pytest rc=$?" | tee -a "$S"
grep -E "passed|failed|^FAILED|^ERROR" "$L/pytest.log" | tail -12 | tee -a "$S"
log "latency FP16 (tactic log of superres' c1)"
DUCTILE_TACTIC_LOG=1 timeout 100 python3 scripts/cuda_latency.py "$M" --precision=fp16 --models=superres,mobilenet_v2 > "$L/lat.txt" 2>&1
grep -v "^tactic" "$L/lat.txt" | tee -a "$S"
grep "c1/Conv' profile 0 point 0" "$L/lat.txt" | head -8 | tee -a "$S"
log "bench_cuda superres, mobilenet_v2"
timeout ${BENCH_S:-240} python3 bench/bench_cuda.py --models=superres,mobilenet_v2 --commit "${DUCTILE_COMMIT:-unknown}" \
    --out "$OUT/bench" --iters 50 > "$L/bench.log" 2>&1
echo "bench rc=$?" | tee -a "$S"
grep -v '^{' "$L/bench.log" | tail -15 >> "$S"
log "done"
tar czf "$OUT/logs.tgz" -C "$L" .
