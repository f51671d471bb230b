/* Direct 3x3 stride-2 convolution with the output pixels broadcast and the output channels in
 * the vector lanes: a tile is 8 output pixels of a row x 48 output channels (24 accumulators),
 * and per tap (c, ky, kx) it broadcasts the 8 input pixels the tile reads (2 apart: the stride
 * costs nothing) and loads the tap's 48 weights from the GEMM's packed A (strips of 8 output
 * channels, [k][8]: two strips' 256-bit rows make one vector), 24 FMAs for 14 loads. The padded
 * conv (conv_padded.c) instead splits the image into its stride phases, computes over the
 * phases' padded width and copies the rows out; here there is no copy either way: yolo's 16 ->
 * 32 at 240x176 0.567 -> 0.471 ms in the network, 64 -> 128 at 60x44 0.504 -> 0.461 (layer
 * minima, 1 thread, Zen 5).
 *
 * Each output: an FMA chain over the taps in (c, ky, kx) order from zero (taps left or right
 * of the image multiply a zero, rows above or below are skipped), + bias, then the epilogue
 * over the stored row as dt_epilogue_apply runs it. Over K <= DT_GEMM_KC taps the padded
 * conv's bits but for the sign of a zero; past that the GEMM sums K blocks apart: a tactic of
 * its own. Rows of the output are split over the threads (as the 1x1s around it split by
 * columns, each core reads mostly what it wrote). Output channels a multiple of 16, float32
 * weights packed as the GEMM's A, AVX-512; else the im2col GEMM runs. */
#include "backend/cpu/conv.h"
#include "backend/cpu/gemm.h"

#include <immintrin.h>
#include <stdbool.h>
#include <stdint.h>

bool dt_cpu_conv_s2_applies(const dt_conv_geom *g)
{
    return g->spatial == 2 && g->group == 1 && g->k[0] == 3 && g->k[1] == 3 && g->s[0] == 2 && g->s[1] == 2 &&
           g->d[0] == 1 && g->d[1] == 1 && g->m % 16 == 0 && g->m > 0;
}

#define DT_S2_AVX512 __attribute__((target("avx512f,avx512dq,fma")))

typedef struct dt_s2_job {
    const dt_conv_geom *g;
    const dt_conv_args *a;
} dt_s2_job;

/* One tile: output pixels ox0.. ox0 + 7 of row oy of image x (C x H x W), nv vectors of 16
 * output channels from the packed A's strip s0 (wp: strips K * 8 floats apart), into t.
 * edge: some pixel's taps fall left or right of the image (read as zeros). */
static inline __attribute__((always_inline)) DT_S2_AVX512 void
dt_s2_tile(const int nv, const bool edge, const dt_conv_geom *g, const float *x, const float *wp, int64_t oy,
           int64_t ox0, float t[8][48])
{
    int64_t C = g->c, H = g->in[0], W = g->in[1], K = C * 9;
    /* an edge tile's columns, found once: tap kx of pixel i reads column col[kx][i] where
     * in[kx] >> i & 1, else a zero */
    int64_t col[3][8];
    unsigned in[3] = {0, 0, 0};
    for (int kx = 0; kx < 3 && edge; kx++)
        for (int i = 0; i < 8; i++) {
            int64_t ix = 2 * (ox0 + i) + kx - g->pb[1];
            col[kx][i] = ix >= 0 && ix < W ? ix : 0;
            in[kx] |= (unsigned)(ix >= 0 && ix < W) << i;
        }
    __m512 acc[8][3];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++)
#pragma GCC unroll 3
        for (int v = 0; v < nv; v++) acc[i][v] = _mm512_setzero_ps();
    for (int64_t c = 0; c < C; c++)
        for (int ky = 0; ky < 3; ky++) {
            int64_t iy = 2 * oy + ky - g->pb[0];
            if (iy < 0 || iy >= H) continue;
            const float *row = x + (c * H + iy) * W;
#pragma GCC unroll 3
            for (int kx = 0; kx < 3; kx++) {
                const float *wk = wp + ((c * 3 + ky) * 3 + kx) * 8;
                __m512 b[3];
#pragma GCC unroll 3
                for (int v = 0; v < nv; v++)
                    b[v] = _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(wk + 2 * v * K * 8)),
                                              _mm256_loadu_ps(wk + (2 * v + 1) * K * 8), 1);
                int64_t ix0 = 2 * ox0 + kx - g->pb[1];
