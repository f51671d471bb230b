/* Direct convolution for few input channels: the stems of mobile nets (3 -> 16..32
 * channels, 3x3 stride 2 over the whole image) and of ResNets (3 -> 64, 7x7 stride 2; 5x5
 * too), and at stride 1 superres' first conv (1 -> 64, 5x5; its rows are padded, not split).
 * As a GEMM their K is only 27 (147 for 7x7): the im2col
 * gather of a stride-2 image costs about what the product does, and every B panel is read by
 * a few rows of A. Here each band of output rows first splits the input rows it reads into
 * their even and odd padded columns, in its thread's buffer (in L1/L2), so that each tap
 * vector of 16 outputs at stride 2 is one load; passes of 4 output channels x 64 outputs then
 * multiply each tap into their accumulators, weights broadcast from a small table, and the
 * outputs are stored as NCHW rows with the epilogue in lanes. (A pass over the whole batch
 * first wrote and read back 0.7 MB per 224x224 image, from L3 or memory beyond one image.)
 *
 * Each output: its bias, then fmaf over the taps in (c, ky, kx) order, taps outside the image
 * read as 0; then the epilogue. Not the GEMM's bits (its sums start from zero and add the
 * bias last): a tactic of its own, the same bits on any thread count. */
#include "backend/cpu/conv_smallc.h"
#include "backend/cpu/gemm.h"
#include "core/checked.h"
#include "core/status.h"

#include <immintrin.h>
#include <string.h>

/* Square kernels of 3, 5 or 7 taps at stride 2 or 1 (one compiled body per size, stride and
 * channel count). */
bool dt_cpu_conv_smallc_applies(const dt_conv_geom *g)
{
    return g->spatial == 2 && g->group == 1 && g->c <= DT_SMALLC_MAX_C && g->k[0] == g->k[1] &&
           (g->k[0] == 3 || g->k[0] == 5 || g->k[0] == 7) && g->s[0] == g->s[1] && (g->s[0] == 2 || g->s[0] == 1) &&
           g->d[0] == 1 && g->d[1] == 1;
}

/* A split row's half: the padded columns 2i (or 2i + 1) for i below the output row's
 * whole pairs of vectors plus the kernel's reach, zeros past the image. At stride 1 the row is
 * not split: its first half is the padded row, the output row's whole passes plus the reach. */
static int64_t dt_smallc_half(const dt_conv_geom *g)
{
    if (g->s[1] == 1) return (g->out[1] + 63) / 64 * 64 + g->k[1];
    return (g->out[1] + 31) / 32 * 32 + g->k[1] / 2 + 1;
}

ductile_status dt_cpu_conv_smallc_scratch(const dt_conv_geom *g, int threads, size_t *bytes)
{
    /* the zero row, then each thread's band: its input rows' two halves (float32), or its
     * rows of bfloat16 pairs, 4 bytes a pair (conv_smallc_bf16.c) */
    int64_t row = 2 * dt_smallc_half(g), pairs = dt_smallc_bf16_row(g);
    if (pairs > row) row = pairs;
    size_t z, rows = 1, split;
    if (!dt_mul_size((size_t)(threads > 1 ? threads : 1) * (size_t)g->c, (size_t)dt_smallc_band_rows(g), &split) ||
        !dt_add_size(split, 1, &rows))
        return dt_fail(DUCTILE_ERR_SHAPE, "%d threads' bands are too large", threads);
    if (!dt_mul_size((size_t)row, sizeof(float), &z) || !dt_mul_size(z, rows, &z) ||
        !dt_add_size(z, 63 + dt_smallc_table_bytes(g), bytes))
        return dt_fail(DUCTILE_ERR_SHAPE, "a row of %lld pixels is too large", (long long)g->in[1]);
    *bytes &= ~(size_t)63;
    return DUCTILE_OK;
}

/* The passes over split rows: 4 output channels x 64 outputs of a row a
 * pass, so each tap is 4 loads and 4 broadcasts for 16 FMAs (16 channels x 16 outputs took 17
 * loads for 16 FMAs: bound by loads; 8 x 32, 10 loads: mobilenet_v2's stem 0.144 ms against
 * 0.128, resnet50's 1.046 against 1.018; 8 x 48 and 4 x 80 or more spilled). The loops over c and ky stay rolled (unrolled, the nest
 * was ~30 KB of code a block of outputs ran through). The same operations per output. */
