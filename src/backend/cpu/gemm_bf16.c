/* bfloat16 GEMM pieces (gemm.h, "bfloat16 products"): packing A at build time, converting
 * float32 B panels to bfloat16 pairs at run time, and the 8 x 48 micro-kernel on vdpbf16ps
 * (32 multiply-adds per instruction, twice the float32 FMA's 16) with float32 accumulators,
 * plus a plain C reference of each, which the tests hold the fast ones to. */
#include "backend/cpu/gemm.h"
#include "backend/cpu/gemm_row.h"
#include "backend/cpu/simd_load.h"

#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

bool dt_cpu_has_bf16(void)
{
    /* DUCTILE_CPU_BF16=0 treats the CPU as lacking it (as oneDNN's ONEDNN_MAX_CPU_ISA caps the
     * ISA): --bf16 then builds float32 engines that load on any CPU, and tests see the refusal
     * of a bf16 engine on a CPU without it. */
    const char *v = getenv("DUCTILE_CPU_BF16");
    if (v && !strcmp(v, "0")) return false;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl");
}

uint16_t dt_bf16_round(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7f800000u) == 0) return (uint16_t)((u >> 16) & 0x8000u);           /* zero, denormal */
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);    /* NaN, made quiet */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static float dt_bf16_float(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

int64_t dt_gemm_packed_a_bf16_elems(int64_t M, int64_t K)
{
    return (M + DT_GEMM_MR - 1) / DT_GEMM_MR * DT_GEMM_MR * ((K + 1) & ~(int64_t)1);
}

void dt_gemm_pack_a_bf16(const float *A, int64_t lda, int64_t M, int64_t K, uint16_t *dst)
{
    dt_gemm_pack_a_half(A, lda, M, K, dt_bf16_round, dst);
}

void dt_gemm_pack_a_half(const float *A, int64_t lda, int64_t M, int64_t K, dt_half_round_fn round, uint16_t *dst)
{
    enum { MR = DT_GEMM_MR };
    int64_t k2 = (K + 1) & ~(int64_t)1;
    for (int64_t p = 0; p < M; p += MR, dst += MR * k2)
        for (int64_t k = 0; k < k2; k += 2)
            for (int i = 0; i < MR; i++)
                for (int h = 0; h < 2; h++) {
                    bool in = p + i < M && k + h < K;
                    dst[k * MR + 2 * i + h] = in ? round(A[(p + i) * lda + k + h]) : 0;
                }
}

int64_t dt_gemm_packed_b_bf16_elems(int64_t N, int64_t K)
{
    return (N + 15) / 16 * 16 * ((K + 1) & ~(int64_t)1);
}

void dt_gemm_pack_b_bf16(const float *B, int64_t ldb, bool trans_b, int64_t K, int64_t N, uint16_t *dst)
{
    dt_gemm_pack_b_half(B, ldb, trans_b, K, N, dt_bf16_round, dst);
}

void dt_gemm_pack_b_half(const float *B, int64_t ldb, bool trans_b, int64_t K, int64_t N, dt_half_round_fn round,
                         uint16_t *dst)
{
    int64_t k2 = (K + 1) & ~(int64_t)1;
    for (int64_t p = 0; p < N; p += DT_GEMM_NR) {
        int64_t w = N - p < DT_GEMM_NR ? N - p : DT_GEMM_NR, ld = (w + 15) & ~(int64_t)15;
        uint16_t *d = dst + p * k2;
        for (int64_t k = 0; k < k2; k += 2)
            for (int64_t j = 0; j < ld; j++)
                for (int h = 0; h < 2; h++) {
                    int64_t kk = k + h, jj = p + j;
                    float v = j < w && kk < K ? (trans_b ? B[jj * ldb + kk] : B[kk * ldb + jj]) : 0.0f;
                    d[k * ld + 2 * j + h] = round(v);
                }
    }
}

void dt_gemm_half_pack_ref(const float *src, int64_t lds, int64_t kc, int n, int ld, dt_half_round_fn round,
                           uint16_t *dst)
{
    for (int64_t k = 0; k < kc; k += 2, dst += 2 * ld)
        for (int j = 0; j < ld; j++)
            for (int h = 0; h < 2; h++)
                dst[2 * j + h] = j < n && k + h < kc ? round(src[(k + h) * lds + j]) : 0;
}

void dt_gemm_bf16_pack_ref(const float *src, int64_t lds, int64_t kc, int n, int ld, uint16_t *dst)
{
    dt_gemm_half_pack_ref(src, lds, kc, n, ld, dt_bf16_round, dst);
}

void dt_gemm_bf16_pack_rows_ref(const float *src, const int64_t *off, int64_t kc, int n, int ld, uint16_t *dst)
{
    for (int64_t k = 0; k < kc; k += 2, dst += 2 * ld)
        for (int j = 0; j < ld; j++)
            for (int h = 0; h < 2; h++)
                dst[2 * j + h] = j < n && k + h < kc ? dt_bf16_round(src[off[k + h] + j]) : 0;
}

void dt_gemm_bf16_pack_scaled_ref(const float *src, int64_t lds, int64_t kc, int n, int ld, const float *scale,
                                  uint16_t *dst)
{
    for (int64_t k = 0; k < kc; k += 2, dst += 2 * ld)
        for (int j = 0; j < ld; j++)
            for (int h = 0; h < 2; h++)
                dst[2 * j + h] = j < n && k + h < kc ? dt_bf16_round(src[(k + h) * lds + j] * scale[k + h]) : 0;
}

#define DT_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,fma")))

/* The converting packer, each row times its scale first where scale is set; row k at src +
 * off[k] where off is set, else at src + k * lds. */
static inline __attribute__((always_inline)) DT_BF16 void
dt_gemm_bf16_pack_body(const float *src, int64_t lds, const int64_t *off, int64_t kc, int n, int ld, const float *scale,
                       uint16_t *dst)
{
    int64_t k = 0;
    if (n == 48 && ld == 48) {
        /* A whole panel: the pairs of rows without masks or tests, 3 vectors a pair (Zen 4,
         * rows in L2: 5.1-5.6 -> 4.1-4.5 cycles per 32 values; 7.1 -> 5.1 from L3) */
        for (; k + 1 < kc; k += 2, dst += 96) {
            const float *r0 = off ? src + off[k] : src + k * lds, *r1 = off ? src + off[k + 1] : r0 + lds;
            __m512 s0 = _mm512_set1_ps(scale ? scale[k] : 1.0f), s1 = _mm512_set1_ps(scale ? scale[k + 1] : 1.0f);
#pragma GCC unroll 3
            for (int v = 0; v < 3; v++) {
                __m512 x0 = _mm512_loadu_ps(r0 + v * 16), x1 = _mm512_loadu_ps(r1 + v * 16);
                if (scale) {
                    x0 = _mm512_mul_ps(x0, s0);
                    x1 = _mm512_mul_ps(x1, s1);
                }
                _mm512_storeu_si512(dst + v * 32, dt_bf16_pairs(x0, x1));
            }
        }
    }
    for (; k < kc; k += 2, dst += 2 * ld) {
        bool two = k + 1 < kc;
        const float *r0 = off ? src + off[k] : src + k * lds, *r1 = off ? (two ? src + off[k + 1] : r0) : r0 + lds;
        __m512 s0 = _mm512_set1_ps(scale ? scale[k] : 1.0f), s1 = _mm512_set1_ps(scale && two ? scale[k + 1] : 1.0f);
        for (int v = 0; v * 16 < ld; v++) {
            int rem = n - v * 16;
            __mmask16 m = rem >= 16 ? (__mmask16)0xffff : rem > 0 ? (__mmask16)((1u << rem) - 1) : 0;
            __m512 x0 = _mm512_maskz_loadu_ps(m, r0 + v * 16);
            __m512 x1 = two ? _mm512_maskz_loadu_ps(m, r1 + v * 16) : _mm512_setzero_ps();
            if (scale) {
                /* the masked-off lanes stay zero (an infinite scale would make them NaN) */
                x0 = _mm512_maskz_mul_ps(m, x0, s0);
                x1 = _mm512_maskz_mul_ps(m, x1, s1);
            }
            __m512i h = dt_bf16_pairs(x0, x1);
            if (ld - v * 16 >= 16)
                _mm512_storeu_si512(dst + v * 32, h);
            else   /* ld = 8 (an A panel): the first 16 of the 32 */
                _mm512_mask_storeu_epi16(dst + v * 32, (__mmask32)0xffff, h);
        }
    }
}

DT_BF16 void dt_gemm_bf16_pack_avx512(const float *src, int64_t lds, int64_t kc, int n, int ld, uint16_t *dst)
{
    dt_gemm_bf16_pack_body(src, lds, NULL, kc, n, ld, NULL, dst);
}

DT_BF16 void dt_gemm_bf16_pack_rows_avx512(const float *src, const int64_t *off, int64_t kc, int n, int ld,
                                           uint16_t *dst)
{
    dt_gemm_bf16_pack_body(src, 0, off, kc, n, ld, NULL, dst);
}

dt_gemm_bf16_pack_rows_fn dt_gemm_bf16_pack_rows_select(void)
{
    return dt_cpu_has_bf16() ? dt_gemm_bf16_pack_rows_avx512 : dt_gemm_bf16_pack_rows_ref;
}

DT_BF16 void dt_gemm_bf16_pack_scaled_avx512(const float *src, int64_t lds, int64_t kc, int n, int ld,
                                             const float *scale, uint16_t *dst)
{
    dt_gemm_bf16_pack_body(src, lds, NULL, kc, n, ld, scale, dst);
}

dt_gemm_bf16_pack_scaled_fn dt_gemm_bf16_pack_scaled_select(void)
{
    return dt_cpu_has_bf16() ? dt_gemm_bf16_pack_scaled_avx512 : dt_gemm_bf16_pack_scaled_ref;
}

dt_gemm_bf16_pack_fn dt_gemm_bf16_pack_select(void)
{
    return dt_cpu_has_bf16() ? dt_gemm_bf16_pack_avx512 : dt_gemm_bf16_pack_ref;
}

void dt_gemm_kernel_bf16_ref(int64_t kc2, const uint16_t *a, const uint16_t *b, int nv, float *c, int64_t ldc,
                             int m, int n, bool first, float beta, const float *bias, const dt_epilogue *epi,
                             const float *res)
{
    enum { MR = DT_GEMM_MR, NR = DT_GEMM_NR };
    float acc[MR][NR];
    int ld = nv * 16;
    memset(acc, 0, sizeof acc);
    for (int64_t k = 0; k < kc2; k++, a += 2 * MR, b += 2 * ld)
        for (int i = 0; i < MR; i++) {
            float a0 = dt_bf16_float(a[2 * i]), a1 = dt_bf16_float(a[2 * i + 1]);
            /* Each product of two bfloat16 is exact in float32: one rounding per add. */
            for (int j = 0; j < ld; j++)
                acc[i][j] = acc[i][j] + a0 * dt_bf16_float(b[2 * j]) + a1 * dt_bf16_float(b[2 * j + 1]);
        }
    dt_gemm_ref_tile_out(acc, c, ldc, m, n, first, beta, bias, epi, res);
}

void dt_gemm_ref_tile_out(float (*acc)[DT_GEMM_NR], float *c, int64_t ldc, int m, int n, bool first, float beta,
                          const float *bias, const dt_epilogue *epi, const float *res)
{
    for (int i = 0; i < m; i++) {
        float *ci = c + i * ldc;
        for (int j = 0; j < n; j++) {
            float r = acc[i][j];
            if (first) {
                r = r + (bias ? bias[i] : 0.0f);
                if (beta != 0.0f) r = beta * ci[j] + r;
            } else {
                r = r + ci[j];
            }
            ci[j] = r;
        }
        if (epi) dt_epilogue_apply(epi, ci, res ? res + i * ldc : NULL, n);
    }
}

/* As dt_gemm_avx512_body (gemm_kernel.c) over k pairs: per pair, nv loads of 32 bfloat16 of
 * B, one broadcast of a row's pair of A per row, nv dot products per row. */
static inline __attribute__((always_inline)) DT_BF16 void
dt_gemm_bf16_body(const int mr, const int nv, int64_t kc2, const uint16_t *a, const uint16_t *b, float *c,
                  int64_t ldc, int m, int n, bool first, float beta, const float *bias, const dt_epilogue *epi,
                  const float *res, const int nx, const uint16_t *xb, const uint16_t *a_next, const bool tile_store)
{
    enum { MR = DT_GEMM_MR };
    __m512 acc[MR][3];
    const int ld2 = nv * 32;
    /* nx extra columns (dt_gemm_kernel_bf16_x_fn): the tile's 8 rows in the lanes, as the
     * narrow kernel holds them, two columns a register (lanes 8-15 the odd one), fed by the
     * 32 bytes of A the row broadcasts read. */
    __m512 xacc[DT_GEMM_NARROW / 2];
#pragma GCC unroll 2
    for (int q = 0; q < (nx + 1) / 2; q++) xacc[q] = _mm512_setzero_ps();
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 3
        for (int v = 0; v < nv; v++) acc[i][v] = _mm512_setzero_ps();
    /* As the float32 kernel's: a whole tile stored with its tests made once, non-temporally
     * past the cache. The row store's per-vector tests cost a tile of few k pairs as much as
     * its products (Zen 4, 8 x 48 tile with Clip, C in L2: K = 16 98 -> 63 ns, K = 32 149 ->
     * 116, K = 96 358 -> 326; float32 125 / 230 / 651): every bfloat16 1x1 gained. */
    const bool whole = tile_store && dt_gemm_tile_whole(mr, nv, m, n, first, beta, epi);
    const bool nt = dt_gemm_tile_nt(whole, epi, c, ldc);
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++) {
        if (i >= m) break;
#pragma GCC unroll 3
        for (int v = 0; v < nv && !nt; v++) _mm_prefetch((const char *)(c + i * ldc + v * 16), _MM_HINT_T0);
    }
    const int32_t *a32 = (const int32_t *)(const void *)a;
    for (int64_t k = 0; k < kc2; k++) {
        __m512bh bv[3];
#pragma GCC unroll 3
        for (int v = 0; v < nv; v++) bv[v] = (__m512bh)_mm512_loadu_si512(b + v * 32);
        _mm_prefetch((const char *)(b + 4 * ld2), _MM_HINT_T0);
        if (a_next && !(k & 1)) _mm_prefetch((const char *)(a_next + k * 16), _MM_HINT_T1);
        if (nx) {
            __m512i acol = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(const void *)a32));
#pragma GCC unroll 2
            for (int q = 0; q < (nx + 1) / 2; q++) {
                int32_t w0, w1;
                memcpy(&w0, xb + 4 * q, sizeof w0);
                __m512i bq = _mm512_set1_epi32(w0);
                if (2 * q + 1 < nx) {
                    memcpy(&w1, xb + 4 * q + 2, sizeof w1);
                    bq = _mm512_mask_set1_epi32(bq, 0xff00, w1);
                }
                xacc[q] = _mm512_dpbf16_ps(xacc[q], (__m512bh)acol, (__m512bh)bq);
            }
            xb += 32;
        }
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++) {
            __m512bh ai = (__m512bh)_mm512_set1_epi32(a32[i]);
#pragma GCC unroll 3
            for (int v = 0; v < nv; v++) acc[i][v] = _mm512_dpbf16_ps(acc[i][v], ai, bv[v]);
        }
        a32 += MR;
        b += ld2;
    }
    if (whole) {
        dt_gemm_tile_store(acc, nv, c, ldc, bias, epi, res, nt);
    } else {
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++) {
            if (i >= m) break;
            dt_gemm_row_out(acc[i], nv, c + i * ldc, n, first, beta, bias ? bias[i] : 0.0f, epi,
                            res ? res + i * ldc : NULL);
        }
    }
    /* The extra columns as the narrow kernel stores them (no epilogue: the caller's pass): row
     * i's values out of lane i of each pair by a permute, then the row store (a scalar store
     * per value cost the 8 x 52 tile of K = 64 a third of its time: 349 -> 446 GFLOP/s). */
    if (nx) {
        __m512 hi = nx > 2 ? xacc[1] : xacc[0];
        const __m512i idx = _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 24, 16, 8, 0);
        for (int i = 0; i < m; i++) {
            __m512 v = _mm512_permutex2var_ps(xacc[0], _mm512_add_epi32(idx, _mm512_set1_epi32(i)), hi);
            dt_gemm_row_out(&v, 1, c + i * ldc + nv * 16, nx, first, beta, bias ? bias[i] : 0.0f, NULL, NULL);
        }
    }
}

