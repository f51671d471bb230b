/* Depthwise convolution (one input and one output channel per group), direct: each plane is
 * copied once into a zero-padded scratch plane so the inner loops have no bounds checks, then
 * 16 outputs of a row are computed per vector. im2col + GEMM would be wasteful here: K is
 * only KH*KW and M is 1. Planes are split over threads. */
#include "backend/cpu/conv.h"
#include "core/alloc.h"
#include "core/checked.h"
#include "core/status.h"

#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

bool dt_cpu_conv_is_depthwise(const dt_conv_geom *g)
{
    return g->group > 1 && g->group == g->c && g->group == g->m;
}

typedef struct dt_dw_job {
    const dt_conv_geom *g;
    const float *x, *w, *bias;
    const dt_epilogue *epi;
    float *y;
    int64_t hp, wp;         /* padded plane, with slack columns for full-vector reads */
    float **scratch;        /* one plane per thread */
    bool avx512;
    /* The 3x3 kernel applies epi's Relu or Clip before it stores (no residual): the plane
     * needs no epilogue pass. */
    bool act_in_store;
} dt_dw_job;

/* The scratch plane is zeroed once per call: every plane of a call has the same geometry, so
 * only the interior changes. */
static void dt_dw_pad_plane(const dt_dw_job *j, const float *src, float *dst)
{
    const dt_conv_geom *g = j->g;
    for (int64_t r = 0; r < g->in[0]; r++)
        memcpy(dst + (r + g->pb[0]) * j->wp + g->pb[1], src + r * g->in[1],
               (size_t)g->in[1] * sizeof *dst);
}

static void dt_dw_plane_ref(const dt_dw_job *j, const float *pad, const float *w, float b,
                            float *y)
{
    const dt_conv_geom *g = j->g;
    for (int64_t oy = 0; oy < g->out[0]; oy++)
        for (int64_t ox = 0; ox < g->out[1]; ox++) {
            float acc = b;
            for (int64_t ky = 0; ky < g->k[0]; ky++) {
                const float *row = pad + (oy * g->s[0] + ky * g->d[0]) * j->wp + ox * g->s[1];
                for (int64_t kx = 0; kx < g->k[1]; kx++)
                    acc += w[ky * g->k[1] + kx] * row[kx * g->d[1]];
            }
            y[oy * g->out[1] + ox] = acc;
        }
}

/* nv (1 or 2) vectors of outputs of row yr starting at column ox; base is the row's first
 * padded input row. */
static inline __attribute__((always_inline, target("avx512f,fma"))) void
dt_dw_run_avx512(const dt_dw_job *j, const float *base, const float *w, float b, float *yr,
                 int64_t ox, const int nv)
{
    const dt_conv_geom *g = j->g;
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    int64_t sx = g->s[1], kh = g->k[0], kw = g->k[1], dy = g->d[0], dx = g->d[1];
    __m512 a0 = _mm512_set1_ps(b), a1 = a0;
    for (int64_t ky = 0; ky < kh; ky++) {
        const float *row = base + ky * dy * j->wp + ox * sx;
        const float *wr = w + ky * kw;
        for (int64_t kx = 0; kx < kw; kx++) {
            __m512 wv = _mm512_set1_ps(wr[kx]);
            const float *p = row + kx * dx;
            if (sx == 1) {
                a0 = _mm512_fmadd_ps(wv, _mm512_loadu_ps(p), a0);
                if (nv == 2) a1 = _mm512_fmadd_ps(wv, _mm512_loadu_ps(p + 16), a1);
            } else {
                a0 = _mm512_fmadd_ps(wv, _mm512_permutex2var_ps(_mm512_loadu_ps(p), even, _mm512_loadu_ps(p + 16)), a0);
                if (nv == 2)
                    a1 = _mm512_fmadd_ps(wv, _mm512_permutex2var_ps(_mm512_loadu_ps(p + 32), even,
                                                                    _mm512_loadu_ps(p + 48)), a1);
            }
        }
    }
    int64_t rem = g->out[1] - ox;
    _mm512_mask_storeu_ps(yr + ox, rem >= 16 ? 0xffff : (__mmask16)((1u << rem) - 1), a0);
    if (nv == 2)
        _mm512_mask_storeu_ps(yr + ox + 16, rem >= 32 ? 0xffff : (__mmask16)((1u << (rem - 16)) - 1), a1);
}

/* One 16-wide tap vector of a padded input row for output column ox: row[ox*s + kx] for 16
 * outputs (stride 2: the even lanes of two loads). */
static inline __attribute__((always_inline, target("avx512f"))) __m512 dt_dw_tap(const float *row, int64_t ox,
                                                                             int kx, const int S)
{
    if (S == 1) return _mm512_loadu_ps(row + ox + kx);
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const float *p = row + 2 * ox + kx;
    return _mm512_permutex2var_ps(_mm512_loadu_ps(p), even, _mm512_loadu_ps(p + 16));
}

