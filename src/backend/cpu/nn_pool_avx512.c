/* MaxPool and AveragePool (channels first) along an output row, 16 outputs per vector: the
 * windows that lie inside the input along x, x stride 1 or 2, x dilation 1 (resnet50's 3x3
 * stride-2 MaxPool, mobile nets' 2x2 and 3x3 pools). The scalar loop in nn_pool.c takes the
 * border windows and everything else.
 *
 * Bits: each lane does the scalar loop's float operations in its order (taps row by row, then
 * along x; max as dt_max_keep_nan, `v > acc || v != v ? v : acc`, which is MAXPS(v, acc) with a
 * NaN v then taken (dt_pool_vmax): equal values and signed zeros alike, a NaN kept; a sum
 * from 0 divided by the count), so results do not depend on which path or how many threads
 * ran. */
#include "backend/cpu/nn_pool.h"

#include <immintrin.h>
#include <math.h>

/* dt_max_keep_nan (nn_kernels.h) in lanes: MAXPS(v, acc) returns acc for a NaN v, so a NaN v
 * is blended in. */
static inline __attribute__((always_inline, target("avx512f"))) __m512 dt_pool_vmax(__m512 v, __m512 acc)
{
    return _mm512_mask_mov_ps(_mm512_max_ps(v, acc), _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), v);
}

bool dt_pool_row_avx512_ok(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}

/* Lanes [lo, hi) of a 16-float load whose lane 0 is element `base` of a row, clipped to the
 * row's [0, w) where w >= 0. */
static inline __mmask16 dt_pool_mask(int64_t base, int64_t lo, int64_t hi, int64_t w)
{
    if (w >= 0) {
        if (lo < -base) lo = -base;
        if (hi > w - base) hi = w - base;
    }
    if (lo < 0) lo = 0;
    if (hi > 16) hi = 16;
    if (lo >= hi) return 0;
    return (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1));
}

/* A row's three tap vectors at x stride 2: lanes t of t0, t1, t2 hold p[2t], p[2t + 1] and
 * p[2t + 2], from three loads (lanes outside masks m0, m1, m2 read `fill`) by permutes. */
static inline __attribute__((always_inline, target("avx512f"))) void
dt_pool_taps3s2(const float *p, __mmask16 m0, __mmask16 m1, __mmask16 m2, __m512 fill, __m512 *t0, __m512 *t1,
                __m512 *t2)
{
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    const __m512i next = _mm512_set_epi32(16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1);
    __m512 v0 = _mm512_mask_loadu_ps(fill, m0, p), v1 = _mm512_mask_loadu_ps(fill, m1, p + 16);
    __m512 v2 = _mm512_mask_loadu_ps(fill, m2, p + 32);
    *t0 = _mm512_permutex2var_ps(v0, even, v1);
    *t1 = _mm512_permutex2var_ps(v0, odd, v1);
    *t2 = _mm512_permutex2var_ps(*t0, next, v2);   /* p[2t + 2]: t0 down a lane, v2[0] last */
}

/* 3 taps at x stride 2 (resnet50's MaxPool): a row's three tap vectors from three loads by
 * permutes (as conv_dw.h's dt_dw_taps_s2), not two loads and a permute per tap. The same taps
 * in the same order as the general loop below: the same bits. Lanes read p[0] .. p[2n].
 * With w >= 0 (max only) the windows may cross the row's ends: taps outside [0, w) load -inf,
 * which `v > acc || v != v ? v : acc` never takes (nor dt_pool_vmax), so
 * a border window gives the scalar loop's bits without its per-window setup. */
static inline __attribute__((always_inline, target("avx512f"))) void
dt_pool_row_k3s2(const float *const *rows, int nrows, int64_t px, int64_t w, bool is_max, float count, int64_t ox0,
                 int64_t ox1, float *y)
{
    const __m512 fill = _mm512_set1_ps(is_max ? -INFINITY : 0.0f);
    for (int64_t ox = ox0; ox < ox1; ox += 16) {
        int64_t n = ox1 - ox < 16 ? ox1 - ox : 16, in = 2 * n + 1, base = ox * 2 - px;
        __mmask16 mo = n == 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1);
        __mmask16 m0 = dt_pool_mask(base, 0, in, w), m1 = dt_pool_mask(base + 16, 0, in - 16, w);
        __mmask16 m2 = dt_pool_mask(base + 32, 0, in - 32, w);
        __m512 acc = is_max ? _mm512_set1_ps(-INFINITY) : _mm512_setzero_ps();
        for (int r = 0; r < nrows; r++) {
            __m512 t0, t1, t2;
            dt_pool_taps3s2(rows[r] + base, m0, m1, m2, fill, &t0, &t1, &t2);
            if (is_max) {
                acc = dt_pool_vmax(t0, acc);
                acc = dt_pool_vmax(t1, acc);
                acc = dt_pool_vmax(t2, acc);
            } else {
                acc = _mm512_add_ps(acc, t0);
                acc = _mm512_add_ps(acc, t1);
                acc = _mm512_add_ps(acc, t2);
            }
        }
        if (!is_max) acc = _mm512_div_ps(acc, _mm512_set1_ps(count));
        _mm512_mask_storeu_ps(y + ox, mo, acc);
    }
}

