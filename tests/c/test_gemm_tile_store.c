/* The whole-tile store of the AVX-512 micro-kernel (gemm_kernel.c, dt_gemm_tile_out): an 8-row
 * tile of whole vectors on the first K block with beta 0 and Relu, Clip, HardSwish, HardSigmoid
 * or no activation is
 * stored with its tests made once per tile. Its bits must be those of the per-row store
 * (dt_gemm_row_out), which the x kernel's bodies keep (dt_gemm_kernel_x_fn with nx = 0):
 *   - every store case against the x kernel bit for bit, 1-3 vectors, with and without bias and
 *     residual, no epilogue and Relu, Clip, HardSwish, HardSigmoid, a column bias (not taken),
 *     beta 0.5 and an accumulating block (not taken), heights 8 and 5 (not taken), widths
 *     nv*16 and nv*16 - 3 (not taken), with NaN, infinities and signed zeros planted in the
 *     bias and the residual (max/min operand order), the residual's next-tile prefetch
 *     (res_far) on and off;
 *   - an output past the cache (c_far: non-temporal stores where the rows are aligned) against
 *     the plain store bit for bit; the kernel prefetching the next B panel in its k loop
 *     (dt_gemm_kernel_pf_fn) against the plain one;
 *   - 1x1 convs of whole tiles (24 -> 40 and 64 -> 72 channels at 12x16, 48 pixels a panel,
 *     batch 2) with bias, residual and Relu against the double reference (1e-4 of the largest
 *     value). */
#include "testutil.h"
#include "conv1x1_check.h"
#include "refconv.h"
#include "backend/cpu/conv.h"
#include "backend/cpu/gemm.h"
#include "core/alloc.h"
#include "core/threadpool.h"

#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { KC = 29, LDB = 48, LDC = 51 };

/* The same bits, a NaN matching any NaN: Silu's x * sigmoid(x) of a NaN multiplies two NaNs,
 * and which one's sign survives is the compiler's choice of operand order. */
static bool same_bits(const float *a, const float *b, int n)
{
    for (int i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof(float)) && !(isnan(a[i]) && isnan(b[i]))) return false;
    return true;
}

static void test_tile_store_matches_row_store_bits(void)
{
    dt_gemm_kernel_epi_fn epi_k = dt_gemm_kernel_epi_select();
    dt_gemm_kernel_x_fn xk = dt_gemm_kernel_x_select();
    if (!epi_k || !xk) {
        fprintf(stderr, "tile store: not on this CPU (no AVX-512), skipped\n");
        return;
    }
    float *A = rand_buf(KC * DT_GEMM_MR), *B = rand_buf(KC * LDB), *bias = rand_buf(8), *C0 = rand_buf(8 * LDC);
    float *res = rand_buf(8 * LDC), *cb = rand_buf(LDC);
    /* values the activations treat specially: a NaN, infinities, signed zeros */
    bias[1] = NAN, bias[2] = INFINITY, bias[3] = -INFINITY;
    res[0] = -0.0f, res[5] = NAN, res[LDC + 7] = 0.0f, res[2 * LDC + 20] = -1e30f, res[3 * LDC + 33] = 1e30f;
    static const dt_epilogue epis[] = {{DT_ACT_NONE, 0, 0, NULL, NULL, false, false},
                                       {DT_ACT_RELU, 0, 0, NULL, NULL, false, false},
                                       {DT_ACT_CLIP, -0.25f, 0.5f, NULL, NULL, false, false},
                                       {DT_ACT_HARDSWISH, 1.0f / 6, 0.5f, NULL, NULL, false, false},
                                       {DT_ACT_HARDSIGMOID, 0.2f, 0.5f, NULL, NULL, false, false},
                                       {DT_ACT_SILU, 0, 0, NULL, NULL, false, false}};
    float Ct[8 * LDC], Cr[8 * LDC];
    int bad = 0, cases = 0;
    for (int nv = 1; nv <= 3; nv++)
        for (int narrow = 0; narrow < 2; narrow++)
            for (int m = 8; m >= 5; m -= 3)
                for (int e = -1; e < 6; e++)
                    for (int mode = 0; mode < 8; mode++) {
                        int n = nv * 16 - (narrow ? 3 : 0);
                        bool first = mode != 6;
                        float beta = mode == 5 ? 0.5f : 0.0f;
                        const float *bs = mode & 1 ? NULL : bias;
                        dt_epilogue ep = e >= 0 ? epis[e] : (dt_epilogue){0};
                        if (mode == 7) ep.col_bias = cb;
                        const float *r = e >= 0 && (mode & 2) ? res : NULL;
                        if (e >= 0) ep.res = r;
                        ep.res_far = nv % 2 == 1;   /* its prefetches must not change a bit */
                        memcpy(Ct, C0, sizeof Ct);
                        memcpy(Cr, C0, sizeof Cr);
                        epi_k(KC, A, B, LDB, nv, Ct, LDC, m, n, first, beta, bs, e >= 0 ? &ep : NULL, r);
                        xk(KC, A, NULL, B, LDB, nv, n, NULL, 0, 0, Cr, LDC, m, first, beta, bs, e >= 0 ? &ep : NULL, r);
                        cases++;
                        if (!same_bits(Ct, Cr, 8 * LDC)) {
                            bad++;
                            fprintf(stderr, "tile store nv=%d n=%d m=%d act %d mode %d: bits differ from the row store\n",
                                    nv, n, m, e, mode);
                        }
                    }
    CHECK_EQ_INT(bad, 0);
    CHECK(cases == 3 * 2 * 2 * 7 * 8);
    free(A), free(B), free(bias), free(C0), free(res), free(cb);
}

