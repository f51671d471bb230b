/* Depthwise convolution (one input and one output channel per group), direct: 16 outputs of
 * a row per vector. 3x3 with a left pad of 1 at stride 1 or 2 (mobilenet's) reads each input
 * row in place by whole vectors and makes the taps by lane shifts and permutes
 * (dt_dw_narrow_plane, dt_dw_wide_plane). The row kernels (other 3x3 and 5x5) read planes of
 * 28x28 and more in place, masked loads giving the padding's zeros (dt_dw_in_place); otherwise
 * each plane is copied once into a zero-padded scratch plane so the inner loops have no bounds
 * checks. im2col +
 * GEMM would be wasteful here: K is only KH*KW and M is 1. Planes are split over threads. */
#include "backend/cpu/conv.h"
#include "backend/cpu/conv_dw.h"
#include "backend/cpu/cpu_isa.h"
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
    int64_t x_cs, y_cs;     /* conv.h: x's and y's plane strides of a channel, 0 for NCHW */
    int64_t hp, wp;         /* padded plane, with slack columns for full-vector reads */
    size_t plane_bytes;     /* one thread's plane */
    char *scratch;
    bool avx512;
    bool avx2;              /* no AVX-512: dt_dw_plane_avx2 */
    /* The row kernel applies epi (residual and activation) before it stores: the plane
     * needs no epilogue pass. */
    bool epi_in_store;
    float *pool;            /* conv.h: dt_conv_args.pool, pool_rows */
    int64_t pool_rows;
} dt_dw_job;

/* The scratch plane is zeroed once per call: every plane of a call has the same geometry, so
 * only the interior changes. Rows copied by masked vectors, not memcpy: the padded planes are
 * the small ones (dt_dw_in_place), whose rows of 14 or 7 floats cost a memcpy call each, as
 * much as the row kernel's FMAs on them (14x14: ~210 of ~300 cycles a plane). */
__attribute__((target("avx512f"))) static void dt_dw_pad_plane_avx512(const dt_dw_job *j, const float *src,
                                                                      float *dst)
{
    const dt_conv_geom *g = j->g;
    int64_t iw = g->in[1];
    for (int64_t r = 0; r < g->in[0]; r++) {
        float *d = dst + (r + g->pb[0]) * j->wp + g->pb[1];
        const float *s = src + r * iw;
        for (int64_t c = 0; c < iw; c += 16) {
            __mmask16 m = iw - c >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (iw - c)) - 1);
            _mm512_mask_storeu_ps(d + c, m, _mm512_maskz_loadu_ps(m, s + c));
        }
    }
}

