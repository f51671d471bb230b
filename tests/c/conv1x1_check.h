/* A 1x1 convolution with bias, ReLU and optionally a residual, run on random data through the
 * im2col algorithm (the 1x1 GEMM path; at strides above 1 the subsampled or the gathered B)
 * and compared with ref_conv: its relative error, or -1 where the run failed. Shared by
 * test_gemm_x.c, test_gemm_tile_store.c, test_gemm_deep_k.c and test_conv_subsample.c. */
#ifndef DT_TEST_CONV1X1_CHECK_H
#define DT_TEST_CONV1X1_CHECK_H

#include "refconv.h"
#include "backend/cpu/conv.h"
#include "core/threadpool.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* One 1x1 case: images h x w, c -> m channels in `group` groups, nb images, strides sh x sw
 * (unpadded), a residual or not, the weights packed or raw. */
typedef struct conv1x1_case {
    int64_t h, w, c, m, group, nb, sh, sw;
    bool with_res, raw;
} conv1x1_case;

enum { CONV1X1_GUARD = 40 };

/* The case's relative error on pool (-1 where a run failed or wrote past the output); with
 * same (non-NULL), run again on pool2 and *same set when both runs gave the same bits. */
static inline double conv1x1_relu_run(const conv1x1_case *k, dt_pool *pool, dt_pool *pool2, bool *same)
{
    int64_t oh = (k->h - 1) / k->sh + 1, ow = (k->w - 1) / k->sw + 1, cg = k->c / k->group;
    dt_conv_geom g = {.spatial = 2, .batch = k->nb, .c = k->c, .m = k->m, .group = k->group, .in = {k->h, k->w},
                      .out = {oh, ow}, .k = {1, 1}, .s = {k->sh, k->sw}, .d = {1, 1}};
    int64_t nxv = k->nb * k->c * k->h * k->w, ny = k->nb * k->m * oh * ow, ye = ny + CONV1X1_GUARD;
    float *x = rand_buf(nxv), *wt = rand_buf(k->m * cg), *b = rand_buf(k->m), *res = rand_buf(ny);
    float *y = malloc(sizeof(float) * (size_t)ye), *y2 = malloc(sizeof(float) * (size_t)ye);
    float *wp = malloc(sizeof(float) * (size_t)dt_cpu_conv_packed_floats(&g));
    double *R = malloc(sizeof(double) * (size_t)ny);
    dt_cpu_conv_pack_weights(&g, wt, wp);
    ref_conv(&(ref_conv_geom){.n = k->nb, .c = k->c, .m = k->m, .group = k->group, .h = k->h, .w = k->w, .oh = oh,
                              .ow = ow, .kh = 1, .kw = 1, .sh = k->sh, .sw = k->sw, .dh = 1, .dw = 1},
             x, wt, b, k->with_res ? res : NULL, R);
    for (int64_t i = 0; i < ny; i++) R[i] = R[i] > 0 ? R[i] : 0;
    dt_epilogue epi = {.act = DT_ACT_RELU, .res = k->with_res ? res : NULL};
    dt_conv_args a = {.x = x, .bias = b, .epi = &epi, .y = y};
    if (k->raw)
        a.w = wt;
    else
        a.w_packed = wp;
    for (int64_t i = 0; i < ye; i++) y[i] = y2[i] = NAN;
    double e = dt_cpu_conv_run_algo(&g, &a, DT_CONV_IM2COL, pool) == DUCTILE_OK ? rel_err(y, R, ny) : -1;
    for (int64_t i = ny; i < ye; i++)
        if (!isnan(y[i])) e = -1;
    if (same) {
        a.y = y2;
        if (dt_cpu_conv_run_algo(&g, &a, DT_CONV_IM2COL, pool2) != DUCTILE_OK) e = -1;
        *same = !memcmp(y, y2, sizeof(float) * (size_t)ny);
    }
    free(x), free(wt), free(b), free(res), free(y), free(y2), free(wp), free(R);
    return e;
}

/* As conv1x1_relu_error on pool; with same (non-NULL), run again on pool2 and *same set when
 * both runs gave the same bits. */
static inline double conv1x1_relu_check(int64_t h, int64_t w, int64_t c, int64_t m, int64_t nb, bool with_res, dt_pool *pool,
                                        dt_pool *pool2, bool *same)
{
    conv1x1_case k = {h, w, c, m, 1, nb, 1, 1, with_res, false};
    return conv1x1_relu_run(&k, pool, pool2, same);
}

static inline double conv1x1_relu_error(int64_t h, int64_t w, int64_t c, int64_t m, int64_t nb, bool with_res, dt_pool *pool)
{
    return conv1x1_relu_check(h, w, c, m, nb, with_res, pool, NULL, NULL);
}

#endif
