// Channels-last convolution with few input channels on tensor cores (tactic
// DT_CUDA_CONV_SMALLC_MMA): an implicit GEMM whose K = KH * KW * C is at most 64 (superres'
// first conv, 1 -> 64 5x5: K = 25; MobileNet's 3 -> 32 3x3 s2: 27), padded to k-steps of 16.
// conv_smallc_nhwc.cu computes the same on CUDA cores in float32; on the H200 it and cuDNN ran
// superres' first conv at 7 TFLOP/s (cuDNN 22 us at 224x224, 82 us at 512x512, ncu session 16),
// far from the 3-4 us its 6.4 MB output takes to write at 224.
//
// A block of 8 warps computes an 8 x 32 tile of output pixels by 32 output channels (grid y:
// the blocks of 32; 64 with DUCTILE_CUDA_SMALLC_MMA_NT=8, below). It stages the input patch the
// tile reads ([PH][PW][C], zeros outside the image) in shared memory; each k column's patch
// offset (tap and channel) comes from a table, each pixel row's from its position, so an A
// fragment is eight 2-byte shared loads and no im2col buffer (columns past K masked to zero: a
// non-finite input there would turn the zero weights' product into NaN). The weights' B fragments (K x 32) stay in registers for the whole block, float32 accumulators;
// a warp takes two m-tiles of 16 pixels (half a row of the tile each). Bias, residual and
// activation in the store, two channels at a time.
#include "backend/cuda/launch.cuh"
#include "backend/cuda/conv_epi.cuh"
#include "backend/cuda/conv_tc_nhwc.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <stdlib.h>
#include <string.h>

