# Sourced by the device-call scripts (cuda_verify_switches.sh, cuda_pdl_check.sh): environment,
# $OUT/summary.txt logging, and the build against the prebuilt kernels (device_prebuild.sh)
# plus the CUDA C test binaries named in $CT. Expects OUT, sets M, S, L, log().
export PATH=$PATH:/usr/local/cuda/bin IMAGE=0 PYTHONUNBUFFERED=1
M=${1:-${DUCTILE_MODELS:-../shared/models}}
export DUCTILE_MODELS=$M
mkdir -p "$OUT"
S=$OUT/summary.txt
L=$(mktemp -d)
log() { echo "== t=$SECONDS $*" | tee -a "$S"; }
# ab_latency VAR MODELS [PRECISION]: scripts/cuda_latency.py with the switch VAR at 0 and 1,
# alternating, two rounds (each setting in its own process: switches are read once).
ab_latency() {
    local round sw
    for round in 1 2; do
        for sw in 0 1; do
            echo "-- round $round $1=$sw" | tee -a "$S"
            env "$1=$sw" timeout 100 python3 scripts/cuda_latency.py "$M" --precision="${3:-fp16}" --models="$2" 2>&1 \
                | grep -v "^model" | tee -a "$S"
        done
    done
}
d=$(python3 -c 'import os,nvidia.cudnn as m;print(os.path.dirname(m.__file__) if m.__file__ else list(m.__path__)[0])' 2>/dev/null)
if [ -d .devbuild/obj ]; then
    find .devbuild/obj -type f -exec touch {} +
    rm -rf build && ln -s .devbuild build
fi
CT="test_cuda_host test_cuda_timer test_cuda_tactics test_cuda_no_alloc test_cuda_dw test_cuda_pw_mma test_cuda_gemm_norm test_device_path"
log "build"
make -j16 IMAGE=0 ${d:+CUDNN_INC=$d/include CUDNN_LIB=$d/lib} NVFLAGS="-O3 -gencode arch=compute_90,code=sm_90" all \
    $(for t in $CT; do echo build/tests/$t; done) > "$L/build.log" 2>&1 || { tail -30 "$L/build.log" | tee -a "$S"; exit 1; }
