/* The depthwise kernels (conv_dw.c, and conv_dw16.c wherever it applies) at odd sizes: 3, 5 and 17 channels, 7x9, 9x13, 13x7 and
 * 7x35 images (29x31 and 28x53: read in place) (one, two and three 16-wide column blocks, every remainder of the 4-row block),
 * 3x3 and 5x5, strides 1 and 2, dilations 1 and 2, asymmetric pads, 3x3 stride 1 with pads of 1
 * (read by lane shifts), batch 2, every epilogue
 * (residual and activation) on 1 and 2 threads. Held to the double reference and to the
 * direct kernel (the reference kernel of the CPU backend); on AVX-512 and AVX2, bit for bit to the
 * float operations the kernel documents (bias, then fmaf over the padded taps in (ky, kx)
 * order, then dt_epilogue_apply), the same with x, residual and y laid out [C][N][H][W], and
 * never a write past the output. */
#include "testutil.h"
#include "refact.h"
#include "refconv.h"

#include "backend/cpu/conv.h"
#include "backend/cpu/conv_dw.h"
#include "backend/cpu/gemm.h"
#include "core/alloc.h"
#include "core/threadpool.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GUARD 40

/* The kernel's float operations in scalar form: per output, bias, then for every tap of the
 * padded plane (pads read as 0) in (ky, kx) order acc = fmaf(w, x, acc); then the epilogue. */
static void emulate(const dt_conv_geom *g, const float *x, const float *w, const float *b,
                    const dt_epilogue *epi, float *y)
{
    int64_t oh = g->out[0], ow = g->out[1], ih = g->in[0], iw = g->in[1];
    for (int64_t p = 0; p < g->batch * g->c; p++) {
        int64_t c = p % g->c;
        float *yp = y + p * oh * ow;
        for (int64_t oy = 0; oy < oh; oy++)
            for (int64_t ox = 0; ox < ow; ox++) {
                float acc = b[c];
                for (int64_t ky = 0; ky < g->k[0]; ky++)
                    for (int64_t kx = 0; kx < g->k[1]; kx++) {
                        int64_t iy = oy * g->s[0] + ky * g->d[0] - g->pb[0];
                        int64_t ix = ox * g->s[1] + kx * g->d[1] - g->pb[1];
                        float v = iy >= 0 && iy < ih && ix >= 0 && ix < iw ? x[(p * ih + iy) * iw + ix] : 0.0f;
                        acc = fmaf(w[(c * g->k[0] + ky) * g->k[1] + kx], v, acc);
                    }
                yp[oy * ow + ox] = acc;
            }
        if (epi) dt_epilogue_apply(epi, yp, epi->res ? epi->res + p * oh * ow : NULL, oh * ow);
    }
}

static ductile_status run(const dt_conv_geom *g, dt_conv_algo algo, const float *x, const float *w,
                          const float *b, const dt_epilogue *epi, float *y, dt_pool *pool)
{
    dt_conv_args a = {.x = x, .w = w, .bias = b, .epi = epi, .y = y};
    return dt_cpu_conv_run_algo(g, &a, algo, pool);
}

/* Planes of px floats, batch 2 of c channels, between NCHW and [C][N][H][W] (to_cnhw: NCHW in
 * src, [C][N] order in dst; else back). */
static void swap_planes(const float *src, float *dst, int64_t c, int64_t px, bool to_cnhw)
{
    for (int64_t n = 0; n < 2; n++)
        for (int64_t ch = 0; ch < c; ch++) {
            int64_t nchw = (n * c + ch) * px, cnhw = (ch * 2 + n) * px;
            memcpy(dst + (to_cnhw ? cnhw : nchw), src + (to_cnhw ? nchw : cnhw), sizeof(float) * (size_t)px);
        }
}

static int failures;

