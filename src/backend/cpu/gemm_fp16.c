/* float16 GEMM pieces (gemm.h, "float16 products"): converting float32 B panels to float16
 * pairs at run time and the micro-kernel on vfmadd231ph (32 multiply-adds per instruction,
 * twice the float32 FMA's 16) over short K chunks whose float16 sums go into float32
 * accumulators, plus a plain C reference of each, which the tests hold the fast ones to.
 * The packers of A and B at build time are gemm_bf16.c's with float16 rounding. */
#include "backend/cpu/elementwise_impl.h"
#include "backend/cpu/gemm.h"
#include "backend/cpu/gemm_row.h"

#include <cpuid.h>
#include <float.h>
#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

bool dt_cpu_has_fp16(void)
{
    const char *v = getenv("DUCTILE_CPU_FP16");
    if (v && !strcmp(v, "0")) return false;
    /* cpuid leaf 7: EDX bit 23 (clang 14's __builtin_cpu_supports has no "avx512fp16");
     * avx512bw also says the OS saves the zmm state. */
    unsigned a, b, c, d;
    __builtin_cpu_init();
    return __get_cpuid_count(7, 0, &a, &b, &c, &d) && (d >> 23 & 1) && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl");
}

uint16_t dt_fp16_round(float f)
{
    return dt_float_to_half(f);
}

/* The power of two that brings maxabs into [32, 64), its inverse in *inv (1 for 0, inf, NaN). */
static float dt_fp16_scale(float maxabs, float *inv)
{
    *inv = 1.0f;
    if (!(maxabs > 0.0f) || maxabs > FLT_MAX) return 1.0f;
    int e;
    frexpf(maxabs, &e);              /* maxabs in [2^(e-1), 2^e) */
    int sh = 6 - e < -100 ? -100 : 6 - e > 100 ? 100 : 6 - e;
    *inv = ldexpf(1.0f, -sh);
    return ldexpf(1.0f, sh);
}

float dt_gemm_fp16_pack_ref(const float *src, int64_t lds, int64_t kc, int n, int ld, uint16_t *dst)
{
    float mx = 0.0f, inv;
    for (int64_t k = 0; k < kc; k++)
        for (int j = 0; j < n; j++) {
            float v = fabsf(src[k * lds + j]);
            mx = v != v || v > mx ? v : mx;   /* a NaN stays */
        }
    float sc = dt_fp16_scale(mx, &inv);
    for (int64_t k = 0; k < kc; k += 2, dst += 2 * ld)
        for (int j = 0; j < ld; j++)
            for (int h = 0; h < 2; h++)
                dst[2 * j + h] = j < n && k + h < kc ? dt_fp16_round(src[(k + h) * lds + j] * sc) : 0;
    return inv;
}

/* The float16 arithmetic is written as inline assembly on __m512i (32 halves), the rest with
 * AVX-512F/BW intrinsics: clang 14 has no AVX512-FP16 intrinsics (__m512h), and both gcc 12's
 * and clang 14's assemblers know the instructions. */
#define DT_FP16 __attribute__((target("avx512f,avx512bw,avx512vl,fma")))

/* c + a * b in float16, 32 lanes (vfmadd231ph) */
static inline __attribute__((always_inline)) DT_FP16 __m512i dt_fmadd_ph(__m512i a, __m512i b, __m512i c)
{
    __asm__("vfmadd231ph %2, %1, %0" : "+v"(c) : "v"(a), "v"(b));
    return c;
}

/* a + b in float16, 32 lanes (vaddph) */
static inline __attribute__((always_inline)) DT_FP16 __m512i dt_add_ph(__m512i a, __m512i b)
{
    __m512i r;
    __asm__("vaddph %2, %1, %0" : "=v"(r) : "v"(a), "v"(b));
    return r;
}