__attribute__((target("avx512f"))) void dt_pool_row_avx512(const float *const *rows, int nrows, int64_t kx,
                                                            int64_t sx, int64_t px, int64_t w, bool is_max,
                                                            float count, int64_t ox0, int64_t ox1, float *y)
{
    if (kx == 3 && sx == 2) {
        if (is_max)
            dt_pool_row_k3s2(rows, nrows, px, w, true, count, ox0, ox1, y);
        else
            dt_pool_row_k3s2(rows, nrows, px, -1, false, count, ox0, ox1, y);
        return;
    }
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    for (int64_t ox = ox0; ox < ox1; ox += 16) {
        int64_t n = ox1 - ox < 16 ? ox1 - ox : 16;
        __mmask16 mo = n == 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1), m0 = mo, m1 = 0;
        if (sx == 2) {
            /* lanes read p[0], p[2] .. p[2n-2]: 2n-1 floats, nothing past the last tap */
            int64_t in = 2 * n - 1;
            m0 = in >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << in) - 1);
            m1 = in >= 32 ? (__mmask16)0xffff : in > 16 ? (__mmask16)((1u << (in - 16)) - 1) : 0;
        }
        __m512 acc = is_max ? _mm512_set1_ps(-INFINITY) : _mm512_setzero_ps();
        for (int r = 0; r < nrows; r++) {
            const float *p = rows[r] + ox * sx - px;
            for (int64_t tx = 0; tx < kx; tx++) {
                __m512 v = sx == 1 ? _mm512_maskz_loadu_ps(m0, p + tx)
                                   : _mm512_permutex2var_ps(_mm512_maskz_loadu_ps(m0, p + tx), even,
                                                            _mm512_maskz_loadu_ps(m1, p + tx + 16));
                acc = is_max ? dt_pool_vmax(v, acc) : _mm512_add_ps(acc, v);
            }
        }
        if (!is_max) acc = _mm512_div_ps(acc, _mm512_set1_ps(count));
        _mm512_mask_storeu_ps(y + ox, mo, acc);
    }
}

/* Lane t: the maximum of a row's taps p[2t], p[2t + 1], p[2t + 2] (taps outside the row -inf),
 * folded from -inf in tap order as the scalar loop does. */
static inline __attribute__((always_inline, target("avx512f"))) __m512
dt_pool_hmax3s2(const float *p, __mmask16 m0, __mmask16 m1, __mmask16 m2)
{
    const __m512 fill = _mm512_set1_ps(-INFINITY);
    __m512 t0, t1, t2;
    dt_pool_taps3s2(p, m0, m1, m2, fill, &t0, &t1, &t2);
    __m512 acc = dt_pool_vmax(t0, fill);
    acc = dt_pool_vmax(t1, acc);
    return dt_pool_vmax(t2, acc);
}

/* Bits: the scalar loop folds a window's taps row by row, each row along x, keeping the first
 * of equal values (+0 before -0 or the reverse), a NaN once met (acc starts at -inf).
 * Folding each row's taps first (NaN where one is, -inf where all taps are outside) and then
 * the rows in order keeps the first maximum in the same (row, x) order, the same value and
 * sign, or NaN where the window holds one. */
