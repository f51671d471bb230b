/* K blocks of DT_GEMM_KC_DEEP (dt_gemm.deep_k) in the 1x1 convs' GEMM: convs with K of one
 * deep block and more (512, 515, 1100, 2049 input channels), odd output channel counts, planes
 * whose columns are whole panels plus a few fused ones (7x7, 10x5, 14x14), a last panel packed
 * (28x28: 16 columns; 5x9: every column), a plane whose block runs panel by panel (29x23), at
 * batch 1 and 2, bias, Relu and a residual: against the double reference (1e-4 of the
 * largest value), and serial against 2 threads bit for bit (the K block is the product's,
 * never a thread's slice: a split of 49 columns leaves one thread the packed last column).
 * Each scratch is sized by the conv (dt_cpu_conv_scratch), as the engine sizes it. */
#include "testutil.h"
#include "conv1x1_check.h"
#include "backend/cpu/conv.h"
#include "backend/cpu/gemm.h"
#include "core/threadpool.h"

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
            double e = conv1x1_relu_check(h, w, c, m, nb, with_res, NULL, pool, &same);
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
