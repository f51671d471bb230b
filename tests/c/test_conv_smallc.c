/* The few-input-channel direct conv (conv_smallc.c, tactic DT_CONV_SMALLC) at odd sizes: 3x3,
 * 5x5 and 7x7 kernels, 1 to 4 input channels, 5, 16, 21 and 32 output channels (a block of 16 and a partial one), images
 * from 1x1 to 45x61, 3x131 and 5x150 (output rows of one, of fewer than 16 and of several 16-wide blocks),
 * symmetric and asymmetric pads, every epilogue, with and without a residual, raw and packed
 * weights, on 1 and 2 threads. Held to the double reference; on AVX-512, bit for bit to the
 * float operations the kernel documents (bias, then fmaf over the taps in (c, ky, kx) order,
 * taps outside the image read as 0; then the epilogue), the same bits
 * on both thread counts, and never a write past the output. 7x7 and 3x3/5x5 with more than
 * 16 output channels read rows split into even and odd columns (4 channels x 64 outputs a
 * pass): the same bits, output rows of one or two such passes, the last of one to four
 * vectors. Batch 2, and batch 1, where two threads split the image into bands of rows; the
 * mobilenet stem at batch 6 (an output large enough to be prefetched for writing). All of it
 * again at stride 1 (rows padded, not split), with superres' first conv. An infinity in the
 * image stays in the outputs whose windows hold it (float32 and bfloat16). */
#include "testutil.h"
#include "bf16_testutil.h"
#include "refact.h"
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

static void emulate(const dt_conv_geom *g, const float *x, const float *w, const float *b, const dt_epilogue *epi,
                    float *y)
{
    int64_t oh = g->out[0], ow = g->out[1], ih = g->in[0], iw = g->in[1], C = g->c, K = g->k[0];
    for (int64_t n = 0; n < g->batch; n++)
        for (int64_t m = 0; m < g->m; m++) {
            float *yp = y + (n * g->m + m) * oh * ow;
            for (int64_t oy = 0; oy < oh; oy++)
                for (int64_t ox = 0; ox < ow; ox++) {
                    float acc = b[m];
                    for (int64_t c = 0; c < C; c++)
                        for (int64_t ky = 0; ky < K; ky++) {
                            int64_t iy = oy * g->s[0] + ky - g->pb[0];
                            for (int64_t kx = 0; kx < K; kx++) {
                                int64_t ix = ox * g->s[1] + kx - g->pb[1];
                                bool in = iy >= 0 && iy < ih && ix >= 0 && ix < iw;
                                float v = in ? x[((n * C + c) * ih + iy) * iw + ix] : 0.0f;
                                acc = fmaf(w[((m * C + c) * K + ky) * K + kx], v, acc);
                            }
                        }
                    yp[oy * ow + ox] = acc;
                }
            if (epi) dt_epilogue_apply(epi, yp, epi->res ? epi->res + (n * g->m + m) * oh * ow : NULL, oh * ow);
        }
}

static int failures;
/* images per case; the stride (2: the stems; 1: superres' first conv); bfloat16 weights
 * (a --bf16 engine's, conv_smallc_bf16.c) */
static int64_t batch = 2, stride = 2;
static bool bf16;