/* The taps of one pass of dt_smallc_split_block: nv (1 to DT_SMALLC_NV) vectors of 16 outputs
 * of row oy from column ox, DT_SMALLC_CH output channels (weights from wb); xs: the band's
 * split rows from input row iy0, nr rows per channel. */
static inline __attribute__((always_inline, target("avx512f,fma"))) void
dt_smallc_split_taps(const dt_smallc_job *j, const float *xs, int64_t iy0, int64_t oy, int64_t ox, const float *wb,
                     __m512 acc[DT_SMALLC_NV][DT_SMALLC_CH], const int C, const int KS, const int S, const int nv)
{
    const dt_conv_geom *g = j->g;
    int64_t ih = g->in[0], half = j->half, nr = dt_smallc_band_rows(g);
#pragma GCC unroll 1
    for (int c = 0; c < C; c++)
#pragma GCC unroll 1
        for (int ky = 0; ky < KS; ky++) {
            /* a row outside the image reads zeros; tap kx of output ox is padded column
             * S ox + kx: at stride 2 half kx % 2, element ox + kx / 2 */
            int64_t iy = oy * S + ky - g->pb[0];
            const float *wk = wb + (c * KS + ky) * KS * DT_SMALLC_MB;
            const float *h = (iy < 0 || iy >= ih ? j->zero : xs + (c * nr + iy - iy0) * 2 * half) + ox;
#pragma GCC unroll 7
            for (int kx = 0; kx < KS; kx++) {
                __m512 t[DT_SMALLC_NV];
#pragma GCC unroll 4
                for (int v = 0; v < nv; v++)
                    t[v] = _mm512_loadu_ps(h + (S == 2 ? (kx % 2) * half + kx / 2 : kx) + 16 * v);
#pragma GCC unroll 8
                for (int i = 0; i < DT_SMALLC_CH; i++) {
                    __m512 w = _mm512_set1_ps(wk[kx * DT_SMALLC_MB + i]);
#pragma GCC unroll 4
                    for (int v = 0; v < nv; v++) acc[v][i] = _mm512_fmadd_ps(w, t[v], acc[v][i]);
                }
            }
        }
}

static inline __attribute__((always_inline, target("avx512f,fma"))) void
dt_smallc_split_block(const dt_smallc_job *j, const float *xs, int64_t iy0, int64_t b, int64_t mb, int64_t oy0,
                      int64_t oy1, const int C, const int KS, const int S)
{
    int64_t nm = j->g->m - mb * DT_SMALLC_MB, ow = j->g->out[1];
    const float *wt = j->wt + mb * C * KS * KS * DT_SMALLC_MB;
    float bias[DT_SMALLC_MB];
    dt_smallc_bias(j, mb, bias);
    enum { CH = DT_SMALLC_CH, NV = DT_SMALLC_NV };
    for (int64_t oy = oy0; oy < oy1; oy++)
        for (int64_t ox = 0; ox < ow; ox += 16 * NV)
            for (int64_t hb = 0; hb < DT_SMALLC_MB / CH && hb * CH < nm; hb++) {
                __m512 acc[NV][CH];
                dt_smallc_pass_start(j, acc, bias, b, mb, hb, oy, ox);
                /* An opaque copy of the table's address: else GCC hoists all the weight addresses
                 * out of the loops and reloads each from the stack. */
                const float *wb = wt + hb * CH;
                __asm__("" : "+r"(wb));
                /* a row's last pass computes only the vectors it has */
                int64_t nvec = (ow - ox + 15) / 16;
                if (nvec >= NV)
                    dt_smallc_split_taps(j, xs, iy0, oy, ox, wb, acc, C, KS, S, NV);
                else if (NV > 3 && nvec == 3)
                    dt_smallc_split_taps(j, xs, iy0, oy, ox, wb, acc, C, KS, S, 3);
                else if (NV > 2 && nvec == 2)
                    dt_smallc_split_taps(j, xs, iy0, oy, ox, wb, acc, C, KS, S, 2);
                else
                    dt_smallc_split_taps(j, xs, iy0, oy, ox, wb, acc, C, KS, S, 1);
                dt_smallc_pass_store(j, acc, b, mb, hb, oy, ox);
            }
}