__attribute__((target("avx512f"))) void dt_pool_max3s2_plane(const float *x, int64_t h, int64_t w, int64_t py,
                                                              int64_t px, int64_t ow, int64_t oy0, int64_t oy1,
                                                              float *y)
{
    enum { CHUNKS = DT_POOL_MAX3S2_WIDTH / 16 };
    float held[DT_POOL_MAX3S2_WIDTH] __attribute__((aligned(64)));   /* row `held_row`'s maxima */
    __mmask16 m0[CHUNKS], m1[CHUNKS], m2[CHUNKS], mo[CHUNKS];
    int64_t chunks = (ow + 15) / 16, held_row = INT64_MIN;   /* none */
    for (int64_t c = 0; c < chunks; c++) {
        int64_t n = ow - c * 16 < 16 ? ow - c * 16 : 16, in = 2 * n + 1, base = c * 32 - px;
        mo[c] = n == 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1);
        m0[c] = dt_pool_mask(base, 0, in, w);
        m1[c] = dt_pool_mask(base + 16, 0, in - 16, w);
        m2[c] = dt_pool_mask(base + 32, 0, in - 32, w);
    }
    for (int64_t oy = oy0; oy < oy1; oy++) {
        int64_t sy = oy * 2 - py, r0 = sy < 0 ? 0 : sy, r1 = sy + 3 < h ? sy + 3 : h;
        if (DT_POOL_AHEAD) {
            /* the rows that the output row DT_POOL_AHEAD on adds: a row stream a plane apart
             * per channel, which the prefetchers start late on */
            for (int64_t r = sy + 3 + (DT_POOL_AHEAD - 1) * 2; r < sy + 5 + (DT_POOL_AHEAD - 1) * 2; r++)
                if (r >= 0 && r < h)
                    for (int64_t c = 0; c < w; c += 16) __builtin_prefetch(x + r * w + c, 0, 3);
            /* and that output row for writing: in the network its lines are cold (resnet50's
             * MaxPool 0.086-0.090 -> 0.073-0.077 ms on 1 thread, 0.094-0.096 -> 0.077 on 2;
             * alone, lines warm, 0.064 -> 0.067) */
            if (oy + DT_POOL_AHEAD < oy1)
                for (int64_t c = 0; c < ow; c += 16) __builtin_prefetch(y + (oy + DT_POOL_AHEAD) * ow + c, 1, 3);
        }
        float *yo = y + oy * ow;
        if (held_row == sy && sy + 3 <= h) {
            /* the common row: the first window row's maxima held, two rows to add */
            for (int64_t c = 0; c < chunks; c++) {
                const float *p = x - px + c * 32 + (sy + 1) * w;
                __m512 a = _mm512_load_ps(held + c * 16), b = dt_pool_hmax3s2(p, m0[c], m1[c], m2[c]);
                __m512 d = dt_pool_hmax3s2(p + w, m0[c], m1[c], m2[c]);
                _mm512_store_ps(held + c * 16, d);
                _mm512_mask_storeu_ps(yo + c * 16, mo[c], dt_pool_vmax(d, dt_pool_vmax(b, a)));
            }
            held_row = sy + 2;
            continue;
        }
        for (int64_t c = 0; c < chunks; c++) {
            const float *p = x - px + c * 32;
            __m512 acc = _mm512_set1_ps(-INFINITY);
            for (int64_t r = r0; r < r1; r++) {
                __m512 v = r == held_row ? _mm512_load_ps(held + c * 16)
                                         : dt_pool_hmax3s2(p + r * w, m0[c], m1[c], m2[c]);
                acc = r == r0 ? v : dt_pool_vmax(v, acc);
                if (r == sy + 2) _mm512_store_ps(held + c * 16, v);
            }
            _mm512_mask_storeu_ps(yo + c * 16, mo[c], acc);
        }
        held_row = sy + 2;
    }
}

/* Bits: as dt_pool_max3s2_plane's, each input row's taps are folded first (from -inf, in x
 * order: the first of equal values kept, a NaN kept) and the window's rows then in y order:
 * the first maximum in the scalar loop's (row, x) order, the same value and sign, or NaN. */
__attribute__((target("avx512f"))) void dt_pool_maxs1_plane(const float *x, int64_t h, int64_t w, int64_t ky,
                                                             int64_t kx, int64_t py, int64_t px, int64_t ow,
                                                             int64_t oy0, int64_t oy1, float *y)
{
    enum { CHUNKS = DT_POOL_S1_WIDTH / 16 };
    float ring[DT_POOL_S1_MAX_K * DT_POOL_S1_WIDTH] __attribute__((aligned(64)));   /* row r at slot r % ky */
    __mmask16 m[CHUNKS][DT_POOL_S1_MAX_K], mo[CHUNKS];
    const __m512 fill = _mm512_set1_ps(-INFINITY);
    int64_t chunks = (ow + 15) / 16, ring_w = chunks * 16;
    for (int64_t c = 0; c < chunks; c++) {
        int64_t n = ow - c * 16 < 16 ? ow - c * 16 : 16;
        mo[c] = n == 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1);
        for (int64_t tx = 0; tx < kx; tx++) m[c][tx] = dt_pool_mask(c * 16 - px + tx, 0, n, w);
    }
    /* the first input row whose maxima are not in the ring, and its slot */
    int64_t next = oy0 - py < 0 ? 0 : oy0 - py, next_slot = next % ky;
    for (int64_t oy = oy0; oy < oy1; oy++) {
        int64_t sy = oy - py, r0 = sy < 0 ? 0 : sy, r1 = sy + ky < h ? sy + ky : h;
        for (; next < r1; next++) {
            const float *row = x + next * w - px;
            float *slot = ring + next_slot * ring_w;
            for (int64_t c = 0; c < chunks; c++) {
                __m512 acc = fill;
                for (int64_t tx = 0; tx < kx; tx++)
                    acc = dt_pool_vmax(_mm512_mask_loadu_ps(fill, m[c][tx], row + c * 16 + tx), acc);
                _mm512_store_ps(slot + c * 16, acc);
            }
            next_slot = next_slot + 1 == ky ? 0 : next_slot + 1;
        }
        /* the window's rows r0 .. r1 - 1 in order: slots from r0's on, wrapping */
        const float *rows[DT_POOL_S1_MAX_K];
        int64_t nr = r1 - r0, s = next_slot - nr;
        if (s < 0) s += ky;
        for (int64_t i = 0; i < nr; i++, s = s + 1 == ky ? 0 : s + 1) rows[i] = ring + s * ring_w;
        float *yo = y + oy * ow;
        for (int64_t c = 0; c < chunks; c++) {
            __m512 acc = fill;
            for (int64_t i = 0; i < nr; i++) acc = dt_pool_vmax(_mm512_load_ps(rows[i] + c * 16), acc);
            _mm512_mask_storeu_ps(yo + c * 16, mo[c], acc);
        }
    }
}
