/* Winograd F(4x4, 3x3): the kernel against a naive conv (double accumulation) at odd sizes
 * (images not a multiple of the 4x4 tile, smaller than a tile, wider than a block; channels
 * not multiples of the GEMM's tile; C beyond one K block; asymmetric padding), with bias,
 * residual and activation; on weights transformed ahead and per call; with and without
 * threads (bitwise equal); several small images in one block (a partial last block); with
 * sentinels past the output; and written past the cache (non-temporal stores) bitwise as in
 * place. */
#include "testutil.h"
#include "refconv.h"

#include "backend/cpu/conv.h"
#include "backend/cpu/winograd.h"
#include "core/threadpool.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>



typedef struct wcase {
    int64_t n, c, h, w, m;
    int64_t pt, pl, pb, pr;
} wcase;

static dt_conv_geom geom_of(const wcase *k)
{
    dt_conv_geom g = {.spatial = 2, .batch = k->n, .c = k->c, .m = k->m, .group = 1,
                      .in = {k->h, k->w}, .k = {3, 3}, .s = {1, 1}, .d = {1, 1},
                      .pb = {k->pt, k->pl}, .pe = {k->pb, k->pr}};
    g.out[0] = k->h + k->pt + k->pb - 2;
    g.out[1] = k->w + k->pl + k->pr - 2;
    return g;
}



static const wcase cases[] = {
    {1, 5, 13, 17, 7, 1, 1, 1, 1},       /* 3x3 same, 13x17: partial tiles both ways */
    {2, 3, 9, 30, 11, 0, 0, 0, 0},       /* valid, batch 2 */
    {1, 17, 23, 11, 19, 0, 1, 2, 1},     /* asymmetric padding */
    {1, 9, 4, 5, 6, 1, 1, 1, 1},         /* one tile, partly outside */
    {1, 6, 2, 3, 5, 1, 1, 1, 1},         /* smaller than a tile */
    {1, 4, 7, 601, 5, 1, 1, 1, 1},       /* wider than a block: rows split */
    {1, 64, 37, 45, 33, 1, 1, 1, 1},
    {3, 13, 41, 19, 70, 1, 1, 1, 1},
    {1, 300, 9, 11, 10, 1, 1, 1, 1},     /* C beyond one K block of the GEMM */
    {1, 256, 14, 14, 96, 1, 1, 1, 1},    /* resnet50's 14x14 stage: one block, GEMMs split */
    {5, 19, 7, 7, 21, 1, 1, 1, 1},       /* 7x7 images, 4 tiles each: the 5 in one block */
    {37, 7, 5, 9, 6, 1, 1, 1, 1},        /* 6 tiles an image: blocks of 5 images, the last 2 */
    {3, 33, 14, 14, 17, 1, 1, 1, 1},     /* 14x14, 16 tiles an image: blocks of 2, the last 1 */
};

/* One image of resnet50's 28x28, 14x14 and 7x7 stages is a single block: its 36 GEMMs are
 * split over the threads (they ran on one: 2 threads gained nothing on those layers); the
 * 56x56 stage has a block per thread. */
static void test_single_block_uses_every_thread(void)
{
    static const wcase stages[] = {{1, 128, 28, 28, 128, 1, 1, 1, 1}, {1, 256, 14, 14, 256, 1, 1, 1, 1},
                                   {1, 512, 7, 7, 512, 1, 1, 1, 1}, {1, 64, 56, 56, 64, 1, 1, 1, 1}};
    for (size_t i = 0; i < sizeof stages / sizeof stages[0]; i++) {
        dt_conv_geom g = geom_of(&stages[i]);
        CHECK_EQ_INT(dt_cpu_wino_workers(&g, 1), 1);
        CHECK_EQ_INT(dt_cpu_wino_workers(&g, 2), 2);
        CHECK_EQ_INT(dt_cpu_wino_workers(&g, 4), 4);
    }
    dt_conv_geom empty = geom_of(&stages[0]);
    empty.batch = 0;
    CHECK_EQ_INT(dt_cpu_wino_workers(&empty, 2), 0);
}

