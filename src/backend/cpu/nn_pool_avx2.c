/* MaxPool and AveragePool (channels first) along an output row, 8 outputs per vector, for
 * CPUs with AVX2 but no AVX-512: the interior windows (those inside the input along x) at x
 * stride 1 or 2, x dilation 1, as dt_pool_row_avx512 computes them; nn_pool.c's scalar loop
 * takes the border windows. Without it resnet50's 3x3 stride-2 MaxPool took 10 ms at batch 1
 * on a Zen 3 host (session 45), the scalar loop's per-window setup.
 *
 * Bits: each lane does the scalar loop's float operations in its order (taps row by row, then
 * along x; max as dt_max_keep_nan: MAXPS(v, acc) with a NaN v blended in; a sum from 0
 * divided by the count), as nn_pool_avx512.c's lanes do. */
#include "backend/cpu/nn_pool.h"

#include <immintrin.h>
#include <math.h>

#define DT_AVX2 __attribute__((target("avx2,fma")))

static inline __attribute__((always_inline)) DT_AVX2 __m256 dt_pool_vmax8(__m256 v, __m256 acc)
{
    return _mm256_blendv_ps(_mm256_max_ps(v, acc), v, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
}

/* Lanes [0, n) (n may pass 8 or be <= 0). */
static inline __attribute__((always_inline)) DT_AVX2 __m256i dt_pool_mask8(int64_t n)
{
    int c = n > 8 ? 8 : n < 0 ? 0 : (int)n;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(c), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* Lanes t: p[2t] for the 2n - 1 floats p[0 .. 2n-2] (n <= 8), nothing read past them. */
static inline __attribute__((always_inline)) DT_AVX2 __m256 dt_pool_even8(const float *p, int64_t n)
{
    int64_t in = 2 * n - 1;
    __m256 v0 = in >= 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, dt_pool_mask8(in));
    __m256 v1 = in >= 16 ? _mm256_loadu_ps(p + 8) : _mm256_maskload_ps(p + 8, dt_pool_mask8(in - 8));
    /* [v0_0 v0_2 v1_0 v1_2 | v0_4 v0_6 v1_4 v1_6], then the 64-bit pairs in order */
    __m256 e = _mm256_shuffle_ps(v0, v1, _MM_SHUFFLE(2, 0, 2, 0));
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), _MM_SHUFFLE(3, 1, 2, 0)));
}

DT_AVX2 void dt_pool_row_avx2(const float *const *rows, int nrows, int64_t kx, int64_t sx, int64_t px, bool is_max,
                              float count, int64_t ox0, int64_t ox1, float *y)
{
    for (int64_t ox = ox0; ox < ox1; ox += 8) {
        int64_t n = ox1 - ox < 8 ? ox1 - ox : 8;
        __m256i mo = dt_pool_mask8(n);
        __m256 acc = is_max ? _mm256_set1_ps(-INFINITY) : _mm256_setzero_ps();
        for (int r = 0; r < nrows; r++) {
            const float *p = rows[r] + ox * sx - px;
            for (int64_t tx = 0; tx < kx; tx++) {
                __m256 v = sx == 1 ? (n == 8 ? _mm256_loadu_ps(p + tx) : _mm256_maskload_ps(p + tx, mo))
                                   : dt_pool_even8(p + tx, n);
                acc = is_max ? dt_pool_vmax8(v, acc) : _mm256_add_ps(acc, v);
            }
        }
        if (!is_max) acc = _mm256_div_ps(acc, _mm256_set1_ps(count));
        if (n == 8)
            _mm256_storeu_ps(y + ox, acc);
        else
            _mm256_maskstore_ps(y + ox, mo, acc);
    }
}
