/* The host side of programmatic dependent launch (launch.cuh): which launches take it. Read
 * once per process: DUCTILE_CUDA_PDL=0 (off), DUCTILE_CUDA_PDL_MAX_BLOCKS=N (only grids of at
 * most N blocks; 0 or unset: any). Per device: compute capability 9.0 or later. Kept in C so
 * that tuning the policy recompiles no kernel. */
#include <cuda_runtime_api.h>

#include <stdlib.h>
#include <string.h>

int dt_cuda_pdl_on(unsigned long long blocks);

int dt_cuda_pdl_on(unsigned long long blocks)
{
    static int env = -1;
    static unsigned long long max_blocks;
    static signed char dev_ok[64];
    if (env < 0) {
        const char *e = getenv("DUCTILE_CUDA_PDL"), *m = getenv("DUCTILE_CUDA_PDL_MAX_BLOCKS");
        max_blocks = m ? strtoull(m, NULL, 10) : 0;
        env = !(e && strcmp(e, "0") == 0);
    }
    if (!env || (max_blocks && blocks > max_blocks)) return 0;
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= 64) {
        cudaGetLastError();
        return 0;
    }
    if (dev_ok[dev] == 0) {
        int major = 0;
        if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess) cudaGetLastError();
        dev_ok[dev] = major >= 9 ? 1 : -1;
    }
    return dev_ok[dev] > 0;
}