static void test_winograd_matches_reference_at_odd_sizes(dt_pool *pool)
{
    int bad = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dt_conv_geom g = geom_of(&cases[i]);
        CHECK(dt_cpu_wino_applies(&g));
        int64_t nx = g.batch * g.c * g.in[0] * g.in[1], ny = g.batch * g.m * g.out[0] * g.out[1];
        float *x = rand_buf(nx), *w = rand_buf(g.m * g.c * 9), *b = rand_buf(g.m), *r = rand_buf(ny);
        float *u = malloc(sizeof(float) * (size_t)dt_cpu_wino_floats(&g));
        CHECK_EQ_INT(dt_cpu_wino_pack_weights(&g, w, u), DUCTILE_OK);
        double *want = malloc(sizeof(double) * (size_t)ny);
        ref_conv(&(ref_conv_geom){.n = g.batch, .c = g.c, .m = g.m, .group = 1, .h = g.in[0],
                                  .w = g.in[1], .oh = g.out[0], .ow = g.out[1], .kh = 3, .kw = 3,
                                  .sh = 1, .sw = 1, .dh = 1, .dw = 1, .pt = g.pb[0], .pl = g.pb[1]},
                 x, w, b, r, want);
        /* HardSwish, as the epilogue computes it with alpha 1/6, beta 1/2 */
        for (int64_t k = 0; k < ny; k++) want[k] *= fmax(0, fmin(1, want[k] / 6.0 + 0.5));
        float *got[4];
        dt_epilogue epi = {.act = DT_ACT_HARDSWISH, .p0 = 1.0f / 6.0f, .p1 = 0.5f, .res = r};
        for (int v = 0; v < 4; v++) {
            /* 0: transformed ahead, one thread; 1: the same on the pool; 2: raw weights;
             * 3: the portable transforms (the same as 0 on a CPU without AVX-512) */
            got[v] = malloc(sizeof(float) * (size_t)(ny + 16));
            for (int64_t k = 0; k < ny + 16; k++) got[v][k] = -1234.5f;
            dt_conv_args a = {.x = x, .w = v == 2 ? w : NULL, .w_wino = v == 2 ? NULL : u,
                              .bias = b, .epi = &epi, .y = got[v]};
            if (v == 3) setenv("DT_WINO_GENERIC", "1", 1);
            CHECK_EQ_INT(dt_cpu_conv_winograd(&g, &a, v == 0 ? NULL : pool), DUCTILE_OK);
            if (v == 3) unsetenv("DT_WINO_GENERIC");
            double e = rel_err(got[v], want, ny);
            bool fence = true;
            for (int k = 0; k < 16; k++) fence &= got[v][ny + k] == -1234.5f;
            if (!(e <= 1e-4) || !fence) {
                bad++;
                fprintf(stderr, "case %zu variant %d: rel err %g, sentinels %s\n", i, v, e,
                        fence ? "intact" : "overwritten");
            }
        }
        CHECK(memcmp(got[0], got[1], sizeof(float) * (size_t)ny) == 0);
        CHECK(memcmp(got[0], got[2], sizeof(float) * (size_t)ny) == 0);
        for (int v = 0; v < 4; v++) free(got[v]);
        free(x), free(w), free(b), free(r), free(u), free(want);
    }
    CHECK_EQ_INT(bad, 0);
}

/* Every activation of the epilogue, with and without a residual, on one thread and on the
 * pool: the output pass applies it in lanes before the store (AVX-512) or over each stored
 * row; either way the bits of the bias-only conv followed by dt_epilogue_apply over the whole
 * output (the unfused Add and activation). Outputs scaled into the sigmoid's tails. */
