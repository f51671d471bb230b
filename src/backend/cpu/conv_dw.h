/* What the direct convolutions share (conv_dw.c: depthwise, 16 outputs of a row per vector;
 * conv_dw16.c: depthwise, 16 channels per vector; conv_smallc.c: few input channels): the
 * stride-2 taps of a row and the epilogue applied in lanes before the store, so the two
 * depthwise kernels give the same bits. Internal to the CPU backend. */
#ifndef DT_CPU_CONV_DW_H
#define DT_CPU_CONV_DW_H

#include "backend/cpu/epilogue.h"
#include "backend/cpu/exp_approx.h"
#include "backend/cpu/simd_load.h"
#include "ops/linalg.h"

#include <immintrin.h>
#include <stdbool.h>
#include <stdint.h>

/* The lean Sigmoid and Silu (a half-precision layer's, exp_approx.h) over R vectors, out of line
 * as in the GEMM's stores (gemm_row.h): inlined, their code grew every depthwise row kernel by
 * a third (dt_dw_rows_plane_311 6.2 -> 8.3 KB) and EfficientNet-B0's float32 runs 2-3%. */
static __attribute__((noinline, unused)) __attribute__((target("avx512f,avx512dq,fma"))) void dt_dw_lean(__m512 *acc, int R,
                                                                                            bool silu)
{
    int r = 0;
    for (; r + 4 <= R; r += 4) dt_sigmoid_lean_vecs(acc + r, 4, silu);
    for (; r < R; r++) dt_sigmoid_lean_vecs(acc + r, 1, silu);
}

/* The epilogue in lanes before the store, over R rows of one column block: residual, then
 * Relu, Clip, HardSigmoid, HardSwish, Sigmoid or Silu (lean or not) with dt_epilogue_apply's float operations (as
 * dt_gemm_row_out: max/min return their second operand on NaN and on equal values, which keeps
 * a NaN and a -0 as the scalar forms do; p0 * x + p1 is a multiply then an add). One switch
 * per block, not per row: the rows' code stays straight. */
static inline __attribute__((always_inline, target("avx512f,fma"))) void
dt_dw_epi(__m512 *acc, const int R, dt_act act, __m512 p0, __m512 p1, const float *res, int64_t ld, __mmask16 m)
{
    if (res)
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) acc[r] = _mm512_add_ps(acc[r], dt_mload(m, res + r * ld));
    __m512 zero = _mm512_setzero_ps(), one = _mm512_set1_ps(1.0f);
    switch (act) {
    case DT_ACT_RELU:
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) acc[r] = _mm512_max_ps(zero, acc[r]);   /* NaN kept: vmaxps returns its second operand for one */
        break;
    case DT_ACT_CLIP:
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) acc[r] = _mm512_min_ps(p1, _mm512_max_ps(p0, acc[r]));
        break;
    case DT_ACT_HARDSIGMOID:
    case DT_ACT_HARDSWISH:
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            __m512 h = _mm512_add_ps(_mm512_mul_ps(p0, acc[r]), p1);
            h = _mm512_min_ps(one, _mm512_max_ps(zero, h));
            acc[r] = act == DT_ACT_HARDSWISH ? _mm512_mul_ps(acc[r], h) : h;
        }
        break;
    case DT_ACT_SIGMOID:
    case DT_ACT_SILU:
        /* four rows at a time, each step over the four (dt_sigmoid_vecs) */
#pragma GCC unroll 2
        for (int r = 0; r < R; r += 4) {
            if (R - r >= 4)
                dt_sigmoid_vecs(acc + r, 4, act == DT_ACT_SILU);
            else
#pragma GCC unroll 3
                for (int q = r; q < R; q++) dt_sigmoid_vecs(acc + q, 1, act == DT_ACT_SILU);
        }
        break;
    case DT_ACT_SIGMOID_LEAN:
    case DT_ACT_SILU_LEAN: {
        /* through a copy: acc's own address never leaves the kernel (else it lives in memory) */
        __m512 t[8];
        for (int r0 = 0; r0 < R; r0 += 8) {
            int n = R - r0 < 8 ? R - r0 : 8;
            for (int r = 0; r < n; r++) t[r] = acc[r0 + r];
            dt_dw_lean(t, n, act == DT_ACT_SILU_LEAN);
            for (int r = 0; r < n; r++) acc[r0 + r] = t[r];
        }
        break;
    }
    default:
        break;
    }
}

