/* A conv's pooled output (backend/cpu/conv_pool.c): the block sum against the order conv_pool.c
 * documents, written out here as scalar loops, bit for bit, at every length from 1 to 300 (each
 * block its own allocation of exactly its length, so that a read past its end shows under the
 * sanitizers); a plane in blocks of rows equal to its blocks' sums combined; and the convs that
 * pool as they write (the depthwise row kernels, the 16-channel kernel with its tail channels)
 * or after (the GEMM path) equal to pooling their output afterwards, bit for bit. */
#include "ophelp.h"
#include "backend/cpu/conv.h"

#include <stdlib.h>
#include <string.h>

/* The documented order: float i into vector (i / 16) % 4, lane i % 16; the vectors as (v0 +
 * v1) + (v2 + v3); the lanes as a tree, k + 8, k + 4, k + 2, k + 1. */
static float order_sum(const float *y, int64_t n)
{
    float v[4][16] = {{0}}, l[16];
    for (int64_t i = 0; i < n; i++) v[(i / 16) % 4][i % 16] += y[i];
    for (int k = 0; k < 16; k++) l[k] = (v[0][k] + v[1][k]) + (v[2][k] + v[3][k]);
    for (int h = 8; h >= 1; h /= 2)
        for (int k = 0; k < h; k++) l[k] += l[k + h];
    return l[0];
}

static float value(int64_t i) { return (float)((i * 7919) % 1013) / 37.0f - 13.5f; }

static void test_block_sum_takes_the_documented_order(void)
{
    int bad = 0;
    for (int64_t n = 1; n <= 300; n++) {
        float *y = malloc(sizeof(float) * (size_t)n);
        for (int64_t i = 0; i < n; i++) y[i] = value(i + n);
        float got = dt_cpu_pool_block(y, n), want = order_sum(y, n);
        if (memcmp(&got, &want, sizeof got)) {
            fprintf(stderr, "block of %lld floats: %.9g, the order gives %.9g\n", (long long)n, got, want);
            bad++;
        }
        free(y);
    }
    CHECK_EQ_INT(bad, 0);
}

/* In blocks of r rows: the blocks' sums in double, in order, over the pixels; one block: the
 * same as the float quotient. */
static void test_plane_is_its_blocks_combined(void)
{
    static const int64_t planes[][3] = {{7, 7, 0}, {9, 13, 4}, {56, 56, 48}, {150, 3, 48}, {5, 112, 8}, {33, 17, 33}};
    for (size_t p = 0; p < sizeof planes / sizeof planes[0]; p++) {
        int64_t h = planes[p][0], w = planes[p][1], r = planes[p][2] ? planes[p][2] : h;
        float *y = malloc(sizeof(float) * (size_t)(h * w)), sums[64];
        for (int64_t i = 0; i < h * w; i++) y[i] = value(3 * i + 1);
        int64_t n = 0;
        for (int64_t r0 = 0; r0 < h; r0 += r) sums[n++] = order_sum(y + r0 * w, (h - r0 < r ? h - r0 : r) * w);
        float got = dt_cpu_pool_plane(y, h, w, planes[p][2]), want = dt_cpu_pool_blocks(sums, n, 1, h * w);
        CHECK(memcmp(&got, &want, sizeof got) == 0);
        if (n == 1) CHECK(got == order_sum(y, h * w) / (float)(h * w));
        free(y);
    }
}

/* algo on a depthwise conv of c channels (or a dense one) over a batch of 2 pools its output
 * as dt_cpu_pool_plane pools it afterwards. */
static int pooled_conv_matches(dt_conv_algo algo, int64_t c, int64_t h, int64_t w, bool depthwise, int64_t rows)
{
    dt_conv_geom g = {.spatial = 2, .batch = 2, .c = c, .m = c, .group = depthwise ? c : 1,
                      .in = {h, w}, .k = {3, 3}, .s = {1, 1}, .d = {1, 1}, .pb = {1, 1}, .pe = {1, 1},
                      .out = {h, w}};
    int64_t kc = depthwise ? 1 : c, nx = 2 * c * h * w;
    float *x = malloc(sizeof(float) * (size_t)nx), *wt = malloc(sizeof(float) * (size_t)(c * kc * 9));
    float *y = malloc(sizeof(float) * (size_t)nx), *pool = malloc(sizeof(float) * (size_t)(2 * c));
    for (int64_t i = 0; i < nx; i++) x[i] = value(i) * 0.1f;
    for (int64_t i = 0; i < c * kc * 9; i++) wt[i] = value(5 * i + 2) * 0.05f;
    dt_conv_args a = {.x = x, .w = wt, .y = y, .pool = pool, .pool_rows = rows};
    int bad = dt_cpu_conv_run_algo(&g, &a, algo, NULL) != DUCTILE_OK;
    for (int64_t p = 0; p < 2 * c && !bad; p++) {
        float want = dt_cpu_pool_plane(y + p * h * w, h, w, rows);
        bad += memcmp(&pool[p], &want, sizeof want) != 0;
    }
    if (bad) fprintf(stderr, "algo %d, %lld channels of %lldx%lld: %d pooled values differ\n", (int)algo, (long long)c,
                     (long long)h, (long long)w, bad);
    free(x), free(wt), free(y), free(pool);
    return bad;
}

static void test_convs_pool_their_output(void)
{
    int bad = pooled_conv_matches(DT_CONV_DEPTHWISE, 5, 23, 19, true, 8);
    bad += pooled_conv_matches(DT_CONV_DEPTHWISE, 3, 112, 112, true, 0);
    bad += pooled_conv_matches(DT_CONV_DW16, 37, 7, 7, true, 0);   /* two blocks of 16 and 5 channels */
    bad += pooled_conv_matches(DT_CONV_IM2COL, 6, 11, 9, false, 4);
    CHECK_EQ_INT(bad, 0);
}

int main(void)
{
    if (ophelp_begin()) return 1;
    test_block_sum_takes_the_documented_order();
    test_plane_is_its_blocks_combined();
    test_convs_pool_their_output();
    ophelp_end();
    TEST_MAIN_END();
}
