/* The store of the AVX-512 GEMM micro-kernels (gemm_kernel.c, gemm_bf16.c): one row of
 * float32 accumulators into C, with bias, beta and the epilogue. Shared so that the float32
 * and the bfloat16 kernels store the same way. */
#ifndef DT_CPU_GEMM_ROW_H
#define DT_CPU_GEMM_ROW_H

#include "backend/cpu/epilogue.h"
#include "backend/cpu/gemm.h"
#include "backend/cpu/exp_approx.h"
#include "backend/cpu/simd_load.h"

#include <immintrin.h>
#include <stdbool.h>

/* dt_gelu_approx (exp_approx.h) on 16 lanes, operation for operation: the same multiplies and
 * fused steps in the same order, its selects as compares and masks whose NaN cases match the
 * C (min returns its second operand on NaN), and 2^n as vscalefps (exact: p 2^n is a normal
 * float for n in [-25, 0]), so the kernel's store gives the bits of the Gelu kernel and of the
 * epilogue pass (test_ops_linalg's test_gelu_in_store_matches_pass compares them). */
static inline __attribute__((always_inline)) __attribute__((target("avx512f,fma"))) __m512 dt_gelu_v16(__m512 x)
{
    __m512 z = _mm512_mul_ps(x, _mm512_set1_ps(0.707106781f));
    __m512 a = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(z), _mm512_set1_epi32(0x7fffffff)));
    __m512 b = _mm512_min_ps(a, _mm512_set1_ps(4.0f)); /* a < 4 ? a : 4 */
    static const float qc[DT_GELU_LOG_ERFC_POLY_N] = DT_GELU_LOG_ERFC_POLY;
    static const float ec[DT_GELU_HALF_EXP_POLY_N] = DT_GELU_HALF_EXP_POLY;
#define DT_V16_QC(i) _mm512_set1_ps(DT_GELU_QC(i))
#define DT_V16_EC(i) _mm512_set1_ps(DT_GELU_EC(i))
    DT_GELU_LOG_ERFC_ESTRIN(__m512, b, _mm512_fmadd_ps, _mm512_mul_ps, DT_V16_QC)
    __m512 n = _mm512_sub_ps(_mm512_fmadd_ps(q, _mm512_set1_ps(DT_LOG2E), _mm512_set1_ps(DT_ROUND_MAGIC)),
                             _mm512_set1_ps(DT_ROUND_MAGIC));
    __m512 r = _mm512_fmadd_ps(n, _mm512_set1_ps(-DT_LN2_HI), q);
    r = _mm512_fmadd_ps(n, _mm512_set1_ps(-DT_LN2_LO), r);
    DT_GELU_HALF_EXP_ESTRIN(__m512, r, _mm512_fmadd_ps, _mm512_mul_ps, DT_V16_EC)
#undef DT_V16_QC
#undef DT_V16_EC
    /* h = a < 4 ? p 2^n : 0; Phi = z < 0 ? h : 1 - h (NLT_UQ: true on NaN, as the C's else) */
    __m512 h = _mm512_maskz_scalef_ps(_mm512_cmp_ps_mask(a, _mm512_set1_ps(4.0f), _CMP_LT_OQ), p, n);
    __m512 phi = _mm512_mask_sub_ps(h, _mm512_cmp_ps_mask(z, _mm512_setzero_ps(), _CMP_NLT_UQ), _mm512_set1_ps(1.0f), h);
    return _mm512_mul_ps(x, phi);
}

/* Writes one row of accumulators; the last vector is masked to the tile's width. With epi
 * (dt_gemm_kernel_avx512_epi: the product's last K block), the column bias (epi->col_bias, at
 * the tile's first column), the residual row res and the activation (dt_gemm_epi_in_store)
 * are applied before the store, the same float operations as
 * dt_epilogue_apply over the stored row (max/min return their second operand on NaN and on
 * equal values, which keeps a NaN and a -0 as the scalar forms do). */
