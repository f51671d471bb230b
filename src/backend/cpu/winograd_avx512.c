/* The Winograd F(4x4, 3x3) input and output transforms of one block (winograd.h) in AVX-512,
 * 16 tiles of a tile row per vector. A tile's 4 (or 6) values along a row are 4 apart in
 * the image; a 4x4 transpose (a lane permute inside each 128-bit block, then a block
 * transpose across four vectors) turns 64 consecutive floats into the four column phases of
 * 16 tiles, and back. Image borders are masked loads and stores, so nothing is copied. */
#include "backend/cpu/winograd.h"
#include "backend/cpu/conv_dw.h"
#include "backend/cpu/simd_load.h"

#include <immintrin.h>

#define DT_AVX512 __attribute__((target("avx512f,fma")))

static inline __attribute__((always_inline)) DT_AVX512 __m512 dt_wino_lanes(__m512 v)
{
    /* Inside each 128-bit block of four vectors' worth: lane 4i + j <- lane 4j + i. */
    const __m512i idx = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
    return _mm512_permutexvar_ps(idx, v);
}

/* Block b of p[k] <-> block k of p[b]. */
static inline __attribute__((always_inline)) DT_AVX512 void dt_wino_blocks4(__m512 p[4])
{
    __m512 l01 = _mm512_shuffle_f32x4(p[0], p[1], 0x44), h01 = _mm512_shuffle_f32x4(p[0], p[1], 0xee);
    __m512 l23 = _mm512_shuffle_f32x4(p[2], p[3], 0x44), h23 = _mm512_shuffle_f32x4(p[2], p[3], 0xee);
    p[0] = _mm512_shuffle_f32x4(l01, l23, 0x88);
    p[1] = _mm512_shuffle_f32x4(l01, l23, 0xdd);
    p[2] = _mm512_shuffle_f32x4(h01, h23, 0x88);
    p[3] = _mm512_shuffle_f32x4(h01, h23, 0xdd);
}

/* p[k] = floats 16k..16k+15 of a run of 64 (16 tiles of 4) in, the four phases out: p[q]
 * lane u = float 4u + q. */
static inline __attribute__((always_inline)) DT_AVX512 void dt_wino_split4(__m512 p[4])
{
    for (int k = 0; k < 4; k++) p[k] = dt_wino_lanes(p[k]);
    dt_wino_blocks4(p);
}

/* The inverse: phases in, the run of 64 out. */
static inline __attribute__((always_inline)) DT_AVX512 void dt_wino_join4(__m512 p[4])
{
    dt_wino_blocks4(p);
    for (int k = 0; k < 4; k++) p[k] = dt_wino_lanes(p[k]);
}

static inline DT_AVX512 __mmask16 dt_wino_mask(int64_t n)
{
    return n >= 16 ? (__mmask16)0xffff : n <= 0 ? 0 : (__mmask16)((1u << n) - 1);
}

/* The runs of a row from x: columns [lo, hi) of the padded line are image columns. */
static inline DT_AVX512 __mmask16 dt_wino_cols(int64_t x, int64_t lo, int64_t hi)
{
    __mmask16 m = 0xffff;
    if (x < lo) m &= (__mmask16)(0xffffu << (lo - x < 16 ? lo - x : 16));
    if (x + 16 > hi) m &= dt_wino_mask(hi - x);
    return m;
}

/* The column pass of channel c's tile row r: tl[i] = (B^T d)[i] over whole lines, d = the
 * six input rows; the next channel's rows (c + 1 < c1) are prefetched into L2 meanwhile. */
