/* The store of the AVX-512 GEMM micro-kernels (gemm_kernel.c, gemm_bf16.c): one row of
 * float32 accumulators into C, with bias, beta and the epilogue. Shared so that the float32
 * and the bfloat16 kernels store the same way. */
#ifndef DT_CPU_GEMM_ROW_H
#define DT_CPU_GEMM_ROW_H

#include "backend/cpu/epilogue.h"

#include <immintrin.h>
#include <stdbool.h>

/* Writes one row of accumulators; the last vector is masked to the tile's width. With epi
 * (dt_gemm_kernel_avx512_epi: the product's last K block), the residual row res and Relu,
 * Clip, HardSigmoid or HardSwish are applied before the store, the same float operations as
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
                r = _mm512_fmadd_ps(_mm512_set1_ps(beta), _mm512_maskz_loadu_ps(k, c + v * 16), r);
        } else {
            r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(k, c + v * 16));
        }
        if (epi) {
            if (res) r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(k, res + v * 16));
            if (epi->act == DT_ACT_RELU) {
                r = _mm512_max_ps(r, _mm512_setzero_ps());
            } else if (epi->act == DT_ACT_CLIP) {
                r = _mm512_max_ps(_mm512_set1_ps(epi->p0), r);
                r = _mm512_min_ps(_mm512_set1_ps(epi->p1), r);
            } else if (epi->act == DT_ACT_HARDSIGMOID || epi->act == DT_ACT_HARDSWISH) {
                /* p0 * x + p1 rounded twice, as the C (no FMA contraction under -std=c11) */
                __m512 h = _mm512_add_ps(_mm512_mul_ps(_mm512_set1_ps(epi->p0), r), _mm512_set1_ps(epi->p1));
                h = _mm512_max_ps(h, _mm512_setzero_ps());
                h = _mm512_min_ps(h, _mm512_set1_ps(1.0f));
                r = epi->act == DT_ACT_HARDSWISH ? _mm512_mul_ps(r, h) : h;
            }
        }
        _mm512_mask_storeu_ps(c + v * 16, k, r);
    }
}

#endif