/* The activations dt_dw_epi computes (and none, for a residual alone). */
static inline bool dt_dw_epi_in_lanes(const dt_epilogue *e)
{
    return e->act == DT_ACT_NONE || e->act == DT_ACT_RELU || e->act == DT_ACT_CLIP ||
           e->act == DT_ACT_HARDSIGMOID || e->act == DT_ACT_HARDSWISH || e->act == DT_ACT_SIGMOID ||
           e->act == DT_ACT_SILU || e->act == DT_ACT_SIGMOID_LEAN || e->act == DT_ACT_SILU_LEAN;
}

/* The lanes j of a 16-float load at column c0 + j of an image row that lie inside it. */
static inline __mmask16 dt_dw_row_mask(int64_t c0, int64_t iw)
{
    int64_t lo = c0 < 0 ? -c0 : 0, hi = iw - c0;
    if (hi > 16) hi = 16;
    if (lo >= hi) return 0;
    return (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1));
}

/* The 16 floats at column c0 of an image row of iw, zeros outside it: a plain load where all
 * 16 lie inside (simd_load.h). */
static inline __attribute__((always_inline, target("avx512f"))) __m512 dt_dw_row_load(const float *row, int64_t c0,
                                                                                      int64_t iw)
{
    return dt_mload(dt_dw_row_mask(c0, iw), row + c0);
}

/* The K stride-2 tap vectors of an input row for 16 outputs, p at the first tap of the first
 * output's window: three loads (p[0..47]) instead of two per tap, the taps picked by permutes:
 * tap 0 the even lanes
 * of the first two loads, tap 1 (dilation 1) the odd ones, and each later tap the one D taps
 * before it moved down a lane, the last lane taken from the third load (tap kx, lane 15 is
 * p[30 + kx*D]); masked (m0..m2: the lanes inside the image row, zeros elsewhere, as a
 * padded row would hold them; all set over a padded plane). Tried before: rows stored split
 * into even and odd columns, so that a tap is one load: no faster, the split's cost moved into
 * the copy. The loads, most of them across two cache lines (rows are not aligned), were what
 * the stride-2 kernels waited on: 3x3 stride 2 ran at a third of stride 1's GFLOP/s for the
 * same outputs. The same values as two loads per tap, so the same bits. */
static inline __attribute__((always_inline, target("avx512f"))) void
dt_dw_taps_s2(const float *p, __m512 *t, const int K, const int D, __mmask16 m0, __mmask16 m1, __mmask16 m2)
{
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    const __m512i down = _mm512_set_epi32(0, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1);
    __m512 v0 = dt_mload(m0, p), v1 = dt_mload(m1, p + 16), v2 = dt_mload(m2, p + 32);
    t[0] = _mm512_permutex2var_ps(v0, even, v1);
    if (D == 1 && K > 1) t[1] = _mm512_permutex2var_ps(v0, odd, v1);
#pragma GCC unroll 5
    for (int kx = D == 1 ? 2 : 1; kx < K; kx++) {
        /* lane 15 from v2: index 16 + (30 + kx*D - 32) */
        __m512i idx = _mm512_mask_set1_epi32(down, (__mmask16)0x8000, 16 + kx * D - 2);
        t[kx] = _mm512_permutex2var_ps(t[D == 1 ? kx - 2 : kx - 1], idx, v2);
    }
#pragma GCC unroll 5
    for (int kx = 0; kx < K; kx++) __asm__("" : "+v"(t[kx]));
}

/* The geometries of the direct depthwise kernels (kernel, stride, dilation in both dims):
 * X(K, S, D) once for each. */
#define DT_DW_GEOMETRIES(X) X(3, 1, 1) X(3, 1, 2) X(3, 2, 1) X(3, 2, 2) X(5, 1, 1) X(5, 1, 2) X(5, 2, 1) X(5, 2, 2)

/* The whole-plane depthwise kernel for CPUs with AVX2 and FMA but no AVX-512 (conv_dw_avx2.c):
 * y (out[0] x out[1]) from the zero-padded plane pad (rows wp floats apart, with the slack
 * columns conv_dw.c gives them), weights w (k[0] x k[1]) and bias b; each output the bias,
 * then an FMA per tap in (ky, kx) order: the bits of conv_dw.c's AVX-512 plane kernel. False
 * (nothing written) where x stride passes 2: the caller's scalar loop. Where
 * cpu_isa.h's dt_cpu_has_avx2_fma holds. */
bool dt_dw_plane_avx2(const dt_conv_geom *g, int64_t wp, const float *pad, const float *w, float b, float *y);

#endif