static inline __attribute__((always_inline)) DT_AVX512 void
dt_wino_col_pass(const dt_wino_blk *k, int64_t c, int64_t c1, int64_t r, float *tl, int64_t ldl)
{
    int64_t W = k->W, H = k->H, ntx = k->ntx;
    int64_t xs = 4 * ((ntx + 15) / 16 * 16) + 16;   /* line columns the row pass reads */
    int64_t lo = k->ix0 < 0 ? -k->ix0 : 0, hi = W - k->ix0;
    const float *plane = k->x + c * H * W;
    const float *row[6];
    bool in[6];
    for (int j = 0; j < 6; j++) {
        int64_t iy = k->iy0 + 4 * r + j;
        in[j] = iy >= 0 && iy < H;
        row[j] = in[j] ? plane + iy * W + k->ix0 : plane;
        /* A row of a few hundred floats is too short a stream for the hardware prefetcher,
         * and each channel's rows start a plane away (superres 64 -> 64 at 224x224 -6..-13%). */
        if (in[j] && c + 1 < c1) {
            const char *nx = (const char *)(row[j] + H * W + (lo > 0 ? lo : 0));
            int64_t bytes = ((hi < xs ? hi : xs) - (lo > 0 ? lo : 0)) * (int64_t)sizeof(float);
            for (int64_t o = 0; o < bytes; o += 64) _mm_prefetch(nx + o, _MM_HINT_T1);
        }
    }
    for (int64_t x = 0; x < xs; x += 16) {
        __mmask16 m = dt_wino_cols(x, lo, hi);
        /* plain loads inside the row (simd_load.h: masked ones are slow on a miss) */
        __m512 d[6];
        for (int j = 0; j < 6; j++) d[j] = in[j] ? dt_mload(m, row[j] + x) : _mm512_setzero_ps();
        __m512 a = _mm512_fnmadd_ps(_mm512_set1_ps(4.0f), d[2], d[4]);
        __m512 b = _mm512_fnmadd_ps(_mm512_set1_ps(4.0f), d[1], d[3]);
        __m512 cc = _mm512_sub_ps(d[4], d[2]);
        __m512 e = _mm512_mul_ps(_mm512_set1_ps(2.0f), _mm512_sub_ps(d[3], d[1]));
        __m512 t0 = _mm512_fmadd_ps(_mm512_set1_ps(4.0f), d[0], _mm512_fnmadd_ps(_mm512_set1_ps(5.0f), d[2], d[4]));
        __m512 t5 = _mm512_fmadd_ps(_mm512_set1_ps(4.0f), d[1], _mm512_fnmadd_ps(_mm512_set1_ps(5.0f), d[3], d[5]));
        _mm512_store_ps(tl + x, t0);
        _mm512_store_ps(tl + ldl + x, _mm512_add_ps(a, b));
        _mm512_store_ps(tl + 2 * ldl + x, _mm512_sub_ps(a, b));
        _mm512_store_ps(tl + 3 * ldl + x, _mm512_add_ps(cc, e));
        _mm512_store_ps(tl + 4 * ldl + x, _mm512_sub_ps(cc, e));
        _mm512_store_ps(tl + 5 * ldl + x, t5);
    }
}

/* The row pass of tiles u..u+15 of one line li of the column pass: out[j] = position j of
 * the six along the row. */
static inline __attribute__((always_inline)) DT_AVX512 void dt_wino_row6(const float *li, int64_t u, __m512 out[6])
{
    __m512 q[4];
    for (int t = 0; t < 4; t++) q[t] = _mm512_load_ps(li + 4 * u + 16 * t);
    dt_wino_split4(q);
    /* Values 4 and 5 of tile u are values 0 and 1 of tile u + 1. */
    __m512 e4 = _mm512_castsi512_ps(_mm512_alignr_epi32(
        _mm512_castps_si512(_mm512_set1_ps(li[4 * u + 64])), _mm512_castps_si512(q[0]), 1));
    __m512 e5 = _mm512_castsi512_ps(_mm512_alignr_epi32(
        _mm512_castps_si512(_mm512_set1_ps(li[4 * u + 65])), _mm512_castps_si512(q[1]), 1));
    __m512 a = _mm512_fnmadd_ps(_mm512_set1_ps(4.0f), q[2], e4);
    __m512 b = _mm512_fnmadd_ps(_mm512_set1_ps(4.0f), q[1], q[3]);
    __m512 cc = _mm512_sub_ps(e4, q[2]);
    __m512 e = _mm512_mul_ps(_mm512_set1_ps(2.0f), _mm512_sub_ps(q[3], q[1]));
    out[0] = _mm512_fmadd_ps(_mm512_set1_ps(4.0f), q[0], _mm512_fnmadd_ps(_mm512_set1_ps(5.0f), q[2], e4));
    out[1] = _mm512_add_ps(a, b);
    out[2] = _mm512_sub_ps(a, b);
    out[3] = _mm512_add_ps(cc, e);
    out[4] = _mm512_sub_ps(cc, e);
    out[5] = _mm512_fmadd_ps(_mm512_set1_ps(4.0f), q[1], _mm512_fnmadd_ps(_mm512_set1_ps(5.0f), q[3], e5));
}

