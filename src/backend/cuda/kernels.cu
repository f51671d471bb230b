// The CUDA backend's own kernels: what cuDNN and cuBLASLt do not offer in the form the engine
// needs (numpy broadcasting, ONNX's activations fused into a conv epilogue, layouts). Simple
// first versions, one thread per output element or one block per row. Each float kernel is a
// template over the element type (float, __half, __nv_bfloat16): elements are loaded into
// float, computed and accumulated in float, and rounded once when stored (mixed precision:
// builder/precision.c). The activations (act) are act.cuh's, shared with conv_kernels.cu.
#include "backend/cuda/launch.cuh"
#include "backend/cuda/act.cuh"
#include "backend/cuda/cuda.h"
#include "backend/cuda/elem.cuh"
#include "backend/cuda/fastdiv.cuh"
#include "backend/cuda/reduce.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <type_traits>

namespace {


template <typename T> struct is_half : std::false_type {};
template <> struct is_half<__half> : std::true_type {};
template <> struct is_half<__nv_bfloat16> : std::true_type {};

// Runs the statements with T the element type of a float dtype (host side).
#define DT_FLOATS(dtype, ...)                                                         \
    switch (dtype) {                                                                  \
    case DUCTILE_FLOAT32: { typedef float T; __VA_ARGS__; break; }                    \
    case DUCTILE_FLOAT16: { typedef __half T; __VA_ARGS__; break; }                   \
    case DUCTILE_BFLOAT16: { typedef __nv_bfloat16 T; __VA_ARGS__; break; }           \
    default: return (int)cudaErrorInvalidValue;                                       \
    }

constexpr int kThreads = 256;

inline unsigned blocks_for(int64_t n)
{
    int64_t b = (n + kThreads - 1) / kThreads;
    return (unsigned)(b > 65535 * 32 ? 65535 * 32 : (b < 1 ? 1 : b));
}

// Runs launch(T{}) with T the unsigned integer of esize bytes (a copy moves bits, not values);
// the launch's error.
template <typename F> int by_esize(int esize, F launch)
{
    switch (esize) {
    case 1: launch(uint8_t{}); break;
    case 2: launch(uint16_t{}); break;
    case 4: launch(uint32_t{}); break;
    case 8: launch(uint64_t{}); break;
    default: return (int)cudaErrorInvalidValue;
    }
    return (int)cudaGetLastError();
}

template <typename T>
__global__ void unary_k(int op, const T *x, T *y, int64_t n, float p0, float p1)
{
    dt_grid_wait();
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        y[i] = st<T>(act(op, ld(x[i]), p0, p1));
}

__device__ __forceinline__ float binop(int op, float a, float b)
{
    switch (op) {
    case DT_CU_ADD: return a + b;
    case DT_CU_SUB: return a - b;
    case DT_CU_MUL: return a * b;
    case DT_CU_DIV: return a / b;
    case DT_CU_POW: return powf(a, b);
    case DT_CU_MAX: return (a != a || b != b) ? a + b : fmaxf(a, b);
    case DT_CU_MIN: return (a != a || b != b) ? a + b : fminf(a, b);
    case DT_CU_PRELU: return a < 0.f ? a * b : a;
    }
    return 0.f;
}

template <typename T>
__global__ void binary_same_k(int op, const T *a, const T *b, T *y, int64_t n)
{
    dt_grid_wait();
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        y[i] = st<T>(binop(op, ld(a[i]), ld(b[i])));
}

// 16 bytes of T (V elements) as one load / store: the fast paths' vector access.
template <typename T, int V> union vec16 {
    uint4 u;
    T e[V];
};

// Same shapes, 32-bit indices (n < 2^31): V elements a thread per step through 16-byte loads
// (V > 1: a, b and y 16-byte aligned), the n % V tail one element a thread.
template <typename T, int V>
__global__ void binary_same_vec_k(int op, const T *__restrict__ a, const T *__restrict__ b, T *__restrict__ y, int n)
{
    dt_grid_wait();
    const int nv = n / V, step = gridDim.x * blockDim.x, t0 = blockIdx.x * blockDim.x + threadIdx.x;
    for (int v = t0; v < nv; v += step) {
        vec16<T, V> va, vb, vy;
        if (V > 1) {
            va.u = ((const uint4 *)a)[v];
            vb.u = ((const uint4 *)b)[v];
        } else {
            va.e[0] = a[v];
            vb.e[0] = b[v];
        }
#pragma unroll
        for (int j = 0; j < V; j++) vy.e[j] = st<T>(binop(op, ld(va.e[j]), ld(vb.e[j])));
        if (V > 1) ((uint4 *)y)[v] = vy.u;
        else y[v] = vy.e[0];
    }
    for (int i = nv * V + t0; i < n; i += step) y[i] = st<T>(binop(op, ld(a[i]), ld(b[i])));
}

// One operand full (contiguous, the output's shape), the other ("small") broadcast in the
// per-channel pattern: output element i = ((o * R + r) * M + m) * I + q reads small[o * So + m]
// (NCHW [N,C,1,1] or [1,C,1,1] against [N,C,H,W]: I = H*W, M = C or N*C; NHWC [N,1,1,C]
// against [N,H,W,C]: I = 1, M = C, R = H*W, So = C). 32-bit indices; V elements a step
// (V > 1: full and y 16-byte aligned, n % V == 0, and I % V == 0, one small value a vector,
// or I == 1 and M % V == 0, V consecutive ones). small_first: small is the op's first operand.
struct chan_geom {
    int n, inner, mid, rep, so;
    bool small_first;
};

template <typename T, int V>
__global__ void binary_chan_k(int op, const T *__restrict__ full, const T *__restrict__ small, T *__restrict__ y,
                              chan_geom g)
{
    dt_grid_wait();
    const int nv = g.n / V, step = gridDim.x * blockDim.x;
    for (int v = blockIdx.x * blockDim.x + threadIdx.x; v < nv; v += step) {
        int i = v * V, t = i / g.inner, m = t % g.mid, o = t / g.mid / g.rep, si = o * g.so + m;
        vec16<T, V> vf, vy;
        if (V > 1) vf.u = ((const uint4 *)full)[v];
        else vf.e[0] = full[v];
        float sv = ld(small[si]);
#pragma unroll
        for (int j = 0; j < V; j++) {
            if (g.inner == 1 && j) sv = ld(small[si + j]);
            float f = ld(vf.e[j]);
            vy.e[j] = st<T>(g.small_first ? binop(op, sv, f) : binop(op, f, sv));
        }
        if (V > 1) ((uint4 *)y)[v] = vy.u;
        else y[v] = vy.e[0];
    }
}

// Whether g is the per-channel pattern (binary_chan_k), into *c (small_first: which operand
// broadcasts); the small operand's dims merge with like neighbours first.
bool chan_pattern(const dt_cu_bcast *g, chan_geom *c)
{
    if (g->n >= 0x7fffffff) return false;
    bool full[2] = {true, true};
    int64_t st = 1;
    for (int d = g->rank - 1; d >= 0; d--) {
        if (g->dims[d] != 1) {
            full[0] = full[0] && g->sa[d] == st;
            full[1] = full[1] && g->sb[d] == st;
        }
        st *= g->dims[d];
    }
    if (full[0] == full[1]) return false; // both (same shapes: the same-shape path) or neither
    const int64_t *ss = full[0] ? g->sb : g->sa;
    // The small operand's (dim, stride) groups, innermost first: broadcast dims merge with
    // broadcast neighbours, contiguous ones with contiguous neighbours.
    int nd = 0;
    int64_t D[DT_CU_MAX_RANK], S[DT_CU_MAX_RANK];
    for (int d = g->rank - 1; d >= 0; d--) {
        if (g->dims[d] == 1) continue;
        if (nd && ((ss[d] == 0 && S[nd - 1] == 0) || (S[nd - 1] != 0 && ss[d] == S[nd - 1] * D[nd - 1]))) {
            D[nd - 1] *= g->dims[d];
        } else {
            D[nd] = g->dims[d];
            S[nd] = ss[d];
            nd++;
        }
    }
    // Innermost first: [broadcast I] [contiguous M, stride 1] [broadcast R] [contiguous, stride M].
    int k = 0;
    int64_t I = 1, M = 1, R = 1, So = 0;
    if (k < nd && S[k] == 0) I = D[k++];
    if (k < nd && S[k] == 1) M = D[k++];
    if (k < nd && S[k] == 0) R = D[k++];
    if (k < nd && S[k] == M && M > 1) So = M, k++;
    if (k != nd) return false;
    *c = chan_geom{(int)g->n, (int)I, (int)M, (int)R, (int)So, !full[0]};
    return true;
}

template <typename T>
int binary_fast(int op, const T *a, const T *b, T *y, const dt_cu_bcast *g, bool same, cudaStream_t s)
{
    constexpr int V = 16 / sizeof(T);
    auto al = [](const void *p) { return (uintptr_t)p % 16 == 0; };
    if (same) {
        int n = (int)g->n;
        if (al(a) && al(b) && al(y) && n >= V)
            dt_launch(binary_same_vec_k<T, V>, blocks_for(n / V), kThreads, 0, s, op, a, b, y, n);
        else
            dt_launch(binary_same_vec_k<T, 1>, blocks_for(n), kThreads, 0, s, op, a, b, y, n);
        return (int)cudaGetLastError();
    }
    chan_geom c;
    if (!chan_pattern(g, &c)) return -1;
    const T *full = c.small_first ? b : a, *small = c.small_first ? a : b;
    bool vec = al(full) && al(y) && c.n % V == 0 && (c.inner % V == 0 || (c.inner == 1 && c.mid % V == 0));
    if (vec) dt_launch(binary_chan_k<T, V>, blocks_for(c.n / V), kThreads, 0, s, op, full, small, y, c);
    else dt_launch(binary_chan_k<T, 1>, blocks_for(c.n), kThreads, 0, s, op, full, small, y, c);
    return (int)cudaGetLastError();
}

template <typename T>
__global__ void binary_k(int op, const T *a, const T *b, T *y, dt_cu_bcast g)
{
    dt_grid_wait();
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < g.n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = i, oa = 0, ob = 0;
        for (int d = g.rank - 1; d >= 0; d--) {
            int64_t q = r / g.dims[d], idx = r - q * g.dims[d];
            r = q;
            oa += idx * g.sa[d];
            ob += idx * g.sb[d];
        }
        y[i] = st<T>(binop(op, ld(a[oa]), ld(b[ob])));
    }
}

