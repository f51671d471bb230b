/* Packing 8 rows of a plain (row-major) matrix transposed: dst[k * ldd + i] = alpha * A[i][k]
 * (a full 8-row panel of A: ldd 8; 8 keys of attention's K into a packed-B panel: ldd the
 * panel's width).
 * The plain loop stores one float at a time with a stride of 8 floats (a transpose the
 * vectorizer leaves scalar); at bert's shapes (M = 1024, K = 256 to 1024) it took 8% of the
 * run, as much as the epilogues. Here 8 x 8 blocks go through AVX registers: 8 row loads, the
 * multiply by alpha, a 24-shuffle transpose and 8 contiguous stores. Each element is the same
 * single float multiply as the plain loop's, so the packed panel is identical bit for bit. */
#include "backend/cpu/gemm.h"

#include <immintrin.h>

#define DT_AVX2 __attribute__((target("avx2")))

DT_AVX2 static void dt_gemm_pack_a8_avx2(const float *a, int64_t lda, int64_t kc, float alpha, float *dst, int64_t ldd)
{
    __m256 al = _mm256_set1_ps(alpha);
    int64_t k = 0;
    for (; k + 8 <= kc; k += 8) {
        __m256 r[8];
        for (int i = 0; i < 8; i++) r[i] = _mm256_mul_ps(al, _mm256_loadu_ps(a + i * lda + k));
        /* Pairs of rows interleaved, then quads, then the 128-bit halves exchanged:
         * c[j] = (r0[j], ..., r7[j]). */
        __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
        __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
        __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
        __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
        __m256 u0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
        __m256 u1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
        __m256 u2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
        __m256 u3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
        __m256 u4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
        __m256 u5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
        __m256 u6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
        __m256 u7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
        float *d = dst + k * ldd;
        _mm256_storeu_ps(d + 0 * ldd, _mm256_permute2f128_ps(u0, u4, 0x20));
        _mm256_storeu_ps(d + 1 * ldd, _mm256_permute2f128_ps(u1, u5, 0x20));
        _mm256_storeu_ps(d + 2 * ldd, _mm256_permute2f128_ps(u2, u6, 0x20));
        _mm256_storeu_ps(d + 3 * ldd, _mm256_permute2f128_ps(u3, u7, 0x20));
        _mm256_storeu_ps(d + 4 * ldd, _mm256_permute2f128_ps(u0, u4, 0x31));
        _mm256_storeu_ps(d + 5 * ldd, _mm256_permute2f128_ps(u1, u5, 0x31));
        _mm256_storeu_ps(d + 6 * ldd, _mm256_permute2f128_ps(u2, u6, 0x31));
        _mm256_storeu_ps(d + 7 * ldd, _mm256_permute2f128_ps(u3, u7, 0x31));
    }
    for (; k < kc; k++)
        for (int i = 0; i < 8; i++) dst[k * ldd + i] = alpha * a[i * lda + k];
}

dt_gemm_pack_a8_fn dt_gemm_pack_a8_select(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") ? dt_gemm_pack_a8_avx2 : NULL;
}
