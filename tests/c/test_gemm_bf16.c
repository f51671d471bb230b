/* The bfloat16 GEMM (gemm_bf16.c, the A_bf16 path of gemm.c): rounding, B conversion and the
 * micro-kernel against their plain C references, and the whole product against a float64
 * product of the same bfloat16-rounded operands, at odd sizes, for every way B arrives. */
#include "backend/cpu/gemm.h"
#include "gemm_testutil.h"
#include "core/threadpool.h"
#include "testutil.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static float bits_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static float bf16_value(float f)
{
    uint32_t u = (uint32_t)dt_bf16_round(f) << 16;
    return bits_float(u);
}

static void test_round_to_nearest_even(void)
{
    CHECK_EQ_INT(dt_bf16_round(1.0f), 0x3f80);
    CHECK_EQ_INT(dt_bf16_round(bits_float(0x3f808000u)), 0x3f80);   /* tie, even below */
    CHECK_EQ_INT(dt_bf16_round(bits_float(0x3f818000u)), 0x3f82);   /* tie, odd below: up */
    CHECK_EQ_INT(dt_bf16_round(bits_float(0x3f808001u)), 0x3f81);   /* above the tie */
    CHECK_EQ_INT(dt_bf16_round(-2.5f), 0xc020);
    CHECK_EQ_INT(dt_bf16_round(bits_float(0x00000001u)), 0x0000);   /* denormal: zero */
    CHECK_EQ_INT(dt_bf16_round(bits_float(0x80400000u)), 0x8000);   /* keeps the sign */
    CHECK_EQ_INT(dt_bf16_round(INFINITY), 0x7f80);
    CHECK_EQ_INT(dt_bf16_round(bits_float(0x7f7fffffu)), 0x7f80);   /* FLT_MAX rounds to inf */
    CHECK_EQ_INT(dt_bf16_round(bits_float(0x7f800001u)), 0x7fc0);   /* signalling NaN: quiet */
}

/* The AVX512-BF16 conversion gives the reference's bits, odd rows and widths included. */
static void test_pack_matches_reference(bool fast)
{
    if (!fast) {
        fprintf(stderr, "skip: this CPU lacks AVX512-BF16; pack_avx512 not run\n");
        return;
    }
    enum { LDS = 70 };
    float src[300 * LDS];
    for (int i = 0; i < 300 * LDS; i++) src[i] = frand() * 1000.0f;
    src[3] = bits_float(0x00000005u);
    src[5] = NAN;
    src[7] = -INFINITY;
    src[LDS + 1] = bits_float(0x3f818000u);
    static uint16_t a[300 * 96 + 64], b[300 * 96 + 64];
    const int kcs[] = {1, 2, 7, 17, 256}, ns[] = {1, 7, 8, 16, 17, 33, 48};
    for (size_t x = 0; x < sizeof kcs / sizeof *kcs; x++)
        for (size_t y = 0; y < sizeof ns / sizeof *ns; y++) {
            /* ld 8: an A panel of 8 rows (the GEMM converts packed float32 A panels so) */
            int kc = kcs[x], n = ns[y], ld = n <= 8 && y % 2 ? 8 : (n + 15) & ~15;
            memset(a, 0xab, sizeof a);
            memset(b, 0xcd, sizeof b);
            dt_gemm_bf16_pack_ref(src, LDS, kc, n, ld, a);
            dt_gemm_bf16_pack_avx512(src, LDS, kc, n, ld, b);
            size_t used = (size_t)((kc + 1) / 2) * 2 * (size_t)ld;
            if (memcmp(a, b, used * sizeof *a) != 0) fprintf(stderr, "pack kc=%d n=%d differs\n", kc, n);
            CHECK(memcmp(a, b, used * sizeof *a) == 0);
            CHECK_EQ_INT(b[used], 0xcdcd);  /* nothing written past the panel */
        }
}

/* A converter under test: its reference and AVX512-BF16 forms on kc rows, n columns, ld wide,
 * each reading its own source (ctx). */
typedef struct converter {
    void (*ref)(const void *ctx, int64_t kc, int n, int ld, uint16_t *dst);
    void (*fast)(const void *ctx, int64_t kc, int n, int ld, uint16_t *dst);
    const void *ctx;
} converter;

