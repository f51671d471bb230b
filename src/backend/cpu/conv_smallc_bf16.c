/* The few-input-channel direct conv (conv_smallc.c) on bfloat16 weights, in vdpbf16ps: the
 * stems of a --bf16 engine (mobilenet_v2's and seg_lraspp's 3x3 stride 2, resnet50's 7x7).
 *
 * vdpbf16ps multiplies pairs, and at stride 2 the taps kx and kx + 1 of 16 outputs are the
 * pairs of 32 consecutive padded columns: a band's input rows are converted to bfloat16 as
 * they are (no split into even and odd columns), and each pair of taps is one load, 16
 * multiply-adds of pairs beside the float32 pass's 2 x 16 FMAs. At stride 1 a row is stored as
 * the pairs (column x, column x + 1), twice its columns, so that pair (kx, kx + 1) of 16
 * outputs is again one load. An odd kernel leaves each (c, ky) row a lone last tap kx = KS - 1:
 * those of two rows make one pair (one row's pairs read a word early, its tap then in each
 * dword's high word, blended with the other row's, whose tap is in the low word), so a 3x3
 * stem over 3 channels takes 9 + 5 pairs a vector of outputs, not 9 x 2 with a zero weight in
 * each second pair (stems 11-17% faster: DESIGN, session 43). The passes, the bands and
 * the store are the float32 kernel's.
 *
 * Each output: its bias, then per (c, ky) and whole pair of taps one vdpbf16ps, then per two
 * (c, ky) rows their last taps in one (the two products, exact in float32, each added with a
 * rounding), on inputs and weights rounded to bfloat16 (to nearest even, denormals to zero);
 * then the epilogue. No tap outside the window is multiplied (an odd count's last pair takes a
 * zero row's word, times a zero weight). The same bits on any thread count. */
#include "backend/cpu/conv_smallc.h"
#include "backend/cpu/gemm.h"
#include "backend/cpu/simd_load.h"
#include "core/status.h"

#include <immintrin.h>
#include <string.h>

#define DT_SC16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,fma")))

/* Weight pairs per output channel: KS / 2 whole pairs per (c, ky), then the lone taps kx =
 * KS - 1 of the C x KS rows two at a time. At most C x KS x (KS + 1) / 2, the float32 table's
 * size in dwords. */
static inline int64_t dt_smallc_bf16_entries(int C, int KS) { return C * KS * (KS / 2) + (C * KS + 1) / 2; }

int64_t dt_smallc_bf16_row(const dt_conv_geom *g)
{
    /* a pass reads 64 outputs' pairs from its first output: at stride 2 pair q of output x
     * is pair x + q, at stride 1 pair x + 2q */
    int64_t reach = g->s[1] == 2 ? (g->k[1] - 1) / 2 : g->k[1] - 1;
    return ((g->out[1] + 63) / 64 * 64 + reach + 15) / 16 * 16;
}

/* Input rows [iy0, iy1) of every channel of image b as rows of pairs into xs (rows of
 * j->half dwords, dt_smallc_band_rows per channel): at stride 2 pair i = padded columns (2i,
 * 2i + 1), at stride 1 (i, i + 1); masked loads give the padding's zeros (dt_dw_row_load). */
DT_SC16 static void dt_smallc_bf16_rows(const dt_smallc_job *j, uint32_t *xs, int64_t b, int64_t iy0, int64_t iy1)
{
    const dt_conv_geom *g = j->g;
    int64_t iw = g->in[1], np = j->half, nr = dt_smallc_band_rows(g);
    /* cvtne2ps2bf16 puts the first vector's 16 in words 0-15, the second's in 16-31: at
     * stride 2 those are the pairs already; at stride 1 dt_bf16_pairs interleaves them */
    for (int64_t c = 0; c < g->c; c++)
        for (int64_t iy = iy0; iy < iy1; iy++) {
            const float *x = j->a->x + ((b * g->c + c) * g->in[0] + iy) * iw;
            uint32_t *d = xs + (c * nr + iy - iy0) * np;
            for (int64_t i = 0; i < np; i += 16) {
                if (g->s[1] == 2) {
                    int64_t c0 = 2 * i - g->pb[1];   /* the image column of padded column 2i */
                    __m512 v0 = dt_dw_row_load(x, c0, iw), v1 = dt_dw_row_load(x, c0 + 16, iw);
                    _mm512_storeu_si512(d + i, (__m512i)_mm512_cvtne2ps_pbh(v1, v0));
                } else {
                    int64_t c0 = i - g->pb[1];       /* the image column of padded column i */
                    __m512 v0 = dt_dw_row_load(x, c0, iw), v1 = dt_dw_row_load(x, c0 + 1, iw);
                    _mm512_storeu_si512(d + i, dt_bf16_pairs(v0, v1));
                }
            }
        }
}

