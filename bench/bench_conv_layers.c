/* GFLOP/s of the CPU conv paths at resnet50's and mobilenet's layer shapes (batch 1, weights
 * packed as the builder packs them, Relu epilogue as the fused layers run), best of many runs:
 * the microbenchmark behind bench/results/cpu-conv-*.md.
 *   make all && gcc -std=c11 -D_GNU_SOURCE -O2 -Iinclude -Isrc bench/bench_conv_layers.c \
 *       build/libductile.a -lm -pthread -o build/bench_conv_layers   (add the CUDA libraries
 *       the Makefile links when built with CUDA)
 *   build/bench_conv_layers [threads] [filter substring] [algo] [activation: dt_act, 1 = Relu]
 * Environment: BATCH=n images per run; RES=1 a residual input (as resnet50's block ends);
 * HUGE=1 x, y and the residual in blocks of at least DT_ALLOC_HUGE_MIN from dt_aligned_alloc
 * (2 MB pages where the kernel gives them, as the engine's activation arena has); FLUSH=MB
 * written between runs (untimed), as a model's other layers evict this one's data. */
#include "backend/cpu/conv.h"
#include "backend/cpu/gemm.h"
#include "backend/cpu/winograd.h"
#include "core/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <immintrin.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* n floats: malloc'd, or with HUGE=1 as the engine's arena gets them (huge-page advised). */
static float *act_alloc(int64_t n)
{
    size_t bytes = sizeof(float) * (size_t)n;
    if (!getenv("HUGE")) return malloc(bytes);
    return dt_aligned_alloc(64, bytes > DT_ALLOC_HUGE_MIN ? bytes : DT_ALLOC_HUGE_MIN);
}

static void act_free(float *p)
{
    if (getenv("HUGE"))
        dt_free(p);
    else
        free(p);
}

typedef struct layer {
    const char *name;
    int64_t c, m, hw, k, s, group, d; /* d: dilation, 0 = 1 */
} layer;

static dt_act act = DT_ACT_RELU;

