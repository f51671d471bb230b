/* FusedMatMul with norm = 1 on tensor cores (gemm_norm.cu, dt_cu_gemm_norm), called directly (a
 * build times it against cuBLASLt + the LayerNorm kernel and keeps the faster, so an engine
 * test cannot tell which ran): Y = LayerNorm(act(A B + bias + R)) at odd sizes (rows 1 to 1024
 * ending inside a block of 16 or 32, K 8 to 1032 ending inside a step of 32, N 128, 256 and 512),
 * blocks of 16 and 32 rows, K unsplit and split over 2 to 8 blocks of a cluster (more blocks than steps too: empty
 * slices), with and without bias, residual, the LayerNorm's B and the erf Gelu, float16 and
 * bfloat16, against a double reference on the same (rounded) inputs: rel-L2 <= 1e-2. GPU only
 * (skips with "no CUDA device found"). And, without a GPU, what it refuses (float32, K not a
 * multiple of 8, another N, no Scale, a split past the cluster) and the split it picks. */
#include "cuda_probe.h"
#include "testutil.h"

#ifdef DT_WITH_CUDA
#include "cuda_bufs.h"

#include <cuda_runtime_api.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

typedef struct norm_case {
    int64_t m, n, k;
    bool bias, res, lb, gelu;
} norm_case;

/* Runs case c in dtype with the column block and split given; rel-L2 against the reference. */
static double run_case(const norm_case *c, int dtype, int rows, int split)
{
    conv_bufs t;
    conv_bufs_alloc(&t, dtype, (size_t)(c->m * c->k), (size_t)(c->k * c->n), (size_t)c->n, (size_t)(c->m * c->n));
    size_t es = t.es, n = (size_t)c->n;
    float *sc = malloc(n * sizeof(float)), *lb = malloc(n * sizeof(float));
    void *hs = malloc(n * es), *hl = malloc(n * es);
    for (size_t i = 0; i < t.nx; i++) t.x[i] = put(t.hx, dtype, i, rnd());
    for (size_t i = 0; i < t.nw; i++) t.w[i] = put(t.hw, dtype, i, 0.3f * rnd());
    for (size_t i = 0; i < t.nb; i++) t.b[i] = put(t.hb, dtype, i, rnd());
    for (size_t i = 0; i < t.ny; i++) t.r[i] = put(t.hr, dtype, i, 2.f * rnd());
    for (size_t i = 0; i < n; i++) sc[i] = put(hs, dtype, i, 1.f + 0.5f * rnd()), lb[i] = put(hl, dtype, i, rnd());
    double err = INFINITY;
    void *ds = dev_copy(hs, n * es), *dl = dev_copy(hl, n * es);
    bool up = conv_bufs_upload(&t) && ds && dl;
    CHECK(up);
    if (up) {
        int rc = dt_cu_gemm_norm(dtype, t.dx, t.dw, c->bias ? t.db : NULL, c->res ? t.dr : NULL, ds, c->lb ? dl : NULL,
                                 t.dy, c->m, c->n, c->k, c->gelu ? DT_CU_GELU : DT_CU_IDENTITY, 1e-5f, rows, split, NULL);
        CHECK_EQ_INT(rc, 0);
        CHECK_EQ_INT(conv_bufs_download(&t), 0);
        rel_err e = {0, 0};
        double *row = malloc(n * sizeof(double));
        for (int64_t i = 0; i < c->m; i++) {
            double mean = 0, var = 0;
            for (int64_t j = 0; j < c->n; j++) {
                double acc = 0;
                for (int64_t q = 0; q < c->k; q++) acc += (double)t.x[i * c->k + q] * t.w[q * c->n + j];
                if (c->bias) acc += t.b[j];
                if (c->res) acc += t.r[i * c->n + j];
                if (c->gelu) acc = 0.5 * acc * (1.0 + erf(acc / sqrt(2.0)));
                row[j] = acc;
                mean += acc;
            }
            mean /= (double)c->n;
            for (int64_t j = 0; j < c->n; j++) var += (row[j] - mean) * (row[j] - mean);
            double inv = 1.0 / sqrt(var / (double)c->n + 1e-5);
            for (int64_t j = 0; j < c->n; j++)
                rel_err_add(&e, get(t.hy, dtype, (size_t)(i * c->n + j)),
                            (row[j] - mean) * inv * sc[j] + (c->lb ? lb[j] : 0.0));
        }
        free(row);
        err = rel_err_of(&e);
    }
    cudaFree(ds), cudaFree(dl);
    free(sc), free(lb), free(hs), free(hl);
    conv_bufs_free(&t);
    return err;
}

