// Channels-last convolution on tensor cores with the block's input patch and weights staged
// once (tactic DT_CUDA_CONV_PATCH_MMA; the layer side: conv_tc_nhwc_choice.c). Written for
// superres' last conv (32 -> 9 channels, 3x3, 224x224: conv_tc_nhwc.cu took 14.4 us on the H200
// for 0.26 GFLOP, nine pipelined k-slices each gathered again from L2) and the 64-channel 3x3
// convs before it.
//
// A block of 2 kTH warps computes a kTH x kTW tile of output pixels by BN = 8 NT output channels
// (grid y: the groups of BN). It copies, all at once with cp.async, the input patch the tile
// reads ([PH][PW][C], zeros outside the image; pixels padded to C + 8 elements so the eight
// rows of an ldmatrix hit distinct banks) and the group's weights ([BN][K + 8], K = KH KW C,
// rows past M zero), then walks K tap by tap in k-steps of 16 channels (C % 16 == 0: a step
// never crosses a tap) with every operand in shared memory: a warp takes half an output row
// (one m16 tile of pixels), A fragments by ldmatrix at the tap's offset in the patch, B
// fragments by ldmatrix from the weights, mma.sync m16n8k16 with float32 accumulators. Bias,
// residual and activation in the store, one rounding, two channels at a time where M is even.
// With a folded DepthToSpace (FusedConv depth_to_space = r, M <= 16) the store puts channel n of
// pixel (oh, ow) where the DepthToSpace after the conv would, in the output's type TO (float32
// for superres' network output: the Cast folded in too), and the separate DepthToSpace kernel
// (a launch and a pass over the output) goes.
// The first form (two m16 tiles a warp, divisions in the staging loops) ran superres' last conv
// in 10.7 us on the H200, issue-bound: 2086 instructions a warp at 0.43 a cycle, 12 warps an SM
// (ncu, session 19).
#include "backend/cuda/launch.cuh"
#include "backend/cuda/conv_epi.cuh"
#include "backend/cuda/conv_tc_nhwc.h"
#include "backend/cuda/fastdiv.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