/* Block mb of output rows [oy0, oy1) of image b; xs and iy0 as dt_smallc_split_taps'. */
#define DT_SMALLC_FN(C, KS, S)                                                                             \
    __attribute__((target("avx512f,fma"))) static void dt_smallc_rows_##C##_##KS##_##S(                   \
        const dt_smallc_job *j, const float *xs, int64_t iy0, int64_t b, int64_t mb, int64_t oy0, int64_t oy1) \
    {                                                                                                      \
        dt_smallc_split_block(j, xs, iy0, b, mb, oy0, oy1, C, KS, S);                                      \
    }
#define DT_SMALLC_FNS(KS, S) DT_SMALLC_FN(1, KS, S) DT_SMALLC_FN(2, KS, S) DT_SMALLC_FN(3, KS, S) DT_SMALLC_FN(4, KS, S)
DT_SMALLC_FNS(3, 2)
DT_SMALLC_FNS(5, 2)
DT_SMALLC_FNS(7, 2)
DT_SMALLC_FNS(3, 1)
DT_SMALLC_FNS(5, 1)
DT_SMALLC_FNS(7, 1)

/* Input rows [iy0, iy1) of every channel of image b split into their padded even and odd
 * columns, into xs (dt_smallc_split_taps' layout): 16 of each from 32 padded columns, masked
 * loads giving the padding's zeros at the row's ends only (dt_dw_row_load: yolo's 3 -> 16
 * stem at 480x480, cold input, 1 thread, Zen 5: split 0.356 -> 0.142 ms, the conv 0.649 ->
 * 0.445). At stride 1 each row padded into the first half. */
__attribute__((target("avx512f"))) static void dt_smallc_split_band(const dt_smallc_job *j, float *xs, int64_t b,
                                                                    int64_t iy0, int64_t iy1)
{
    const dt_conv_geom *g = j->g;
    int64_t iw = g->in[1], half = j->half, nr = dt_smallc_band_rows(g);
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    for (int64_t c = 0; c < g->c; c++)
        for (int64_t iy = iy0; iy < iy1; iy++) {
            const float *x = j->a->x + ((b * g->c + c) * g->in[0] + iy) * iw;
            float *e = xs + (c * nr + iy - iy0) * 2 * half, *o = e + half;
            for (int64_t i = 0; i < half && g->s[1] == 1; i += 16) {
                int64_t c0 = i - g->pb[1];   /* the image column of padded column i */
                __mmask16 m = half - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (half - i)) - 1);
                _mm512_mask_storeu_ps(e + i, m, dt_dw_row_load(x, c0, iw));
            }
            for (int64_t i = 0; i < half && g->s[1] == 2; i += 16) {
                int64_t c0 = 2 * i - g->pb[1];   /* the image column of padded column 2i */
                __m512 v0 = dt_dw_row_load(x, c0, iw), v1 = dt_dw_row_load(x, c0 + 16, iw);
                __mmask16 m = half - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (half - i)) - 1);
                _mm512_mask_storeu_ps(e + i, m, _mm512_permutex2var_ps(v0, even, v1));
                _mm512_mask_storeu_ps(o + i, m, _mm512_permutex2var_ps(v0, odd, v1));
            }
        }
}

static void dt_smallc_part(void *arg, int64_t begin, int64_t end, int tid)
{
    const dt_smallc_job *j = arg;
    const dt_conv_geom *g = j->g;
    /* by stride (2, 1), kernel size (3, 5, 7), then input channels */
    static void (*const fns[2][3][DT_SMALLC_MAX_C])(const dt_smallc_job *, const float *, int64_t, int64_t, int64_t,
                                                    int64_t, int64_t) = {
        {{dt_smallc_rows_1_3_2, dt_smallc_rows_2_3_2, dt_smallc_rows_3_3_2, dt_smallc_rows_4_3_2},
         {dt_smallc_rows_1_5_2, dt_smallc_rows_2_5_2, dt_smallc_rows_3_5_2, dt_smallc_rows_4_5_2},
         {dt_smallc_rows_1_7_2, dt_smallc_rows_2_7_2, dt_smallc_rows_3_7_2, dt_smallc_rows_4_7_2}},
        {{dt_smallc_rows_1_3_1, dt_smallc_rows_2_3_1, dt_smallc_rows_3_3_1, dt_smallc_rows_4_3_1},
         {dt_smallc_rows_1_5_1, dt_smallc_rows_2_5_1, dt_smallc_rows_3_5_1, dt_smallc_rows_4_5_1},
         {dt_smallc_rows_1_7_1, dt_smallc_rows_2_7_1, dt_smallc_rows_3_7_1, dt_smallc_rows_4_7_1}}};
    int64_t S = g->s[0];
    void (*fn)(const dt_smallc_job *, const float *, int64_t, int64_t, int64_t, int64_t, int64_t) =
        fns[S == 1][(g->k[0] - 3) / 2][g->c - 1];
    for (int64_t u = begin; u < end; u++) {
        /* a band of image b over every block: its input rows split once, read by each block */
        int64_t b, oy0, oy1, iy0, iy1;
        dt_smallc_band(j, u, &b, &oy0, &oy1, &iy0, &iy1);
        float *xs = j->split + tid * j->band;
        dt_smallc_split_band(j, xs, b, iy0, iy1);
        for (int64_t mb = 0; mb < j->blocks; mb++) fn(j, xs, iy0, b, mb, oy0, oy1);
    }
}