#define DT_BF16_BODY(MRV)                                                                            \
    do {                                                                                             \
        if (nv == 3)                                                                                 \
            dt_gemm_bf16_body(MRV, 3, kc2, a, b, c, ldc, m, n, first, beta, bias, epi, res, 0, NULL, NULL, true); \
        else if (nv == 2)                                                                            \
            dt_gemm_bf16_body(MRV, 2, kc2, a, b, c, ldc, m, n, first, beta, bias, epi, res, 0, NULL, NULL, true); \
        else                                                                                         \
            dt_gemm_bf16_body(MRV, 1, kc2, a, b, c, ldc, m, n, first, beta, bias, epi, res, 0, NULL, NULL, true); \
    } while (0)

/* The 8-row tiles, a function of their own: inlined beside the 4-, 2- and 1-row bodies, GCC 12
 * kept two of the 24 accumulators on the stack across the k loop (a store and a reload per k
 * pair, in the dot products' dependency chain): 414 GF/s in cache; alone, 574 (Zen 5, 1
 * thread, bench/bench_kernels.c; the vdpbf16ps peak measures ~554). resnet50 --bf16 b1 1
 * thread 20.5 -> 17.6 ms. The x kernel's bodies below are each one function for the same
 * reason (nx = 2-4 spilled: 400-410 -> 493-552 GF/s). */
