/* A 1x1 convolution with bias, ReLU and optionally a residual, run on random data through the
 * im2col algorithm (the 1x1 GEMM path) and compared with ref_conv: its relative error, or -1
 * where the run failed. Shared by test_gemm_x.c, test_gemm_tile_store.c and
 * test_gemm_deep_k.c. */
#ifndef DT_TEST_CONV1X1_CHECK_H
#define DT_TEST_CONV1X1_CHECK_H

#include "refconv.h"
#include "backend/cpu/conv.h"
#include "core/threadpool.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* As conv1x1_relu_error on pool; with same (non-NULL), run again on pool2 and *same set when
 * both runs gave the same bits. */
static inline double conv1x1_relu_check(int64_t h, int64_t w, int64_t c, int64_t m, int64_t nb, bool with_res, dt_pool *pool,
                                        dt_pool *pool2, bool *same)
{
    dt_conv_geom g = {.spatial = 2, .batch = nb, .c = c, .m = m, .group = 1, .in = {h, w},
                      .out = {h, w}, .k = {1, 1}, .s = {1, 1}, .d = {1, 1}};
    int64_t nxv = nb * c * h * w, ny = nb * m * h * w;
    float *x = rand_buf(nxv), *wt = rand_buf(m * c), *b = rand_buf(m), *res = rand_buf(ny);
    float *y = malloc(sizeof(float) * (size_t)ny), *y2 = malloc(sizeof(float) * (size_t)ny);
    float *wp = malloc(sizeof(float) * (size_t)dt_cpu_conv_packed_floats(&g));
    double *R = malloc(sizeof(double) * (size_t)ny);
    dt_cpu_conv_pack_weights(&g, wt, wp);
    ref_conv(&(ref_conv_geom){.n = nb, .c = c, .m = m, .group = 1, .h = h, .w = w, .oh = h, .ow = w,
                              .kh = 1, .kw = 1, .sh = 1, .sw = 1, .dh = 1, .dw = 1},
             x, wt, b, with_res ? res : NULL, R);
    for (int64_t i = 0; i < ny; i++) R[i] = R[i] > 0 ? R[i] : 0;
    dt_epilogue epi = {.act = DT_ACT_RELU, .res = with_res ? res : NULL};
    dt_conv_args a = {.x = x, .w_packed = wp, .bias = b, .epi = &epi, .y = y};
    for (int64_t i = 0; i < ny; i++) y[i] = y2[i] = NAN;
    double e = dt_cpu_conv_run_algo(&g, &a, DT_CONV_IM2COL, pool) == DUCTILE_OK ? rel_err(y, R, ny) : -1;
    if (same) {
        a.y = y2;
        if (dt_cpu_conv_run_algo(&g, &a, DT_CONV_IM2COL, pool2) != DUCTILE_OK) e = -1;
        *same = !memcmp(y, y2, sizeof(float) * (size_t)ny);
    }
    free(x), free(wt), free(b), free(res), free(y), free(y2), free(wp), free(R);
    return e;
}

static inline double conv1x1_relu_error(int64_t h, int64_t w, int64_t c, int64_t m, int64_t nb, bool with_res, dt_pool *pool)
{
    return conv1x1_relu_check(h, w, c, m, nb, with_res, pool, NULL, NULL);
}

#endif