DT_AVX512 void dt_wino_input_avx512(const dt_wino_blk *k, float *v, float *tl, int64_t ldl)
{
    int64_t W = k->W, H = k->H, T = k->ldt, ntx = k->ntx;
    int64_t xs = 4 * ((ntx + 15) / 16 * 16) + 16;   /* line columns the row pass reads */
    int64_t lo = k->ix0 < 0 ? -k->ix0 : 0, hi = W - k->ix0;
    for (int64_t c = k->c0; c < k->c1; c++) {
        const float *plane = k->x + c * H * W;
        for (int64_t r = 0; r < k->nty; r++) {
            /* Along the columns first, over whole lines: tl[i] = (B^T d)[i], d = the six rows. */
            const float *row[6];
            bool in[6];
            for (int j = 0; j < 6; j++) {
                int64_t iy = k->iy0 + 4 * r + j;
                in[j] = iy >= 0 && iy < H;
                row[j] = in[j] ? plane + iy * W + k->ix0 : plane;
                /* The next channel's rows into L2 meanwhile: a row of a few hundred floats
                 * is too short a stream for the hardware prefetcher, and each channel's
                 * rows start a plane away (superres 64 -> 64 at 224x224 -6..-13%). */
                if (in[j] && c + 1 < k->c1) {
                    const char *nx = (const char *)(row[j] + H * W + (lo > 0 ? lo : 0));
                    int64_t bytes = ((hi < xs ? hi : xs) - (lo > 0 ? lo : 0)) * (int64_t)sizeof(float);
                    for (int64_t o = 0; o < bytes; o += 64) _mm_prefetch(nx + o, _MM_HINT_T1);
                }
            }
            for (int64_t x = 0; x < xs; x += 16) {
                __mmask16 m = dt_wino_cols(x, lo, hi);
                /* plain loads inside the row (simd_load.h: masked ones are slow on a miss) */
                __m512 d[6];
                for (int j = 0; j < 6; j++) d[j] = in[j] ? dt_mload(m, row[j] + x) : _mm512_setzero_ps();
                __m512 a = _mm512_fnmadd_ps(_mm512_set1_ps(4.0f), d[2], d[4]);
                __m512 b = _mm512_fnmadd_ps(_mm512_set1_ps(4.0f), d[1], d[3]);
                __m512 cc = _mm512_sub_ps(d[4], d[2]);
                __m512 e = _mm512_mul_ps(_mm512_set1_ps(2.0f), _mm512_sub_ps(d[3], d[1]));
                __m512 t0 = _mm512_fmadd_ps(_mm512_set1_ps(4.0f), d[0], _mm512_fnmadd_ps(_mm512_set1_ps(5.0f), d[2], d[4]));
                __m512 t5 = _mm512_fmadd_ps(_mm512_set1_ps(4.0f), d[1], _mm512_fnmadd_ps(_mm512_set1_ps(5.0f), d[3], d[5]));
                _mm512_store_ps(tl + x, t0);
                _mm512_store_ps(tl + ldl + x, _mm512_add_ps(a, b));
                _mm512_store_ps(tl + 2 * ldl + x, _mm512_sub_ps(a, b));
                _mm512_store_ps(tl + 3 * ldl + x, _mm512_add_ps(cc, e));
                _mm512_store_ps(tl + 4 * ldl + x, _mm512_sub_ps(cc, e));
                _mm512_store_ps(tl + 5 * ldl + x, t5);
            }
            /* Then along the row, 16 tiles at a time, into six positions of V each. */
            for (int i = 0; i < 6; i++) {
                const float *li = tl + i * ldl;
                float *vi = v + (int64_t)i * 6 * k->vs + c * T + r * ntx;
                for (int64_t u = 0; u < ntx; u += 16) {
                    __m512 q[4];
                    for (int t = 0; t < 4; t++) q[t] = _mm512_load_ps(li + 4 * u + 16 * t);
                    dt_wino_split4(q);
                    /* Values 4 and 5 of tile u are values 0 and 1 of tile u + 1. */
                    __m512 e4 = _mm512_castsi512_ps(_mm512_alignr_epi32(
                        _mm512_castps_si512(_mm512_set1_ps(li[4 * u + 64])), _mm512_castps_si512(q[0]), 1));
                    __m512 e5 = _mm512_castsi512_ps(_mm512_alignr_epi32(
                        _mm512_castps_si512(_mm512_set1_ps(li[4 * u + 65])), _mm512_castps_si512(q[1]), 1));
                    __m512 a = _mm512_fnmadd_ps(_mm512_set1_ps(4.0f), q[2], e4);
                    __m512 b = _mm512_fnmadd_ps(_mm512_set1_ps(4.0f), q[1], q[3]);
                    __m512 cc = _mm512_sub_ps(e4, q[2]);
                    __m512 e = _mm512_mul_ps(_mm512_set1_ps(2.0f), _mm512_sub_ps(q[3], q[1]));
                    __m512 t0 = _mm512_fmadd_ps(_mm512_set1_ps(4.0f), q[0], _mm512_fnmadd_ps(_mm512_set1_ps(5.0f), q[2], e4));
                    __m512 t5 = _mm512_fmadd_ps(_mm512_set1_ps(4.0f), q[1], _mm512_fnmadd_ps(_mm512_set1_ps(5.0f), q[3], e5));
                    __mmask16 m = dt_wino_mask(ntx - u);
                    int64_t vs = k->vs;
                    _mm512_mask_storeu_ps(vi + u, m, t0);
                    _mm512_mask_storeu_ps(vi + vs + u, m, _mm512_add_ps(a, b));
                    _mm512_mask_storeu_ps(vi + 2 * vs + u, m, _mm512_sub_ps(a, b));
                    _mm512_mask_storeu_ps(vi + 3 * vs + u, m, _mm512_add_ps(cc, e));
                    _mm512_mask_storeu_ps(vi + 4 * vs + u, m, _mm512_sub_ps(cc, e));
                    _mm512_mask_storeu_ps(vi + 5 * vs + u, m, t5);
                }
            }
        }
    }
}