static __attribute__((noinline)) DT_BF16 void
dt_gemm_bf16_tile8(int64_t kc2, const uint16_t *a, const uint16_t *b, int nv, float *c, int64_t ldc, int m, int n,
                   bool first, float beta, const float *bias, const dt_epilogue *epi, const float *res)
{
    DT_BF16_BODY(8);
}

DT_BF16 void dt_gemm_kernel_bf16_avx512(int64_t kc2, const uint16_t *a, const uint16_t *b, int nv, float *c,
                                        int64_t ldc, int m, int n, bool first, float beta, const float *bias,
                                        const dt_epilogue *epi, const float *res)
{
    if (m > 4)
        dt_gemm_bf16_tile8(kc2, a, b, nv, c, ldc, m, n, first, beta, bias, epi, res);
    else if (m > 2)
        DT_BF16_BODY(4);
    else if (m == 2)
        DT_BF16_BODY(2);
    else
        DT_BF16_BODY(1);
}

DT_BF16 void dt_gemm_kernel_bf16_next_avx512(int64_t kc2, const uint16_t *a, const uint16_t *a_next, const uint16_t *b,
                                             int nv, float *c, int64_t ldc, int m, int n, bool first, float beta,
                                             const float *bias, const dt_epilogue *epi, const float *res)
{
    if (nv == 3)
        dt_gemm_bf16_body(8, 3, kc2, a, b, c, ldc, m, n, first, beta, bias, epi, res, 0, NULL, a_next, true);
    else if (nv == 2)
        dt_gemm_bf16_body(8, 2, kc2, a, b, c, ldc, m, n, first, beta, bias, epi, res, 0, NULL, a_next, true);
    else
        dt_gemm_bf16_body(8, 1, kc2, a, b, c, ldc, m, n, first, beta, bias, epi, res, 0, NULL, a_next, true);
}