static void dt_dw_pad_plane(const dt_dw_job *j, const float *src, float *dst)
{
    const dt_conv_geom *g = j->g;
    if (j->avx512) {
        dt_dw_pad_plane_avx512(j, src, dst);
        return;
    }
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

/* Where the row kernels read their input: the image rows in place, no padded copy. Input row
 * r (image coordinates) of output row oy's window is row0 + oy*S + ky*D; it lies at
 * x + (r % ring) * iw (a plane: ring = ih; the fused block's strips: a ring of rows), or is
 * outside the image and reads `zero`, a row of zeros at least iw wide. Columns outside the
 * row are masked-off lanes of the loads (dt_dw_row_mask). The copy into a padded plane cost
 * 4-5% of mobilenet_v2 at batch 1 (memcpy, the plane going through the cache twice). */
typedef struct dt_dw_src {
    const float *x, *zero;
    int64_t row0, ring;
} dt_dw_src;

/* KxK (3 or 5), stride S and dilation D (1 or 2) in both dims: R output rows at once, so each
 * input row is loaded once for all the output rows that read it ((R-1)*S + (K-1)*D + 1 rows
 * for R outputs, not R*K) and R independent FMA chains hide the FMA latency. 3x3 keeps its 9
 * weight vectors in registers; 5x5's 25 do not fit beside the taps and are read from the
 * stack (tried: 4-byte broadcast operands instead, no faster). Each output still sums
 * bias, then the taps in (ky, kx) order: the same float operations as dt_dw_run_avx512. The
 * loops have constant bounds and unroll: the tests on (i, r) below are resolved at compile
 * time, no branch runs per pixel. */
static inline __attribute__((always_inline, target("avx512f,fma"))) void
dt_dw_rows(const dt_dw_job *j, const dt_dw_src *src, const __m512 *wv, float b, float *y, const float *res,
           int64_t oy, const int K, const int S, const int D, const int R, const bool P)
{
    int64_t ow = j->g->out[1], ih = j->g->in[0], iw = j->g->in[1], pl = j->g->pb[1], wp = j->wp;
    /* Locals, so the loop keeps them in registers (stores to y may alias *j and *src for all
     * the compiler knows). */
    const float *const sx = src->x;
    const bool in_store = j->epi_in_store;
    const dt_act act = in_store ? j->epi->act : DT_ACT_NONE;
    const __m512 p0 = _mm512_set1_ps(in_store ? j->epi->p0 : 0.0f), p1 = _mm512_set1_ps(in_store ? j->epi->p1 : 0.0f);
    const int NI = (R - 1) * S + (K - 1) * D + 1;
    /* The input rows of this block of output rows, read in place; rows outside the image
     * read the zero row. */
    const float *rows[(4 - 1) * 2 + (5 - 1) * 2 + 1];
    if (P) {
#pragma GCC unroll 16
        for (int i = 0; i < NI; i++) {
            int64_t r = src->row0 + oy * S + i;
            rows[i] = r < 0 || r >= ih ? src->zero : sx + (r < src->ring ? r : r % src->ring) * iw;
        }
    }
    for (int64_t ox = 0; ox < ow; ox += 16) {
        /* Column c0 of lane 0 of each load (relative to the image row), and the lanes
         * inside the row: the padded plane's zeros are the masked-off lanes. */
        __mmask16 mk[5] = {0xffff, 0xffff, 0xffff, 0xffff, 0xffff};
        if (P && S == 2) {
#pragma GCC unroll 3
            for (int v = 0; v < 3; v++) mk[v] = dt_dw_row_mask(2 * ox - pl + 16 * v, iw);
        } else if (P) {
#pragma GCC unroll 5
            for (int kx = 0; kx < K; kx++) mk[kx] = dt_dw_row_mask(ox + kx * D - pl, iw);
        }
        __m512 acc[4];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) acc[r] = _mm512_set1_ps(b);
#pragma GCC unroll 16
        for (int i = 0; i < NI; i++) {
            bool used = false;
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) {
                int d = i - r * S;
                used |= d >= 0 && d % D == 0 && d / D < K;
            }
            if (!used) continue; /* stride 2 with dilation 2: odd rows feed no output */
            /* the padded plane: its row 0 is output row 0's first input row, column 0 the
             * padding's first */
            const float *row = P ? rows[i] - pl : sx + (oy * S + i) * wp;
            __m512 t[5];
            if (S == 2) {
                dt_dw_taps_s2(row + 2 * ox, t, K, D, mk[0], mk[1], mk[2]);
            } else {
#pragma GCC unroll 5
                for (int kx = 0; kx < K; kx++) {
                    t[kx] = P ? dt_mload(mk[kx], row + ox + kx * D) : _mm512_loadu_ps(row + ox + kx * D);
                    /* Keep the tap in a register: GCC otherwise folds the load into each of
                     * the up to R FMAs that use it, and R unaligned loads per tap made the 3x3
                     * 30% slower than loading once. */
                    __asm__("" : "+v"(t[kx]));
                }
            }
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) {
                int d = i - r * S;
                if (d < 0 || d % D != 0 || d / D >= K) continue;
#pragma GCC unroll 5
                for (int kx = 0; kx < K; kx++) acc[r] = _mm512_fmadd_ps(wv[(d / D) * K + kx], t[kx], acc[r]);
            }
        }
        int64_t rem = ow - ox;
        __mmask16 m = rem >= 16 ? 0xffff : (__mmask16)((1u << rem) - 1);
        float *yb = y + oy * ow + ox;
        if (in_store) dt_dw_epi(acc, R, act, p0, p1, res ? res + oy * ow + ox : NULL, ow, m);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) _mm512_mask_storeu_ps(yb + r * ow, m, acc[r]);
    }
}

/* One plane with the row kernel: blocks of 4 output rows, the last rows as one block of their
 * own count (a 7x7 plane runs 4 + 3, not 4 + 1+1+1). */
#define DT_DW_ROWS_PLANE_P(K, S, D, P, NAME)                                                                   \
    __attribute__((target("avx512f,fma"))) static void NAME(const dt_dw_job *j, const dt_dw_src *src,          \
                                                            const float *w, float b, float *y, const float *res) \
    {                                                                                                          \
        __m512 wv[K * K];                                                                                      \
        for (int i = 0; i < K * K; i++) wv[i] = _mm512_set1_ps(w[i]);                                          \
        int64_t oh = j->g->out[0], oy = 0;                                                                     \
        for (; oy + 4 <= oh; oy += 4) dt_dw_rows(j, src, wv, b, y, res, oy, K, S, D, 4, P);                    \
        if (oh - oy == 3) dt_dw_rows(j, src, wv, b, y, res, oy, K, S, D, 3, P);                                \
        if (oh - oy == 2) dt_dw_rows(j, src, wv, b, y, res, oy, K, S, D, 2, P);                                \
        if (oh - oy == 1) dt_dw_rows(j, src, wv, b, y, res, oy, K, S, D, 1, P);                                \
    }
