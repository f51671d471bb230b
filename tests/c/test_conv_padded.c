/* The padded conv (conv_padded.c, tactic DT_CONV_PADDED) at strides 1, 2 and 3 over the
 * image split into phases, with B read in place through the row offsets (conv_indirect.c:
 * float32 weights packed, AVX-512) or packed by the GEMM (raw weights): 3x3, 1x1, 5x5 and
 * 2x3 kernels, dilation 1 and 2, symmetric and asymmetric pads, 3 to 33 input and 5 to 72
 * output channels (not multiples of 16, a partial 8-row strip), images 7x7, 9x11, 15x15,
 * 14x14 and 1x1, groups, batch 2, bias, residual and Relu, on 1 and 2 threads; batches of 1 to 5
 * on 2 and 3 threads (whole images per thread, then the images left over split within each
 * image: dt_cpu_conv_image_threads, on both sides of the comparison; an image split by rows,
 * dt_padded_by_rows, where it has fewer output channels than columns). Held to the
 * double reference (relative error 1e-4) and, since the product's float operations are the
 * GEMM's over the same K order, bit for bit to the im2col path with the same weights; no
 * write past the output. */
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

static int failures;

typedef struct pcase {
    int64_t c, m, group, h, w, kh, kw, s, d, pt, pl, pb, pr;
    int64_t n;  /* images */
} pcase;

static void run_case(const pcase *pc, bool packed, dt_pool *pool)
{
    int64_t n = pc->n;
    dt_conv_geom g = {.spatial = 2, .batch = n, .c = pc->c, .m = pc->m, .group = pc->group, .in = {pc->h, pc->w},
                      .k = {pc->kh, pc->kw}, .s = {pc->s, pc->s}, .d = {pc->d, pc->d}, .pb = {pc->pt, pc->pl},
                      .pe = {pc->pb, pc->pr}, .depth = {.in = 1, .out = 1, .k = 1, .s = 1, .d = 1}};
    g.out[0] = (pc->h + pc->pt + pc->pb - pc->d * (pc->kh - 1) - 1) / pc->s + 1;
    g.out[1] = (pc->w + pc->pl + pc->pr - pc->d * (pc->kw - 1) - 1) / pc->s + 1;
    /* the kernel must fit the padded image (what shape inference admits) */
    if (pc->h + pc->pt + pc->pb < pc->d * (pc->kh - 1) + 1 || pc->w + pc->pl + pc->pr < pc->d * (pc->kw - 1) + 1) return;
    int64_t cg = pc->c / pc->group;
    int64_t nx = n * pc->c * pc->h * pc->w, nw = pc->m * cg * pc->kh * pc->kw, ny = n * pc->m * g.out[0] * g.out[1];
    float *x = rand_buf(nx), *wt = rand_buf(nw), *b = rand_buf(pc->m), *res = rand_buf(ny);
    float *y = malloc(sizeof(float) * (size_t)(ny + GUARD)), *y1 = malloc(sizeof(float) * (size_t)ny);
    float *wp = dt_aligned_alloc(64, sizeof(float) * (size_t)dt_cpu_conv_packed_floats(&g));
    double *R = malloc(sizeof(double) * (size_t)ny);
    dt_cpu_conv_pack_weights(&g, wt, wp);
    ref_conv(&(ref_conv_geom){.n = n, .c = pc->c, .m = pc->m, .group = pc->group, .h = pc->h, .w = pc->w,
                              .oh = g.out[0], .ow = g.out[1], .kh = pc->kh, .kw = pc->kw, .sh = pc->s, .sw = pc->s,
                              .dh = pc->d, .dw = pc->d, .pt = pc->pt, .pl = pc->pl},
             x, wt, b, res, R);
    for (int64_t i = 0; i < ny; i++) R[i] = R[i] > 0 ? R[i] : 0;
    dt_epilogue epi = {.act = DT_ACT_RELU, .res = res};
    dt_conv_args a = {.x = x, .bias = b, .epi = &epi, .y = y};
    if (packed)
        a.w_packed = wp;
    else
        a.w = wt;
    for (int64_t i = 0; i < ny + GUARD; i++) y[i] = NAN;
    CHECK_EQ_INT(dt_cpu_conv_run_algo(&g, &a, DT_CONV_PADDED, pool), DUCTILE_OK);
    double e = rel_err(y, R, ny);
    bool guard = true;
    for (int64_t i = ny; i < ny + GUARD; i++) guard = guard && isnan(y[i]);
    a.y = y1;
    CHECK_EQ_INT(dt_cpu_conv_run_algo(&g, &a, DT_CONV_IM2COL, pool), DUCTILE_OK);
    bool same = !memcmp(y, y1, sizeof(float) * (size_t)ny);
    if (!(e <= 1e-4) || !guard || !same) {
        failures++;
        fprintf(stderr,
                "padded n=%lld c=%lld m=%lld g=%lld %lldx%lld k=%lldx%lld s=%lld d=%lld pads %lld,%lld,%lld,%lld packed=%d "
                "threads=%d: rel err %g, guard %d, bits of im2col %d\n",
                (long long)n, (long long)pc->c, (long long)pc->m, (long long)pc->group, (long long)pc->h, (long long)pc->w,
                (long long)pc->kh, (long long)pc->kw, (long long)pc->s, (long long)pc->d, (long long)pc->pt,
                (long long)pc->pl, (long long)pc->pb, (long long)pc->pr, packed, dt_pool_threads(pool), e, guard, same);
    }
    free(x), free(wt), free(b), free(res), free(y), free(y1), free(R);
    dt_free(wp);
}

