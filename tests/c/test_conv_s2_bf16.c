/* The direct 3x3 stride-2 conv in bfloat16 (conv_s2_bf16.c, DT_CONV_S2_BF16) against the
 * reference convolution (double) of the operands rounded to bfloat16: odd channel counts (the
 * last pair half zero), output channels not a multiple of 8 (the 4- and 8-row bodies of the
 * last strip), output rows of 1 to 97 pixels (rows under 24 pixels in groups of several rows
 * a tile, the last group of an image shorter; wider ones one row a tile, one, two and three
 * vectors, more than one tile a row), pads of 0, 1, 2 and uneven ones, several images (the
 * ring of converted rows across an image's end), with bias, residual and the activations in
 * lanes (Relu, HardSwish, Sigmoid, lean Silu) and over the row after (Gelu), on 1 and 2
 * threads. Without its weights
 * the run refuses, saying so. */
#include "backend/cpu/conv.h"
#include "backend/cpu/exp_approx.h"
#include "backend/cpu/gemm.h"
#include "core/alloc.h"
#include "core/threadpool.h"
#include "bf16_testutil.h"
#include "refconv.h"
#include "testutil.h"

#include <math.h>
#include <string.h>

typedef struct s2_case {
    int64_t n, c, m, h, w, pt, pl, pb, pr;   /* leading and trailing pads */
    const char *what;
} s2_case;

static double act_ref(dt_act act, double v)
{
    switch (act) {
    case DT_ACT_RELU: return v > 0 ? v : 0;
    case DT_ACT_HARDSWISH: {
        double h = v / 6 + 0.5;
        return v * (h < 0 ? 0 : h > 1 ? 1 : h);
    }
    case DT_ACT_SIGMOID: return 1 / (1 + exp(-v));
    case DT_ACT_SILU_LEAN: return v / (1 + exp(-v));
    case DT_ACT_GELU: return 0.5 * v * (1 + erf(v / sqrt(2.0)));
    default: return v;
    }
}

static void run_case(const s2_case *t, dt_pool *pool)
{
    int64_t oh = (t->h + t->pt + t->pb - 3) / 2 + 1, ow = (t->w + t->pl + t->pr - 3) / 2 + 1;
    dt_conv_geom g = {.spatial = 2, .batch = t->n, .c = t->c, .m = t->m, .group = 1, .in = {t->h, t->w},
                      .out = {oh, ow}, .k = {3, 3}, .s = {2, 2}, .d = {1, 1}, .pb = {t->pt, t->pl},
                      .pe = {t->pb, t->pr}};
    ref_conv_geom rg = {t->n, t->c, t->m, 1, t->h, t->w, oh, ow, 3, 3, 2, 2, 1, 1, t->pt, t->pl};
    CHECK(dt_cpu_conv_s2_bf16_applies(&g));
    int64_t nx = t->n * t->c * t->h * t->w, nw = t->m * t->c * 9, ny = t->n * t->m * oh * ow;
    float *x = rand_buf(nx), *w = rand_buf(nw), *b = rand_buf(t->m), *r = rand_buf(ny);
    float *xr = malloc(sizeof(float) * (size_t)nx), *wr = malloc(sizeof(float) * (size_t)nw);
    float *y = malloc(sizeof(float) * (size_t)ny);
    double *sum = malloc(sizeof(double) * (size_t)ny), *sum_res = malloc(sizeof(double) * (size_t)ny);
    double *want = malloc(sizeof(double) * (size_t)ny);
    for (int64_t i = 0; i < nx; i++) xr[i] = round_bf16(x[i]);
    for (int64_t i = 0; i < nw; i++) wr[i] = round_bf16(w[i]);
    ref_conv(&rg, xr, wr, b, NULL, sum);
    ref_conv(&rg, xr, wr, b, r, sum_res);
    uint16_t *ws = dt_aligned_alloc(64, sizeof(float) * (size_t)dt_cpu_conv_s2_bf16_floats(&g));
    dt_cpu_conv_s2_bf16_pack_weights(&g, w, ws);
    size_t bytes = 0;
    CHECK_EQ_INT(dt_cpu_conv_scratch(&g, &(dt_conv_args){.w_s2_bf16 = ws}, DT_CONV_S2_BF16, dt_pool_threads(pool), &bytes),
                 DUCTILE_OK);
    void *scratch = dt_aligned_alloc(64, bytes);
    static const struct {
        dt_act act;
        bool res;
    } epis[] = {{DT_ACT_NONE, false}, {DT_ACT_RELU, true}, {DT_ACT_HARDSWISH, false}, {DT_ACT_SIGMOID, true},
                {DT_ACT_SILU_LEAN, false}, {DT_ACT_GELU, true}};
    for (size_t k = 0; k < sizeof epis / sizeof *epis; k++) {
        dt_epilogue epi = {.act = epis[k].act, .p0 = 1.0f / 6, .p1 = 0.5f, .res = epis[k].res ? r : NULL};
        for (int64_t i = 0; i < ny; i++) want[i] = act_ref(epi.act, epis[k].res ? sum_res[i] : sum[i]);
        dt_conv_args args = {.x = x, .w_s2_bf16 = ws, .bias = b, .epi = &epi, .y = y, .scratch = scratch};
        for (int64_t i = 0; i < ny; i++) y[i] = NAN;
        CHECK_EQ_INT(dt_cpu_conv_run_algo(&g, &args, DT_CONV_S2_BF16, pool), DUCTILE_OK);
        /* float32 accumulation in another order; the lean sigmoid's 5.5e-5 and Gelu's fit */
        double e = rel_err(y, want, ny), tol = epi.act == DT_ACT_SILU_LEAN || epi.act == DT_ACT_GELU ? 1e-4 : 1e-5;
        if (!(e <= tol))
            fprintf(stderr, "%s (act %d%s, %d threads): rel err %.3g\n", t->what, (int)epi.act,
                    epis[k].res ? " + residual" : "", dt_pool_threads(pool), e);
        CHECK(e <= tol);
    }
    dt_free(scratch);
    dt_free(ws);
    free(x), free(w), free(b), free(r), free(xr), free(wr), free(y), free(sum), free(sum_res), free(want);
}