/* Cases (odd rows and widths) where cv's forms differ from converting `copy` (rows LDS apart)
 * with the plain reference, or the fast form writes past the panel. */
static int converter_differs(const converter *cv, const float *copy, int64_t lds, int64_t K, bool fast)
{
    static uint16_t want[64 * 96 + 64], ref[64 * 96 + 64], got[64 * 96 + 64];
    const int64_t kcs[] = {1, 2, 7, 17, K};
    const int ns[] = {1, 7, 16, 17, 33, 48};
    int bad = 0;
    for (size_t x = 0; x < sizeof kcs / sizeof *kcs; x++)
        for (size_t y = 0; y < sizeof ns / sizeof *ns; y++) {
            int64_t kc = kcs[x];
            int n = ns[y], ld = (n + 15) & ~15;
            size_t used = (size_t)((kc + 1) / 2) * 2 * (size_t)ld;
            dt_gemm_bf16_pack_ref(copy, lds, kc, n, ld, want);
            cv->ref(cv->ctx, kc, n, ld, ref);
            bad += memcmp(want, ref, used * sizeof *want) != 0;
            if (fast) {
                memset(got, 0xcd, sizeof got);
                cv->fast(cv->ctx, kc, n, ld, got);
                bad += memcmp(want, got, used * sizeof *want) != 0;
                bad += got[used] != 0xcdcd;   /* nothing written past the panel */
            }
        }
    return bad;
}

enum { CONV_LDS = 70, CONV_K = 37 };

typedef struct scaled_src {
    const float *src, *scale;
} scaled_src;

static void scaled_ref(const void *ctx, int64_t kc, int n, int ld, uint16_t *dst)
{
    const scaled_src *c = ctx;
    dt_gemm_bf16_pack_scaled_ref(c->src, CONV_LDS, kc, n, ld, c->scale, dst);
}

static void scaled_fast(const void *ctx, int64_t kc, int n, int ld, uint16_t *dst)
{
    const scaled_src *c = ctx;
    dt_gemm_bf16_pack_scaled_avx512(c->src, CONV_LDS, kc, n, ld, c->scale, dst);
}

/* The scaling converter (dt_gemm.b_scale) gives the bits of converting the products stored
 * as float32, reference and AVX512-BF16 alike: odd rows and widths, a NaN, an infinity and a
 * zero among the scales; the columns past n stay zero under an infinite scale. */
static void test_scaled_pack_matches_a_scaled_copy(bool fast)
{
    enum { LDS = CONV_LDS, K = CONV_K };
    float src[K * LDS], copy[K * LDS], scale[K];
    for (int i = 0; i < K * LDS; i++) src[i] = frand() * 100.0f;
    for (int k = 0; k < K; k++) scale[k] = frand() * 3.0f;
    scale[2] = 0.0f;
    scale[5] = INFINITY;
    scale[9] = NAN;
    for (int k = 0; k < K; k++)
        for (int j = 0; j < LDS; j++) copy[k * LDS + j] = src[k * LDS + j] * scale[k];
    scaled_src c = {src, scale};
    converter cv = {scaled_ref, scaled_fast, &c};
    int bad = converter_differs(&cv, copy, LDS, K, fast);
    if (bad) fprintf(stderr, "scaled pack: %d cases differ from the scaled copy's\n", bad);
    CHECK_EQ_INT(bad, 0);
    if (!fast) fprintf(stderr, "skip: this CPU lacks AVX512-BF16; scaled pack_avx512 not run\n");
}

typedef struct rows_src {
    const float *src;
    const int64_t *off;
} rows_src;

static void rows_ref(const void *ctx, int64_t kc, int n, int ld, uint16_t *dst)
{
    const rows_src *c = ctx;
    dt_gemm_bf16_pack_rows_ref(c->src, c->off, kc, n, ld, dst);
}

static void rows_fast(const void *ctx, int64_t kc, int n, int ld, uint16_t *dst)
{
    const rows_src *c = ctx;
    dt_gemm_bf16_pack_rows_avx512(c->src, c->off, kc, n, ld, dst);
}

/* The row-offset converter (dt_gemm.b_off) gives the bits of converting the rows copied one
 * after another, reference and AVX512-BF16 alike: odd rows and widths, rows out of order. */
