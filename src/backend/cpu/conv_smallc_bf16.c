/* The few-input-channel direct conv (conv_smallc.c) on bfloat16 weights, in vdpbf16ps: the
 * stems of a --bf16 engine (mobilenet_v2's and seg_lraspp's 3x3 stride 2, resnet50's 7x7).
 *
 * vdpbf16ps multiplies pairs, and at stride 2 the taps kx and kx + 1 of 16 outputs are the
 * pairs of 32 consecutive padded columns: a band's input rows are converted to bfloat16 as
 * they are (no split into even and odd columns), and each pair of taps is one load, 16
 * multiply-adds of pairs beside the float32 pass's 2 x 16 FMAs (3x3: 2 pairs for 3 taps, the
 * last pair's second weight 0; 7x7: 4 for 7). At stride 1 a row is stored as the pairs
 * (column x, column x + 1), twice its columns, so that pair (kx, kx + 1) of 16 outputs is
 * again one load. The passes, the bands and the store are the float32 kernel's.
 *
 * Each output: its bias, then per (c, ky) and pair of taps one vdpbf16ps (the two products,
 * exact in float32, each added with a rounding), on inputs and weights rounded to bfloat16
 * (to nearest even, denormals to zero); then the epilogue. The same bits on any thread
 * count. */
#include "backend/cpu/conv_smallc.h"
#include "backend/cpu/gemm.h"
#include "backend/cpu/simd_load.h"
#include "core/status.h"

#include <immintrin.h>
#include <string.h>

#define DT_SC16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,fma")))

/* Pairs of taps per kernel row. */
static inline int dt_smallc_pairs(int ks) { return (ks + 1) / 2; }

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
 * output channels (weight pairs from wb); xs: the band's rows of pairs from input row iy0. */
static inline __attribute__((always_inline)) DT_SC16 void
dt_smallc_bf16_taps(const dt_smallc_job *j, const uint32_t *xs, int64_t iy0, int64_t oy, int64_t ox,
                    const uint32_t *wb, __m512 acc[DT_SMALLC_NV][DT_SMALLC_CH], const int C, const int KS, const int S,
                    const int nv)
{
    const dt_conv_geom *g = j->g;
    int64_t ih = g->in[0], np = j->half, nr = dt_smallc_band_rows(g);
    const int QS = dt_smallc_pairs(KS);
    const uint32_t *zero = (const uint32_t *)(const void *)j->zero;
#pragma GCC unroll 1
    for (int c = 0; c < C; c++)
#pragma GCC unroll 1
        for (int ky = 0; ky < KS; ky++) {
            int64_t iy = oy * S + ky - g->pb[0];
            const uint32_t *wk = wb + (c * KS + ky) * QS * DT_SMALLC_MB;
            const uint32_t *h = (iy < 0 || iy >= ih ? zero : xs + (c * nr + iy - iy0) * np) + ox;
#pragma GCC unroll 4
            for (int q = 0; q < QS; q++) {
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
}

/* Block mb of output rows [oy0, oy1) of image b, as dt_smallc_split_block: its loops again,
 * because GCC inlines a function only into one whose target has all of its features (the
 * float32 block would have to be compiled for AVX512-BF16 to take these taps). */
static inline __attribute__((always_inline)) DT_SC16 void
dt_smallc_bf16_block(const dt_smallc_job *j, const uint32_t *xs, int64_t iy0, int64_t b, int64_t mb, int64_t oy0,
                     int64_t oy1, const int C, const int KS, const int S)
{
    int64_t nm = j->g->m - mb * DT_SMALLC_MB, ow = j->g->out[1];
    const uint32_t *wt = (const uint32_t *)(const void *)j->wt + mb * C * KS * dt_smallc_pairs(KS) * DT_SMALLC_MB;
    float bias[DT_SMALLC_MB];
    dt_smallc_bias(j, mb, bias);
    enum { CH = DT_SMALLC_CH, NV = DT_SMALLC_NV };
    for (int64_t oy = oy0; oy < oy1; oy++)
        for (int64_t ox = 0; ox < ow; ox += 16 * NV)
            for (int64_t hb = 0; hb < DT_SMALLC_MB / CH && hb * CH < nm; hb++) {
                __m512 acc[NV][CH];
                dt_smallc_pass_start(j, acc, bias, b, mb, hb, oy, ox);
                const uint32_t *wb = wt + hb * CH;
                __asm__("" : "+r"(wb));   /* as dt_smallc_split_block's */
                int64_t nvec = (ow - ox + 15) / 16;
                if (nvec >= NV)
                    dt_smallc_bf16_taps(j, xs, iy0, oy, ox, wb, acc, C, KS, S, NV);
                else if (nvec == 3)
                    dt_smallc_bf16_taps(j, xs, iy0, oy, ox, wb, acc, C, KS, S, 3);
                else if (nvec == 2)
                    dt_smallc_bf16_taps(j, xs, iy0, oy, ox, wb, acc, C, KS, S, 2);
                else
                    dt_smallc_bf16_taps(j, xs, iy0, oy, ox, wb, acc, C, KS, S, 1);
                dt_smallc_pass_store(j, acc, b, mb, hb, oy, ox);
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
     * panel m / MR, k pair k / 2, lane 2 (m % MR) + k % 2; the rounding the GEMM tactics use. */
    enum { MR = DT_GEMM_MR };
    int64_t KS = g->k[0], QS = dt_smallc_pairs((int)KS), K = g->c * KS * KS, k2 = (K + 1) & ~(int64_t)1;
    int64_t blocks = dt_smallc_blocks(g);
    uint32_t *wt = a->scratch;
    for (int64_t mb = 0; mb < blocks; mb++)
        for (int64_t c = 0; c < g->c; c++)
            for (int64_t ky = 0; ky < KS; ky++)
                for (int64_t q = 0; q < QS; q++)
                    for (int64_t i = 0; i < DT_SMALLC_MB; i++) {
                        int64_t m = mb * DT_SMALLC_MB + i, k = (c * KS + ky) * KS + 2 * q;
                        const uint16_t *p = a->w_bf16 + m / MR * MR * k2 + 2 * (m % MR);
                        uint32_t lo = m < g->m ? p[(k & ~(int64_t)1) * MR + k % 2] : 0;
                        uint32_t hi = m < g->m && 2 * q + 1 < KS ? p[((k + 1) & ~(int64_t)1) * MR + (k + 1) % 2] : 0;
                        wt[(((mb * g->c + c) * KS + ky) * QS + q) * DT_SMALLC_MB + i] = lo | hi << 16;
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