static void test_padded_strides(void)
{
    static const int64_t hw[][2] = {{7, 7}, {9, 11}, {15, 15}, {14, 14}, {1, 1}};
    static const int64_t cm[][3] = {{3, 5, 1}, {17, 33, 1}, {33, 72, 1}, {18, 12, 3}};
    /* kh, kw, dilation, pads (top, left, bottom, right) */
    static const int64_t kp[][7] = {{3, 3, 1, 1, 1, 1, 1}, {3, 3, 1, 0, 1, 1, 0}, {1, 1, 1, 0, 0, 0, 0},
                                    {5, 5, 1, 2, 2, 2, 2}, {2, 3, 1, 0, 1, 1, 1}, {3, 3, 2, 2, 2, 1, 2}};
    dt_pool *pools[2] = {NULL, NULL};
    CHECK_EQ_INT(dt_pool_create(1, &pools[0]), DUCTILE_OK);
    CHECK_EQ_INT(dt_pool_create(2, &pools[1]), DUCTILE_OK);
    for (size_t si = 0; si < sizeof hw / sizeof hw[0]; si++)
        for (size_t ci = 0; ci < sizeof cm / sizeof cm[0]; ci++)
            for (size_t ki = 0; ki < sizeof kp / sizeof kp[0]; ki++)
                for (int64_t s = 1; s <= 3; s++)
                    for (int packed = 0; packed < 2; packed++) {
                        pcase pc = {cm[ci][0], cm[ci][1], cm[ci][2], hw[si][0], hw[si][1], kp[ki][0], kp[ki][1], s,
                                    kp[ki][2], kp[ki][3], kp[ki][4], kp[ki][5], kp[ki][6], 2};
                        run_case(&pc, packed, pools[(si + ki + (size_t)s) % 2]);
                    }
    /* resnet50's stride-2 shapes, scaled down in channels: 3x3 pad 1 and 1x1 over 28x28 and 56x56 */
    for (int packed = 0; packed < 2; packed++) {
        run_case(&(pcase){24, 40, 1, 28, 28, 3, 3, 2, 1, 1, 1, 1, 1, 2}, packed, pools[1]);
        run_case(&(pcase){20, 24, 1, 56, 56, 3, 3, 2, 1, 1, 1, 1, 1, 2}, packed, pools[0]);
        run_case(&(pcase){40, 24, 1, 56, 56, 1, 1, 2, 1, 0, 0, 0, 0, 2}, packed, pools[1]);
        /* YOLO's 16 -> 32 stride-2 3x3 at 120x88 (by rows on 2 threads: dt_padded_by_rows), and
         * odd heights whose rows the threads share unevenly */
        run_case(&(pcase){16, 32, 1, 120, 88, 3, 3, 2, 1, 1, 1, 1, 1, 1}, packed, pools[1]);
        run_case(&(pcase){13, 11, 1, 37, 61, 3, 3, 2, 1, 1, 1, 1, 1, 1}, packed, pools[1]);
        run_case(&(pcase){7, 9, 1, 23, 50, 3, 3, 1, 1, 1, 1, 1, 1, 1}, packed, pools[1]);
    }
    /* Batches over pools of 2 and 3: whole images per thread (each in buffers of its own), then
     * the images left over split within each image; the wide product (56x56 stride 2, 28x28
     * stride 1: staged rows) and the one over the pixels (7x7: gathered B) */
    dt_pool *pool3 = NULL;
    CHECK_EQ_INT(dt_pool_create(3, &pool3), DUCTILE_OK);
    for (int64_t n = 1; n <= 5; n++)
        for (int packed = 0; packed < 2; packed++) {
            dt_pool *p = n % 2 ? pool3 : pools[1];
            run_case(&(pcase){20, 24, 1, 56, 56, 3, 3, 2, 1, 1, 1, 1, 1, n}, packed, p);
            run_case(&(pcase){19, 21, 1, 28, 28, 3, 3, 1, 1, 1, 1, 1, 1, n}, packed, pools[1]);
            run_case(&(pcase){33, 72, 1, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, n}, packed, p);
            /* over the pixels at 14x14 (stride 2) */
            run_case(&(pcase){21, 19, 1, 28, 28, 3, 3, 2, 1, 1, 1, 1, 1, n}, packed, pools[1]);
            run_case(&(pcase){18, 12, 3, 14, 14, 3, 3, 2, 1, 1, 1, 1, 1, n}, packed, pool3);
            /* the im2col side's 1x1s: in place (stride 1, unbatched at 14x14) and subsampled */
            run_case(&(pcase){40, 37, 1, 14, 14, 1, 1, 1, 1, 0, 0, 0, 0, n}, packed, p);
            run_case(&(pcase){40, 24, 1, 28, 28, 1, 1, 2, 1, 0, 0, 0, 0, n}, packed, pools[1]);
        }
    dt_pool_free(pool3);
    dt_pool_free(pools[0]);
    dt_pool_free(pools[1]);
    CHECK_EQ_INT(failures, 0);
}