template <typename T>
__global__ void epilogue_k(T *y, const T *bias, const T *res, int64_t total, int64_t c, int64_t hw, int op, float p0,
                           float p1)
{
    dt_grid_wait();
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        float v = ld(y[i]);
        if (bias) v += ld(bias[(i / hw) % c]);
        if (res) v += ld(res[i]);
        y[i] = st<T>(act(op, v, p0, p1));
    }
}

template <typename T>
__global__ void add_c_k(T *y, const T *c, float beta, int64_t m, int64_t n, int64_t sm, int64_t sn)
{
    dt_grid_wait();
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < m * n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = i / n, col = i - r * n;
        y[i] = st<T>(ld(y[i]) + beta * ld(c[r * sm + col * sn]));
    }
}

// Block-wide sum of one float per thread (blockDim.x a multiple of 32, at most 1024).
__device__ float block_sum(float v, float *sh)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    int w = threadIdx.x >> 5, l = threadIdx.x & 31;
    __syncthreads();
    if (l == 0) sh[w] = v;
    __syncthreads();
    int nw = blockDim.x >> 5;
    v = threadIdx.x < nw ? sh[threadIdx.x] : 0.f;
    if (w == 0)
        for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (threadIdx.x == 0) sh[0] = v;
    __syncthreads();
    return sh[0];
}

__device__ float block_max(float v, float *sh)
{
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    int w = threadIdx.x >> 5, l = threadIdx.x & 31;
    __syncthreads();
    if (l == 0) sh[w] = v;
    __syncthreads();
    int nw = blockDim.x >> 5;
    v = threadIdx.x < nw ? sh[threadIdx.x] : -INFINITY;
    if (w == 0)
        for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    if (threadIdx.x == 0) sh[0] = v;
    __syncthreads();
    return sh[0];
}

// inner == 1: one block per row.
template <typename T>
__global__ void softmax_rows_k(const T *x, T *y, int64_t cols, int log)
{
    dt_grid_wait();
    __shared__ float sh[32];
    const T *xr = x + blockIdx.x * cols;
    T *yr = y + blockIdx.x * cols;
    float m = -INFINITY;
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) m = fmaxf(m, ld(xr[j]));
    m = block_max(m, sh);
    float s = 0.f;
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) s += expf(ld(xr[j]) - m);
    s = block_sum(s, sh);
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x)
        yr[j] = st<T>(log ? ld(xr[j]) - m - logf(s) : expf(ld(xr[j]) - m) / s);
}