static void check_case_algo(int64_t c, int64_t h, int64_t w, int k, int s, int d, dt_act act, bool res, dt_pool *pool,
                            bool avx512, dt_conv_algo algo, int64_t pe_set)
{
    /* Pads: leading d*(k/2), trailing pe_set, or when it is negative one less at stride 2
     * (asymmetric), one more at 1. */
    if (!avx512 && (act == DT_ACT_SIGMOID_LEAN || act == DT_ACT_SILU_LEAN)) return;   /* AVX-512 only */
    int64_t pl = d * (k / 2), pe = pe_set >= 0 ? pe_set : s == 2 ? pl - 1 : pl + 1;
    dt_conv_geom g = {.spatial = 2, .batch = 2, .c = c, .m = c, .group = c, .in = {h, w}, .k = {k, k},
                      .s = {s, s}, .d = {d, d}, .pb = {pl, pl}, .pe = {pe, pe},
                      .depth = {.in = 1, .out = 1, .k = 1, .s = 1, .d = 1}};
    for (int i = 0; i < 2; i++) g.out[i] = (g.in[i] + pl + pe - d * (k - 1) - 1) / s + 1;
    int64_t nx = 2 * c * h * w, ny = 2 * c * g.out[0] * g.out[1];
    float *x = rand_buf(nx), *wt = rand_buf(c * k * k), *b = rand_buf(c), *r = rand_buf(ny);
    float *y = malloc(sizeof(float) * (size_t)(ny + GUARD)), *yd = malloc(sizeof(float) * (size_t)ny);
    float *ye = malloc(sizeof(float) * (size_t)ny);
    double *R = malloc(sizeof(double) * (size_t)ny);
    dt_epilogue epi = {.act = act, .p0 = act == DT_ACT_CLIP ? -0.25f : 1.0f / 6,
                       .p1 = act == DT_ACT_CLIP ? 0.5f : 0.5f, .res = res ? r : NULL};
    for (int64_t i = 0; i < ny + GUARD; i++) y[i] = -777.0f;
    CHECK_EQ_INT(run(&g, algo, x, wt, b, &epi, y, pool), DUCTILE_OK);
    CHECK_EQ_INT(run(&g, DT_CONV_DIRECT, x, wt, b, &epi, yd, pool), DUCTILE_OK);
    ref_conv(&(ref_conv_geom){.n = 2, .c = c, .m = c, .group = c, .h = h, .w = w, .oh = g.out[0], .ow = g.out[1],
                              .kh = k, .kw = k, .sh = s, .sw = s, .dh = d, .dw = d, .pt = pl, .pl = pl},
             x, wt, b, epi.res, R);
    for (int64_t i = 0; i < ny; i++) R[i] = ref_act(act, R[i], epi.p0, epi.p1);
    double e_ref = rel_err(y, R, ny), e_direct = rel_err(yd, R, ny);
    bool guard_ok = true;
    for (int64_t i = ny; i < ny + GUARD; i++) guard_ok &= y[i] == -777.0f;
    bool bits_ok = true;
    /* Strides past 2 take the plain-C loop (no FMA): held to the tolerance only. Without
     * AVX-512, the AVX2 plane kernel (conv_dw_avx2.c) has the same bits. */
    if ((avx512 || dt_cpu_has_avx2_fma()) && s <= 2) {
        emulate(&g, x, wt, b, &epi, ye);
        bits_ok = memcmp(y, ye, sizeof(float) * (size_t)ny) == 0;
    }
    /* The same conv over x, residual and y laid out [C][N][H][W] (conv.h: x_cs, y_cs): the
     * same values, each at its place there. */
    int64_t ipx = h * w, opx = g.out[0] * g.out[1];
    float *xc = malloc(sizeof(float) * (size_t)nx), *rc = malloc(sizeof(float) * (size_t)ny);
    float *yc = malloc(sizeof(float) * (size_t)ny);
    swap_planes(x, xc, c, ipx, true);
    swap_planes(r, rc, c, opx, true);
    dt_epilogue epic = epi;
    if (epic.res) epic.res = rc;
    dt_conv_args ac = {.x = xc, .x_cs = 2, .w = wt, .bias = b, .epi = &epic, .y = yc, .y_cs = 2};
    CHECK_EQ_INT(dt_cpu_conv_run_algo(&g, &ac, algo, pool), DUCTILE_OK);
    bool cnhw_ok = true;
    for (int64_t n = 0; n < 2; n++)
        for (int64_t ch = 0; ch < c; ch++)
            cnhw_ok &= !memcmp(yc + (ch * 2 + n) * opx, y + (n * c + ch) * opx, sizeof(float) * (size_t)opx);
    free(xc), free(rc), free(yc);
    /* the lean sigmoid (a half-precision layer's): within 1e-4 of the exact one */
    double tol = act == DT_ACT_SIGMOID_LEAN || act == DT_ACT_SILU_LEAN ? 1e-4 : 1e-5;
    bool ok = e_ref <= tol && e_direct <= tol && guard_ok && bits_ok && cnhw_ok;
    if (!ok && failures++ < 10)
        fprintf(stderr, "dw algo=%d c=%lld %lldx%lld k=%d s=%d d=%d act=%d res=%d threads=%d: err %g (direct %g)%s%s%s\n",
                (int)algo, (long long)c, (long long)h, (long long)w, k, s, d, (int)act, (int)res, dt_pool_threads(pool), e_ref,
                e_direct, guard_ok ? "" : ", wrote past the output", bits_ok ? "" : ", bits differ from fmaf order",
                cnhw_ok ? "" : ", [C][N][H][W] planes differ");
    CHECK(ok);
    free(x), free(wt), free(b), free(r), free(y), free(yd), free(ye), free(R);
}

