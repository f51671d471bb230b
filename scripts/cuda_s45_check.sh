#!/usr/bin/env bash
# Session 45's GPU call (not run: no machine was lent): session 44's unrun GELU check (the test both
# ways, then bert_small FP16 latency both ways; it replaces scripts/cuda_s44_gelu.sh), then what the
# 1x1 conv test engines run under DUCTILE_LAYOUT=nhwc + DUCTILE_TACTIC_PREFER=28 (why
# test_cuda_nonfinite never reached cuBLASLt's tactic 28), test_cuda_nonfinite with
# DUCTILE_CUDA_LT_RELU=1, and the regress tests of scripts/cuda_s25_check.sh with the time left.
#     OUT=$OUT bash scripts/cuda_s45_check.sh <models dir>
set -u
OUT=${OUT:-build/s45c}
. "$(dirname "$0")/device_common.sh"
for sw in 1 0; do
    log "gelu NaN test DUCTILE_CUDA_LT_GELU=$sw"
    DUCTILE_CUDA_LT_GELU=$sw timeout 60 python3 -m pytest -q -rs -p no:cacheprovider tests/python/test_cuda_nonfinite.py -k gelu 2>&1 \
        | grep -E "passed|failed|^FAILED|^E +Assert|SKIPPED" | cut -c1-300 | tee -a "$S"
done
for sw in 0 1; do
    log "bert_small fp16 DUCTILE_CUDA_LT_GELU=$sw"
    DUCTILE_CUDA_LT_GELU=$sw timeout 90 python3 scripts/cuda_latency.py "$M" --precision=fp16 --models=bert_small 2>&1 | tee -a "$S"
done
log "tactic 28 diagnosis"
timeout 60 python3 - <<'PY' 2>&1 | cut -c1-400 | tee -a "$S"
import json, os, sys
sys.path.insert(0, "tests/python"); sys.path.insert(0, "python")
os.environ["DUCTILE_LAYOUT"] = "nhwc"
os.environ["DUCTILE_TACTIC_PREFER"] = "28"
import ductile, test_cuda_nonfinite as t
for half in (False, True):
    e = t._build(t._model("Relu", 1), "cuda", ductile.BuilderFlag.FP16 if half else None, 16)
    for L in json.loads(e.layer_info)["Layers"]:
        print("fp16" if half else "fp32", L.get("Name"), L.get("LayerType"), L.get("Tactics"), {k: v for k, v in L.items() if k in ("Layout", "Attributes")})
PY
log "test_cuda_nonfinite DUCTILE_CUDA_LT_RELU=1"
DUCTILE_CUDA_LT_RELU=1 timeout 120 python3 -m pytest -q -p no:cacheprovider tests/python/test_cuda_nonfinite.py -k "cublaslt or auto" 2>&1 \
    | grep -E "passed|failed|^FAILED|^E +Assert" | cut -c1-300 | tee -a "$S"
log "regress"
for f in test_cuda_nonfinite.py test_cuda_fusions.py test_cuda.py test_cuda_ops.py test_cuda_conv_tc.py test_fuse_silu.py test_cli_device.py; do
    left=$((${BUDGET_S:-540} - SECONDS))
    [ $left -lt 20 ] && { log "no time left for $f"; continue; }
    timeout $left python3 -m pytest -q -rf -p no:cacheprovider tests/python/$f > "$L/py_$f.log" 2>&1
    echo "$f rc=$? $(grep -E 'passed|failed|error' "$L/py_$f.log" | tail -1)" | tee -a "$S"
    grep -E "^FAILED|^ERROR" "$L/py_$f.log" | head -6 | tee -a "$S"
done
log "done"
tar czf "$OUT/logs.tgz" -C "$L" .