// General: one thread per (outer, inner) pair.
template <typename T>
__global__ void softmax_strided_k(const T *x, T *y, int64_t outer, int64_t axis, int64_t inner, int log)
{
    dt_grid_wait();
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < outer * inner; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t o = i / inner, in = i - o * inner;
        const T *xp = x + o * axis * inner + in;
        T *yp = y + o * axis * inner + in;
        float m = -INFINITY, s = 0.f;
        for (int64_t j = 0; j < axis; j++) m = fmaxf(m, ld(xp[j * inner]));
        for (int64_t j = 0; j < axis; j++) s += expf(ld(xp[j * inner]) - m);
        for (int64_t j = 0; j < axis; j++)
            yp[j * inner] = st<T>(log ? ld(xp[j * inner]) - m - logf(s) : expf(ld(xp[j * inner]) - m) / s);
    }
}

__device__ __forceinline__ float warp_sum(float v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// FusedLayerNorm's rows and addends (cuda.h's dt_cu_ln_addends): where row `row` of X starts
// in x (-1: an id out of range, a zero row) and in each addend. F false (LayerNormalization):
// row `row` of x and nothing added, compiled away (the plain kernels stay as they were).
template <bool F>
struct ln_rows {
    int64_t x, o[2];
    __device__ __forceinline__ ln_rows(const dt_cu_ln_addends &ra, int64_t row, int64_t cols)
    {
        x = row * cols;
        o[0] = o[1] = 0;
        if constexpr (F) {
            if (ra.ids) {
                int64_t id = ra.ids64 ? static_cast<const int64_t *>(ra.ids)[row] : static_cast<const int32_t *>(ra.ids)[row];
                if (id < 0) id += ra.vocab;
                x = id >= 0 && id < ra.vocab ? id * cols : -1;
            }
            for (int d = ra.nd - 1; d >= 0; d--) {
                const int64_t i = row % ra.dims[d];
                o[0] += i * ra.st[0][d];
                o[1] += i * ra.st[1][d];
                row /= ra.dims[d];
            }
        }
    }
    template <typename T>
    __device__ __forceinline__ float load(const T *xp, int64_t j) const
    {
        if constexpr (F) return x < 0 ? 0.f : ld(xp[x + j]);
        return ld(xp[x + j]);
    }
    template <typename T>
    __device__ __forceinline__ float add(const dt_cu_ln_addends &ra, float v, int64_t j) const
    {
        if constexpr (F) {
            if (ra.r[0]) v += ld(static_cast<const T *>(ra.r[0])[o[0] + j]);
            if (ra.r[1]) v += ld(static_cast<const T *>(ra.r[1])[o[1] + j]);
        }
        return v;
    }
};

// Rows of at most 32 * N elements: one warp per row, the row read once into registers (N per
// lane), mean and variance by warp shuffles (two passes over the registers: no E[x^2] - m^2
// cancellation), no shared memory or block barriers. Lane l holds elements l, l + 32, ...:
// each load of the warp is contiguous.
template <typename T, int N, bool F>
__global__ void layernorm_warp_k(const T *x, const T *scale, const T *bias, T *y, int64_t rows, int cols, float eps,
                                 dt_cu_ln_addends ra)
{
    dt_grid_wait();
    int64_t row = blockIdx.x * (int64_t)(blockDim.x >> 5) + (threadIdx.x >> 5);
    if (row >= rows) return;   // the whole warp: row is the same for its lanes
    int lane = threadIdx.x & 31;
    T *yr = y + row * cols;
    const ln_rows<F> rr(ra, row, cols);
    float v[N], s = 0.f;
#pragma unroll
    for (int c = 0; c < N; c++) {
        int j = lane + 32 * c;
        v[c] = j < cols ? rr.load(x, j) : 0.f;
    }
    if constexpr (F) {   // (x + r1) + r2, each addend's loads issued together
        for (int a = 0; a < 2; a++) {
            if (!ra.r[a]) continue;
            const T *r = static_cast<const T *>(ra.r[a]) + rr.o[a];
#pragma unroll
            for (int c = 0; c < N; c++) {
                int j = lane + 32 * c;
                if (j < cols) v[c] += ld(r[j]);
            }
        }
    }
#pragma unroll
    for (int c = 0; c < N; c++) s += v[c];
    float mean = warp_sum(s) / (float)cols, q = 0.f;
#pragma unroll
    for (int c = 0; c < N; c++) {
        float d = lane + 32 * c < cols ? v[c] - mean : 0.f;
        q += d * d;
    }
    float inv = rsqrtf(warp_sum(q) / (float)cols + eps);
#pragma unroll
    for (int c = 0; c < N; c++) {
        int j = lane + 32 * c;
        if (j >= cols) continue;
        float o = (v[c] - mean) * inv * ld(scale[j]);
        yr[j] = st<T>(bias ? o + ld(bias[j]) : o);
    }
}

// Longer rows: one block per row (the sums recomputed in each of the three passes).
template <typename T, bool F>
__global__ void layernorm_k(const T *x, const T *scale, const T *bias, T *y, int64_t cols, float eps, dt_cu_ln_addends ra)
{
    dt_grid_wait();
    __shared__ float sh[32];
    const int64_t row = blockIdx.x;
    T *yr = y + row * cols;
    const ln_rows<F> rr(ra, row, cols);
    float s = 0.f;
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) s += rr.template add<T>(ra, rr.load(x, j), j);
    float mean = block_sum(s, sh) / (float)cols;
    float v = 0.f;
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
        float d = rr.template add<T>(ra, rr.load(x, j), j) - mean;
        v += d * d;
    }
    float inv = rsqrtf(block_sum(v, sh) / (float)cols + eps);
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
        float o = (rr.template add<T>(ra, rr.load(x, j), j) - mean) * inv * ld(scale[j]);
        yr[j] = st<T>(bias ? o + ld(bias[j]) : o);
    }
}

template <typename T>
__global__ void gap_k(const T *x, T *y, int64_t hw)
{
    dt_grid_wait();
    __shared__ float sh[32];
    const T *xp = x + blockIdx.x * hw;
    float s = 0.f;
    for (int64_t j = threadIdx.x; j < hw; j += blockDim.x) s += ld(xp[j]);
    s = block_sum(s, sh);
    if (threadIdx.x == 0) y[blockIdx.x] = st<T>(s / (float)hw);
}

struct perm_geom {
    int rank;
    int64_t dims[DT_CU_MAX_RANK], st[DT_CU_MAX_RANK];
};

template <typename D, typename S> __device__ __forceinline__ D cast_one(S v);