/* c_far (an output past the cache): the whole tile goes out with non-temporal stores where its
 * rows are 64-byte aligned (ldc 64), with plain ones where not (ldc 51): the same bits as
 * without c_far either way. */
static void test_tile_store_far_bits(void)
{
    dt_gemm_kernel_epi_fn epi_k = dt_gemm_kernel_epi_select();
    if (!epi_k) return;
    enum { LDA = 64 };
    float *A = rand_buf(KC * DT_GEMM_MR), *B = rand_buf(KC * LDB), *bias = rand_buf(8), *res = rand_buf(8 * LDA);
    float *Cf = dt_aligned_alloc(64, sizeof(float) * 8 * LDA), *Cn = dt_aligned_alloc(64, sizeof(float) * 8 * LDA);
    static const dt_act acts[] = {DT_ACT_NONE, DT_ACT_RELU, DT_ACT_CLIP, DT_ACT_HARDSWISH, DT_ACT_SILU};
    int bad = 0;
    for (int ld = LDC; ld <= LDA; ld += LDA - LDC)
        for (int nv = 1; nv <= 3; nv++)
            for (int e = 0; e < 5; e++)
                for (int with_res = 0; with_res < 2; with_res++) {
                    dt_epilogue ep = {.act = acts[e], .p0 = -0.25f, .p1 = 0.5f, .res = with_res ? res : NULL};
                    for (int i = 0; i < 8 * LDA; i++) Cf[i] = Cn[i] = NAN;
                    epi_k(KC, A, B, LDB, nv, Cn, ld, 8, nv * 16, true, 0.0f, bias, &ep, ep.res);
                    ep.c_far = true;
                    epi_k(KC, A, B, LDB, nv, Cf, ld, 8, nv * 16, true, 0.0f, bias, &ep, ep.res);
                    _mm_sfence();
                    if (memcmp(Cf, Cn, sizeof(float) * 8 * LDA)) {
                        bad++;
                        fprintf(stderr, "far tile store ldc=%d nv=%d act %d res %d: bits differ\n", ld, nv, e, with_res);
                    }
                }
    CHECK_EQ_INT(bad, 0);
    free(A), free(B), free(bias), free(res);
    dt_free(Cf), dt_free(Cn);
}

/* The kernel that prefetches the next panel's rows in its k loop (dt_gemm_kernel_pf_fn):
 * the bits of the plain epilogue kernel, heights 8 and 5, 1-3 vectors, with and without the
 * epilogue (a residual far and near), 1 to KC prefetched rows, with and without the next
 * strip's A panel prefetched (a_next). */
