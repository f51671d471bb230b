#!/usr/bin/env bash
# One GPU call that checks a branch and times it against main (session 9, briefs/s9/cudasmall):
# both trees built side by side, the branch's CUDA C tests, bench/bench_cuda.py (mobilenet_v2,
# resnet50, FP16, ductile only) in main's tree then the branch's, the Python CUDA tests that
# cover 1x1 convs, Gemm and the layout, compute-sanitizer on the 1x1 mma kernel's test and on
# a saved FP16 mobilenet_v2 engine at 1x3x224x224. Few files come back: the results go to
# $OUT/summary.txt, the logs to $OUT/*.log (at most 8 files).
#   scripts/cuda_ab_small.sh BRANCH_TREE MAIN_TREE MODELS_DIR
# Give it fresh directories: a warm machine keeps other sessions' /tmp, and a tree unpacked over
# their build outputs (older mtimes than those objects) links stale objects.
set -u
W=$1 M=$2 MODELS=$3
OUT=${OUT:-/tmp/out}
. "$(dirname "$0")/cuda_ab_env.sh"
log "build (branch: lib, CLI, tests; main: lib)"
TESTS="build/tests/test_cuda_pw_mma build/tests/test_cuda_dw build/tests/test_cuda_host build/tests/test_cuda_tactics \
build/tests/test_layout build/tests/test_cuda_no_alloc"
(cd "$W" && make -j10 "${MK[@]}" all $TESTS > "$OUT/build.log" 2>&1; echo "branch build rc=$?" >> "$S") &
(cd "$M" && make -j6 "${MK[@]}" build/libductile.so > "$OUT/build_main.log" 2>&1; echo "main build rc=$?" >> "$S") &
wait
tail -3 "$S"
grep -E "error" "$OUT/build.log" | head -20 | tee -a "$S"

ctest() {  # name, timeout: one C test, its last lines into the summary
    timeout "$2" "$W/build/tests/$1" > "/tmp/ctest_$1.log" 2>&1
    echo "$1 rc=$? $(grep -E 'rel-L2|failed' "/tmp/ctest_$1.log" | tail -6 | tr '\n' ' ')" >> "$3"
}
log "C tests (branch; the long ones run beside pytest below)"
for t in test_cuda_pw_mma test_cuda_dw test_cuda_host test_layout; do ctest $t 60 "$S"; done
tail -4 "$S"

for tree in branch main; do
    T=$M; [ $tree = branch ] && T=$W
    log "bench_cuda $tree"
    (cd "$T" && PYTHONPATH=python timeout 90 python3 bench/bench_cuda.py --models mobilenet_v2,resnet50 --modes= --iters 50 \
        --out "/tmp/bench_$tree" --commit "$tree" > "$OUT/bench_$tree.log" 2>&1; echo "rc=$?" >> "$OUT/bench_$tree.log")
    grep -E "^\| (mobilenet|resnet)|rc=|Error|error" "$OUT/bench_$tree.log" | sort -u | tee -a "$S"
done

log "pytest (branch) and sanitizers, side by side"
cd "$W"
(timeout 140 bash -c 'python3 -m pytest -q -s -p no:cacheprovider tests/python/test_cuda.py -k "mobilenet or resnet";
    echo "pytest test_cuda.py rc=$?";
    python3 -m pytest -q -s -p no:cacheprovider tests/python/test_layout.py tests/python/test_cli_device.py \
        tests/python/test_cuda_ops.py tests/python/test_cuda_fusions.py; echo "pytest others rc=$?"' > "$OUT/pytest.log" 2>&1
 echo "pytest timeout rc=$?" >> "$S") &
(
  E=/tmp/mnv2_fp16.engine
  timeout 60 compute-sanitizer --tool memcheck --error-exitcode 3 build/tests/test_cuda_pw_mma > "$OUT/sanit.log" 2>&1
  echo "memcheck test_cuda_pw_mma rc=$? $(grep -E 'ERROR SUMMARY' "$OUT/sanit.log" | tail -1)" >> "$OUT/sanit_sum.txt"
  timeout 60 compute-sanitizer --tool racecheck --error-exitcode 3 build/tests/test_cuda_pw_mma >> "$OUT/sanit.log" 2>&1
  echo "racecheck test_cuda_pw_mma rc=$? $(grep -E 'RACECHECK SUMMARY|ERROR SUMMARY' "$OUT/sanit.log" | tail -1)" >> "$OUT/sanit_sum.txt"
  ./build/ductile --onnx="$MODELS/mobilenet_v2.onnx" --device=cuda --shapes=input:1x3x224x224 --fp16 --iterations=1 --warmUp=0 \
      --duration=0 --saveEngine=$E > /dev/null 2>&1
  for tool in memcheck racecheck; do
      timeout 60 compute-sanitizer --tool $tool --error-exitcode 3 ./build/ductile --loadEngine=$E --shapes=input:1x3x224x224 \
          --iterations=1 --warmUp=0 --duration=0 >> "$OUT/sanit.log" 2>&1
      echo "$tool mobilenet_v2 fp16 1x3x224x224 rc=$? $(grep -E 'RACECHECK SUMMARY|ERROR SUMMARY' "$OUT/sanit.log" | tail -1)" >> "$OUT/sanit_sum.txt"
  done
) &
(cd "$W"; ctest test_cuda_tactics 140 /tmp/ctest_sum.txt; ctest test_cuda_no_alloc 60 /tmp/ctest_sum.txt) &
wait
cat "$OUT/sanit_sum.txt" /tmp/ctest_sum.txt >> "$S"; rm -f "$OUT/sanit_sum.txt"
grep -hE "fp16|bf16" /tmp/ctest_test_cuda_tactics.log | grep -E "tactic (28|4[0-4]) " | tee -a "$S"
cat /tmp/ctest_*.log > "$OUT/ctests.log"
grep -E "CONV-TACTICS|passed|failed|^FAILED|Error|rc=" "$OUT/pytest.log" | tail -30 | tee -a "$S"
log "done"