static void test_rows_pack_matches_a_copy(bool fast)
{
    enum { LDS = CONV_LDS, K = CONV_K };
    float src[K * LDS], copy[K * LDS];
    int64_t off[K];
    for (int i = 0; i < K * LDS; i++) src[i] = frand() * 100.0f;
    src[9] = NAN;
    src[LDS + 2] = INFINITY;
    for (int k = 0; k < K; k++) off[k] = (int64_t)((k * 11) % K) * LDS + k % 3;
    for (int k = 0; k < K; k++) memcpy(copy + k * LDS, src + off[k], sizeof(float) * 48);
    rows_src c = {src, off};
    converter cv = {rows_ref, rows_fast, &c};
    int bad = converter_differs(&cv, copy, LDS, K, fast);
    if (bad) fprintf(stderr, "rows pack: %d cases differ from the copy's\n", bad);
    CHECK_EQ_INT(bad, 0);
    if (!fast) fprintf(stderr, "skip: this CPU lacks AVX512-BF16; rows pack_avx512 not run\n");
}

/* The vdpbf16ps micro-kernel against the reference kernel: every row count, vector count,
 * width, store mode and in-store epilogue. The products are exact in float32, so the two
 * differ only in how the hardware rounds the two adds of a pair: allowed a few float32 ulps
 * of the sum of |products|. */
static void test_kernel_matches_reference(bool fast)
{
    if (!fast) {
        fprintf(stderr, "skip: this CPU lacks AVX512-BF16; kernel_avx512 not run\n");
        return;
    }
    enum { KC2 = 37, LDC = 53 };
    static uint16_t A[KC2 * 16], B[KC2 * 96];
    float absA[KC2 * 2][8], absB[KC2 * 2][48];
    for (int k = 0; k < KC2; k++) {
        for (int i = 0; i < 16; i++) A[k * 16 + i] = dt_bf16_round(frand());
        for (int j = 0; j < 96; j++) B[k * 96 + j] = dt_bf16_round(frand());
    }
    float bias[8], res[8 * LDC], c0[8 * LDC], c1[8 * LDC], c2[8 * LDC];
    for (int i = 0; i < 8; i++) bias[i] = frand();
    for (int i = 0; i < 8 * LDC; i++) {
        res[i] = frand();
        c0[i] = frand();
    }
    (void)absA, (void)absB;
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
                        /* B panels of nv vectors: pair rows nv*32 apart, taken from B's rows */
                        static uint16_t Bp[KC2 * 96];
                        for (int k = 0; k < KC2; k++) memcpy(Bp + k * nv * 32, B + k * 96, sizeof(uint16_t) * nv * 32);
                        memcpy(c1, c0, sizeof c0);
                        memcpy(c2, c0, sizeof c0);
                        dt_gemm_kernel_bf16_ref(KC2, A, Bp, nv, c1, LDC, m, n, first, beta, bias, epis[e], r);
                        dt_gemm_kernel_bf16_avx512(KC2, A, Bp, nv, c2, LDC, m, n, first, beta, bias, epis[e], r);
                        for (int i = 0; i < 8 * LDC; i++) {
                            int row = i / LDC, col = i % LDC;
                            if (row >= m || col >= n) {
                                if (c2[i] != c0[i]) bad++;   /* outside the tile: untouched */
                                continue;
                            }
                            /* |sum| <= 2 * KC2 (operands in [-1, 1]) plus |c|, |bias|, |res| */
                            if (!(fabsf(c1[i] - c2[i]) <= 4e-6f * (2 * KC2 + 4))) bad++;
                        }
                    }
    if (bad) fprintf(stderr, "kernel: %d elements differ\n", bad);
    CHECK_EQ_INT(bad, 0);
}

/* The narrow kernel (a last panel of 1-4 columns, every 8-row panel of a block at once)
 * against the reference kernel run panel by panel, at row counts that end mid-panel. */