static void test_pf_kernel_bits(void)
{
    dt_gemm_kernel_epi_fn epi_k = dt_gemm_kernel_epi_select();
    dt_gemm_kernel_pf_fn pf_k = dt_gemm_kernel_pf_select();
    if (!epi_k || !pf_k) return;
    float *A = rand_buf(KC * DT_GEMM_MR), *B = rand_buf(KC * LDB), *bias = rand_buf(8), *res = rand_buf(8 * LDC);
    float *P = rand_buf(KC * 61), *An = rand_buf(KC * DT_GEMM_MR);
    float Ct[8 * LDC], Cr[8 * LDC];
    int bad = 0;
    for (int nv = 1; nv <= 3; nv++)
        for (int m = 8; m >= 5; m -= 3)
            for (int e = 0; e < 3; e++)
                for (int q = 0; q < 4; q++) {
                    int rows = q % 2 ? KC : 1;
                    const float *a_next = q / 2 ? An : NULL;
                    /* e 2: the residual's prefetch (res_far) spread in the k loop too */
                    dt_epilogue ep = {.act = DT_ACT_RELU, .res = res, .res_far = e == 2};
                    for (int i = 0; i < 8 * LDC; i++) Ct[i] = Cr[i] = NAN;
                    epi_k(KC, A, B, LDB, nv, Cr, LDC, m, nv * 16, true, 0.0f, bias, e ? &ep : NULL, e ? res : NULL);
                    pf_k(KC, A, B, LDB, nv, Ct, LDC, m, nv * 16, true, 0.0f, bias, e ? &ep : NULL, e ? res : NULL, P, 61,
                         rows, a_next);
                    if (memcmp(Ct, Cr, sizeof Ct)) {
                        bad++;
                        fprintf(stderr, "pf kernel nv=%d m=%d epi %d rows %d a_next %d: bits differ\n", nv, m, e, rows,
                                a_next != NULL);
                    }
                }
    CHECK_EQ_INT(bad, 0);
    free(A), free(B), free(bias), free(res), free(P), free(An);
}

static void test_conv_1x1_whole_tiles(void)
{
    static const int64_t cm[][2] = {{24, 40}, {64, 72}};
    int bad = 0;
    for (int ci = 0; ci < 2; ci++)
        for (int with_res = 0; with_res < 2; with_res++) {
            int64_t h = 12, w = 16, c = cm[ci][0], m = cm[ci][1], nb = 2;
            double e = conv1x1_relu_error(h, w, c, m, nb, with_res, NULL);
            if (!(e >= 0 && e <= 1e-4)) {
                bad++;
                fprintf(stderr, "1x1 conv c=%lld m=%lld res %d: rel err %g\n", (long long)c, (long long)m, with_res, e);
            }
        }
    CHECK_EQ_INT(bad, 0);
}

/* 1x1s whose weights at MC rows a block outgrow L2 run panel by panel in blocks of fewer rows
 * (dt_gemm_slice): 1000 output channels of K 256 in blocks of 256 (232 the last), K 520 (deep
 * blocks of 512, then 8) in blocks of 256 (88 the last); over 195 pixels (13 x 15: four panels
 * and three extra columns) and 1599 (41 x 39: B past L2, panel order on every CPU); against
 * ref_conv, with and without a residual, and 2 threads giving 1 thread's bits. */
static void test_conv_1x1_a_blocks(void)
{
    static const int64_t cases[][4] = {{13, 15, 256, 1000}, {41, 39, 256, 1000}, {14, 14, 520, 600}};
    dt_pool *pool = NULL;
    CHECK_EQ_INT(dt_pool_create(2, &pool), DUCTILE_OK);
    int bad = 0;
    for (int ci = 0; ci < 3; ci++)
        for (int with_res = 0; with_res < 2; with_res++) {
            const int64_t *k = cases[ci];
            bool same = false;
            double e = conv1x1_relu_check(k[0], k[1], k[2], k[3], 1, with_res, NULL, pool, &same);
            if (!(e >= 0 && e <= 1e-4) || !same) {
                bad++;
                fprintf(stderr, "1x1 conv %lldx%lld c=%lld m=%lld res %d: rel err %g, 2 threads same bits %d\n",
                        (long long)k[0], (long long)k[1], (long long)k[2], (long long)k[3], with_res, e, same);
            }
        }
    CHECK_EQ_INT(bad, 0);
    dt_pool_free(pool);
}

int main(void)
{
    test_tile_store_matches_row_store_bits();
    test_tile_store_far_bits();
    test_pf_kernel_bits();
    test_conv_1x1_whole_tiles();
    test_conv_1x1_a_blocks();
    TEST_MAIN_END();
}
