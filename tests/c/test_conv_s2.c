/* The direct stride-2 3x3 conv (conv_s2.c, DT_CONV_S2) against the double reference: 1 to 33
 * input channels (one tap or past a K block of the GEMM), 16 to 80 output channels (one, two
 * and three vectors, and a second 48-channel panel), odd image sizes whose rows end in a part
 * of an 8-pixel tile and whose edges read the padding, pads 0 to 2 and asymmetric ones,
 * batches of 1 and 2, bias, a residual and Relu or Silu, on 1, 2 and 3 threads (each output row
 * computed the same way by any thread: the same bits), nothing written past the output. On a
 * CPU without AVX-512 it runs the im2col GEMM, held to the same reference. */
#include "testutil.h"
#include "refconv.h"
#include "backend/cpu/conv.h"
#include "core/alloc.h"
#include "core/threadpool.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum { GUARD = 24 };

static double silu(double v) { return v / (1.0 + exp(-v)); }

/* One case: its relative error on pools[t] (-1 where a run failed or wrote past y) and whether
 * every thread count gave thread 1's bits. */
static double run_case(const int64_t k[8], dt_act act, bool with_res, dt_pool *pools[3], bool *same)
{
    int64_t c = k[0], m = k[1], h = k[2], w = k[3], pt = k[4], pl = k[5], pe = k[6], nb = k[7];
    int64_t oh = (h + pt + pe - 3) / 2 + 1, ow = (w + pl + pe - 3) / 2 + 1;
    dt_conv_geom g = {.spatial = 2, .batch = nb, .c = c, .m = m, .group = 1, .in = {h, w}, .out = {oh, ow},
                      .k = {3, 3}, .s = {2, 2}, .d = {1, 1}, .pb = {pt, pl}, .pe = {pe, pe}};
    int64_t nx = nb * c * h * w, ny = nb * m * oh * ow;
    float *x = rand_buf(nx), *wt = rand_buf(m * c * 9), *b = rand_buf(m), *res = rand_buf(ny);
    float *wp = dt_aligned_alloc(64, sizeof(float) * (size_t)dt_cpu_conv_packed_floats(&g));
    dt_cpu_conv_pack_weights(&g, wt, wp);
    double *R = malloc(sizeof(double) * (size_t)ny);
    ref_conv(&(ref_conv_geom){.n = nb, .c = c, .m = m, .group = 1, .h = h, .w = w, .oh = oh, .ow = ow, .kh = 3,
                              .kw = 3, .sh = 2, .sw = 2, .dh = 1, .dw = 1, .pt = pt, .pl = pl},
             x, wt, b, with_res ? res : NULL, R);
    for (int64_t i = 0; i < ny; i++) R[i] = act == DT_ACT_RELU ? (R[i] > 0 ? R[i] : 0) : silu(R[i]);
    dt_epilogue epi = {.act = act, .res = with_res ? res : NULL};
    float *y[3];
    double e = 0;
    *same = true;
    for (int t = 0; t < 3; t++) {
        y[t] = malloc(sizeof(float) * (size_t)(ny + GUARD));
        for (int64_t i = 0; i < ny + GUARD; i++) y[t][i] = NAN;
        dt_conv_args a = {.x = x, .w_packed = wp, .bias = b, .epi = &epi, .y = y[t]};
        if (dt_cpu_conv_run_algo(&g, &a, DT_CONV_S2, pools[t]) != DUCTILE_OK) e = -1;
        for (int64_t i = ny; i < ny + GUARD; i++)
            if (!isnan(y[t][i])) e = -1;
        if (e >= 0 && rel_err(y[t], R, ny) > e) e = rel_err(y[t], R, ny);
        if (t && memcmp(y[t], y[0], sizeof(float) * (size_t)ny)) *same = false;
    }
    for (int t = 0; t < 3; t++) free(y[t]);
    free(x), free(wt), free(b), free(res), free(R);
    dt_free(wp);
    return e;
}

static void test_s2_matches_reference(void)
{
    /* c, m, h, w, top pad, left pad, bottom/right pad, images */
    static const int64_t cases[][8] = {
        {1, 16, 9, 7, 1, 1, 1, 1},     {3, 32, 17, 23, 1, 1, 1, 2},   {16, 48, 31, 37, 1, 1, 1, 1},
        {16, 32, 40, 36, 1, 1, 1, 1},  {33, 64, 13, 21, 1, 1, 1, 1},  {8, 80, 11, 19, 0, 0, 0, 1},
        {5, 16, 2, 3, 2, 2, 2, 1},     {7, 32, 15, 15, 0, 1, 1, 2},   {4, 48, 1, 40, 1, 1, 1, 1},
    };
    dt_pool *pools[3] = {NULL, NULL, NULL};
    for (int t = 0; t < 3; t++) CHECK_EQ_INT(dt_pool_create(t + 1, &pools[t]), DUCTILE_OK);
    int bad = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int v = 0; v < 3; v++) {
            dt_act act = v == 2 ? DT_ACT_SILU : DT_ACT_RELU;
            bool with_res = v == 1, same = false;
            double e = run_case(cases[i], act, with_res, pools, &same);
            if (!(e >= 0 && e <= 1e-5) || !same) {
                bad++;
                fprintf(stderr, "s2 c=%lld m=%lld %lldx%lld pads %lld/%lld/%lld n=%lld act %d res %d: rel err %g, "
                        "same bits on 1-3 threads %d\n", (long long)cases[i][0], (long long)cases[i][1],
                        (long long)cases[i][2], (long long)cases[i][3], (long long)cases[i][4], (long long)cases[i][5],
                        (long long)cases[i][6], (long long)cases[i][7], (int)act, with_res, e, same);
            }
        }
    CHECK_EQ_INT(bad, 0);
    for (int t = 0; t < 3; t++) dt_pool_free(pools[t]);
}

/* Where it does not apply (output channels not a multiple of 16, stride 1), the algorithm
 * says so rather than run. */
static void test_s2_applies(void)
{
    dt_conv_geom g = {.spatial = 2, .batch = 1, .c = 8, .m = 24, .group = 1, .in = {9, 9}, .out = {5, 5},
                      .k = {3, 3}, .s = {2, 2}, .d = {1, 1}, .pb = {1, 1}, .pe = {1, 1}};
    CHECK(!dt_cpu_conv_algo_applies(&g, DT_CONV_S2));
    g.m = 32;
    CHECK(dt_cpu_conv_algo_applies(&g, DT_CONV_S2));
    g.s[0] = g.s[1] = 1, g.out[0] = g.out[1] = 9;
    CHECK(!dt_cpu_conv_algo_applies(&g, DT_CONV_S2));
}

int main(void)
{
    test_s2_matches_reference();
    test_s2_applies();
    TEST_MAIN_END();
}
