#!/bin/sh
# Runs every fuzz harness (make fuzz) for SECONDS each (default 60), one after the other.
# Seeds come from fuzz/corpus/<name>/ (committed); what a run finds goes to
# build/fuzz/corpus/<name>/ (kept between runs, not committed) and crashes to
# build/fuzz/crashes/<name>/. Exits nonzero when a harness finds a crash.
#   usage: scripts/fuzz.sh [SECONDS] [HARNESS...]
set -eu
cd "$(dirname "$0")/.."
secs=${1:-60}
[ $# -gt 0 ] && shift
names=${*:-"fuzz_onnx fuzz_engine fuzz_engine_body fuzz_shapes fuzz_image"}
make -s fuzz
status=0
for name in $names; do
    seeds=fuzz/corpus/${name#fuzz_}
    [ "$name" = fuzz_engine_body ] && seeds=fuzz/corpus/engine
    work=build/fuzz/corpus/$name
    crashes=build/fuzz/crashes/$name
    mkdir -p "$work" "$crashes"
    echo "== $name for ${secs}s (seeds $seeds, corpus $work)"
    # An allocation above 1 GB fails (NULL) instead of ending the run: a model or engine may ask
    # for that much, and the library must then report DUCTILE_ERR_OUT_OF_MEMORY.
    ASAN_OPTIONS=allocator_may_return_null=1:max_allocation_size_mb=1024:detect_leaks=1 \
    build/fuzz/"$name" -max_total_time="$secs" -timeout=10 -rss_limit_mb=4096 \
        -malloc_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
        -artifact_prefix="$crashes/" "$work" "$seeds" || status=1
done
exit $status
