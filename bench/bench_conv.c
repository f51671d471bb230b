/* ms (process CPU time, min of N runs) of each applicable conv algorithm on the model suite's
 * 3x3 stride-1 layers, so tactics and Winograd block sizes can be compared layer by layer.
 *   make && gcc -std=c11 -D_GNU_SOURCE -O2 -Iinclude -Isrc bench/bench_conv.c
 *       build/libductile.a -lm -pthread -o build/bench_conv
 *   ./build/bench_conv [threads] */
#include "backend/cpu/conv.h"
#include "backend/cpu/gemm.h"
#include "backend/cpu/winograd.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void bench(dt_pool *pool, int64_t n, int64_t c, int64_t m, int64_t h, int64_t w)
{
    dt_conv_geom g = {.spatial = 2, .batch = n, .c = c, .m = m, .group = 1, .in = {h, w},
                      .out = {h, w}, .k = {3, 3}, .s = {1, 1}, .d = {1, 1}, .pb = {1, 1},
                      .pe = {1, 1}};
    int64_t nx = n * c * h * w, ny = n * m * h * w;
    float *x = malloc(sizeof(float) * nx), *wt = malloc(sizeof(float) * m * c * 9),
          *y = malloc(sizeof(float) * ny), *b = calloc(m, sizeof(float));
    for (int64_t i = 0; i < nx; i++) x[i] = (float)(i % 13) * 0.1f - 0.6f;
    for (int64_t i = 0; i < m * c * 9; i++) wt[i] = (float)(i % 7) * 0.1f - 0.3f;
    float *pk = malloc(sizeof(float) * dt_cpu_conv_packed_floats(&g));
    float *u = malloc(sizeof(float) * dt_cpu_wino_floats(&g));
    dt_cpu_conv_pack_weights(&g, wt, pk);
    dt_cpu_wino_pack_weights(&g, wt, u);
    dt_epilogue epi = {.act = DT_ACT_RELU};
    printf("%lldx%lldx%lldx%lld -> %lld:", (long long)n, (long long)c, (long long)h, (long long)w,
           (long long)m);
    static const char *names[] = {"", "im2col", "padded", "", "winograd"};
    for (int algo = DT_CONV_IM2COL; algo <= DT_CONV_WINOGRAD; algo++) {
        if (!dt_cpu_conv_algo_applies(&g, (dt_conv_algo)algo)) continue;
        dt_conv_args a = {.x = x, .w_packed = pk, .w_wino = u, .bias = b, .epi = &epi, .y = y};
        double best = 1e9;
        for (int r = 0; r < 7; r++) {
            double t0 = cpu_s();
            dt_cpu_conv_run_algo(&g, &a, (dt_conv_algo)algo, pool);
            double t = cpu_s() - t0;
            if (t < best) best = t;
        }
        printf("  %s %.2f ms", names[algo], best * 1e3);
    }
    printf("\n");
    free(x), free(wt), free(y), free(b), free(pk), free(u);
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    dt_pool *pool = NULL;
    dt_pool_create(threads, &pool);
    bench(pool, 1, 64, 64, 224, 224);   /* superres */
    bench(pool, 1, 64, 32, 224, 224);
    bench(pool, 1, 32, 9, 224, 224);
    bench(pool, 1, 64, 64, 512, 512);
    bench(pool, 1, 64, 32, 512, 512);
    bench(pool, 1, 32, 9, 512, 512);
    dt_pool_free(pool);
    return 0;
}