/* Both depthwise tactics where both apply: the row kernels and 16 channels per vector. */
static void check_case(int64_t c, int64_t h, int64_t w, int k, int s, int d, dt_act act, bool res, dt_pool *pool,
                       bool avx512)
{
    check_case_algo(c, h, w, k, s, d, act, res, pool, avx512, DT_CONV_DEPTHWISE, -1);
    int64_t pl = d * (k / 2), pe = s == 2 ? pl - 1 : pl + 1;   /* check_case_algo's pads */
    dt_conv_geom g = {.spatial = 2, .c = c, .m = c, .group = c, .k = {k, k}, .s = {s, s}, .d = {d, d},
                      .out = {1, (w + pl + pe - d * (k - 1) - 1) / s + 1}};
    if (dt_cpu_dw16_applies(&g)) check_case_algo(c, h, w, k, s, d, act, res, pool, avx512, DT_CONV_DW16, -1);
}

/* 3x3 stride 2 to output rows of at most 7, two output rows a vector (conv_dw.c:
 * dt_dw_pairs_plane): mobilenet_v2's pads of 1 on both sides (14x14 -> 7x7: an odd row
 * count, the last vector one row) and odd sizes around (15x13 -> 8x7, 13x5 -> 7x3, 9x14 ->
 * 5x7, 3x1 -> 2x1, 1x11 -> 1x6), 16 and 21 channels, every epilogue with and without a
 * residual, on both tactics (the 16-channel one no longer chosen there). */
static void test_depthwise_pairs(dt_pool *pool, bool avx512)
{
    static const int64_t hw[][2] = {{14, 14}, {15, 13}, {13, 5}, {9, 14}, {3, 1}, {1, 11}};
    static const dt_act acts[] = {DT_ACT_NONE, DT_ACT_RELU, DT_ACT_CLIP, DT_ACT_HARDSIGMOID, DT_ACT_HARDSWISH,
                                  DT_ACT_SIGMOID, DT_ACT_SILU, DT_ACT_SIGMOID_LEAN, DT_ACT_SILU_LEAN};
    dt_conv_geom g = {.spatial = 2, .batch = 2, .c = 576, .m = 576, .group = 576, .in = {14, 14}, .out = {7, 7},
                      .k = {3, 3}, .s = {2, 2}, .d = {1, 1}, .pb = {1, 1}, .pe = {1, 1}};
    CHECK(dt_cpu_dw_pairs_applies(&g));
    CHECK(!dt_cpu_dw16_pays(&g));
    g.out[1] = 8;
    CHECK(!dt_cpu_dw_pairs_applies(&g));
    int n = 0;
    for (size_t si = 0; si < sizeof hw / sizeof hw[0]; si++)
        for (int64_t c = 16; c <= 21; c += 5)
            for (size_t ai = 0; ai < sizeof acts / sizeof acts[0]; ai++, n++) {
                check_case_algo(c, hw[si][0], hw[si][1], 3, 2, 1, acts[ai], n % 2, pool, avx512, DT_CONV_DEPTHWISE, 1);
                check_case_algo(c, hw[si][0], hw[si][1], 3, 2, 1, acts[ai], n % 3 == 0, pool, avx512, DT_CONV_DW16, 1);
            }
}

/* 3x3 stride 1 with one column of padding each side (conv_dw.c: dt_dw_narrow_plane, rows of
 * at most 32, each input row one or two loads and lane shifts; dt_dw_wide_plane, wider rows,
 * loads and broadcasts of the columns either side): mobilenet_v2's 28x28, 14x14 and 7x7 and
 * odd sizes around (rows of 1, 2, 9, 15, 16, 17, 31, 32, 33, 47, 56 and 113; heights of every
 * remainder of the 4-row block), 16 and 21 channels, every epilogue with and without a
 * residual, on both tactics (where the 16-channel one applies); the same planes at stride 2
 * with a left pad of 1 and right pads of 0 and 1 (dt_dw_wide_plane: even and odd columns of
 * two loads) and 2; and at stride 1 with a trailing pad of 0 or 2 (the other kernels). */
