/* The machine's measured float32 FMA peak, the yardstick of the bench's "share of peak" for
 * convolutions and matmuls (bench/bench.py builds and runs it).
 *   fma_peak [threads]  ->  {"isa": "avx512", "threads": T, "gflops": G}
 * Each thread runs independent chains of register-only FMAs (enough chains to cover the
 * FMA latency times the units), best of several timed rounds: what a perfect kernel could
 * reach here, not the datasheet figure (a VM's vCPUs, shared cores and clocks included). */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { ITERS = 1 << 20, ROUNDS = 20 };

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* 12 chains of 16 floats: 12 * 16 * 2 FLOPs per iteration. */
__attribute__((target("avx512f"))) static float fma_avx512(long iters)
{
    __m512 a[12], x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) a[i] = _mm512_set1_ps((float)i);
    for (long n = 0; n < iters; n++)
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++) a[i] = _mm512_fmadd_ps(a[i], x, y);
    __m512 s = a[0];
    for (int i = 1; i < 12; i++) s = _mm512_add_ps(s, a[i]);
    return _mm512_reduce_add_ps(s);
}

/* 12 chains of 8 floats (AVX2 + FMA machines). */
__attribute__((target("avx2,fma"))) static float fma_avx2(long iters)
{
    __m256 a[12], x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) a[i] = _mm256_set1_ps((float)i);
    for (long n = 0; n < iters; n++)
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++) a[i] = _mm256_fmadd_ps(a[i], x, y);
    __m256 s = a[0];
    for (int i = 1; i < 12; i++) s = _mm256_add_ps(s, a[i]);
    float v[8];
    _mm256_storeu_ps(v, s);
    return v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
}

static int wide;            /* 1: AVX-512 */
static volatile float sink;

static void *worker(void *arg)
{
    (void)arg;
    sink = wide ? fma_avx512(ITERS) : fma_avx2(ITERS);
    return NULL;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    if (threads < 1 || threads > 256) {
        fprintf(stderr, "fma_peak: threads must be 1..256\n");
        return 2;
    }
    __builtin_cpu_init();
    wide = __builtin_cpu_supports("avx512f");
    if (!wide && !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) {
        printf("{\"isa\": \"none\", \"threads\": %d, \"gflops\": 0}\n", threads);
        return 0;
    }
    double flops = (double)threads * ITERS * 12 * (wide ? 16 : 8) * 2, best = 1e30;
    pthread_t *t = malloc(sizeof *t * (size_t)threads);
    if (!t) return 1;
    for (int r = 0; r < ROUNDS; r++) {
        double t0 = now_s();
        for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, worker, NULL);
        for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
        double dt = now_s() - t0;
        if (dt < best) best = dt;
    }
    free(t);
    printf("{\"isa\": \"%s\", \"threads\": %d, \"gflops\": %.1f}\n", wide ? "avx512" : "avx2", threads,
           flops / best * 1e-9);
    return 0;
}