/* The pairs of one pass: nv vectors of 16 outputs of row oy from column ox, DT_SMALLC_CH
 * output channels (weight pairs from wb); rows: the pair rows of the pass's (c, ky) taps, each
 * at column ox (the zero row for an input row outside the image). First each (c, ky)'s whole
 * pairs (kx, kx + 1), then the last taps kx = KS - 1 of two (c, ky) rows e, e + 1 at once: the
 * pair row of e read a word early (its lone tap in the high word of each dword) blended with
 * the pair row of e + 1 (its lone tap in the low word), so no pair multiplies a zero weight. */
static inline __attribute__((always_inline)) DT_SC16 void
dt_smallc_bf16_taps(const uint32_t *const *rows, const uint32_t *wb, __m512 acc[DT_SMALLC_NV][DT_SMALLC_CH],
                    const int C, const int KS, const int S, const int nv)
{
    const int QM = KS / 2, E = C * KS;
    /* the pair holding the lone tap (low word) of output 0: pairs of two columns at stride
     * 2, of each column at stride 1 */
    const int pl = S == 2 ? QM : KS - 1;
#pragma GCC unroll 1
    for (int e = 0; e < E; e++) {
        const uint32_t *h = rows[e], *wk = wb + e * QM * DT_SMALLC_MB;
#pragma GCC unroll 3
        for (int q = 0; q < QM; q++) {
            __m512i t[DT_SMALLC_NV];
#pragma GCC unroll 4
            for (int v = 0; v < nv; v++) t[v] = _mm512_loadu_si512(h + (S == 2 ? q : 2 * q) + 16 * v);
#pragma GCC unroll 8
            for (int i = 0; i < DT_SMALLC_CH; i++) {
                __m512bh w = (__m512bh)_mm512_set1_epi32((int)wk[q * DT_SMALLC_MB + i]);
#pragma GCC unroll 4
                for (int v = 0; v < nv; v++) acc[v][i] = _mm512_dpbf16_ps(acc[v][i], w, (__m512bh)t[v]);
            }
        }
    }
    const uint32_t *wl = wb + E * QM * DT_SMALLC_MB;
#pragma GCC unroll 1
    for (int e = 0; e < E; e += 2) {
        const uint16_t *hi = (const uint16_t *)(const void *)(rows[e] + pl) - 1;
        const uint32_t *lo = rows[e + 1] + pl;
        __m512i t[DT_SMALLC_NV];
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++)
            t[v] = _mm512_mask_blend_epi16(0xAAAAAAAAu, _mm512_loadu_si512(lo + 16 * v),
                                           _mm512_loadu_si512(hi + 32 * v));
        const uint32_t *wk = wl + e / 2 * DT_SMALLC_MB;
#pragma GCC unroll 8
        for (int i = 0; i < DT_SMALLC_CH; i++) {
            __m512bh w = (__m512bh)_mm512_set1_epi32((int)wk[i]);
#pragma GCC unroll 4
            for (int v = 0; v < nv; v++) acc[v][i] = _mm512_dpbf16_ps(acc[v][i], w, (__m512bh)t[v]);
        }
    }
}

/* Block mb of output rows [oy0, oy1) of image b, as dt_smallc_split_block: its loops again,
 * because GCC inlines a function only into one whose target has all of its features (the
 * float32 block would have to be compiled for AVX512-BF16 to take these taps). */
