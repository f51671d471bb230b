/* The GEMM convolutions with bfloat16 weights (dt_conv_args.w_bf16, what a FusedConv marked
 * `bf16` runs): im2col, padded, 1x1 read in place, batched 1x1 of small images, groups,
 * strides, dilations, K past one block and N past one block of columns, with bias, residual
 * and Relu, on 1 and 2 threads, against the reference convolution (double) of the same
 * operands rounded to bfloat16: within float32 accumulation error. And against the float32
 * reference: bfloat16's own rounding, no more (the path did run in bfloat16). */
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
    };
    dt_pool *pool = NULL;
    CHECK_EQ_INT(dt_pool_create(2, &pool), DUCTILE_OK);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        run_case(&cases[i], NULL);
        run_case(&cases[i], pool);
    }
    dt_pool_free(pool);
    TEST_MAIN_END();
}
