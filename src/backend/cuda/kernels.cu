// The CUDA backend's own kernels: what cuDNN and cuBLASLt do not offer in the form the engine
// needs (numpy broadcasting, ONNX's activations fused into a conv epilogue, layouts). Simple
// first versions, one thread per output element or one block per row; float32 throughout.
#include "backend/cuda/cuda.h"

#include <cuda_runtime.h>
#include <math.h>

namespace {

constexpr int kThreads = 256;

inline unsigned blocks_for(int64_t n)
{
    int64_t b = (n + kThreads - 1) / kThreads;
    return (unsigned)(b > 65535 * 32 ? 65535 * 32 : (b < 1 ? 1 : b));
}

__device__ __forceinline__ float act(int op, float x, float p0, float p1)
{
    switch (op) {
    case DT_CU_IDENTITY: return x;
    case DT_CU_RELU: return x > 0.f ? x : 0.f;
    case DT_CU_SIGMOID: return 1.f / (1.f + expf(-x));
    case DT_CU_TANH: return tanhf(x);
    case DT_CU_ERF: return erff(x);
    case DT_CU_SQRT: return sqrtf(x);
    case DT_CU_EXP: return expf(x);
    case DT_CU_LOG: return logf(x);
    case DT_CU_NEG: return -x;
    case DT_CU_ABS: return fabsf(x);
    case DT_CU_RECIPROCAL: return 1.f / x;
    case DT_CU_HARDSIGMOID: return fmaxf(0.f, fminf(1.f, p0 * x + p1));
    case DT_CU_HARDSWISH: return x * fmaxf(0.f, fminf(1.f, p0 * x + p1));
    case DT_CU_CLIP: return fminf(fmaxf(x, p0), p1);
    case DT_CU_LEAKYRELU: return x >= 0.f ? x : p0 * x;
    case DT_CU_ELU: return x >= 0.f ? x : p0 * (expf(x) - 1.f);
    case DT_CU_SOFTPLUS: return x > 20.f ? x : log1pf(expf(x));
    case DT_CU_GELU: return 0.5f * x * (1.f + erff(x * 0.70710678118654752f));
    case DT_CU_GELU_TANH: return 0.5f * x * (1.f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
    case DT_CU_FLOOR: return floorf(x);
    case DT_CU_CEIL: return ceilf(x);
    }
    return x;
}

__global__ void unary_k(int op, const float *x, float *y, int64_t n, float p0, float p1)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        y[i] = act(op, x[i], p0, p1);
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

__global__ void binary_same_k(int op, const float *a, const float *b, float *y, int64_t n)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        y[i] = binop(op, a[i], b[i]);
}

__global__ void binary_k(int op, const float *a, const float *b, float *y, dt_cu_bcast g)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < g.n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = i, oa = 0, ob = 0;
        for (int d = g.rank - 1; d >= 0; d--) {
            int64_t q = r / g.dims[d], idx = r - q * g.dims[d];
            r = q;
            oa += idx * g.sa[d];
            ob += idx * g.sb[d];
        }
        y[i] = binop(op, a[oa], b[ob]);
    }
}

__global__ void epilogue_k(float *y, const float *bias, const float *res, int64_t total, int64_t c, int64_t hw,
                           int op, float p0, float p1)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        float v = y[i];
        if (bias) v += bias[(i / hw) % c];
        if (res) v += res[i];
        y[i] = act(op, v, p0, p1);
    }
}

__global__ void add_c_k(float *y, const float *c, float beta, int64_t m, int64_t n, int64_t sm, int64_t sn)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < m * n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = i / n, col = i - r * n;
        y[i] += beta * c[r * sm + col * sn];
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
__global__ void softmax_rows_k(const float *x, float *y, int64_t cols, int log)
{
    __shared__ float sh[32];
    const float *xr = x + blockIdx.x * cols;
    float *yr = y + blockIdx.x * cols;
    float m = -INFINITY;
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) m = fmaxf(m, xr[j]);
    m = block_max(m, sh);
    float s = 0.f;
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) s += expf(xr[j] - m);
    s = block_sum(s, sh);
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x)
        yr[j] = log ? xr[j] - m - logf(s) : expf(xr[j] - m) / s;
}

// General: one thread per (outer, inner) pair.
__global__ void softmax_strided_k(const float *x, float *y, int64_t outer, int64_t axis, int64_t inner, int log)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < outer * inner; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t o = i / inner, in = i - o * inner;
        const float *xp = x + o * axis * inner + in;
        float *yp = y + o * axis * inner + in;
        float m = -INFINITY, s = 0.f;
        for (int64_t j = 0; j < axis; j++) m = fmaxf(m, xp[j * inner]);
        for (int64_t j = 0; j < axis; j++) s += expf(xp[j * inner] - m);
        for (int64_t j = 0; j < axis; j++) yp[j * inner] = log ? xp[j * inner] - m - logf(s) : expf(xp[j * inner] - m) / s;
    }
}

