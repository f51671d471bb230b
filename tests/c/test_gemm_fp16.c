/* The float16 GEMM (gemm_fp16.c, the A_bf16/B_bf16 path of gemm.c with dt_gemm.fp16): B
 * conversion against its reference bit for bit, the micro-kernel against the reference
 * kernel, and the whole product against a float64 product of the unrounded operands at odd
 * sizes, for every way B arrives, also at 2^-30 scale. The float16 sums of a chunk
 * (DT_GEMM_FP16_CHUNK k pairs per lane) and the operands' rounding bound the error:
 * (CHUNK + 3) * 2^-11 of the sum of |products|. Without AVX512-FP16 the fast pieces are
 * skipped (saying so) and the product runs the reference kernel. */
#include "backend/cpu/gemm.h"
#include "gemm_testutil.h"
#include "core/threadpool.h"
#include "testutil.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* float16 bits to float (normal, subnormal, zero; the tests make no inf or NaN) */
static float half_value(uint16_t h)
{
    int e = (h >> 10) & 31, m = h & 1023;
    float v = e ? ldexpf((float)(1024 + m), e - 25) : ldexpf((float)m, -24);
    return h & 0x8000 ? -v : v;
}

/* chunk sums, the fold, and the rounding of both operands (the reference takes them unrounded) */
static const double TOL = (DT_GEMM_FP16_CHUNK + 3) / 2048.0;

static void test_round(void)
{
    CHECK_EQ_INT(dt_fp16_round(1.0f), 0x3c00);
    CHECK_EQ_INT(dt_fp16_round(-2.5f), 0xc100);
    CHECK_EQ_INT(dt_fp16_round(1.0f + 1.0f / 2048), 0x3c00);         /* tie, even below */
    CHECK_EQ_INT(dt_fp16_round(1.0f + 3.0f / 2048), 0x3c02);         /* tie, odd below: up */
    CHECK_EQ_INT(dt_fp16_round(ldexpf(1.0f, -24)), 0x0001);          /* smallest subnormal */
    CHECK_EQ_INT(dt_fp16_round(70000.0f), 0x7c00);                   /* overflow: inf */
    CHECK(half_value(dt_fp16_round(0.1f)) == 0.0999755859375f);
}

static void test_pack_matches_reference(bool fast)
{
    if (!fast) {
        fprintf(stderr, "skip: this CPU lacks AVX512-FP16; fp16 pack_avx512 not run\n");
        return;
    }
    enum { LDS = 70 };
    static float src[300 * LDS];
    for (int i = 0; i < 300 * LDS; i++) src[i] = frand() * 1000.0f;
    src[3] = 1e-7f;          /* a subnormal half */
    src[5] = 1e6f;           /* inf */
    src[7] = -3e-9f;         /* underflows to -0 */
    src[LDS + 1] = 1.0f + 3.0f / 2048;
    static uint16_t a[300 * 96 + 64], b[300 * 96 + 64];
    const int kcs[] = {1, 2, 7, 17, 256}, ns[] = {1, 7, 8, 16, 17, 33, 48};
    for (size_t x = 0; x < sizeof kcs / sizeof *kcs; x++)
        for (size_t y = 0; y < sizeof ns / sizeof *ns; y++) {
            int kc = kcs[x], n = ns[y], ld = n <= 8 && y % 2 ? 8 : (n + 15) & ~15;
            memset(a, 0xab, sizeof a);
            memset(b, 0xcd, sizeof b);
            dt_gemm_fp16_pack_ref(src, LDS, kc, n, ld, a);
            dt_gemm_fp16_pack_avx512(src, LDS, kc, n, ld, b);
            size_t used = (size_t)((kc + 1) / 2) * 2 * (size_t)ld;
            if (memcmp(a, b, used * sizeof *a) != 0) fprintf(stderr, "fp16 pack kc=%d n=%d differs\n", kc, n);
            CHECK(memcmp(a, b, used * sizeof *a) == 0);
            CHECK_EQ_INT(b[used], 0xcdcd);
        }
}

/* The vfmadd231ph kernel against the reference: every row count, vector count, width, store
 * mode and in-store epilogue, kc2 odd and over several chunks. The reference rounds float
 * adds to half (not the hardware's fused steps): allowed TOL of the sum of |products|. */