dt_gemm_kernel_bf16_next_fn dt_gemm_kernel_bf16_next_select(void)
{
    return dt_cpu_has_bf16() ? dt_gemm_kernel_bf16_next_avx512 : NULL;
}

#define DT_BF16_X(NX)                                                                                                \
    static __attribute__((noinline)) DT_BF16 void dt_gemm_bf16_x##NX(                                                \
        int64_t kc2, const uint16_t *a, const uint16_t *a_next, const uint16_t *b, float *c, int64_t ldc, int m,     \
        bool first, float beta, const float *bias, const dt_epilogue *epi, const float *res, const uint16_t *xb)    \
    {                                                                                                                \
        dt_gemm_bf16_body(8, 3, kc2, a, b, c, ldc, m, 48, first, beta, bias, epi, res, NX, xb, a_next, true);     \
    }
DT_BF16_X(1)
DT_BF16_X(2)
DT_BF16_X(3)
DT_BF16_X(4)

DT_BF16 void dt_gemm_kernel_bf16_x_avx512(int64_t kc2, const uint16_t *a, const uint16_t *a_next, const uint16_t *b,
                                          float *c, int64_t ldc, int m, bool first, float beta, const float *bias,
                                          const dt_epilogue *epi, const float *res, const uint16_t *xb, int nx)
{
    switch (nx) {
    case 1: dt_gemm_bf16_x1(kc2, a, a_next, b, c, ldc, m, first, beta, bias, epi, res, xb); break;
    case 2: dt_gemm_bf16_x2(kc2, a, a_next, b, c, ldc, m, first, beta, bias, epi, res, xb); break;
    case 3: dt_gemm_bf16_x3(kc2, a, a_next, b, c, ldc, m, first, beta, bias, epi, res, xb); break;
    default: dt_gemm_bf16_x4(kc2, a, a_next, b, c, ldc, m, first, beta, bias, epi, res, xb); break;
    }
}