static void test_narrow_matches_reference(bool fast)
{
    if (!fast) {
        fprintf(stderr, "skip: this CPU lacks AVX512-BF16; narrow kernel not run\n");
        return;
    }
    enum { KC2 = 29, LDC = 7, PANELS = 9 };
    static uint16_t A[PANELS * KC2 * 16], B[KC2 * 32];
    for (int i = 0; i < PANELS * KC2 * 16; i++) A[i] = dt_bf16_round(frand());
    for (int i = 0; i < KC2 * 32; i++) B[i] = dt_bf16_round(frand());
    float bias[PANELS * 8], c0[PANELS * 8 * LDC], c1[PANELS * 8 * LDC], c2[PANELS * 8 * LDC];
    for (int i = 0; i < PANELS * 8; i++) bias[i] = frand();
    for (int i = 0; i < PANELS * 8 * LDC; i++) c0[i] = frand();
    int bad = 0;
    for (int n = 1; n <= DT_GEMM_NARROW; n++)
        for (int m = 1; m <= PANELS * 8; m += 5)
            for (int mode = 0; mode < 3; mode++) {
                bool first = mode != 2;
                float beta = mode == 1 ? 0.5f : 0.0f;
                memcpy(c1, c0, sizeof c0);
                memcpy(c2, c0, sizeof c0);
                for (int p = 0; p * 8 < m; p++)
                    dt_gemm_kernel_bf16_ref(KC2, A + p * KC2 * 16, B, 1, c1 + p * 8 * LDC, LDC, m - p * 8 < 8 ? m - p * 8 : 8,
                                            n, first, beta, bias + p * 8, NULL, NULL);
                dt_gemm_kernel_bf16_narrow_avx512(KC2, A, KC2 * 16, B, 32, c2, LDC, m, n, first, beta, bias);
                for (int i = 0; i < PANELS * 8 * LDC; i++)
                    if (!(fabsf(c1[i] - c2[i]) <= 4e-6f * (2 * KC2 + 4))) bad++;
            }
    if (bad) fprintf(stderr, "narrow: %d elements differ\n", bad);
    CHECK_EQ_INT(bad, 0);
}

/* n random bfloat16 values into d (frand's, rounded). */
static void rand_bf16(uint16_t *d, int n)
{
    for (int i = 0; i < n; i++) d[i] = dt_bf16_round(frand());
}

/* A kernel test's floats: the bias of 8 rows, then c0 and res of 8 x ldc. */
static void rand_tile_floats(float *bias, float *c0, float *res, int ldc)
{
    for (int i = 0; i < 8; i++) bias[i] = frand();
    for (int i = 0; i < 8 * ldc; i++) c0[i] = frand(), res[i] = frand();
}

/* A kernel test's case `mode` (0-3): a first block with an epilogue (Relu after a residual),
 * one with beta, one without bias, and an accumulating block. */
typedef struct {
    bool first;
    float beta;
    const float *bias;
    dt_epilogue epi;
    const dt_epilogue *e;
} kernel_case;

static kernel_case kernel_case_of(int mode, const float *bias, const float *res)
{
    kernel_case k = {.first = mode != 2, .beta = mode == 1 ? 0.5f : 0.0f, .bias = mode == 3 ? NULL : bias,
                     .epi = {.act = DT_ACT_RELU, .res = res}};
    return k;
}

/* The 8 x (48 + nx) kernel (dt_gemm_kernel_bf16_x_fn) gives, bit for bit, the 48-column
 * kernel's tile and the narrow kernel's nx columns (heights 1-8, nx 1-4), and the kernel that
 * streams the next strip's A panel in (dt_gemm_kernel_bf16_next_fn) the plain kernel's tile
 * (heights 5-8, 1-3 vectors: n 16, 40, 48): each for the four kernel_case modes, the
 * epilogue in the store. */