/* 3x3, dilation 1, stride S (1 or 2) in both dims: R output rows at once, so each input row
 * is loaded once for every output row that reads it (R + 2 rows for R outputs at stride 1,
 * not 3R), and the nine weights stay in registers. Each output still sums bias, then the
 * taps in (ky, kx) order: the same float operations as dt_dw_run_avx512 and the reference. */
static inline __attribute__((always_inline, target("avx512f,fma"))) void
dt_dw3_rows(const dt_dw_job *j, const float *pad, const __m512 *w9, float b, float *y, int64_t oy, const int S,
            const int R)
{
    const dt_conv_geom *g = j->g;
    int64_t ow = g->out[1];
    for (int64_t ox = 0; ox < ow; ox += 16) {
        __m512 acc[4];
        for (int r = 0; r < R; r++) acc[r] = _mm512_set1_ps(b);
        /* Input rows oy*S .. (oy+R-1)*S + 2; output row r reads rows (oy+r)*S + ky. */
        for (int ir = 0; ir < (R - 1) * S + 3; ir++) {
            const float *row = pad + (oy * S + ir) * j->wp;
            __m512 t0 = dt_dw_tap(row, ox, 0, S), t1 = dt_dw_tap(row, ox, 1, S), t2 = dt_dw_tap(row, ox, 2, S);
            for (int r = 0; r < R; r++) {
                int ky = ir - r * S;
                if (ky < 0 || ky > 2) continue;
                acc[r] = _mm512_fmadd_ps(w9[ky * 3 + 0], t0, acc[r]);
                acc[r] = _mm512_fmadd_ps(w9[ky * 3 + 1], t1, acc[r]);
                acc[r] = _mm512_fmadd_ps(w9[ky * 3 + 2], t2, acc[r]);
            }
        }
        if (j->act_in_store) {
            /* The epilogue's Relu and Clip (epilogue.c) in lanes: max/min return their
             * second operand on NaN and on equal values, which keeps a NaN and a -0 as the
             * scalar forms do. */
            bool clip = j->epi->act == DT_ACT_CLIP;
            __m512 lo = _mm512_set1_ps(clip ? j->epi->p0 : 0.0f), hi = _mm512_set1_ps(j->epi->p1);
            for (int r = 0; r < R; r++) {
                acc[r] = clip ? _mm512_max_ps(lo, acc[r]) : _mm512_max_ps(acc[r], lo);
                if (clip) acc[r] = _mm512_min_ps(hi, acc[r]);
            }
        }
        int64_t rem = ow - ox;
        __mmask16 m = rem >= 16 ? 0xffff : (__mmask16)((1u << rem) - 1);
        for (int r = 0; r < R; r++) _mm512_mask_storeu_ps(y + (oy + r) * ow + ox, m, acc[r]);
    }
}

__attribute__((target("avx512f,fma"))) static void dt_dw3_plane(const dt_dw_job *j, const float *pad,
                                                                const float *w, float b, float *y)
{
    __m512 w9[9];
    for (int i = 0; i < 9; i++) w9[i] = _mm512_set1_ps(w[i]);
    int64_t oh = j->g->out[0], oy = 0;
    /* The last rows as one block of their own count: a 7x7 plane runs 4 + 3, not 4 + 1+1+1. */
    if (j->g->s[0] == 1) {
        for (; oy + 4 <= oh; oy += 4) dt_dw3_rows(j, pad, w9, b, y, oy, 1, 4);
        if (oh - oy == 3) dt_dw3_rows(j, pad, w9, b, y, oy, 1, 3);
        if (oh - oy == 2) dt_dw3_rows(j, pad, w9, b, y, oy, 1, 2);
        if (oh - oy == 1) dt_dw3_rows(j, pad, w9, b, y, oy, 1, 1);
    } else {
        for (; oy + 2 <= oh; oy += 2) dt_dw3_rows(j, pad, w9, b, y, oy, 2, 2);
        if (oy < oh) dt_dw3_rows(j, pad, w9, b, y, oy, 2, 1);
    }
}

/* The 3x3 kernel above: dilation 1 and the same stride (1 or 2) along both dims. */
static bool dt_dw3_applies(const dt_conv_geom *g)
{
    return g->k[0] == 3 && g->k[1] == 3 && g->d[0] == 1 && g->d[1] == 1 && g->s[0] == g->s[1] &&
           (g->s[0] == 1 || g->s[0] == 2);
}

/* Strides 1 and 2 along the row are vectorized (stride 2 by picking the even lanes of two
 * loads), 32 outputs per step; a row's last 16 or fewer run one vector, not two, which halves
 * the work of the 14x14 and 7x7 planes of mobile nets. Other strides use the reference loop. */