/* Without its weights, or on a geometry it does not take, the run says what it needs. */
static void test_refusals(void)
{
    dt_conv_geom g = {.spatial = 2, .batch = 1, .c = 4, .m = 8, .group = 1, .in = {9, 9}, .out = {5, 5},
                      .k = {3, 3}, .s = {2, 2}, .d = {1, 1}, .pb = {1, 1}, .pe = {1, 1}};
    float x[324] = {0}, y[200];
    char scratch[64];
    dt_conv_args a = {.x = x, .y = y, .scratch = scratch};
    CHECK_EQ_INT(dt_cpu_conv_run_algo(&g, &a, DT_CONV_S2_BF16, NULL), DUCTILE_ERR_INTERNAL);
    CHECK(strstr(ductile_last_error(), "needs its weights (w_s2_bf16)") != NULL);
    dt_conv_geom g1 = g;
    g1.s[0] = g1.s[1] = 1;
    CHECK(!dt_cpu_conv_s2_bf16_applies(&g1));
    dt_conv_geom gg = g;
    gg.group = 2;
    CHECK(!dt_cpu_conv_s2_bf16_applies(&gg));
}

int main(void)
{
    if (!dt_cpu_has_bf16()) {
        printf("SKIP test_conv_s2_bf16: this CPU lacks AVX512-BF16, the kernel's only form\n");
        return 0;
    }
    const s2_case cases[] = {
        {1, 16, 32, 40, 40, 1, 1, 1, 1, "yolo's 16 -> 32 (one tile of 20 a row)"},
        {2, 5, 13, 33, 29, 1, 1, 1, 1, "odd channels, 13 outputs, two images"},
        {1, 3, 8, 9, 101, 1, 1, 1, 1, "51 a row: a tile of 48 and one of 3"},
        {1, 7, 19, 20, 20, 0, 0, 0, 0, "no pads"},
        {1, 6, 4, 16, 16, 0, 0, 1, 1, "trailing pads only, 4 outputs"},
        {1, 9, 12, 11, 11, 2, 2, 2, 2, "pads of 2"},
        {1, 2, 3, 1, 1, 1, 1, 1, 1, "a 1x1 image"},
        {1, 4, 9, 6, 194, 1, 1, 1, 1, "97 a row: two tiles of 48 and one of 1"},
        {1, 131, 17, 10, 10, 1, 0, 0, 1, "131 channels, uneven pads"},
        {3, 5, 6, 2, 7, 1, 1, 0, 1, "three images of one output row (rows of the same index)"},
    };
    dt_pool *pool = NULL;
    CHECK_EQ_INT(dt_pool_create(2, &pool), DUCTILE_OK);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        run_case(&cases[i], NULL);
        run_case(&cases[i], pool);
    }
    dt_pool_free(pool);
    test_refusals();
    TEST_MAIN_END();
}
