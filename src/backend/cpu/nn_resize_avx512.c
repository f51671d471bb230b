/* The Resize 2-D kernel's row loops on AVX-512 (nn_resize.h). The library is built for
 * baseline x86-64, where GCC made the scalar loops SSE: seg_lraspp's classifier Resize (128
 * channels, 64x64 -> 128x128) took 0.91 ms of its run at 1024x1024, one scalar gather, lerp
 * and store per value of each input row's lerps. */
#include "backend/cpu/nn_resize.h"

#include <immintrin.h>

#define DT_RS_AVX512 __attribute__((target("avx512f")))

bool dt_resize_avx512_ok(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}

void dt_resize_plan_row(const int64_t *i0, const int64_t *i1, int64_t ow, int32_t *rel, int64_t *base)
{
    int64_t ow16 = 16 * dt_resize_vecs(ow);
    for (int64_t v = 0; v * 16 < ow; v++) {
        int64_t b = v * 16, e = b + 16 < ow ? b + 16 : ow, lo = i0[b], hi = i0[b];
        for (int64_t ox = b; ox < e; ox++) {
            for (int s = 0; s < (i1 ? 2 : 1); s++) {
                int64_t c = s ? i1[ox] : i0[ox];
                lo = c < lo ? c : lo;
                hi = c > hi ? c : hi;
            }
        }
        base[v] = hi - lo < 32 ? lo : -1;
        for (int64_t ox = b; ox < b + 16; ox++) {
            rel[ox] = ox < e && base[v] >= 0 ? (int32_t)(i0[ox] - lo) : 0;
            if (i1) rel[ow16 + ox] = ox < e && base[v] >= 0 ? (int32_t)(i1[ox] - lo) : 0;
        }
    }
}

/* Lanes of a row's 16 values from column `at` that lie inside the row of iw. */
static inline __mmask16 dt_rs_inside(int64_t at, int64_t iw)
{
    int64_t n = iw - at;
    return n >= 16 ? (__mmask16)0xffff : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}

/* Outputs [ox, ox + 16) of the row clipped to ow. */
static inline __mmask16 dt_rs_tail(int64_t ox, int64_t ow)
{
    int64_t n = ow - ox;
    return n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1);
}

DT_RS_AVX512 void dt_resize_hline_avx512(const float *r, int64_t iw, const int64_t *i0, const int64_t *i1,
                                         const float *w, const int32_t *rel, const int64_t *base, int64_t ow,
                                         float *h)
{
    int64_t ow16 = 16 * dt_resize_vecs(ow);
    for (int64_t v = 0, ox = 0; ox < ow; v++, ox += 16) {
        __mmask16 m = dt_rs_tail(ox, ow);
        int64_t b = base[v];
        if (b < 0) {
            for (int64_t k = ox; k < ox + 16 && k < ow; k++) h[k] = r[i0[k]] + (r[i1[k]] - r[i0[k]]) * w[k];
            continue;
        }
        __m512 lo = _mm512_maskz_loadu_ps(dt_rs_inside(b, iw), r + b);
        __m512 hi = _mm512_maskz_loadu_ps(dt_rs_inside(b + 16, iw), r + b + 16);
        __m512 a = _mm512_permutex2var_ps(lo, _mm512_loadu_si512(rel + ox), hi);
        __m512 c = _mm512_permutex2var_ps(lo, _mm512_loadu_si512(rel + ow16 + ox), hi);
        __m512 wv = _mm512_maskz_loadu_ps(m, w + ox);
        _mm512_mask_storeu_ps(h + ox, m, _mm512_add_ps(a, _mm512_mul_ps(_mm512_sub_ps(c, a), wv)));
    }
}

DT_RS_AVX512 void dt_resize_gather_avx512(const float *r, int64_t iw, const int64_t *i0, const int32_t *rel,
                                          const int64_t *base, int64_t ow, float *y)
{
    for (int64_t v = 0, ox = 0; ox < ow; v++, ox += 16) {
        int64_t b = base[v];
        if (b < 0) {
            for (int64_t k = ox; k < ox + 16 && k < ow; k++) y[k] = r[i0[k]];
            continue;
        }
        __m512 lo = _mm512_maskz_loadu_ps(dt_rs_inside(b, iw), r + b);
        __m512 hi = _mm512_maskz_loadu_ps(dt_rs_inside(b + 16, iw), r + b + 16);
        __m512 a = _mm512_permutex2var_ps(lo, _mm512_loadu_si512(rel + ox), hi);
        _mm512_mask_storeu_ps(y + ox, dt_rs_tail(ox, ow), a);
    }
}

DT_RS_AVX512 void dt_resize_vlerp_avx512(const float *top, const float *bot, float wy, int64_t ow, float *y)
{
    __m512 w = _mm512_set1_ps(wy);
    for (int64_t ox = 0; ox < ow; ox += 16) {
        __mmask16 m = dt_rs_tail(ox, ow);
        __m512 t = _mm512_maskz_loadu_ps(m, top + ox), b = _mm512_maskz_loadu_ps(m, bot + ox);
        _mm512_mask_storeu_ps(y + ox, m, _mm512_add_ps(t, _mm512_mul_ps(_mm512_sub_ps(b, t), w)));
    }
}