static void test_depthwise_narrow(dt_pool *pool, bool avx512)
{
    static const int64_t hw[][2] = {{14, 14}, {7, 7}, {1, 1}, {2, 16}, {16, 2}, {13, 9}, {5, 15}, {17, 11},
                                    {28, 28}, {6, 17}, {9, 32}, {3, 31}, {7, 33}, {10, 47}, {5, 56}, {2, 113}};
    static const dt_act acts[] = {DT_ACT_NONE, DT_ACT_RELU, DT_ACT_CLIP, DT_ACT_HARDSIGMOID, DT_ACT_HARDSWISH,
                                  DT_ACT_SIGMOID, DT_ACT_SILU, DT_ACT_SIGMOID_LEAN, DT_ACT_SILU_LEAN};
    int n = 0;
    for (size_t si = 0; si < sizeof hw / sizeof hw[0]; si++)
        for (int64_t c = 16; c <= 21; c += 5)
            for (size_t ai = 0; ai < sizeof acts / sizeof acts[0]; ai++, n++) {
                check_case_algo(c, hw[si][0], hw[si][1], 3, 1, 1, acts[ai], n % 2, pool, avx512, DT_CONV_DEPTHWISE, 1);
                dt_conv_geom g = {.spatial = 2, .c = c, .m = c, .group = c, .k = {3, 3}, .s = {1, 1}, .d = {1, 1},
                                  .out = {1, hw[si][1]}};
                if (dt_cpu_dw16_applies(&g))
                    check_case_algo(c, hw[si][0], hw[si][1], 3, 1, 1, acts[ai], n % 3 == 0, pool, avx512, DT_CONV_DW16,
                                    1);
            }
    /* stride 2, right pads of 0 and 1 (dt_dw_wide_plane; output rows of at most 7 pair up),
     * and 2 (the row kernels) */
    for (size_t si = 0; si < sizeof hw / sizeof hw[0]; si++)
        for (int64_t pe = 0; pe <= 2; pe++, n++)
            if (hw[si][0] + 1 + pe >= 3 && hw[si][1] + 1 + pe >= 3)
                check_case_algo(16 + pe % 2 * 5, hw[si][0], hw[si][1], 3, 2, 1, acts[n % 7], n % 2, pool, avx512,
                                DT_CONV_DEPTHWISE, pe);
    for (size_t si = 0; si < sizeof hw / sizeof hw[0]; si++)
        for (int64_t pe = 0; pe <= 2; pe += 2)
            if (hw[si][0] + 1 + pe >= 3 && hw[si][1] + 1 + pe >= 3)
                check_case_algo(16, hw[si][0], hw[si][1], 3, 1, 1, DT_ACT_CLIP, si % 2, pool, avx512,
                                DT_CONV_DEPTHWISE, pe);
}

static void test_depthwise_odd_sizes_every_epilogue(dt_pool *pool, bool avx512)
{
    static const int64_t chans[] = {3, 5, 17};
    static const int64_t hw[][2] = {{7, 9}, {9, 13}, {13, 7}, {7, 35}};
    static const dt_act acts[] = {DT_ACT_NONE, DT_ACT_RELU, DT_ACT_CLIP, DT_ACT_HARDSIGMOID, DT_ACT_HARDSWISH,
                                  DT_ACT_SIGMOID, DT_ACT_SILU, DT_ACT_SIGMOID_LEAN, DT_ACT_SILU_LEAN};
    for (size_t ci = 0; ci < 3; ci++)
        for (size_t si = 0; si < 4; si++)
            for (int k = 3; k <= 5; k += 2)
                for (int s = 1; s <= 2; s++)
                    for (int d = 1; d <= 2; d++) {
                        /* Each geometry once per activation; the residual on alternate ones. */
                        for (size_t ai = 0; ai < sizeof acts / sizeof acts[0]; ai++)
                            check_case(chans[ci], hw[si][0], hw[si][1], k, s, d, acts[ai], (ai + ci + si) % 2, pool,
                                       avx512);
                    }
}