__global__ void layernorm_k(const float *x, const float *scale, const float *bias, float *y, int64_t cols, float eps)
{
    __shared__ float sh[32];
    const float *xr = x + blockIdx.x * cols;
    float *yr = y + blockIdx.x * cols;
    float s = 0.f;
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) s += xr[j];
    float mean = block_sum(s, sh) / (float)cols;
    float v = 0.f;
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
        float d = xr[j] - mean;
        v += d * d;
    }
    float inv = rsqrtf(block_sum(v, sh) / (float)cols + eps);
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
        float o = (xr[j] - mean) * inv * scale[j];
        yr[j] = bias ? o + bias[j] : o;
    }
}

__global__ void gap_k(const float *x, float *y, int64_t hw)
{
    __shared__ float sh[32];
    const float *xp = x + blockIdx.x * hw;
    float s = 0.f;
    for (int64_t j = threadIdx.x; j < hw; j += blockDim.x) s += xp[j];
    s = block_sum(s, sh);
    if (threadIdx.x == 0) y[blockIdx.x] = s / (float)hw;
}

struct perm_geom {
    int rank;
    int64_t dims[DT_CU_MAX_RANK], st[DT_CU_MAX_RANK];
};

template <typename T>
__global__ void transpose_k(const T *x, T *y, perm_geom g, int64_t n)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = i, off = 0;
        for (int d = g.rank - 1; d >= 0; d--) {
            int64_t q = r / g.dims[d];
            off += (r - q * g.dims[d]) * g.st[d];
            r = q;
        }
        y[i] = x[off];
    }
}

template <typename T>
__global__ void gather_k(const T *data, const void *idx, int idx64, T *y, int64_t outer, int64_t axis_n, int64_t inner,
                         int64_t nidx)
{
    int64_t total = outer * nidx * inner;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t in = i % inner, t = i / inner, k = t % nidx, o = t / nidx;
        int64_t j = idx64 ? ((const int64_t *)idx)[k] : ((const int32_t *)idx)[k];
        if (j < 0) j += axis_n;
        y[i] = (j >= 0 && j < axis_n) ? data[(o * axis_n + j) * inner + in] : T(0);
    }
}

__global__ void pool_k(const float *x, float *y, int64_t planes, int64_t ih, int64_t iw, int64_t oh, int64_t ow,
                       int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw, int kind, int count_pad)
{
    int64_t total = planes * oh * ow;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t ox = i % ow, t = i / ow, oy = t % oh, p = t / oh;
        const float *xp = x + p * ih * iw;
        float acc = kind == 0 ? -INFINITY : 0.f;
        int cnt = 0;
        for (int a = 0; a < kh; a++) {
            int64_t yy = oy * sh - ph + (int64_t)a * dh;
            for (int b = 0; b < kw; b++) {
                int64_t xx = ox * sw - pw + (int64_t)b * dw;
                bool inside = yy >= 0 && yy < ih && xx >= 0 && xx < iw;
                if (inside) {
                    float v = xp[yy * iw + xx];
                    acc = kind == 0 ? fmaxf(acc, v) : acc + v;
                    cnt++;
                } else if (count_pad && yy < ih + ph && xx < iw + pw) {
                    cnt++; // a padded position counts toward the average (count_include_pad)
                }
            }
        }
        y[i] = kind == 0 ? acc : (cnt ? acc / (float)cnt : 0.f);
    }
}

} // namespace

