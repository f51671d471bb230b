// Channels-last convolution on tensor cores (float16 / bfloat16, sm_80+; the layer side:
// conv_tc_nhwc_choice.c). Written by hand where cuDNN's NHWC kernels leave most of the H200 idle
// on superres' 64-channel 3x3 convs and the fused epilogue saves a pass over the output. An
// implicit GEMM: rows are the output pixels (N * OH * OW), columns the output channels (M), the K
// dim the filter taps times the input channels, walked tap by tap in slices of 32 channels (C % 8
// == 0: each 16-byte copy stays inside one pixel's channels; the last slice of a tap is zero-
// filled past C). X [N, IH, IW, C], W [M, KH, KW, C], Y and R [N, OH, OW, M]. A block computes a
// BM x BN tile: each k-slice of its pixels' input rows (gathered at the tap's offset, zero-filled
// outside the image: the padding) and its channels' weights are copied by cp.async into a STAGES-
// deep ring of shared-memory buffers (rows padded by 16 bytes: the ldmatrix fragment loads hit
// distinct banks), so the next slices' copies overlap this one's products; a warp computes a (16
// MI) x (8 NI) sub-tile with mma.sync m16n8k16 (float32 accumulators). Epilogue in registers:
// bias, residual, activation, one rounding, stored two channels at a time (where M is even). Any
// stride, pads, dilation; one group.
#include "backend/cuda/launch.cuh"
#include "backend/cuda/conv_epi.cuh"
#include "backend/cuda/conv_tc_nhwc.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

