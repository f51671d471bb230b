/* 1x1 convolutions of a stride above 1: from DT_GEMM_KC_DEEP input channels a group (515, 520,
 * 2 x 520) the subsampled path (conv.c dt_conv_is_subsampled: the image subsampled once, then
 * read in place as a stride-1 1x1's B, K blocks of DT_GEMM_KC_DEEP), under it (3 to 40) im2col's
 * gather: strides 2, 3 and 2 x 3, images of odd sizes (13x11, 9x7, 28x28, 1x5), 5 to 70 output
 * channels (not multiples of 8 or 16), 2 groups, batches of 1 and 3, bias, residual and Relu,
 * weights raw and packed, on 1, 2 and 3 threads. Held to the double reference (relative
 * error 1e-4), with nothing written past the output, and bit for bit to the same conv on 1
 * thread (each image is computed the same way by any thread count). */
#include "testutil.h"
#include "refconv.h"

#include "backend/cpu/conv.h"
#include "core/alloc.h"
#include "core/threadpool.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GUARD 40

typedef struct scase {
    int64_t n, c, m, group, h, w, sh, sw;
} scase;

/* y = the conv of one case on `pool`, with the reference's relative error in *err and whether
 * the GUARD floats past y stayed untouched in *guard. */
static void run(const scase *sc, bool packed, dt_pool *pool, float *y, double *err, bool *guard)
{
    dt_conv_geom g = {.spatial = 2, .batch = sc->n, .c = sc->c, .m = sc->m, .group = sc->group, .in = {sc->h, sc->w},
                      .k = {1, 1}, .s = {sc->sh, sc->sw}, .d = {1, 1}, .pb = {0, 0}, .pe = {0, 0},
                      .depth = {.in = 1, .out = 1, .k = 1, .s = 1, .d = 1}};
    g.out[0] = (sc->h - 1) / sc->sh + 1;
    g.out[1] = (sc->w - 1) / sc->sw + 1;
    int64_t cg = sc->c / sc->group;
    int64_t nx = sc->n * sc->c * sc->h * sc->w, nw = sc->m * cg, ny = sc->n * sc->m * g.out[0] * g.out[1];
    refconv_rng = 0x9e3779b97f4a7c15ull; /* the same data on every pool */
    float *x = rand_buf(nx), *wt = rand_buf(nw), *b = rand_buf(sc->m), *res = rand_buf(ny);
    float *wp = dt_aligned_alloc(64, sizeof(float) * (size_t)dt_cpu_conv_packed_floats(&g));
    double *R = malloc(sizeof(double) * (size_t)ny);
    dt_cpu_conv_pack_weights(&g, wt, wp);
    ref_conv(&(ref_conv_geom){.n = sc->n, .c = sc->c, .m = sc->m, .group = sc->group, .h = sc->h, .w = sc->w,
                              .oh = g.out[0], .ow = g.out[1], .kh = 1, .kw = 1, .sh = sc->sh, .sw = sc->sw,
                              .dh = 1, .dw = 1, .pt = 0, .pl = 0},
             x, wt, b, res, R);
    for (int64_t i = 0; i < ny; i++) R[i] = R[i] > 0 ? R[i] : 0;
    dt_epilogue epi = {.act = DT_ACT_RELU, .res = res};
    dt_conv_args a = {.x = x, .bias = b, .epi = &epi, .y = y};
    if (packed)
        a.w_packed = wp;
    else
        a.w = wt;
    for (int64_t i = 0; i < ny + GUARD; i++) y[i] = NAN;
    CHECK_EQ_INT(dt_cpu_conv_run_algo(&g, &a, DT_CONV_IM2COL, pool), DUCTILE_OK);
    *err = rel_err(y, R, ny);
    *guard = true;
    for (int64_t i = ny; i < ny + GUARD; i++) *guard = *guard && isnan(y[i]);
    free(x), free(wt), free(b), free(res), free(R);
    dt_free(wp);
}

static void test_subsampled_1x1(void)
{
    static const scase cases[] = {
        {1, 3, 5, 1, 13, 11, 2, 2},    {1, 37, 21, 1, 13, 11, 2, 2},  {3, 37, 21, 1, 9, 7, 2, 2},
        {1, 40, 70, 1, 28, 28, 2, 2},  {3, 40, 70, 1, 28, 28, 2, 2},  {1, 520, 21, 1, 9, 7, 2, 2},
        {3, 520, 70, 1, 13, 11, 2, 2}, {1, 37, 21, 1, 13, 11, 3, 3},  {1, 40, 22, 2, 13, 11, 2, 2},
        {3, 40, 22, 2, 9, 7, 2, 3},    {1, 17, 9, 1, 1, 5, 2, 2},     {1, 520, 21, 1, 13, 11, 3, 3},
        {3, 1040, 22, 2, 9, 7, 2, 3},  {1, 515, 9, 1, 1, 5, 2, 2},
    };
    dt_pool *pools[3] = {NULL, NULL, NULL};
    for (int t = 0; t < 3; t++) CHECK_EQ_INT(dt_pool_create(t + 1, &pools[t]), DUCTILE_OK);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int packed = 0; packed < 2; packed++) {
            const scase *sc = &cases[i];
            int64_t ny = sc->n * sc->m * ((sc->h - 1) / sc->sh + 1) * ((sc->w - 1) / sc->sw + 1);
            float *y[3];
            for (int t = 0; t < 3; t++) {
                y[t] = malloc(sizeof(float) * (size_t)(ny + GUARD));
                double e;
                bool guard;
                run(sc, packed, pools[t], y[t], &e, &guard);
                bool same = t == 0 || !memcmp(y[0], y[t], sizeof(float) * (size_t)ny);
                CHECK(e <= 1e-4);
                CHECK(guard);
                CHECK(same);
                if (!(e <= 1e-4) || !guard || !same)
                    fprintf(stderr, "1x1 n=%lld c=%lld m=%lld g=%lld %lldx%lld s=%lldx%lld packed=%d threads=%d: "
                            "rel err %g, guard %d, bits of 1 thread %d\n", (long long)sc->n, (long long)sc->c,
                            (long long)sc->m, (long long)sc->group, (long long)sc->h, (long long)sc->w,
                            (long long)sc->sh, (long long)sc->sw, packed, t + 1, e, guard, same);
            }
            for (int t = 0; t < 3; t++) free(y[t]);
        }
    for (int t = 0; t < 3; t++) dt_pool_free(pools[t]);
}

int main(void)
{
    test_subsampled_1x1();
    TEST_MAIN_END();
}