/* Each geometry twice: over a padded plane (src->x only: the plane, whose row 0 is output row
 * 0's first input row) and in place (all of dt_dw_src). */
#define DT_DW_ROWS_PLANE(K, S, D)                                                                              \
    DT_DW_ROWS_PLANE_P(K, S, D, false, dt_dw_rows_plane_##K##S##D)                                             \
    DT_DW_ROWS_PLANE_P(K, S, D, true, dt_dw_rows_place_##K##S##D)
DT_DW_GEOMETRIES(DT_DW_ROWS_PLANE)

typedef void (*dt_dw_rows_plane_fn)(const dt_dw_job *, const dt_dw_src *, const float *, float, float *,
                                    const float *);

/* The row kernel for g, or NULL: square 3x3 or 5x5, the same stride (1 or 2) and dilation
 * (1 or 2) along both dims. */
static dt_dw_rows_plane_fn dt_dw_rows_select(const dt_conv_geom *g, bool in_place)
{
    if (g->k[0] != g->k[1] || g->s[0] != g->s[1] || g->d[0] != g->d[1]) return NULL;
    int k = (int)g->k[0], s = (int)g->s[0], d = (int)g->d[0];
    if ((k != 3 && k != 5) || s < 1 || s > 2 || d < 1 || d > 2) return NULL;
    static const dt_dw_rows_plane_fn fns[2][2][2][2] = {
        {{{dt_dw_rows_plane_311, dt_dw_rows_plane_312}, {dt_dw_rows_plane_321, dt_dw_rows_plane_322}},
         {{dt_dw_rows_plane_511, dt_dw_rows_plane_512}, {dt_dw_rows_plane_521, dt_dw_rows_plane_522}}},
        {{{dt_dw_rows_place_311, dt_dw_rows_place_312}, {dt_dw_rows_place_321, dt_dw_rows_place_322}},
         {{dt_dw_rows_place_511, dt_dw_rows_place_512}, {dt_dw_rows_place_521, dt_dw_rows_place_522}}}};
    return fns[in_place][k == 5][s - 1][d - 1];
}

/* Whether the row kernels read the image in place rather than a padded copy. Measured
 * (bench_conv_layers, 1 thread, best of 3 interleaved): in place, mobilenet's 3x3 planes of
 * 28x28 and more ran 5-35% faster (112x112 stride 2: 0.25 -> 0.16 ms) and seg_lraspp's 5x5
 * stride 2 at 195x195 22%; but 14x14 and 7x7 planes 5-12% slower, and 5x5 stride 1 6-9%
 * (the masks and row pointers, once per block, cost more than the copy of a small plane). */
static bool dt_dw_in_place(const dt_conv_geom *g)
{
    return g->in[0] * g->in[1] >= 28 * 28 && (g->k[1] == 3 || g->s[1] == 2);
}

/* Other geometries: strides 1 and 2 along the row are vectorized (stride 2 by picking the
 * even lanes of two loads), 32 outputs per step; a row's last 16 or fewer run one vector, not
 * two. Other strides use the reference loop. */
__attribute__((target("avx512f,fma"))) static void
dt_dw_plane_avx512(const dt_dw_job *j, const float *pad, const float *w, float b, float *y)
{
    const dt_conv_geom *g = j->g;
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

/* 3x3 stride 1, dilation 1, one column of padding each side, rows of at most 32 (mobilenet_v2's
 * 28x28, 14x14 and 7x7 planes): each input row is one or two masked loads read in place (lane
 * x = column x, zeros past the row), its three taps the loads themselves and lane shifts of
 * them against each other or a zero vector (the padding columns). A small plane's padded copy
 * (rows stored, then read back at offsets 0-2 across the stores) and the in-place kernel's
 * three masked loads per tap row cost more than the FMAs. R output rows at once, as
 * dt_dw_rows. Rows outside the image are zero taps, so each output is still the bias, then
 * fmaf over the padded taps in (ky, kx) order, then dt_dw_epi: the row kernels' bits. */
static bool dt_dw_narrow_applies(const dt_conv_geom *g)
{
    return g->k[0] == 3 && g->k[1] == 3 && g->s[0] == 1 && g->s[1] == 1 && g->d[0] == 1 && g->d[1] == 1 &&
           g->pb[1] == 1 && g->pe[1] == 1;
}

/* Input row i of a block of R output rows of stride S into their accumulators: its three
 * taps t at a vector of outputs. */
static inline __attribute__((always_inline, target("avx512f,fma"))) void
dt_dw_narrow_fma(__m512 *acc, const __m512 *wv, const __m512 *t, const int i, const int R, const int S)
{
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
        int ky = i - r * S;
        if (ky < 0 || ky > 2) continue;
#pragma GCC unroll 3
        for (int kx = 0; kx < 3; kx++) acc[r] = _mm512_fmadd_ps(wv[ky * 3 + kx], t[kx], acc[r]);
    }
}

/* Output rows oy..oy+R-1, NV vectors of 16 columns each. */
static inline __attribute__((always_inline, target("avx512f,fma"))) void
dt_dw_narrow_rows(const dt_dw_job *j, const float *x, const __m512 *wv, float b, float *y, const float *res,
                  int64_t oy, const int R, const int NV)
{
    int64_t ih = j->g->in[0], iw = j->g->in[1], ow = j->g->out[1];
    const __mmask16 mlast = (__mmask16)((1u << (iw - 16 * (NV - 1))) - 1);
    const bool in_store = j->epi_in_store;
    const dt_act act = in_store ? j->epi->act : DT_ACT_NONE;
    const __m512 p0 = _mm512_set1_ps(in_store ? j->epi->p0 : 0.0f), p1 = _mm512_set1_ps(in_store ? j->epi->p1 : 0.0f);
    const __m512i zero = _mm512_setzero_si512();
    __m512 acc[2][4];
#pragma GCC unroll 2
    for (int v = 0; v < NV; v++)
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) acc[v][r] = _mm512_set1_ps(b);
#pragma GCC unroll 6
    for (int i = 0; i < R + 2; i++) {
        int64_t iy = oy + i - j->g->pb[0];
        bool in = iy >= 0 && iy < ih;
        __m512i l[2];
        l[0] = !in ? zero : _mm512_castps_si512(dt_mload(NV == 1 ? mlast : 0xffff, x + iy * iw));
        if (NV == 2) l[1] = !in ? zero : _mm512_castps_si512(dt_mload(mlast, x + iy * iw + 16));
#pragma GCC unroll 2
        for (int v = 0; v < NV; v++) {
            /* lane x: column x - 1 (the previous vector's last lane, or the left padding),
             * column x, column x + 1 (the next vector's first lane, or zeros past the row) */
            __m512 t[3] = {_mm512_castsi512_ps(_mm512_alignr_epi32(l[v], v > 0 ? l[v - 1] : zero, 15)),
                           _mm512_castsi512_ps(l[v]),
                           _mm512_castsi512_ps(_mm512_alignr_epi32(v + 1 < NV ? l[v + 1] : zero, l[v], 1))};
            dt_dw_narrow_fma(acc[v], wv, t, i, R, 1);
        }
    }
#pragma GCC unroll 2
    for (int v = 0; v < NV; v++) {
        __mmask16 m = v + 1 < NV ? (__mmask16)0xffff : mlast;
        if (in_store) dt_dw_epi(acc[v], R, act, p0, p1, res ? res + oy * ow + 16 * v : NULL, ow, m);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) _mm512_mask_storeu_ps(y + (oy + r) * ow + 16 * v, m, acc[v][r]);
    }
}