static void run(dt_pool *pool, const layer *L, int algo)
{
    int64_t d = L->d ? L->d : 1, pad = d * (L->k / 2);
    /* BATCH (environment): images per run, 1 unless set */
    int64_t nb = getenv("BATCH") ? atoll(getenv("BATCH")) : 1;
    if (nb < 1) nb = 1;
    dt_conv_geom g = {2, nb, L->c, L->m, L->group, {L->hw, L->hw}, {0, 0}, {L->k, L->k}, {L->s, L->s}, {d, d},
                      {pad, pad}, {pad, pad}};
    for (int i = 0; i < 2; i++) g.out[i] = (L->hw + 2 * pad - d * (L->k - 1) - 1) / L->s + 1;
    int64_t nx = nb * L->c * L->hw * L->hw, nw = L->m * (L->c / L->group) * L->k * L->k,
            ny = nb * L->m * g.out[0] * g.out[1];
    float *x = act_alloc(nx), *w = malloc(sizeof(float) * nw), *b = malloc(sizeof(float) * L->m),
          *y = act_alloc(ny), *res = getenv("RES") ? act_alloc(ny) : NULL;
    for (int64_t i = 0; i < nx; i++) x[i] = (float)(i % 11) * 0.1f - 0.5f;
    for (int64_t i = 0; i < nw; i++) w[i] = (float)(i % 3) * 0.1f - 0.1f;
    for (int64_t i = 0; i < L->m; i++) b[i] = 0.5f;
    for (int64_t i = 0; res && i < ny; i++) res[i] = (float)(i % 7) * 0.1f - 0.3f;
    /* res_far and c_far as FusedConv sets them for these sizes */
    dt_epilogue epi = {.act = act, .p0 = 1.0f / 6, .p1 = 0.5f, .res = res,
                       .res_far = res && (size_t)ny >= DT_CPU_RES_FAR_BYTES / sizeof(float),
                       .c_far = (size_t)ny >= DT_CPU_C_FAR_BYTES / sizeof(float)};
    dt_conv_args a = {.x = x, .w = w, .bias = b, .epi = &epi, .y = y};
    /* BATCH_PX (environment): dt_conv_args.batch_px, the batched 1x1s threshold (0: the default) */
    if (getenv("BATCH_PX")) a.batch_px = atoll(getenv("BATCH_PX"));
    float *wp = NULL;
    uint16_t *wb16 = NULL;
    if (!dt_cpu_conv_is_depthwise(&g)) {
        /* HUGE=1: in 2 MB pages, as an engine's weights blob is */
        size_t wb = sizeof(float) * (size_t)dt_cpu_conv_packed_floats(&g);
        wp = dt_aligned_alloc(64, getenv("HUGE") && wb < DT_ALLOC_HUGE_MIN ? DT_ALLOC_HUGE_MIN : wb);
        dt_cpu_conv_pack_weights(&g, w, wp);
        a.w_packed = wp;
        a.w = NULL;
        /* BF16=1 (environment): the GEMM algorithms on weights packed in bfloat16, as --bf16
         * engines run them (the float32 copy stays for DT_CONV_ON_F32) */
        if (getenv("BF16")) {
            wb16 = dt_aligned_alloc(64, (size_t)dt_cpu_conv_packed_bf16_bytes(&g));
            dt_cpu_conv_pack_weights_bf16(&g, w, wb16);
            a.w_bf16 = wb16;
        }
    }
    if (algo == DT_CONV_AUTO) algo = dt_cpu_conv_auto(&g);
    if (!dt_cpu_conv_algo_applies(&g, algo)) goto done;
    float *ww = NULL;
    if (algo == DT_CONV_WINOGRAD) {
        /* transformed once, as the builder does */
        size_t wb = sizeof(float) * (size_t)dt_cpu_wino_floats(&g);
        ww = dt_aligned_alloc(64, getenv("HUGE") && wb < DT_ALLOC_HUGE_MIN ? DT_ALLOC_HUGE_MIN : wb);
        dt_cpu_wino_pack_weights(&g, w, ww);
        a.w_wino = ww;
    } else if (algo == DT_CONV_WINOGRAD_BF16) {
        /* transformed and packed in bfloat16 once, as the builder does */
        size_t wb = sizeof(float) * (size_t)dt_cpu_wino_bf16_floats(&g);
        ww = dt_aligned_alloc(64, getenv("HUGE") && wb < DT_ALLOC_HUGE_MIN ? DT_ALLOC_HUGE_MIN : wb);
        dt_cpu_wino_bf16_pack_weights(&g, w, (uint16_t *)ww);
        a.w_wino_bf16 = (const uint16_t *)ww;
    } else if (algo == DT_CONV_S2_BF16) {
        /* the direct stride-2 conv's bfloat16 weights, packed once as the builder does */
        ww = dt_aligned_alloc(64, sizeof(float) * (size_t)dt_cpu_conv_s2_bf16_floats(&g));
        dt_cpu_conv_s2_bf16_pack_weights(&g, w, (uint16_t *)ww);
        a.w_s2_bf16 = (const uint16_t *)ww;
    }
    size_t bytes;
    dt_cpu_conv_scratch(&g, &a, algo, dt_pool_threads(pool), &bytes);
    a.scratch = dt_aligned_alloc(64, bytes + 64);
    dt_cpu_conv_run_algo(&g, &a, algo, pool);
    double flops = 2.0 * ny * (L->c / L->group) * L->k * L->k, best = 1e9;
    int reps = (int)(3e9 / flops) + 20;
    if (reps > 400) reps = 400;
    /* FLUSH (environment): MB written between runs (untimed), as a model's other layers
     * evict this one's weights and input from the caches */
    size_t flush = getenv("FLUSH") ? (size_t)atoll(getenv("FLUSH")) << 20 : 0;
    char *fb = flush ? malloc(flush) : NULL;
    for (int r = 0; r < reps; r++) {
        /* a line at a time (memset's non-temporal stores past a size would evict nothing) */
        for (size_t o = 0; fb && o < flush; o += 64) ((volatile char *)fb)[o] += (char)r;
        /* COLD (environment): w, x, y or r (letters, any of them) evicted from every cache
         * before each run, the weights being the Winograd or packed ones where the layer
         * has them */
        const char *cold = getenv("COLD");
        if (cold) {
            const void *bufs[4] = {ww ? (const void *)ww : wp ? (const void *)wp : (const void *)w, x, y, res};
            size_t sizes[4] = {sizeof(float) * (size_t)(ww ? dt_cpu_wino_floats(&g) : wp ? dt_cpu_conv_packed_floats(&g) : nw),
                               sizeof(float) * (size_t)nx,
                               sizeof(float) * (size_t)ny, res ? sizeof(float) * (size_t)ny : 0};
            for (int q = 0; q < 4; q++)
                for (size_t o = 0; strchr(cold, "wxyr"[q]) && bufs[q] && o < sizes[q]; o += 64)
                    _mm_clflush((const char *)bufs[q] + o);
            _mm_mfence();
        }
        double t0 = now_s();
        dt_cpu_conv_run_algo(&g, &a, algo, pool);
        double t = now_s() - t0;
        if (t < best) best = t;
    }
    printf("%-10s algo=%d C=%-4lld M=%-4lld %3lldx%-3lld k=%lld s=%lld g=%-4lld %8.3f ms %7.1f GFLOP/s\n", L->name,
           algo, (long long)L->c, (long long)L->m, (long long)L->hw, (long long)L->hw, (long long)L->k,
           (long long)L->s, (long long)L->group, best * 1e3, flops / best * 1e-9);
    free(fb);
    dt_free(a.scratch);
    dt_free(ww);
done:
    dt_free(wp);
    dt_free(wb16);
    free(w), free(b);
    act_free(x), act_free(y), act_free(res);
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    const char *filter = argc > 2 ? argv[2] : "";
    int algo = argc > 3 ? atoi(argv[3]) : 0;
    if (argc > 4) act = (dt_act)atoi(argv[4]);   /* epilogue.h: 1 Relu, 4 HardSwish */
    dt_pool *pool = NULL;
    if (dt_pool_create(threads, &pool) != DUCTILE_OK) return 1;
    static const layer layers[] = {
        {"r1x1a", 64, 64, 56, 1, 1, 1},     {"r1x1b", 64, 256, 56, 1, 1, 1},
        {"r1x1c", 256, 64, 56, 1, 1, 1},    {"r1x1d", 256, 128, 56, 1, 1, 1},
        {"r1x1e", 128, 512, 28, 1, 1, 1},   {"r1x1f", 512, 128, 28, 1, 1, 1},
        {"r1x1g", 512, 256, 28, 1, 1, 1},   {"r1x1h", 256, 1024, 14, 1, 1, 1},
        {"r1x1i", 1024, 256, 14, 1, 1, 1},  {"r1x1j", 1024, 512, 14, 1, 1, 1},
        {"r1x1k", 512, 2048, 7, 1, 1, 1},   {"r1x1l", 2048, 512, 7, 1, 1, 1},
        {"r1x1s2a", 256, 512, 56, 1, 2, 1}, {"r1x1s2b", 512, 1024, 28, 1, 2, 1},
        {"r1x1s2c", 1024, 2048, 14, 1, 2, 1},
        {"r3x3s2a", 128, 128, 56, 3, 2, 1}, {"r3x3s2b", 256, 256, 28, 3, 2, 1},
        {"r3x3s2c", 512, 512, 14, 3, 2, 1}, {"r3x3s1d", 512, 512, 7, 3, 1, 1},
        {"r3x3s1a", 64, 64, 56, 3, 1, 1},   {"r3x3s1b", 128, 128, 28, 3, 1, 1},
        {"r3x3s1c", 256, 256, 14, 3, 1, 1},
        {"u5x5", 1, 64, 224, 5, 1, 1},      {"u3x3a", 64, 64, 224, 3, 1, 1},
        {"u3x3b", 64, 32, 224, 3, 1, 1},    {"u3x3c", 32, 9, 224, 3, 1, 1},
        {"rstem", 3, 64, 224, 7, 2, 1},     {"mstem", 3, 32, 224, 3, 2, 1},
        {"sstem", 3, 16, 555, 3, 2, 1},
        {"m1x1p56", 144, 24, 56, 1, 1, 1},  {"m1x1p56b", 96, 24, 56, 1, 1, 1},
        {"m1x1e56", 24, 144, 56, 1, 1, 1},  {"m1x1e112", 16, 96, 112, 1, 1, 1},
        {"m1x1p112", 32, 16, 112, 1, 1, 1}, {"s1x1p389", 64, 24, 195, 1, 1, 1},
        {"s1x1p41", 960, 160, 41, 1, 1, 1}, {"s1x1e41", 160, 960, 41, 1, 1, 1},
        {"s1x1c41", 960, 128, 41, 1, 1, 1}, {"s1x1e83", 40, 120, 83, 1, 1, 1},
        {"s1x1p83", 120, 40, 83, 1, 1, 1},  {"r1x1b120", 64, 256, 120, 1, 1, 1},
        {"m1x1e28", 32, 192, 28, 1, 1, 1},  {"m1x1p28", 192, 32, 28, 1, 1, 1},
        {"m1x1e14", 64, 384, 14, 1, 1, 1},  {"m1x1p14", 384, 64, 14, 1, 1, 1},
        {"m1x1e14b", 96, 576, 14, 1, 1, 1}, {"m1x1p14b", 576, 96, 14, 1, 1, 1},
        {"m1x1e7", 160, 960, 7, 1, 1, 1},  {"m1x1p7", 960, 160, 7, 1, 1, 1},
        {"m1x1p7b", 960, 320, 7, 1, 1, 1}, {"m1x1x7", 320, 1280, 7, 1, 1, 1},
        {"mdw56", 144, 144, 56, 3, 1, 144}, {"mdw56s2", 144, 144, 56, 3, 2, 144},
        {"mdw112", 32, 32, 112, 3, 1, 32},  {"mdw14", 576, 576, 14, 3, 1, 576},
        {"sdw389", 16, 16, 389, 3, 1, 16},  {"sdw389s2", 64, 64, 389, 3, 2, 64},
        {"mdw112s2", 96, 96, 112, 3, 2, 96}, {"mdw28s2", 192, 192, 28, 3, 2, 192},
        {"mdw14s2", 576, 576, 14, 3, 2, 576},
        {"mdw7", 960, 960, 7, 3, 1, 960},   {"mdw14b", 384, 384, 14, 3, 1, 384},
        {"mdw28", 192, 192, 28, 3, 1, 192},   {"sdw5x5s2", 72, 72, 195, 5, 2, 72},
        {"sdw5x5_98", 120, 120, 98, 5, 1, 120}, {"sdw5x5d2", 960, 960, 42, 5, 1, 960, 2},
        {"e1x1p14", 480, 80, 14, 1, 1, 1},  {"e1x1e14", 80, 480, 14, 1, 1, 1},
        {"e1x1p14b", 672, 112, 14, 1, 1, 1}, {"e1x1e14b", 112, 672, 14, 1, 1, 1},
        {"e1x1p7", 1152, 192, 7, 1, 1, 1},  {"e1x1e7", 192, 1152, 7, 1, 1, 1},
        {"e1x1p7b", 1152, 320, 7, 1, 1, 1}, {"e1x1p28", 240, 40, 28, 1, 1, 1},
        {"e1x1e28", 40, 240, 28, 1, 1, 1},
        {"y3x3s2a", 16, 32, 240, 3, 2, 1},  {"y3x3s2b", 32, 64, 120, 3, 2, 1},
        {"y3x3s2c", 64, 128, 60, 3, 2, 1},  {"y3x3s2d", 128, 256, 30, 3, 2, 1},
        {"ystem", 3, 16, 480, 3, 2, 1},      {"y3x3s2al", 16, 32, 254, 3, 2, 1}, {"y3x3s2am", 16, 32, 222, 3, 2, 1},
        {"yw80", 64, 64, 80, 3, 1, 1},       {"yw80c", 80, 80, 80, 3, 1, 1},      {"yw40", 64, 64, 40, 3, 1, 1},
        {"yw20", 64, 64, 20, 3, 1, 1},       {"yw160", 8, 8, 160, 3, 1, 1},       {"yw40b", 32, 32, 40, 3, 1, 1},
        {"y6s2a", 16, 32, 320, 3, 2, 1},     {"y6s2b", 32, 64, 160, 3, 2, 1},     {"y6s2c", 64, 128, 80, 3, 2, 1},
        {"y6s2d", 128, 256, 40, 3, 2, 1},    {"ynar1", 64, 128, 40, 3, 2, 1},     {"ynar2", 32, 64, 40, 3, 2, 1},
        {"ynar3", 64, 64, 28, 3, 2, 1},      {"ynar4", 32, 32, 22, 3, 2, 1},    {"y6s2e", 64, 64, 80, 3, 2, 1},      {"y6s2f", 128, 128, 40, 3, 2, 1},
    };
    for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++)
        if (strstr(layers[i].name, filter)) run(pool, &layers[i], algo);
    dt_pool_free(pool);
    return 0;
}