#pragma GCC unroll 8
                for (int i = 0; i < 8; i++) {
                    __m512 p = _mm512_set1_ps(!edge ? row[ix0 + 2 * i] : in[kx] >> i & 1 ? row[col[kx][i]] : 0.0f);
#pragma GCC unroll 3
                    for (int v = 0; v < nv; v++) acc[i][v] = _mm512_fmadd_ps(p, b[v], acc[i][v]);
                }
            }
        }
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++)
#pragma GCC unroll 3
        for (int v = 0; v < nv; v++) _mm512_storeu_ps(&t[i][16 * v], acc[i][v]);
}

/* The tile's nv * 16 channels x np pixels into y (+ bias), each channel's row np floats. */
static void dt_s2_store(float t[8][48], int nv, int np, const float *bias, float *y, int64_t plane)
{
    for (int j = 0; j < nv * 16; j++) {
        float bj = bias ? bias[j] : 0.0f, *yo = y + j * plane;
        for (int i = 0; i < np; i++) yo[i] = t[i][j] + bj;
    }
}

/* Rows [r0, r1) of the batch's output rows (image r / OH, row r % OH), every channel: panel
 * by panel of 48 output channels, so that a panel's weights (K x 48 floats, 885 KB for
 * resnet50's 512 -> 512) come from memory once per part and from L2 for its other rows (row
 * by row, resnet50's 14x14 -> 7x7 read its 9.4 MB of weights once per row: 1.04 -> 1.20 ms). */
static DT_S2_AVX512 void dt_s2_rows(void *arg, int64_t r0, int64_t r1, int tid)
{
    (void)tid;
    const dt_s2_job *j = arg;
    const dt_conv_geom *g = j->g;
    const dt_conv_args *a = j->a;
    int64_t C = g->c, M = g->m, H = g->in[0], W = g->in[1], OH = g->out[0], OW = g->out[1], K = C * 9;
    int64_t plane = OH * OW;
    float t[8][48];
    for (int64_t m0 = 0; m0 < M; m0 += 48) {
        int nv = M - m0 >= 48 ? 3 : (int)((M - m0) / 16);
        const float *wp = a->w_packed + m0 * K;   /* strip m0 / 8, K * 8 floats a strip */
        for (int64_t r = r0; r < r1; r++) {
            int64_t b = r / OH, oy = r % OH;
            const float *x = a->x + b * C * H * W;
            float *y = a->y + (b * M + m0) * plane + oy * OW;
            for (int64_t ox0 = 0; ox0 < OW; ox0 += 8) {
                bool edge = 2 * ox0 - g->pb[1] < 0 || 2 * (ox0 + 7) + 2 - g->pb[1] >= W;
                if (edge)
                    nv == 3 ? dt_s2_tile(3, true, g, x, wp, oy, ox0, t)
                    : nv == 2 ? dt_s2_tile(2, true, g, x, wp, oy, ox0, t)
                              : dt_s2_tile(1, true, g, x, wp, oy, ox0, t);
                else
                    nv == 3 ? dt_s2_tile(3, false, g, x, wp, oy, ox0, t)
                    : nv == 2 ? dt_s2_tile(2, false, g, x, wp, oy, ox0, t)
                              : dt_s2_tile(1, false, g, x, wp, oy, ox0, t);
                int np = OW - ox0 < 8 ? (int)(OW - ox0) : 8;
                dt_s2_store(t, nv, np, a->bias ? a->bias + m0 : NULL, y + ox0, plane);
            }
        }
    }
    /* the epilogue over the part's rows, as the GEMM's copy-out applies it */
    const dt_epilogue *e = a->epi;
    if (e && (e->act != DT_ACT_NONE || e->res))
        for (int64_t r = r0; r < r1; r++)
            for (int64_t m = 0; m < M; m++) {
                int64_t off = (r / OH * M + m) * plane + r % OH * OW;
                dt_epilogue_apply(e, a->y + off, e->res ? e->res + off : NULL, OW);
            }
}

bool dt_cpu_conv_s2_cpu(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
}

ductile_status dt_cpu_conv_s2(const dt_conv_geom *g, const dt_conv_args *a, dt_pool *pool)
{
    if (!a->w_packed || !dt_cpu_conv_s2_applies(g) || !dt_cpu_conv_s2_cpu())
        return dt_cpu_conv_run_algo(g, a, DT_CONV_IM2COL, pool);
    dt_s2_job j = {g, a};
    dt_parallel_for(pool, g->batch * g->out[0], 1, dt_s2_rows, &j);
    return DUCTILE_OK;
}
