/* GEMM micro-kernels for CPUs with AVX2 and FMA but no AVX-512 (AMD Zen 2 / Zen 3, Intel
 * Haswell to Comet Lake): the dt_gemm_kernel_fn and dt_gemm_kernel_rows_fn contracts of
 * gemm.h on the same packed layouts. x86-64 has 16 ymm registers, so the 8 x (nv*16) tile the
 * layout asks for is computed as sub-tiles of at most 4 rows x 24 columns: 12 accumulators,
 * 3 B vectors and a broadcast A value per k (12 FMAs to 7 loads: the two FMA ports set the
 * pace). Each output is the AVX-512 kernel's FMA chain over k, then + bias, then beta * C by
 * FMA (or + C on a later K block): the same bits as dt_gemm_kernel_avx512, so an engine's
 * float32 results do not depend on which of the two ran. Session 45 measured the plain C
 * kernel (gemm_kernel.c, SSE2 only) at a fifth of onnxruntime's speed on a Zen 3 host. */
#include "backend/cpu/gemm.h"

#include <immintrin.h>
#include <stdint.h>

#define DT_AVX2 __attribute__((target("avx2,fma")))

/* Lanes [0, n) of a vector (n < 8). */
static inline __attribute__((always_inline)) DT_AVX2 __m256i dt_avx2_mask(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* acc into columns [0, n) of one row of C: the store of gemm_row.h's dt_gemm_row_out without
 * the epilogue. */
static inline __attribute__((always_inline)) DT_AVX2 void
dt_avx2_row_out(const __m256 *acc, const int V, float *c, int n, bool first, float beta, float bias)
{
#pragma GCC unroll 3
    for (int v = 0; v < V; v++) {
        int rem = n - v * 8;
        if (rem <= 0) return;
        float *cv = c + v * 8;
        __m256i k = dt_avx2_mask(rem >= 8 ? 8 : rem);
        __m256 r = acc[v];
        if (first) {
            r = _mm256_add_ps(r, _mm256_set1_ps(bias));
            if (beta != 0.0f)
                r = _mm256_fmadd_ps(_mm256_set1_ps(beta), rem >= 8 ? _mm256_loadu_ps(cv) : _mm256_maskload_ps(cv, k), r);
        } else {
            r = _mm256_add_ps(r, rem >= 8 ? _mm256_loadu_ps(cv) : _mm256_maskload_ps(cv, k));
        }
        if (rem >= 8)
            _mm256_storeu_ps(cv, r);
        else
            _mm256_maskstore_ps(cv, k, r);
    }
}

/* R rows (1-4) x V vectors (1-3) of the tile: row i's value at k is a[k * ks + i * is] (packed
 * A: ks 8, is 1; A in place: ks 1, is lda); b the tile's first column, rows ldb apart; c, m
 * (rows to store, <= R), n (columns to store, may pass 8 V) and bias likewise offset. */
static inline __attribute__((always_inline)) DT_AVX2 void
dt_avx2_body(const int R, const int V, int64_t kc, const float *a, int64_t ks, int64_t is, const float *b,
             int64_t ldb, float *c, int64_t ldc, int m, int n, bool first, float beta, const float *bias,
             bool in_place)
{
    __m256 acc[4][3];
#pragma GCC unroll 4
    for (int i = 0; i < R; i++)
#pragma GCC unroll 3
        for (int v = 0; v < V; v++) acc[i][v] = _mm256_setzero_ps();
    for (int64_t k = 0; k < kc; k++) {
        __m256 bv[3];
        /* B's row 8 ahead. A B read in place (a 1x1 conv's image, rows ldb apart) is one
         * stream per k that the hardware prefetchers do not follow: every line of the row's
         * V vectors; a packed panel its next line, as the AVX-512 kernel does. */
        _mm_prefetch((const char *)(b + 8 * ldb), _MM_HINT_T0);
        if (in_place) _mm_prefetch((const char *)(b + 8 * ldb + V * 8 - 1), _MM_HINT_T0);
        if (in_place && V == 3) _mm_prefetch((const char *)(b + 8 * ldb + 12), _MM_HINT_T0);
#pragma GCC unroll 3
        for (int v = 0; v < V; v++) bv[v] = _mm256_loadu_ps(b + v * 8);
#pragma GCC unroll 4
        for (int i = 0; i < R; i++) {
            __m256 ai = _mm256_broadcast_ss(a + i * is);
#pragma GCC unroll 3
            for (int v = 0; v < V; v++) acc[i][v] = _mm256_fmadd_ps(ai, bv[v], acc[i][v]);
        }
        a += ks;
        b += ldb;
    }
#pragma GCC unroll 4
    for (int i = 0; i < R; i++) {
        if (i >= m) break;
        dt_avx2_row_out(acc[i], V, c + i * ldc, n, first, beta, bias ? bias[i] : 0.0f);
    }
}

/* Rows [0, m) of the tile, at most 4 at a time (exactly the rows that exist: an A read in
 * place has no row past m), in column groups of V vectors; each group's rows one after the
 * other, so the group's B (24 columns x kc: 24 KB at kc 256) can stay in L1 for the second
 * half of the rows, where the whole panel (48 KB) would not (Zen 3's L1 holds 32 KB). */
static inline __attribute__((always_inline)) DT_AVX2 void
dt_avx2_tile(int64_t kc, const float *a, int64_t ks, int64_t is, const float *b, int64_t ldb, int nv, float *c,
             int64_t ldc, int m, int n, bool first, float beta, const float *bias)
{
    /* 48 columns: two groups of 3 vectors; 32: two of 2; 16: one of 2 */
    const int gv = nv == 3 ? 3 : 2, groups = nv == 1 ? 1 : 2;
    const bool in_place = ldb != nv * 16;   /* B's rows in place, not a packed panel */
    for (int q = 0; q < groups; q++) {
        const int j0 = q * gv * 8;
        if (n <= j0) break;
        const float *bq = b + j0;
        for (int r0 = 0; r0 < m; r0 += 4) {
            const int rows = m - r0 < 4 ? m - r0 : 4;
            const float *ar = a + r0 * is, *br = bias ? bias + r0 : NULL;
            float *cq = c + r0 * ldc + j0;
#define DT_AVX2_CASE(R)                                                                                          \
    (gv == 3 ? dt_avx2_body(R, 3, kc, ar, ks, is, bq, ldb, cq, ldc, rows, n - j0, first, beta, br, in_place) \
             : dt_avx2_body(R, 2, kc, ar, ks, is, bq, ldb, cq, ldc, rows, n - j0, first, beta, br, in_place))
            switch (rows) {
            case 4: DT_AVX2_CASE(4); break;
            case 3: DT_AVX2_CASE(3); break;
            case 2: DT_AVX2_CASE(2); break;
            default: DT_AVX2_CASE(1); break;
            }
#undef DT_AVX2_CASE
        }
    }
}

DT_AVX2 void dt_gemm_kernel_avx2(int64_t kc, const float *a, const float *b, int64_t ldb, int nv, float *c,
                                 int64_t ldc, int m, int n, bool first, float beta, const float *bias)
{
    dt_avx2_tile(kc, a, DT_GEMM_MR, 1, b, ldb, nv, c, ldc, m, n, first, beta, bias);
}

DT_AVX2 void dt_gemm_kernel_rows_avx2(int64_t kc, const float *a, int64_t lda, const float *b, int64_t ldb,
                                      int nv, float *c, int64_t ldc, int m, int n, bool first, float beta,
                                      const float *bias)
{
    dt_avx2_tile(kc, a, 1, lda, b, ldb, nv, c, ldc, m, n, first, beta, bias);
}
