/* In-cache GFLOP/s of the CPU backend's GEMM micro-kernels against this machine's register-only
 * peak, measured in the same process: a kernel far below 100% with A, B and C in L1/L2 has a
 * code problem (an accumulator spilled to the stack by the register allocator, session 32),
 * not a memory one.
 *   make build/bench_kernels
 *   build/bench_kernels [K ...]   (default K = 32 64 256)
 * Each line: 32 tiles of 8 x 48 (plus nx extra columns for the x kernels) over one B panel,
 * ReLU epilogue and bias, best of 300 passes. */
#include "backend/cpu/epilogue.h"
#include "backend/cpu/gemm.h"

#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { P = 32, LDC = 64, ROUNDS = 300 };

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* 16 independent chains of 512-bit FMAs (float32) or dot products (bfloat16) on registers
 * only: the peak. STEP(acc) is one instruction of a chain. */
#define PEAK_FN(NAME, TARGET, OPERANDS, STEP)                                                 \
    __attribute__((target(TARGET))) static float NAME(long iters)                            \
    {                                                                                        \
        OPERANDS;                                                                            \
        __m512 a[16];                                                                        \
        for (int i = 0; i < 16; i++) a[i] = _mm512_set1_ps((float)i);                        \
        for (long n = 0; n < iters; n++)                                                     \
            _Pragma("GCC unroll 16") for (int i = 0; i < 16; i++) a[i] = STEP(a[i]);         \
        __m512 s = a[0];                                                                     \
        for (int i = 1; i < 16; i++) s = _mm512_add_ps(s, a[i]);                             \
        return _mm512_reduce_add_ps(s);                                                      \
    }
#define F32_STEP(acc) _mm512_fmadd_ps(acc, x, y)
#define BF16_STEP(acc) _mm512_dpbf16_ps(acc, xb, yb)
PEAK_FN(peak_f32, "avx512f", __m512 x = _mm512_set1_ps(0.999999f); __m512 y = _mm512_set1_ps(1e-7f), F32_STEP)
PEAK_FN(peak_bf16, "avx512f,avx512bf16", __m512bh xb = (__m512bh)_mm512_set1_epi16(0x3f80);
        __m512bh yb = (__m512bh)_mm512_set1_epi16(0x3380), BF16_STEP)

static double peak(bool bf16)
{
    long iters = 1 << 20;
    double best = 1e9;
    volatile float sink = 0;
    for (int r = 0; r < 10; r++) {
        double t = now_s();
        sink += bf16 ? peak_bf16(iters) : peak_f32(iters);
        t = now_s() - t;
        if (t < best) best = t;
    }
    (void)sink;
    return (double)iters * 16 * 16 * 2 * (bf16 ? 2 : 1) / best * 1e-9;
}

typedef struct {
    int K, nx;
    float *a, *b, *c, *bias;
    uint16_t *ah, *bh;
    dt_epilogue epi;
} setup;

