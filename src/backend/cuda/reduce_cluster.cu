// Reductions of [outer, n, inner] with few outputs (outer * inner) over long rows n and rows of
// whole 16-byte vectors (inner * element size a multiple of 16): channels-last global pools, as
// the nine [1, HW, C] ReduceMeans of seg_lraspp's squeeze-excite blocks. kernels.cu's
// reduce_part_k + reduce_join_k took 15-16 us + 3-4 us each there at 512x512 (ncu, session 16)
// for 0.15-1.3 MB: each thread a chain of 8-32 scalar loads, then a second launch. Here one
// launch: a block of 512 threads takes kLanes * V channels (V = 16 / element size: one 16-byte
// load a lane) over 64 rows at a time, four rows of loads in flight a lane; a cluster of
// kCluster blocks (grid y) splits the rows; each block joins its 64 row results in shared
// memory, and the cluster's block 0 joins the blocks' through distributed shared memory and
// stores. Everything in float (reduce.cuh), one rounding at the output.
#include "backend/cuda/cuda.h"
#include "backend/cuda/elem.cuh"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/reduce.cuh"

#include <cooperative_groups.h>
#include <stdint.h>

namespace cg = cooperative_groups;

namespace {

constexpr int kCluster = 8, kThreads = 512, kLanes = 8, kRows = kThreads / kLanes, kDepth = 4;
// Rows a cluster takes at most: a lane then loads at most 64 rows (more: the split kernels).
constexpr int64_t kMaxRows = (int64_t)kCluster * kRows * 64;

template <typename T>
__global__ void __cluster_dims__(1, kCluster, 1) __launch_bounds__(kThreads)
    reduce_cluster_k(const T *__restrict__ x, T *__restrict__ y, int64_t n, int64_t inner, int64_t chunks, int op)
{
    dt_grid_wait();
    constexpr int V = 16 / sizeof(T), W = kLanes * V;
    union vec {
        uint4 u;
        T e[V];
    };
    __shared__ float sh[kRows * W];
    cg::cluster_group cluster = cg::this_cluster();
    const int lane = threadIdx.x % kLanes, r = threadIdx.x / kLanes;
    const int64_t o = blockIdx.x / chunks, c = (blockIdx.x % chunks) * W + lane * V;
    const unsigned rank = cluster.block_rank();
    const int64_t j0 = n * rank / kCluster, j1 = n * (rank + 1) / kCluster;
    float acc[V];
    for (int k = 0; k < V; k++) acc[k] = red_init(op);
    if (c < inner) {
        const T *xp = x + o * n * inner + c;
        for (int64_t j = j0 + r; j < j1; j += kRows * kDepth) {
            vec v[kDepth];
#pragma unroll
            for (int d = 0; d < kDepth; d++)
                if (j + d * kRows < j1) v[d].u = *(const uint4 *)(xp + (j + d * kRows) * inner);
#pragma unroll
            for (int d = 0; d < kDepth; d++)
                if (j + d * kRows < j1)
#pragma unroll
                    for (int k = 0; k < V; k++) acc[k] = red_add(op, acc[k], ld(v[d].e[k]));
        }
    }
    float *mine = sh + r * W + lane * V;
    for (int k = 0; k < V; k++) mine[k] = acc[k];
    __syncthreads();
    for (int h = kRows / 2; h > 0; h >>= 1) {
        if (r < h)
            for (int k = 0; k < V; k++) mine[k] = red_join(op, mine[k], mine[h * W + k]);
        __syncthreads();
    }
    cluster.sync(); // every block's row 0 holds its result
    if (rank == 0 && threadIdx.x < W) {
        const int64_t ch = (blockIdx.x % chunks) * W + threadIdx.x;
        float v = sh[threadIdx.x];
        for (unsigned b = 1; b < kCluster; b++) v = red_join(op, v, cluster.map_shared_rank(sh, b)[threadIdx.x]);
        if (ch < inner) y[o * inner + ch] = st<T>(red_final(op, v, n));
    }
    cluster.sync(); // no block leaves while block 0 reads its shared memory
}

template <typename T>
int launch(const void *x, void *y, int64_t outer, int64_t n, int64_t inner, int op, cudaStream_t s)
{
    constexpr int W = kLanes * 16 / (int)sizeof(T);
    int64_t chunks = (inner + W - 1) / W;
    if (outer * chunks > 0x7fffffff) return -1;
    dt_launch(reduce_cluster_k<T>, dim3((unsigned)(outer * chunks), kCluster), kThreads, 0, s, (const T *)x, (T *)y, n,
              inner, chunks, op);
    return (int)cudaGetLastError();
}

} // namespace

extern "C" int dt_cu_reduce_cluster(int dtype, const void *x, void *y, int64_t outer, int64_t n, int64_t inner, int op,
                                    void *stream)
{
    int64_t es = dtype == DUCTILE_FLOAT32 ? 4 : dtype == DUCTILE_FLOAT16 || dtype == DUCTILE_BFLOAT16 ? 2 : 0;
    if (!es || outer <= 0 || n <= 0 || n > kMaxRows || inner <= 0 || (inner * es) % 16 || (uintptr_t)x % 16) return -1;
    cudaStream_t s = (cudaStream_t)stream;
    switch (dtype) {
    case DUCTILE_FLOAT32: return launch<float>(x, y, outer, n, inner, op, s);
    case DUCTILE_FLOAT16: return launch<__half>(x, y, outer, n, inner, op, s);
    default: return launch<__nv_bfloat16>(x, y, outer, n, inner, op, s);
    }
}