/* Where columns [col, col + n) (n <= 16) of pair row kp of a position's V go in the packed
 * bfloat16 B layout (winograd.h): 48-column panels over all k2 / 2 pair rows, the last one
 * ld = its columns rounded up to 16 wide, a column's pair one 32-bit word. Sixteen columns
 * may straddle two panels: the first n1 words at off[0], the rest at off[1]. The same for
 * every position, so computed once for the 36. */
typedef struct {
    int64_t off[2];     /* in 32-bit words from the position's start */
    __mmask16 m[2];
    int n1;
} dt_wino_pairs_at;

static inline int64_t dt_wino_panel_ld(int64_t T, int64_t p)
{
    return T - 48 * p >= 48 ? 48 : (T - 48 * p + 15) & ~(int64_t)15;
}

static inline DT_AVX512 dt_wino_pairs_at dt_wino_pairs_where(int64_t T, int64_t k2, int64_t kp, int64_t col, int n)
{
    int64_t p = col / 48, w = col % 48;
    dt_wino_pairs_at a;
    a.n1 = 48 - w < n ? (int)(48 - w) : n;
    a.off[0] = p * 24 * k2 + kp * dt_wino_panel_ld(T, p) + w;
    a.m[0] = dt_wino_mask(a.n1);
    a.off[1] = (p + 1) * 24 * k2 + kp * dt_wino_panel_ld(T, p + 1);
    a.m[1] = dt_wino_mask(n - a.n1);
    return a;
}