static const norm_case cases[] = {
    /* m, n, k, bias, res, lb, gelu */
    {1, 128, 8, true, false, true, false},       /* one row, one step */
    {16, 256, 256, true, true, true, false},     /* BERT's output projection at 1x16 */
    {16, 256, 1024, true, true, true, false},    /* ... its second feed-forward product */
    {37, 128, 72, false, true, false, false},    /* rows and K end inside a block / step */
    {100, 256, 40, true, false, true, true},     /* Gelu before the norm */
    {33, 512, 264, true, true, true, false},
    {5, 512, 32, true, true, false, false},      /* one step of K: split slices empty */
    {1024, 256, 1032, true, true, true, false},  /* 8x128 tokens, K past 1024 */
};

/* Host-side: what the kernel refuses and the split it picks, without a GPU. */
static void check_host(void)
{
    CHECK(dt_cu_gemm_norm_applies(DUCTILE_FLOAT16, 16, 256, 256));
    CHECK(dt_cu_gemm_norm_applies(DUCTILE_BFLOAT16, 16, 512, 256));
    CHECK(!dt_cu_gemm_norm_applies(DUCTILE_FLOAT32, 16, 256, 256));
    CHECK(!dt_cu_gemm_norm_applies(DUCTILE_FLOAT16, 16, 256, 252));    /* K % 8 */
    CHECK(!dt_cu_gemm_norm_applies(DUCTILE_FLOAT16, 16, 192, 256));    /* N */
    CHECK(!dt_cu_gemm_norm_applies(DUCTILE_FLOAT16, 16, 1024, 256));
    CHECK_EQ_INT(dt_cu_gemm_norm(DUCTILE_FLOAT32, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 16, 256, 256, DT_CU_IDENTITY,
                                 1e-5f, 16, 1, NULL), (int)cudaErrorInvalidValue);
    CHECK_EQ_INT(dt_cu_gemm_norm(DUCTILE_FLOAT16, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 16, 256, 256, DT_CU_IDENTITY,
                                 1e-5f, 16, 1, NULL), (int)cudaErrorInvalidValue);   /* no Scale */
    static const char sc[2] = {0};
    CHECK_EQ_INT(dt_cu_gemm_norm(DUCTILE_FLOAT16, NULL, NULL, NULL, NULL, sc, NULL, NULL, 16, 256, 256, DT_CU_IDENTITY,
                                 1e-5f, 24, 1, NULL), (int)cudaErrorInvalidValue);   /* rows 24 */
    CHECK_EQ_INT(dt_cu_gemm_norm(DUCTILE_FLOAT16, NULL, NULL, NULL, NULL, sc, NULL, NULL, 16, 256, 256, DT_CU_IDENTITY,
                                 1e-5f, 16, 9, NULL), (int)cudaErrorInvalidValue);   /* past the cluster */
    /* 1x16 tokens: one block for 132 multiprocessors: K 1024 (32 steps of 32) split 8 (the
     * cluster's most), K 256 (8 steps) split 4 (2 steps a slice); 8x128 tokens: 64 blocks of
     * 16 rows, split 3, 32 of 32 rows, split 5; a grid that fills the GPU: none; one step of
     * K: none. */
    CHECK_EQ_INT(dt_cu_gemm_norm_split(16, 1024, 16, 132), 8);
    CHECK_EQ_INT(dt_cu_gemm_norm_split(16, 256, 16, 132), 4);
    CHECK_EQ_INT(dt_cu_gemm_norm_split(1024, 1024, 16, 132), 3);
    CHECK_EQ_INT(dt_cu_gemm_norm_split(1024, 1024, 32, 132), 5);
    CHECK_EQ_INT(dt_cu_gemm_norm_split(4096, 1024, 16, 132), 1);
    CHECK_EQ_INT(dt_cu_gemm_norm_split(16, 32, 16, 132), 1);
}

int main(void)
{
    check_host();
    if (!test_cuda_device_found()) {
        fprintf(stderr, "skipped: no CUDA device found\n");
        TEST_MAIN_END();
    }
    static const int dtypes[] = {DUCTILE_FLOAT16, DUCTILE_BFLOAT16};
    static const char *const names[] = {"f16", "bf16"};
    static const int splits[] = {1, 2, 3, 5, 8};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int t = 0; t < 2; t++)
            for (int rows = 16; rows <= 32; rows *= 2)
                for (size_t s = 0; s < sizeof splits / sizeof splits[0]; s++) {
                    double err = run_case(&cases[i], dtypes[t], rows, splits[s]);
                    if (!(err <= 1e-2))
                        fprintf(stderr, "case %zu %s rows %d split %d: rel-L2 %.3e\n", i, names[t], rows, splits[s], err);
                    CHECK(err <= 1e-2);
                }
    TEST_MAIN_END();
}
#else
int main(void)
{
    fprintf(stderr, "skipped: no CUDA device found (CPU-only build)\n");
    TEST_MAIN_END();
}
#endif