static void test_kernel_matches_reference(bool fast)
{
    if (!fast) {
        fprintf(stderr, "skip: this CPU lacks AVX512-FP16; fp16 kernel_avx512 not run\n");
        return;
    }
    enum { KC2 = 37, LDC = 53 };
    static uint16_t A[KC2 * 16], B[KC2 * 96], Bp[KC2 * 96];
    for (int k = 0; k < KC2; k++) {
        for (int i = 0; i < 16; i++) A[k * 16 + i] = dt_fp16_round(frand());
        for (int j = 0; j < 96; j++) B[k * 96 + j] = dt_fp16_round(frand());
    }
    float bias[8], res[8 * LDC], c0[8 * LDC], c1[8 * LDC], c2[8 * LDC];
    for (int i = 0; i < 8; i++) bias[i] = frand();
    for (int i = 0; i < 8 * LDC; i++) {
        res[i] = frand();
        c0[i] = frand();
    }
    dt_epilogue relu = {.act = DT_ACT_RELU}, clip = {.act = DT_ACT_CLIP, .p0 = -0.25f, .p1 = 0.5f};
    const dt_epilogue *epis[] = {NULL, &relu, &clip};
    int bad = 0;
    for (int nv = 1; nv <= 3; nv++)
        for (int m = 1; m <= 8; m++)
            for (int n = nv * 16 - 15; n <= nv * 16; n += 5)
                for (int mode = 0; mode < 3; mode++)
                    for (int e = 0; e < 3; e++) {
                        bool first = mode != 2;
                        float beta = mode == 1 ? 0.5f : 0.0f;
                        const float *r = e ? res : NULL;
                        for (int k = 0; k < KC2; k++) memcpy(Bp + k * nv * 32, B + k * 96, sizeof(uint16_t) * nv * 32);
                        memcpy(c1, c0, sizeof c0);
                        memcpy(c2, c0, sizeof c0);
                        dt_gemm_kernel_fp16_ref(KC2, A, Bp, nv, 0.5f, c1, LDC, m, n, first, beta, bias, epis[e], r);
                        dt_gemm_kernel_fp16_avx512(KC2, A, Bp, nv, 0.5f, c2, LDC, m, n, first, beta, bias, epis[e], r);
                        for (int i = 0; i < 8 * LDC; i++) {
                            int row = i / LDC, col = i % LDC;
                            if (row >= m || col >= n) {
                                if (c2[i] != c0[i]) bad++;
                                continue;
                            }
                            if (!(fabsf(c1[i] - c2[i]) <= TOL * (2 * KC2 + 4))) bad++;
                        }
                    }
    if (bad) fprintf(stderr, "fp16 kernel: %d elements differ\n", bad);
    CHECK_EQ_INT(bad, 0);
}

enum { B_PLAIN, B_TRANS, B_PACKED, B_VIRTUAL, B_HALF, B_HALF_TA, B_WAYS };
static const char *const way_name[] = {"plain", "trans_b", "B_packed", "pack_b", "B fp16 (A float32)",
                                       "B fp16 (A float32, trans_a)"};

/* The whole product at odd M, N, K, with bias and a Relu + residual epilogue, against float64
 * sums of the operands: within TOL of the sum of |products| each, and the root mean square of
 * those ratios within TOL / 32 (the bound is the worst case). Again with the operand converted
 * at run time (B; A where B is packed in float16 at build), the bias and the residual scaled
 * by 2^-30, as mobilenet_v2's activations shrink: below float16's range unless the
 * conversion scales blocks (gemm.h): the result is 2^-30 times the first. */