static void test_winograd_epilogue_in_lanes_matches_pass(dt_pool *pool)
{
    static const dt_act acts[] = {DT_ACT_NONE, DT_ACT_RELU, DT_ACT_CLIP, DT_ACT_HARDSIGMOID, DT_ACT_HARDSWISH,
                                  DT_ACT_SIGMOID, DT_ACT_SILU, DT_ACT_SIGMOID_LEAN, DT_ACT_SILU_LEAN};
    __builtin_cpu_init();
    bool avx512 = __builtin_cpu_supports("avx512f");
    int bad = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dt_conv_geom g = geom_of(&cases[i]);
        int64_t nx = g.batch * g.c * g.in[0] * g.in[1], ny = g.batch * g.m * g.out[0] * g.out[1];
        float *x = rand_buf(nx), *w = rand_buf(g.m * g.c * 9), *b = rand_buf(g.m), *r = rand_buf(ny);
        for (int64_t k = 0; k < g.m * g.c * 9; k++) w[k] *= 8.0f;
        float *u = malloc(sizeof(float) * (size_t)dt_cpu_wino_floats(&g));
        float *want = malloc(sizeof(float) * (size_t)ny), *got = malloc(sizeof(float) * (size_t)ny);
        CHECK_EQ_INT(dt_cpu_wino_pack_weights(&g, w, u), DUCTILE_OK);
        for (size_t ai = 0; ai < sizeof acts / sizeof acts[0]; ai++)
            for (int v = 0; v < 4; v++) {
                if (!avx512 && (acts[ai] == DT_ACT_SIGMOID_LEAN || acts[ai] == DT_ACT_SILU_LEAN)) continue;
                dt_epilogue epi = {.act = acts[ai], .p0 = acts[ai] == DT_ACT_CLIP ? -0.5f : 0.2f,
                                   .p1 = acts[ai] == DT_ACT_CLIP ? 0.75f : 0.5f, .res = v & 1 ? r : NULL};
                dt_conv_args a = {.x = x, .w_wino = u, .bias = b, .y = want};
                CHECK_EQ_INT(dt_cpu_conv_winograd(&g, &a, NULL), DUCTILE_OK);
                dt_epilogue_apply(&epi, want, epi.res, ny);
                a.epi = &epi, a.y = got;
                CHECK_EQ_INT(dt_cpu_conv_winograd(&g, &a, v & 2 ? pool : NULL), DUCTILE_OK);
                if (memcmp(want, got, sizeof(float) * (size_t)ny) != 0) {
                    bad++;
                    fprintf(stderr, "case %zu act %d variant %d: epilogue bits differ from the pass\n", i,
                            (int)acts[ai], v);
                }
            }
        free(x), free(w), free(b), free(r), free(u), free(want), free(got);
    }
    CHECK_EQ_INT(bad, 0);
}

/* An output past the cache (c_far; set here at any size): the output pass stages each tile
 * row and writes it with the epilogue and non-temporal stores; the bits equal the in-place
 * pass's for no activation, Relu and Clip, with and without a residual, on one thread and on
 * the pool, with y 64-byte aligned and one float off (partial lines at both ends of a row). */
static void test_winograd_streamed_output_matches_in_place(dt_pool *pool)
{
    static const dt_act acts[] = {DT_ACT_NONE, DT_ACT_RELU, DT_ACT_CLIP};
    int bad = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dt_conv_geom g = geom_of(&cases[i]);
        int64_t nx = g.batch * g.c * g.in[0] * g.in[1], ny = g.batch * g.m * g.out[0] * g.out[1];
        float *x = rand_buf(nx), *w = rand_buf(g.m * g.c * 9), *b = rand_buf(g.m), *r = rand_buf(ny);
        float *u = malloc(sizeof(float) * (size_t)dt_cpu_wino_floats(&g));
        CHECK_EQ_INT(dt_cpu_wino_pack_weights(&g, w, u), DUCTILE_OK);
        float *want = aligned_alloc(64, sizeof(float) * (size_t)((ny + 16 + 15) / 16 * 16));
        float *got = aligned_alloc(64, sizeof(float) * (size_t)((ny + 17 + 15) / 16 * 16));
        for (int v = 0; v < 12; v++) {
            dt_epilogue near = {.act = acts[v % 3], .p0 = -0.5f, .p1 = 0.75f, .res = v / 3 % 2 ? r : NULL};
            dt_epilogue far = near;
            far.c_far = true;
            int off = v / 6;    /* y one float past a line boundary */
            for (int64_t k = 0; k < ny + 17; k++) got[k] = -1234.5f;
            dt_conv_args a = {.x = x, .w_wino = u, .bias = b, .epi = &near, .y = want};
            CHECK_EQ_INT(dt_cpu_conv_winograd(&g, &a, NULL), DUCTILE_OK);
            a.epi = &far, a.y = got + off;
            CHECK_EQ_INT(dt_cpu_conv_winograd(&g, &a, v % 2 ? pool : NULL), DUCTILE_OK);
            bool fence = got[0] == -1234.5f || !off;
            for (int k = 0; k < 16; k++) fence &= got[off + ny + k] == -1234.5f;
            if (memcmp(want, got + off, sizeof(float) * (size_t)ny) != 0 || !fence) {
                bad++;
                fprintf(stderr, "case %zu variant %d: streamed output differs%s\n", i, v,
                        fence ? "" : ", sentinels overwritten");
            }
        }
        free(x), free(w), free(b), free(r), free(u), free(want), free(got);
    }
    CHECK_EQ_INT(bad, 0);
}

