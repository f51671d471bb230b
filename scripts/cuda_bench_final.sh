#!/usr/bin/env bash
# A session's closing device call: the CUDA C tests that force every conv tactic against the CPU
# engine, then `make bench-cuda`'s measurement (bench/bench_cuda.py: ductile against PyTorch
# eager, torch.compile(dynamic=True) and torch.compile(mode="reduce-overhead") on the same GPU,
# FP16, median ms) into $OUT/bench (rows written after each model: a run cut short keeps them).
#     DUCTILE_COMMIT=<hash> OUT=$OUT bash scripts/cuda_bench_final.sh <models dir>
# All five models take longer than one call's 600 s with the tests (session 15: superres,
# mobilenet_v2 and resnet50 in 470 s, seg_lraspp and bert_small in ~120 s more): BENCH_MODELS
# picks some (bench_cuda's --models), NO_CTESTS=1 skips the C tests.
set -u
OUT=${OUT:-build/final}
. "$(dirname "$0")/device_common.sh"
log "C tests"
for t in $([ "${NO_CTESTS:-0}" = 1 ] || echo test_cuda_host test_cuda_tactics test_cuda_no_alloc); do
    timeout 150 build/tests/$t > "$L/c_$t.log" 2>&1
    echo "$t rc=$? $(tail -1 "$L/c_$t.log")" | tee -a "$S"
done
[ -f "$L/c_test_cuda_tactics.log" ] && grep -h "tactic 1[0-5] \|tactic 9 " "$L/c_test_cuda_tactics.log" | head -20 >> "$S"
log "bench_cuda"
timeout ${BENCH_S:-470} python3 bench/bench_cuda.py ${BENCH_MODELS:+--models=$BENCH_MODELS} --commit "${DUCTILE_COMMIT:-unknown}" --out "$OUT/bench" --iters 50 \
    > "$L/bench.log" 2>&1
echo "bench rc=$?" | tee -a "$S"
grep -v '^{' "$L/bench.log" | tail -15 >> "$S"
log "done"
tar czf "$OUT/logs.tgz" -C "$L" .