#define DT_AVX512_BF16 __attribute__((target("avx512f,avx512bw,avx512bf16,fma")))

DT_AVX512_BF16 void dt_wino_input_bf16_avx512(const dt_wino_blk *k, float *tl, int64_t ldl)
{
    const __m512i iota = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    /* k's fields in locals (as dt_wino_input_avx512) */
    const int64_t T = k->ldt, ntx = k->ntx, nty = k->nty, c1 = k->c1, vcol = k->vcol;
    const int64_t k2 = (k->C + 1) & ~(int64_t)1, ps = k->vbs / 2;
    uint32_t *vb = (uint32_t *)(void *)k->vb;
    for (int64_t c = k->c0; c < c1; c += 2) {
        bool odd = c + 1 < c1;
        for (int64_t r = 0; r < nty; r++) {
            dt_wino_col_pass(k, c, c1, r, tl, ldl);
            if (odd) dt_wino_col_pass(k, c + 1, c1, r, tl + 6 * ldl, ldl);
            for (int64_t u = 0; u < ntx; u += 16) {
                int n = ntx - u < 16 ? (int)(ntx - u) : 16;
                dt_wino_pairs_at at = dt_wino_pairs_where(T, k2, c / 2, vcol + r * ntx + u, n);
                __m512i down = _mm512_add_epi32(_mm512_set1_epi32(at.n1), iota);
                for (int i = 0; i < 6; i++) {
                    __m512 e[6], o[6];
                    dt_wino_row6(tl + i * ldl, u, e);
                    if (odd)
                        dt_wino_row6(tl + (6 + i) * ldl, u, o);
                    else
                        for (int j = 0; j < 6; j++) o[j] = _mm512_setzero_ps();
                    uint32_t *pos = vb + 6 * i * ps;
                    for (int j = 0; j < 6; j++, pos += ps) {
                        __m512i d = dt_bf16_pairs(e[j], o[j]);   /* each column's pair (the packer's) */
                        _mm512_mask_storeu_epi32(pos + at.off[0], at.m[0], d);
                        if (at.n1 < n) _mm512_mask_storeu_epi32(pos + at.off[1], at.m[1], _mm512_permutexvar_epi32(down, d));
                    }
                }
            }
        }
    }
}

bool dt_wino_streams(const dt_epilogue *e)
{
    return e && e->c_far && (e->act == DT_ACT_NONE || e->act == DT_ACT_RELU || e->act == DT_ACT_CLIP);
}

/* y[0, n) = act(s + res): the 64-byte lines y covers whole are written non-temporally (no read
 * for ownership of lines the next layer reads from memory anyway), the partial ones at its
 * ends with ordinary masked stores. */
