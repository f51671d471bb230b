/* SIMD helpers of the CPU kernels. Masked 16-float loads that cost a plain load where every lane is set.
 * On Zen 5 a masked load that misses the caches is slow even with every lane set (no prefetch
 * behind it?): the stems' split of a cold input image ran at a third of the speed
 * (conv_smallc.c), EfficientNet's stride-2 5x5 depthwise layer 1.68 -> 1.02 ms at batch 8
 * (session 32). Kernels that mask only a row's ends load through here. */
#ifndef DT_BACKEND_CPU_SIMD_LOAD_H
#define DT_BACKEND_CPU_SIMD_LOAD_H

#include <immintrin.h>

static inline __attribute__((always_inline, target("avx512f"))) __m512 dt_mload(__mmask16 m, const float *p)
{
    return m == 0xffff ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(m, p);
}

/* Two rows' 16 floats as 16 bfloat16 pairs (round to nearest even), even's value in each
 * 32-bit word's low half: the pair layout of the bfloat16 GEMM's panels (gemm.h).
 * cvtne2ps2bf16(odd, even) puts even's values in words 0-15 and odd's in 16-31; the permute
 * interleaves them. */
static inline __attribute__((always_inline, target("avx512f,avx512bw,avx512bf16"))) __m512i dt_bf16_pairs(__m512 even,
                                                                                                          __m512 odd)
{
    const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6,
                                         21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    return _mm512_permutexvar_epi16(idx, (__m512i)_mm512_cvtne2ps_pbh(odd, even));
}

#endif
