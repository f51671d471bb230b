/* Kernel launches with programmatic dependent launch (PDL, Hopper and later).
 *
 * Between two dependent kernels of a CUDA graph the GPU drains the first grid, then schedules
 * the second: a few microseconds per edge, which at batch 1 is a large share of a model
 * (resnet50 has ~70 kernels in 0.4 ms). With PDL the next kernel is launched while the
 * previous one still runs; its blocks wait in dt_grid_wait() (griddepcontrol.wait) until the
 * previous grid has completed and its memory is visible, so the launch and block scheduling
 * overlap the previous kernel's tail instead of following it.
 *
 * The rule that keeps it correct: EVERY kernel launched with dt_launch calls dt_grid_wait()
 * before its first global memory access (read or write: the memory plan reuses buffers, so an
 * early write could clobber what the previous kernel still reads). tests/python/
 * test_cuda_pdl_rule.py checks that each __global__ function begins with it. Waiting is
 * transitive (a kernel completes only after its own wait returned), so a kernel may read the
 * output of any earlier one. Kernels of cuDNN / cuBLASLt and copies do not take part: they
 * follow the stream's ordinary full dependency.
 *
 * dt_grid_wait() also releases the next kernel's launch (griddepcontrol.launch_dependents):
 * the dependent grid starts only once every block of this one has issued it, so its waiting
 * blocks never take a slot a block of this grid still needs.
 * DUCTILE_CUDA_PDL=0 launches without the attribute (plain stream order); GPUs before compute
 * capability 9.0 always do; DUCTILE_CUDA_PDL_MAX_BLOCKS=N only grids of at most N blocks
 * (launch.c). */
#pragma once

#include <cuda_runtime.h>

#include <string.h>
#include <utility>

__device__ __forceinline__ void dt_grid_wait()
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

/* Whether a launch of `blocks` thread blocks takes PDL (launch.c: the switch, the device's
 * compute capability, a block-count limit). */
extern "C" int dt_cuda_pdl_on(unsigned long long blocks);

/* Fills *a with the PDL attribute and answers 1 where a launch of `blocks` takes it, else 0. */
static inline int dt_pdl_attr(cudaLaunchAttribute *a, unsigned long long blocks)
{
    if (!dt_cuda_pdl_on(blocks)) return 0;
    memset(a, 0, sizeof *a);
    a->id = cudaLaunchAttributeProgrammaticStreamSerialization;
    a->val.programmaticStreamSerializationAllowed = 1;
    return 1;
}

/* kernel<<<grid, block, smem, stream>>>(args...) with PDL where it is on. The launch error, if
 * any, is also left for cudaGetLastError() as with <<<>>>. */
template <typename... P, typename... A>
static inline cudaError_t dt_launch(void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                                    A &&...args)
{
    cudaLaunchAttribute at[1];
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = stream;
    cfg.attrs = at;
    cfg.numAttrs = (unsigned)dt_pdl_attr(&at[0], (unsigned long long)grid.x * grid.y * grid.z);
    return cudaLaunchKernelEx(&cfg, kernel, std::forward<A>(args)...);
}
