// The CUDA backend's own convolution kernels (conv_own.h): depthwise and implicit GEMM, each with
// bias, residual and activation applied before the single store. Templated on the element
// type T (loads and stores convert through float; accumulation in float).
#include "backend/cuda/launch.cuh"
#include "backend/cuda/act.cuh"
#include "backend/cuda/conv_own.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <mma.h>

#include <stdlib.h>
#include <string.h>
#include <type_traits>

namespace {

// Loads widen to float, stores round to nearest even once (as kernels.cu's ld / st).
__device__ __forceinline__ float to_f(float v) { return v; }
__device__ __forceinline__ float to_f(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_f(__nv_bfloat16 v) { return __bfloat162float(v); }
template <typename T> __device__ __forceinline__ T from_f(float v);
template <> __device__ __forceinline__ float from_f<float>(float v) { return v; }
template <> __device__ __forceinline__ __half from_f<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

// The taps of one output read from global memory, skipping those in the pads: xp is the input
// channel's first pixel, ps the pixel stride (NCHW 1, NHWC C), rows IW pixels apart; h0, w0
// the window's origin. Shared by both layouts' generic kernels.
template <typename T, typename I>
__device__ __forceinline__ float dw_taps_global(const T *__restrict__ xp, const T *__restrict__ wp, I ps, I h0, I w0,
                                                const dt_cu_conv &g)
{
    const I kh = (I)g.kh, kw = (I)g.kw, IH = (I)g.ih, IW = (I)g.iw;
    float acc = 0.f;
    for (I a = 0; a < kh; a++) {
        I h = h0 + a * (I)g.dh;
        if (h < 0 || h >= IH) continue;
        for (I b = 0; b < kw; b++) {
            I c = w0 + b * (I)g.dw;
            if (c < 0 || c >= IW) continue;
            acc += to_f(xp[((int64_t)h * IW + c) * ps]) * to_f(wp[a * kw + b]);
        }
    }
    return acc;
}

// The generic depthwise kernels (any channel multiplier), one thread per output element:
// channels first, y[n, o, oh, ow], or channels last (nhwc), y[n, oh, ow, o] with x[n, h, w, c]
// (neighbouring threads take neighbouring channels, so loads and stores of x, y and res are
// coalesced); w [m, kh, kw, 1] is laid out as the channels-first [m, 1, kh, kw]. Output o reads
// input channel o / mult. I: the index type (int where the output's element count fits:
// 32-bit division is far cheaper than 64-bit).
template <typename T, typename I, bool NHWC>
__global__ void depthwise_k(const T *__restrict__ x, const T *__restrict__ w, const T *__restrict__ bias,
                            const T *__restrict__ res, T *__restrict__ y, dt_cu_conv g, I total)
{
    dt_grid_wait();
    const I mult = (I)(g.m / g.c), OW = (I)g.ow, OH = (I)g.oh, M = (I)g.m, C = (I)g.c;
    for (I i = blockIdx.x * (I)blockDim.x + threadIdx.x; i < total; i += (I)gridDim.x * blockDim.x) {
        I o, ow, oh, n, r;
        if (NHWC) {
            o = i % M, r = i / M;
            ow = r % OW, r /= OW;
            oh = r % OH, n = r / OH;
        } else {
            ow = i % OW, r = i / OW;
            oh = r % OH, r /= OH;
            o = r % M, n = r / M;
        }
        const T *xp = NHWC ? x + (int64_t)n * g.ih * g.iw * C + o / mult : x + ((int64_t)n * C + o / mult) * g.ih * g.iw;
        float acc = dw_taps_global<T, I>(xp, w + (int64_t)o * g.kh * g.kw, NHWC ? C : (I)1, oh * (I)g.sh - (I)g.ph,
                                         ow * (I)g.sw - (I)g.pw, g);
        if (bias) acc += to_f(bias[o]);
        if (res) acc += to_f(res[i]);
        y[i] = from_f<T>(act(g.act, acc, g.p0, g.p1));
    }
}

// The channels-last 3x3 depthwise conv of half types (channel multiplier 1, C % 8 == 0,
// 16-byte aligned tensors) with 8 channels a thread: the nine taps' 16-byte loads of x and the
// 72 weights (channel o's nine at w[o * 9], so a thread's 8 channels are 144 contiguous,
// 16-byte aligned bytes) are all issued before any product, then each channel sums its taps
// in depthwise_k's order (rows, then columns; taps in the pads skipped), so the values are
// the generic kernel's. Why: depthwise_k, one thread an element with a loop over the taps,
// waited out an L2 round trip per tap (mobilenet_v2 b1's 14x14 / 7x7 layers 5-7 us each on the
// H200, ~670 instructions a warp at 12 cycles an issue, ncu session 17).
template <typename T>
__global__ void __launch_bounds__(256) dw3_nhwc8_k(const T *__restrict__ x, const T *__restrict__ w,
                                                   const T *__restrict__ bias, const T *__restrict__ res,
                                                   T *__restrict__ y, dt_cu_conv g, int total)
{
    dt_grid_wait();
    const int cv = (int)g.c / 8, OW = (int)g.ow, OH = (int)g.oh, IH = (int)g.ih, IW = (int)g.iw;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
        const int c8 = i % cv, pix = i / cv, ow = pix % OW, r = pix / OW, oh = r % OH, n = r / OH;
        const int h0 = oh * (int)g.sh - (int)g.ph, w0 = ow * (int)g.sw - (int)g.pw;
        const uint4 *xp = reinterpret_cast<const uint4 *>(x + (int64_t)n * IH * IW * g.c) + c8;
        uint4 xv[9], wv[9];
        bool in[9];
#pragma unroll
        for (int t = 0; t < 9; t++) {
            const int h = h0 + (t / 3) * (int)g.dh, c = w0 + (t % 3) * (int)g.dw;
            in[t] = (unsigned)h < (unsigned)IH && (unsigned)c < (unsigned)IW;
            xv[t] = in[t] ? __ldg(xp + ((int64_t)h * IW + c) * cv) : make_uint4(0, 0, 0, 0);
            wv[t] = __ldg(reinterpret_cast<const uint4 *>(w + (int64_t)c8 * 72) + t);
        }
        const T *wt = reinterpret_cast<const T *>(wv);
        float acc[8];
#pragma unroll
        for (int k = 0; k < 8; k++) {
            acc[k] = 0.f;
#pragma unroll
            for (int t = 0; t < 9; t++)
                if (in[t]) acc[k] += to_f(reinterpret_cast<const T *>(&xv[t])[k]) * to_f(wt[k * 9 + t]);
        }
        uint4 bv = bias ? __ldg(reinterpret_cast<const uint4 *>(bias) + c8) : make_uint4(0, 0, 0, 0);
        const int64_t o = (int64_t)pix * g.c + (int64_t)c8 * 8;
        uint4 rv = res ? *reinterpret_cast<const uint4 *>(res + o) : make_uint4(0, 0, 0, 0);
        uint4 out;
        T *ov = reinterpret_cast<T *>(&out);
#pragma unroll
        for (int k = 0; k < 8; k++) {
            float v = acc[k];
            if (bias) v += to_f(reinterpret_cast<const T *>(&bv)[k]);
            if (res) v += to_f(reinterpret_cast<const T *>(&rv)[k]);
            ov[k] = from_f<T>(act(g.act, v, g.p0, g.p1));
        }
        *reinterpret_cast<uint4 *>(y + o) = out;
    }
}

// Implicit GEMM: y[n, group g] (Mg x P) = w_g (Mg x K) * cols(x[n, g]) (K x P), with
// P = OH*OW, K = C/group * KH*KW and cols the im2col matrix, never stored: the X tile is
// gathered from x (zeros outside the pads). PW (1x1, stride 1, no pads): cols is x itself.
// A BM x BP tile per block of 256 threads (16 x 16), each thread BM/16 x BP/16 outputs
// strided by 16 (conflict-free shared reads, coalesced stores along P); K in steps of 16
// through shared memory. blockIdx.z: image * group + g.
//
// Split K (part != NULL, for grids too small to fill the GPU): blockIdx.z also holds the
// slice s of `split`, covering K [s * kslice, (s + 1) * kslice); the block stores its raw sums
// in part[s] (float, the output's layout) and splitk_reduce_k adds the slices and applies the
// epilogue.
template <typename T, int BM, int BP, bool PW>
__global__ void __launch_bounds__(256) igemm_k(const T *__restrict__ x, const T *__restrict__ w,
                                               const T *__restrict__ bias, const T *__restrict__ res,
                                               T *__restrict__ y, dt_cu_conv g, float *__restrict__ part,
                                               int split, int64_t kslice)
{
    dt_grid_wait();
    constexpr int BK = 16, TM = BM / 16, TP = BP / 16;
    __shared__ float ws[BK][BM + 1];
    __shared__ float xs[BK][BP];
    const int64_t Mg = g.m / g.group, Cg = g.c / g.group, taps = g.kh * g.kw, Kall = Cg * taps;
    const int64_t P = g.oh * g.ow, IP = g.ih * g.iw;
    const int64_t z = blockIdx.z / split, sl = blockIdx.z % split;
    const int64_t n = z / g.group, gi = z % g.group;
    const int64_t kbeg = part ? sl * kslice : 0, K = part ? (kbeg + kslice < Kall ? kbeg + kslice : Kall) : Kall;
    const int64_t m0 = (int64_t)blockIdx.y * BM, p0 = (int64_t)blockIdx.x * BP;
    const T *xn = x + (n * g.c + gi * Cg) * IP;
    const T *wg = w + gi * Mg * Kall; // W is [M, Cg * taps]: a group's rows start Mg * Kall apart
    const int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;
    float acc[TM][TP];
#pragma unroll
    for (int i = 0; i < TM; i++)
#pragma unroll
        for (int j = 0; j < TP; j++) acc[i][j] = 0.f;
    for (int64_t k0 = kbeg; k0 < K; k0 += BK) {
        // W tile: BM rows of BK (k fastest across threads: coalesced along W's rows).
        for (int e = threadIdx.x; e < BM * BK; e += 256) {
            int kk = e % BK, mm = e / BK;
            int64_t m = m0 + mm, k = k0 + kk;
            ws[kk][mm] = m < Mg && k < K ? to_f(wg[m * Kall + k]) : 0.f;
        }
        // X tile: BK rows of BP (p fastest).
        for (int e = threadIdx.x; e < BK * BP; e += 256) {
            int pp = e % BP, kk = e / BP;
            int64_t p = p0 + pp, k = k0 + kk;
            float v = 0.f;
            if (p < P && k < K) {
                if (PW) {
                    v = to_f(xn[k * IP + p]);
                } else { // 32-bit: conv_own.c's applies() bounds K, P and the input's dims
                    int ki = (int)k, pi = (int)p, tp = (int)taps, kw = (int)g.kw, OW = (int)g.ow;
                    int c = ki / tp, rs = ki - c * tp, r = rs / kw, s = rs - r * kw;
                    int oh = pi / OW, ow = pi - oh * OW;
                    int ih = oh * (int)g.sh - (int)g.ph + r * (int)g.dh, iw = ow * (int)g.sw - (int)g.pw + s * (int)g.dw;
                    if (ih >= 0 && ih < (int)g.ih && iw >= 0 && iw < (int)g.iw)
                        v = to_f(xn[(int64_t)c * IP + (int64_t)ih * g.iw + iw]);
                }
            }
            xs[kk][pp] = v;
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
        if (m >= Mg) continue;
        int64_t mo = gi * Mg + m;
        float bm = bias ? to_f(bias[mo]) : 0.f;
#pragma unroll
        for (int j = 0; j < TP; j++) {
            int64_t p = p0 + tx + 16 * j;
            if (p >= P) continue;
            int64_t o = (n * g.m + mo) * P + p;
            if (part) {
                part[sl * g.n * g.m * P + o] = acc[i][j];
                continue;
            }
            float v = acc[i][j] + bm;
            if (res) v += to_f(res[o]);
            y[o] = from_f<T>(act(g.act, v, g.p0, g.p1));
        }
    }
}

// Whether dw3_nhwc8_k takes this channels-last depthwise layer: 3x3, channel multiplier 1,
// channels in 8s, 16-byte aligned tensors, 32-bit offsets; DUCTILE_CUDA_DW8=0 never (an A/B
// switch: the one-element kernel).
static bool dw3_nhwc8_applies(const void *x, const void *w, const void *bias, const void *res, const void *y,
                              const dt_cu_conv *g)
{
    static const char *off = getenv("DUCTILE_CUDA_DW8");
    const bool aligned = (((uintptr_t)x | (uintptr_t)w | (uintptr_t)bias | (uintptr_t)res | (uintptr_t)y) & 15) == 0;
    return !(off && !strcmp(off, "0")) && g->kh == 3 && g->kw == 3 && g->m == g->c && g->c % 8 == 0 && aligned &&
           g->n * g->ih * g->iw * g->c < 0x7fffffff;
}

template <typename T>
int depthwise(const T *x, const T *w, const T *bias, const T *res, T *y, const dt_cu_conv *g, bool nhwc, void *stream)
{
    int64_t total = g->n * g->m * g->oh * g->ow;
    if (total <= 0) return 0;
    int64_t blocks = (total + 255) / 256;
    if (blocks > 65535 * 32) blocks = 65535 * 32;
    bool small = total < 0x7fffffff - 65535 * 32 * 256;
    if constexpr (sizeof(T) == 2) {
        if (nhwc && small && dw3_nhwc8_applies(x, w, bias, res, y, g)) {
            // Blocks of 64 threads where 256 would leave most multiprocessors idle (mobilenet_v2
            // b1's 7x7 x 960: 74 blocks of 256 for the H200's 132 SMs).
            const int sms = dt_cuda_sm_count() > 0 ? dt_cuda_sm_count() : 132;
            int64_t t8 = total / 8;
            unsigned th = t8 < (int64_t)sms * 256 * 2 ? 64 : 256;
            int64_t b8 = (t8 + th - 1) / th;
            dt_launch(dw3_nhwc8_k<T>, (unsigned)(b8 < 65535 * 32 ? b8 : 65535 * 32), th, 0, (cudaStream_t)stream, x, w,
                      bias, res, y, *g, (int)t8);
            return (int)cudaGetLastError();
        }
    }
    if (nhwc && small)
        dt_launch(depthwise_k<T, int, true>, (unsigned)blocks, 256, 0, (cudaStream_t)stream, x, w, bias, res, y, *g, (int)total);
    else if (nhwc)
        dt_launch(depthwise_k<T, int64_t, true>, (unsigned)blocks, 256, 0, (cudaStream_t)stream, x, w, bias, res, y, *g, total);
    else if (small)
        dt_launch(depthwise_k<T, int, false>, (unsigned)blocks, 256, 0, (cudaStream_t)stream, x, w, bias, res, y, *g, (int)total);
    else
        dt_launch(depthwise_k<T, int64_t, false>, (unsigned)blocks, 256, 0, (cudaStream_t)stream, x, w, bias, res, y, *g, total);
    return (int)cudaGetLastError();
}

// y = act(sum of the split slices + bias + res), one thread per output element.
template <typename T>
__global__ void splitk_reduce_k(const float *__restrict__ part, const T *__restrict__ bias, const T *__restrict__ res,
                                T *__restrict__ y, dt_cu_conv g, int split, int64_t total, int64_t P)
{
    dt_grid_wait();
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        float v = 0.f;
        for (int s = 0; s < split; s++) v += part[s * total + i];
        if (bias) v += to_f(bias[(i / P) % g.m]);
        if (res) v += to_f(res[i]);
        y[i] = from_f<T>(act(g.act, v, g.p0, g.p1));
    }
}

template <typename T, int B, bool PW>
int igemm(const T *x, const T *w, const T *bias, const T *res, T *y, const dt_cu_conv *g, float *part, int split,
          void *stream)
{
    int64_t P = g->oh * g->ow;
    if (g->n <= 0 || g->m <= 0 || P <= 0) return 0;
    if (!part) split = 1;
    int64_t K = g->c / g->group * g->kh * g->kw, kslice = (K + split - 1) / split;
    kslice = (kslice + 15) / 16 * 16;
    int64_t gx = (P + B - 1) / B, gy = (g->m / g->group + B - 1) / B, gz = g->n * g->group * split;
    if (gx > 0x7fffffff || gy > 65535 || gz > 65535) return (int)cudaErrorInvalidConfiguration;
    dim3 grid((unsigned)gx, (unsigned)gy, (unsigned)gz);
    dt_launch(igemm_k<T, B, B, PW>, grid, 256, 0, (cudaStream_t)stream, x, w, bias, res, y, *g, part, split, kslice);
    if (!part) return (int)cudaGetLastError();
    int64_t total = g->n * g->m * P, blocks = (total + 255) / 256;
    if (blocks > 65535 * 32) blocks = 65535 * 32;
    dt_launch(splitk_reduce_k<T>, (unsigned)blocks, 256, 0, (cudaStream_t)stream, part, bias, res, y, *g, split, total, P);
    return (int)cudaGetLastError();
}

// Tensor-core implicit GEMM for half data (float16, bfloat16; sm_80+: conv_own.c offers it
// only there): the same product as igemm_k, with a 64 x 64 tile per block of 4 warps, each
// warp 32 x 32 as 2 x 2 WMMA 16x16x16 fragments with float accumulators; K in steps of 32.
// The tiles are staged in shared memory as T (W: m x k, cols: k x p, both row-major, rows
// padded by 8 elements against bank conflicts); the accumulators go through shared memory
// so the epilogue (bias, residual, activation, one rounding) stores coalesced along P.
// Split K as in igemm_k (part != NULL: raw float sums per slice).
constexpr int TC_BM = 64, TC_BP = 64, TC_BK = 32, TC_THREADS = 128;

template <typename T, bool PW>
__global__ void __launch_bounds__(TC_THREADS) igemm_tc_k(const T *__restrict__ x, const T *__restrict__ w,
                                                        const T *__restrict__ bias, const T *__restrict__ res,
                                                        T *__restrict__ y, dt_cu_conv g, float *__restrict__ part,
                                                        int split, int64_t kslice)
{
    dt_grid_wait();
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
    using namespace nvcuda;
    __shared__ __align__(32) T as[TC_BM][TC_BK + 8];
    __shared__ __align__(32) T bs[TC_BK][TC_BP + 8];
    __shared__ __align__(32) float cs[TC_BM][TC_BP + 4];
    const int64_t Mg = g.m / g.group, Cg = g.c / g.group, taps = g.kh * g.kw, Kall = Cg * taps;
    const int64_t P = g.oh * g.ow, IP = g.ih * g.iw;
    const int64_t z = blockIdx.z / split, sl = blockIdx.z % split;
    const int64_t n = z / g.group, gi = z % g.group;
    const int64_t kbeg = part ? sl * kslice : 0, K = part ? (kbeg + kslice < Kall ? kbeg + kslice : Kall) : Kall;
    const int64_t m0 = (int64_t)blockIdx.y * TC_BM, p0 = (int64_t)blockIdx.x * TC_BP;
    const T *xn = x + (n * g.c + gi * Cg) * IP;
    const T *wg = w + gi * Mg * Kall;
    const int warp = threadIdx.x >> 5, wm = (warp >> 1) * 32, wp = (warp & 1) * 32;
    const T zero = from_f<T>(0.f);
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 2; j++) wmma::fill_fragment(acc[i][j], 0.f);
    for (int64_t k0 = kbeg; k0 < K; k0 += TC_BK) {
        for (int e = threadIdx.x; e < TC_BM * TC_BK; e += TC_THREADS) {
            int kk = e % TC_BK, mm = e / TC_BK;
            int64_t m = m0 + mm, k = k0 + kk;
            as[mm][kk] = m < Mg && k < K ? wg[m * Kall + k] : zero;
        }
        for (int e = threadIdx.x; e < TC_BK * TC_BP; e += TC_THREADS) {
            int pp = e % TC_BP, kk = e / TC_BP;
            int64_t p = p0 + pp, k = k0 + kk;
            T v = zero;
            if (p < P && k < K) {
                if (PW) {
                    v = xn[k * IP + p];
                } else { // 32-bit: conv_own.c's applies() bounds K, P and the input's dims
                    int ki = (int)k, pi = (int)p, tp = (int)taps, kw = (int)g.kw, OW = (int)g.ow;
                    int c = ki / tp, rs = ki - c * tp, r = rs / kw, s = rs - r * kw;
                    int oh = pi / OW, ow = pi - oh * OW;
                    int ih = oh * (int)g.sh - (int)g.ph + r * (int)g.dh, iw = ow * (int)g.sw - (int)g.pw + s * (int)g.dw;
                    if (ih >= 0 && ih < (int)g.ih && iw >= 0 && iw < (int)g.iw)
                        v = xn[(int64_t)c * IP + (int64_t)ih * g.iw + iw];
                }
            }
            bs[kk][pp] = v;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < TC_BK; kk += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a[2];
            wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> b[2];
#pragma unroll
            for (int i = 0; i < 2; i++) wmma::load_matrix_sync(a[i], &as[wm + 16 * i][kk], TC_BK + 8);
#pragma unroll
            for (int j = 0; j < 2; j++) wmma::load_matrix_sync(b[j], &bs[kk][wp + 16 * j], TC_BP + 8);
#pragma unroll
            for (int i = 0; i < 2; i++)
#pragma unroll
                for (int j = 0; j < 2; j++) wmma::mma_sync(acc[i][j], a[i], b[j], acc[i][j]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 2; j++)
            wmma::store_matrix_sync(&cs[wm + 16 * i][wp + 16 * j], acc[i][j], TC_BP + 4, wmma::mem_row_major);
    __syncthreads();
    for (int e = threadIdx.x; e < TC_BM * TC_BP; e += TC_THREADS) {
        int pp = e % TC_BP, mm = e / TC_BP;
        int64_t m = m0 + mm, p = p0 + pp;
        if (m >= Mg || p >= P) continue;
        int64_t mo = gi * Mg + m, o = (n * g.m + mo) * P + p;
        float v = cs[mm][pp];
        if (part) {
            part[sl * g.n * g.m * P + o] = v;
            continue;
        }
        if (bias) v += to_f(bias[mo]);
        if (res) v += to_f(res[o]);
        y[o] = from_f<T>(act(g.act, v, g.p0, g.p1));
    }
#endif
}

template <typename T, bool PW>
int igemm_tc(const T *x, const T *w, const T *bias, const T *res, T *y, const dt_cu_conv *g, float *part, int split,
             void *stream)
{
    int64_t P = g->oh * g->ow;
    if (g->n <= 0 || g->m <= 0 || P <= 0) return 0;
    if (!part) split = 1;
    int64_t K = g->c / g->group * g->kh * g->kw, kslice = (K + split - 1) / split;
    kslice = (kslice + TC_BK - 1) / TC_BK * TC_BK;
    int64_t gx = (P + TC_BP - 1) / TC_BP, gy = (g->m / g->group + TC_BM - 1) / TC_BM, gz = g->n * g->group * split;
    if (gx > 0x7fffffff || gy > 65535 || gz > 65535) return (int)cudaErrorInvalidConfiguration;
    dim3 grid((unsigned)gx, (unsigned)gy, (unsigned)gz);
    dt_launch(igemm_tc_k<T, PW>, grid, TC_THREADS, 0, (cudaStream_t)stream, x, w, bias, res, y, *g, part, split, kslice);
    if (!part) return (int)cudaGetLastError();
    int64_t total = g->n * g->m * P, blocks = (total + 255) / 256;
    if (blocks > 65535 * 32) blocks = 65535 * 32;
    dt_launch(splitk_reduce_k<T>, (unsigned)blocks, 256, 0, (cudaStream_t)stream, part, bias, res, y, *g, split, total, P);
    return (int)cudaGetLastError();
}

template <typename T>
int igemm_any(const void *x, const void *w, const void *bias, const void *res, void *y, const dt_cu_conv *g, int tile,
              int pointwise, float *part, int split, void *stream)
{
    const T *xt = (const T *)x, *wt = (const T *)w, *bt = (const T *)bias, *rt = (const T *)res;
    T *yt = (T *)y;
    if (tile == 0) {
        if constexpr (std::is_same<T, float>::value) return (int)cudaErrorInvalidValue; // half data only
        else
            return pointwise ? igemm_tc<T, true>(xt, wt, bt, rt, yt, g, part, split, stream)
                             : igemm_tc<T, false>(xt, wt, bt, rt, yt, g, part, split, stream);
    }
    if (pointwise)
        return tile == 64 ? igemm<T, 64, true>(xt, wt, bt, rt, yt, g, part, split, stream)
                          : igemm<T, 32, true>(xt, wt, bt, rt, yt, g, part, split, stream);
    return tile == 64 ? igemm<T, 64, false>(xt, wt, bt, rt, yt, g, part, split, stream)
                      : igemm<T, 32, false>(xt, wt, bt, rt, yt, g, part, split, stream);
}

// Tiled depthwise (channel multiplier 1), both layouts. A block computes an output tile of
// th x tw pixels x cb channels from the input tile it needs (halo included, zeros where the
// pads are) staged once in shared memory as float; the weights of its channels too. Each
// thread then computes several outputs (a loop over the tile by the block's stride), reading
// its taps from shared memory, and applies the epilogue in the store. The one tap loop below
// serves both layouts: the staged tile is addressed by a row stride and a pixel stride (NCHW:
// one channel's plane, pixel stride 1; NHWC: pixels of cb channels, pixel stride cb).
struct dw_tile {
    int th, tw, cb, ith, itw, threads; // output tile, channels, input tile, block size
    int vec;                           // NHWC staging: elements per 16-byte load (1: scalar)
};

// The taps of one output: s is the staged input at the window's origin, w the kh x kw
// weights (registers where K is the kernel size, shared memory for K == 0: any kh, kw).
template <int K>
__device__ __forceinline__ float dw_taps(const float *s, int rs, int ps, int kh, int kw, int dh, int dw, const float *w)
{
    const int H = K ? K : kh, W = K ? K : kw;
    float acc = 0.f;
#pragma unroll
    for (int a = 0; a < H; a++)
#pragma unroll
        for (int b = 0; b < W; b++) acc = fmaf(s[a * dh * rs + b * dw * ps], w[a * W + b], acc);
    return acc;
}

// 16 bytes of T widened to float.
template <typename T, int V>
__device__ __forceinline__ void ld_vec(const T *p, float *out)
{
    union {
        uint4 u;
        T e[V];
    } v;
    v.u = *(const uint4 *)p;
#pragma unroll
    for (int j = 0; j < V; j++) out[j] = to_f(v.e[j]);
}

// K: 3 or 5 (a K x K kernel, weights in registers) or 0 (any kh, kw). Sizes are 32-bit
// (dw_tile_plan bounds them); only the tensors' base offsets are 64-bit.
template <typename T, bool NHWC, int K>
__global__ void dw_tiled_k(const T *__restrict__ x, const T *__restrict__ w, const T *__restrict__ bias,
                           const T *__restrict__ res, T *__restrict__ y, dt_cu_conv g, dw_tile t)
{
    dt_grid_wait();
    extern __shared__ float sm[];
    const int C = (int)g.c, OH = (int)g.oh, OW = (int)g.ow, IH = (int)g.ih, IW = (int)g.iw;
    const int kh = (int)g.kh, kw = (int)g.kw, taps = kh * kw, sh = (int)g.sh, sw = (int)g.sw;
    const int tiles_w = (OW + t.tw - 1) / t.tw, tiles_h = (OH + t.th - 1) / t.th, cbs = (C + t.cb - 1) / t.cb;
    unsigned b = blockIdx.x;
    const int bx = (int)(b % tiles_w);
    b /= tiles_w;
    const int by = (int)(b % tiles_h);
    b /= tiles_h;
    const int bc = (int)(b % cbs);
    const int64_t n = b / cbs;
    const int oh0 = by * t.th, ow0 = bx * t.tw, c0 = bc * t.cb;
    const int ih0 = oh0 * sh - (int)g.ph, iw0 = ow0 * sw - (int)g.pw;
    const int plane = t.ith * t.itw;
    float *xs = sm, *ws = sm + plane * t.cb; // ws: [cb][taps]
    const int ps = NHWC ? t.cb : 1, rs = t.itw * ps, cs = NHWC ? 1 : plane;

    for (int e = threadIdx.x; e < t.cb * taps; e += blockDim.x) {
        int c = c0 + e / taps;
        ws[e] = c < C ? to_f(w[(int64_t)c * taps + e % taps]) : 0.f;
    }
    if (NHWC) {
        const T *xn = x + n * IH * IW * (int64_t)C;
        if (t.vec > 1) {
            constexpr int V = 16 / sizeof(T);
            const int cv = t.cb / V;
            for (int e = threadIdx.x; e < plane * cv; e += blockDim.x) {
                int q = e % cv, p = e / cv, yy = p / t.itw, xx = p - yy * t.itw;
                int h = ih0 + yy, c = iw0 + xx, ch = c0 + q * V;
                float v[V];
                if (h >= 0 && h < IH && c >= 0 && c < IW && ch < C)
                    ld_vec<T, V>(xn + ((int64_t)h * IW + c) * C + ch, v);
                else
#pragma unroll
                    for (int j = 0; j < V; j++) v[j] = 0.f;
#pragma unroll
                for (int j = 0; j < V; j++) xs[p * t.cb + q * V + j] = v[j];
            }
        } else {
            for (int e = threadIdx.x; e < plane * t.cb; e += blockDim.x) {
                int q = e % t.cb, p = e / t.cb, yy = p / t.itw, xx = p - yy * t.itw;
                int h = ih0 + yy, c = iw0 + xx, ch = c0 + q;
                xs[e] = h >= 0 && h < IH && c >= 0 && c < IW && ch < C ? to_f(xn[((int64_t)h * IW + c) * C + ch]) : 0.f;
            }
        }
    } else { // one channel's plane (cb == 1)
        const T *xp = x + (n * C + c0) * (int64_t)IH * IW;
        for (int e = threadIdx.x; e < plane; e += blockDim.x) {
            int yy = e / t.itw, xx = e - yy * t.itw, h = ih0 + yy, c = iw0 + xx;
            xs[e] = h >= 0 && h < IH && c >= 0 && c < IW ? to_f(xp[(int64_t)h * IW + c]) : 0.f;
        }
    }
    __syncthreads();

    // NHWC: blockDim is a multiple of cb, so a thread keeps one channel over its outputs.
    const int cf = NHWC ? threadIdx.x % t.cb : 0;
    float wr[K ? K * K : 1];
    if (K)
#pragma unroll
        for (int k = 0; k < (K ? K * K : 1); k++) wr[k] = ws[cf * taps + k];
    const int nout = t.th * t.tw * t.cb, co = c0 + cf;
    const float bv = bias && co < C ? to_f(bias[co]) : 0.f;
    for (int e = threadIdx.x; e < nout; e += blockDim.x) {
        int p = NHWC ? e / t.cb : e, py = p / t.tw, px = p - py * t.tw;
        int oh = oh0 + py, ow = ow0 + px;
        if (oh >= OH || ow >= OW || co >= C) continue;
        const float *s = xs + cf * cs + py * sh * rs + px * sw * ps;
        float acc = dw_taps<K>(s, rs, ps, kh, kw, (int)g.dh, (int)g.dw, K ? wr : ws + cf * taps) + bv;
        int64_t o = NHWC ? ((n * OH + oh) * OW + ow) * C + co : ((n * C + co) * OH + oh) * (int64_t)OW + ow;
        if (res) acc += to_f(res[o]);
        y[o] = from_f<T>(act(g.act, acc, g.p0, g.p1));
    }
}

// The tile of a geometry, or false where the tiled kernel does not apply: channel
// multiplier 1, 32-bit sizes, a grid of at most 2^31 - 1 blocks, and a staged tile (input and
// weights, float) of at most 32 KiB: large dilations shrink it (below) down to one output of
// one channel; where even that does not fit, the generic kernel.
constexpr int DW_SMEM = 32 * 1024;

bool dw_tile_plan(const dt_cu_conv *g, bool nhwc, dw_tile *t)
{
    if (g->group != g->c || g->m != g->c || g->c < 1 || g->n < 1) return false;
    const int64_t lim = 1 << 24;
    if (g->c >= lim || g->ih >= lim || g->iw >= lim || g->oh >= lim || g->ow >= lim || g->kh * g->kw >= 4096 ||
        g->sh >= 4096 || g->sw >= 4096 || g->dh >= 4096 || g->dw >= 4096 || g->ph >= lim || g->pw >= lim)
        return false;
    // NHWC channels a block: the largest of 64, 32, 16, 8 that pads C by at most an eighth
    // (C = 72: 16, 96: 32, 960: 64), else 8.
    int cb = 1;
    if (nhwc) {
        cb = 8;
        for (int c = 64; c > 8; c /= 2)
            if (((g->c + c - 1) / c * c - g->c) * 8 <= g->c) {
                cb = c;
                break;
            }
    }
    // Output tiles: NCHW 32 x 32 of one channel (4 outputs a thread); NHWC 8 x 8 pixels, 16 x 16
    // where the halo is wide (dilated or 5x5: less of the staged tile is halo); no larger than
    // the map. Where the staged tile exceeds DW_SMEM, NHWC first takes fewer channels (down to
    // 8), then the tile shrinks (rows, then columns), then the channels again.
    bool wide = (g->kh - 1) * g->dh >= 4 || (g->kw - 1) * g->dw >= 4;
    int th = nhwc ? (wide ? 16 : 8) : 32, tw = th;
    while (tw > 1 && tw / 2 >= g->ow) tw /= 2;
    while (th > 1 && th / 2 >= g->oh) th /= 2;
    int64_t ith, itw, bytes;
    for (;;) {
        ith = (int64_t)(th - 1) * g->sh + (g->kh - 1) * g->dh + 1;
        itw = (int64_t)(tw - 1) * g->sw + (g->kw - 1) * g->dw + 1;
        bytes = (ith * itw * cb + cb * g->kh * g->kw) * (int64_t)sizeof(float);
        if (bytes <= DW_SMEM) break;
        if (nhwc && cb > 8) cb /= 2;
        else if (th > 1 && th >= tw) th /= 2;
        else if (tw > 1) tw /= 2;
        else if (cb > 1) cb /= 2;
        else return false;
    }
    int64_t blocks = (g->ow + tw - 1) / tw * ((g->oh + th - 1) / th) * ((g->c + cb - 1) / cb) * g->n;
    if (blocks > 0x7fffffff) return false;
    int threads = nhwc ? 256 : (int)((th * tw + 31) / 32 * 32);
    if (threads > 256) threads = 256;
    *t = dw_tile{th, tw, cb, (int)ith, (int)itw, threads, 1};
    return true;
}

template <typename T>
int dw_tiled(const T *x, const T *w, const T *bias, const T *res, T *y, const dt_cu_conv *g, bool nhwc, void *stream)
{
    dw_tile t;
    if (!dw_tile_plan(g, nhwc, &t)) return (int)cudaErrorInvalidValue;
    if (g->oh <= 0 || g->ow <= 0) return 0;
    constexpr int V = 16 / sizeof(T);
    if (nhwc && g->c % V == 0 && t.cb % V == 0 && (uintptr_t)x % 16 == 0) t.vec = V;
    int64_t blocks = (g->ow + t.tw - 1) / t.tw * ((g->oh + t.th - 1) / t.th) * ((g->c + t.cb - 1) / t.cb) * g->n;
    size_t smem = ((size_t)t.ith * t.itw * t.cb + (size_t)t.cb * g->kh * g->kw) * sizeof(float);
    cudaStream_t s = (cudaStream_t)stream;
    bool k3 = g->kh == 3 && g->kw == 3, k5 = g->kh == 5 && g->kw == 5;
#define DT_DW_LAUNCH(L, K) dt_launch(dw_tiled_k<T, L, K>, (unsigned)blocks, t.threads, smem, s, x, w, bias, res, y, *g, t)
    if (nhwc) {
        if (k3) DT_DW_LAUNCH(true, 3);
        else if (k5) DT_DW_LAUNCH(true, 5);
        else DT_DW_LAUNCH(true, 0);
    } else {
        if (k3) DT_DW_LAUNCH(false, 3);
        else if (k5) DT_DW_LAUNCH(false, 5);
        else DT_DW_LAUNCH(false, 0);
    }
#undef DT_DW_LAUNCH
    return (int)cudaGetLastError();
}

} // namespace

// Both layouts: nhwc picks channels last (the layout pass's layers) or channels first.
static int depthwise_any(int dtype, const void *x, const void *w, const void *bias, const void *res, void *y,
                         const dt_cu_conv *g, bool nhwc, void *stream)
{
    switch (dtype) {
    case DUCTILE_FLOAT32:
        return depthwise<float>((const float *)x, (const float *)w, (const float *)bias, (const float *)res, (float *)y,
                                g, nhwc, stream);
    case DUCTILE_FLOAT16:
        return depthwise<__half>((const __half *)x, (const __half *)w, (const __half *)bias, (const __half *)res,
                                 (__half *)y, g, nhwc, stream);
    case DUCTILE_BFLOAT16:
        return depthwise<__nv_bfloat16>((const __nv_bfloat16 *)x, (const __nv_bfloat16 *)w,
                                        (const __nv_bfloat16 *)bias, (const __nv_bfloat16 *)res, (__nv_bfloat16 *)y, g,
                                        nhwc, stream);
    }
    return (int)cudaErrorInvalidValue;
}

extern "C" int dt_cu_conv_depthwise(int dtype, const void *x, const void *w, const void *bias, const void *res, void *y,
                                    const dt_cu_conv *g, void *stream)
{
    return depthwise_any(dtype, x, w, bias, res, y, g, false, stream);
}

extern "C" int dt_cu_conv_depthwise_nhwc(int dtype, const void *x, const void *w, const void *bias, const void *res, void *y,
                                         const dt_cu_conv *g, void *stream)
{
    return depthwise_any(dtype, x, w, bias, res, y, g, true, stream);
}

extern "C" int dt_cu_conv_igemm(int dtype, const void *x, const void *w, const void *bias, const void *res, void *y,
                                const dt_cu_conv *g, int tile, int pointwise, float *part, int split, void *stream)
{
    switch (dtype) {
    case DUCTILE_FLOAT32: return igemm_any<float>(x, w, bias, res, y, g, tile, pointwise, part, split, stream);
    case DUCTILE_FLOAT16: return igemm_any<__half>(x, w, bias, res, y, g, tile, pointwise, part, split, stream);
    case DUCTILE_BFLOAT16: return igemm_any<__nv_bfloat16>(x, w, bias, res, y, g, tile, pointwise, part, split, stream);
    }
    return (int)cudaErrorInvalidValue;
}

extern "C" bool dt_cu_conv_dw_tiled_applies(const dt_cu_conv *g, int nhwc)
{
    dw_tile t;
    return dw_tile_plan(g, nhwc != 0, &t);
}

extern "C" int dt_cu_conv_dw_tiled(int dtype, const void *x, const void *w, const void *bias, const void *res, void *y,
                                   const dt_cu_conv *g, int nhwc, void *stream)
{
    switch (dtype) {
    case DUCTILE_FLOAT32:
        return dw_tiled<float>((const float *)x, (const float *)w, (const float *)bias, (const float *)res, (float *)y, g,
                               nhwc != 0, stream);
    case DUCTILE_FLOAT16:
        return dw_tiled<__half>((const __half *)x, (const __half *)w, (const __half *)bias, (const __half *)res,
                                (__half *)y, g, nhwc != 0, stream);
    case DUCTILE_BFLOAT16:
        return dw_tiled<__nv_bfloat16>((const __nv_bfloat16 *)x, (const __nv_bfloat16 *)w, (const __nv_bfloat16 *)bias,
                                       (const __nv_bfloat16 *)res, (__nv_bfloat16 *)y, g, nhwc != 0, stream);
    }
    return (int)cudaErrorInvalidValue;
}