namespace {

constexpr int kBK = 32;          // channels per k-slice
constexpr int kLD = kBK + 8;     // a shared row: 32 elements and 16 bytes of padding
constexpr int kStages = 4;

template <typename T, int WM, int WN, int MI, int NI>
struct tc_tile {
    static constexpr int threads = WM * WN * 32, bm = WM * MI * 16, bn = WN * NI * 8;
    static constexpr int a_copies = bm * 4 / threads, b_copies = bn * 4 / threads;   // 16-byte copies per thread
    static constexpr size_t smem = (size_t)kStages * (bm + bn) * kLD * sizeof(T);
    static_assert(a_copies * threads == bm * 4 && b_copies * threads == bn * 4, "copies split evenly");
    static_assert(NI % 2 == 0, "B fragments load in pairs of n8 tiles");
};

template <typename T, int WM, int WN, int MI, int NI>
__global__ void __launch_bounds__(WM *WN * 32) conv_tc_nhwc_k(const T *__restrict__ x, const T *__restrict__ w,
                                                              const T *__restrict__ bias, const T *res, T *y,
                                                              const dt_cu_conv g)
{
    dt_grid_wait();
    using tile = tc_tile<T, WM, WN, MI, NI>;
    constexpr int THREADS = tile::threads, BM = tile::bm, BN = tile::bn, AC = tile::a_copies, BC = tile::b_copies;
    constexpr int ROWS = THREADS / 4;   // rows one pass of the block's copies covers
    extern __shared__ __align__(16) unsigned char smem_raw[];
    T *As = reinterpret_cast<T *>(smem_raw);   // [kStages][BM][kLD]
    T *Bs = As + kStages * BM * kLD;           // [kStages][BN][kLD]

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wm = warp % WM, wn = warp / WM;
    const int C = (int)g.c, IH = (int)g.ih, IW = (int)g.iw, OW = (int)g.ow, OHW = (int)(g.oh * g.ow);
    const int KW = (int)g.kw, M = (int)g.m, DH = (int)g.dh, DW = (int)g.dw;
    const int P = (int)(g.n * OHW);
    const int p0 = blockIdx.x * BM, m0 = blockIdx.y * BN;
    const int col8 = (tid & 3) * 8;   // this thread's 8 channels of a slice

    // This thread's pixels: the offset in x of tap (0, 0) at channel 0 (outside the image where
    // padded: it is only added to, never read, unless the tap lands inside) and its input
    // position; rows past P never land inside the image. A copy then costs the tap's common
    // offset, one add and two compares.
    int64_t a_off[AC];
    int a_ih[AC], a_iw[AC];
#pragma unroll
    for (int i = 0; i < AC; i++) {
        const int p = p0 + (tid >> 2) + i * ROWS;
        a_off[i] = 0;
        a_ih[i] = -(1 << 30);
        a_iw[i] = 0;
        if (p < P) {
            const int n = p / OHW, r = p - n * OHW, oh = r / OW, ow = r - oh * OW;
            a_ih[i] = oh * (int)g.sh - (int)g.ph;
            a_iw[i] = ow * (int)g.sw - (int)g.pw;
            a_off[i] = ((int64_t)n * IH * IW + (int64_t)a_ih[i] * IW + a_iw[i]) * C;
        }
    }
    const int64_t wrow = (int64_t)g.kh * KW * C;   // one output channel's weights
    int64_t b_off[BC];
    bool b_in[BC];
#pragma unroll
    for (int j = 0; j < BC; j++) {
        const int m = m0 + (tid >> 2) + j * ROWS;
        b_in[j] = m < M;
        b_off[j] = b_in[j] ? m * wrow : 0;
    }
    // Shared-space byte addresses: this thread's copy targets, its warp's fragment rows.
    const unsigned sA = (unsigned)__cvta_generic_to_shared(As), sB = (unsigned)__cvta_generic_to_shared(Bs);
    const unsigned cp_a = sA + (unsigned)(((tid >> 2) * kLD + col8) * sizeof(T));
    const unsigned cp_b = sB + (unsigned)(((tid >> 2) * kLD + col8) * sizeof(T));
    const unsigned fr_a = sA + (unsigned)(((wm * MI * 16 + (lane & 15)) * kLD + (lane >> 4) * 8) * sizeof(T));
    const unsigned fr_b =
        sB + (unsigned)(((wn * NI * 8 + (lane >> 4) * 8 + (lane & 7)) * kLD + ((lane >> 3) & 1) * 8) * sizeof(T));
    constexpr unsigned A_STAGE = BM * kLD * sizeof(T), B_STAGE = BN * kLD * sizeof(T), ROW = kLD * sizeof(T);

    const int ncb = (C + kBK - 1) / kBK, KT = (int)(g.kh * KW) * ncb;
    // The next slice to copy: tap (kh, kw), channels cb * 32.
    int ld_kh = 0, ld_kw = 0, ld_cb = 0;
    auto load = [&](int stage) {
        const int c = ld_cb * kBK + col8, tap = ld_kh * KW + ld_kw;
        const bool cin = c < C;
        const int dy = ld_kh * DH, dx = ld_kw * DW;
        const int64_t a_tap = ((int64_t)dy * IW + dx) * C + c, b_tap = (int64_t)tap * C + c;
#pragma unroll
        for (int i = 0; i < AC; i++) {
            const bool ok = cin && (unsigned)(a_ih[i] + dy) < (unsigned)IH && (unsigned)(a_iw[i] + dx) < (unsigned)IW;
            cp_async16_sa(cp_a + stage * A_STAGE + i * ROWS * ROW, ok ? x + (a_off[i] + a_tap) : x, ok);
        }
#pragma unroll
        for (int j = 0; j < BC; j++) {
            const bool ok = cin && b_in[j];
            cp_async16_sa(cp_b + stage * B_STAGE + j * ROWS * ROW, ok ? w + (b_off[j] + b_tap) : w, ok);
        }
        if (++ld_cb == ncb) {
            ld_cb = 0;
            if (++ld_kw == KW) {
                ld_kw = 0;
                ld_kh++;
            }
        }
    };

    float acc[MI][NI][4];
#pragma unroll
    for (int i = 0; i < MI; i++)
#pragma unroll
        for (int j = 0; j < NI; j++)
#pragma unroll
            for (int k = 0; k < 4; k++) acc[i][j][k] = 0.f;

#pragma unroll
    for (int s = 0; s < kStages - 1; s++) {
        if (s < KT) load(s);
        cp_async_commit();
    }
    int st_use = 0, st_load = kStages - 1;   // the stage computed now, the stage copied next
    for (int kt = 0; kt < KT; kt++) {
        cp_async_wait<kStages - 2>();   // slice kt has landed (this thread's copies) ...
        __syncthreads();                // ... everyone's, and slice kt - 1's buffer is free
        if (kt + kStages - 1 < KT) load(st_load);
        cp_async_commit();
        st_load = st_load == kStages - 1 ? 0 : st_load + 1;
        const unsigned fa = fr_a + st_use * A_STAGE, fb = fr_b + st_use * B_STAGE;
        st_use = st_use == kStages - 1 ? 0 : st_use + 1;
#pragma unroll
        for (int kk = 0; kk < kBK; kk += 16) {
            uint32_t a[MI][4], b[NI][2];
#pragma unroll
            for (int i = 0; i < MI; i++) ldmatrix_x4_sa(a[i], fa + (i * 16 * kLD + kk) * sizeof(T));
#pragma unroll
            for (int j = 0; j < NI; j += 2) {
                uint32_t r[4];
                ldmatrix_x4_sa(r, fb + (j * 8 * kLD + kk) * sizeof(T));
                b[j][0] = r[0];
                b[j][1] = r[1];
                b[j + 1][0] = r[2];
                b[j + 1][1] = r[3];
            }
#pragma unroll
            for (int i = 0; i < MI; i++)
#pragma unroll
                for (int j = 0; j < NI; j++) mma16816<T>(acc[i][j], a[i], b[j][0], b[j][1]);
        }
    }
    cp_async_wait<0>();   // nothing in flight at exit (the empty trailing groups)

    // Epilogue: rows g and g + 8 of each m16 tile, channels 2t and 2t + 1 of each n8 tile.
    const int gr = lane >> 2, t2 = (lane & 3) * 2;
    const bool pairs = (M & 1) == 0;   // two channels at one 4-byte aligned address
#pragma unroll
    for (int j = 0; j < NI; j++) {
        const int m = m0 + wn * NI * 8 + j * 8 + t2;
        if (m >= M) continue;
        const bool two = m + 1 < M;
        const float b0 = bias ? ld(bias[m]) : 0.f, b1 = bias && two ? ld(bias[m + 1]) : 0.f;
#pragma unroll
        for (int i = 0; i < MI; i++)
#pragma unroll
            for (int h = 0; h < 2; h++) {
                const int p = p0 + wm * MI * 16 + i * 16 + gr + h * 8;
                if (p >= P) continue;
                const int64_t o = (int64_t)p * M + m;
                conv_store2(y, res, o, acc[i][j][2 * h] + b0, acc[i][j][2 * h + 1] + b1, pairs, two, g.act, g.p0, g.p1);
            }
    }
}

template <typename T, int WM, int WN, int MI, int NI>
int launch(const void *x, const void *w, const void *bias, const void *res, void *y, const dt_cu_conv *g, void *stream)
{
    using tile = tc_tile<T, WM, WN, MI, NI>;
    auto kernel = conv_tc_nhwc_k<T, WM, WN, MI, NI>;
    // Over 48 KiB of dynamic shared memory needs the opt-in, once per kernel (the builder's
    // timing makes the first call, before any graph capture).
    static bool raised = false;
    if (!raised) {
        cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)tile::smem);
        if (e != cudaSuccess) return (int)e;
        raised = true;
    }
    const int64_t P = g->n * g->oh * g->ow;
    dim3 grid((unsigned)((P + tile::bm - 1) / tile::bm), (unsigned)((g->m + tile::bn - 1) / tile::bn));
    dt_launch(kernel, grid, tile::threads, tile::smem, (cudaStream_t)stream, (const T *)x, (const T *)w, (const T *)bias,
                                                                      (const T *)res, (T *)y, *g);
    return (int)cudaGetLastError();
}

