/* Depthwise convolution on CPUs with AVX2 and FMA but no AVX-512: conv_dw.c's whole-plane
 * kernel (dt_dw_plane_avx512) with 8-lane vectors, up to 32 outputs of a row at once (four
 * independent FMA chains). Without it the plane ran as a scalar loop: 35% of mobilenet_v2's
 * time at batch 1 on a Zen 3 host (session 45). */
#include "backend/cpu/conv_dw.h"

#include <immintrin.h>

#define DT_AVX2 __attribute__((target("avx2,fma")))

bool dt_dw_avx2_ok(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

/* Lanes t: p[2t] (16 floats read). */
static inline __attribute__((always_inline)) DT_AVX2 __m256 dt_dw_even8(const float *p)
{
    __m256 e = _mm256_shuffle_ps(_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8), _MM_SHUFFLE(2, 0, 2, 0));
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), _MM_SHUFFLE(3, 1, 2, 0)));
}

/* NV vectors of outputs of row yr from column ox; base: the row's first padded input row. */
static inline __attribute__((always_inline)) DT_AVX2 void
dt_dw_run_avx2(const dt_conv_geom *g, int64_t wp, const float *base, const float *w, float b, float *yr, int64_t ox,
               const int NV)
{
    int64_t sx = g->s[1], kh = g->k[0], kw = g->k[1], dy = g->d[0], dx = g->d[1];
    __m256 acc[4];
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) acc[v] = _mm256_set1_ps(b);
    for (int64_t ky = 0; ky < kh; ky++) {
        const float *row = base + ky * dy * wp + ox * sx;
        const float *wr = w + ky * kw;
        for (int64_t kx = 0; kx < kw; kx++) {
            __m256 wv = _mm256_broadcast_ss(wr + kx);
            const float *p = row + kx * dx;
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++)
                acc[v] = _mm256_fmadd_ps(wv, sx == 1 ? _mm256_loadu_ps(p + v * 8) : dt_dw_even8(p + v * 16), acc[v]);
        }
    }
    int64_t rem = g->out[1] - ox;
#pragma GCC unroll 4
    for (int v = 0; v < NV; v++) {
        int64_t r = rem - v * 8;
        if (r >= 8) {
            _mm256_storeu_ps(yr + ox + v * 8, acc[v]);
        } else {
            __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)r), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
            _mm256_maskstore_ps(yr + ox + v * 8, m, acc[v]);
        }
    }
}

DT_AVX2 bool dt_dw_plane_avx2(const dt_conv_geom *g, int64_t wp, const float *pad, const float *w, float b, float *y)
{
    if (g->s[1] > 2) return false;
    int64_t ow = g->out[1];
    for (int64_t oy = 0; oy < g->out[0]; oy++) {
        float *yr = y + oy * ow;
        const float *base = pad + oy * g->s[0] * wp;
        for (int64_t ox = 0; ox < ow; ox += 32) {
            int64_t left = ow - ox;
            if (left > 24)
                dt_dw_run_avx2(g, wp, base, w, b, yr, ox, 4);
            else if (left > 16)
                dt_dw_run_avx2(g, wp, base, w, b, yr, ox, 3);
            else if (left > 8)
                dt_dw_run_avx2(g, wp, base, w, b, yr, ox, 2);
            else
                dt_dw_run_avx2(g, wp, base, w, b, yr, ox, 1);
        }
    }
    return true;
}
