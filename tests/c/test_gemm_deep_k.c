/* K blocks of DT_GEMM_KC_DEEP (dt_gemm.deep_k) in the 1x1 convs' GEMM: convs with K of one
 * deep block and more (512, 515, 1100, 2049 input channels), odd output channel counts, planes
 * whose columns are whole panels plus a few fused ones (7x7, 10x5, 14x14), a last panel packed
 * (28x28: 16 columns; 5x9: every column), a plane whose block runs panel by panel (29x23), at
 * batch 1 and 2, bias, Relu and a residual: against the double reference (1e-4 of the
 * largest value), and serial against 2 threads bit for bit (the K block is the product's,
 * never a thread's slice: a split of 49 columns leaves one thread the packed last column).
 * Each scratch is sized by the conv (dt_cpu_conv_scratch), as the engine sizes it. */
#include "testutil.h"
#include "refconv.h"
#include "backend/cpu/conv.h"
#include "backend/cpu/gemm.h"
#include "core/threadpool.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Runs the conv serially and on pool; returns the relative error of the serial run against
 * the reference (-1 where a run failed) and sets *same when both runs gave the same bits. */
static double conv1x1_deep(int64_t h, int64_t w, int64_t c, int64_t m, int64_t nb, bool with_res, dt_pool *pool,
                           bool *same)
{
    dt_conv_geom g = {.spatial = 2, .batch = nb, .c = c, .m = m, .group = 1, .in = {h, w},
                      .out = {h, w}, .k = {1, 1}, .s = {1, 1}, .d = {1, 1}};
    int64_t nxv = nb * c * h * w, ny = nb * m * h * w;
    float *x = rand_buf(nxv), *wt = rand_buf(m * c), *b = rand_buf(m), *res = rand_buf(ny);
    float *y1 = malloc(sizeof(float) * (size_t)ny), *y2 = malloc(sizeof(float) * (size_t)ny);
    float *wp = malloc(sizeof(float) * (size_t)dt_cpu_conv_packed_floats(&g));
    double *R = malloc(sizeof(double) * (size_t)ny);
    dt_cpu_conv_pack_weights(&g, wt, wp);
    ref_conv(&(ref_conv_geom){.n = nb, .c = c, .m = m, .group = 1, .h = h, .w = w, .oh = h, .ow = w,
                              .kh = 1, .kw = 1, .sh = 1, .sw = 1, .dh = 1, .dw = 1},
             x, wt, b, with_res ? res : NULL, R);
    for (int64_t i = 0; i < ny; i++) R[i] = R[i] > 0 ? R[i] : 0;
    dt_epilogue epi = {.act = DT_ACT_RELU, .res = with_res ? res : NULL};
    dt_conv_args a = {.x = x, .w_packed = wp, .bias = b, .epi = &epi, .y = y1};
    for (int64_t i = 0; i < ny; i++) y1[i] = y2[i] = NAN;
    double e = dt_cpu_conv_run_algo(&g, &a, DT_CONV_IM2COL, NULL) == DUCTILE_OK ? rel_err(y1, R, ny) : -1;
    a.y = y2;
    if (dt_cpu_conv_run_algo(&g, &a, DT_CONV_IM2COL, pool) != DUCTILE_OK) e = -1;
    *same = !memcmp(y1, y2, sizeof(float) * (size_t)ny);
    free(x), free(wt), free(b), free(res), free(y1), free(y2), free(wp), free(R);
    return e;
}

static void test_conv_1x1_deep_k(dt_pool *pool)
{
    static const int64_t hw[][2] = {{7, 7}, {10, 5}, {14, 14}, {28, 28}, {5, 9}, {29, 23}};
    static const int64_t cm[][2] = {{512, 19}, {515, 130}, {1100, 37}, {2049, 264}, {600, 300}};
    int bad = 0;
    for (size_t hi = 0; hi < sizeof hw / sizeof hw[0]; hi++)
        for (size_t ci = 0; ci < sizeof cm / sizeof cm[0]; ci++) {
            int64_t h = hw[hi][0], w = hw[hi][1], c = cm[ci][0], m = cm[ci][1], nb = 1 + (int64_t)((hi + ci) % 2);
            if (h * w * c * m * nb > (int64_t)400e6) continue;   /* keep the reference quick */
            bool with_res = ci & 1, same = false;
            double e = conv1x1_deep(h, w, c, m, nb, with_res, pool, &same);
            if (!(e >= 0 && e <= 1e-4) || !same) {
                bad++;
                fprintf(stderr, "1x1 conv %lldx%lld c=%lld m=%lld batch %lld: rel err %g, 2 threads %s\n",
                        (long long)h, (long long)w, (long long)c, (long long)m, (long long)nb, e,
                        same ? "the same bits" : "other bits");
            }
        }
    CHECK_EQ_INT(bad, 0);
}

int main(void)
{
    dt_pool *pool = NULL;
    CHECK_EQ_INT(dt_pool_create(2, &pool), DUCTILE_OK);
    test_conv_1x1_deep_k(pool);
    dt_pool_free(pool);
    TEST_MAIN_END();
}