dt_gemm_kernel_bf16_x_fn dt_gemm_kernel_bf16_x_select(void)
{
    return dt_cpu_has_bf16() ? dt_gemm_kernel_bf16_x_avx512 : NULL;
}

/* As dt_gemm_narrow_body (gemm_kernel.c) on k pairs: one ymm accumulator of 8 rows per
 * column and A panel; per k pair one 256-bit load of a panel's 8 row pairs and one broadcast
 * of each column's pair. */
static inline __attribute__((always_inline)) DT_BF16 void
dt_gemm_bf16_narrow_body(const int P, const int nc, int64_t kc2, const uint16_t *a, int64_t lda, const uint16_t *b,
                         int64_t ldb, float *c, int64_t ldc, int m, bool first, float beta, const float *bias)
{
    __m256 acc[8][DT_GEMM_NARROW];
#pragma GCC unroll 8
    for (int p = 0; p < P; p++)
#pragma GCC unroll 4
        for (int j = 0; j < nc; j++) acc[p][j] = _mm256_setzero_ps();
    for (int64_t k = 0; k < kc2; k++) {
        __m256bh bk[DT_GEMM_NARROW];
        /* each column's pair broadcast from B itself (a copy of the 12 bytes of 3 columns to
         * the stack first, then a broadcast of each, ran at half the speed of 2 or 4 columns) */
#pragma GCC unroll 4
        for (int j = 0; j < nc; j++) {
            int32_t w;
            memcpy(&w, b + k * ldb + 2 * j, sizeof w);
            bk[j] = (__m256bh)_mm256_set1_epi32(w);
        }
#pragma GCC unroll 8
        for (int p = 0; p < P; p++) {
            __m256bh ak = (__m256bh)_mm256_loadu_si256((const __m256i *)(const void *)(a + p * lda + k * 16));
#pragma GCC unroll 4
            for (int j = 0; j < nc; j++) acc[p][j] = _mm256_dpbf16_ps(acc[p][j], ak, bk[j]);
        }
    }
#pragma GCC unroll 8
    for (int p = 0; p < P; p++) {
        int mp = m - p * 8 < 8 ? m - p * 8 : 8;
        float *cp = c + p * 8 * ldc;
        float tmp[8];
        for (int j = 0; j < nc; j++) {
            _mm256_storeu_ps(tmp, acc[p][j]);
            for (int i = 0; i < mp; i++) {
                float r = tmp[i], *ci = cp + i * ldc + j;
                if (first) {
                    r = r + (bias ? bias[p * 8 + i] : 0.0f);
                    if (beta != 0.0f) r = beta * *ci + r;
                } else {
                    r = r + *ci;
                }
                *ci = r;
            }
        }
    }
}

