#!/usr/bin/env bash
# Session 17's first device call: superres 224 and mobilenet_v2 b1 FP16, the two rows short of
# issue 7's 1.5x: per-kernel times with warm caches (ncu --cache-control none) beside the graph
# latency, and the per-layer tactics.
#     OUT=$OUT bash scripts/cuda_s17_profile.sh <models dir>
set -u
OUT=${OUT:-build/s17}
. "$(dirname "$0")/device_common.sh"
log "ncu (warm) superres 0 / mobilenet_v2 0"
NCU_WARM=1 timeout 240 python3 scripts/cuda_ncu.py "$L/ncu" superres 0 2>&1 | tee -a "$S"
NCU_WARM=1 timeout 240 python3 scripts/cuda_ncu.py "$L/ncu" mobilenet_v2 0 2>&1 | tee -a "$S"
log "done"
tar czf "$OUT/logs.tgz" -C "$L" .
