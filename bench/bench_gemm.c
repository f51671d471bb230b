/* GFLOP/s of the CPU backend's sgemm at a few square and model-shaped sizes.
 *   gcc -std=c11 -D_GNU_SOURCE -O2 -Iinclude -Isrc bench/bench_gemm.c
 *       src/backend/cpu/gemm*.c src/core/*.c -lm -pthread -o bench_gemm
 *   ./bench_gemm [threads] */
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
    int reps = (int)(2e9 / flops) + 3;
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
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        bench(pool, sizes[i][0], sizes[i][1], sizes[i][2]);
    dt_pool_free(pool);
    return 0;
}
