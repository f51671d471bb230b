/* GFLOP/s of the CPU backend's sgemm at a few square and model-shaped sizes, and ms of the
 * convolutions of the model suite's hot layers.
 *   make && gcc -std=c11 -D_GNU_SOURCE -O2 -Iinclude -Isrc bench/bench_gemm.c build/libductile.a
 *       -lm -pthread -o build/bench_gemm
 *   (links the library: the conv paths need winograd.c and the epilogue)
 *   ./bench_gemm [threads] [MxNxK ...]   (sizes given: only those GEMMs, no convs) */
#include "backend/cpu/conv.h"
#include "backend/cpu/gemm.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void bench(dt_pool *pool, int64_t M, int64_t N, int64_t K)
{
    float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N),
          *C = malloc(sizeof(float) * M * N);
    for (int64_t i = 0; i < M * K; i++) A[i] = (float)(i % 7) - 3.0f;
    for (int64_t i = 0; i < K * N; i++) B[i] = (float)(i % 5) - 2.0f;
    dt_gemm g = {.M = M, .N = N, .K = K, .alpha = 1, .beta = 0, .A = A, .lda = K, .B = B,
                 .ldb = N, .C = C, .ldc = N};
    dt_sgemm(&g, pool);
    double flops = 2.0 * M * N * K, best = 1e9;
    int reps = (int)(2e10 / flops) + 10;
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        dt_sgemm(&g, pool);
        double t = now_s() - t0;
        if (t < best) best = t;
    }
    printf("M=%-5lld N=%-5lld K=%-5lld %8.3f ms %7.1f GFLOP/s\n", (long long)M, (long long)N,
           (long long)K, best * 1e3, flops / best * 1e-9);
    free(A);
    free(B);
    free(C);
}

/* A square-kernel, square-image conv with symmetric padding. */
static void bench_conv(dt_pool *pool, int64_t c, int64_t m, int64_t hw, int64_t k, int64_t group,
                       int64_t stride)
{
    dt_conv_geom g = {2, 1, c, m, group, {hw, hw}, {0, 0}, {k, k}, {stride, stride}, {1, 1},
                      {k / 2, k / 2}, {k / 2, k / 2}};
    for (int i = 0; i < 2; i++) g.out[i] = (hw + 2 * (k / 2) - k) / stride + 1;
    int64_t nx = c * hw * hw, nw = m * (c / group) * k * k, ny = m * g.out[0] * g.out[1];
    float *x = malloc(sizeof(float) * nx), *w = malloc(sizeof(float) * nw),
          *b = malloc(sizeof(float) * m), *y = malloc(sizeof(float) * ny);
    for (int64_t i = 0; i < nx; i++) x[i] = (float)(i % 11) * 0.1f;
    for (int64_t i = 0; i < nw; i++) w[i] = (float)(i % 3) * 0.1f;
    for (int64_t i = 0; i < m; i++) b[i] = 0.5f;
    dt_cpu_conv(&g, x, w, b, y, pool);
    double flops = 2.0 * ny * (c / group) * k * k, best = 1e9;
    int reps = (int)(1e10 / flops) + 10;
    if (reps > 500) reps = 500;
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        dt_cpu_conv(&g, x, w, b, y, pool);
        double t = now_s() - t0;
        if (t < best) best = t;
    }
    printf("conv C=%-4lld M=%-4lld %lldx%lld k=%lld g=%-4lld s=%lld %8.3f ms %7.1f GFLOP/s\n",
           (long long)c, (long long)m, (long long)hw, (long long)hw, (long long)k,
           (long long)group, (long long)stride, best * 1e3, flops / best * 1e-9);
    free(x), free(w), free(b), free(y);
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    dt_pool *pool = NULL;
    if (dt_pool_create(threads, &pool) != DUCTILE_OK) return 1;
    printf("threads=%d\n", threads);
    static const int64_t sizes[][3] = {
        {128, 128, 128}, {256, 256, 256}, {512, 512, 512}, {1024, 1024, 1024},
        {384, 256, 256},     /* bert_small projection, B*S=384 */
        {128, 128, 64},      /* attention scores */
        {64, 50176, 576},    /* superres 3x3 conv as GEMM */
        {144, 3136, 24},     /* mobilenet 1x1 expansion */
    };
    long long m, n, k;
    for (int a = 2; a < argc; a++)
        if (sscanf(argv[a], "%lldx%lldx%lld", &m, &n, &k) == 3) bench(pool, m, n, k);
    if (argc > 2) {
        dt_pool_free(pool);
        return 0;
    }
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        bench(pool, sizes[i][0], sizes[i][1], sizes[i][2]);
    bench_conv(pool, 64, 64, 224, 3, 1, 1);     /* superres body */
    bench_conv(pool, 1, 64, 224, 5, 1, 1);      /* superres first */
    bench_conv(pool, 32, 9, 224, 3, 1, 1);      /* superres last */
    bench_conv(pool, 144, 144, 56, 3, 144, 1);  /* mobilenet depthwise */
    bench_conv(pool, 144, 144, 56, 3, 144, 2);
    bench_conv(pool, 24, 144, 56, 1, 1, 1);     /* mobilenet expansion */
    dt_pool_free(pool);
    return 0;
}
