#!/usr/bin/env bash
# Device check (seconds): the Makefile compiles the CUDA kernels with nvcc -compress-mode=size
# (session 21: smaller test binaries; CI's disk), which no GPU run has loaded yet, because
# scripts/device_prebuild.sh passes its own NVFLAGS (uncompressed). This builds a probe kernel
# both ways (the Makefile's gencode flags) and runs each: "fatbin compress check: OK" per mode,
# or the CUDA error of the launch. Run it on
# the device (run: `bash scripts/cuda_fatbin_compress_check.sh`), before trusting a device
# build made by plain `make`.
set -eu
cd "$(dirname "$0")/.."
d=$(mktemp -d)
cat > "$d/probe.cu" <<'CU'
#include <cstdio>
__global__ void probe(float *y, int n) { int i = blockIdx.x * blockDim.x + threadIdx.x; if (i < n) y[i] = 2.0f * i + 1.0f; }
int main() {
    const int n = 1000;
    float *d, h[n];
    if (cudaMalloc(&d, n * sizeof(float)) != cudaSuccess) { puts("no device"); return 2; }
    probe<<<(n + 255) / 256, 256>>>(d, n);
    cudaError_t e = cudaDeviceSynchronize();
    if (e != cudaSuccess) { printf("fatbin compress check: launch failed: %s\n", cudaGetErrorString(e)); return 1; }
    cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost);
    for (int i = 0; i < n; i++) if (h[i] != 2.0f * i + 1.0f) { printf("fatbin compress check: wrong value at %d\n", i); return 1; }
    puts("fatbin compress check: OK");
    return 0;
}
CU
for mode in none size; do
    nvcc -O3 -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90 -compress-mode=$mode \
        -o "$d/probe_$mode" "$d/probe.cu"
    echo -n "compress-mode=$mode ($(stat -c %s "$d/probe_$mode") bytes): "
    "$d/probe_$mode"
done
rm -rf "$d"
