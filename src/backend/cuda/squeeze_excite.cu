// FusedSqueezeExcite's scale (ops/fused.h): per image, the channel means, fc1 and its
// activation, fc2 and its activation, in one launch (small channels-last inputs: the pool too)
// or two (the pool's float slices by dt_cu_reduce_sums first), where the unfused layers took
// four (the pool, its join and two 1x1 convs on a 1x1 image, each a few microseconds of launch
// and drain at batch 1).
//
// A cluster of kCluster blocks per image (Hopper's thread-block clusters) splits the reads:
// each block pools a share of the image's pixels (or sums the slices' few KB), takes the other
// blocks' partial sums from their shared memory (distributed shared memory), computes its
// share of fc1's rows, gathers the others' shares the same way, then its share of fc2's rows.
// The grid holds a few blocks, so each step's cost is its loads' latency, not their bytes:
// 16-byte loads, a group of lanes a row sized so each lane has a few loads in flight, and
// every remote read of a step issued together. Everything in float, one rounding at the output.
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
// Shared memory a block, floats (the default 48 KB).
constexpr int64_t kMaxFloats = 48 * 1024 / 4;
// The in-kernel pool: channels-last X of at most this many bytes an image (each of the
// cluster's blocks reads an eighth: a few microseconds of one multiprocessor's bandwidth).
constexpr int64_t kPoolBytes = 1 << 20;

struct se_args {
    const void *x;      // the in-kernel pool: X [n, hw, c], else NULL
    const float *part;  // else the slices' sums [split][n * c]
    int split;
    int64_t total;      // n * c: one slice of part
    int64_t hw;
    int c, cr;
    int rows;           // the pool: pixel rows a pass of the block covers (kThreads / (c / V))
    bool vec1, vec2;    // dot()'s 16-byte loads for W1's rows, W2's
    float inv_hw;
    const void *w1, *b1, *w2, *b2;
    void *y;
    dt_cu_se_acts acts;
};

// Rows [lo, hi) of `rows` that cluster block r takes.
__device__ __forceinline__ int64_t share(int64_t rows, unsigned r) { return rows * r / kCluster; }

// The floats of a 16-byte load of T.
template <typename T>
__device__ __forceinline__ void unpack(const uint4 &q, float *f)
{
    constexpr int V = 16 / sizeof(T);
    T e[V];
    memcpy(e, &q, sizeof q);
#pragma unroll
    for (int t = 0; t < V; t++) f[t] = ld(e[t]);
}

// w[0, k) . v[0, k) by a group of g lanes (a power of two up to 32, aligned in the warp);
// vec: w 16-byte aligned and k a multiple of 16 / sizeof(T).
template <typename T>
__device__ __forceinline__ float dot(const T *__restrict__ w, const float *v, int k, bool vec, int g, int lane)
{
    float acc = 0.f;
    if (vec) {
        constexpr int V = 16 / sizeof(T);
        const uint4 *w4 = reinterpret_cast<const uint4 *>(w);
#pragma unroll 4
        for (int i = lane; i < k / V; i += g) {
            float f[V];
            unpack<T>(w4[i], f);
#pragma unroll
            for (int t = 0; t < V; t++) acc += f[t] * v[i * V + t];
        }
    } else {
#pragma unroll 4
        for (int i = lane; i < k; i += g) acc += ld(w[i]) * v[i];
    }
    for (int o = g >> 1; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o, g);
    return acc;
}

// out[j] = act(b[j] + w[j, :] . v) for the rows [lo, hi): groups of lanes a row, each lane
// with about four loads of the row.
template <typename T>
__device__ void products(const T *__restrict__ w, const T *__restrict__ b, const float *v, int k, bool vec, int lo, int hi,
                         int op, float p0, float p1, float *out_f, T *out_t)
{
    int per = vec ? k / (16 / (int)sizeof(T)) : k, g = 1;
    while (g < 32 && g * 4 < per) g <<= 1;
    const int lane = threadIdx.x & (g - 1), groups = blockDim.x / g;
    // Every lane of a warp runs the same number of iterations (the shuffles need all 32).
    const int span = hi - lo, iters = (span + groups - 1) / groups;
    for (int it = 0; it < iters; it++) {
        int j = lo + it * groups + (int)(threadIdx.x / g);
        bool live = j < hi;
        float acc = dot<T>(w + (int64_t)(live ? j : lo) * k, v, k, vec, g, lane);
        if (!live || lane) continue;
        float r = act(op, acc + (b ? ld(b[j]) : 0.f), p0, p1);
        if (out_f) out_f[j] = r;
        else out_t[j] = st<T>(r);
    }
}

// This block's share of the image's channel sums, from X [hw, c] (16-byte loads along c), into
// out[c]; tmp: a.rows * c floats.
template <typename T>
__device__ void pool_share(const se_args &a, const T *x, unsigned rank, float *tmp, float *out)
{
    constexpr int V = 16 / sizeof(T);
    const int nv = a.c / V, r0 = threadIdx.x / nv, cv = threadIdx.x % nv;
    if (r0 < a.rows) {
        float acc[V] = {};
        const int64_t lo = share(a.hw, rank), hi = share(a.hw, rank + 1);
        const uint4 *x4 = reinterpret_cast<const uint4 *>(x);
#pragma unroll 4
        for (int64_t i = lo + r0; i < hi; i += a.rows) {
            float f[V];
            unpack<T>(x4[i * nv + cv], f);
#pragma unroll
            for (int t = 0; t < V; t++) acc[t] += f[t];
        }
#pragma unroll
        for (int t = 0; t < V; t++) tmp[r0 * a.c + cv * V + t] = acc[t];
    }
    __syncthreads();
    for (int c = threadIdx.x; c < a.c; c += blockDim.x) {
        float s = 0.f;
        for (int r = 0; r < a.rows; r++) s += tmp[r * a.c + c];
        out[c] = s;
    }
}