static inline __attribute__((always_inline)) __attribute__((target("avx512f,fma"))) void
dt_gemm_row_out(__m512 *acc, int nv, float *c, int n, bool first, float beta, float bias,
                const dt_epilogue *epi, const float *res)
{
#pragma GCC unroll 3
    for (int v = 0; v < nv; v++) {
        int rem = n - v * 16;
        if (rem <= 0) return;
        __mmask16 k = rem >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << rem) - 1);
        __m512 r = acc[v];
        if (first) {
            r = _mm512_add_ps(r, _mm512_set1_ps(bias));
            if (beta != 0.0f)
                r = _mm512_fmadd_ps(_mm512_set1_ps(beta), dt_mload(k, c + v * 16), r);
        } else {
            r = _mm512_add_ps(r, dt_mload(k, c + v * 16));
        }
        if (epi) {
            if (epi->col_bias) r = _mm512_add_ps(r, dt_mload(k, epi->col_bias + v * 16));
            if (res) r = _mm512_add_ps(r, dt_mload(k, res + v * 16));
            if (epi->act == DT_ACT_RELU) {
                r = _mm512_max_ps(_mm512_setzero_ps(), r);   /* NaN kept (the second operand) */
            } else if (epi->act == DT_ACT_CLIP) {
                r = _mm512_max_ps(_mm512_set1_ps(epi->p0), r);
                r = _mm512_min_ps(_mm512_set1_ps(epi->p1), r);
            } else if (epi->act == DT_ACT_HARDSIGMOID || epi->act == DT_ACT_HARDSWISH) {
                /* p0 * x + p1 rounded twice, as the C (no FMA contraction under -std=c11) */
                __m512 h = _mm512_add_ps(_mm512_mul_ps(_mm512_set1_ps(epi->p0), r), _mm512_set1_ps(epi->p1));
                h = _mm512_max_ps(_mm512_setzero_ps(), h);
                h = _mm512_min_ps(_mm512_set1_ps(1.0f), h);
                r = epi->act == DT_ACT_HARDSWISH ? _mm512_mul_ps(r, h) : h;
            } else if (epi->act == DT_ACT_GELU) {
                r = dt_gelu_v16(r);
            } else if (epi->act == DT_ACT_SIGMOID || epi->act == DT_ACT_SILU) {
                __m512 s = dt_sigmoid_v16(r);
                r = epi->act == DT_ACT_SILU ? _mm512_mul_ps(r, s) : s;
            }
        }
        _mm512_mask_storeu_ps(c + v * 16, k, r);
    }
}

/* The store of a whole 8 x (nv*16) tile of the first K block with beta 0: bias (0 without one,
 * as dt_gemm_row_out adds it), the residual, then the activation, in dt_gemm_row_out's operations
 * and order (the same bits), with every test made once for the tile instead of per row and
 * vector (those tests and the epilogue's fields reloaded after each store cost a K = 64 tile
 * 15-20% of its time, data in L1: resnet50's 56x56 1x1s with 64 input channels). HardSwish
 * and HardSigmoid take alpha and beta in lo and hi. */
static inline __attribute__((always_inline)) __attribute__((target("avx512f,fma"))) void
dt_gemm_tile_out(__m512 (*acc)[3], const int nv, float *c, int64_t ldc, const float *bias, const float *res,
                 const dt_act act, float lo, float hi, bool nt)
{
    if (act == DT_ACT_SILU) {
        /* a row's vectors through the sigmoid's steps together (dt_sigmoid_vecs) */
#pragma GCC unroll 8
        for (int i = 0; i < DT_GEMM_MR; i++) {
            __m512 bi = _mm512_set1_ps(bias ? bias[i] : 0.0f), r[3];
#pragma GCC unroll 3
            for (int v = 0; v < nv; v++) {
                r[v] = _mm512_add_ps(acc[i][v], bi);
                if (res) r[v] = _mm512_add_ps(r[v], _mm512_loadu_ps(res + i * ldc + v * 16));
            }
            dt_sigmoid_vecs(r, nv, true);
#pragma GCC unroll 3
            for (int v = 0; v < nv; v++) {
                if (nt)
                    _mm512_stream_ps(c + i * ldc + v * 16, r[v]);
                else
                    _mm512_storeu_ps(c + i * ldc + v * 16, r[v]);
            }
        }
        return;
    }
#pragma GCC unroll 8
    for (int i = 0; i < DT_GEMM_MR; i++) {
        __m512 bi = _mm512_set1_ps(bias ? bias[i] : 0.0f);
#pragma GCC unroll 3
        for (int v = 0; v < nv; v++) {
            __m512 r = _mm512_add_ps(acc[i][v], bi);
            if (res) r = _mm512_add_ps(r, _mm512_loadu_ps(res + i * ldc + v * 16));
            if (act == DT_ACT_RELU) {
                r = _mm512_max_ps(_mm512_setzero_ps(), r);   /* NaN kept (the second operand) */
            } else if (act == DT_ACT_CLIP) {
                r = _mm512_max_ps(_mm512_set1_ps(lo), r);
                r = _mm512_min_ps(_mm512_set1_ps(hi), r);
            } else if (act == DT_ACT_HARDSIGMOID || act == DT_ACT_HARDSWISH) {
                /* lo, hi: alpha, beta; as dt_gemm_row_out (no contraction) */
                __m512 h = _mm512_add_ps(_mm512_mul_ps(_mm512_set1_ps(lo), r), _mm512_set1_ps(hi));
                h = _mm512_max_ps(_mm512_setzero_ps(), h);
                h = _mm512_min_ps(_mm512_set1_ps(1.0f), h);
                r = act == DT_ACT_HARDSWISH ? _mm512_mul_ps(r, h) : h;
            }
            if (nt)
                _mm512_stream_ps(c + i * ldc + v * 16, r);
            else
                _mm512_storeu_ps(c + i * ldc + v * 16, r);
        }
    }
}

