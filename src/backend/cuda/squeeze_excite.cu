// FusedSqueezeExcite's scale (ops/fused.h) after its pool: per image, the channel means from
// the pool's float slices, fc1 and its activation, fc2 and its activation, in one launch where
// the unfused layers took three (the pool's join and two 1x1 convs on a 1x1 image, each a few
// microseconds of launch and drain at batch 1). A cluster of kCluster blocks per image splits
// the weights' reads: each block forms all the means (a few KB of slices), computes its share
// of fc1's rows, takes the others' shares from their shared memory (distributed shared memory,
// Hopper's clusters), then its share of fc2's rows. Everything in float, one rounding to the
// output's type.
#include "backend/cuda/act.cuh"
#include "backend/cuda/cuda.h"
#include "backend/cuda/elem.cuh"
#include "backend/cuda/launch.cuh"

#include <cooperative_groups.h>
#include <stdint.h>
#include <string.h>

namespace cg = cooperative_groups;

namespace {

constexpr int kCluster = 8, kThreads = 512;
// (c + cr) floats of shared memory a block, within the default 48 KB.
constexpr int64_t kMaxFloats = 48 * 1024 / 4;

struct se_args {
    const float *part;
    int split;
    int64_t total;      // n * c: one slice of part
    int c, cr;
    bool vec1, vec2;    // dot()'s 16-byte loads for W1's rows, W2's
    float inv_hw;
    const void *w1, *b1, *w2, *b2;
    void *y;
    dt_cu_se_acts acts;
};

__device__ __forceinline__ float warp_sum(float v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// Rows [lo, hi) of `rows` that cluster block r takes.
__device__ __forceinline__ int share(int rows, unsigned r) { return (int)((int64_t)rows * r / kCluster); }

// w[0, k) . v[0, k) by one warp. vec: w 16-byte aligned and k a multiple of 16 / sizeof(T):
// 16-byte loads, four in flight a lane (a block's one SM reads a row's weights while the
// grid holds few blocks: the loads' latency, not their bytes, is the cost).
template <typename T>
__device__ __forceinline__ float dot(const T *__restrict__ w, const float *v, int k, bool vec)
{
    const int lane = threadIdx.x & 31;
    float acc = 0.f;
    if (vec) {
        constexpr int V = 16 / sizeof(T);
        const uint4 *w4 = reinterpret_cast<const uint4 *>(w);
#pragma unroll 4
        for (int i = lane; i < k / V; i += 32) {
            uint4 q = w4[i];
            T e[V];
            memcpy(e, &q, sizeof q);
#pragma unroll
            for (int t = 0; t < V; t++) acc += ld(e[t]) * v[i * V + t];
        }
    } else {
#pragma unroll 4
        for (int i = lane; i < k; i += 32) acc += ld(w[i]) * v[i];
    }
    return warp_sum(acc);
}

// out[j] = act(b[j] + w[j, :] . v) for the rows [lo, hi): a warp a row.
template <typename T>
__device__ void products(const T *__restrict__ w, const T *__restrict__ b, const float *v, int k, bool vec, int lo, int hi,
                         int op, float p0, float p1, float *out_f, T *out_t)
{
    const int lane = threadIdx.x & 31, warps = blockDim.x >> 5;
    for (int j = lo + (int)(threadIdx.x >> 5); j < hi; j += warps) {
        float acc = dot<T>(w + (int64_t)j * k, v, k, vec);
        if (lane) continue;
        float r = act(op, acc + (b ? ld(b[j]) : 0.f), p0, p1);
        if (out_f) out_f[j] = r;
        else out_t[j] = st<T>(r);
    }
}

template <typename T>
__global__ void __cluster_dims__(kCluster, 1, 1) __launch_bounds__(kThreads) se_scale_k(se_args a)
{
    dt_grid_wait();
    extern __shared__ float sh[];
    float *mean = sh, *hidden = sh + a.c;
    cg::cluster_group cluster = cg::this_cluster();
    const unsigned rank = cluster.block_rank();
    const int64_t img = blockIdx.x / kCluster;
    for (int c = threadIdx.x; c < a.c; c += blockDim.x) {
        const float *p = a.part + img * a.c + c;
        float s = 0.f;
        for (int k = 0; k < a.split; k++) s += p[(int64_t)k * a.total];
        mean[c] = s * a.inv_hw;
    }
    __syncthreads();
    products<T>((const T *)a.w1, (const T *)a.b1, mean, a.c, a.vec1, share(a.cr, rank), share(a.cr, rank + 1), a.acts.hidden,
                a.acts.h0, a.acts.h1, hidden, nullptr);
    cluster.sync();
    for (unsigned r = 0; r < kCluster; r++) {
        if (r == rank) continue;
        const float *theirs = cluster.map_shared_rank(hidden, r);
        for (int j = share(a.cr, r) + (int)threadIdx.x; j < share(a.cr, r + 1); j += blockDim.x) hidden[j] = theirs[j];
    }
    // Every block's reads of the others' shared memory end here, before any block may exit.
    cluster.sync();
    products<T>((const T *)a.w2, (const T *)a.b2, hidden, a.cr, a.vec2, share(a.c, rank), share(a.c, rank + 1), a.acts.scale,
                a.acts.s0, a.acts.s1, nullptr, (T *)a.y + img * a.c);
}

} // namespace

extern "C" int dt_cu_se_fits(int64_t c, int64_t cr)
{
    return c >= 1 && cr >= 1 && c + cr <= kMaxFloats;
}

extern "C" int dt_cu_se_scale(int dtype, const float *part, int split, int64_t n, int64_t c, int64_t cr, int64_t hw,
                              const void *w1, const void *b1, const void *w2, const void *b2, void *y,
                              const dt_cu_se_acts *acts, void *stream)
{
    if (n <= 0) return 0;
    if (!dt_cu_se_fits(c, cr) || n * kCluster > 0x7fffffff || hw <= 0) return (int)cudaErrorInvalidConfiguration;
    int es = dtype == DUCTILE_FLOAT32 ? 4 : 2, v = 16 / es;
    bool vec1 = c % v == 0 && (uintptr_t)w1 % 16 == 0, vec2 = cr % v == 0 && (uintptr_t)w2 % 16 == 0;
    se_args a = {part, split < 1 ? 1 : split, n * c, (int)c, (int)cr, vec1, vec2, 1.f / (float)hw, w1, b1, w2, b2, y, *acts};
    size_t smem = (size_t)(c + cr) * sizeof(float);
    dim3 grid((unsigned)(n * kCluster));
    cudaStream_t s = (cudaStream_t)stream;
    switch (dtype) {
    case DUCTILE_FLOAT32: dt_launch(se_scale_k<float>, grid, kThreads, smem, s, a); break;
    case DUCTILE_FLOAT16: dt_launch(se_scale_k<__half>, grid, kThreads, smem, s, a); break;
    case DUCTILE_BFLOAT16: dt_launch(se_scale_k<__nv_bfloat16>, grid, kThreads, smem, s, a); break;
    default: return (int)cudaErrorInvalidValue;
    }
    return (int)cudaGetLastError();
}
