/* Winograd F(2x2, 3x3) in bfloat16 (winograd2.c, FusedConv's `winograd2.bf16`) at odd sizes:
 * channels not multiples of 16, odd images, padding 0, 1 and uneven, several images a block
 * and a partial last block, K past one GEMM block, with bias, residual and Relu, on 1 and 2
 * threads (the same bits). Against a model of what it computes (U and V rounded to bfloat16,
 * the rest in double): within float32 accumulation error; and against the float32 reference
 * convolution: bfloat16's rounding through F(2x2)'s transforms, no more, and some (it did run
 * in bfloat16). */
#include "backend/cpu/conv.h"
#include "backend/cpu/gemm.h"
#include "backend/cpu/winograd.h"
#include "core/alloc.h"
#include "core/threadpool.h"
#include "bf16_testutil.h"
#include "refconv.h"
#include "testutil.h"

#include <string.h>

typedef struct wcase {
    int64_t n, c, m, h, w, pt, pl, pb, pr;
    const char *what;
} wcase;

/* The model: per 2x2 tile, U (from double, rounded to float, then to bfloat16) and V (the
 * kernel's float32 additions, in its order, then bfloat16), their products summed in double,
 * A^T O A in double, + bias + residual, Relu. */
static void model(const wcase *t, const dt_conv_geom *g, const float *x, const float *w, const float *b,
                  const float *r, double *y)
{
    static const double G[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
    int64_t C = t->c, M = t->m, OH = g->out[0], OW = g->out[1];
    float *u = malloc(sizeof(float) * (size_t)(16 * M * C));
    for (int p = 0; p < 16; p++)
        for (int64_t m = 0; m < M; m++)
            for (int64_t c = 0; c < C; c++) {
                double s = 0;
                for (int a = 0; a < 3; a++)
                    for (int e = 0; e < 3; e++) s += G[p / 4][a] * (double)w[(m * C + c) * 9 + a * 3 + e] * G[p % 4][e];
                u[(p * M + m) * C + c] = round_bf16((float)s);
            }
    float *v = malloc(sizeof(float) * (size_t)(16 * C));
    for (int64_t n = 0; n < t->n; n++)
        for (int64_t ty = 0; ty < (OH + 1) / 2; ty++)
            for (int64_t tx = 0; tx < (OW + 1) / 2; tx++) {
                for (int64_t c = 0; c < C; c++) {
                    float d[4][4], s[4][4];
                    for (int a = 0; a < 4; a++)
                        for (int e = 0; e < 4; e++) {
                            int64_t iy = 2 * ty - t->pt + a, ix = 2 * tx - t->pl + e;
                            d[a][e] = iy >= 0 && iy < t->h && ix >= 0 && ix < t->w ? x[((n * C + c) * t->h + iy) * t->w + ix] : 0.0f;
                        }
                    for (int a = 0; a < 4; a++) {
                        s[a][0] = d[a][0] - d[a][2];
                        s[a][1] = d[a][1] + d[a][2];
                        s[a][2] = d[a][2] - d[a][1];
                        s[a][3] = d[a][1] - d[a][3];
                    }
                    for (int e = 0; e < 4; e++) {
                        v[(0 * 4 + e) * C + c] = round_bf16(s[0][e] - s[2][e]);
                        v[(1 * 4 + e) * C + c] = round_bf16(s[1][e] + s[2][e]);
                        v[(2 * 4 + e) * C + c] = round_bf16(s[2][e] - s[1][e]);
                        v[(3 * 4 + e) * C + c] = round_bf16(s[1][e] - s[3][e]);
                    }
                }
                for (int64_t m = 0; m < M; m++) {
                    double o[4][4], z[2][4];
                    for (int p = 0; p < 16; p++) {
                        double acc = 0;
                        for (int64_t c = 0; c < C; c++) acc += (double)u[(p * M + m) * C + c] * v[p * C + c];
                        o[p / 4][p % 4] = acc;
                    }
                    for (int e = 0; e < 4; e++) {
                        z[0][e] = o[0][e] + o[1][e] + o[2][e];
                        z[1][e] = o[1][e] - o[2][e] - o[3][e];
                    }
                    for (int a = 0; a < 2; a++)
                        for (int e = 0; e < 2; e++) {
                            int64_t oy = 2 * ty + a, ox = 2 * tx + e;
                            if (oy >= OH || ox >= OW) continue;
                            double q = e ? z[a][1] - z[a][2] - z[a][3] : z[a][0] + z[a][1] + z[a][2];
                            int64_t i = ((n * M + m) * OH + oy) * OW + ox;
                            q += b[m] + r[i];
                            y[i] = q > 0 ? q : 0;
                        }
                }
            }
    free(u), free(v);
}

static void run_case(const wcase *t, dt_pool *pool)
{
    int64_t oh = t->h + t->pt + t->pb - 2, ow = t->w + t->pl + t->pr - 2;
    dt_conv_geom g = {.spatial = 2, .batch = t->n, .c = t->c, .m = t->m, .group = 1, .in = {t->h, t->w},
                      .out = {oh, ow}, .k = {3, 3}, .s = {1, 1}, .d = {1, 1}, .pb = {t->pt, t->pl},
                      .pe = {t->pb, t->pr}};
    ref_conv_geom rg = {t->n, t->c, t->m, 1, t->h, t->w, oh, ow, 3, 3, 1, 1, 1, 1, t->pt, t->pl};
    int64_t nx = t->n * t->c * t->h * t->w, nw = t->m * t->c * 9, ny = t->n * t->m * oh * ow;
    float *x = rand_buf(nx), *w = rand_buf(nw), *b = rand_buf(t->m), *r = rand_buf(ny);
    float *y1 = malloc(sizeof(float) * (size_t)ny), *y2 = malloc(sizeof(float) * (size_t)ny);
    double *want = malloc(sizeof(double) * (size_t)ny), *want32 = malloc(sizeof(double) * (size_t)ny);
    model(t, &g, x, w, b, r, want);
    ref_conv(&rg, x, w, b, r, want32);
    for (int64_t i = 0; i < ny; i++) want32[i] = want32[i] > 0 ? want32[i] : 0;
    CHECK(dt_cpu_wino2_offered(&g));
    uint16_t *u = dt_aligned_alloc(64, (size_t)dt_cpu_wino2_floats(&g) * sizeof(float));
    CHECK_EQ_INT(dt_cpu_wino2_pack_weights(&g, w, u), DUCTILE_OK);
    dt_epilogue epi = {.act = DT_ACT_RELU, .res = r};
    dt_conv_args args = {.x = x, .w_wino2 = u, .bias = b, .epi = &epi};
    for (int pass = 0; pass < 2; pass++) {
        float *y = pass ? y2 : y1;
        for (int64_t i = 0; i < ny; i++) y[i] = NAN;
        args.y = y;
        CHECK_EQ_INT(dt_cpu_conv_run_algo(&g, &args, DT_CONV_WINOGRAD2_BF16, pass ? pool : NULL), DUCTILE_OK);
    }
    double e = rel_err(y1, want, ny), e32 = rel_err(y1, want32, ny);
    if (!(e <= 1e-5) || !(e32 <= 2e-2) || !(e32 > 1e-5))
        fprintf(stderr, "%s: rel err %.3g vs the model, %.3g vs float32\n", t->what, e, e32);
    CHECK(e <= 1e-5);
    CHECK(e32 <= 2e-2 && e32 > 1e-5);
    CHECK(memcmp(y1, y2, sizeof(float) * (size_t)ny) == 0);
    free(x), free(w), free(b), free(r), free(y1), free(y2), free(want), free(want32);
    dt_free(u);
}

int main(void)
{
    if (!dt_cpu_has_bf16()) fprintf(stderr, "note: this CPU lacks AVX512-BF16; the reference kernels run\n");
    const wcase cases[] = {
        {3, 13, 21, 7, 9, 1, 1, 1, 1, "3 images a block, 13 -> 21 channels, 7x9"},
        {5, 13, 21, 7, 9, 1, 1, 1, 1, "a partial last block"},
        {1, 37, 19, 14, 14, 1, 1, 1, 1, "14x14, 49 tiles"},
        {2, 5, 6, 3, 4, 0, 0, 0, 0, "unpadded 3x4 -> 1x2"},
        {1, 300, 9, 5, 5, 1, 1, 1, 1, "K past one block"},
        {4, 16, 40, 1, 1, 1, 1, 1, 1, "1x1 images"},
        {2, 7, 11, 11, 8, 1, 0, 0, 1, "uneven padding"},
        {1, 3, 70, 10, 10, 1, 1, 1, 1, "10x10, M past 64"},
    };
    dt_pool *pool = NULL;
    CHECK_EQ_INT(dt_pool_create(2, &pool), DUCTILE_OK);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) run_case(&cases[i], pool);
    /* Offered where F(4x4)'s tiles pad the map much more, on maps of at most 64 tiles (elsewhere
     * F(4x4) in float32 wins or ties): 14x14 yes; 7x7, 28x28 and 17x17 no. */
    const int64_t maps[][2] = {{14, 1}, {7, 0}, {28, 0}, {17, 0}};
    for (int i = 0; i < 4; i++) {
        int64_t h = maps[i][0];
        dt_conv_geom sq = {.spatial = 2, .batch = 1, .c = 8, .m = 8, .group = 1, .in = {h, h}, .out = {h, h},
                           .k = {3, 3}, .s = {1, 1}, .d = {1, 1}, .pb = {1, 1}, .pe = {1, 1}};
        CHECK(dt_cpu_wino2_offered(&sq) == (maps[i][1] != 0));
    }
    dt_pool_free(pool);
    TEST_MAIN_END();
}