/* dt_dw_wide_plane's geometries: 3x3, dilation 1, a left pad of 1, stride 1 with a right pad
 * of 1 or stride 2 with one of at most 1 (the right pad's columns read as zeros past the row;
 * the column left of a vector of outputs, broadcast, then always lies in the row). */
static bool dt_dw_wide_applies(const dt_conv_geom *g)
{
    return g->k[0] == 3 && g->k[1] == 3 && g->s[0] == g->s[1] && g->d[0] == 1 && g->d[1] == 1 && g->pb[1] == 1 &&
           ((g->s[1] == 1 && g->pe[1] == 1) || (g->s[1] == 2 && g->pe[1] <= 1));
}

/* Output rows oy..oy+R-1 of stride S, 16 outputs at a time, each input row's vectors carried
 * from one vector of outputs to the next. Stride 1: one load of the next 16 columns, the taps
 * lane shifts of it and the two before (the columns past the row, and before it, zeros).
 * Stride 2 (dt_dw_taps_s2's three loads and permutes a tap row before): two loads of 32
 * columns split into even and odd columns (taps 1 and 2), tap 0 the odd ones a lane up with
 * the previous vector's last odd column. Carried, not broadcast from memory: the broadcasts
 * were 2 of stride 1's 3 loads a row (Zen 4: 2.4 -> zmm FMA/ns, bench/results). Input row r
 * (image coordinates) of output row oy is src->row0 + oy * S + ky, read as dt_dw_rows reads it
 * (in place, or a ring of rows: the fused block's strips). */