DT_FP16 float dt_gemm_fp16_pack_avx512(const float *src, int64_t lds, int64_t kc, int n, int ld, uint16_t *dst)
{
    /* Rows k and k+1 converted into 16 words each, then interleaved into pairs (words 0-15 of
     * the first operand and 32-47 of the second, vpermt2w's numbering). */
    static const uint16_t pairs[32] = {0, 32, 1, 33, 2, 34, 3, 35, 4, 36, 5, 37, 6, 38, 7, 39,
                                       8, 40, 9, 41, 10, 42, 11, 43, 12, 44, 13, 45, 14, 46, 15, 47};
    const __m512i idx = _mm512_loadu_si512(pairs);
    enum { RNE = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC };
    /* The largest |value| as integer bits (a NaN's are above inf's, as the reference keeps it). */
    __m512i mx = _mm512_setzero_si512();
    for (int64_t k = 0; k < kc; k++)
        for (int v = 0; v * 16 < n; v++) {
            int rem = n - v * 16;
            __mmask16 m = rem >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << rem) - 1);
            __m512i x = _mm512_and_si512(_mm512_maskz_loadu_epi32(m, src + k * lds + v * 16), _mm512_set1_epi32(0x7fffffff));
            mx = _mm512_max_epu32(mx, x);
        }
    uint32_t mb = _mm512_reduce_max_epu32(mx);
    float mf, inv;
    memcpy(&mf, &mb, sizeof mf);
    const __m512 sc = _mm512_set1_ps(dt_fp16_scale(mf, &inv));
    for (int64_t k = 0; k < kc; k += 2, dst += 2 * ld) {
        const float *r0 = src + k * lds, *r1 = r0 + lds;
        bool two = k + 1 < kc;
        for (int v = 0; v * 16 < ld; v++) {
            int rem = n - v * 16;
            __mmask16 m = rem >= 16 ? (__mmask16)0xffff : rem > 0 ? (__mmask16)((1u << rem) - 1) : 0;
            __m256i h0 = _mm512_cvtps_ph(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, r0 + v * 16), sc), RNE);
            __m256i h1 = two ? _mm512_cvtps_ph(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, r1 + v * 16), sc), RNE)
                             : _mm256_setzero_si256();
            /* one vpermt2w interleaves both halves (an insert and a vpermw were two port-5 uops) */
            __m512i h = _mm512_permutex2var_epi16(_mm512_castsi256_si512(h0), idx, _mm512_castsi256_si512(h1));
            if (ld - v * 16 >= 16)
                _mm512_storeu_si512(dst + v * 32, h);
            else   /* ld = 8 (an A panel): the first 16 of the 32 */
                _mm512_mask_storeu_epi16(dst + v * 32, (__mmask32)0xffff, h);
        }
    }
    return inv;
}

dt_gemm_fp16_pack_fn dt_gemm_fp16_pack_select(void)
{
    return dt_cpu_has_fp16() ? dt_gemm_fp16_pack_avx512 : dt_gemm_fp16_pack_ref;
}

static float dt_fp16_add(float s, float x)
{
    return dt_half_to_float(dt_float_to_half(s + x));
}

void dt_gemm_kernel_fp16_ref(int64_t kc2, const uint16_t *a, const uint16_t *b, int nv, float scale, float *c,
                             int64_t ldc, int m, int n, bool first, float beta, const float *bias,
                             const dt_epilogue *epi, const float *res)
{
    enum { MR = DT_GEMM_MR, NR = DT_GEMM_NR, CH = DT_GEMM_FP16_CHUNK };
    float acc[MR][NR], h[MR][2 * NR];
    int ld = nv * 16;
    memset(acc, 0, sizeof acc);
    for (int64_t k0 = 0; k0 < kc2; k0 += CH) {
        memset(h, 0, sizeof h);
        for (int64_t k = k0; k < kc2 && k < k0 + CH; k++)
            for (int i = 0; i < MR; i++)
                for (int j = 0; j < 2 * ld; j++)
                    h[i][j] = dt_fp16_add(h[i][j], dt_half_to_float(a[k * 2 * MR + 2 * i + (j & 1)]) *
                                                       dt_half_to_float(b[k * 2 * ld + j]));
        for (int i = 0; i < MR; i++)
            for (int j = 0; j < ld; j++) acc[i][j] += dt_fp16_add(h[i][2 * j], h[i][2 * j + 1]) * scale;
    }
    dt_gemm_ref_tile_out(acc, c, ldc, m, n, first, beta, bias, epi, res);
}

/* A chunk's float16 sums h (column j's even k in word 2j, odd k in 2j+1) added pairwise in
 * float16, the 16 sums converted and added into the float32 accumulator. */