/* S -> D: a Transpose that converts (attribute `to`: a network input's Cast folded in). */
template <typename T, typename D = T>
__global__ void transpose_k(const T *x, D *y, perm_geom g, int64_t n, int64_t base)
{
    dt_grid_wait();
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = i, off = base;
        for (int d = g.rank - 1; d >= 0; d--) {
            int64_t q = r / g.dims[d];
            off += (r - q * g.dims[d]) * g.st[d];
            r = q;
        }
        if constexpr (std::is_same<T, D>::value) y[i] = x[off];
        else y[i] = cast_one<D, T>(x[off]);
    }
}

// The same read where every offset fits in 31 bits (nearly always): 32-bit index arithmetic
// and fastdiv.h's divisions instead of 64-bit divide sequences per dimension.
struct perm_geom32 {
    int rank;
    dt_fast_div dims[DT_CU_MAX_RANK];
    int32_t st[DT_CU_MAX_RANK];
};

template <typename T, typename D = T>
__global__ void transpose32_k(const T *__restrict__ x, D *__restrict__ y, perm_geom32 g, uint32_t n, int32_t base)
{
    dt_grid_wait();
    for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        uint32_t r = i;
        int32_t off = base;
        for (int d = g.rank - 1; d >= 0; d--) {
            uint32_t q = dt_fast_div_q(g.dims[d], r);
            off += (int32_t)(r - q * g.dims[d].d) * g.st[d];
            r = q;
        }
        if constexpr (std::is_same<T, D>::value) y[i] = x[off];
        else y[i] = cast_one<D, T>(x[off]);
    }
}

template <typename T>
__global__ void gather_k(const T *data, const void *idx, int idx64, T *y, int64_t outer, int64_t axis_n, int64_t inner,
                         int64_t nidx)
{
    dt_grid_wait();
    int64_t total = outer * nidx * inner;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t in = i % inner, t = i / inner, k = t % nidx, o = t / nidx;
        int64_t j = idx64 ? ((const int64_t *)idx)[k] : ((const int32_t *)idx)[k];
        if (j < 0) j += axis_n;
        y[i] = (j >= 0 && j < axis_n) ? data[(o * axis_n + j) * inner + in] : T(0);
    }
}

// I: the index type, int where every index fits (the 64-bit divisions were most of its time).
template <typename T, typename I>
__global__ void pool_k(const T *x, T *y, I planes, I ih, I iw, I oh, I ow,
                       int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw, int kind, int count_pad,
                       I c)
{
    dt_grid_wait();
    // c > 0: channels last, planes = N * C; neighbouring threads take neighbouring channels.
    I total = planes * oh * ow, es = c > 0 ? c : 1;
    for (I i = blockIdx.x * (I)blockDim.x + threadIdx.x; i < total; i += (I)gridDim.x * blockDim.x) {
        I ox, oy, t;
        const T *xp;
        if (c > 0) {
            I ch = i % c;
            t = i / c;
            ox = t % ow, t /= ow, oy = t % oh;
            xp = x + t / oh * ih * iw * c + ch;
        } else {
            ox = i % ow, t = i / ow, oy = t % oh;
            xp = x + t / oh * ih * iw;
        }
        float acc = kind == 0 ? -INFINITY : 0.f;
        int cnt = 0;
        for (int a = 0; a < kh; a++) {
            I yy = oy * sh - ph + (I)a * dh;
            for (int b = 0; b < kw; b++) {
                I xx = ox * sw - pw + (I)b * dw;
                bool inside = yy >= 0 && yy < ih && xx >= 0 && xx < iw;
                if (inside) {
                    float v = ld(xp[(yy * iw + xx) * es]);
                    acc = kind == 0 ? (acc != acc || v != v ? acc + v : fmaxf(acc, v)) : acc + v;   // a NaN kept
                    cnt++;
                } else if (count_pad && yy < ih + ph && xx < iw + pw) {
                    cnt++; // a padded position counts toward the average (count_include_pad)
                }
            }
        }
        y[i] = st<T>(kind == 0 ? acc : (cnt ? acc / (float)cnt : 0.f));
    }
}

__device__ float resize_source(int ctm, int64_t x, float scale, float len, int64_t in, int64_t out)
{
    float xf = (float)x;
    switch (ctm) {
    case DT_CU_CTM_ASYMMETRIC: return xf / scale;
    case DT_CU_CTM_ALIGN_CORNERS: return len == 1.0f ? 0.0f : xf * (float)(in - 1) / (len - 1.0f);
    case DT_CU_CTM_PYTORCH_HALF_PIXEL: return len > 1.0f ? (xf + 0.5f) / scale - 0.5f : 0.0f;
    case DT_CU_CTM_TF_HALF_PIXEL_FOR_NN: return (xf + 0.5f) / scale;
    case DT_CU_CTM_HALF_PIXEL_SYMMETRIC: {
        float adj = (float)out / len;
        return (float)in / 2.0f * (1.0f - adj) + (xf + 0.5f) / scale - 0.5f;
    }
    default: return (xf + 0.5f) / scale - 0.5f;
    }
}

__device__ int64_t resize_nearest(int mode, float x, bool down)
{
    float f = floorf(x);
    switch (mode) {
    case 0: return (int64_t)(x - f == 0.5f ? f : roundf(x));
    case 1: return (int64_t)(x - f == 0.5f ? f + 1.0f : roundf(x));
    case 2: return (int64_t)f;
    case 3: return (int64_t)ceilf(x);
    default: return down ? (int64_t)ceilf(x) : (int64_t)x;
    }
}

// One axis' source taps, as the CPU's table (nn_resize.c) computes them.
__device__ void resize_taps(const dt_cu_resize_geom &p, int a, int64_t x, int64_t in, int64_t out, int64_t *i0, int64_t *i1,
                            float *w)
{
    float s = resize_source(p.ctm, x, p.scale[a], p.len[a], in, out);
    if (!p.linear) {
        int64_t i = resize_nearest(p.nearest, s, p.scale[a] < 1.0f);
        i = i < 0 ? 0 : i > in - 1 ? in - 1 : i;
        *i0 = *i1 = i;
        *w = 0.f;
        return;
    }
    s = s < 0.0f ? 0.0f : s > (float)(in - 1) ? (float)(in - 1) : s;
    *i0 = (int64_t)s;
    *i1 = *i0 + 1 < in ? *i0 + 1 : in - 1;
    *w = *i1 == *i0 ? 0.0f : s - (float)*i0;
}