namespace {

constexpr int kWarps = 8, kThreads = 32 * kWarps, kTH = DT_CU_SMALLC_MMA_TH, kTW = DT_CU_SMALLC_MMA_TW;
constexpr int kTiles = kTH * kTW / 16, kTilesPerWarp = kTiles / kWarps;

template <typename T, int KS, int kNT>
__global__ void __launch_bounds__(kThreads) conv_smallc_mma_k(const T *__restrict__ x, const T *__restrict__ w,
                                                              const T *__restrict__ bias, const T *res, T *y,
                                                              const dt_cu_conv g, int tiles_w, int tiles_h, bool pair)
{
    dt_grid_wait();
    extern __shared__ __align__(16) unsigned char smem[];
    const int C = (int)g.c, M = (int)g.m, K = (int)(g.kh * g.kw) * C;
    const int PH = (kTH - 1) * (int)g.sh + ((int)g.kh - 1) * (int)g.dh + 1;
    const int PW = (kTW - 1) * (int)g.sw + ((int)g.kw - 1) * (int)g.dw + 1;
    const int patch = PH * PW * C;
    uint16_t *P = reinterpret_cast<uint16_t *>(smem);                 // [PH][PW][C]
    int *koff = reinterpret_cast<int *>(smem + (patch * 2 + 15) / 16 * 16);   // [KS * 16]
    constexpr int BN = 8 * kNT;                                          // the block's channels
    uint16_t *W = reinterpret_cast<uint16_t *>(koff + KS * 16);         // [BN][KS * 16]
    float *B = reinterpret_cast<float *>(W + BN * KS * 16);             // [BN]
    const int64_t per_img = (int64_t)tiles_w * tiles_h;
    const int64_t img = blockIdx.x / per_img;
    const int tile = (int)(blockIdx.x - img * per_img), th = tile / tiles_w, tw = tile - th * tiles_w;
    const int oh0 = th * kTH, ow0 = tw * kTW;
    const int ih0 = oh0 * (int)g.sh - (int)g.ph, iw0 = ow0 * (int)g.sw - (int)g.pw;
    const int IH = (int)g.ih, IW = (int)g.iw;
    const int m0 = blockIdx.y * 8 * kNT;
    const uint16_t *xi = reinterpret_cast<const uint16_t *>(x) + img * (int64_t)IH * IW * C;   // the bits
    const uint16_t *wb = reinterpret_cast<const uint16_t *>(w);
    // Every global load of the staging is issued before any is waited for: the weights
    // (a fully unrolled loop: 4 * KS a thread) and the patch in rounds of kLoads a thread. Loads
    // behind a branch each, one after another, cost the first version ~40 us a block (a chain
    // of L2 latencies), more than all its arithmetic.
    constexpr int kLoads = 8;
    {
        constexpr int kW = BN * KS * 16 / kThreads;   // weights a thread stages
        static_assert(kW * kThreads == BN * KS * 16, "the block's weights split evenly");
        uint16_t wv[kW];
#pragma unroll
        for (int u = 0; u < kW; u++) {
            const int i = u * kThreads + threadIdx.x, n = i / (KS * 16), k = i - n * (KS * 16);
            wv[u] = m0 + n < M && k < K ? __ldg(wb + (int64_t)(m0 + n) * K + k) : (uint16_t)0;
        }
        const float bz = threadIdx.x < BN && bias && m0 + (int)threadIdx.x < M ? ld(bias[m0 + threadIdx.x]) : 0.f;
        for (int i0 = 0; i0 < patch; i0 += kLoads * kThreads) {
            uint16_t pv[kLoads];
#pragma unroll
            for (int u = 0; u < kLoads; u++) {
                const int i = i0 + u * kThreads + threadIdx.x;
                const int py = i / (PW * C), r = i - py * PW * C, px = r / C, c = r - px * C;
                const int ih = ih0 + py, iw = iw0 + px;
                pv[u] = i < patch && (unsigned)ih < (unsigned)IH && (unsigned)iw < (unsigned)IW
                            ? __ldg(xi + ((int64_t)ih * IW + iw) * C + c) : (uint16_t)0;
            }
#pragma unroll
            for (int u = 0; u < kLoads; u++) {
                const int i = i0 + u * kThreads + threadIdx.x;
                if (i < patch) P[i] = pv[u];
            }
        }
#pragma unroll
        for (int u = 0; u < kW; u++) W[u * kThreads + threadIdx.x] = wv[u];
        if (threadIdx.x < BN) B[threadIdx.x] = bz;
    }
    for (int k = threadIdx.x; k < KS * 16; k += kThreads) {
        if (k < K) {
            const int c = k % C, t = k / C, kh = t / (int)g.kw, kw = t - kh * (int)g.kw;
            koff[k] = (kh * (int)g.dh * PW + kw * (int)g.dw) * C + c;
        } else {
            koff[k] = 0;   // any element in the patch: masked to zero (a NaN there would not be)
        }
    }
    __syncthreads();
    // B fragments of this block's 64 channels (zero past K and M) and the bias pairs.
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, gq = lane / 4, tq = lane % 4;
    uint32_t b[KS][kNT][2];
    float bv[kNT][2];
#pragma unroll
    for (int j = 0; j < kNT; j++) {
#pragma unroll
        for (int ks = 0; ks < KS; ks++)
#pragma unroll
            for (int h = 0; h < 2; h++)
                b[ks][j][h] = *reinterpret_cast<const uint32_t *>(W + (j * 8 + gq) * (KS * 16) + ks * 16 + h * 8 + 2 * tq);
#pragma unroll
        for (int h = 0; h < 2; h++) bv[j][h] = B[j * 8 + 2 * tq + h];
    }
    // This lane's four k columns a k-step: their patch offsets, and a mask zeroing the
    // columns past K (the offsets are relative to a pixel's, so no one slot is zero for all).
    int ko[KS][4];
    uint32_t am[KS][2];
#pragma unroll
    for (int ks = 0; ks < KS; ks++) {
#pragma unroll
        for (int q = 0; q < 4; q++) ko[ks][q] = koff[ks * 16 + (q / 2) * 8 + 2 * tq + (q % 2)];
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const int k = ks * 16 + h * 8 + 2 * tq;
            am[ks][h] = (k < K ? 0xffffu : 0u) | (k + 1 < K ? 0xffff0000u : 0u);
        }
    }
    const int OH = (int)g.oh, OW = (int)g.ow;
#pragma unroll 1
    for (int mt = warp * kTilesPerWarp; mt < (warp + 1) * kTilesPerWarp; mt++) {
        const int r = mt / (kTW / 16), cb = (mt % (kTW / 16)) * 16;
        const int base0 = (r * (int)g.sh * PW + (cb + gq) * (int)g.sw) * C, base1 = base0 + 8 * (int)g.sw * C;
        float acc[kNT][4];
#pragma unroll
        for (int j = 0; j < kNT; j++) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.f;
#pragma unroll
        for (int ks = 0; ks < KS; ks++) {
            uint32_t a[4];
            a[0] = (P[base0 + ko[ks][0]] | (uint32_t)P[base0 + ko[ks][1]] << 16) & am[ks][0];
            a[1] = (P[base1 + ko[ks][0]] | (uint32_t)P[base1 + ko[ks][1]] << 16) & am[ks][0];
            a[2] = (P[base0 + ko[ks][2]] | (uint32_t)P[base0 + ko[ks][3]] << 16) & am[ks][1];
            a[3] = (P[base1 + ko[ks][2]] | (uint32_t)P[base1 + ko[ks][3]] << 16) & am[ks][1];
#pragma unroll
            for (int j = 0; j < kNT; j++) mma16816<T>(acc[j], a, b[ks][j][0], b[ks][j][1]);
        }
        const int oh = oh0 + r;
        if (oh >= OH) continue;
#pragma unroll
        for (int half = 0; half < 2; half++) {
            const int ow = ow0 + cb + gq + 8 * half;
            if (ow >= OW) continue;
            const int64_t o = ((img * OH + oh) * (int64_t)OW + ow) * M;
#pragma unroll
            for (int j = 0; j < kNT; j++) {
                const int n = m0 + j * 8 + 2 * tq;
                if (n >= M) break;
                conv_store2(y, res, o + n, acc[j][2 * half] + bv[j][0], acc[j][2 * half + 1] + bv[j][1], pair, n + 1 < M,
                            g.act, g.p0, g.p1);
            }
        }
    }
}

