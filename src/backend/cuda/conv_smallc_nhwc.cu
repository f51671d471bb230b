// Channels-last convolution with few input channels (a network's first conv: superres' 1 ->
// 64 5x5, ResNet's and MobileNet's 3 -> 64 / 32): K = C * KH * KW is too short and C too
// narrow for the tensor-core kernel's 16-byte copies (conv_tc_nhwc.cu), and cuDNN's NHWC
// kernels ran superres' first conv at 1024x1024 in 0.66 ms where its output (128 MB of FP16)
// takes ~0.03 ms to write. Direct, on CUDA cores in float32.
//
// A thread computes one output pixel x kMT (32) output channels; blockIdx.y picks the block of
// 32 channels, whose weights the block stages in shared memory as float [K][32] (every lane
// of a warp reads the same weights: broadcasts, four per 16-byte load, four FMAs each). Per
// kernel row the thread first loads the row's KW * C inputs into registers (independent loads
// in flight together; C is a template parameter, so the unrolled positions are constants),
// then runs their FMAs. Bias, residual and activation in the store, 16 bytes at a time where
// channels and alignment allow. (Session 9's first version, one thread per 8 channels of a
// pixel with the input loaded tap by tap, ran superres' first conv at 1024 in 0.60 ms.)
#include "backend/cuda/launch.cuh"
#include "backend/cuda/act.cuh"
#include "backend/cuda/conv_tc_nhwc.h"
#include "backend/cuda/elem.cuh"
#include "backend/cuda/mma.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

