/* The tiled depthwise kernels (conv_own.h, DT_CUDA_CONV_DW_TILED / _NHWC) and the generic
 * depthwise ones, called directly (a build times them against cuDNN and keeps the fastest, so
 * an engine test cannot tell which ran): at odd sizes (channels 3 to 96, maps 7x9 to 40x70,
 * kernels 3x3, 5x5 and others (the any-size path), strides 1 and 2, dilations 1, 2 and one
 * large enough to shrink the tile, pads, batch 1 and 3, with and without bias, residual and
 * activation), both layouts, float32 / float16 / bfloat16, against a double reference on the
 * same (rounded) inputs: rel-L2 <= 1e-5 in float32, <= 1e-2 in half (3x3 layers of channels
 * in 8s run the half types' 8-channels-a-thread kernel). GPU only (skips with
 * "no CUDA device found"). And the refusals: a channel multiplier other than 1, a tile that
 * cannot fit. */
#include "cuda_probe.h"
#include "testutil.h"

#ifdef DT_WITH_CUDA
#include "backend/cpu/elementwise_impl.h"
#include "backend/cuda/conv_own.h"
#include "cuda_bufs.h"

#include <cuda_runtime_api.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct dw_case {
    int64_t n, c, h, w, kh, kw, s, d, p;
    bool bias, res;
    int act;
} dw_case;

/* Runs case k in dtype and layout with the tiled (tiled) or generic kernel; returns rel-L2. */
static double run_case(const dw_case *k, int dtype, bool nhwc, bool tiled)
{
    int64_t oh = (k->h + 2 * k->p - k->d * (k->kh - 1) - 1) / k->s + 1;
    int64_t ow = (k->w + 2 * k->p - k->d * (k->kw - 1) - 1) / k->s + 1;
    conv_bufs t;
    conv_bufs_alloc(&t, dtype, (size_t)(k->n * k->c * k->h * k->w), (size_t)(k->c * k->kh * k->kw), (size_t)k->c,
                    (size_t)(k->n * k->c * oh * ow));
    /* Inputs rounded to dtype, stored in the layout. */
    for (int64_t n = 0; n < k->n; n++)
        for (int64_t c = 0; c < k->c; c++)
            for (int64_t h = 0; h < k->h; h++)
                for (int64_t q = 0; q < k->w; q++) {
                    size_t i = at(false, n, c, h, q, k->c, k->h, k->w);
                    t.x[i] = put(t.hx, dtype, at(nhwc, n, c, h, q, k->c, k->h, k->w), rnd());
                }
    for (size_t i = 0; i < t.nw; i++) t.w[i] = put(t.hw, dtype, i, 0.3f * rnd());
    for (int64_t c = 0; c < k->c; c++) t.b[c] = put(t.hb, dtype, (size_t)c, rnd());
    for (int64_t n = 0; n < k->n; n++)
        for (int64_t c = 0; c < k->c; c++)
            for (int64_t h = 0; h < oh; h++)
                for (int64_t q = 0; q < ow; q++)
                    t.r[at(false, n, c, h, q, k->c, oh, ow)] = put(t.hr, dtype, at(nhwc, n, c, h, q, k->c, oh, ow), rnd());
    dt_cu_conv g = {.n = k->n, .c = k->c, .m = k->c, .ih = k->h, .iw = k->w, .oh = oh, .ow = ow, .kh = k->kh, .kw = k->kw,
                    .sh = k->s, .sw = k->s, .ph = k->p, .pw = k->p, .dh = k->d, .dw = k->d, .group = k->c,
                    .act = k->act};
    test_bufs_params(k->act, &g.p0, &g.p1);
    double err = INFINITY;
    bool up = conv_bufs_upload(&t);
    CHECK(up);
    if (up) {
        const void *bias = k->bias ? t.db : NULL, *res = k->res ? t.dr : NULL;
        int rc = tiled ? dt_cu_conv_dw_tiled(dtype, t.dx, t.dw, bias, res, t.dy, &g, nhwc, NULL)
             : nhwc    ? dt_cu_conv_depthwise_nhwc(dtype, t.dx, t.dw, bias, res, t.dy, &g, NULL)
                       : dt_cu_conv_depthwise(dtype, t.dx, t.dw, bias, res, t.dy, &g, NULL);
        CHECK_EQ_INT(rc, 0);
        CHECK_EQ_INT(conv_bufs_download(&t), 0);
        rel_err e = {0, 0};
        for (int64_t n = 0; n < k->n; n++)
            for (int64_t c = 0; c < k->c; c++)
                for (int64_t h = 0; h < oh; h++)
                    for (int64_t q = 0; q < ow; q++) {
                        double acc = 0;
                        for (int64_t a = 0; a < k->kh; a++)
                            for (int64_t f = 0; f < k->kw; f++) {
                                int64_t ih = h * k->s - k->p + a * k->d, iw = q * k->s - k->p + f * k->d;
                                if (ih >= 0 && ih < k->h && iw >= 0 && iw < k->w)
                                    acc += (double)t.x[at(false, n, c, ih, iw, k->c, k->h, k->w)] *
                                           t.w[(c * k->kh + a) * k->kw + f];
                            }
                        if (k->bias) acc += t.b[c];
                        if (k->res) acc += t.r[at(false, n, c, h, q, k->c, oh, ow)];
                        rel_err_add(&e, get(t.hy, dtype, at(nhwc, n, c, h, q, k->c, oh, ow)), act_ref(k->act, (float)acc));
                    }
        err = rel_err_of(&e);
    }
    conv_bufs_free(&t);
    return err;
}