/* Planes of 28x28 and more, which the row kernels read in place (3x3; 5x5 stride 2), masked
 * loads standing in for the padding: 29x31 and 28x53 (a row of four 16-column blocks, the
 * last partial), every kernel, stride and dilation of the row kernels, with and without a
 * residual. */
static void test_depthwise_in_place(dt_pool *pool, bool avx512)
{
    static const int64_t chans[] = {3, 17};
    static const int64_t hw[][2] = {{29, 31}, {28, 53}};
    for (size_t ci = 0; ci < 2; ci++)
        for (size_t si = 0; si < 2; si++)
            for (int k = 3; k <= 5; k += 2)
                for (int s = 1; s <= 2; s++)
                    for (int d = 1; d <= 2; d++) {
                        check_case(chans[ci], hw[si][0], hw[si][1], k, s, d, DT_ACT_RELU, true, pool, avx512);
                        check_case(chans[ci], hw[si][0], hw[si][1], k, s, d, DT_ACT_HARDSWISH, false, pool, avx512);
                    }
}

/* Geometries the row kernel leaves to the other paths (dilation 3, stride 3, 7x7, a
 * non-square kernel is not built here) still match the reference with every epilogue. */
static void test_depthwise_other_geometries(dt_pool *pool, bool avx512)
{
    check_case(5, 13, 40, 3, 1, 3, DT_ACT_HARDSWISH, true, pool, avx512);
    check_case(5, 13, 40, 3, 3, 1, DT_ACT_RELU, false, pool, avx512);
    check_case(3, 11, 37, 7, 2, 1, DT_ACT_CLIP, true, pool, avx512);
}

/* The 16-channel kernel (conv_dw16.c) where it is chosen, small planes, and around (both
 * tactics wherever the 16-channel one applies: output rows under 16): 16 channels (one
 * block), 21 and 35 (blocks and a tail that the row kernels take), 48; planes 1x1 to 17x13
 * (output planes of one pixel, of fewer pixels than a block of 8, 16-pixel chunks with
 * remainders), every kernel, stride and dilation, every epilogue over the cases. Rows of 16
 * outputs and more are refused (they would only grow the scratch), but 5x5 ones up to 47. */
static void test_depthwise_16_channels(dt_pool *pool, bool avx512)
{
    static const int64_t chans[] = {16, 21, 35, 48};
    static const int64_t hw[][2] = {{1, 1}, {2, 3}, {7, 7}, {14, 14}, {17, 13}, {5, 17}};
    static const dt_act acts[] = {DT_ACT_NONE, DT_ACT_RELU, DT_ACT_CLIP, DT_ACT_HARDSIGMOID, DT_ACT_HARDSWISH,
                                  DT_ACT_SIGMOID, DT_ACT_SILU, DT_ACT_SIGMOID_LEAN, DT_ACT_SILU_LEAN};
    dt_conv_geom wide = {.spatial = 2, .c = 16, .m = 16, .group = 16, .k = {3, 3}, .s = {1, 1}, .d = {1, 1},
                         .out = {7, 16}};
    CHECK(!dt_cpu_conv_algo_applies(&wide, DT_CONV_DW16));
    wide.out[1] = 15;
    CHECK(dt_cpu_conv_algo_applies(&wide, DT_CONV_DW16));
    /* 5x5: rows of up to 47 outputs (the timer chooses); seg_lraspp's dilated planes at 49x35
     * and a stride-2 one to rows of 47 */
    dt_conv_geom wide5 = wide;
    wide5.k[0] = wide5.k[1] = 5;
    wide5.out[1] = 48;
    CHECK(!dt_cpu_conv_algo_applies(&wide5, DT_CONV_DW16));
    wide5.out[1] = 47;
    CHECK(dt_cpu_conv_algo_applies(&wide5, DT_CONV_DW16));
    check_case(21, 49, 35, 5, 1, 2, DT_ACT_HARDSWISH, true, pool, avx512);
    check_case(35, 13, 94, 5, 2, 1, DT_ACT_RELU, false, pool, avx512);
    int n = 0;
    for (size_t ci = 0; ci < 4; ci++)
        for (size_t si = 0; si < 6; si++)
            for (int k = 3; k <= 5; k += 2)
                for (int s = 1; s <= 2; s++)
                    for (int d = 1; d <= 2; d++, n++) {
                        /* Skipped as the importer refuses them: windows larger than the
                         * padded image (check_case's pads: 2 d (k/2) + 1 at stride 1, one
                         * less than that at stride 2). */
                        int64_t ek = d * (k - 1) + 1, padded = 2 * d * (k / 2) + (s == 2 ? -1 : 1);
                        if (hw[si][0] + padded < ek || hw[si][1] + padded < ek) continue;
                        check_case(chans[ci], hw[si][0], hw[si][1], k, s, d, acts[n % 7], n % 4 < 2, pool,
                                   avx512);
                    }
}