extern "C" {

int dt_cu_unary(int op, const float *x, float *y, int64_t n, float p0, float p1, void *stream)
{
    if (n <= 0) return 0;
    unary_k<<<blocks_for(n), kThreads, 0, (cudaStream_t)stream>>>(op, x, y, n, p0, p1);
    return (int)cudaGetLastError();
}

int dt_cu_binary(int op, const float *a, const float *b, float *y, const dt_cu_bcast *g, void *stream)
{
    if (g->n <= 0) return 0;
    bool same = true;
    int64_t st = 1;
    for (int d = g->rank - 1; d >= 0; d--) {
        if (g->dims[d] != 1 && (g->sa[d] != st || g->sb[d] != st)) same = false;
        st *= g->dims[d];
    }
    if (same)
        binary_same_k<<<blocks_for(g->n), kThreads, 0, (cudaStream_t)stream>>>(op, a, b, y, g->n);
    else
        binary_k<<<blocks_for(g->n), kThreads, 0, (cudaStream_t)stream>>>(op, a, b, y, *g);
    return (int)cudaGetLastError();
}

int dt_cu_epilogue(float *y, const float *bias, const float *res, int64_t n, int64_t c, int64_t hw, int op, float p0,
                   float p1, void *stream)
{
    int64_t total = n * c * hw;
    if (total <= 0) return 0;
    epilogue_k<<<blocks_for(total), kThreads, 0, (cudaStream_t)stream>>>(y, bias, res, total, c, hw, op, p0, p1);
    return (int)cudaGetLastError();
}

int dt_cu_add_c(float *y, const float *c, float beta, int64_t m, int64_t n, int64_t sm, int64_t sn, void *stream)
{
    if (m * n <= 0) return 0;
    add_c_k<<<blocks_for(m * n), kThreads, 0, (cudaStream_t)stream>>>(y, c, beta, m, n, sm, sn);
    return (int)cudaGetLastError();
}

int dt_cu_softmax(const float *x, float *y, int64_t outer, int64_t axis, int64_t inner, int log, void *stream)
{
    if (outer * axis * inner <= 0) return 0;
    if (inner == 1 && outer < (1ll << 31))
        softmax_rows_k<<<(unsigned)outer, axis >= 1024 ? 1024 : (axis >= 256 ? 256 : 64), 0, (cudaStream_t)stream>>>(x, y, axis, log);
    else
        softmax_strided_k<<<blocks_for(outer * inner), kThreads, 0, (cudaStream_t)stream>>>(x, y, outer, axis, inner, log);
    return (int)cudaGetLastError();
}

int dt_cu_layernorm(const float *x, const float *scale, const float *bias, float *y, int64_t rows, int64_t cols, float eps,
                    void *stream)
{
    if (rows * cols <= 0) return 0;
    layernorm_k<<<(unsigned)rows, cols >= 1024 ? 1024 : 256, 0, (cudaStream_t)stream>>>(x, scale, bias, y, cols, eps);
    return (int)cudaGetLastError();
}

int dt_cu_global_avgpool(const float *x, float *y, int64_t planes, int64_t hw, void *stream)
{
    if (planes <= 0) return 0;
    gap_k<<<(unsigned)planes, 256, 0, (cudaStream_t)stream>>>(x, y, hw);
    return (int)cudaGetLastError();
}

int dt_cu_transpose(const void *x, void *y, int esize, int rank, const int64_t *out_dims, const int64_t *in_strides,
                    int64_t n, void *stream)
{
    if (n <= 0) return 0;
    perm_geom g;
    g.rank = rank;
    for (int d = 0; d < rank; d++) {
        g.dims[d] = out_dims[d];
        g.st[d] = in_strides[d];
    }
    cudaStream_t s = (cudaStream_t)stream;
    switch (esize) {
    case 1: transpose_k<<<blocks_for(n), kThreads, 0, s>>>((const uint8_t *)x, (uint8_t *)y, g, n); break;
    case 2: transpose_k<<<blocks_for(n), kThreads, 0, s>>>((const uint16_t *)x, (uint16_t *)y, g, n); break;
    case 4: transpose_k<<<blocks_for(n), kThreads, 0, s>>>((const uint32_t *)x, (uint32_t *)y, g, n); break;
    case 8: transpose_k<<<blocks_for(n), kThreads, 0, s>>>((const uint64_t *)x, (uint64_t *)y, g, n); break;
    default: return (int)cudaErrorInvalidValue;
    }
    return (int)cudaGetLastError();
}

int dt_cu_gather(const void *data, const void *idx, int idx64, void *y, int64_t outer, int64_t axis_n, int64_t inner,
                 int64_t nidx, int esize, void *stream)
{
    int64_t total = outer * nidx * inner;
    if (total <= 0) return 0;
    cudaStream_t s = (cudaStream_t)stream;
    switch (esize) {
    case 1: gather_k<<<blocks_for(total), kThreads, 0, s>>>((const uint8_t *)data, idx, idx64, (uint8_t *)y, outer, axis_n, inner, nidx); break;
    case 2: gather_k<<<blocks_for(total), kThreads, 0, s>>>((const uint16_t *)data, idx, idx64, (uint16_t *)y, outer, axis_n, inner, nidx); break;
    case 4: gather_k<<<blocks_for(total), kThreads, 0, s>>>((const uint32_t *)data, idx, idx64, (uint32_t *)y, outer, axis_n, inner, nidx); break;
    case 8: gather_k<<<blocks_for(total), kThreads, 0, s>>>((const uint64_t *)data, idx, idx64, (uint64_t *)y, outer, axis_n, inner, nidx); break;
    default: return (int)cudaErrorInvalidValue;
    }
    return (int)cudaGetLastError();
}

int dt_cu_pool2d(const float *x, float *y, int64_t planes, int64_t ih, int64_t iw, int64_t oh, int64_t ow, int kh, int kw,
                 int sh, int sw, int ph, int pw, int dh, int dw, int kind, int count_pad, void *stream)
{
    int64_t total = planes * oh * ow;
    if (total <= 0) return 0;
    pool_k<<<blocks_for(total), kThreads, 0, (cudaStream_t)stream>>>(x, y, planes, ih, iw, oh, ow, kh, kw, sh, sw, ph, pw,
                                                                       dh, dw, kind, count_pad);
    return (int)cudaGetLastError();
}

} // extern "C"