/* Whether a tile takes dt_gemm_tile_store: a whole 8-row tile of the first K block with beta 0,
 * no column bias and Relu, Clip, HardSwish, HardSigmoid, Silu or none (every 1x1 and im2col conv of
 * resnet50, mobilenet_v2, efficientnet). */
static inline __attribute__((always_inline)) bool dt_gemm_tile_whole(int mr, int nv, int m, int n, bool first, float beta,
                                                                     const dt_epilogue *epi)
{
    const dt_act act = epi ? epi->act : DT_ACT_NONE;
    return mr == DT_GEMM_MR && m == mr && n == nv * 16 && first && beta == 0.0f && (!epi || !epi->col_bias) &&
           (act == DT_ACT_NONE || act == DT_ACT_RELU || act == DT_ACT_CLIP || act == DT_ACT_HARDSWISH ||
            act == DT_ACT_HARDSIGMOID || act == DT_ACT_SILU);
}

/* Whether a whole tile goes out non-temporally: C past the cache (epi->c_far) and the tile's
 * rows 64-byte aligned. */
static inline __attribute__((always_inline)) bool dt_gemm_tile_nt(bool whole, const dt_epilogue *epi, const float *c,
                                                                  int64_t ldc)
{
    return whole && epi && epi->c_far && !(((uintptr_t)c | (uintptr_t)(ldc * (int64_t)sizeof(float))) & 63);
}

/* The store of a tile dt_gemm_tile_whole admits, the activation and the residual's presence
 * decided once for the tile; nt: non-temporal stores (the caller checked alignment). */
static inline __attribute__((always_inline)) __attribute__((target("avx512f,fma"))) void
dt_gemm_tile_store(__m512 (*acc)[3], const int nv, float *c, int64_t ldc, const float *bias, const dt_epilogue *epi,
                   const float *res, bool nt)
{
    const dt_act act = epi ? epi->act : DT_ACT_NONE;
    const float *r = epi ? res : NULL;
    bool params = act == DT_ACT_CLIP || act == DT_ACT_HARDSWISH || act == DT_ACT_HARDSIGMOID;
    float lo = params ? epi->p0 : 0.0f, hi = params ? epi->p1 : 0.0f;
    if (act == DT_ACT_HARDSWISH)
        r ? dt_gemm_tile_out(acc, nv, c, ldc, bias, r, DT_ACT_HARDSWISH, lo, hi, nt)
          : dt_gemm_tile_out(acc, nv, c, ldc, bias, NULL, DT_ACT_HARDSWISH, lo, hi, nt);
    else if (act == DT_ACT_HARDSIGMOID)
        dt_gemm_tile_out(acc, nv, c, ldc, bias, r, DT_ACT_HARDSIGMOID, lo, hi, nt);
    else if (act == DT_ACT_RELU)
        r ? dt_gemm_tile_out(acc, nv, c, ldc, bias, r, DT_ACT_RELU, 0, 0, nt)
          : dt_gemm_tile_out(acc, nv, c, ldc, bias, NULL, DT_ACT_RELU, 0, 0, nt);
    else if (act == DT_ACT_CLIP)
        r ? dt_gemm_tile_out(acc, nv, c, ldc, bias, r, DT_ACT_CLIP, lo, hi, nt)
          : dt_gemm_tile_out(acc, nv, c, ldc, bias, NULL, DT_ACT_CLIP, lo, hi, nt);
    else if (act == DT_ACT_SILU)
        dt_gemm_tile_out(acc, nv, c, ldc, bias, r, DT_ACT_SILU, 0, 0, nt);
    else
        r ? dt_gemm_tile_out(acc, nv, c, ldc, bias, r, DT_ACT_NONE, 0, 0, nt)
          : dt_gemm_tile_out(acc, nv, c, ldc, bias, NULL, DT_ACT_NONE, 0, 0, nt);
}

#endif