static const dw_case cases[] = {
    /* n, c, h, w, kh, kw, s, d, p, bias, res, act */
    {1, 3, 7, 9, 3, 3, 1, 1, 1, true, false, DT_CU_RELU},
    {3, 5, 13, 11, 3, 3, 2, 1, 1, true, true, DT_CU_CLIP},
    {1, 17, 13, 11, 3, 3, 1, 2, 2, false, false, DT_CU_IDENTITY},
    {3, 33, 7, 9, 5, 5, 1, 1, 2, true, false, DT_CU_HARDSWISH},
    {1, 96, 13, 11, 5, 5, 2, 2, 4, true, true, DT_CU_SIGMOID},
    {1, 96, 13, 11, 3, 3, 2, 1, 0, false, true, DT_CU_RELU},
    {2, 40, 40, 70, 3, 3, 1, 1, 1, true, true, DT_CU_CLIP},      /* several tiles a plane */
    {1, 72, 37, 35, 5, 5, 2, 1, 2, true, false, DT_CU_RELU},      /* stride 2, tiles' edges */
    {1, 17, 13, 11, 5, 3, 1, 1, 1, true, false, DT_CU_RELU},      /* any kernel (no registers) */
    {3, 8, 9, 20, 1, 7, 1, 1, 3, false, true, DT_CU_HARDSWISH},
    {1, 5, 13, 11, 5, 5, 1, 20, 40, true, false, DT_CU_IDENTITY}, /* dilation 20: a smaller tile */
    {1, 130, 4, 3, 3, 3, 1, 1, 1, true, true, DT_CU_RELU},       /* channels past 2 blocks */
    /* 3x3, C % 8 == 0: the half types' generic NHWC kernel takes 8 channels a thread */
    {3, 8, 7, 9, 3, 3, 1, 1, 1, true, true, DT_CU_HARDSWISH},
    {1, 24, 15, 13, 3, 3, 2, 2, 2, true, false, DT_CU_RELU},
    {2, 144, 5, 3, 3, 3, 1, 1, 0, false, false, DT_CU_IDENTITY},
    {1, 576, 14, 14, 3, 3, 1, 1, 1, true, false, DT_CU_CLIP},
};

/* Host-side: what the planner refuses, without a GPU. */
static void check_refusals(void)
{
    /* Refused: a channel multiplier of 2 (the generic kernel's), a tile that cannot fit, a dtype. */
    dt_cu_conv m2 = {.n = 1, .c = 4, .m = 8, .ih = 9, .iw = 9, .oh = 7, .ow = 7, .kh = 3, .kw = 3, .sh = 1, .sw = 1,
                     .dh = 1, .dw = 1, .group = 4};
    CHECK(!dt_cu_conv_dw_tiled_applies(&m2, 0) && !dt_cu_conv_dw_tiled_applies(&m2, 1));
    CHECK_EQ_INT(dt_cu_conv_dw_tiled(DUCTILE_FLOAT32, NULL, NULL, NULL, NULL, NULL, &m2, 0, NULL), (int)cudaErrorInvalidValue);
    dt_cu_conv wide = m2;
    wide.m = 4, wide.dh = wide.dw = 2000, wide.ph = wide.pw = 2000;
    CHECK(!dt_cu_conv_dw_tiled_applies(&wide, 0) && !dt_cu_conv_dw_tiled_applies(&wide, 1));
    wide.dh = wide.dw = 1, wide.ph = wide.pw = 1;
    CHECK(dt_cu_conv_dw_tiled_applies(&wide, 0) && dt_cu_conv_dw_tiled_applies(&wide, 1));
    CHECK_EQ_INT(dt_cu_conv_dw_tiled(DUCTILE_FLOAT64, NULL, NULL, NULL, NULL, NULL, &wide, 0, NULL),
                 (int)cudaErrorInvalidValue);
}

int main(void)
{
    check_refusals();
    if (!test_cuda_device_found()) {
        fprintf(stderr, "skipped: no CUDA device found\n");
        TEST_MAIN_END();
    }
    static const int dtypes[] = {DUCTILE_FLOAT32, DUCTILE_FLOAT16, DUCTILE_BFLOAT16};
    static const char *const names[] = {"f32", "f16", "bf16"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int t = 0; t < 3; t++)
            for (int l = 0; l < 2; l++)
                for (int tiled = 1; tiled >= 0; tiled--) {
                    double err = run_case(&cases[i], dtypes[t], l == 1, tiled == 1);
                    double tol = t == 0 ? 1e-5 : 1e-2;
                    if (!(err <= tol))
                        fprintf(stderr, "case %zu %s %s %s: rel-L2 %.3e\n", i, names[t], l ? "nhwc" : "nchw",
                                tiled ? "tiled" : "generic", err);
                    CHECK(err <= tol);
                }
    TEST_MAIN_END();
}
#else
int main(void)
{
    fprintf(stderr, "skipped: no CUDA device found (CPU-only build)\n");
    TEST_MAIN_END();
}
#endif