static float bf16_value(float v)
{
    uint32_t u = (uint32_t)dt_bf16_round(v) << 16;
    memcpy(&v, &u, sizeof v);
    return v;
}

/* The bfloat16 path of the 16-channel kernel (dt_conv_args.dw_bf16, a `bf16` layer's run on
 * AVX512-BF16): the channels of full 16-channel blocks are x and w rounded to bfloat16, then
 * the products exact and the sums in float32, so within 1e-5 (of the largest output) of a
 * double reference on the rounded values (and the residual and activation on that); the
 * channels past the last block take the float32 row kernels, held to the unrounded values.
 * 5x5, strides 1 and 2, odd and even plane heights (the pair rows' last one half empty),
 * planes 1x1 to 17x13, 16, 21 and 35 channels, x and y as [C][N][H][W] too; 3x3 and a
 * dilation of 2, which the path leaves to the float32 kernel (its values, unrounded). */
static void check_dw16_bf16(int64_t c, int64_t h, int64_t w, int k, int s, int d, dt_act act, bool res, bool cnhw,
                            dt_pool *pool)
{
    int64_t pl = d * (k / 2), pe = s == 2 ? pl - 1 : pl + 1;
    dt_conv_geom g = {.spatial = 2, .batch = 2, .c = c, .m = c, .group = c, .in = {h, w}, .k = {k, k},
                      .s = {s, s}, .d = {d, d}, .pb = {pl, pl}, .pe = {pe, pe},
                      .depth = {.in = 1, .out = 1, .k = 1, .s = 1, .d = 1}};
    for (int i = 0; i < 2; i++) g.out[i] = (g.in[i] + pl + pe - d * (k - 1) - 1) / s + 1;
    if (!dt_cpu_dw16_applies(&g)) return;
    int64_t ipx = h * w, opx = g.out[0] * g.out[1], nx = 2 * c * ipx, ny = 2 * c * opx, full = c / 16 * 16;
    float *x = rand_buf(nx), *wt = rand_buf(c * k * k), *b = rand_buf(c), *r = rand_buf(ny);
    float *xr = malloc(sizeof(float) * (size_t)nx), *wr = malloc(sizeof(float) * (size_t)(c * k * k));
    float *y = malloc(sizeof(float) * (size_t)(ny + GUARD)), *ye = malloc(sizeof(float) * (size_t)ny);
    double *R = malloc(sizeof(double) * (size_t)ny);
    bool bf = d == 1 && k == 5;   /* 3x3 and dilation 2: the float32 kernel */
    for (int64_t i = 0; i < nx; i++) xr[i] = bf && (i / ipx) % c < full ? bf16_value(x[i]) : x[i];
    for (int64_t i = 0; i < c * k * k; i++) wr[i] = bf && i / (k * k) < full ? bf16_value(wt[i]) : wt[i];
    dt_epilogue epi = {.act = act, .p0 = 1.0f / 6, .p1 = 0.5f, .res = res ? r : NULL};
    for (int64_t i = 0; i < ny + GUARD; i++) y[i] = -777.0f;
    /* x, residual and y as [C][N][H][W] (x_cs = y_cs = 2) or NCHW */
    float *xl = x, *rl = r, *yl = y;
    if (cnhw) {
        xl = malloc(sizeof(float) * (size_t)nx), rl = malloc(sizeof(float) * (size_t)ny);
        yl = malloc(sizeof(float) * (size_t)ny);
        swap_planes(x, xl, c, ipx, true);
        swap_planes(r, rl, c, opx, true);
    }
    dt_epilogue el = epi;
    if (el.res) el.res = rl;
    dt_conv_args a = {.x = xl, .x_cs = cnhw ? 2 : 0, .w = wt, .bias = b, .epi = &el, .y = yl, .y_cs = cnhw ? 2 : 0,
                      .dw_bf16 = true};
    CHECK_EQ_INT(dt_cpu_conv_run_algo(&g, &a, DT_CONV_DW16, pool), DUCTILE_OK);
    if (cnhw) {
        swap_planes(yl, y, c, opx, false);
        free(xl), free(rl), free(yl);
    }
    ref_conv(&(ref_conv_geom){.n = 2, .c = c, .m = c, .group = c, .h = h, .w = w, .oh = g.out[0], .ow = g.out[1],
                              .kh = k, .kw = k, .sh = s, .sw = s, .dh = d, .dw = d, .pt = pl, .pl = pl},
             xr, wr, b, epi.res, R);
    for (int64_t i = 0; i < ny; i++) R[i] = ref_act(act, R[i], epi.p0, epi.p1);
    double err = rel_err(y, R, ny), tol = act == DT_ACT_SIGMOID_LEAN || act == DT_ACT_SILU_LEAN ? 1e-4 : 1e-5;
    /* and not the float32 result: the rounding shows (the largest difference from it is
     * ~1e-3 of the largest output on these values) */
    dt_conv_args a32 = {.x = x, .w = wt, .bias = b, .epi = &epi, .y = ye};
    CHECK_EQ_INT(dt_cpu_conv_run_algo(&g, &a32, DT_CONV_DW16, pool), DUCTILE_OK);
    bool differs = memcmp(y, ye, sizeof(float) * (size_t)ny) != 0;
    bool guard_ok = true;
    for (int64_t i = ny; i < ny + GUARD; i++) guard_ok &= y[i] == -777.0f;
    bool ok = err <= tol && guard_ok && (differs || !bf || !full);
    if (!ok && failures++ < 10)
        fprintf(stderr, "dw16 bf16 c=%lld %lldx%lld k=%d s=%d d=%d act=%d res=%d cnhw=%d threads=%d: err %g%s%s\n",
                (long long)c, (long long)h, (long long)w, k, s, d, (int)act, (int)res, (int)cnhw,
                dt_pool_threads(pool), err, guard_ok ? "" : ", wrote past the output",
                differs || !bf || !full ? "" : ", the float32 bits (not rounded)");
    CHECK(ok);
    free(x), free(wt), free(b), free(r), free(xr), free(wr), free(y), free(ye), free(R);
}