template <typename T>
int launch_tile(int tile, const void *x, const void *w, const void *bias, const void *res, void *y, const dt_cu_conv *g,
                void *stream)
{
    switch (tile) {
    case DT_CU_TC_NHWC_256x64: return launch<T, 4, 2, 4, 4>(x, w, bias, res, y, g, stream);
    case DT_CU_TC_NHWC_128x128: return launch<T, 2, 2, 4, 8>(x, w, bias, res, y, g, stream);
    case DT_CU_TC_NHWC_128x64: return launch<T, 2, 2, 4, 4>(x, w, bias, res, y, g, stream);
    case DT_CU_TC_NHWC_64x64: return launch<T, 2, 2, 2, 4>(x, w, bias, res, y, g, stream);
    case DT_CU_TC_NHWC_128x32: return launch<T, 4, 1, 2, 4>(x, w, bias, res, y, g, stream);
    case DT_CU_TC_NHWC_64x32: return launch<T, 2, 1, 2, 4>(x, w, bias, res, y, g, stream);
    }
    return (int)cudaErrorInvalidValue;
}

} // namespace

extern "C" int dt_cu_conv_tc_nhwc(int dtype, const void *x, const void *w, const void *bias, const void *res, void *y,
                                  const dt_cu_conv *g, int tile, void *stream)
{
    // 16-byte copies of x and w, 4-byte pairs of y and res.
    if (((uintptr_t)x | (uintptr_t)w) % 16 || ((uintptr_t)y | (uintptr_t)res) % 4) return (int)cudaErrorMisalignedAddress;
    if (dtype == DUCTILE_FLOAT16) return launch_tile<__half>(tile, x, w, bias, res, y, g, stream);
    if (dtype == DUCTILE_BFLOAT16) return launch_tile<__nv_bfloat16>(tile, x, w, bias, res, y, g, stream);
    return (int)cudaErrorInvalidValue;
}
