/* Masked 16-float loads that cost a plain load where every lane is set.
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

#endif