__attribute__((target("avx512f,fma"))) static void
dt_dw_plane_avx512(const dt_dw_job *j, const float *pad, const float *w, float b, float *y)
{
    const dt_conv_geom *g = j->g;
    if (dt_dw3_applies(g)) {
        dt_dw3_plane(j, pad, w, b, y);
        return;
    }
    if (g->s[1] > 2) {
        dt_dw_plane_ref(j, pad, w, b, y);
        return;
    }
    int64_t ow = g->out[1];
    for (int64_t oy = 0; oy < g->out[0]; oy++) {
        float *yr = y + oy * ow;
        const float *base = pad + oy * g->s[0] * j->wp;
        for (int64_t ox = 0; ox < ow; ox += 32) {
            if (ow - ox > 16)
                dt_dw_run_avx512(j, base, w, b, yr, ox, 2);
            else
                dt_dw_run_avx512(j, base, w, b, yr, ox, 1);
        }
    }
}

static void dt_dw_part(void *arg, int64_t begin, int64_t end, int tid)
{
    const dt_dw_job *j = arg;
    const dt_conv_geom *g = j->g;
    int64_t in_px = g->in[0] * g->in[1], out_px = g->out[0] * g->out[1];
    int64_t ksz = g->k[0] * g->k[1];
    float *pad = j->scratch[tid];
    for (int64_t p = begin; p < end; p++) {
        int64_t c = p % g->c;
        dt_dw_pad_plane(j, j->x + p * in_px, pad);
        float b = j->bias ? j->bias[c] : 0.0f;
        if (j->avx512)
            dt_dw_plane_avx512(j, pad, j->w + c * ksz, b, j->y + p * out_px);
        else
            dt_dw_plane_ref(j, pad, j->w + c * ksz, b, j->y + p * out_px);
        if (j->epi && !j->act_in_store)
            dt_epilogue_apply(j->epi, j->y + p * out_px,
                              j->epi->res ? j->epi->res + p * out_px : NULL, out_px);
    }
}

/* The padded plane's height and row stride, and its bytes (64-byte multiple). */
static ductile_status dt_dw_plane(const dt_conv_geom *g, int64_t *hp, int64_t *wp, size_t *plane)
{
    *hp = g->in[0] + g->pb[0] + g->pe[0];
    /* A 32-output vector step reads up to 64 strided columns past its first one. */
    *wp = g->in[1] + g->pb[1] + g->pe[1] + 64 + 16;
    if (!dt_mul_size((size_t)*hp, (size_t)*wp, plane) || !dt_mul_size(*plane, sizeof(float), plane) ||
        !dt_add_size(*plane, 63, plane))
        return dt_fail(DUCTILE_ERR_SHAPE, "depthwise conv plane of %lldx%lld is too large",
                       (long long)*hp, (long long)*wp);
    *plane &= ~(size_t)63;
    return DUCTILE_OK;
}

ductile_status dt_cpu_conv_depthwise_scratch(const dt_conv_geom *g, int threads, size_t *bytes)
{
    int64_t hp, wp;
    size_t plane;
    DT_TRY(dt_dw_plane(g, &hp, &wp, &plane));
    if (!dt_mul_size(plane, (size_t)threads, bytes))
        return dt_fail(DUCTILE_ERR_SHAPE, "depthwise conv scratch of %d planes is too large", threads);
    return DUCTILE_OK;
}

ductile_status dt_cpu_conv_depthwise(const dt_conv_geom *g, const dt_conv_args *a, dt_pool *pool)
{
    if (!a->scratch) return dt_cpu_conv_run_algo(g, a, DT_CONV_DEPTHWISE, pool); /* allocates it */
    dt_dw_job j = {g, a->x, a->w, a->bias, a->epi, a->y, 0, 0, NULL, false, false};
    __builtin_cpu_init();
    j.avx512 = __builtin_cpu_supports("avx512f");
    j.act_in_store = j.avx512 && dt_dw3_applies(g) && a->epi && !a->epi->res &&
                     (a->epi->act == DT_ACT_RELU || a->epi->act == DT_ACT_CLIP);
    size_t plane;
    DT_TRY(dt_dw_plane(g, &j.hp, &j.wp, &plane));
    int threads = dt_pool_threads(pool);
    /* Zero once per call: planes of a call share their geometry, so the borders stay zero. */
    memset(a->scratch, 0, plane * (size_t)threads);
    float *bufs[64] = {0};
    for (int t = 0; t < threads; t++) bufs[t] = (float *)((char *)a->scratch + (size_t)t * plane);
    j.scratch = bufs;
    int64_t planes = g->batch * g->c;
    /* Small planes are cheap: keep enough per thread to repay waking it. */
    int64_t grain = (g->out[0] * g->out[1] * g->k[0] * g->k[1] < 4096) ? 16 : 1;
    dt_parallel_for(pool, planes, grain, dt_dw_part, &j);
    return DUCTILE_OK;
}
