/* The 8 x (48 + nx) GEMM kernel (gemm.h, dt_gemm_kernel_x_fn): a whole 48-column panel and
 * 1-4 more columns in one pass over k, where the narrow kernel ran a pass of its own (the
 * 49th column of a 7x7 image, the last 4 of a 14x14 one).
 *   - the kernel alone: every column's bits equal the 16-lane kernel's (the 48 columns as one
 *     panel, each extra column as a 1-column panel), heights 1-8, first block with and
 *     without beta and bias, accumulating blocks, every epilogue the store takes, a residual
 *     and a column bias, the extra columns in place after the panel or packed apart; and with
 *     no extra columns (a plain tile of 1-48 columns that prefetches the next A panel);
 *   - 1x1 convs whose planes end in such a panel (7x7, 10x5, 17x3, 13x4, 14x14, 1x49, 1x98:
 *     per image at batch 3 too) and some that do not (1x1, 3x5, 13x13: batched), odd channel
 *     counts, batch 1 and 3, K of one and of two blocks, bias, residual, Relu, and a plane
 *     (29x23) whose first K block of B passes DT_GEMM_B_L2 (run panel by panel): against the
 *     double reference (1e-4 of the largest value), serial and on 2 threads. */
#include "testutil.h"
#include "conv1x1_check.h"
#include "refconv.h"
#include "backend/cpu/conv.h"
#include "backend/cpu/gemm.h"
#include "core/threadpool.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { KC = 37, LDB = 48 + 4 + 3, LDC = 55 };

static void test_x_kernel_matches_wide_bits(void)
{
    dt_gemm_kernel_x_fn kx = dt_gemm_kernel_x_select();
    dt_gemm_kernel_epi_fn wide = dt_gemm_kernel_epi_select();
    if (!kx || !wide) {
        fprintf(stderr, "x GEMM kernel: not on this CPU (no AVX-512), skipped\n");
        return;
    }
    /* B: 16 floats past its last row, read by the reference's 16-lane loads of the columns
     * 48 + j (a row of LDB = 55 holds 48 + 7) */
    float *A = rand_buf(KC * DT_GEMM_MR), *B = rand_buf(KC * LDB + 16), *bias = rand_buf(8), *C0 = rand_buf(8 * LDC);
    float *res = rand_buf(8 * LDC), *cb = rand_buf(LDC), *P = malloc(sizeof(float) * KC * 16);
    static const dt_epilogue epis[] = {{DT_ACT_RELU, 0, 0, NULL, NULL, false, false},       {DT_ACT_CLIP, -0.5f, 0.7f, NULL, NULL, false, false},
                                       {DT_ACT_HARDSWISH, 1.0f / 6, 0.5f, NULL, NULL, false, false},
                                       {DT_ACT_HARDSIGMOID, 0.2f, 0.5f, NULL, NULL, false, false},
                                       {DT_ACT_GELU, 0, 0, NULL, NULL, false, false},       {DT_ACT_NONE, 0, 0, NULL, NULL, false, false},
                                       {DT_ACT_SIGMOID, 0, 0, NULL, NULL, false, false},    {DT_ACT_SILU, 0, 0, NULL, NULL, false, false}};
    float Cw[8 * LDC], Cx[8 * LDC];
    int bad = 0;
    for (int nx = 1; nx <= DT_GEMM_NARROW; nx++) {
        /* the extra columns packed apart (ld 16), as the driver packs a last panel */
        for (int k = 0; k < KC; k++)
            for (int j = 0; j < 16; j++) P[k * 16 + j] = j < nx ? B[k * LDB + 48 + j] : 0.0f;
        for (int m = 1; m <= 8; m++)
            for (int mode = 0; mode < 4 + 8; mode++)
                for (int packed = 0; packed < 2; packed++) {
                    bool first = mode != 3;
                    float beta = mode == 1 ? 0.5f : 0.0f;
                    const float *bs = mode == 2 ? NULL : bias;
                    dt_epilogue e = mode >= 4 ? epis[mode - 4] : (dt_epilogue){0};
                    if (mode >= 4) e.res = mode & 1 ? res : NULL, e.col_bias = mode & 2 ? cb : NULL;
                    const dt_epilogue *ep = mode >= 4 ? &e : NULL;
                    memcpy(Cw, C0, sizeof Cw);
                    memcpy(Cx, C0, sizeof Cx);
                    wide(KC, A, B, LDB, 3, Cw, LDC, m, 48, first, beta, bs, ep, ep ? e.res : NULL);
                    for (int j = 0; j < nx; j++) {
                        dt_epilogue ej = e;
                        if (ej.col_bias) ej.col_bias += 48 + j;
                        wide(KC, A, B + 48 + j, LDB, 1, Cw + 48 + j, LDC, m, 1, first, beta, bs, ep ? &ej : NULL,
                             ep && e.res ? e.res + 48 + j : NULL);
                    }
                    kx(KC, A, packed ? A + 8 : NULL, B, LDB, 3, 48, packed ? P : B + 48, packed ? 16 : LDB, nx, Cx, LDC, m, first, beta, bs, ep,
                       ep ? e.res : NULL);
                    if (memcmp(Cw, Cx, sizeof Cw)) {
                        bad++;
                        fprintf(stderr, "x kernel nx=%d m=%d mode %d packed %d differs from the wide one\n", nx, m,
                                mode, packed);
                    }
                }
    }
    /* nx 0: a plain tile of 1-3 vectors, the last one partial, that prefetches a next panel */
    for (int n = 1; n <= 48; n += 7)
        for (int m = 1; m <= 8; m += 3)
            for (int mode = 0; mode < 6; mode++) {
                bool first = mode != 3;
                dt_epilogue e = mode >= 4 ? epis[mode] : (dt_epilogue){0};
                e.res = mode == 5 ? res : NULL;
                const dt_epilogue *ep = mode >= 4 ? &e : NULL;
                int nv = (n + 15) / 16;
                memcpy(Cw, C0, sizeof Cw);
                memcpy(Cx, C0, sizeof Cx);
                wide(KC, A, B, LDB, nv, Cw, LDC, m, n, first, mode == 1 ? 0.5f : 0.0f, mode == 2 ? NULL : bias, ep,
                     e.res);
                kx(KC, A, m & 1 ? A + 8 : NULL, B, LDB, nv, n, NULL, 0, 0, Cx, LDC, m, first, mode == 1 ? 0.5f : 0.0f,
                   mode == 2 ? NULL : bias, ep, e.res);
                if (memcmp(Cw, Cx, sizeof Cw)) {
                    bad++;
                    fprintf(stderr, "x kernel nx=0 n=%d m=%d mode %d differs from the wide one\n", n, m, mode);
                }
            }
    CHECK_EQ_INT(bad, 0);
    free(A), free(B), free(bias), free(C0), free(res), free(cb), free(P);
}