static void test_depthwise_16_channels_bf16(dt_pool *pool)
{
    if (!dt_cpu_has_bf16()) {
        fprintf(stderr, "skipped: the bfloat16 depthwise (no AVX512-BF16 here)\n");
        return;
    }
    static const int64_t chans[] = {16, 21, 35};
    static const int64_t hw[][2] = {{1, 1}, {2, 3}, {7, 7}, {14, 14}, {17, 13}, {6, 11}};
    static const dt_act acts[] = {DT_ACT_NONE, DT_ACT_SILU_LEAN, DT_ACT_RELU, DT_ACT_SIGMOID_LEAN};
    int n = 0;
    for (size_t ci = 0; ci < 3; ci++)
        for (size_t si = 0; si < 6; si++)
            for (int k = 3; k <= 5; k += 2)
                for (int s = 1; s <= 2; s++, n++) {
                    int64_t padded = 2 * (k / 2) + (s == 2 ? -1 : 1);
                    if (hw[si][0] + padded < k || hw[si][1] + padded < k) continue;
                    check_dw16_bf16(chans[ci], hw[si][0], hw[si][1], k, s, 1, acts[n % 4], n % 3 == 0, n % 5 == 0,
                                    pool);
                }
    check_dw16_bf16(21, 14, 14, 5, 1, 2, DT_ACT_SILU_LEAN, true, false, pool);
}

int main(void)
{
    __builtin_cpu_init();
    bool avx512 = __builtin_cpu_supports("avx512f");
    for (int threads = 1; threads <= 2; threads++) {
        dt_pool *pool = NULL;
        CHECK_EQ_INT(dt_pool_create(threads, &pool), DUCTILE_OK);
        test_depthwise_odd_sizes_every_epilogue(pool, avx512);
        test_depthwise_other_geometries(pool, avx512);
        test_depthwise_in_place(pool, avx512);
        test_depthwise_16_channels(pool, avx512);
        test_depthwise_16_channels_bf16(pool);
        test_depthwise_pairs(pool, avx512);
        test_depthwise_narrow(pool, avx512);
        dt_pool_free(pool);
    }
    TEST_MAIN_END();
}
