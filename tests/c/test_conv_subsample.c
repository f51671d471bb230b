/* 1x1 convolutions of a stride above 1: from DT_GEMM_KC_DEEP input channels a group (515, 520,
 * 2 x 520; from DT_GEMM_KC on Zen 5: 256, 260, 300) the subsampled path (conv.c
 * dt_conv_is_subsampled: the image subsampled once, then read in place as a stride-1 1x1's B,
 * K blocks of DT_GEMM_KC_DEEP), under it (3 to 40) im2col's gather: strides 2, 3 and 2 x 3, images of odd sizes (13x11, 9x7, 28x28, 1x5), 5 to 70 output
 * channels (not multiples of 8 or 16), 2 groups, batches of 1 and 3, bias, residual and Relu,
 * weights raw and packed, on 1, 2 and 3 threads. Held to the double reference (relative error
 * 1e-4), with nothing written past the output, and bit for bit to the same conv on 1 thread
 * (each image is computed the same way by any thread count). */
#include "testutil.h"
#include "conv1x1_check.h"

#include <stdio.h>

static void test_subsampled_1x1(void)
{
    /* h, w, c, m, group, images, strides */
    static const int64_t cases[][8] = {
        {13, 11, 3, 5, 1, 1, 2, 2},    {13, 11, 37, 21, 1, 1, 2, 2},  {9, 7, 37, 21, 1, 3, 2, 2},
        {28, 28, 40, 70, 1, 1, 2, 2},  {28, 28, 40, 70, 1, 3, 2, 2},  {9, 7, 520, 21, 1, 1, 2, 2},
        {13, 11, 520, 70, 1, 3, 2, 2}, {13, 11, 37, 21, 1, 1, 3, 3},  {13, 11, 40, 22, 2, 1, 2, 2},
        {9, 7, 40, 22, 2, 3, 2, 3},    {1, 5, 17, 9, 1, 1, 2, 2},     {13, 11, 520, 21, 1, 1, 3, 3},
        {9, 7, 1040, 22, 2, 3, 2, 3},  {1, 5, 515, 9, 1, 1, 2, 2},     {13, 11, 260, 21, 1, 1, 2, 2},
        {9, 7, 300, 40, 1, 3, 2, 3},   {28, 28, 256, 70, 1, 1, 2, 2},
    };
    dt_pool *pools[3] = {NULL, NULL, NULL};
    for (int t = 0; t < 3; t++) CHECK_EQ_INT(dt_pool_create(t + 1, &pools[t]), DUCTILE_OK);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int raw = 0; raw < 2; raw++)
            for (int t = 1; t < 3; t++) {
                const int64_t *c = cases[i];
                conv1x1_case k = {c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], true, raw};
                refconv_rng = 0x9e3779b97f4a7c15ull; /* the same data on both pools */
                bool same = false;
                double e = conv1x1_relu_run(&k, pools[t], pools[0], &same);
                CHECK(e >= 0 && e <= 1e-4);
                CHECK(same);
                if (!(e >= 0 && e <= 1e-4) || !same)
                    fprintf(stderr, "1x1 %lldx%lld c=%lld m=%lld g=%lld n=%lld s=%lldx%lld raw=%d threads=%d: "
                            "rel err %g (-1: failed or wrote past y), bits of 1 thread %d\n", (long long)c[0],
                            (long long)c[1], (long long)c[2], (long long)c[3], (long long)c[4], (long long)c[5],
                            (long long)c[6], (long long)c[7], raw, t + 1, e, same);
            }
    for (int t = 0; t < 3; t++) dt_pool_free(pools[t]);
}

int main(void)
{
    test_subsampled_1x1();
    TEST_MAIN_END();
}