static void test_gemm_matches_rounded_reference(dt_pool *pool)
{
    const int64_t sizes[] = {1, 7, 17, 49, 100, 257, 600};
    int ns = (int)(sizeof sizes / sizeof *sizes);
    double worst = 0, sq = 0;
    int64_t count = 0;
    for (int xi = 0; xi < ns; xi++)
        for (int yi = 0; yi < ns; yi++)
            for (int zi = 0; zi < ns; zi++) {
                int64_t M = sizes[xi], N = sizes[yi], K = sizes[zi];
                if (M * N * K > 20000000) continue;
                float *A = malloc(sizeof(float) * (size_t)(M * K)), *B = malloc(sizeof(float) * (size_t)(K * N));
                float *Bt = malloc(sizeof(float) * (size_t)(K * N)), *bias = malloc(sizeof(float) * (size_t)M);
                float *res = malloc(sizeof(float) * (size_t)(M * N)), *C = malloc(sizeof(float) * (size_t)(M * N));
                double *R = malloc(sizeof(double) * (size_t)(M * N)), *S = malloc(sizeof(double) * (size_t)(M * N));
                uint16_t *Ap = malloc(sizeof(uint16_t) * (size_t)dt_gemm_packed_a_bf16_elems(M, K));
                float *Bp = malloc(sizeof(float) * (size_t)dt_gemm_packed_b_floats(N, K));
                uint16_t *B16 = malloc(sizeof(uint16_t) * (size_t)dt_gemm_packed_b_bf16_elems(N, K));
                float *At = malloc(sizeof(float) * (size_t)(M * K)), *As = malloc(sizeof(float) * (size_t)(M * K));
                float *Bs = malloc(sizeof(float) * (size_t)(K * N)), *Bts = malloc(sizeof(float) * (size_t)(K * N));
                float *biass = malloc(sizeof(float) * (size_t)M), *ress = malloc(sizeof(float) * (size_t)(M * N));
                for (int64_t i = 0; i < M * K; i++) A[i] = frand();
                for (int64_t i = 0; i < K * N; i++) B[i] = frand() * 4.0f;
                for (int64_t k = 0; k < K; k++)
                    for (int64_t j = 0; j < N; j++) Bt[j * K + k] = B[k * N + j];
                for (int64_t i = 0; i < M; i++) bias[i] = frand();
                for (int64_t i = 0; i < M * N; i++) res[i] = frand();
                for (int64_t i = 0; i < M; i++)
                    for (int64_t j = 0; j < N; j++) {
                        double s = 0, a = 0;
                        for (int64_t k = 0; k < K; k++) {
                            double p = (double)A[i * K + k] * B[k * N + j];
                            s += p;
                            a += fabs(p);
                        }
                        s = s + bias[i] + res[i * N + j];
                        R[i * N + j] = s > 0 ? s : 0;
                        S[i * N + j] = a + fabs(bias[i]) + fabs(res[i * N + j]);
                    }
                dt_gemm_pack_a_half(A, K, M, K, dt_fp16_round, Ap);
                dt_gemm_pack_b_half(Bt, K, true, K, N, dt_fp16_round, B16);
                for (int tiny = 0; tiny < 2; tiny++) {
                    /* the run-time operands, the bias and the residual times 2^-30 */
                    float sc = tiny ? ldexpf(1.0f, -30) : 1.0f;
                    for (int64_t i = 0; i < K * N; i++) Bs[i] = B[i] * sc, Bts[i] = Bt[i] * sc;
                    for (int64_t i = 0; i < M * K; i++) As[i] = A[i] * sc;
                    for (int64_t i = 0; i < M; i++) biass[i] = bias[i] * sc;
                    for (int64_t i = 0; i < M * N; i++) ress[i] = res[i] * sc;
                    for (int64_t i = 0; i < M; i++)
                        for (int64_t k = 0; k < K; k++) At[k * M + i] = As[i * K + k];
                    dt_gemm_pack_b_full(Bs, N, false, K, N, Bp);
                    virt_b vb = {Bs, N};
                    for (int way = 0; way < B_WAYS; way++) {
                        dt_epilogue epi = {.act = DT_ACT_RELU, .res = ress};
                        dt_gemm g = {.M = M, .N = N, .K = K, .alpha = 1, .beta = 0, .A_bf16 = Ap, .B = Bs, .ldb = N,
                                     .C = C, .ldc = N, .bias = biass, .epi = &epi, .fp16 = true};
                        if (way == B_TRANS) g.B = Bts, g.ldb = K, g.trans_b = true;
                        if (way == B_PACKED) g.B_packed = Bp, g.B = NULL;
                        if (way == B_VIRTUAL) g.pack_b = virt_pack, g.pack_b_ctx = &vb, g.B = NULL;
                        if (way >= B_HALF) g.A_bf16 = NULL, g.A = As, g.lda = K, g.B_bf16 = B16, g.B = NULL;
                        if (way == B_HALF_TA) g.A = At, g.lda = M, g.trans_a = true;
                        for (int64_t i = 0; i < M * N; i++) C[i] = NAN;
                        CHECK_EQ_INT(dt_sgemm(&g, pool), DUCTILE_OK);
                        for (int64_t i = 0; i < M * N; i++) {
                            double err = fabs(C[i] / sc - R[i]) / (S[i] * TOL + 1e-30);
                            if (!(err <= 1.0)) {
                                fprintf(stderr, "fp16 %s%s %lldx%lldx%lld [%lld]: %g, want %g (%g of the bound)\n",
                                        way_name[way], tiny ? " x 2^-30" : "", (long long)M, (long long)N, (long long)K,
                                        (long long)i, C[i] / sc, R[i], err);
                                CHECK(err <= 1.0);
                                break;
                            }
                            if (err > worst) worst = err;
                            sq += err * err;
                            count++;
                        }
                    }
                }
                free(A), free(B), free(Bt), free(bias), free(res), free(C), free(R), free(S), free(Ap), free(Bp), free(B16), free(At);
                free(As), free(Bs), free(Bts), free(biass), free(ress);
            }
    double rms = sqrt(sq / (double)(count ? count : 1));
    fprintf(stderr, "fp16: worst error %.3g of the bound, rms %.3g, %d threads\n", worst, rms, dt_pool_threads(pool));
    CHECK(rms <= 1.0 / 32);
}

int main(void)
{
    bool fast = dt_cpu_has_fp16();
    test_round();
    test_pack_matches_reference(fast);
    test_kernel_matches_reference(fast);
    test_gemm_matches_rounded_reference(NULL);
    dt_pool *pool = NULL;
    CHECK_EQ_INT(dt_pool_create(2, &pool), DUCTILE_OK);
    test_gemm_matches_rounded_reference(pool);
    dt_pool_free(pool);
    TEST_MAIN_END();
}