/* Every activation of the epilogue (applied as the staged rows are copied out, in lanes on
 * AVX-512), with and without a residual, by channels and by rows: the bits of the im2col
 * path's. Outputs scaled into the sigmoid's tails. */
static void test_padded_epilogues_match_im2col(void)
{
    static const dt_act acts[] = {DT_ACT_NONE, DT_ACT_RELU, DT_ACT_CLIP, DT_ACT_HARDSIGMOID, DT_ACT_HARDSWISH,
                                  DT_ACT_SIGMOID, DT_ACT_SILU, DT_ACT_SIGMOID_LEAN, DT_ACT_SILU_LEAN};
    static const int64_t shapes[][4] = {{16, 32, 45, 71}, {24, 72, 29, 29}};  /* c, m, h, w: by rows, by channels */
    __builtin_cpu_init();
    bool avx512 = __builtin_cpu_supports("avx512f");
    dt_pool *two = NULL;
    CHECK_EQ_INT(dt_pool_create(2, &two), DUCTILE_OK);
    int bad = 0;
    for (size_t si = 0; si < 2; si++) {
        dt_conv_geom g = {.spatial = 2, .batch = 1, .c = shapes[si][0], .m = shapes[si][1], .group = 1,
                          .in = {shapes[si][2], shapes[si][3]}, .k = {3, 3}, .s = {2, 2}, .d = {1, 1}, .pb = {1, 1},
                          .pe = {1, 1}, .depth = {.in = 1, .out = 1, .k = 1, .s = 1, .d = 1}};
        g.out[0] = (g.in[0] - 1) / 2 + 1;
        g.out[1] = (g.in[1] - 1) / 2 + 1;
        int64_t nx = g.c * g.in[0] * g.in[1], nw = g.m * g.c * 9, ny = g.m * g.out[0] * g.out[1];
        float *x = rand_buf(nx), *wt = rand_buf(nw), *b = rand_buf(g.m), *res = rand_buf(ny);
        for (int64_t i = 0; i < nw; i++) wt[i] *= 8.0f;
        float *y = malloc(sizeof(float) * (size_t)ny), *y1 = malloc(sizeof(float) * (size_t)ny);
        float *wp = dt_aligned_alloc(64, sizeof(float) * (size_t)dt_cpu_conv_packed_floats(&g));
        dt_cpu_conv_pack_weights(&g, wt, wp);
        for (size_t ai = 0; ai < sizeof acts / sizeof acts[0]; ai++)
            for (int v = 0; v < 2; v++) {
                if (!avx512 && (acts[ai] == DT_ACT_SIGMOID_LEAN || acts[ai] == DT_ACT_SILU_LEAN)) continue;
                dt_epilogue epi = {.act = acts[ai], .p0 = acts[ai] == DT_ACT_CLIP ? -0.5f : 0.2f,
                                   .p1 = acts[ai] == DT_ACT_CLIP ? 0.75f : 0.5f, .res = v ? res : NULL};
                dt_conv_args a = {.x = x, .w_packed = wp, .bias = b, .epi = &epi, .y = y};
                CHECK_EQ_INT(dt_cpu_conv_run_algo(&g, &a, DT_CONV_PADDED, two), DUCTILE_OK);
                a.y = y1;
                CHECK_EQ_INT(dt_cpu_conv_run_algo(&g, &a, DT_CONV_IM2COL, NULL), DUCTILE_OK);
                if (memcmp(y, y1, sizeof(float) * (size_t)ny)) {
                    bad++;
                    fprintf(stderr, "padded %lld -> %lld act %d residual %d: bits differ from im2col's\n",
                            (long long)g.c, (long long)g.m, (int)acts[ai], v);
                }
            }
        free(x), free(wt), free(b), free(res), free(y), free(y1);
        dt_free(wp);
    }
    dt_pool_free(two);
    CHECK_EQ_INT(bad, 0);
}

int main(void)
{
    test_padded_strides();
    test_padded_epilogues_match_im2col();
    TEST_MAIN_END();
}