static void test_conv_1x1_tail_panels(dt_pool *pools[2])
{
    static const int64_t hw[][2] = {{7, 7}, {10, 5}, {17, 3}, {13, 4}, {14, 14}, {1, 49}, {1, 98}, {1, 1}, {3, 5}, {13, 13},
                                       {29, 23}};
    static const int64_t cm[][2] = {{21, 37}, {300, 19}, {5, 75}};
    int bad = 0;
    for (size_t hi = 0; hi < sizeof hw / sizeof hw[0]; hi++)
        for (int ci = 0; ci < 3; ci++)
            for (int nb = 1; nb <= 3; nb += 2)
                for (int p = 0; p < 2; p++) {
                    int64_t h = hw[hi][0], w = hw[hi][1], c = cm[ci][0], m = cm[ci][1];
                    bool with_res = (hi + ci) & 1;
                    double e = conv1x1_relu_error(h, w, c, m, nb, with_res, pools[p]);
                    if (!(e >= 0 && e <= 1e-4)) {
                        bad++;
                        fprintf(stderr, "1x1 conv %lldx%lld c=%lld m=%lld batch %lld pool %d: rel err %g\n",
                                (long long)h, (long long)w, (long long)c, (long long)m, (long long)nb, p, e);
                    }
                }
    CHECK_EQ_INT(bad, 0);
}

int main(void)
{
    dt_pool *pools[2] = {NULL, NULL};
    CHECK_EQ_INT(dt_pool_create(2, &pools[1]), DUCTILE_OK);
    test_x_kernel_matches_wide_bits();
    test_conv_1x1_tail_panels(pools);
    dt_pool_free(pools[1]);
    TEST_MAIN_END();
}