static inline __attribute__((always_inline, target("avx512f,fma"))) void
dt_dw_wide_rows(const dt_dw_job *j, const dt_dw_src *src, const __m512 *wv, float b, float *y, const float *res,
                int64_t oy, const int R, const int S)
{
    int64_t ih = j->g->in[0], iw = j->g->in[1], ow = j->g->out[1];
    const bool in_store = j->epi_in_store;
    const dt_act act = in_store ? j->epi->act : DT_ACT_NONE;
    const __m512 p0 = _mm512_set1_ps(in_store ? j->epi->p0 : 0.0f), p1 = _mm512_set1_ps(in_store ? j->epi->p1 : 0.0f);
    const __m512i zero = _mm512_setzero_si512();
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    enum { NI = (4 - 1) * 2 + 3 };
    /* the block's input rows, NULL outside the image; per row, stride 1: the vector at the
     * outputs' columns and the one before; stride 2: the odd columns of the vector before */
    const float *rows[NI];
    __m512i cur[NI], prev[NI];
#pragma GCC unroll 9
    for (int i = 0; i < (R - 1) * S + 3; i++) {
        int64_t r = src->row0 + oy * S + i;
        rows[i] = r < 0 || r >= ih ? NULL : src->x + (r < src->ring ? r : r % src->ring) * iw;
        prev[i] = zero;
        cur[i] = S == 1 && rows[i] ? _mm512_castps_si512(_mm512_maskz_loadu_ps(dt_dw_row_mask(0, iw), rows[i])) : zero;
    }
    for (int64_t ox = 0; ox < ow; ox += 16) {
        int64_t c0 = ox * S;
        __mmask16 mo = ow - ox >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (ow - ox)) - 1);
        __mmask16 m0 = dt_dw_row_mask(c0, iw), m1 = dt_dw_row_mask(c0 + 16, iw);
        __m512 acc[4];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) acc[r] = _mm512_set1_ps(b);
#pragma GCC unroll 9
        for (int i = 0; i < (R - 1) * S + 3; i++) {
            const float *row = rows[i];
            __m512 t[3];
            if (S == 1) {
                /* lane x: column c0 + x - 1, c0 + x, c0 + x + 1 */
                __m512i l = cur[i], ln = row ? _mm512_castps_si512(dt_mload(m1, row + c0 + 16)) : zero;
                t[0] = _mm512_castsi512_ps(_mm512_alignr_epi32(l, prev[i], 15));
                t[1] = _mm512_castsi512_ps(l);
                t[2] = _mm512_castsi512_ps(_mm512_alignr_epi32(ln, l, 1));
                prev[i] = l;
                cur[i] = ln;
            } else {
                /* lane x: column c0 + 2x - 1, c0 + 2x, c0 + 2x + 1 */
                __m512i l = zero, ln = zero;
                if (row) {
                    l = _mm512_castps_si512(dt_mload(m0, row + c0));
                    ln = _mm512_castps_si512(dt_mload(m1, row + c0 + 16));
                }
                __m512i o = _mm512_permutex2var_epi32(l, odd, ln);
                t[1] = _mm512_castsi512_ps(_mm512_permutex2var_epi32(l, even, ln));
                t[2] = _mm512_castsi512_ps(o);
                t[0] = _mm512_castsi512_ps(_mm512_alignr_epi32(o, prev[i], 15));
                prev[i] = o;
            }
            dt_dw_narrow_fma(acc, wv, t, i, R, S);
        }
        int64_t off = oy * ow + ox;
        if (in_store) dt_dw_epi(acc, R, act, p0, p1, res ? res + off : NULL, ow, mo);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) _mm512_mask_storeu_ps(y + off + r * ow, mo, acc[r]);
    }
}

#define DT_DW_WIDE_PLANE(S)                                                                                    \
    __attribute__((target("avx512f,fma"))) static void dt_dw_wide_plane_##S(                                  \
        const dt_dw_job *j, const dt_dw_src *src, const __m512 *wv, float b, float *y, const float *res)        \
    {                                                                                                          \
        int64_t oh = j->g->out[0], oy = 0;                                                                     \
        for (; oy + 4 <= oh; oy += 4) dt_dw_wide_rows(j, src, wv, b, y, res, oy, 4, S);                        \
        if (oh - oy == 3) dt_dw_wide_rows(j, src, wv, b, y, res, oy, 3, S);                                    \
        if (oh - oy == 2) dt_dw_wide_rows(j, src, wv, b, y, res, oy, 2, S);                                    \
        if (oh - oy == 1) dt_dw_wide_rows(j, src, wv, b, y, res, oy, 1, S);                                    \
    }
DT_DW_WIDE_PLANE(1)
DT_DW_WIDE_PLANE(2)

__attribute__((target("avx512f,fma"))) static void dt_dw_wide_plane(const dt_dw_job *j, const dt_dw_src *src,
                                                                    const float *w, float b, float *y,
                                                                    const float *res)
{
    __m512 wv[9];
    for (int i = 0; i < 9; i++) wv[i] = _mm512_set1_ps(w[i]);
    if (j->g->s[1] == 1)
        dt_dw_wide_plane_1(j, src, wv, b, y, res);
    else
        dt_dw_wide_plane_2(j, src, wv, b, y, res);
}