template <typename T>
__global__ void __cluster_dims__(kCluster, 1, 1) __launch_bounds__(kThreads) se_scale_k(se_args a)
{
    dt_grid_wait();
    extern __shared__ float sh[];
    // mean [c], hidden [cr], then (the pool) this block's sums [c] and the pass rows [rows * c].
    float *mean = sh, *hidden = sh + a.c, *mine = hidden + a.cr, *tmp = mine + a.c;
    cg::cluster_group cluster = cg::this_cluster();
    const unsigned rank = cluster.block_rank();
    const int64_t img = blockIdx.x / kCluster;
    if (a.x) {
        pool_share<T>(a, (const T *)a.x + img * a.hw * a.c, rank, tmp, mine);
        cluster.sync();
        for (int c = threadIdx.x; c < a.c; c += blockDim.x) {
            float s = 0.f;
#pragma unroll
            for (unsigned r = 0; r < kCluster; r++) s += cluster.map_shared_rank(mine, r)[c];
            mean[c] = s * a.inv_hw;
        }
    } else {
        for (int c = threadIdx.x; c < a.c; c += blockDim.x) {
            const float *p = a.part + img * a.c + c;
            float s = 0.f;
            for (int k = 0; k < a.split; k++) s += p[(int64_t)k * a.total];
            mean[c] = s * a.inv_hw;
        }
        __syncthreads();
    }
    // (the pool: no block may overwrite or leave its sums before every block read them; the
    // barrier below comes after fc1, which writes hidden, not mine.)
    products<T>((const T *)a.w1, (const T *)a.b1, mean, a.c, a.vec1, (int)share(a.cr, rank), (int)share(a.cr, rank + 1),
                a.acts.hidden, a.acts.h0, a.acts.h1, hidden, nullptr);
    cluster.sync();
    for (int j = threadIdx.x; j < a.cr; j += blockDim.x) {
        unsigned r = (unsigned)((int64_t)j * kCluster / a.cr);
        while (r + 1 < kCluster && share(a.cr, r + 1) <= j) r++;
        while (r > 0 && share(a.cr, r) > j) r--;
        if (r != rank) hidden[j] = cluster.map_shared_rank(hidden, r)[j];
    }
    // Every block's reads of the others' shared memory end here, before any block may exit.
    cluster.sync();
    products<T>((const T *)a.w2, (const T *)a.b2, hidden, a.cr, a.vec2, (int)share(a.c, rank), (int)share(a.c, rank + 1),
                a.acts.scale, a.acts.s0, a.acts.s1, nullptr, (T *)a.y + img * a.c);
}

// The pass rows of the in-kernel pool for c channels of es bytes (0: it does not apply).
int pool_rows(int64_t c, int es) { return (int)(kThreads / (c / (16 / es))); }

} // namespace

extern "C" int dt_cu_se_fits(int64_t c, int64_t cr)
{
    return c >= 1 && cr >= 1 && c + cr <= kMaxFloats;
}

extern "C" int dt_cu_se_pools(int dtype, const void *x, int64_t c, int64_t cr, int64_t hw)
{
    int es = dtype == DUCTILE_FLOAT32 ? 4 : 2, v = 16 / es;
    if (c % v || c / v > kThreads || (uintptr_t)x % 16 || hw * c * es > kPoolBytes) return 0;
    int64_t rows = pool_rows(c, es);
    return 2 * c + cr + rows * c <= kMaxFloats;
}

extern "C" int dt_cu_se_scale(int dtype, const void *x, const float *part, int split, int64_t n, int64_t c, int64_t cr,
                              int64_t hw, const void *w1, const void *b1, const void *w2, const void *b2, void *y,
                              const dt_cu_se_acts *acts, void *stream)
{
    if (n <= 0) return 0;
    if (!dt_cu_se_fits(c, cr) || n * kCluster > 0x7fffffff || hw <= 0 || (x && !dt_cu_se_pools(dtype, x, c, cr, hw)))
        return (int)cudaErrorInvalidConfiguration;
    int es = dtype == DUCTILE_FLOAT32 ? 4 : 2, v = 16 / es;
    bool vec1 = c % v == 0 && (uintptr_t)w1 % 16 == 0, vec2 = cr % v == 0 && (uintptr_t)w2 % 16 == 0;
    int rows = x ? pool_rows(c, es) : 0;
    se_args a = {x, part, split < 1 ? 1 : split, n * c, hw, (int)c, (int)cr, rows, vec1, vec2, 1.f / (float)hw,
                 w1, b1, w2, b2, y, *acts};
    size_t smem = (size_t)(c + cr + (x ? c + (int64_t)rows * c : 0)) * sizeof(float);
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