static void test_x_and_next_kernels_match(bool fast)
{
    if (!fast) {
        fprintf(stderr, "skip: this CPU lacks AVX512-BF16; x and next-panel kernels not run\n");
        return;
    }
    enum { KC2 = 37, LDC = 57 };
    static uint16_t A[KC2 * 16], An[KC2 * 16], B[KC2 * 96], X[KC2 * 32];
    rand_bf16(A, KC2 * 16), rand_bf16(An, KC2 * 16), rand_bf16(B, KC2 * 96), rand_bf16(X, KC2 * 32);
    float bias[8], res[8 * LDC], c0[8 * LDC], c1[8 * LDC], c2[8 * LDC];
    rand_tile_floats(bias, c0, res, LDC);
    int bad_x = 0, bad_next = 0;
    for (int nx = 1; nx <= DT_GEMM_NARROW; nx++)
        for (int m = 1; m <= 8; m++)
            for (int mode = 0; mode < 4; mode++) {
                kernel_case k = kernel_case_of(mode, bias, res);
                const dt_epilogue *e = mode == 0 ? &k.epi : NULL;
                memcpy(c1, c0, sizeof c0);
                memcpy(c2, c0, sizeof c0);
                dt_gemm_kernel_bf16_avx512(KC2, A, B, 3, c1, LDC, m, 48, k.first, k.beta, k.bias, e, e ? res : NULL);
                dt_gemm_kernel_bf16_narrow_avx512(KC2, A, KC2 * 16, X, 32, c1 + 48, LDC, m, nx, k.first, k.beta, k.bias);
                dt_gemm_kernel_bf16_x_avx512(KC2, A, m & 1 ? A : NULL, B, c2, LDC, m, k.first, k.beta, k.bias, e,
                                             e ? res : NULL, X, nx);
                bad_x += memcmp(c1, c2, sizeof c1) != 0;
            }
    static const int widths[3] = {16, 40, 48};
    for (int w = 0; w < 3; w++)
        for (int m = 5; m <= 8; m++)
            for (int mode = 0; mode < 4; mode++) {
                kernel_case k = kernel_case_of(mode, bias, res);
                const dt_epilogue *e = mode == 0 ? &k.epi : NULL;
                int n = widths[w], nv = (n + 15) / 16;
                memcpy(c1, c0, sizeof c0);
                memcpy(c2, c0, sizeof c0);
                dt_gemm_kernel_bf16_avx512(KC2, A, B, nv, c1, LDC, m, n, k.first, k.beta, k.bias, e, e ? res : NULL);
                dt_gemm_kernel_bf16_next_avx512(KC2, A, An, B, nv, c2, LDC, m, n, k.first, k.beta, k.bias, e,
                                                e ? res : NULL);
                bad_next += memcmp(c1, c2, sizeof c1) != 0;
            }
    if (bad_x || bad_next) fprintf(stderr, "x kernel: %d cases differ; next-panel kernel: %d\n", bad_x, bad_next);
    CHECK_EQ_INT(bad_x, 0);
    CHECK_EQ_INT(bad_next, 0);
}

/* A whole tile (8 rows, 48 columns, first block, beta 0) takes the store made once for the
 * tile (dt_gemm_tile_store), non-temporal where the epilogue says C is past the cache
 * (c_far, 64-byte aligned rows); a 7-row tile of the same operands takes the row store: rows
 * 0-6 of the two agree bit for bit, for no / Relu / Clip / HardSwish / HardSigmoid epilogue,
 * with and without bias and residual. */
static void test_whole_tile_store_matches_row_store(bool fast)
{
    if (!fast) {
        fprintf(stderr, "skip: this CPU lacks AVX512-BF16; whole-tile store not run\n");
        return;
    }
    enum { KC2 = 8, LDC = 64 };
    static uint16_t A[KC2 * 16], B[KC2 * 96];
    for (int i = 0; i < KC2 * 16; i++) A[i] = dt_bf16_round(4 * frand());
    for (int i = 0; i < KC2 * 96; i++) B[i] = dt_bf16_round(frand());
    static float res[8 * LDC], c1[8 * LDC] __attribute__((aligned(64))), c2[8 * LDC] __attribute__((aligned(64)));
    float bias[8];
    for (int i = 0; i < 8; i++) bias[i] = frand();
    for (int i = 0; i < 8 * LDC; i++) res[i] = frand();
    int bad = 0, cases = 0;
    static const dt_act acts[] = {DT_ACT_NONE, DT_ACT_RELU, DT_ACT_CLIP, DT_ACT_HARDSWISH, DT_ACT_HARDSIGMOID, DT_ACT_SILU};
    for (int act = 0; act < 6; act++)
        for (int far = 0; far < 2; far++)
            for (int r = 0; r < 2; r++)
                for (int b = 0; b < 2; b++) {
                    dt_epilogue e = {.act = acts[act], .p0 = act == 2 ? -0.5f : 0.2f, .p1 = act == 2 ? 1.5f : 0.5f,
                                     .c_far = far};
                    const dt_epilogue *ep = act || far || r ? &e : NULL;
                    const float *rp = ep && r ? res : NULL;
                    memset(c1, 0, sizeof c1);
                    memset(c2, 0, sizeof c2);
                    dt_gemm_kernel_bf16_avx512(KC2, A, B, 3, c1, LDC, 8, 48, true, 0.0f, b ? bias : NULL, ep, rp);
                    dt_gemm_kernel_bf16_avx512(KC2, A, B, 3, c2, LDC, 7, 48, true, 0.0f, b ? bias : NULL, ep, rp);
                    bad += memcmp(c1, c2, sizeof(float) * 7 * LDC) != 0;
                    cases++;
                }
    if (bad) fprintf(stderr, "whole-tile store: %d of %d cases differ\n", bad, cases);
    CHECK_EQ_INT(bad, 0);
}