static DT_AVX512 void dt_wino_stream_row(const dt_epilogue *e, float *y, const float *s, const float *res, int64_t n)
{
    /* the residual and activation in lanes as the direct convs apply them (conv_dw.h) */
    __m512 p0 = _mm512_set1_ps(e->p0), p1 = _mm512_set1_ps(e->p1), v;
    int64_t head = (int64_t)((64 - ((uintptr_t)y & 63)) & 63) / 4, j = 0;
    if (head > n) head = n;
    if (head) {
        __mmask16 m = dt_wino_mask(head);
        v = _mm512_maskz_loadu_ps(m, s);
        dt_dw_epi(&v, 1, e->act, p0, p1, res, 0, m);
        _mm512_mask_storeu_ps(y, m, v);
        j = head;
    }
    for (; j + 16 <= n; j += 16) {
        v = _mm512_loadu_ps(s + j);
        dt_dw_epi(&v, 1, e->act, p0, p1, res ? res + j : NULL, 0, 0xffff);
        _mm512_stream_ps(y + j, v);
    }
    if (j < n) {
        __mmask16 m = dt_wino_mask(n - j);
        v = _mm512_maskz_loadu_ps(m, s + j);
        dt_dw_epi(&v, 1, e->act, p0, p1, res ? res + j : NULL, 0, m);
        _mm512_mask_storeu_ps(y + j, m, v);
    }
}