static inline __attribute__((always_inline)) DT_SC16 void
dt_smallc_bf16_block(const dt_smallc_job *j, const uint32_t *xs, int64_t iy0, int64_t b, int64_t mb, int64_t oy0,
                     int64_t oy1, const int C, const int KS, const int S)
{
    int64_t nm = j->g->m - mb * DT_SMALLC_MB, ow = j->g->out[1];
    const uint32_t *wt = (const uint32_t *)(const void *)j->wt + mb * dt_smallc_bf16_entries(C, KS) * DT_SMALLC_MB;
    float bias[DT_SMALLC_MB];
    dt_smallc_bias(j, mb, bias);
    enum { CH = DT_SMALLC_CH, NV = DT_SMALLC_NV };
    const dt_conv_geom *g = j->g;
    int64_t ih = g->in[0], np = j->half, nr = dt_smallc_band_rows(g);
    const uint32_t *zero = (const uint32_t *)(const void *)j->zero;
    for (int64_t oy = oy0; oy < oy1; oy++) {
        /* the pair rows of taps (c, ky) at column 0, then the zero row (the lone taps' partner
         * of an odd count) */
        const uint32_t *row0[DT_SMALLC_MAX_C * 7 + 1], *rows[DT_SMALLC_MAX_C * 7 + 1];
        for (int c = 0; c < C; c++)
            for (int ky = 0; ky < KS; ky++) {
                int64_t iy = oy * S + ky - g->pb[0];
                row0[c * KS + ky] = iy < 0 || iy >= ih ? zero : xs + (c * nr + iy - iy0) * np;
            }
        row0[C * KS] = zero;
        for (int64_t ox = 0; ox < ow; ox += 16 * NV) {
            for (int e = 0; e <= C * KS; e++) rows[e] = row0[e] + ox;
            for (int64_t hb = 0; hb < DT_SMALLC_MB / CH && hb * CH < nm; hb++) {
                __m512 acc[NV][CH];
                dt_smallc_pass_start(j, acc, bias, b, mb, hb, oy, ox);
                const uint32_t *wb = wt + hb * CH;
                __asm__("" : "+r"(wb));   /* as dt_smallc_split_block's */
                int64_t nvec = (ow - ox + 15) / 16;
                if (nvec >= NV)
                    dt_smallc_bf16_taps(rows, wb, acc, C, KS, S, NV);
                else if (nvec == 3)
                    dt_smallc_bf16_taps(rows, wb, acc, C, KS, S, 3);
                else if (nvec == 2)
                    dt_smallc_bf16_taps(rows, wb, acc, C, KS, S, 2);
                else
                    dt_smallc_bf16_taps(rows, wb, acc, C, KS, S, 1);
                dt_smallc_pass_store(j, acc, b, mb, hb, oy, ox);
            }
        }
    }
}

typedef void (*dt_smallc_bf16_fn)(const dt_smallc_job *, const uint32_t *, int64_t, int64_t, int64_t, int64_t,
                                  int64_t);

#define DT_SC16_FN(C, KS, S)                                                                                 \
    DT_SC16 static void dt_smallc_bf16_##C##_##KS##_##S(const dt_smallc_job *j, const uint32_t *xs,           \
                                                        int64_t iy0, int64_t b, int64_t mb, int64_t oy0,      \
                                                        int64_t oy1)                                         \
    {                                                                                                        \
        dt_smallc_bf16_block(j, xs, iy0, b, mb, oy0, oy1, C, KS, S);                                         \
    }
#define DT_SC16_FNS(KS, S) DT_SC16_FN(1, KS, S) DT_SC16_FN(2, KS, S) DT_SC16_FN(3, KS, S) DT_SC16_FN(4, KS, S)
DT_SC16_FNS(3, 2)
DT_SC16_FNS(5, 2)
DT_SC16_FNS(7, 2)
DT_SC16_FNS(3, 1)
DT_SC16_FNS(5, 1)
DT_SC16_FNS(7, 1)