// I: the index type (int where the output's element count fits: 32-bit division is far
// cheaper than 64-bit).
template <typename T, typename I>
__global__ void resize_k(const T *x, T *y, dt_cu_resize_geom p)
{
    dt_grid_wait();
    const I total = (I)(p.planes * p.oh * p.ow), OW = (I)p.ow, OH = (I)p.oh;
    for (I i = blockIdx.x * (I)blockDim.x + threadIdx.x; i < total; i += (I)gridDim.x * blockDim.x) {
        I ox = i % OW, t = i / OW, oy = t % OH, pl = t / OH;
        int64_t y0, y1, x0, x1;
        float wy, wx;
        resize_taps(p, 0, oy, p.ih, p.oh, &y0, &y1, &wy);
        resize_taps(p, 1, ox, p.iw, p.ow, &x0, &x1, &wx);
        const T *xp = x + pl * p.ih * p.iw;
        float a = ld(xp[y0 * p.iw + x0]), b = ld(xp[y0 * p.iw + x1]), c = ld(xp[y1 * p.iw + x0]), d = ld(xp[y1 * p.iw + x1]);
        float top = a + (b - a) * wx, bot = c + (d - c) * wx;
        y[i] = st<T>(top + (bot - top) * wy);
    }
}

// bool is one byte 0/1 (uint8_t here); casting to it tests != 0, as numpy does. Half types go
// through float (exact from half; to half: one rounding, to nearest even).
template <typename D, typename S> __device__ __forceinline__ D cast_one(S v)
{
    if constexpr (is_half<S>::value) return cast_one<D, float>(ld(v));
    else if constexpr (is_half<D>::value) return st<D>((float)v);
    else if constexpr (std::is_same<D, uint8_t>::value) return v != S(0);
    else return (D)v;
}

template <typename S, typename D>
__global__ void cast_k(const S *x, D *y, int64_t n)
{
    dt_grid_wait();
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        y[i] = cast_one<D, S>(x[i]);
}

template <typename S>
int cast_from(const S *x, void *y, int to, int64_t n, cudaStream_t s)
{
    unsigned b = blocks_for(n);
    switch (to) {
    case DUCTILE_FLOAT32: dt_launch(cast_k<S, float>, b, kThreads, 0, s, x, (float *)y, n); break;
    case DUCTILE_FLOAT16: dt_launch(cast_k<S, __half>, b, kThreads, 0, s, x, (__half *)y, n); break;
    case DUCTILE_BFLOAT16: dt_launch(cast_k<S, __nv_bfloat16>, b, kThreads, 0, s, x, (__nv_bfloat16 *)y, n); break;
    case DUCTILE_INT64: dt_launch(cast_k<S, int64_t>, b, kThreads, 0, s, x, (int64_t *)y, n); break;
    case DUCTILE_INT32: dt_launch(cast_k<S, int32_t>, b, kThreads, 0, s, x, (int32_t *)y, n); break;
    case DUCTILE_BOOL: dt_launch(cast_k<S, uint8_t>, b, kThreads, 0, s, x, (uint8_t *)y, n); break;
    default: return (int)cudaErrorInvalidValue;
    }
    return (int)cudaGetLastError();
}

template <typename T>
__global__ void reduce_k(const T *x, T *y, int64_t outer, int64_t n, int64_t inner, int op)
{
    dt_grid_wait();
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < outer * inner; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t o = i / inner, in = i - o * inner;
        const T *xp = x + o * n * inner + in;
        float acc = red_init(op);
        for (int64_t j = 0; j < n; j++) acc = red_add(op, acc, ld(xp[j * inner]));
        y[i] = st<T>(red_final(op, acc, n));
    }
}

// [outer, n, inner] where outer * inner is too small to give each output a thread (channels-
// last global pooling: [N, H*W, C]; a row reduction: inner 1): a block of 256 takes `cols`
// consecutive outputs of one outer index (32, or 1 where inner is 1) and 256 / cols rows at a
// time of slice blockIdx.y of the reduced dim (coalesced along inner), then combines its rows
// in shared memory. part (split > 1): the slice's raw result, float, [split][outer * inner];
// reduce_join_k combines the slices. Else the final value into y.
template <typename T>
__global__ void __launch_bounds__(256) reduce_part_k(const T *__restrict__ x, T *__restrict__ y, float *__restrict__ part,
                                                     int64_t outer, int64_t n, int64_t inner, int op, int64_t slice)
{
    dt_grid_wait();
    __shared__ float sh[256];
    const int cols = inner == 1 ? 1 : 32, rows = 256 / cols;
    const int c = threadIdx.x % cols, r = threadIdx.x / cols;
    const int64_t chunks = (inner + cols - 1) / cols, o = blockIdx.x / chunks, i = (blockIdx.x % chunks) * cols + c;
    const int64_t j0 = blockIdx.y * slice, j1 = j0 + slice < n ? j0 + slice : n;
    float acc = red_init(op);
    if (i < inner) {
        const T *xp = x + o * n * inner + i;
        for (int64_t j = j0 + r; j < j1; j += rows) acc = red_add(op, acc, ld(xp[j * inner]));
    }
    sh[threadIdx.x] = acc;
    __syncthreads();
    for (int h = rows / 2; h > 0; h >>= 1) {
        if (r < h) sh[threadIdx.x] = red_join(op, sh[threadIdx.x], sh[threadIdx.x + h * cols]);
        __syncthreads();
    }
    if (r || i >= inner) return;
    if (part) part[blockIdx.y * outer * inner + o * inner + i] = sh[c];
    else y[o * inner + i] = st<T>(red_final(op, sh[c], n));
}

template <typename T>
__global__ void reduce_join_k(const float *__restrict__ part, T *__restrict__ y, int64_t total, int split, int64_t n, int op)
{
    dt_grid_wait();
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        float acc = part[i];
        for (int s = 1; s < split; s++) acc = red_join(op, acc, part[s * total + i]);
        y[i] = st<T>(red_final(op, acc, n));
    }
}

// Where(cond, x, y) and the logical ops, over broadcast operands (strides per output dim).
struct tri_geom {
    int rank;
    int64_t n;
    int64_t dims[DT_CU_MAX_RANK], s0[DT_CU_MAX_RANK], s1[DT_CU_MAX_RANK], s2[DT_CU_MAX_RANK];
};