/* One plane, R = 4 rows at a time, the last rows as one block of their count. */
#define DT_DW_NARROW_PLANE(NV)                                                                                 \
    __attribute__((target("avx512f,fma"))) static void dt_dw_narrow_plane_##NV(                               \
        const dt_dw_job *j, const float *x, const __m512 *wv, float b, float *y, const float *res)              \
    {                                                                                                          \
        int64_t oh = j->g->out[0], oy = 0;                                                                     \
        for (; oy + 4 <= oh; oy += 4) dt_dw_narrow_rows(j, x, wv, b, y, res, oy, 4, NV);                       \
        if (oh - oy == 3) dt_dw_narrow_rows(j, x, wv, b, y, res, oy, 3, NV);                                   \
        if (oh - oy == 2) dt_dw_narrow_rows(j, x, wv, b, y, res, oy, 2, NV);                                   \
        if (oh - oy == 1) dt_dw_narrow_rows(j, x, wv, b, y, res, oy, 1, NV);                                   \
    }
DT_DW_NARROW_PLANE(1)
DT_DW_NARROW_PLANE(2)

__attribute__((target("avx512f,fma"))) static void dt_dw_narrow_plane(const dt_dw_job *j, const float *x,
                                                                      const float *w, float b, float *y,
                                                                      const float *res)
{
    __m512 wv[9];
    for (int i = 0; i < 9; i++) wv[i] = _mm512_set1_ps(w[i]);
    if (j->g->in[1] <= 16)
        dt_dw_narrow_plane_1(j, x, wv, b, y, res);
    else
        dt_dw_narrow_plane_2(j, x, wv, b, y, res);
}

bool dt_cpu_dw_pairs_applies(const dt_conv_geom *g)
{
    return dt_cpu_conv_is_depthwise(g) && g->spatial == 2 && g->k[0] == 3 && g->k[1] == 3 && g->s[0] == 2 &&
           g->s[1] == 2 && g->d[0] == 1 && g->d[1] == 1 && g->out[1] >= 1 && g->out[1] <= 7;
}

/* 3x3 stride 2 with output rows of at most 7 (mobilenet_v2's 14x14 -> 7x7), one plane read in
 * place: output rows q and q + P (P = ceil(oh / 2)) share a vector (lanes 0..ow-1 and
 * 8..8+ow-1), each tap one permute of two row loads (input rows 2 q + ky - pt and 2 P more;
 * lane j of a load is column j - pl, masked to the row: the padding's zeros). Row ky = 2 of
 * pair q is row ky = 0 of pair q + 1: its taps are permuted once for both. The row kernels
 * fill 7 of 16 lanes here, and the 16-channel kernel transposes each plane in and out. Each
 * output is the bias, then fmaf over the padded taps in (ky, kx) order, then dt_dw_epi: the
 * row kernels' bits. Rows outside the image read zeros; lanes of no output are never stored. */
static inline __attribute__((always_inline, target("avx512f"))) void
dt_dw_pairs_taps(const float *xc, int64_t ra, int64_t rb, int64_t ih, int64_t iw, __mmask16 mrow, const __m512i *idx,
                 __m512 *t)
{
    __m512 zero = _mm512_setzero_ps();
    __m512 va = ra >= 0 && ra < ih ? dt_mload(mrow, xc + ra * iw) : zero;
    __m512 vb = rb >= 0 && rb < ih ? dt_mload(mrow, xc + rb * iw) : zero;
#pragma GCC unroll 3
    for (int kx = 0; kx < 3; kx++) t[kx] = _mm512_permutex2var_ps(va, idx[kx], vb);
}