DT_AVX512 void dt_wino_output_avx512(const dt_wino_blk *k, const float *o)
{
    int64_t T = k->ldt, ntx = k->ntx, os = k->os;
    int64_t width = k->OW - k->ox0 < 4 * ntx ? k->OW - k->ox0 : 4 * ntx;
    /* The residual and activation in lanes before the store (dt_dw_epi: the row pass's float
     * operations, so its bits), not a pass over each stored row after (which read and wrote
     * every output again and ran Sigmoid and Silu over 11 to 44-value rows: YOLO's float32
     * Silu). Staged rows (stage) take theirs as they stream. */
    bool lanes = !k->stage && k->epi && dt_dw_epi_in_lanes(k->epi);
    __m512 p0 = _mm512_set1_ps(k->epi ? k->epi->p0 : 0.0f), p1 = _mm512_set1_ps(k->epi ? k->epi->p1 : 0.0f);
    /* v * 0 + nf: NaN from a NaN or infinite v on, 0 otherwise (dt_wino_exact_rerun); four
     * chains, not one FMA's latency a vector */
    __m512 nf[4], zero = _mm512_setzero_ps();
    for (int t = 0; t < 4; t++) nf[t] = zero;
    for (int64_t m = k->m0; m < k->m1; m++) {
        __m512 bias = _mm512_set1_ps(k->bias ? k->bias[m] : 0.0f);
        for (int64_t r = 0; r < k->nty; r++) {
            int64_t rows = k->OH - (k->oy0 + 4 * r);
            if (rows > 4) rows = 4;
            for (int64_t u = 0; u < ntx; u += 16) {
                __mmask16 mt = dt_wino_mask(ntx - u);
                const float *om = o + m * T + r * ntx + u;
                /* Along the rows: s_i = A^T o_i (four vectors each, one per output column
                 * phase q); then along the columns with the same factorization, keeping only
                 * its sums and differences: s0, s5 and a..d of rows 1..4 (24 registers). */
                __m512 s0[4], s5[4], ra[4], rb[4], rc[4], rd[4];
                for (int i = 0; i < 6; i++) {
                    const float *oi = om + (int64_t)i * 6 * os;
                    __m512 o0 = _mm512_maskz_loadu_ps(mt, oi), o1 = _mm512_maskz_loadu_ps(mt, oi + os);
                    __m512 o2 = _mm512_maskz_loadu_ps(mt, oi + 2 * os), o3 = _mm512_maskz_loadu_ps(mt, oi + 3 * os);
                    __m512 o4 = _mm512_maskz_loadu_ps(mt, oi + 4 * os), o5 = _mm512_maskz_loadu_ps(mt, oi + 5 * os);
                    __m512 a = _mm512_add_ps(o1, o2), b = _mm512_sub_ps(o1, o2);
                    __m512 c = _mm512_add_ps(o3, o4), d = _mm512_sub_ps(o3, o4);
                    __m512 t[4] = {
                        _mm512_add_ps(_mm512_add_ps(o0, a), c),
                        _mm512_fmadd_ps(_mm512_set1_ps(2.0f), d, b),
                        _mm512_fmadd_ps(_mm512_set1_ps(4.0f), c, a),
                        _mm512_add_ps(_mm512_fmadd_ps(_mm512_set1_ps(8.0f), d, b), o5),
                    };
                    for (int q = 0; q < 4; q++) {
                        if (i == 0) s0[q] = t[q];
                        else if (i == 5) s5[q] = t[q];
                        else if (i == 1) ra[q] = t[q], rb[q] = t[q];
                        else if (i == 2) ra[q] = _mm512_add_ps(ra[q], t[q]), rb[q] = _mm512_sub_ps(rb[q], t[q]);
                        else if (i == 3) rc[q] = t[q], rd[q] = t[q];
                        else rc[q] = _mm512_add_ps(rc[q], t[q]), rd[q] = _mm512_sub_ps(rd[q], t[q]);
                    }
                }
                __m512 acc[4][4];
                for (int q = 0; q < 4; q++) {
                    acc[0][q] = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(s0[q], ra[q]), rc[q]), bias);
                    acc[1][q] = _mm512_add_ps(_mm512_fmadd_ps(_mm512_set1_ps(2.0f), rd[q], rb[q]), bias);
                    acc[2][q] = _mm512_add_ps(_mm512_fmadd_ps(_mm512_set1_ps(4.0f), rc[q], ra[q]), bias);
                    acc[3][q] = _mm512_add_ps(_mm512_add_ps(_mm512_fmadd_ps(_mm512_set1_ps(8.0f), rd[q], rb[q]), s5[q]), bias);
                }
                for (int ar = 0; ar < rows; ar++) {
                    for (int t = 0; t < 4; t++) nf[t] = _mm512_fmadd_ps(acc[ar][t], zero, nf[t]);
                    dt_wino_join4(acc[ar]);
                    int64_t yoff = (m * k->OH + k->oy0 + 4 * r + ar) * k->OW + k->ox0 + 4 * u;
                    float *y = k->stage ? k->stage + ar * 4 * ntx + 4 * u : k->y + yoff;
                    int64_t left = width - 4 * u;
                    if (lanes) {
                        if (k->res) {
                            const float *rr = k->res + yoff;
                            for (int t = 0; t < 4; t++)
                                acc[ar][t] = _mm512_add_ps(acc[ar][t],
                                                           _mm512_maskz_loadu_ps(dt_wino_mask(left - 16 * t), rr + 16 * t));
                        }
                        dt_dw_epi(acc[ar], 4, k->epi->act, p0, p1, NULL, 0, 0xffff);
                    }
                    for (int t = 0; t < 4; t++) _mm512_mask_storeu_ps(y + 16 * t, dt_wino_mask(left - 16 * t), acc[ar][t]);
                }
            }
            if (k->stage)
                for (int64_t ar = 0; ar < rows; ar++) {
                    int64_t off = (m * k->OH + k->oy0 + 4 * r + ar) * k->OW + k->ox0;
                    dt_wino_stream_row(k->epi, k->y + off, k->stage + ar * 4 * ntx, k->res ? k->res + off : NULL, width);
                }
            else if (k->epi && !lanes)
                for (int64_t ar = 0; ar < rows; ar++) {
                    int64_t off = (m * k->OH + k->oy0 + 4 * r + ar) * k->OW + k->ox0;
                    dt_epilogue_apply(k->epi, k->y + off, k->res ? k->res + off : NULL, width);
                }
        }
    }
    __m512 nfs = _mm512_add_ps(_mm512_add_ps(nf[0], nf[1]), _mm512_add_ps(nf[2], nf[3]));
    if (_mm512_cmp_ps_mask(nfs, nfs, _CMP_UNORD_Q)) __atomic_store_n(k->nonfinite, 1, __ATOMIC_RELAXED);
    /* The non-temporal stores ordered before whatever reads y after the pool's join. */
    if (k->stage) _mm_sfence();
}