static void dt_smallc_bf16_part(void *arg, int64_t begin, int64_t end, int tid)
{
    const dt_smallc_job *j = arg;
    const dt_conv_geom *g = j->g;
    /* by stride (2, 1), kernel size (3, 5, 7), then input channels */
    static const dt_smallc_bf16_fn fns[2][3][DT_SMALLC_MAX_C] = {
        {{dt_smallc_bf16_1_3_2, dt_smallc_bf16_2_3_2, dt_smallc_bf16_3_3_2, dt_smallc_bf16_4_3_2},
         {dt_smallc_bf16_1_5_2, dt_smallc_bf16_2_5_2, dt_smallc_bf16_3_5_2, dt_smallc_bf16_4_5_2},
         {dt_smallc_bf16_1_7_2, dt_smallc_bf16_2_7_2, dt_smallc_bf16_3_7_2, dt_smallc_bf16_4_7_2}},
        {{dt_smallc_bf16_1_3_1, dt_smallc_bf16_2_3_1, dt_smallc_bf16_3_3_1, dt_smallc_bf16_4_3_1},
         {dt_smallc_bf16_1_5_1, dt_smallc_bf16_2_5_1, dt_smallc_bf16_3_5_1, dt_smallc_bf16_4_5_1},
         {dt_smallc_bf16_1_7_1, dt_smallc_bf16_2_7_1, dt_smallc_bf16_3_7_1, dt_smallc_bf16_4_7_1}}};
    dt_smallc_bf16_fn fn = fns[g->s[0] == 1][(g->k[0] - 3) / 2][g->c - 1];
    uint32_t *xs = (uint32_t *)(void *)j->split + tid * j->band;
    for (int64_t u = begin; u < end; u++) {
        int64_t b, oy0, oy1, iy0, iy1;
        dt_smallc_band(j, u, &b, &oy0, &oy1, &iy0, &iy1);
        dt_smallc_bf16_rows(j, xs, b, iy0, iy1);
        for (int64_t mb = 0; mb < j->blocks; mb++) fn(j, xs, iy0, b, mb, oy0, oy1);
    }
}

ductile_status dt_cpu_conv_smallc_bf16(const dt_conv_geom *g, const dt_conv_args *a, dt_pool *pool)
{
    /* The table from the GEMM's bfloat16 panels (dt_gemm_pack_a_half): row m's weight k at
     * panel m / MR, k pair k / 2, lane 2 (m % MR) + k % 2; the rounding the GEMM tactics use.
     * Per block of 16 output channels: the whole pairs (kx, kx + 1) of each (c, ky), then the
     * lone taps kx = KS - 1 of (c, ky) rows e + 1 (low) and e (high) for even e. */
    enum { MR = DT_GEMM_MR };
    int64_t KS = g->k[0], QM = KS / 2, E = g->c * KS, K = E * KS, k2 = (K + 1) & ~(int64_t)1;
    int64_t blocks = dt_smallc_blocks(g), per = dt_smallc_bf16_entries((int)g->c, (int)KS);
    uint32_t *wt = a->scratch;
    for (int64_t mb = 0; mb < blocks; mb++)
        for (int64_t i = 0; i < DT_SMALLC_MB; i++) {
            int64_t m = mb * DT_SMALLC_MB + i;
            const uint16_t *p = m < g->m ? a->w_bf16 + m / MR * MR * k2 + 2 * (m % MR) : NULL;
            /* weight k = (c, ky, kx), 0 past M or past the taps */
#define DT_SC16_W(k) (p && (k) >= 0 ? (uint32_t)p[((k) & ~(int64_t)1) * MR + (k) % 2] : 0u)
            uint32_t *blk = wt + mb * per * DT_SMALLC_MB + i;
            for (int64_t e = 0; e < E; e++)
                for (int64_t q = 0; q < QM; q++) {
                    int64_t k = e * KS + 2 * q;
                    blk[(e * QM + q) * DT_SMALLC_MB] = DT_SC16_W(k) | DT_SC16_W(k + 1) << 16;
                }
            for (int64_t e = 0; e < E; e += 2)
                blk[(E * QM + e / 2) * DT_SMALLC_MB] =
                    DT_SC16_W(e + 1 < E ? (e + 1) * KS + KS - 1 : -1) | DT_SC16_W(e * KS + KS - 1) << 16;
#undef DT_SC16_W
        }
    int64_t np = dt_smallc_bf16_row(g);
    float *zero = (float *)(void *)((char *)a->scratch + dt_smallc_table_bytes(g));
    memset(zero, 0, (size_t)np * sizeof *zero);
    dt_smallc_job j = {.g = g, .a = a, .wt = (const float *)(const void *)wt, .zero = zero, .split = zero + np,
                       .half = np, .band = g->c * dt_smallc_band_rows(g) * np, .blocks = blocks,
                       .row_parts = (g->out[0] + DT_SMALLC_BAND - 1) / DT_SMALLC_BAND,
                       .epi_in_store = a->epi && dt_dw_epi_in_lanes(a->epi),
                       .pf_out = (size_t)(g->batch * g->m * g->out[0] * g->out[1]) * sizeof(float) >= DT_SMALLC_FAR_BYTES};
    dt_parallel_for(pool, g->batch * j.row_parts, 1, dt_smallc_bf16_part, &j);
    return DUCTILE_OK;
}
