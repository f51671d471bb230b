// The CUDA backend's own convolution kernels (conv_own.h): depthwise and pointwise, each with
// bias, residual and activation applied before the single store. Templated on the element
// type T (loads and stores convert through float; accumulation in float).
#include "backend/cuda/act.cuh"
#include "backend/cuda/conv_own.h"

#include <cuda_runtime.h>

namespace {

template <typename T> __device__ __forceinline__ float to_f(T v) { return static_cast<float>(v); }
template <typename T> __device__ __forceinline__ T from_f(float v) { return static_cast<T>(v); }

// One thread per output element: y[n, o, oh, ow] over the taps of input channel o / mult.
template <typename T>
__global__ void depthwise_k(const T *__restrict__ x, const T *__restrict__ w, const T *__restrict__ bias,
                            const T *__restrict__ res, T *__restrict__ y, dt_cu_conv g, int64_t total)
{
    const int64_t mult = g.m / g.c, taps = g.kh * g.kw;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t ow = i % g.ow, r = i / g.ow;
        int64_t oh = r % g.oh;
        r /= g.oh;
        int64_t o = r % g.m, n = r / g.m;
        const T *xp = x + (n * g.c + o / mult) * g.ih * g.iw;
        const T *wp = w + o * taps;
        int64_t h0 = oh * g.sh - g.ph, w0 = ow * g.sw - g.pw;
        float acc = 0.f;
        for (int64_t a = 0; a < g.kh; a++) {
            int64_t h = h0 + a * g.dh;
            if (h < 0 || h >= g.ih) continue;
            for (int64_t b = 0; b < g.kw; b++) {
                int64_t c = w0 + b * g.dw;
                if (c < 0 || c >= g.iw) continue;
                acc += to_f(xp[h * g.iw + c]) * to_f(wp[a * g.kw + b]);
            }
        }
        if (bias) acc += to_f(bias[o]);
        if (res) acc += to_f(res[i]);
        y[i] = from_f<T>(act(g.act, acc, g.p0, g.p1));
    }
}

// y[n] (M x P) = w (M x K) * x[n] (K x P), P = H*W: a BM x BP tile per block of 256 threads
// (16 x 16), each thread BM/16 x BP/16 outputs strided by 16 (conflict-free shared reads,
// coalesced stores along P); K in steps of 16 through shared memory.
template <typename T, int BM, int BP>
__global__ void __launch_bounds__(256) pointwise_k(const T *__restrict__ x, const T *__restrict__ w,
                                                   const T *__restrict__ bias, const T *__restrict__ res,
                                                   T *__restrict__ y, dt_cu_conv g)
{
    constexpr int BK = 16, TM = BM / 16, TP = BP / 16;
    __shared__ float ws[BK][BM + 1];
    __shared__ float xs[BK][BP];
    const int64_t M = g.m, K = g.c, P = g.oh * g.ow;
    const int64_t m0 = (int64_t)blockIdx.y * BM, p0 = (int64_t)blockIdx.x * BP, n = blockIdx.z;
    const T *xn = x + n * K * P;
    const int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;
    float acc[TM][TP];
#pragma unroll
    for (int i = 0; i < TM; i++)
#pragma unroll
        for (int j = 0; j < TP; j++) acc[i][j] = 0.f;
    for (int64_t k0 = 0; k0 < K; k0 += BK) {
        // W tile: BM rows of BK (k fastest across threads: coalesced along W's rows).
        for (int e = threadIdx.x; e < BM * BK; e += 256) {
            int kk = e % BK, mm = e / BK;
            int64_t m = m0 + mm, k = k0 + kk;
            ws[kk][mm] = m < M && k < K ? to_f(w[m * K + k]) : 0.f;
        }
        // X tile: BK rows of BP (p fastest).
        for (int e = threadIdx.x; e < BK * BP; e += 256) {
            int pp = e % BP, kk = e / BP;
            int64_t p = p0 + pp, k = k0 + kk;
            xs[kk][pp] = p < P && k < K ? to_f(xn[k * P + p]) : 0.f;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < BK; kk++) {
            float a[TM], b[TP];
#pragma unroll
            for (int i = 0; i < TM; i++) a[i] = ws[kk][ty + 16 * i];
#pragma unroll
            for (int j = 0; j < TP; j++) b[j] = xs[kk][tx + 16 * j];
#pragma unroll
            for (int i = 0; i < TM; i++)
#pragma unroll
                for (int j = 0; j < TP; j++) acc[i][j] += a[i] * b[j];
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < TM; i++) {
        int64_t m = m0 + ty + 16 * i;
        if (m >= M) continue;
        float bm = bias ? to_f(bias[m]) : 0.f;
#pragma unroll
        for (int j = 0; j < TP; j++) {
            int64_t p = p0 + tx + 16 * j;
            if (p >= P) continue;
            int64_t o = (n * M + m) * P + p;
            float v = acc[i][j] + bm;
            if (res) v += to_f(res[o]);
            y[o] = from_f<T>(act(g.act, v, g.p0, g.p1));
        }
    }
}

template <typename T>
int depthwise(const T *x, const T *w, const T *bias, const T *res, T *y, const dt_cu_conv *g, void *stream)
{
    int64_t total = g->n * g->m * g->oh * g->ow;
    if (total <= 0) return 0;
    int64_t blocks = (total + 255) / 256;
    if (blocks > 65535 * 32) blocks = 65535 * 32;
    depthwise_k<T><<<(unsigned)blocks, 256, 0, (cudaStream_t)stream>>>(x, w, bias, res, y, *g, total);
    return (int)cudaGetLastError();
}

template <typename T, int B>
int pointwise(const T *x, const T *w, const T *bias, const T *res, T *y, const dt_cu_conv *g, void *stream)
{
    int64_t P = g->oh * g->ow;
    if (g->n <= 0 || g->m <= 0 || P <= 0) return 0;
    int64_t gx = (P + B - 1) / B, gy = (g->m + B - 1) / B;
    if (gx > 0x7fffffff || gy > 65535 || g->n > 65535) return (int)cudaErrorInvalidConfiguration;
    dim3 grid((unsigned)gx, (unsigned)gy, (unsigned)g->n);
    pointwise_k<T, B, B><<<grid, 256, 0, (cudaStream_t)stream>>>(x, w, bias, res, y, *g);
    return (int)cudaGetLastError();
}

} // namespace

extern "C" int dt_cu_conv_depthwise_f32(const float *x, const float *w, const float *bias, const float *res, float *y,
                                        const dt_cu_conv *g, void *stream)
{
    return depthwise<float>(x, w, bias, res, y, g, stream);
}

extern "C" int dt_cu_conv_pointwise_f32(const float *x, const float *w, const float *bias, const float *res, float *y,
                                        const dt_cu_conv *g, int tile, void *stream)
{
    return tile == 64 ? pointwise<float, 64>(x, w, bias, res, y, g, stream)
                      : pointwise<float, 32>(x, w, bias, res, y, g, stream);
}