// Blocks of 32 output channels (NT = 4 n8 tiles): half the registers of 64 (122 a thread
// allowed two blocks an SM, 18% occupancy on superres' first conv, ncu session 19); superres
// FP16 224 / 512 / 1024 0.064 / 0.205 / 0.712 -> 0.060 / 0.198 / 0.675 ms on the H200, mobilenet_v2
// unchanged. DUCTILE_CUDA_SMALLC_MMA_NT=8 (read once) takes blocks of 64 as before.
static int smallc_nt()
{
    static int nt = 0;
    if (!nt) {
        const char *v = getenv("DUCTILE_CUDA_SMALLC_MMA_NT");
        nt = v && !strcmp(v, "8") ? 8 : 4;
    }
    return nt;
}

template <typename T, int KS, int NT>
int launch_ks(const void *x, const void *w, const void *bias, const void *res, void *y, const dt_cu_conv *g, void *stream)
{
    const int tiles_w = (int)((g->ow + kTW - 1) / kTW), tiles_h = (int)((g->oh + kTH - 1) / kTH);
    const int64_t blocks = g->n * tiles_w * tiles_h, groups = (g->m + 8 * NT - 1) / (8 * NT);
    if (blocks <= 0) return 0;
    const bool pair = g->m % 2 == 0 && ((uintptr_t)y | (uintptr_t)res) % 4 == 0;
    const size_t smem = dt_cu_conv_smallc_mma_smem(g);
    dt_launch(conv_smallc_mma_k<T, KS, NT>, dim3((unsigned)blocks, (unsigned)groups), kThreads, smem, (cudaStream_t)stream,
              (const T *)x, (const T *)w, (const T *)bias, (const T *)res, (T *)y, *g, tiles_w, tiles_h, pair);
    return (int)cudaGetLastError();
}

template <typename T, int KS>
int launch_nt(const void *x, const void *w, const void *bias, const void *res, void *y, const dt_cu_conv *g, void *stream)
{
    return smallc_nt() == 4 ? launch_ks<T, KS, 4>(x, w, bias, res, y, g, stream)
                            : launch_ks<T, KS, 8>(x, w, bias, res, y, g, stream);
}

template <typename T>
int launch(const void *x, const void *w, const void *bias, const void *res, void *y, const dt_cu_conv *g, void *stream)
{
    switch ((g->c * g->kh * g->kw + 15) / 16) {
    case 1: return launch_nt<T, 1>(x, w, bias, res, y, g, stream);
    case 2: return launch_nt<T, 2>(x, w, bias, res, y, g, stream);
    case 3: return launch_nt<T, 3>(x, w, bias, res, y, g, stream);
    case 4: return launch_nt<T, 4>(x, w, bias, res, y, g, stream);
    default: return (int)cudaErrorInvalidValue;
    }
}

} // namespace

extern "C" size_t dt_cu_conv_smallc_mma_smem(const dt_cu_conv *g)
{
    const int64_t ph = (kTH - 1) * g->sh + (g->kh - 1) * g->dh + 1, pw = (kTW - 1) * g->sw + (g->kw - 1) * g->dw + 1;
    const int64_t ks = (g->c * g->kh * g->kw + 15) / 16;
    // patch, k table, the block's weights [64][ks * 16] as half bits, its 64 biases as float
    return (size_t)((ph * pw * g->c * 2 + 15) / 16 * 16 + ks * 16 * 4 + 64 * ks * 16 * 2 + 64 * 4);
}

extern "C" int dt_cu_conv_smallc_mma(int dtype, const void *x, const void *w, const void *bias, const void *res, void *y,
                                     const dt_cu_conv *g, void *stream)
{
    if (dtype == DUCTILE_FLOAT16) return launch<__half>(x, w, bias, res, y, g, stream);
    if (dtype == DUCTILE_BFLOAT16) return launch<__nv_bfloat16>(x, w, bias, res, y, g, stream);
    return (int)cudaErrorInvalidValue;
}