static void check_case(int64_t k, int64_t c, int64_t m, int64_t h, int64_t w, int64_t pt, int64_t pe, dt_act act,
                       bool res, bool packed, dt_pool *pools[2], bool avx512)
{
    dt_conv_geom g = {.spatial = 2, .batch = batch, .c = c, .m = m, .group = 1, .in = {h, w}, .k = {k, k}, .s = {stride, stride},
                      .d = {1, 1}, .pb = {pt, pt}, .pe = {pe, pe}, .depth = {.in = 1, .out = 1, .k = 1, .s = 1, .d = 1}};
    for (int i = 0; i < 2; i++) g.out[i] = (g.in[i] + pt + pe - k) / stride + 1;
    int64_t nx = batch * c * h * w, ny = batch * m * g.out[0] * g.out[1];
    float *x = rand_buf(nx), *wt = rand_buf(m * c * k * k), *b = rand_buf(m), *r = rand_buf(ny);
    float *y[2], *ye = malloc(sizeof(float) * (size_t)ny);
    double *R = malloc(sizeof(double) * (size_t)ny);
    float *wp = NULL;
    uint16_t *wh = NULL;
    if (packed && !bf16) {
        wp = dt_aligned_alloc(64, sizeof(float) * (size_t)dt_cpu_conv_packed_floats(&g));
        dt_cpu_conv_pack_weights(&g, wt, wp);
    }
    if (bf16) {
        /* the GEMM's bfloat16 panels, all a bfloat16 layer has; the references then take the
         * rounded operands */
        wh = dt_aligned_alloc(64, (size_t)dt_cpu_conv_packed_bf16_bytes(&g));
        dt_cpu_conv_pack_weights_bf16(&g, wt, wh);
        for (int64_t i = 0; i < m * c * k * k; i++) wt[i] = round_bf16(wt[i]);
    }
    dt_epilogue epi = {.act = act, .p0 = act == DT_ACT_CLIP ? -0.25f : 1.0f / 6, .p1 = 0.5f, .res = res ? r : NULL};
    for (int t = 0; t < 2; t++) {
        y[t] = malloc(sizeof(float) * (size_t)(ny + GUARD));
        for (int64_t i = 0; i < ny + GUARD; i++) y[t][i] = -777.0f;
        dt_conv_args a = {.x = x, .w = packed || bf16 ? NULL : wt, .w_packed = wp, .w_bf16 = wh, .bias = b,
                          .epi = &epi, .y = y[t]};
        CHECK_EQ_INT(dt_cpu_conv_run_algo(&g, &a, DT_CONV_SMALLC, pools[t]), DUCTILE_OK);
    }
    if (bf16)
        for (int64_t i = 0; i < nx; i++) x[i] = round_bf16(x[i]);
    ref_conv(&(ref_conv_geom){.n = batch, .c = c, .m = m, .group = 1, .h = h, .w = w, .oh = g.out[0], .ow = g.out[1],
                              .kh = k, .kw = k, .sh = stride, .sw = stride, .dh = 1, .dw = 1, .pt = pt, .pl = pt},
             x, wt, b, epi.res, R);
    for (int64_t i = 0; i < ny; i++) R[i] = ref_act(act, R[i], epi.p0, epi.p1);
    double err = rel_err(y[0], R, ny);
    bool guard_ok = true;
    for (int t = 0; t < 2; t++)
        for (int64_t i = ny; i < ny + GUARD; i++) guard_ok &= y[t][i] == -777.0f;
    bool threads_ok = memcmp(y[0], y[1], sizeof(float) * (size_t)ny) == 0, bits_ok = true;
    if (avx512 && !bf16) {
        emulate(&g, x, wt, b, &epi, ye);
        bits_ok = memcmp(y[0], ye, sizeof(float) * (size_t)ny) == 0;
    }
    /* float32 sums of up to 196 taps (7x7, 4 channels): ~1e-5 of the double reference (of
     * the rounded operands, with bfloat16 weights) */
    bool ok = err <= 2e-5 && guard_ok && threads_ok && bits_ok;
    if (!ok && failures++ < 10)
        fprintf(stderr, "smallc%s stride %lld %lldx%lld c=%lld m=%lld %lldx%lld pads %lld+%lld act=%d res=%d packed=%d: err %g%s%s%s\n",
                bf16 ? " bf16" : "", (long long)stride, (long long)k, (long long)k, (long long)c, (long long)m, (long long)h, (long long)w, (long long)pt, (long long)pe, (int)act,
                (int)res, (int)packed, err, guard_ok ? "" : ", wrote past the output",
                threads_ok ? "" : ", 1 and 2 threads differ", bits_ok ? "" : ", bits differ from fmaf order");
    CHECK(ok);
    free(x), free(wt), free(b), free(r), free(y[0]), free(y[1]), free(ye), free(R);
    dt_free(wp);
    dt_free(wh);
}

static void test_smallc_odd_sizes_every_epilogue(dt_pool *pools[2], bool avx512)
{
    static const int64_t ms[] = {5, 16, 21, 32};
    static const int64_t hw[][2] = {{1, 1}, {2, 3}, {7, 9}, {17, 13}, {45, 61}, {3, 131}};
    static const dt_act acts[] = {DT_ACT_NONE, DT_ACT_RELU, DT_ACT_CLIP, DT_ACT_HARDSIGMOID, DT_ACT_HARDSWISH,
                                  DT_ACT_SIGMOID, DT_ACT_SILU};
    int n = 0;
    for (int64_t c = 1; c <= 4; c++)
        for (size_t mi = 0; mi < 4; mi++)
            for (size_t si = 0; si < 6; si++)
                for (int pads = 0; pads < 2; pads++, n++) {
                    /* pads 1+1 (the stems), or 0+1; a 1x1 image needs both to hold a window */
                    int64_t pt = pads == 0 || hw[si][0] < 2 ? 1 : 0;
                    check_case(3, c, ms[mi], hw[si][0], hw[si][1], pt, 1, acts[n % 7], n % 3 == 0, n % 2 == 0, pools,
                               avx512);
                }
}