/* One pass of kernel `which` over the P tiles. */
static void pass(const setup *s, int which)
{
    int K = s->K, K2 = K / 2;
    for (int p = 0; p < P; p++) {
        float *c = s->c + p * 8 * LDC;
        const float *a = s->a + p * 8 * K, *an = a + 8 * K;
        const uint16_t *ah = s->ah + p * 8 * K, *ahn = ah + 8 * K;
        switch (which) {
        case 0: dt_gemm_kernel_bf16_avx512(K2, ah, s->bh, 3, c, LDC, 8, 48, true, 0, s->bias, &s->epi, NULL); break;
        case 1:
            dt_gemm_kernel_bf16_next_avx512(K2, ah, ahn, s->bh, 3, c, LDC, 8, 48, true, 0, s->bias, &s->epi, NULL);
            break;
        case 2:
            dt_gemm_kernel_bf16_x_avx512(K2, ah, ahn, s->bh, c, LDC, 8, true, 0, s->bias, &s->epi, NULL, s->bh, s->nx);
            break;
        case 3: dt_gemm_kernel_avx512_epi(K, a, s->b, 48, 3, c, LDC, 8, 48, true, 0, s->bias, &s->epi, NULL); break;
        case 4:
            dt_gemm_kernel_pf_avx512(K, a, s->b, 48, 3, c, LDC, 8, 48, true, 0, s->bias, &s->epi, NULL, s->b, 48, K / P,
                                     NULL);
            break;
        case 5:
            dt_gemm_kernel_pf_avx512(K, a, s->b, 48, 3, c, LDC, 8, 48, true, 0, s->bias, &s->epi, NULL, s->b, 48, K / P,
                                     an);
            break;
        case 6:
            dt_gemm_kernel_rows_avx512(K, a, K, s->b, 48, 3, c, LDC, 8, 48, true, 0, s->bias);
            break;
        case 7:
            dt_gemm_kernel_rows_avx512_epi(K, a, K, s->b, 48, 3, c, LDC, 8, 48, true, 0, s->bias, &s->epi, NULL);
            break;
        default:
            dt_gemm_kernel_x_avx512(K, a, an, s->b, 48, 3, 48, s->b, 16, s->nx, c, LDC, 8, true, 0, s->bias,
                                    &s->epi, NULL);
            break;
        }
    }
}

int main(int argc, char **argv)
{
    static const char *names[] = {"bf16",     "bf16_next", "bf16_x",       "f32_epi", "f32_pf",
                                  "f32_pf_next", "f32_rows", "f32_rows_epi", "f32_x"};
    int ks[16] = {32, 64, 256}, nk = 3;
    if (argc > 1)
        for (nk = 0; nk < argc - 1 && nk < 16; nk++) ks[nk] = atoi(argv[nk + 1]);
    double pk_f32 = peak(false), pk_bf16 = dt_cpu_has_bf16() ? peak(true) : 0;
    printf("peak: float32 %.0f GFLOP/s, bfloat16 %.0f GFLOP/s (1 thread)\n", pk_f32, pk_bf16);
    for (int ki = 0; ki < nk; ki++) {
        int K = (ks[ki] + 1) & ~1;
        setup s = {.K = K, .epi = {.act = DT_ACT_RELU}};
        s.a = aligned_alloc(64, sizeof(float) * 8 * K * (P + 1));
        s.ah = aligned_alloc(64, sizeof(uint16_t) * 8 * K * (P + 1));
        s.b = aligned_alloc(64, sizeof(float) * 64 * K);
        s.bh = aligned_alloc(64, sizeof(uint16_t) * 64 * K);
        s.c = aligned_alloc(64, sizeof(float) * 8 * P * LDC);
        s.bias = aligned_alloc(64, sizeof(float) * 8 * P);
        for (int i = 0; i < 8 * K * (P + 1); i++) s.a[i] = 1.0f, s.ah[i] = 0x3f80;
        for (int i = 0; i < 64 * K; i++) s.b[i] = 1.0f, s.bh[i] = 0x3f80;
        for (int i = 0; i < 8 * P; i++) s.bias[i] = 0.5f;
        for (int which = 0; which < 9; which++) {
            bool bf16 = which < 3;
            if (bf16 && !pk_bf16) continue;
            for (int nx = 0; nx <= 4; nx++) {
                bool x = which == 2 || which == 8;
                if (x ? nx == 0 && which == 2 : nx > 0) continue;
                s.nx = nx;
                double best = 1e9;
                for (int r = 0; r < ROUNDS; r++) {
                    double t = now_s();
                    pass(&s, which);
                    t = now_s() - t;
                    if (t < best) best = t;
                }
                double gf = 2.0 * 8 * (48 + nx) * K * P / best * 1e-9;
                printf("K=%-5d %-12s nx=%d %6.0f GFLOP/s %4.0f%% of peak\n", K, names[which], nx, gf,
                       100 * gf / (bf16 ? pk_bf16 : pk_f32));
            }
        }
        free(s.a), free(s.ah), free(s.b), free(s.bh), free(s.c), free(s.bias);
    }
    return 0;
}
