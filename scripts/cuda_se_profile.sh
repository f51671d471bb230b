#!/usr/bin/env bash
# Session 15's second device call for FusedSqueezeExcite: its tests, seg_lraspp's FP16 latency
# with the fusion off / on (alternating), and the CLI's per-layer profile (graphs off) of both at
# 512x512, to see the fused layer's time against the pool, join and two convs it replaces.
#     OUT=$OUT bash scripts/cuda_se_profile.sh <models dir>
set -u
OUT=${OUT:-build/se}
. "$(dirname "$0")/device_common.sh"
log "pytest"
timeout 200 python3 -m pytest -q -rf -p no:cacheprovider tests/python/test_fuse_se_pool.py \
    "tests/python/test_cuda.py" -k "SqueezeExcite or se_pool or seg" > "$L/pytest.log" 2>&1
echo "pytest rc=$?" | tee -a "$S"
grep -E "passed|failed|^FAILED|^ERROR" "$L/pytest.log" | tail -15 | tee -a "$S"
for sw in DUCTILE_FUSE_SE_POOL=0 DUCTILE_FUSE_SE_POOL=1; do
    env $sw timeout 120 build/ductile --onnx="$M/seg_lraspp.onnx" --device=cuda --fp16 --shapes=input_1:1x3x512x512 \
        --cudaGraphs=0 --dumpProfile --iterations=50 --duration=0 > "$L/profile_${sw#*=}.txt" 2>&1
    echo "profile $sw rc=$?" | tee -a "$S"
    grep -iE "SqueezeExcite|GlobalAverage|ReduceMean|fc1|fc2|avgpool" "$L/profile_${sw#*=}.txt" | head -40 >> "$S"
    grep -iE "total|latency|median|mean" "$L/profile_${sw#*=}.txt" | head -8 >> "$S"
done
log "latency FP16 (median ms, graphs off / on), SE pool fusion off / on, alternating"
for round in 1 2; do
    for sw in DUCTILE_FUSE_SE_POOL=0 DUCTILE_FUSE_SE_POOL=1; do
        echo "-- round $round $sw" | tee -a "$S"
        env $sw timeout 90 python3 scripts/cuda_latency.py "$M" --precision=fp16 --models=seg_lraspp 2>&1 \
            | grep -v "^model" | tee -a "$S"
    done
done
log "done"
tar czf "$OUT/logs.tgz" -C "$L" .