/* 5x5 and 7x7 (ResNet's stem): pads of k/2 both sides, or k/2 and one less (the windows
 * overhang the image's first rows and columns, or not its last); images from one window
 * (a 1x1 with pads k/2) to several 16-wide output blocks. */
static void test_smallc_large_kernels_odd_sizes(dt_pool *pools[2], bool avx512)
{
    static const int64_t ms[] = {5, 21, 64};
    static const int64_t hw[][2] = {{1, 1}, {4, 7}, {9, 13}, {37, 35}, {29, 71}, {5, 150}};
    static const dt_act acts[] = {DT_ACT_NONE, DT_ACT_RELU, DT_ACT_CLIP, DT_ACT_HARDSWISH, DT_ACT_SIGMOID, DT_ACT_SILU};
    int n = 0;
    for (int64_t k = 5; k <= 7; k += 2)
        for (int64_t c = 1; c <= 4; c++)
            for (size_t mi = 0; mi < 3; mi++)
                for (size_t si = 0; si < 6; si++, n++) {
                    int64_t pt = k / 2, pe = si % 2 && hw[si][0] > 1 ? k / 2 - 1 : k / 2;
                    check_case(k, c, ms[mi], hw[si][0], hw[si][1], pt, pe, acts[n % 6], n % 3 == 0, n % 2 == 0, pools,
                               avx512);
                }
}

/* The stem of mobilenet_v2 (3 -> 32, 224x224, Clip) once, as it runs. */
static void test_smallc_mobilenet_stem(dt_pool *pools[2], bool avx512)
{
    check_case(3, 3, 32, 224, 224, 1, 1, DT_ACT_CLIP, false, true, pools, avx512);
}

/* superres' first conv (1 -> 64, 5x5 stride 1, pads 2, 224x224, Relu) once, as it runs. */
static void test_smallc_superres_conv1(dt_pool *pools[2], bool avx512)
{
    check_case(5, 1, 64, 224, 224, 2, 2, DT_ACT_RELU, false, true, pools, avx512);
}

/* The stem of resnet50 (3 -> 64, 7x7 stride 2, pads 3, 224x224, Relu) once, as it runs. */
static void test_smallc_resnet_stem(dt_pool *pools[2], bool avx512)
{
    check_case(7, 3, 64, 224, 224, 3, 3, DT_ACT_RELU, false, true, pools, avx512);
}

/* An infinity in the image reaches only the outputs whose windows hold it: every other
 * output is finite and within the usual error of the double reference (a tap outside a
 * window multiplied by a zero weight would make Inf x 0 = NaN there). Each kernel size and
 * stride, 3 channels, the infinity at an even and at an odd column. */