__attribute__((target("avx512f,fma"))) static void dt_dw_pairs_plane(const dt_dw_job *j, const float *x,
                                                                     const float *w, float b, float *y,
                                                                     const float *res)
{
    const dt_conv_geom *g = j->g;
    int64_t ih = g->in[0], iw = g->in[1], oh = g->out[0], ow = g->out[1], pt = g->pb[0], P = (oh + 1) / 2;
    /* tap kx of lane l: 2 l + kx of the pair of loads, i.e. column 2 l + kx of the first (l <
     * 8) or 2 (l - 8) + kx of the second (l >= 8); lanes 7 and 15 are no output's */
    const __m512i step = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    __m512i idx[3];
    for (int kx = 0; kx < 3; kx++) idx[kx] = _mm512_add_epi32(step, _mm512_set1_epi32(kx));
    __m512 wv[9];
    for (int t = 0; t < 9; t++) wv[t] = _mm512_set1_ps(w[t]);
    const bool in_store = j->epi_in_store;
    const dt_act act = in_store ? j->epi->act : DT_ACT_NONE;
    const __m512 p0 = _mm512_set1_ps(in_store ? j->epi->p0 : 0.0f), p1 = _mm512_set1_ps(in_store ? j->epi->p1 : 0.0f);
    const __mmask16 mrow = dt_dw_row_mask(-g->pb[1], iw), lo = (__mmask16)((1u << ow) - 1);
    const float *xc = x - g->pb[1];
    __m512 t[3][3];
    dt_dw_pairs_taps(xc, -pt, 2 * P - pt, ih, iw, mrow, idx, t[2]);
    for (int64_t q = 0; q < P; q++) {
        __mmask16 hi = q + P < oh ? (__mmask16)(lo << 8) : 0;
        int64_t ra = 2 * q - pt;
#pragma GCC unroll 3
        for (int kx = 0; kx < 3; kx++) t[0][kx] = t[2][kx];
        dt_dw_pairs_taps(xc, ra + 1, ra + 1 + 2 * P, ih, iw, mrow, idx, t[1]);
        dt_dw_pairs_taps(xc, ra + 2, ra + 2 + 2 * P, ih, iw, mrow, idx, t[2]);
        __m512 acc = _mm512_set1_ps(b);
#pragma GCC unroll 3
        for (int ky = 0; ky < 3; ky++)
#pragma GCC unroll 3
            for (int kx = 0; kx < 3; kx++) acc = _mm512_fmadd_ps(wv[ky * 3 + kx], t[ky][kx], acc);
        float *y1 = y + (q + P) * ow - 8;
        if (in_store) {
            if (res)
                acc = _mm512_add_ps(acc, _mm512_mask_loadu_ps(_mm512_maskz_loadu_ps(lo, res + q * ow), hi,
                                                              res + (q + P) * ow - 8));
            dt_dw_epi(&acc, 1, act, p0, p1, NULL, 0, 0xffff);
        }
        _mm512_mask_storeu_ps(y + q * ow, lo, acc);
        if (hi) _mm512_mask_storeu_ps(y1, hi, acc);
    }
}

