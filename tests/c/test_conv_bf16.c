/* The GEMM convolutions with bfloat16 weights (dt_conv_args.w_bf16, what a FusedConv marked
 * `bf16` runs): im2col, padded, 1x1 read in place, batched 1x1 of small images, groups,
 * strides, dilations, K past one block and N past one block of columns, with bias, residual
 * and Relu, on 1 and 2 threads, against the reference convolution (double) of the same
 * operands rounded to bfloat16: within float32 accumulation error. And against the float32
 * reference: bfloat16's own rounding, no more (the path did run in bfloat16). A scale of X's
 * channels on the 1x1: the scaled copy's bits. */
#include "backend/cpu/conv.h"
#include "backend/cpu/gemm.h"
#include "core/threadpool.h"
#include "bf16_testutil.h"
#include "refconv.h"
#include "testutil.h"

#include <string.h>

typedef struct conv_case {
    int64_t n, c, m, group, h, w, k, s, d, p;
    const char *what;
} conv_case;

static void run_case(const conv_case *t, dt_pool *pool)
{
    int64_t oh = (t->h + 2 * t->p - t->d * (t->k - 1) - 1) / t->s + 1;
    int64_t ow = (t->w + 2 * t->p - t->d * (t->k - 1) - 1) / t->s + 1;
    dt_conv_geom g = {.spatial = 2, .batch = t->n, .c = t->c, .m = t->m, .group = t->group,
                      .in = {t->h, t->w}, .out = {oh, ow}, .k = {t->k, t->k}, .s = {t->s, t->s},
                      .d = {t->d, t->d}, .pb = {t->p, t->p}, .pe = {t->p, t->p}};
    ref_conv_geom rg = {t->n, t->c, t->m, t->group, t->h, t->w, oh, ow, t->k, t->k, t->s, t->s, t->d, t->d, t->p, t->p};
    int64_t nx = t->n * t->c * t->h * t->w, nw = t->m * t->c / t->group * t->k * t->k, ny = t->n * t->m * oh * ow;
    float *x = rand_buf(nx), *w = rand_buf(nw), *b = rand_buf(t->m), *r = rand_buf(ny);
    float *xr = malloc(sizeof(float) * (size_t)nx), *wr = malloc(sizeof(float) * (size_t)nw);
    float *y = malloc(sizeof(float) * (size_t)ny);
    double *want = malloc(sizeof(double) * (size_t)ny), *want32 = malloc(sizeof(double) * (size_t)ny);
    for (int64_t i = 0; i < nx; i++) xr[i] = round_bf16(x[i]);
    for (int64_t i = 0; i < nw; i++) wr[i] = round_bf16(w[i]);
    ref_conv(&rg, xr, wr, b, r, want);
    ref_conv(&rg, x, w, b, r, want32);
    for (int64_t i = 0; i < ny; i++) {
        want[i] = want[i] > 0 ? want[i] : 0;
        want32[i] = want32[i] > 0 ? want32[i] : 0;
    }
    uint16_t *w16 = malloc((size_t)dt_cpu_conv_packed_bf16_bytes(&g));
    dt_cpu_conv_pack_weights_bf16(&g, w, w16);
    dt_epilogue epi = {.act = DT_ACT_RELU, .res = r};
    const dt_conv_algo algos[] = {DT_CONV_IM2COL, DT_CONV_PADDED};
    for (int a = 0; a < 2; a++) {
        if (!dt_cpu_conv_algo_applies(&g, algos[a])) continue;
        dt_conv_args args = {.x = x, .w_bf16 = w16, .bias = b, .epi = &epi, .y = y};
        for (int64_t i = 0; i < ny; i++) y[i] = NAN;
        CHECK_EQ_INT(dt_cpu_conv_run_algo(&g, &args, algos[a], pool), DUCTILE_OK);
        double e = rel_err(y, want, ny), e32 = rel_err(y, want32, ny);
        if (!(e <= 1e-5) || !(e32 <= 2e-2) || !(e32 > 1e-5))
            fprintf(stderr, "%s (%s, %d threads): rel err %.3g vs the rounded reference, %.3g vs float32\n", t->what,
                    algos[a] == DT_CONV_IM2COL ? "im2col" : "padded", dt_pool_threads(pool), e, e32);
        CHECK(e <= 1e-5);
        CHECK(e32 <= 2e-2 && e32 > 1e-5);
    }
    free(x), free(w), free(b), free(r), free(xr), free(wr), free(y), free(want), free(want32), free(w16);
}

/* A scale of X's channels (dt_conv_args.x_scale, FusedConv's squeeze-excite) on a 1x1 over
 * bfloat16 weights: the bits of the same conv over the scaled copy, on 1 and 2 threads, at odd
 * sizes and N past one block of columns; a conv that does not take it refuses it. */