namespace {

constexpr int kTH = DT_CU_PATCH_MMA_TH, kTW = DT_CU_PATCH_MMA_TW, kThreads = 64 * kTH;
static_assert(kTW == 32, "a row is two warps' m16 tiles");

// The staging's divisors, fixed for a launch: chunks of 8 elements a weight row (K / 8) and a
// pixel (C / 8), pixels a patch row.
struct patch_divs {
    dt_fast_div wch, cch, pw;
};

// Where the folded DepthToSpace (blocksize r, mode CRD or DCR) puts channel n of output pixel
// (img, oh, ow): Y [N, M / r^2, OH r, OW r].
struct d2s_map {
    int r;
    bool crd;
    __device__ __forceinline__ int64_t at(int n, int img, int oh, int ow, int M, int OH, int OW) const
    {
        const int rr = r * r, co = M / rr;
        int c, b;
        if (crd) c = n / rr, b = n - c * rr;
        else b = n / co, c = n - b * co;
        const int i = b / r, j = b - i * r;
        return (((int64_t)img * co + c) * OH * r + (int64_t)oh * r + i) * ((int64_t)OW * r) + (int64_t)ow * r + j;
    }
};

template <typename T, int NT, typename TO, bool D2S>
__global__ void __launch_bounds__(kThreads) conv_patch_mma_k(const T *__restrict__ x, const T *__restrict__ w,
                                                             const T *__restrict__ bias, const T *res, TO *y,
                                                             const dt_cu_conv g, int tiles_w, int tiles_h,
                                                             const patch_divs dv, const d2s_map d2s)
{
    dt_grid_wait();
    constexpr int BN = 8 * NT;
    extern __shared__ __align__(16) unsigned char smem[];
    const int C = (int)g.c, M = (int)g.m, KH = (int)g.kh, KW = (int)g.kw, SH = (int)g.sh, SW = (int)g.sw;
    const int DH = (int)g.dh, DW = (int)g.dw, IH = (int)g.ih, IW = (int)g.iw, OH = (int)g.oh, OW = (int)g.ow;
    const int K = KH * KW * C, LDW = K + 8, LDC = C + 8;
    const int PH = (kTH - 1) * SH + (KH - 1) * DH + 1, PW = (kTW - 1) * SW + (KW - 1) * DW + 1;
    T *Ws = reinterpret_cast<T *>(smem);   // [BN][LDW]
    T *Ps = Ws + BN * LDW;                 // [PH * PW][LDC]
    const int per_img = tiles_w * tiles_h;
    const int img = (int)(blockIdx.x / per_img), tile = (int)(blockIdx.x - (unsigned)img * per_img);
    const int th = tile / tiles_w, tw = tile - th * tiles_w;
    const int oh0 = th * kTH, ow0 = tw * kTW, ih0 = oh0 * SH - (int)g.ph, iw0 = ow0 * SW - (int)g.pw;
    const int m0 = blockIdx.y * BN;

    // Every copy is issued before any is waited for: the weights in 16-byte chunks, then the
    // patch (zero-filled outside the image: the padding).
    const int wch = K / 8;
    for (int i = threadIdx.x; i < BN * wch; i += kThreads) {
        const int n = (int)dt_fast_div_q(dv.wch, (uint32_t)i), k8 = i - n * wch;
        const bool ok = m0 + n < M;
        cp_async16(Ws + n * LDW + k8 * 8, ok ? w + (int64_t)(m0 + n) * K + k8 * 8 : w, ok);
    }
    const int cch = C / 8;
    const T *xi = x + (int64_t)img * IH * IW * C;
    for (int i = threadIdx.x; i < PH * PW * cch; i += kThreads) {
        const int pix = (int)dt_fast_div_q(dv.cch, (uint32_t)i), c8 = i - pix * cch;
        const int py = (int)dt_fast_div_q(dv.pw, (uint32_t)pix), px = pix - py * PW;
        const int ih = ih0 + py, iw = iw0 + px;
        const bool ok = (unsigned)ih < (unsigned)IH && (unsigned)iw < (unsigned)IW;
        cp_async16(Ps + pix * LDC + c8 * 8, ok ? xi + ((int64_t)ih * IW + iw) * C + c8 * 8 : x, ok);
    }
    cp_async_commit();
    cp_async_wait<0>();
    __syncthreads();

    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, row = warp >> 1, col0 = (warp & 1) * 16;
    // A: lanes 0-15 give rows 0-15 of the warp's m16 tile at k 0-7, lanes 16-31 the same rows at
    // k 8-15; row r is output column col0 + r of output row `row`. B: lanes 8q..8q+7 give rows
    // (q / 2) * 8 + 0..7 of a pair of n8 tiles at k (q % 2) * 8.
    const unsigned sP = (unsigned)__cvta_generic_to_shared(Ps), sW = (unsigned)__cvta_generic_to_shared(Ws);
    const unsigned fa =
        sP + (unsigned)(((row * SH * PW + (col0 + (lane & 15)) * SW) * LDC + (lane >> 4) * 8) * sizeof(T));
    const unsigned fb = sW + (unsigned)((((lane >> 4) * 8 + (lane & 7)) * LDW + ((lane >> 3) & 1) * 8) * sizeof(T));

    float acc[NT][4];
#pragma unroll
    for (int j = 0; j < NT; j++) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.f;
    for (int kh = 0; kh < KH; kh++)
        for (int kw = 0; kw < KW; kw++) {
            const unsigned a_tap = fa + (unsigned)((kh * DH * PW + kw * DW) * LDC * sizeof(T));
            const unsigned b_tap = fb + (unsigned)((kh * KW + kw) * C * sizeof(T));
            for (int c0 = 0; c0 < C; c0 += 16) {
                uint32_t a[4];
                ldmatrix_x4_sa(a, a_tap + c0 * (unsigned)sizeof(T));
#pragma unroll
                for (int j = 0; j < NT; j += 2) {
                    uint32_t b[4];
                    ldmatrix_x4_sa(b, b_tap + (unsigned)((j * 8 * LDW + c0) * sizeof(T)));
                    mma16816<T>(acc[j], a, b[0], b[1]);
                    mma16816<T>(acc[j + 1], a, b[2], b[3]);
                }
            }
        }

    // Epilogue: rows g and g + 8 of the m16 tile (output columns), channels 2t and 2t + 1 of
    // each n8 tile.
    const int oh = oh0 + row, gq = lane >> 2, t2 = (lane & 3) * 2;
    if (oh >= OH) return;
    const bool pairs = (M & 1) == 0;   // two channels at one 4-byte aligned address
#pragma unroll
    for (int j = 0; j < NT; j++) {
        const int n = m0 + j * 8 + t2;
        if (n >= M) continue;
        const bool two = n + 1 < M;
        const float b0 = bias ? ld(bias[n]) : 0.f, b1 = bias && two ? ld(bias[n + 1]) : 0.f;
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const int ow = ow0 + col0 + gq + h * 8;
            if (ow >= OW) continue;
            const float v0 = acc[j][2 * h] + b0, v1 = acc[j][2 * h + 1] + b1;
            if constexpr (D2S) {   // no residual (ops/fused.h)
                y[d2s.at(n, img, oh, ow, M, OH, OW)] = st<TO>(act(g.act, v0, g.p0, g.p1));
                if (two) y[d2s.at(n + 1, img, oh, ow, M, OH, OW)] = st<TO>(act(g.act, v1, g.p0, g.p1));
            } else {
                const int64_t o = (((int64_t)img * OH + oh) * OW + ow) * M + n;
                conv_store2(y, res, o, v0, v1, pairs, two, g.act, g.p0, g.p1);
            }
        }
    }
}