template <typename T>
__global__ void where_k(const uint8_t *c, const T *x, const T *y, T *out, tri_geom g)
{
    dt_grid_wait();
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < g.n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = i, o0 = 0, o1 = 0, o2 = 0;
        for (int d = g.rank - 1; d >= 0; d--) {
            int64_t q = r / g.dims[d], idx = r - q * g.dims[d];
            r = q;
            o0 += idx * g.s0[d];
            o1 += idx * g.s1[d];
            o2 += idx * g.s2[d];
        }
        out[i] = c[o0] ? x[o1] : y[o2];
    }
}

__global__ void logic_k(int op, const uint8_t *a, const uint8_t *b, uint8_t *out, tri_geom g)
{
    dt_grid_wait();
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < g.n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = i, o0 = 0, o1 = 0;
        for (int d = g.rank - 1; d >= 0; d--) {
            int64_t q = r / g.dims[d], idx = r - q * g.dims[d];
            r = q;
            o0 += idx * g.s0[d];
            o1 += idx * g.s1[d];
        }
        bool x = a[o0] != 0, y = b[o1] != 0;
        out[i] = op == 0 ? (x && y) : op == 1 ? (x || y) : (x != y);
    }
}

template <typename T>
__global__ void isnan_k(const T *x, uint8_t *y, int64_t n)
{
    dt_grid_wait();
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        y[i] = isnan(ld(x[i]));
}

__global__ void not_k(const uint8_t *x, uint8_t *y, int64_t n)
{
    dt_grid_wait();
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        y[i] = !x[i];
}

} // namespace

static perm_geom perm_geom_of(int rank, const int64_t *out_dims, const int64_t *in_strides)
{
    perm_geom g;
    g.rank = rank;
    for (int d = 0; d < rank; d++) {
        g.dims[d] = out_dims[d];
        g.st[d] = in_strides[d];
    }
    return g;
}

/* Where the output count and every offset read (base plus each dim's extreme) stay in
 * [0, 2^31): the geometry of the 32-bit path (fastdiv.h's divisions instead of 64-bit divide
 * sequences per dimension). */
static bool perm_geom32_of(int rank, const int64_t *out_dims, const int64_t *in_strides, int64_t base, int64_t n,
                           perm_geom32 *g)
{
    int64_t lo = base, hi = base;
    bool fits = n < INT32_MAX;
    for (int d = 0; d < rank && fits; d++) {
        int64_t e = (out_dims[d] - 1) * in_strides[d];
        if (e < 0) lo += e;
        else hi += e;
        fits = out_dims[d] >= 1 && out_dims[d] < INT32_MAX && in_strides[d] > INT32_MIN && in_strides[d] < INT32_MAX &&
               lo >= 0 && hi < INT32_MAX;
    }
    if (!fits) return false;
    g->rank = rank;
    for (int d = 0; d < rank; d++) {
        g->dims[d] = dt_fast_div_make((uint32_t)out_dims[d]);
        g->st[d] = (int32_t)in_strides[d];
    }
    return true;
}

template <typename S>
static int transpose_to(const S *x, void *y, int to, int rank, const int64_t *out_dims, const int64_t *in_strides,
                        int64_t n, cudaStream_t s)
{
    perm_geom32 g32;
    if (perm_geom32_of(rank, out_dims, in_strides, 0, n, &g32))
        DT_FLOATS(to, dt_launch(transpose32_k<S, T>, blocks_for(n), kThreads, 0, s, x, (T *)y, g32, (uint32_t)n, 0))
    else
        DT_FLOATS(to, dt_launch(transpose_k<S, T>, blocks_for(n), kThreads, 0, s, x, (T *)y,
                                perm_geom_of(rank, out_dims, in_strides), n, (int64_t)0))
    return (int)cudaGetLastError();
}