static void test_x_scale_is_the_scaled_copy(dt_pool *pool)
{
    static const int64_t sizes[][4] = {{13, 11, 9, 7}, {37, 19, 40, 37}, {300, 9, 6, 6}};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        int64_t c = sizes[i][0], m = sizes[i][1], h = sizes[i][2], w = sizes[i][3], px = h * w;
        dt_conv_geom g = {.spatial = 2, .batch = 1, .c = c, .m = m, .group = 1, .in = {h, w}, .out = {h, w},
                          .k = {1, 1}, .s = {1, 1}, .d = {1, 1}};
        float *x = rand_buf(c * px), *s = rand_buf(c), *wt = rand_buf(m * c), *b = rand_buf(m), *r = rand_buf(m * px);
        float *xs = malloc(sizeof(float) * (size_t)(c * px)), *y0 = malloc(sizeof(float) * (size_t)(m * px));
        float *y1 = malloc(sizeof(float) * (size_t)(m * px));
        for (int64_t k = 0; k < c; k++)
            for (int64_t j = 0; j < px; j++) xs[k * px + j] = x[k * px + j] * s[k];
        uint16_t *w16 = malloc((size_t)dt_cpu_conv_packed_bf16_bytes(&g));
        dt_cpu_conv_pack_weights_bf16(&g, wt, w16);
        dt_epilogue epi = {.act = DT_ACT_RELU, .res = r};
        dt_conv_args copy = {.x = xs, .w_bf16 = w16, .bias = b, .epi = &epi, .y = y0};
        dt_conv_args scaled = {.x = x, .x_scale = s, .w_bf16 = w16, .bias = b, .epi = &epi, .y = y1};
        CHECK(dt_cpu_conv_takes_x_scale(&g, &scaled, DT_CONV_IM2COL));
        for (int t = 0; t < 2; t++) {
            dt_pool *p = t ? pool : NULL;
            CHECK_EQ_INT(dt_cpu_conv_run_algo(&g, &copy, DT_CONV_IM2COL, p), DUCTILE_OK);
            CHECK_EQ_INT(dt_cpu_conv_run_algo(&g, &scaled, DT_CONV_IM2COL, p), DUCTILE_OK);
            CHECK(memcmp(y0, y1, sizeof(float) * (size_t)(m * px)) == 0);
        }
        free(x), free(s), free(wt), free(b), free(r), free(xs), free(y0), free(y1), free(w16);
    }
    /* a 3x3 (its GEMM packs B through im2col) and float32 weights do not take it */
    dt_conv_geom g3 = {.spatial = 2, .batch = 1, .c = 4, .m = 4, .group = 1, .in = {5, 5}, .out = {5, 5},
                       .k = {3, 3}, .s = {1, 1}, .d = {1, 1}, .pb = {1, 1}, .pe = {1, 1}};
    float x[100] = {0}, s[4] = {1, 1, 1, 1}, wt[144] = {0}, y[100];
    uint16_t w16[256] = {0};
    dt_conv_args a = {.x = x, .x_scale = s, .w_bf16 = w16, .y = y};
    CHECK(!dt_cpu_conv_takes_x_scale(&g3, &a, DT_CONV_IM2COL));
    CHECK_EQ_INT(dt_cpu_conv_run_algo(&g3, &a, DT_CONV_IM2COL, NULL), DUCTILE_ERR_INTERNAL);
    CHECK(strstr(ductile_last_error(), "does not take a scale of X's channels") != NULL);
    dt_conv_geom g1 = g3;
    g1.k[0] = g1.k[1] = 1, g1.pb[0] = g1.pb[1] = g1.pe[0] = g1.pe[1] = 0;
    dt_conv_args f = {.x = x, .x_scale = s, .w = wt, .y = y};
    CHECK(!dt_cpu_conv_takes_x_scale(&g1, &f, DT_CONV_IM2COL));
}

int main(void)
{
    if (!dt_cpu_has_bf16()) fprintf(stderr, "note: this CPU lacks AVX512-BF16; the reference kernels run\n");
    const conv_case cases[] = {
        {1, 37, 19, 1, 9, 9, 1, 1, 1, 0, "1x1 read in place"},
        {3, 16, 24, 1, 7, 7, 1, 1, 1, 0, "1x1 batched small images"},
        {1, 20, 33, 1, 15, 15, 1, 2, 1, 0, "1x1 stride 2"},
        {2, 17, 10, 1, 13, 11, 3, 1, 1, 1, "3x3 pad 1"},
        {1, 8, 40, 1, 17, 17, 3, 2, 1, 1, "3x3 stride 2"},
        {1, 6, 10, 2, 12, 12, 5, 1, 1, 2, "5x5 two groups"},
        {1, 3, 16, 1, 30, 30, 7, 2, 1, 3, "7x7 stride 2 stem"},
        {1, 5, 7, 1, 11, 11, 3, 1, 2, 2, "3x3 dilation 2"},
        {1, 300, 9, 1, 6, 6, 1, 1, 1, 0, "1x1 K past one block"},
        {1, 4, 8, 1, 40, 40, 3, 1, 1, 1, "3x3 N past one block"},
        {2, 37, 24, 1, 7, 7, 3, 1, 1, 1, "3x3 at 7x7 (padded: the gather)"},
        {1, 33, 8, 1, 14, 14, 3, 2, 1, 1, "3x3 stride 2 to 7x7, K past one block"},
    };
    dt_pool *pool = NULL;
    CHECK_EQ_INT(dt_pool_create(2, &pool), DUCTILE_OK);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        run_case(&cases[i], NULL);
        run_case(&cases[i], pool);
    }
    test_x_scale_is_the_scaled_copy(pool);
    dt_pool_free(pool);
    TEST_MAIN_END();
}
