/* What the two depthwise kernels share (conv_dw.c: 16 outputs of a row per vector;
 * conv_dw16.c: 16 channels per vector): the epilogue applied in lanes before the store, so
 * both give the same bits. Internal to the CPU backend. */
#ifndef DT_CPU_CONV_DW_H
#define DT_CPU_CONV_DW_H

#include "backend/cpu/epilogue.h"

#include <immintrin.h>
#include <stdbool.h>
#include <stdint.h>

/* The epilogue in lanes before the store, over R rows of one column block: residual, then
 * Relu, Clip, HardSigmoid or HardSwish with dt_epilogue_apply's float operations (as
 * dt_gemm_row_out: max/min return their second operand on NaN and on equal values, which keeps
 * a NaN and a -0 as the scalar forms do; p0 * x + p1 is a multiply then an add). One switch
 * per block, not per row: the rows' code stays straight. */
static inline __attribute__((always_inline, target("avx512f"))) void
dt_dw_epi(__m512 *acc, const int R, dt_act act, __m512 p0, __m512 p1, const float *res, int64_t ld, __mmask16 m)
{
    if (res)
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) acc[r] = _mm512_add_ps(acc[r], _mm512_maskz_loadu_ps(m, res + r * ld));
    __m512 zero = _mm512_setzero_ps(), one = _mm512_set1_ps(1.0f);
    switch (act) {
    case DT_ACT_RELU:
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) acc[r] = _mm512_max_ps(acc[r], zero);
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
            h = _mm512_min_ps(_mm512_max_ps(h, zero), one);
            acc[r] = act == DT_ACT_HARDSWISH ? _mm512_mul_ps(acc[r], h) : h;
        }
        break;
    default:
        break;
    }
}

/* The activations dt_dw_epi computes (and none, for a residual alone). */
static inline bool dt_dw_epi_in_lanes(const dt_epilogue *e)
{
    return e->act == DT_ACT_NONE || e->act == DT_ACT_RELU || e->act == DT_ACT_CLIP ||
           e->act == DT_ACT_HARDSIGMOID || e->act == DT_ACT_HARDSWISH;
}

#endif