enum { B_PLAIN, B_TRANS, B_DIRECT, B_PACKED, B_VIRTUAL, B_ROWS, B_BF16, B_BF16_TA, B_WAYS };
static const char *const way_name[] = {"plain",  "trans_b", "direct_b", "B_packed", "pack_b",
                                       "b_off",  "B_bf16 (A float32)", "B_bf16 (A float32, trans_a)"};

/* The whole product at M, N, K in {1, 7, 17, 33, 49, 100, 196, 257}, every way B arrives (and B packed
 * in bfloat16 at build with a float32 A, plain or transposed, packed per block; B's rows through
 * an offset table, dt_gemm.b_off, here in reverse order 5 floats apart), with bias
 * and a Relu + residual epilogue, on 1 and 2 threads, against float64 sums of the rounded
 * operands: within float32 accumulation error (a few ulps of the sum of |products|). */
static void test_gemm_matches_rounded_reference(dt_pool *pool)
{
    /* 49 and 196: 7x7 and 14x14 images, whose last panel (1 and 4 columns) runs narrow */
    const int64_t sizes[] = {1, 7, 17, 33, 49, 100, 196, 257};
    int ns = (int)(sizeof sizes / sizeof *sizes), worst_way = -1;
    double worst = 0;
    for (int xi = 0; xi < ns; xi++)
        for (int yi = 0; yi < ns; yi++)
            for (int zi = 0; zi < ns; zi++) {
                int64_t M = sizes[xi], N = sizes[yi], K = sizes[zi];
                float *A = malloc(sizeof(float) * (size_t)(M * K)), *B = malloc(sizeof(float) * (size_t)(K * N));
                float *Bt = malloc(sizeof(float) * (size_t)(K * N)), *bias = malloc(sizeof(float) * (size_t)M);
                float *res = malloc(sizeof(float) * (size_t)(M * N)), *C = malloc(sizeof(float) * (size_t)(M * N));
                double *R = malloc(sizeof(double) * (size_t)(M * N)), *S = malloc(sizeof(double) * (size_t)(M * N));
                uint16_t *Ap = malloc(sizeof(uint16_t) * (size_t)dt_gemm_packed_a_bf16_elems(M, K));
                float *Bp = malloc(sizeof(float) * (size_t)dt_gemm_packed_b_floats(N, K));
                uint16_t *B16 = malloc(sizeof(uint16_t) * (size_t)dt_gemm_packed_b_bf16_elems(N, K));
                float *At = malloc(sizeof(float) * (size_t)(M * K));
                for (int64_t i = 0; i < M * K; i++) A[i] = frand();
                for (int64_t i = 0; i < K * N; i++) B[i] = frand();
                for (int64_t k = 0; k < K; k++)
                    for (int64_t j = 0; j < N; j++) Bt[j * K + k] = B[k * N + j];
                for (int64_t i = 0; i < M; i++) bias[i] = frand();
                for (int64_t i = 0; i < M * N; i++) res[i] = frand();
                for (int64_t i = 0; i < M; i++)
                    for (int64_t j = 0; j < N; j++) {
                        double s = 0, a = 0;
                        for (int64_t k = 0; k < K; k++) {
                            double p = (double)bf16_value(A[i * K + k]) * bf16_value(B[k * N + j]);
                            s += p;
                            a += fabs(p);
                        }
                        s = s + bias[i] + res[i * N + j];
                        R[i * N + j] = s > 0 ? s : 0;
                        S[i * N + j] = a + fabs(bias[i]) + fabs(res[i * N + j]);
                    }
                dt_gemm_pack_a_bf16(A, K, M, K, Ap);
                dt_gemm_pack_b_full(B, N, false, K, N, Bp);
                dt_gemm_pack_b_bf16(Bt, K, true, K, N, B16);
                for (int64_t i = 0; i < M; i++)
                    for (int64_t k = 0; k < K; k++) At[k * M + i] = A[i * K + k];
                virt_b vb = {B, N};
                /* row k of B at Br + off[k]: the rows in reverse order with 5 floats between */
                float *Br = malloc(sizeof(float) * (size_t)(K * (N + 5)));
                int64_t *off = malloc(sizeof(int64_t) * (size_t)K);
                for (int64_t k = 0; k < K; k++) {
                    off[k] = (K - 1 - k) * (N + 5);
                    memcpy(Br + off[k], B + k * N, sizeof(float) * (size_t)N);
                }
                for (int way = 0; way < B_WAYS; way++) {
                    dt_epilogue epi = {.act = DT_ACT_RELU, .res = res};
                    dt_gemm g = {.M = M, .N = N, .K = K, .alpha = 1, .beta = 0, .A_bf16 = Ap, .B = B, .ldb = N,
                                 .C = C, .ldc = N, .bias = bias, .epi = &epi};
                    if (way == B_TRANS) g.B = Bt, g.ldb = K, g.trans_b = true;
                    if (way == B_DIRECT) g.direct_b = true;
                    if (way == B_PACKED) g.B_packed = Bp, g.B = NULL;
                    if (way == B_VIRTUAL) g.pack_b = virt_pack, g.pack_b_ctx = &vb, g.B = NULL;
                    if (way == B_ROWS) g.B = Br, g.b_off = off, g.ldb = 0;
                    if (way >= B_BF16) g.A_bf16 = NULL, g.A = A, g.lda = K, g.B_bf16 = B16, g.B = NULL;
                    if (way == B_BF16_TA) g.A = At, g.lda = M, g.trans_a = true;
                    for (int64_t i = 0; i < M * N; i++) C[i] = NAN;   /* beta 0: C is write-only */
                    CHECK_EQ_INT(dt_sgemm(&g, pool), DUCTILE_OK);
                    for (int64_t i = 0; i < M * N; i++) {
                        double err = fabs(C[i] - R[i]) / (S[i] * 6e-8 * 8 + 1e-30);
                        if (!(err <= 1.0)) {
                            fprintf(stderr, "%s %lldx%lldx%lld [%lld]: %g, want %g (%g of the bound)\n",
                                    way_name[way], (long long)M, (long long)N, (long long)K, (long long)i, C[i],
                                    R[i], err);
                            CHECK(err <= 1.0);
                            break;
                        }
                        if (err > worst) worst = err, worst_way = way;
                    }
                }
                free(A), free(B), free(Bt), free(bias), free(res), free(C), free(R), free(S), free(Ap), free(Bp), free(B16), free(At), free(Br), free(off);
            }
    fprintf(stderr, "worst error %.3g of the bound (%s), %d threads\n", worst, worst_way >= 0 ? way_name[worst_way] : "-",
            dt_pool_threads(pool));
}

int main(void)
{
    bool fast = dt_cpu_has_bf16();
    test_round_to_nearest_even();
    test_pack_matches_reference(fast);
    test_scaled_pack_matches_a_scaled_copy(fast);
    test_rows_pack_matches_a_copy(fast);
    test_kernel_matches_reference(fast);
    test_narrow_matches_reference(fast);
    test_x_and_next_kernels_match(fast);
    test_whole_tile_store_matches_row_store(fast);
    test_gemm_matches_rounded_reference(NULL);
    dt_pool *pool = NULL;
    CHECK_EQ_INT(dt_pool_create(2, &pool), DUCTILE_OK);
    test_gemm_matches_rounded_reference(pool);
    dt_pool_free(pool);
    TEST_MAIN_END();
}