static inline __attribute__((always_inline)) DT_BF16 void
dt_gemm_bf16_narrow_cols(const int nc, int64_t kc2, const uint16_t *a, int64_t lda, const uint16_t *b, int64_t ldb,
                         float *c, int64_t ldc, int m, bool first, float beta, const float *bias)
{
    const int big = nc <= 3 ? 8 : 4;
    int p = 0, panels = (m + 7) / 8;
    for (; p + big <= panels; p += big)
        dt_gemm_bf16_narrow_body(big, nc, kc2, a + p * lda, lda, b, ldb, c + p * 8 * ldc, ldc, m - p * 8, first, beta,
                                 bias ? bias + p * 8 : NULL);
    for (; p + 2 <= panels; p += 2)
        dt_gemm_bf16_narrow_body(2, nc, kc2, a + p * lda, lda, b, ldb, c + p * 8 * ldc, ldc, m - p * 8, first, beta,
                                 bias ? bias + p * 8 : NULL);
    if (p < panels)
        dt_gemm_bf16_narrow_body(1, nc, kc2, a + p * lda, lda, b, ldb, c + p * 8 * ldc, ldc, m - p * 8, first, beta,
                                 bias ? bias + p * 8 : NULL);
}

/* Each column count a function of its own, as the tiles above (together, 3 columns spilled:
 * 133 -> 250 GFLOP/s in cache, 256 rows of K = 256). */