namespace {

constexpr int kThreads = 128, kMT = DT_CU_SMALLC_CHANNELS, kRowMax = DT_CU_SMALLC_ROW;

template <typename T, int C>
__global__ void __launch_bounds__(kThreads) conv_smallc_nhwc_k(const T *__restrict__ x, const T *__restrict__ w,
                                                               const T *__restrict__ bias, const T *res, T *y,
                                                               const dt_cu_conv g, bool vec)
{
    dt_grid_wait();
    extern __shared__ float4 ws4[];
    float *ws = reinterpret_cast<float *>(ws4);
    const int M = (int)g.m, KH = (int)g.kh, KW = (int)g.kw, kwc = KW * C, K = KH * kwc;
    const int m0 = blockIdx.y * kMT;
    for (int i = threadIdx.x; i < K * kMT; i += kThreads) {
        const int k = i / kMT, j = i - k * kMT;
        ws[i] = m0 + j < M ? ld(w[(int64_t)(m0 + j) * K + k]) : 0.f;   // W [M, KH, KW, C]: row m is k in order
    }
    __syncthreads();
    const int IH = (int)g.ih, IW = (int)g.iw, OW = (int)g.ow, OHW = (int)(g.oh * g.ow);
    const int64_t pixels = g.n * OHW;
    for (int64_t p = (int64_t)blockIdx.x * kThreads + threadIdx.x; p < pixels; p += (int64_t)gridDim.x * kThreads) {
        const int64_t n = p / OHW;
        const int r = (int)(p - n * OHW), oh = r / OW, ow = r - oh * OW;
        const int ih0 = oh * (int)g.sh - (int)g.ph, iw0 = ow * (int)g.sw - (int)g.pw;
        const T *xn = x + n * IH * IW * C;
        float acc[kMT];
#pragma unroll
        for (int q = 0; q < kMT; q++) acc[q] = 0.f;
        for (int kh = 0; kh < KH; kh++) {
            const int ih = ih0 + kh * (int)g.dh;
            if ((unsigned)ih >= (unsigned)IH) continue;
            const T *row = xn + (int64_t)ih * IW * C;
            float xv[kRowMax];
#pragma unroll
            for (int j = 0; j < kRowMax; j++) {
                xv[j] = 0.f;
                if (j < kwc) {
                    const int iw = iw0 + (j / C) * (int)g.dw;
                    if ((unsigned)iw < (unsigned)IW) xv[j] = ld(row[iw * C + j % C]);
                }
            }
            const float *wr = ws + kh * kwc * kMT;
#pragma unroll
            for (int j = 0; j < kRowMax; j++) {
                if (j >= kwc) break;
#pragma unroll
                for (int q = 0; q < kMT; q += 4) {
                    const float4 wv = *reinterpret_cast<const float4 *>(wr + j * kMT + q);
                    acc[q] += xv[j] * wv.x, acc[q + 1] += xv[j] * wv.y;
                    acc[q + 2] += xv[j] * wv.z, acc[q + 3] += xv[j] * wv.w;
                }
            }
        }
        const int64_t o = p * M + m0;
#pragma unroll
        for (int q = 0; q < kMT; q += 8) {
            if (m0 + q >= M) break;
            if (vec && m0 + q + 8 <= M) {   // M % 8 == 0 and 16-byte aligned y, res: one 16-byte store
                float v[8];
#pragma unroll
                for (int j = 0; j < 8; j++) v[j] = acc[q + j] + (bias ? ld(bias[m0 + q + j]) : 0.f);
                if (res) {
                    const uint4 rv = *reinterpret_cast<const uint4 *>(res + o + q);
                    const T *r8 = reinterpret_cast<const T *>(&rv);
#pragma unroll
                    for (int j = 0; j < 8; j++) v[j] += ld(r8[j]);
                }
                uint4 out;
                uint32_t *u = reinterpret_cast<uint32_t *>(&out);
#pragma unroll
                for (int j = 0; j < 4; j++)
                    u[j] = pair_of<T>::pack(act(g.act, v[2 * j], g.p0, g.p1), act(g.act, v[2 * j + 1], g.p0, g.p1));
                *reinterpret_cast<uint4 *>(y + o + q) = out;
            } else {
#pragma unroll
                for (int j = 0; j < 8; j++) {
                    if (m0 + q + j >= M) break;
                    float v = acc[q + j] + (bias ? ld(bias[m0 + q + j]) : 0.f);
                    if (res) v += ld(res[o + q + j]);
                    y[o + q + j] = st<T>(act(g.act, v, g.p0, g.p1));
                }
            }
        }
    }
}

template <typename T, int C>
int launch_c(const void *x, const void *w, const void *bias, const void *res, void *y, const dt_cu_conv *g, void *stream)
{
    const int64_t pixels = g->n * g->oh * g->ow, groups = (g->m + kMT - 1) / kMT;
    const size_t smem = (size_t)(g->kh * g->kw * C) * kMT * sizeof(float);
    int64_t blocks = (pixels + kThreads - 1) / kThreads, most = (int64_t)dt_cuda_sm_count() * 16;
    if (most > 0 && blocks > most) blocks = most;   // grid-stride: the weights are staged once per block
    if (blocks < 1 || groups > 65535) return blocks < 1 ? 0 : (int)cudaErrorInvalidValue;
    const bool vec = g->m % 8 == 0 && ((uintptr_t)y | (uintptr_t)res) % 16 == 0;
    dt_launch(conv_smallc_nhwc_k<T, C>, dim3((unsigned)blocks, (unsigned)groups), kThreads, smem, (cudaStream_t)stream, 
        (const T *)x, (const T *)w, (const T *)bias, (const T *)res, (T *)y, *g, vec);
    return (int)cudaGetLastError();
}

template <typename T>
int launch(const void *x, const void *w, const void *bias, const void *res, void *y, const dt_cu_conv *g, void *stream)
{
    switch (g->c) {
    case 1: return launch_c<T, 1>(x, w, bias, res, y, g, stream);
    case 2: return launch_c<T, 2>(x, w, bias, res, y, g, stream);
    case 3: return launch_c<T, 3>(x, w, bias, res, y, g, stream);
    case 4: return launch_c<T, 4>(x, w, bias, res, y, g, stream);
    case 5: return launch_c<T, 5>(x, w, bias, res, y, g, stream);
    case 6: return launch_c<T, 6>(x, w, bias, res, y, g, stream);
    case 7: return launch_c<T, 7>(x, w, bias, res, y, g, stream);
    default: return (int)cudaErrorInvalidValue;
    }
}

} // namespace

extern "C" int dt_cu_conv_smallc_nhwc(int dtype, const void *x, const void *w, const void *bias, const void *res, void *y,
                                      const dt_cu_conv *g, void *stream)
{
    if (dtype == DUCTILE_FLOAT16) return launch<__half>(x, w, bias, res, y, g, stream);
    if (dtype == DUCTILE_BFLOAT16) return launch<__nv_bfloat16>(x, w, bias, res, y, g, stream);
    return (int)cudaErrorInvalidValue;
}
