#!/usr/bin/env bash
# Session 22's device calls: with the conv -> DepthToSpace fold on by default, its tests and the
# superres model tests (FIRST=1), then `make bench-cuda`'s table (bench/bench_cuda.py, FP16) for
# the models in BENCH_MODELS; a second call passes the first's rows (PREV=<dir of its json>) and
# --append, so the five models' table is one file though no call may run past 600 s.
#     FIRST=1 BENCH_MODELS=superres,seg_lraspp,bert_small DUCTILE_COMMIT=<sha> OUT=$OUT \
#         bash scripts/cuda_s22_bench.sh <models dir>
set -u
OUT=${OUT:-build/s22}
. "$(dirname "$0")/device_common.sh"
if [ "${FIRST:-0}" = 1 ]; then
    log "pytest: the fold (default on) and the superres model tests"
    timeout 150 python3 -m pytest -q -rf -p no:cacheprovider tests/python/test_cuda_fuse_d2s.py \
        tests/python/test_cuda.py -k "superres or d2s or fold" > "$L/py.log" 2>&1
    echo "pytest rc=$? $(grep -E 'passed|failed|error' "$L/py.log" | tail -1)" | tee -a "$S"
    grep -E "^FAILED|^E  " "$L/py.log" | head -12 | tee -a "$S"
    log "latency superres FP16: DUCTILE_FUSE_CONV_D2S 0 / 1"
    ab_latency DUCTILE_FUSE_CONV_D2S superres
fi
log "bench_cuda: $BENCH_MODELS"
mkdir -p "$OUT/bench"
[ -n "${PREV:-}" ] && cp "$PREV"/*.json "$OUT/bench/" 2>/dev/null
left=$((${BUDGET_S:-570} - SECONDS))
timeout $left python3 bench/bench_cuda.py --models="$BENCH_MODELS" ${PREV:+--append} --commit "${DUCTILE_COMMIT:-unknown}" \
    --out "$OUT/bench" --iters 50 > "$L/bench.log" 2>&1
echo "bench rc=$?" | tee -a "$S"
grep -v '^{' "$L/bench.log" | tail -20 | tee -a "$S"
log "done"
tar czf "$OUT/logs.tgz" -C "$L" .