/* A few blocks that 2 threads cannot share evenly (64x64: 3 blocks of 6, 6 and 4 tile rows)
 * are cut thinner on 2 threads (4 of 4; YOLO's 60x44 maps: 9 and 6 rows -> 8 and 7; 120x88:
 * 30 rows in blocks of 4 -> 3): the same bits as one thread's larger blocks. */
static void test_thinner_blocks_same_bits(void)
{
    static const wcase odd[] = {{1, 16, 64, 64, 9, 1, 1, 1, 1}, {1, 5, 37, 45, 7, 1, 1, 1, 1}, {3, 4, 20, 64, 6, 1, 1, 1, 1},
                                {1, 6, 60, 44, 5, 1, 1, 1, 1},  {1, 3, 120, 88, 4, 1, 1, 1, 1}, {2, 3, 58, 42, 5, 1, 1, 1, 1}};
    dt_pool *two = NULL;
    CHECK_EQ_INT(dt_pool_create(2, &two), DUCTILE_OK);
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        dt_conv_geom g = geom_of(&odd[i]);
        int64_t nx = g.batch * g.c * g.in[0] * g.in[1], ny = g.batch * g.m * g.out[0] * g.out[1];
        float *x = rand_buf(nx), *w = rand_buf(g.m * g.c * 9), *b = rand_buf(g.m);
        float *u = malloc(sizeof(float) * (size_t)dt_cpu_wino_floats(&g));
        float *y1 = malloc(sizeof(float) * (size_t)ny), *y2 = malloc(sizeof(float) * (size_t)ny);
        CHECK_EQ_INT(dt_cpu_wino_pack_weights(&g, w, u), DUCTILE_OK);
        dt_epilogue epi = {.act = DT_ACT_RELU};
        dt_conv_args a = {.x = x, .w_wino = u, .bias = b, .epi = &epi, .y = y1};
        CHECK_EQ_INT(dt_cpu_conv_winograd(&g, &a, NULL), DUCTILE_OK);
        a.y = y2;
        CHECK_EQ_INT(dt_cpu_conv_winograd(&g, &a, two), DUCTILE_OK);
        CHECK(memcmp(y1, y2, sizeof(float) * (size_t)ny) == 0);
        free(x), free(w), free(b), free(u), free(y1), free(y2);
    }
    dt_pool_free(two);
}

static void test_winograd_applies_only_to_3x3_stride1_ungrouped(void)
{
    dt_conv_geom g = geom_of(&cases[0]);
    CHECK(dt_cpu_conv_algo_applies(&g, DT_CONV_WINOGRAD));
    dt_conv_geom s2 = g, d2 = g, g2 = g, k5 = g, one_d = g;
    s2.s[1] = 2;
    d2.d[0] = 2;
    g2.group = 5;
    k5.k[0] = k5.k[1] = 5;
    one_d.spatial = 1;
    CHECK(!dt_cpu_wino_applies(&s2));
    CHECK(!dt_cpu_wino_applies(&d2));
    CHECK(!dt_cpu_wino_applies(&g2));
    CHECK(!dt_cpu_wino_applies(&k5));
    CHECK(!dt_cpu_wino_applies(&one_d));
    dt_conv_args a = {0};
    CHECK_EQ_INT(dt_cpu_conv_winograd(&s2, &a, NULL), DUCTILE_ERR_INTERNAL);
    CHECK_EQ_STR(ductile_last_error(), "Winograd F(4x4, 3x3) does not apply to this convolution");
}

int main(void)
{
    dt_pool *pool = NULL;
    dt_pool_create(3, &pool);
    test_winograd_matches_reference_at_odd_sizes(pool);
    test_winograd_streamed_output_matches_in_place(pool);
    test_winograd_epilogue_in_lanes_matches_pass(pool);
    test_thinner_blocks_same_bits();
    test_single_block_uses_every_thread();
    test_winograd_applies_only_to_3x3_stride1_ungrouped();
    dt_pool_free(pool);
    TEST_MAIN_END();
}