static void dt_dw_part(void *arg, int64_t begin, int64_t end, int tid)
{
    const dt_dw_job *j = arg;
    const dt_conv_geom *g = j->g;
    int64_t in_px = g->in[0] * g->in[1], out_px = g->out[0] * g->out[1];
    int64_t ksz = g->k[0] * g->k[1];
    float *pad = (float *)(j->scratch + (size_t)tid * j->plane_bytes);
    bool in_place = dt_dw_in_place(g), pairs = j->avx512 && dt_cpu_dw_pairs_applies(g);
    bool narrow = j->avx512 && dt_dw_narrow_applies(g) && g->in[1] <= 32, wide = j->avx512 && dt_dw_wide_applies(g);
    dt_dw_rows_plane_fn rows = j->avx512 ? dt_dw_rows_select(g, in_place) : NULL;
    for (int64_t p = begin; p < end; p++) {
        int64_t c = p % g->c;
        /* x's and y's planes (conv.h: x_cs, y_cs) */
        int64_t xp = j->x_cs ? c * j->x_cs + p / g->c : p, yp = j->y_cs ? c * j->y_cs + p / g->c : p;
        float b = j->bias ? j->bias[c] : 0.0f, *y = j->y + yp * out_px;
        const float *res = j->epi && j->epi->res ? j->epi->res + yp * out_px : NULL;
        if (pairs) {
            dt_dw_pairs_plane(j, j->x + xp * in_px, j->w + c * ksz, b, y, res);
        } else if (narrow) {
            dt_dw_narrow_plane(j, j->x + xp * in_px, j->w + c * ksz, b, y, res);
        } else if (wide) {
            dt_dw_src src = {.x = j->x + xp * in_px, .row0 = -g->pb[0], .ring = g->in[0]};
            dt_dw_wide_plane(j, &src, j->w + c * ksz, b, y, res);
        } else if (rows && in_place) {
            /* the plane in place; pad, zeroed and never written on this path, is the zero row */
            dt_dw_src src = {.x = j->x + xp * in_px, .zero = pad, .row0 = -g->pb[0], .ring = g->in[0]};
            rows(j, &src, j->w + c * ksz, b, y, res);
        } else {
            dt_dw_pad_plane(j, j->x + xp * in_px, pad);
            if (rows)
                rows(j, &(dt_dw_src){.x = pad}, j->w + c * ksz, b, y, res);
            else if (j->avx512)
                dt_dw_plane_avx512(j, pad, j->w + c * ksz, b, y);
            else if (!j->avx2 || !dt_dw_plane_avx2(g, j->wp, pad, j->w + c * ksz, b, y))
                dt_dw_plane_ref(j, pad, j->w + c * ksz, b, y);
        }
        if (j->epi && !j->epi_in_store) dt_epilogue_apply(j->epi, y, res, out_px);
        if (j->pool) j->pool[p] = dt_cpu_pool_plane(y, g->out[0], g->out[1], j->pool_rows);
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
    dt_dw_job j = {.g = g, .x = a->x, .w = a->w, .bias = a->bias, .epi = a->epi, .y = a->y, .x_cs = a->x_cs,
                   .y_cs = a->y_cs, .pool = a->pool, .pool_rows = a->pool_rows};
    __builtin_cpu_init();
    j.avx512 = __builtin_cpu_supports("avx512f");
    j.avx2 = !j.avx512 && dt_cpu_has_avx2_fma();
    j.epi_in_store = j.avx512 && dt_dw_rows_select(g, false) && a->epi && dt_dw_epi_in_lanes(a->epi);
    DT_TRY(dt_dw_plane(g, &j.hp, &j.wp, &j.plane_bytes));
    int threads = dt_pool_threads(pool);
    /* Zero once per call: planes of a call share their geometry, so the borders stay zero. */
    memset(a->scratch, 0, j.plane_bytes * (size_t)threads);
    j.scratch = a->scratch;
    int64_t planes = g->batch * g->c;
    /* Small planes are cheap: keep enough per thread to repay waking it. */
    int64_t grain = (g->out[0] * g->out[1] * g->k[0] * g->k[1] < 4096) ? 16 : 1;
    dt_parallel_for(pool, planes, grain, dt_dw_part, &j);
    return DUCTILE_OK;
}

size_t dt_cpu_dw_strip_pad_bytes(const dt_conv_geom *g, int64_t rows)
{
    int64_t hp, wp;
    size_t plane;
    if (dt_dw_plane(g, &hp, &wp, &plane)) return 0;
    int64_t n = (rows - 1) * g->s[0] + (g->k[0] - 1) * g->d[0] + 1;
    return (((size_t)n * (size_t)wp * sizeof(float)) + 63) & ~(size_t)63;
}

/* The plane kernels on a geometry of the strip's rows: each output's float operations are
 * those of dt_cpu_conv_depthwise. The row kernels read the ring in place (pad, zeroed by the
 * caller and never written on that path, is their zero row); the others read the strip's rows
 * copied into pad as the whole-plane kernel's padded plane would hold them. */
void dt_cpu_dw_strip(const dt_conv_geom *g, const float *src, int64_t ring, const float *w, float b,
                     const dt_epilogue *epi, const float *res, float *y, int64_t oy0, int64_t oy1, float *pad)
{
    dt_conv_geom gs = *g;
    gs.out[0] = oy1 - oy0;
    dt_dw_job j = {.g = &gs, .epi = epi};
    size_t plane;
    if (dt_dw_plane(g, &j.hp, &j.wp, &plane)) return;   /* the caller sized pad with it */
    __builtin_cpu_init();
    j.avx512 = __builtin_cpu_supports("avx512f");
    bool in_place = dt_dw_in_place(g);
    dt_dw_rows_plane_fn rows = j.avx512 ? dt_dw_rows_select(g, in_place) : NULL;
    j.epi_in_store = rows && epi && dt_dw_epi_in_lanes(epi);
    if (j.avx512 && dt_dw_wide_applies(g) && !(dt_dw_narrow_applies(g) && g->in[1] <= 32)) {
        dt_dw_src in = {.x = src, .row0 = oy0 * g->s[0] - g->pb[0], .ring = ring};
        dt_dw_wide_plane(&j, &in, w, b, y, res);
        if (epi && !j.epi_in_store) dt_epilogue_apply(epi, y, res, gs.out[0] * gs.out[1]);
        return;
    }
    if (rows && in_place) {
        dt_dw_src in = {.x = src, .zero = pad, .row0 = oy0 * g->s[0] - g->pb[0], .ring = ring};
        rows(&j, &in, w, b, y, res);
        if (epi && !j.epi_in_store) dt_epilogue_apply(epi, y, res, gs.out[0] * gs.out[1]);
        return;
    }
    int64_t n = (gs.out[0] - 1) * g->s[0] + (g->k[0] - 1) * g->d[0] + 1, iw = g->in[1];
    for (int64_t i = 0; i < n; i++) {
        int64_t r = oy0 * g->s[0] - g->pb[0] + i;
        float *d = pad + i * j.wp + g->pb[1];
        if (r >= 0 && r < g->in[0])
            memcpy(d, src + r % ring * iw, (size_t)iw * sizeof *d);
        else
            memset(d, 0, (size_t)iw * sizeof *d);
    }
    if (rows)
        rows(&j, &(dt_dw_src){.x = pad}, w, b, y, res);
    else if (j.avx512)
        dt_dw_plane_avx512(&j, pad, w, b, y);
    else if (!dt_cpu_has_avx2_fma() || !dt_dw_plane_avx2(&gs, j.wp, pad, w, b, y))
        dt_dw_plane_ref(&j, pad, w, b, y);
    if (epi && !j.epi_in_store) dt_epilogue_apply(epi, y, res, gs.out[0] * gs.out[1]);
}