extern "C" {

static tri_geom to_tri(int rank, int64_t n, const int64_t *dims, const int64_t *s0, const int64_t *s1, const int64_t *s2)
{
    tri_geom g;
    g.rank = rank;
    g.n = n;
    for (int d = 0; d < rank; d++) {
        g.dims[d] = dims[d];
        g.s0[d] = s0[d];
        g.s1[d] = s1[d];
        g.s2[d] = s2 ? s2[d] : 0;
    }
    return g;
}

int dt_cu_where(int dtype, const uint8_t *c, const void *x, const void *y, void *out, int rank, int64_t n,
                const int64_t *dims, const int64_t *sc, const int64_t *sx, const int64_t *sy, void *stream)
{
    if (n <= 0) return 0;
    tri_geom g = to_tri(rank, n, dims, sc, sx, sy);
    DT_FLOATS(dtype, dt_launch(where_k<T>, blocks_for(n), kThreads, 0, (cudaStream_t)stream, c, (const T *)x, (const T *)y, (T *)out, g))
    return (int)cudaGetLastError();
}

int dt_cu_logic(int op, const uint8_t *a, const uint8_t *b, uint8_t *out, int rank, int64_t n, const int64_t *dims,
                const int64_t *sa, const int64_t *sb, void *stream)
{
    if (n <= 0) return 0;
    dt_launch(logic_k, blocks_for(n), kThreads, 0, (cudaStream_t)stream, op, a, b, out, to_tri(rank, n, dims, sa, sb, NULL));
    return (int)cudaGetLastError();
}

int dt_cu_isnan(int dtype, const void *x, uint8_t *y, int64_t n, void *stream)
{
    if (n <= 0) return 0;
    DT_FLOATS(dtype, dt_launch(isnan_k<T>, blocks_for(n), kThreads, 0, (cudaStream_t)stream, (const T *)x, y, n))
    return (int)cudaGetLastError();
}

int dt_cu_not(const uint8_t *x, uint8_t *y, int64_t n, void *stream)
{
    if (n <= 0) return 0;
    dt_launch(not_k, blocks_for(n), kThreads, 0, (cudaStream_t)stream, x, y, n);
    return (int)cudaGetLastError();
}

int dt_cu_resize(int dtype, const void *x, void *y, const dt_cu_resize_geom *p, void *stream)
{
    int64_t total = p->planes * p->oh * p->ow;
    if (total <= 0) return 0;
    // 32-bit indices where i + the grid's stride cannot overflow.
    if (total < 0x7fffffff - 65535LL * 32 * kThreads)
        DT_FLOATS(dtype, dt_launch(resize_k<T, int>, blocks_for(total), kThreads, 0, (cudaStream_t)stream, (const T *)x, (T *)y, *p))
    else
        DT_FLOATS(dtype, dt_launch(resize_k<T, int64_t>, blocks_for(total), kThreads, 0, (cudaStream_t)stream, (const T *)x, (T *)y, *p))
    return (int)cudaGetLastError();
}

int dt_cu_cast(const void *x, int from, void *y, int to, int64_t n, void *stream)
{
    if (n <= 0) return 0;
    cudaStream_t s = (cudaStream_t)stream;
    switch (from) {
    case DUCTILE_FLOAT32: return cast_from((const float *)x, y, to, n, s);
    case DUCTILE_FLOAT16: return cast_from((const __half *)x, y, to, n, s);
    case DUCTILE_BFLOAT16: return cast_from((const __nv_bfloat16 *)x, y, to, n, s);
    case DUCTILE_INT64: return cast_from((const int64_t *)x, y, to, n, s);
    case DUCTILE_INT32: return cast_from((const int32_t *)x, y, to, n, s);
    case DUCTILE_BOOL: return cast_from((const uint8_t *)x, y, to, n, s);
    }
    return (int)cudaErrorInvalidValue;
}

int dt_cu_reduce(int dtype, const void *x, void *y, int64_t outer, int64_t n, int64_t inner, int op, void *stream)
{
    if (outer * inner <= 0) return 0;
    DT_FLOATS(dtype, dt_launch(reduce_k<T>, blocks_for(outer * inner), kThreads, 0, (cudaStream_t)stream, (const T *)x, (T *)y, outer,
                                                                                                 n, inner, op))
    return (int)cudaGetLastError();
}

// reduce_part_k over [outer, n, inner] in `split` slices: into part (raw, float) where given,
// else the final values into y.
static int reduce_part(int dtype, const void *x, void *y, float *part, int64_t outer, int64_t n, int64_t inner, int op,
                       int split, cudaStream_t s)
{
    int64_t chunks = (inner + (inner == 1 ? 0 : 31)) / (inner == 1 ? 1 : 32), slice = (n + split - 1) / split;
    if (outer * chunks > 0x7fffffff || split > 65535) return (int)cudaErrorInvalidConfiguration;
    dim3 grid((unsigned)(outer * chunks), (unsigned)split);
    DT_FLOATS(dtype, dt_launch(reduce_part_k<T>, grid, 256, 0, s, (const T *)x, (T *)y, part, outer, n, inner, op, slice))
    return (int)cudaGetLastError();
}

int dt_cu_reduce_sums(int dtype, const void *x, float *part, int64_t outer, int64_t n, int64_t inner, int split,
                      void *stream)
{
    if (outer * inner <= 0) return 0;
    return reduce_part(dtype, x, nullptr, part, outer, n, inner, DT_CU_RED_SUM, split < 1 ? 1 : split, (cudaStream_t)stream);
}

int dt_cu_reduce_split(int dtype, const void *x, void *y, int64_t outer, int64_t n, int64_t inner, int op, float *part,
                       int split, void *stream)
{
    if (outer * inner <= 0) return 0;
    if (inner > 1 && split > 1 && !dt_cuda_reduce_cluster_off()) {
        int e = dt_cu_reduce_cluster(dtype, x, y, outer, n, inner, op, stream);
        if (e >= 0) return e;
    }
    if (split < 1 || !part) split = 1;
    cudaStream_t s = (cudaStream_t)stream;
    int e = reduce_part(dtype, x, y, split > 1 ? part : nullptr, outer, n, inner, op, split, s);
    if (e) return e;
    if (split > 1)
        DT_FLOATS(dtype, dt_launch(reduce_join_k<T>, blocks_for(outer * inner), kThreads, 0, s, part, (T *)y, outer * inner, split, n, op))
    return (int)cudaGetLastError();
}

int dt_cu_unary(int op, int dtype, const void *x, void *y, int64_t n, float p0, float p1, void *stream)
{
    if (n <= 0) return 0;
    DT_FLOATS(dtype, dt_launch(unary_k<T>, blocks_for(n), kThreads, 0, (cudaStream_t)stream, op, (const T *)x, (T *)y, n, p0, p1))
    return (int)cudaGetLastError();
}

int dt_cu_binary(int op, int dtype, const void *a, const void *b, void *y, const dt_cu_bcast *g, void *stream)
{
    if (g->n <= 0) return 0;
    bool same = true;
    int64_t st = 1;
    for (int d = g->rank - 1; d >= 0; d--) {
        if (g->dims[d] != 1 && (g->sa[d] != st || g->sb[d] != st)) same = false;
        st *= g->dims[d];
    }
    cudaStream_t s = (cudaStream_t)stream;
    // 32-bit fast paths: same shapes, and the per-channel broadcast (binary_chan_k); the
    // general broadcast (binary_k) for the rest.
    if (g->n < 0x7fffffff - 65535LL * 32 * kThreads) { // i + the grid's stride stays an int
        int rc = -1;
        DT_FLOATS(dtype, rc = binary_fast<T>(op, (const T *)a, (const T *)b, (T *)y, g, same, s))
        if (rc >= 0) return rc;
    }
    if (same)
        DT_FLOATS(dtype, dt_launch(binary_same_k<T>, blocks_for(g->n), kThreads, 0, s, op, (const T *)a, (const T *)b, (T *)y, g->n))
    else
        DT_FLOATS(dtype, dt_launch(binary_k<T>, blocks_for(g->n), kThreads, 0, s, op, (const T *)a, (const T *)b, (T *)y, *g))
    return (int)cudaGetLastError();
}

int dt_cu_epilogue(int dtype, void *y, const void *bias, const void *res, int64_t n, int64_t c, int64_t hw, int op,
                   float p0, float p1, void *stream)
{
    int64_t total = n * c * hw;
    if (total <= 0) return 0;
    DT_FLOATS(dtype, dt_launch(epilogue_k<T>, blocks_for(total), kThreads, 0, (cudaStream_t)stream, (T *)y, (const T *)bias,
                                                                                          (const T *)res, total, c, hw,
                                                                                          op, p0, p1))
    return (int)cudaGetLastError();
}

int dt_cu_add_c(int dtype, void *y, const void *c, float beta, int64_t m, int64_t n, int64_t sm, int64_t sn, void *stream)
{
    if (m * n <= 0) return 0;
    DT_FLOATS(dtype, dt_launch(add_c_k<T>, blocks_for(m * n), kThreads, 0, (cudaStream_t)stream, (T *)y, (const T *)c, beta, m, n, sm,
                                                                                       sn))
    return (int)cudaGetLastError();
}

int dt_cu_softmax(int dtype, const void *x, void *y, int64_t outer, int64_t axis, int64_t inner, int log, void *stream)
{
    if (outer * axis * inner <= 0) return 0;
    cudaStream_t s = (cudaStream_t)stream;
    unsigned threads = axis >= 1024 ? 1024 : (axis >= 256 ? 256 : 64);
    if (inner == 1 && outer < (1ll << 31))
        DT_FLOATS(dtype, dt_launch(softmax_rows_k<T>, (unsigned)outer, threads, 0, s, (const T *)x, (T *)y, axis, log))
    else
        DT_FLOATS(dtype, dt_launch(softmax_strided_k<T>, blocks_for(outer * inner), kThreads, 0, s, (const T *)x, (T *)y, outer, axis,
                                                                                          inner, log))
    return (int)cudaGetLastError();
}

int dt_cu_layernorm(int dtype, const void *x, const void *scale, const void *bias, void *y, int64_t rows, int64_t cols,
                    float eps, const dt_cu_ln_addends *ra, void *stream)
{
    if (rows * cols <= 0) return 0;
    cudaStream_t s = (cudaStream_t)stream;
    const dt_cu_ln_addends none = {{NULL, NULL}, 0, {0}, {{0}}, NULL, 0, 0};
#define DT_LN_ADDENDS (ra ? *ra : none)
    if (cols <= 1024) {   // warp per row, 4 rows per block
        unsigned blocks = (unsigned)((rows + 3) / 4);
        int c = (int)cols;
#define DT_LN_WARP(N)                                                                                                  \
    DT_FLOATS(dtype, dt_launch((ra ? layernorm_warp_k<T, N, true> : layernorm_warp_k<T, N, false>), blocks, 128, 0, s,        \
                         (const T *)x, (const T *)scale, (const T *)bias, (T *)y, rows, c, eps, DT_LN_ADDENDS))
        if (cols <= 128)
            DT_LN_WARP(4)
        else if (cols <= 256)
            DT_LN_WARP(8)
        else if (cols <= 512)
            DT_LN_WARP(16)
        else
            DT_LN_WARP(32)
#undef DT_LN_WARP
        return (int)cudaGetLastError();
    }
    unsigned threads = 1024;
    DT_FLOATS(dtype, dt_launch((ra ? layernorm_k<T, true> : layernorm_k<T, false>), (unsigned)rows, threads, 0, s, 
                         (const T *)x, (const T *)scale, (const T *)bias, (T *)y, cols, eps, DT_LN_ADDENDS))
#undef DT_LN_ADDENDS
    return (int)cudaGetLastError();
}

int dt_cu_global_avgpool(int dtype, const void *x, void *y, int64_t planes, int64_t hw, void *stream)
{
    if (planes <= 0) return 0;
    DT_FLOATS(dtype, dt_launch(gap_k<T>, (unsigned)planes, 256, 0, (cudaStream_t)stream, (const T *)x, (T *)y, hw))
    return (int)cudaGetLastError();
}

int dt_cu_transpose_cast(const void *x, int from, void *y, int to, int rank, const int64_t *out_dims,
                         const int64_t *in_strides, int64_t n, void *stream)
{
    if (n <= 0) return 0;
    DT_FLOATS(from, return transpose_to((const T *)x, y, to, rank, out_dims, in_strides, n, (cudaStream_t)stream))
    return (int)cudaErrorInvalidValue;
}

static bool fastdiv_enabled(void)
{
    static int on = -1;
    if (on < 0) {
        const char *v = getenv("DUCTILE_CUDA_FASTDIV");
        on = !v || strcmp(v, "0");
    }
    return on;
}

int dt_cu_transpose(const void *x, void *y, int esize, int rank, const int64_t *out_dims, const int64_t *in_strides,
                    int64_t base, int64_t n, void *stream)
{
    if (n <= 0) return 0;
    /* The 32-bit path where it fits (perm_geom32_of); DUCTILE_CUDA_FASTDIV=0 turns it off. */
    cudaStream_t s = (cudaStream_t)stream;
    perm_geom32 g32;
    if (fastdiv_enabled() && perm_geom32_of(rank, out_dims, in_strides, base, n, &g32)) {
        uint32_t m = (uint32_t)n;
        int32_t b = (int32_t)base;
        return by_esize(esize, [&](auto z) {
            using T = decltype(z);
            dt_launch(transpose32_k<T>, blocks_for(n), kThreads, 0, s, (const T *)x, (T *)y, g32, m, b);
        });
    }
    perm_geom g = perm_geom_of(rank, out_dims, in_strides);
    return by_esize(esize, [&](auto z) {
        using T = decltype(z);
        dt_launch(transpose_k<T>, blocks_for(n), kThreads, 0, s, (const T *)x, (T *)y, g, n, base);
    });
}

int dt_cu_gather(const void *data, const void *idx, int idx64, void *y, int64_t outer, int64_t axis_n, int64_t inner,
                 int64_t nidx, int esize, void *stream)
{
    int64_t total = outer * nidx * inner;
    if (total <= 0) return 0;
    cudaStream_t s = (cudaStream_t)stream;
    return by_esize(esize, [&](auto z) {
        using T = decltype(z);
        dt_launch(gather_k<T>, blocks_for(total), kThreads, 0, s, (const T *)data, idx, idx64, (T *)y, outer, axis_n, inner, nidx);
    });
}

int dt_cu_pool2d(int dtype, const void *x, void *y, int64_t planes, int64_t ih, int64_t iw, int64_t oh, int64_t ow, int kh, int kw,
                 int sh, int sw, int ph, int pw, int dh, int dw, int kind, int count_pad, int64_t nhwc_c, void *stream)
{
    int64_t total = planes * oh * ow;
    if (total <= 0) return 0;
    // 32-bit indices where the input, the output and every tap's offset (padding and dilation
    // reach at most kh * dh rows past it) fit
    bool small = planes * (ih + (int64_t)kh * dh + ph) * (iw + (int64_t)kw * dw + pw) < ((int64_t)1 << 31) && total < ((int64_t)1 << 31);
    if (small)
        DT_FLOATS(dtype, dt_launch(pool_k<T, int>, blocks_for(total), kThreads, 0, (cudaStream_t)stream, (const T *)x, (T *)y, (int)planes,
                                   (int)ih, (int)iw, (int)oh, (int)ow, kh, kw, sh, sw, ph, pw, dh, dw, kind, count_pad, (int)nhwc_c))
    else
        DT_FLOATS(dtype, dt_launch(pool_k<T, int64_t>, blocks_for(total), kThreads, 0, (cudaStream_t)stream, (const T *)x, (T *)y,
                                   planes, ih, iw, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw, kind, count_pad, nhwc_c))
    return (int)cudaGetLastError();
}

} // extern "C"
