/* Depthwise convolution on CPUs with AVX2 and FMA but no AVX-512: conv_dw.c's whole-plane
 * kernel (dt_dw_plane_avx512) with 8-lane vectors: up to 32 outputs of a row and several rows at
 * once (8-12 independent FMA chains). Without it the plane ran as a scalar loop: 35% of mobilenet_v2's
 * time at batch 1 on a Zen 3 host (session 45). */
#include "backend/cpu/conv_dw.h"

#include <immintrin.h>

#define DT_AVX2 __attribute__((target("avx2,fma")))

/* Lanes t: p[2t] (16 floats read). */
static inline __attribute__((always_inline)) DT_AVX2 __m256 dt_dw_even8(const float *p)
{
    __m256 e = _mm256_shuffle_ps(_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8), _MM_SHUFFLE(2, 0, 2, 0));
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), _MM_SHUFFLE(3, 1, 2, 0)));
}

/* R output rows from oy (rows >= 1 of them exist: the others read the last one's inputs and
 * store nothing) x NV vectors of outputs from column ox: R x NV independent FMA chains, each
 * tap's weight broadcast once for all of them. One row of a 7x7 or 14x14 plane alone is one
 * or two chains, each tap waiting out the FMA latency of the last. */
static inline __attribute__((always_inline)) DT_AVX2 void
dt_dw_run_avx2(const dt_conv_geom *g, int64_t wp, const float *pad, const float *w, float b, float *y, int64_t oy,
               int rows, int64_t ox, const int R, const int NV, const int SX, const int K)
{
    /* SX: the x stride (1 or 2); K: 3 for a 3x3 window (the loops unrolled), 0 any other */
    int64_t sx = SX, kh = K ? K : g->k[0], kw = K ? K : g->k[1], dy = g->d[0], dx = g->d[1], ow = g->out[1];
    const float *base[8];
    __m256 acc[8][4];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
        base[r] = pad + (oy + (r < rows ? r : rows - 1)) * g->s[0] * wp + ox * sx;
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) acc[r][v] = _mm256_set1_ps(b);
    }
#pragma GCC unroll 3
    for (int64_t ky = 0; ky < kh; ky++)
#pragma GCC unroll 3
        for (int64_t kx = 0; kx < kw; kx++) {
            __m256 wv = _mm256_broadcast_ss(w + ky * kw + kx);
            int64_t off = ky * dy * wp + kx * dx;
#pragma GCC unroll 8
            for (int r = 0; r < R; r++) {
                const float *p = base[r] + off;
#pragma GCC unroll 4
                for (int v = 0; v < NV; v++)
                    acc[r][v] = _mm256_fmadd_ps(wv, sx == 1 ? _mm256_loadu_ps(p + v * 8) : dt_dw_even8(p + v * 16),
                                                acc[r][v]);
            }
        }
    int64_t rem = ow - ox;
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
        if (r >= rows) break;
        float *yr = y + (oy + r) * ow + ox;
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) {
            int64_t n = rem - v * 8;
            if (n >= 8) {
                _mm256_storeu_ps(yr + v * 8, acc[r][v]);
            } else {
                __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
                _mm256_maskstore_ps(yr + v * 8, m, acc[r][v]);
            }
        }
    }
}

/* Columns in chunks of up to 32 (NV vectors), rows R at a time with R x NV 8 to 12 chains. */
static inline __attribute__((always_inline)) DT_AVX2 void
dt_dw_plane_avx2_at(const dt_conv_geom *g, int64_t wp, const float *pad, const float *w, float b, float *y,
                    const int SX, const int K)
{
    int64_t oh = g->out[0], ow = g->out[1];
    for (int64_t ox = 0; ox < ow; ox += 32) {
        int64_t left = ow - ox;
        for (int64_t oy = 0; oy < oh;) {
            int rows;
            if (left > 24) {
                rows = oh - oy < 3 ? (int)(oh - oy) : 3;
                dt_dw_run_avx2(g, wp, pad, w, b, y, oy, rows, ox, 3, 4, SX, K);
            } else if (left > 16) {
                rows = oh - oy < 4 ? (int)(oh - oy) : 4;
                dt_dw_run_avx2(g, wp, pad, w, b, y, oy, rows, ox, 4, 3, SX, K);
            } else if (left > 8) {
                rows = oh - oy < 4 ? (int)(oh - oy) : 4;
                dt_dw_run_avx2(g, wp, pad, w, b, y, oy, rows, ox, 4, 2, SX, K);
            } else {
                rows = oh - oy < 8 ? (int)(oh - oy) : 8;
                dt_dw_run_avx2(g, wp, pad, w, b, y, oy, rows, ox, 8, 1, SX, K);
            }
            oy += rows;
        }
    }
}

DT_AVX2 bool dt_dw_plane_avx2(const dt_conv_geom *g, int64_t wp, const float *pad, const float *w, float b, float *y)
{
    if (g->s[1] > 2) return false;
    bool k3 = g->k[0] == 3 && g->k[1] == 3;
    if (g->s[1] == 1 && k3)
        dt_dw_plane_avx2_at(g, wp, pad, w, b, y, 1, 3);
    else if (g->s[1] == 1)
        dt_dw_plane_avx2_at(g, wp, pad, w, b, y, 1, 0);
    else if (k3)
        dt_dw_plane_avx2_at(g, wp, pad, w, b, y, 2, 3);
    else
        dt_dw_plane_avx2_at(g, wp, pad, w, b, y, 2, 0);
    return true;
}