static void test_smallc_infinity_stays_in_its_windows(dt_pool *pool)
{
    for (int64_t k = 3; k <= 7; k += 2)
        for (int64_t s = 1; s <= 2; s++)
            for (int64_t col = 10; col <= 11; col++) {
                int64_t c = 3, m = 21, h = 19, w = 37, p = k / 2;
                dt_conv_geom g = {.spatial = 2, .batch = 1, .c = c, .m = m, .group = 1, .in = {h, w}, .k = {k, k},
                                  .s = {s, s}, .d = {1, 1}, .pb = {p, p}, .pe = {p, p},
                                  .depth = {.in = 1, .out = 1, .k = 1, .s = 1, .d = 1}};
                for (int i = 0; i < 2; i++) g.out[i] = (g.in[i] + 2 * p - k) / s + 1;
                int64_t nx = c * h * w, ny = m * g.out[0] * g.out[1];
                float *x = rand_buf(nx), *wt = rand_buf(m * c * k * k), *b = rand_buf(m);
                float *y = malloc(sizeof(float) * (size_t)ny);
                double *R = malloc(sizeof(double) * (size_t)ny);
                x[(1 * h + 7) * w + col] = INFINITY;   /* channel 1, row 7 */
                uint16_t *wh = NULL;
                if (bf16) {
                    wh = dt_aligned_alloc(64, (size_t)dt_cpu_conv_packed_bf16_bytes(&g));
                    dt_cpu_conv_pack_weights_bf16(&g, wt, wh);
                    for (int64_t i = 0; i < m * c * k * k; i++) wt[i] = round_bf16(wt[i]);
                }
                dt_conv_args a = {.x = x, .w = bf16 ? NULL : wt, .w_bf16 = wh, .bias = b, .y = y};
                CHECK_EQ_INT(dt_cpu_conv_run_algo(&g, &a, DT_CONV_SMALLC, pool), DUCTILE_OK);
                if (bf16)
                    for (int64_t i = 0; i < nx; i++) x[i] = round_bf16(x[i]);
                ref_conv(&(ref_conv_geom){.n = 1, .c = c, .m = m, .group = 1, .h = h, .w = w, .oh = g.out[0],
                                          .ow = g.out[1], .kh = k, .kw = k, .sh = s, .sw = s, .dh = 1, .dw = 1, .pt = p,
                                          .pl = p},
                         x, wt, b, NULL, R);
                int64_t bad = 0, held = 0;
                for (int64_t i = 0; i < ny; i++) {
                    if (!isfinite(R[i])) {
                        held++;
                        continue;
                    }
                    if (!isfinite(y[i]) || fabs(y[i] - R[i]) > 1e-4 * (1.0 + fabs(R[i]))) bad++;
                }
                if (bad && failures++ < 10)
                    fprintf(stderr, "smallc%s %lldx%lld stride %lld, Inf at column %lld: %lld of %lld outputs outside its windows wrong\n",
                            bf16 ? " bf16" : "", (long long)k, (long long)k, (long long)s, (long long)col,
                            (long long)bad, (long long)(ny - held));
                CHECK(bad == 0 && held > 0 && held < ny);
                free(x), free(wt), free(b), free(y), free(R);
                dt_free(wh);
            }
}

int main(void)
{
    __builtin_cpu_init();
    bool avx512 = __builtin_cpu_supports("avx512f");
    dt_pool *pools[2] = {NULL, NULL};
    CHECK_EQ_INT(dt_pool_create(1, &pools[0]), DUCTILE_OK);
    CHECK_EQ_INT(dt_pool_create(2, &pools[1]), DUCTILE_OK);
    test_smallc_odd_sizes_every_epilogue(pools, avx512);
    test_smallc_mobilenet_stem(pools, avx512);
    test_smallc_large_kernels_odd_sizes(pools, avx512);
    test_smallc_resnet_stem(pools, avx512);
    batch = 1;
    test_smallc_odd_sizes_every_epilogue(pools, avx512);
    test_smallc_large_kernels_odd_sizes(pools, avx512);
    test_smallc_resnet_stem(pools, avx512);
    /* 6 images of mobilenet_v2's stem: 9.6 MB of output, whose next rows each pass prefetches
     * for writing (DT_SMALLC_FAR_BYTES) */
    batch = 6;
    test_smallc_mobilenet_stem(pools, avx512);
    /* stride 1: every case again, batch 2 and 1 */
    stride = 1;
    for (batch = 2; batch >= 1; batch--) {
        test_smallc_odd_sizes_every_epilogue(pools, avx512);
        test_smallc_large_kernels_odd_sizes(pools, avx512);
        test_smallc_superres_conv1(pools, avx512);
    }
    test_smallc_infinity_stays_in_its_windows(pools[1]);
    /* bfloat16 weights: every case again at both strides, batch 2 and 1 */
    if (!dt_cpu_has_bf16()) {
        fprintf(stderr, "skip: this CPU lacks AVX512-BF16; bfloat16 passes not run\n");
    } else {
        bf16 = true;
        for (stride = 2; stride >= 1; stride--)
            for (batch = 2; batch >= 1; batch--) {
                test_smallc_odd_sizes_every_epilogue(pools, avx512);
                test_smallc_large_kernels_odd_sizes(pools, avx512);
                if (stride == 2) test_smallc_mobilenet_stem(pools, avx512), test_smallc_resnet_stem(pools, avx512);
                else test_smallc_superres_conv1(pools, avx512);
            }
        /* the output prefetched for writing */
        stride = 2, batch = 6;
        test_smallc_mobilenet_stem(pools, avx512);
        test_smallc_infinity_stays_in_its_windows(pools[1]);
    }
    dt_pool_free(pools[0]);
    dt_pool_free(pools[1]);
    TEST_MAIN_END();
}