/* Whether this CPU has AVX512-BF16, asked once (dt_cpu_has_bf16 reads the environment), as
 * the GEMM chooses its kernels once. */
static bool dt_smallc_has_bf16(void)
{
    static int has;   /* 0: not asked yet, 1: no, 2: yes */
    int h = __atomic_load_n(&has, __ATOMIC_RELAXED);
    if (!h) __atomic_store_n(&has, h = dt_cpu_has_bf16() ? 2 : 1, __ATOMIC_RELAXED);
    return h == 2;
}

ductile_status dt_cpu_conv_smallc(const dt_conv_geom *g, const dt_conv_args *a, dt_pool *pool)
{
    __builtin_cpu_init();
    /* bfloat16 weights: the bfloat16 passes where the CPU has them; float16 ones run the GEMM */
    bool bf16 = a->w_bf16 && !a->w_fp16 && dt_smallc_has_bf16();
    if (!__builtin_cpu_supports("avx512f") || (a->w_bf16 && !bf16))
        return dt_cpu_conv_run_algo(g, a, DT_CONV_IM2COL, pool);
    if (!a->scratch) return dt_cpu_conv_run_algo(g, a, DT_CONV_SMALLC, pool); /* allocates it */
    if (!dt_cpu_conv_smallc_applies(g))
        return dt_fail(DUCTILE_ERR_INTERNAL, "the few-channel direct conv does not apply to this convolution");
    if (bf16) return dt_cpu_conv_smallc_bf16(g, a, pool);
    if (!a->w && !a->w_packed) return dt_fail(DUCTILE_ERR_INTERNAL, "the few-channel direct conv has no weights");
    int64_t K = g->c * g->k[0] * g->k[1], blocks = dt_smallc_blocks(g);
    float *wt = a->scratch;
    for (int64_t mb = 0; mb < blocks; mb++)
        for (int64_t k = 0; k < K; k++)
            for (int64_t i = 0; i < DT_SMALLC_MB; i++) {
                int64_t m = mb * DT_SMALLC_MB + i;
                /* packed: panels of DT_GEMM_MR rows, each k's MR values together (gemm.h) */
                float v = m >= g->m ? 0.0f
                          : a->w ? a->w[m * K + k]
                                 : a->w_packed[m / DT_GEMM_MR * DT_GEMM_MR * K + k * DT_GEMM_MR + m % DT_GEMM_MR];
                wt[(mb * K + k) * DT_SMALLC_MB + i] = v;
            }
    float *zero = (float *)(void *)((char *)a->scratch + dt_smallc_table_bytes(g));
    dt_smallc_job j = {.g = g, .a = a, .wt = wt, .zero = zero, .blocks = blocks,
                       .epi_in_store = a->epi && dt_dw_epi_in_lanes(a->epi),
                       .pf_out = (size_t)(g->batch * g->m * g->out[0] * g->out[1]) * sizeof(float) >= DT_SMALLC_FAR_BYTES};
    j.half = dt_smallc_half(g);
    j.split = zero + 2 * j.half;
    j.band = g->c * dt_smallc_band_rows(g) * 2 * j.half;
    memset(zero, 0, (size_t)(2 * j.half) * sizeof *zero);
    j.row_parts = (g->out[0] + DT_SMALLC_BAND - 1) / DT_SMALLC_BAND;
    dt_parallel_for(pool, g->batch * j.row_parts, 1, dt_smallc_part, &j);
    return DUCTILE_OK;
}