static inline __attribute__((always_inline)) DT_FP16 __m512 dt_fp16_fold(__m512i h, __m512 scale, __m512 acc)
{
    __m512i s = dt_add_ph(h, _mm512_srli_epi32(h, 16));
    return _mm512_fmadd_ps(_mm512_cvtph_ps(_mm512_cvtepi32_epi16(s)), scale, acc);
}

/* Four rows of A (pairs at a32[k * MR + i]) times nv vectors of B over kc2 k pairs: per
 * pair, nv loads of 32 float16 of B, one broadcast of a row's pair of A per row, nv
 * float16 multiply-adds per row; every DT_GEMM_FP16_CHUNK pairs the float16 sums fold into
 * acc. 12 float16 + 12 float32 accumulators at nv 3: four rows, not eight, fit the 32
 * registers. */
static inline __attribute__((always_inline)) DT_FP16 void
dt_gemm_fp16_rows(const int nv, int64_t kc2, const int32_t *a32, const uint16_t *b, float scale, __m512 acc[4][3])
{
    enum { MR = DT_GEMM_MR, CH = DT_GEMM_FP16_CHUNK };
    const int ld2 = nv * 32;
    const __m512 sv = _mm512_set1_ps(scale);
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++)
#pragma GCC unroll 3
        for (int v = 0; v < nv; v++) acc[i][v] = _mm512_setzero_ps();
    for (int64_t k0 = 0; k0 < kc2; k0 += CH) {
        int64_t ke = k0 + CH < kc2 ? k0 + CH : kc2;
        __m512i h[4][3];
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++)
#pragma GCC unroll 3
            for (int v = 0; v < nv; v++) h[i][v] = _mm512_setzero_si512();
        for (int64_t k = k0; k < ke; k++) {
            __m512i bv[3];
#pragma GCC unroll 3
            for (int v = 0; v < nv; v++) bv[v] = _mm512_loadu_si512(b + k * ld2 + v * 32);
            _mm_prefetch((const char *)(b + (k + 4) * ld2), _MM_HINT_T0);
#pragma GCC unroll 4
            for (int i = 0; i < 4; i++) {
                __m512i ai = _mm512_set1_epi32(a32[k * MR + i]);
#pragma GCC unroll 3
                for (int v = 0; v < nv; v++) h[i][v] = dt_fmadd_ph(ai, bv[v], h[i][v]);
            }
        }
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++)
#pragma GCC unroll 3
            for (int v = 0; v < nv; v++) acc[i][v] = dt_fp16_fold(h[i][v], sv, acc[i][v]);
    }
}

static inline __attribute__((always_inline)) DT_FP16 void
dt_gemm_fp16_body(const int nv, int64_t kc2, const uint16_t *a, const uint16_t *b, float scale, float *c, int64_t ldc, int m, int n,
                  bool first, float beta, const float *bias, const dt_epilogue *epi, const float *res)
{
    const int32_t *a32 = (const int32_t *)(const void *)a;
    for (int i0 = 0; i0 < m; i0 += 4) {
        __m512 acc[4][3];
        dt_gemm_fp16_rows(nv, kc2, a32 + i0, b, scale, acc);
        for (int i = i0; i < m && i < i0 + 4; i++)
            dt_gemm_row_out(acc[i - i0], nv, c + i * ldc, n, first, beta, bias ? bias[i] : 0.0f, epi,
                            res ? res + i * ldc : NULL);
    }
}

DT_FP16 void dt_gemm_kernel_fp16_avx512(int64_t kc2, const uint16_t *a, const uint16_t *b, int nv, float scale,
                                        float *c, int64_t ldc, int m, int n, bool first, float beta,
                                        const float *bias, const dt_epilogue *epi, const float *res)
{
    if (nv == 3)
        dt_gemm_fp16_body(3, kc2, a, b, scale, c, ldc, m, n, first, beta, bias, epi, res);
    else if (nv == 2)
        dt_gemm_fp16_body(2, kc2, a, b, scale, c, ldc, m, n, first, beta, bias, epi, res);
    else
        dt_gemm_fp16_body(1, kc2, a, b, scale, c, ldc, m, n, first, beta, bias, epi, res);
}

dt_gemm_kernel_fp16_fn dt_gemm_kernel_fp16_select(void)
{
    return dt_cpu_has_fp16() ? dt_gemm_kernel_fp16_avx512 : dt_gemm_kernel_fp16_ref;
}
