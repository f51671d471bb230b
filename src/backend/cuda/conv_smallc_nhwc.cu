// Channels-last convolution with few input channels (a network's first conv: superres' 1 ->
// 64 5x5, ResNet's and MobileNet's 3 -> 64 / 32): K = C * KH * KW is too short and C too
// narrow for the tensor-core kernel's 16-byte copies (conv_tc_nhwc.cu), and cuDNN's NHWC
// kernels ran superres' first conv at 1024x1024 in 0.67 ms where its output (128 MB of FP16)
// takes ~0.03 ms to write. Direct, on CUDA cores in float32: the block stages every weight
// in shared memory as float [K][M rounded up to 8]; a thread computes 8 output channels of
// one pixel (neighbouring threads: the same pixel's next channels, so x loads are shared
// within a warp and the 16-byte stores of a warp are contiguous), bias, residual and
// activation in the store. One group, any kernel, stride, pads and dilation.
#include "backend/cuda/act.cuh"
#include "backend/cuda/conv_tc_nhwc.h"
#include "backend/cuda/elem.cuh"
#include "backend/cuda/mma.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

namespace {

constexpr int kThreads = 256;

template <typename T>
__global__ void __launch_bounds__(kThreads) conv_smallc_nhwc_k(const T *__restrict__ x, const T *__restrict__ w,
                                                               const T *__restrict__ bias, const T *res, T *y,
                                                               const dt_cu_conv g, bool vec)
{
    extern __shared__ float4 ws4[];
    float *ws = reinterpret_cast<float *>(ws4);
    const int C = (int)g.c, M = (int)g.m, KW = (int)g.kw, K = (int)(g.kh * g.kw) * C;
    const int chunks = (M + 7) / 8, Mp = chunks * 8;
    for (int i = threadIdx.x; i < K * Mp; i += kThreads) {
        const int k = i / Mp, m = i - k * Mp;
        ws[i] = m < M ? ld(w[(int64_t)m * K + k]) : 0.f;   // W [M, KH, KW, C]: row m is k in order
    }
    __syncthreads();
    const int IH = (int)g.ih, IW = (int)g.iw, OW = (int)g.ow, OHW = (int)(g.oh * g.ow);
    const int64_t total = g.n * OHW * chunks;
    for (int64_t idx = (int64_t)blockIdx.x * kThreads + threadIdx.x; idx < total; idx += (int64_t)gridDim.x * kThreads) {
        const int64_t p = idx / chunks;
        const int ch = (int)(idx - p * chunks), m0 = ch * 8;
        const int64_t n = p / OHW;
        const int r = (int)(p - n * OHW), oh = r / OW, ow = r - oh * OW;
        const int ih0 = oh * (int)g.sh - (int)g.ph, iw0 = ow * (int)g.sw - (int)g.pw;
        const T *xn = x + n * IH * IW * C;
        float acc[8];
#pragma unroll
        for (int j = 0; j < 8; j++) acc[j] = 0.f;
        for (int kh = 0; kh < (int)g.kh; kh++) {
            const int ih = ih0 + kh * (int)g.dh;
            if ((unsigned)ih >= (unsigned)IH) continue;
            for (int kw = 0; kw < KW; kw++) {
                const int iw = iw0 + kw * (int)g.dw;
                if ((unsigned)iw >= (unsigned)IW) continue;
                const T *xp = xn + ((int64_t)ih * IW + iw) * C;
                const float *wp = ws + (kh * KW + kw) * C * Mp + m0;
                for (int c = 0; c < C; c++, wp += Mp) {
                    const float xv = ld(xp[c]);
                    const float4 a = *reinterpret_cast<const float4 *>(wp), b = *reinterpret_cast<const float4 *>(wp + 4);
                    acc[0] += xv * a.x, acc[1] += xv * a.y, acc[2] += xv * a.z, acc[3] += xv * a.w;
                    acc[4] += xv * b.x, acc[5] += xv * b.y, acc[6] += xv * b.z, acc[7] += xv * b.w;
                }
            }
        }
        const int64_t o = p * M + m0;
        if (vec) {   // M % 8 == 0 and 16-byte aligned y, res: one 16-byte store
            float v[8];
#pragma unroll
            for (int j = 0; j < 8; j++) v[j] = acc[j] + (bias ? ld(bias[m0 + j]) : 0.f);
            if (res) {
                const uint4 rv = *reinterpret_cast<const uint4 *>(res + o);
                const T *r8 = reinterpret_cast<const T *>(&rv);
#pragma unroll
                for (int j = 0; j < 8; j++) v[j] += ld(r8[j]);
            }
            uint4 out;
            uint32_t *u = reinterpret_cast<uint32_t *>(&out);
#pragma unroll
            for (int j = 0; j < 4; j++)
                u[j] = pair_of<T>::pack(act(g.act, v[2 * j], g.p0, g.p1), act(g.act, v[2 * j + 1], g.p0, g.p1));
            *reinterpret_cast<uint4 *>(y + o) = out;
        } else {
#pragma unroll
            for (int j = 0; j < 8; j++) {
                if (m0 + j >= M) break;
                float v = acc[j] + (bias ? ld(bias[m0 + j]) : 0.f);
                if (res) v += ld(res[o + j]);
                y[o + j] = st<T>(act(g.act, v, g.p0, g.p1));
            }
        }
    }
}

template <typename T>
int launch(const void *x, const void *w, const void *bias, const void *res, void *y, const dt_cu_conv *g, void *stream)
{
    const int64_t chunks = (g->m + 7) / 8, total = g->n * g->oh * g->ow * chunks;
    const size_t smem = (size_t)(g->kh * g->kw * g->c) * (size_t)(chunks * 8) * sizeof(float);
    int64_t blocks = (total + kThreads - 1) / kThreads, most = (int64_t)dt_cuda_sm_count() * 8;
    if (most > 0 && blocks > most) blocks = most;   // grid-stride: the weights are staged once per block
    if (blocks < 1) return 0;
    const bool vec = g->m % 8 == 0 && ((uintptr_t)y | (uintptr_t)res) % 16 == 0;
    conv_smallc_nhwc_k<T><<<(unsigned)blocks, kThreads, smem, (cudaStream_t)stream>>>(
        (const T *)x, (const T *)w, (const T *)bias, (const T *)res, (T *)y, *g, vec);
    return (int)cudaGetLastError();
}

} // namespace

extern "C" int dt_cu_conv_smallc_nhwc(int dtype, const void *x, const void *w, const void *bias, const void *res, void *y,
                                      const dt_cu_conv *g, void *stream)
{
    if (dtype == DUCTILE_FLOAT16) return launch<__half>(x, w, bias, res, y, g, stream);
    if (dtype == DUCTILE_BFLOAT16) return launch<__nv_bfloat16>(x, w, bias, res, y, g, stream);
    return (int)cudaErrorInvalidValue;
}