template <typename T, int NT, typename TO = T, bool D2S = false>
int launch_nt(const void *x, const void *w, const void *bias, const void *res, void *y, const dt_cu_conv *g,
              void *stream, d2s_map d2s = {0, false})
{
    auto kernel = conv_patch_mma_k<T, NT, TO, D2S>;
    // Over 48 KiB of dynamic shared memory needs the opt-in, once per kernel (the builder's
    // timing makes the first call, before any graph capture).
    static bool raised = false;
    if (!raised) {
        cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, DT_CU_PATCH_MMA_SMEM);
        if (e != cudaSuccess) return (int)e;
        raised = true;
    }
    const int tiles_w = (int)((g->ow + kTW - 1) / kTW), tiles_h = (int)((g->oh + kTH - 1) / kTH);
    const int64_t blocks = g->n * tiles_w * tiles_h, groups = (g->m + 8 * NT - 1) / (8 * NT);
    if (blocks <= 0) return 0;
    const int64_t pw = (kTW - 1) * g->sw + (g->kw - 1) * g->dw + 1;
    const patch_divs dv = {dt_fast_div_make((uint32_t)(g->kh * g->kw * g->c / 8)), dt_fast_div_make((uint32_t)(g->c / 8)),
                           dt_fast_div_make((uint32_t)pw)};
    dt_launch(kernel, dim3((unsigned)blocks, (unsigned)groups), kThreads, dt_cu_conv_patch_mma_smem(g),
              (cudaStream_t)stream, (const T *)x, (const T *)w, (const T *)bias, (const T *)res, (TO *)y, *g, tiles_w,
              tiles_h, dv, d2s);
    return (int)cudaGetLastError();
}

template <typename T>
int launch(const void *x, const void *w, const void *bias, const void *res, void *y, const dt_cu_conv *g, void *stream,
           int y_dtype, d2s_map d2s)
{
    if (d2s.r) {   // M <= 16 (dt_cu_conv_patch_mma_d2s_applies): one n8 pair
        if (dt_cu_conv_patch_mma_nt(g->m) != 2 || res) return (int)cudaErrorInvalidValue;
        return y_dtype == DUCTILE_FLOAT32 ? launch_nt<T, 2, float, true>(x, w, bias, res, y, g, stream, d2s)
                                          : launch_nt<T, 2, T, true>(x, w, bias, res, y, g, stream, d2s);
    }
    switch (dt_cu_conv_patch_mma_nt(g->m)) {
    case 2: return launch_nt<T, 2>(x, w, bias, res, y, g, stream);
    case 4: return launch_nt<T, 4>(x, w, bias, res, y, g, stream);
    case 8: return launch_nt<T, 8>(x, w, bias, res, y, g, stream);
    }
    return (int)cudaErrorInvalidValue;
}

} // namespace

extern "C" int dt_cu_conv_patch_mma_nt(int64_t m) { return m <= 16 ? 2 : m <= 32 ? 4 : 8; }

extern "C" size_t dt_cu_conv_patch_mma_smem(const dt_cu_conv *g)
{
    const int64_t ph = (kTH - 1) * g->sh + (g->kh - 1) * g->dh + 1, pw = (kTW - 1) * g->sw + (g->kw - 1) * g->dw + 1;
    const int64_t bn = 8 * dt_cu_conv_patch_mma_nt(g->m), k = g->kh * g->kw * g->c;
    return (size_t)((bn * (k + 8) + ph * pw * (g->c + 8)) * 2);
}

extern "C" int dt_cu_conv_patch_mma(int dtype, const void *x, const void *w, const void *bias, const void *res, void *y,
                                    const dt_cu_conv *g, void *stream)
{
    return dt_cu_conv_patch_mma_d2s(dtype, x, w, bias, res, y, dtype, g, 0, false, stream);
}

extern "C" int dt_cu_conv_patch_mma_d2s(int dtype, const void *x, const void *w, const void *bias, const void *res,
                                        void *y, int y_dtype, const dt_cu_conv *g, int r, bool crd, void *stream)
{
    // 16-byte copies of x and w, 4-byte pairs of y and res.
    if (((uintptr_t)x | (uintptr_t)w) % 16 || ((uintptr_t)y | (uintptr_t)res) % 4) return (int)cudaErrorMisalignedAddress;
    if (y_dtype != dtype && (y_dtype != DUCTILE_FLOAT32 || !r)) return (int)cudaErrorInvalidValue;
    if (r < 0 || (r && g->m % ((int64_t)r * r))) return (int)cudaErrorInvalidValue;
    const d2s_map d2s = {r, crd};
    if (dtype == DUCTILE_FLOAT16) return launch<__half>(x, w, bias, res, y, g, stream, y_dtype, d2s);
    if (dtype == DUCTILE_BFLOAT16) return launch<__nv_bfloat16>(x, w, bias, res, y, g, stream, y_dtype, d2s);
    return (int)cudaErrorInvalidValue;
}
