/* MaxPool and AveragePool (channels first) along an output row, 16 outputs per vector: the
 * windows that lie inside the input along x, x stride 1 or 2, x dilation 1 (resnet50's 3x3
 * stride-2 MaxPool, mobile nets' 2x2 and 3x3 pools). The scalar loop in nn_pool.c takes the
 * border windows and everything else.
 *
 * Bits: each lane does the scalar loop's float operations in its order (taps row by row, then
 * along x; max as `v > acc ? v : acc`, which is MAXPS(v, acc) for NaN, equal values and signed
 * zeros alike; a sum from 0 divided by the count), so results do not depend on which path or
 * how many threads ran. */
#include "backend/cpu/nn_pool.h"

#include <immintrin.h>
#include <math.h>

bool dt_pool_row_avx512_ok(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}

__attribute__((target("avx512f"))) void dt_pool_row_avx512(const float *const *rows, int nrows, int64_t kx,
                                                            int64_t sx, int64_t px, bool is_max, float count,
                                                            int64_t ox0, int64_t ox1, float *y)
{
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    for (int64_t ox = ox0; ox < ox1; ox += 16) {
        int64_t n = ox1 - ox < 16 ? ox1 - ox : 16;
        __mmask16 mo = n == 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1), m0 = mo, m1 = 0;
        if (sx == 2) {
            /* lanes read p[0], p[2] .. p[2n-2]: 2n-1 floats, nothing past the last tap */
            int64_t in = 2 * n - 1;
            m0 = in >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << in) - 1);
            m1 = in >= 32 ? (__mmask16)0xffff : in > 16 ? (__mmask16)((1u << (in - 16)) - 1) : 0;
        }
        __m512 acc = is_max ? _mm512_set1_ps(-INFINITY) : _mm512_setzero_ps();
        for (int r = 0; r < nrows; r++) {
            const float *p = rows[r] + ox * sx - px;
            for (int64_t tx = 0; tx < kx; tx++) {
                __m512 v = sx == 1 ? _mm512_maskz_loadu_ps(m0, p + tx)
                                   : _mm512_permutex2var_ps(_mm512_maskz_loadu_ps(m0, p + tx), even,
                                                            _mm512_maskz_loadu_ps(m1, p + tx + 16));
                acc = is_max ? _mm512_max_ps(v, acc) : _mm512_add_ps(acc, v);
            }
        }
        if (!is_max) acc = _mm512_div_ps(acc, _mm512_set1_ps(count));
        _mm512_mask_storeu_ps(y + ox, mo, acc);
    }
}