#define DT_BF16_NARROW(NC)                                                                                     \
    static __attribute__((noinline)) DT_BF16 void dt_gemm_bf16_narrow##NC(                                     \
        int64_t kc2, const uint16_t *a, int64_t lda, const uint16_t *b, int64_t ldb, float *c, int64_t ldc,    \
        int m, bool first, float beta, const float *bias)                                                      \
    {                                                                                                          \
        dt_gemm_bf16_narrow_cols(NC, kc2, a, lda, b, ldb, c, ldc, m, first, beta, bias);                      \
    }
DT_BF16_NARROW(1)
DT_BF16_NARROW(2)
DT_BF16_NARROW(3)
DT_BF16_NARROW(4)

DT_BF16 void dt_gemm_kernel_bf16_narrow_avx512(int64_t kc2, const uint16_t *a, int64_t lda, const uint16_t *b,
                                               int64_t ldb, float *c, int64_t ldc, int m, int n, bool first,
                                               float beta, const float *bias)
{
    switch (n) {
    case 1: dt_gemm_bf16_narrow1(kc2, a, lda, b, ldb, c, ldc, m, first, beta, bias); break;
    case 2: dt_gemm_bf16_narrow2(kc2, a, lda, b, ldb, c, ldc, m, first, beta, bias); break;
    case 3: dt_gemm_bf16_narrow3(kc2, a, lda, b, ldb, c, ldc, m, first, beta, bias); break;
    default: dt_gemm_bf16_narrow4(kc2, a, lda, b, ldb, c, ldc, m, first, beta, bias); break;
    }
}

dt_gemm_kernel_bf16_narrow_fn dt_gemm_kernel_bf16_narrow_select(void)
{
    return dt_cpu_has_bf16() ? dt_gemm_kernel_bf16_narrow_avx512 : NULL;
}

dt_gemm_kernel_bf16_fn dt_gemm_kernel_bf16_select(void)
{
    return dt_cpu_has_bf16() ? dt_gemm_kernel_bf16_avx512 : dt_gemm_kernel_bf16_ref;
}
