/* e^x as a polynomial the vectorizer turns into SIMD code (a few ulp; Sigmoid, Tanh and Erf
 * built on it stay within 3 ulp, see elementwise_unary.c): the exponentials of Sigmoid, Tanh, Erf
 * and Softmax, where libm's scalar expf costs 5-10 ns an element. The Exp op keeps libm. */
#ifndef DT_CPU_EXP_APPROX_H
#define DT_CPU_EXP_APPROX_H

#include <immintrin.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* The polynomials' coefficients, highest degree first: e^r on [-ln2/2, ln2/2]; erf(x) / x in
 * x^2 for |x| < 0.921875; log(erfc(b)) for b in [0.921875, 4] (the Erf op's). Gelu's own two
 * (dt_gelu_approx): log(erfc(b)) on all of [0, 4] (degree 10, 1.8e-7 from it in double) and
 * e^r / 2 on [-ln2/2, ln2/2] (degree 5, 2.2e-7 relative); fitted on Chebyshev nodes for this
 * file. Also read by the GEMM kernel's lane-wise Gelu (gemm_row.h), which must give
 * dt_gelu_approx's bits. */
#define DT_EXP_POLY_N 8
#define DT_EXP_POLY {1.98412698e-4f, 1.38888889e-3f, 8.33333333e-3f, 4.16666667e-2f, 1.66666667e-1f, 0.5f, 1.0f, 1.0f}
/* The sigmoid's e^r (dt_sigmoid_approx, dt_sigmoid_vecs): degree 6, fitted for relative error
 * (Lawson's reweighted least squares, 1.9e-9 in double, 1.7e-8 with the float coefficients),
 * one fused step fewer than DT_EXP_POLY's Taylor terms for the same sigmoid: 2.45 ulp at most
 * from 1 / (1 + exp(-x)) in double for both, SiLU 2.67 (every 64th float of [-88, 88] and all
 * of |x| < 1e-3). EfficientNet and YOLO evaluate one per activation of almost every conv: the
 * 16-lane form went 0.245 -> 0.227 ns a value (this Zen 4, four vectors at a time, in L1). */
#define DT_SIG_EXP_POLY_N 7
#define DT_SIG_EXP_POLY                                                                                          \
    {1.383682829e-03f, 8.374814875e-03f, 4.166822508e-02f, 1.666641980e-01f, 4.999999106e-01f, 1.000000000e+00f, \
     1.000000000e+00f}
#define DT_ERF_SMALL_POLY_N 9
#define DT_ERF_SMALL_POLY                                                                                        \
    {1.135858170e-06f, -1.417643338e-05f, 1.199418542e-04f, -8.545392544e-04f, 5.223894961e-03f,                \
     -2.686615768e-02f, 1.128379157e-01f, -3.761263890e-01f, 1.128379167e+00f}
#define DT_ERFC_LOG_POLY_N 11
#define DT_ERFC_LOG_POLY                                                                                         \
    {-5.145243064e-08f, 1.226307281e-06f, -1.122068767e-05f, 3.196410875e-05f, 2.936291109e-04f,                \
     -3.971806958e-03f, 2.503526851e-02f, -1.084502228e-01f, -6.330528755e-01f, -1.129699386e+00f,            \
     2.179623732e-04f}
#define DT_GELU_LOG_ERFC_POLY_N 11
#define DT_GELU_LOG_ERFC_POLY                                                                                    \
    {-3.400320736e-07f, 7.792098586e-06f, -7.637167437e-05f, 4.022970970e-04f, -1.038477523e-03f,               \
     -8.100588457e-04f, 2.002672479e-02f, -1.032201797e-01f, -6.365066767e-01f, -1.128390312e+00f,             \
     1.799729716e-07f}
#define DT_GELU_HALF_EXP_POLY_N 6
#define DT_GELU_HALF_EXP_POLY                                                                                    \
    {4.187685438e-03f, 2.095949091e-02f, 8.333206177e-02f, 2.499942780e-01f, 5.000000000e-01f, 5.000000596e-01f}
/* Gelu's e^q = 2^n e^r: n = round(q log2 e) by adding and subtracting 1.5 * 2^23, and ln 2 in
 * two parts (Cody and Waite) so that r = q - n ln2 is exact to float precision. */
#define DT_LOG2E 1.44269504f
#define DT_ROUND_MAGIC 12582912.0f
#define DT_LN2_HI 0.693145752f
#define DT_LN2_LO 1.42860677e-6f

/* One Horner step p * x + c: two roundings, or (fma) one fused multiply-add. The fused form is
 * Gelu's (dt_gelu_approx below) and Softmax's exp (nn_softmax.c), in functions whose every
 * clone has FMA or calls libm's exact fmaf: the same bits on every path, in half the
 * instructions of the chain. Erf, Sigmoid and Tanh keep the two-rounding form and their
 * values. */
static inline __attribute__((always_inline)) float dt_poly_step(float p, float x, float c, const bool fma)
{
    return fma ? __builtin_fmaf(p, x, c) : p * x + c;
}

/* Horner's rule over c[0..n) (highest degree first). Unrolled whole: a loop left rolled
 * would stay a scalar loop inside the vectorized callers. */
static inline __attribute__((always_inline)) float dt_poly_eval(const float *c, int n, float x, const bool fma)
{
    float p = c[0];
#pragma GCC unroll 16
    for (int i = 1; i < n; i++) p = dt_poly_step(p, x, c[i], fma);
    return p;
}

static inline __attribute__((always_inline)) float dt_exp_approx_f(float x, const bool fma)
{
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    /* x = n ln2 + r with |r| <= ln2 / 2; adding and subtracting 1.5 * 2^23 rounds to nearest. */
    float n = (x * DT_LOG2E + DT_ROUND_MAGIC) - DT_ROUND_MAGIC;
    float r = x - n * DT_LN2_HI;
    r = r - n * DT_LN2_LO;
    static const float c[DT_EXP_POLY_N] = DT_EXP_POLY;
    float p = dt_poly_eval(c, DT_EXP_POLY_N, r, fma);
    /* A NaN x passes the clamps; converting NaN to int is undefined, and p is NaN already. */
    n = n == n ? n : 0.0f;
    int32_t bits = ((int32_t)n + 127) << 23; /* 2^n; n is in [-126, 127] after the clamp */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

static inline __attribute__((always_inline)) float dt_exp_approx(float x) { return dt_exp_approx_f(x, false); }

/* dt_exp_approx_f(x, true) on 16 lanes, operation for operation (max and min return their
 * second operand on NaN, which keeps a NaN x as the C's selects do): the same bits. */
static inline __attribute__((always_inline)) __attribute__((target("avx512f,fma"))) __m512 dt_exp_v16(__m512 x)
{
    x = _mm512_max_ps(_mm512_set1_ps(-87.0f), x); /* x < -87 ? -87 : x */
    x = _mm512_min_ps(_mm512_set1_ps(88.0f), x);  /* x > 88 ? 88 : x */
    __m512 n = _mm512_sub_ps(_mm512_add_ps(_mm512_mul_ps(x, _mm512_set1_ps(DT_LOG2E)), _mm512_set1_ps(DT_ROUND_MAGIC)),
                             _mm512_set1_ps(DT_ROUND_MAGIC));
    __m512 r = _mm512_sub_ps(x, _mm512_mul_ps(n, _mm512_set1_ps(DT_LN2_HI)));
    r = _mm512_sub_ps(r, _mm512_mul_ps(n, _mm512_set1_ps(DT_LN2_LO)));
    static const float c[DT_EXP_POLY_N] = DT_EXP_POLY;
    __m512 p = _mm512_set1_ps(c[0]);
#pragma GCC unroll 8
    for (int i = 1; i < DT_EXP_POLY_N; i++) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c[i]));
    n = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(n, n, _CMP_ORD_Q), n); /* n == n ? n : 0 */
    __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvttps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(p, _mm512_castsi512_ps(bits));
}

/* The Sigmoid kernel's 1 / (1 + e^-x) (elementwise_unary.c), also the fused epilogues' Sigmoid
 * and Silu: dt_exp_approx's clamps and range reduction, its own polynomial (DT_SIG_EXP_POLY),
 * every step fused (one rounding, as Gelu's; libm's exact fmaf in a clone without FMA), so
 * that its 16-lane copy below is a third fewer instructions than the two-rounding form
 * (EfficientNet evaluates a sigmoid per activation of every conv). Within 2.5 ulp of
 * 1 / (1 + exp(-x)) in double. */
static inline __attribute__((always_inline)) float dt_sigmoid_approx(float x)
{
    float t = -x;
    t = t < -87.0f ? -87.0f : t;
    t = t > 88.0f ? 88.0f : t;
    float n = __builtin_fmaf(t, DT_LOG2E, DT_ROUND_MAGIC) - DT_ROUND_MAGIC;
    float r = __builtin_fmaf(n, -DT_LN2_HI, t);
    r = __builtin_fmaf(n, -DT_LN2_LO, r);
    static const float c[DT_SIG_EXP_POLY_N] = DT_SIG_EXP_POLY;
    float p = dt_poly_eval(c, DT_SIG_EXP_POLY_N, r, true);
    n = n == n ? n : 0.0f; /* a NaN x: p is NaN already; converting NaN to int is undefined */
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return 1.0f / (1.0f + p * scale);
}

/* dt_sigmoid_approx on R x 16 lanes, operation for operation (its bits), times v where silu
 * (x * sigmoid(x), the unfused Mul's product): max and min return their second operand on NaN
 * as the C's selects keep a NaN; p 2^n as vscalefps, exact as the multiply by 2^n is (one
 * rounding of the exact product), and a NaN's p NaN either way. Each step runs over the R
 * vectors before the next: the chain of one vector is ~70 cycles of latency, and a loop of one
 * vector at a time filled the scheduler with waiting steps (0.355 -> 0.307 ns a value at R = 4,
 * this Zen 4, L1-resident). R at most 4 (four vectors' temporaries fit the registers). */
static inline __attribute__((always_inline)) __attribute__((target("avx512f,fma"))) void
dt_sigmoid_vecs(__m512 *v, const int R, const bool silu)
{
    __m512 t[4], n[4], r[4], p[4];
    static const float c[DT_SIG_EXP_POLY_N] = DT_SIG_EXP_POLY;
#pragma GCC unroll 4
    for (int i = 0; i < R; i++) {
        t[i] = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(v[i]), _mm512_set1_epi32((int)0x80000000u)));
        t[i] = _mm512_max_ps(_mm512_set1_ps(-87.0f), t[i]);
        t[i] = _mm512_min_ps(_mm512_set1_ps(88.0f), t[i]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < R; i++)
        n[i] = _mm512_sub_ps(_mm512_fmadd_ps(t[i], _mm512_set1_ps(DT_LOG2E), _mm512_set1_ps(DT_ROUND_MAGIC)),
                             _mm512_set1_ps(DT_ROUND_MAGIC));
#pragma GCC unroll 4
    for (int i = 0; i < R; i++) r[i] = _mm512_fmadd_ps(n[i], _mm512_set1_ps(-DT_LN2_HI), t[i]);
#pragma GCC unroll 4
    for (int i = 0; i < R; i++) {
        r[i] = _mm512_fmadd_ps(n[i], _mm512_set1_ps(-DT_LN2_LO), r[i]);
        p[i] = _mm512_set1_ps(c[0]);
    }
#pragma GCC unroll 8
    for (int k = 1; k < DT_SIG_EXP_POLY_N; k++)
#pragma GCC unroll 4
        for (int i = 0; i < R; i++) p[i] = _mm512_fmadd_ps(p[i], r[i], _mm512_set1_ps(c[k]));
    __m512 one = _mm512_set1_ps(1.0f);
#pragma GCC unroll 4
    for (int i = 0; i < R; i++) {
        __m512 s = _mm512_div_ps(one, _mm512_add_ps(one, _mm512_scalef_ps(p[i], n[i])));
        v[i] = silu ? _mm512_mul_ps(v[i], s) : s;
    }
}

/* dt_sigmoid_vecs on R x 8 lanes for CPUs with AVX2 but no AVX-512 (epilogue.c): the same
 * operations, p 2^n as p times the float 2^n made from n's bits as dt_sigmoid_approx makes it
 * (n in [-126, 127] after the clamp, a NaN's n taken as 0: p is NaN then), one rounding as
 * vscalefps. Without it the x86-64-v3 clone of the scalar loop took 20% of EfficientNet-B0's
 * run on a Zen 3 (session 45). R at most 4. */
static inline __attribute__((always_inline)) __attribute__((target("avx2,fma"))) void
dt_sigmoid_vecs8(__m256 *v, const int R, const bool silu)
{
    __m256 t[4], n[4], r[4], p[4];
    static const float c[DT_SIG_EXP_POLY_N] = DT_SIG_EXP_POLY;
#pragma GCC unroll 4
    for (int i = 0; i < R; i++) {
        t[i] = _mm256_xor_ps(v[i], _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000u)));
        t[i] = _mm256_max_ps(_mm256_set1_ps(-87.0f), t[i]);
        t[i] = _mm256_min_ps(_mm256_set1_ps(88.0f), t[i]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < R; i++)
        n[i] = _mm256_sub_ps(_mm256_fmadd_ps(t[i], _mm256_set1_ps(DT_LOG2E), _mm256_set1_ps(DT_ROUND_MAGIC)),
                             _mm256_set1_ps(DT_ROUND_MAGIC));
#pragma GCC unroll 4
    for (int i = 0; i < R; i++) r[i] = _mm256_fmadd_ps(n[i], _mm256_set1_ps(-DT_LN2_HI), t[i]);
#pragma GCC unroll 4
    for (int i = 0; i < R; i++) {
        r[i] = _mm256_fmadd_ps(n[i], _mm256_set1_ps(-DT_LN2_LO), r[i]);
        p[i] = _mm256_set1_ps(c[0]);
    }
#pragma GCC unroll 8
    for (int k = 1; k < DT_SIG_EXP_POLY_N; k++)
#pragma GCC unroll 4
        for (int i = 0; i < R; i++) p[i] = _mm256_fmadd_ps(p[i], r[i], _mm256_set1_ps(c[k]));
    __m256 one = _mm256_set1_ps(1.0f);
#pragma GCC unroll 4
    for (int i = 0; i < R; i++) {
        __m256 nn = _mm256_and_ps(n[i], _mm256_cmp_ps(n[i], n[i], _CMP_ORD_Q));   /* NaN -> 0 */
        __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(nn), _mm256_set1_epi32(127)), 23);
        __m256 s = _mm256_div_ps(one, _mm256_add_ps(one, _mm256_mul_ps(p[i], _mm256_castsi256_ps(bits))));
        v[i] = silu ? _mm256_mul_ps(v[i], s) : s;
    }
}

/* 2^f for f in [0, 1), degree 3 (highest first), fitted for relative error (Lawson's
 * reweighted least squares on Chebyshev nodes: 7.5e-5 with the float coefficients, as the
 * [-1/2, 1/2] fit it replaced in session 42; 2^x's relative error depends on the interval's
 * length only). Degree 4 (2.7e-6) until session 38: one fused step more per value for an error
 * 50x below what bfloat16 keeps; degree 3 measured EfficientNet-B0 b8 --bf16 1 thread 58.19 ->
 * 57.11 and 60.80 -> 58.72 ms, yolo 640 --bf16 38.92 -> 37.64 (bench/ab_engine.py, one engine
 * file each, Zen 4). */
#define DT_SIG_LEAN_POLY_N 4
#define DT_SIG_LEAN_POLY {7.802452147e-02f, 2.260671556e-01f, 6.958335638e-01f, 9.999251962e-01f}

/* The lean sigmoid of layers that compute in bfloat16 or float16 (DT_ACT_SIGMOID_LEAN,
 * DT_ACT_SILU_LEAN, epilogue.h): 1 / (1 + 2^y), y = -x log2(e), as 2^floor(y) 2^f: f = y -
 * floor(y) in [0, 1) by one vreduceps (0 for an infinite y, NaN for a NaN), 2^f as
 * DT_SIG_LEAN_POLY, and 2^floor(y) by vscalefps (it scales by the floor of its second operand)
 * of y clamped to [-126, 126] by one vrangeps (the smaller magnitude, y's sign; NaN gives 126,
 * but f keeps the NaN), so that an infinite x gives 0 or 1, not NaN; the reciprocal as
 * vrcp14ps (relative error below 2^-14). Relative
 * error at most 1.3e-4 (test_ops_linalg sweeps every 64th float), 30x below bfloat16's rounding
 * (3.9e-3) of the values that the layer's products then read. 10 operations (12 until session
 * 42: min and max for the clamp, roundscale and a subtraction for f) to dt_sigmoid_vecs' 17
 * with a division. AVX512DQ, as every CPU with AVX512-BF16 or AVX512-FP16 has
 * (dt_epilogue_lean). R at most 4, each step over the R vectors before the next (as
 * dt_sigmoid_vecs). */
static inline __attribute__((always_inline)) __attribute__((target("avx512f,avx512dq,fma"))) void
dt_sigmoid_lean_vecs(__m512 *v, const int R, const bool silu)
{
    __m512 y[4], f[4], p[4];
    static const float c[DT_SIG_LEAN_POLY_N] = DT_SIG_LEAN_POLY;
#pragma GCC unroll 4
    for (int i = 0; i < R; i++) {
        f[i] = _mm512_mul_ps(v[i], _mm512_set1_ps(-DT_LOG2E));
        y[i] = _mm512_range_ps(f[i], _mm512_set1_ps(126.0f), 0x02);
        f[i] = _mm512_reduce_ps(f[i], _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
        p[i] = _mm512_fmadd_ps(_mm512_set1_ps(c[0]), f[i], _mm512_set1_ps(c[1]));
    }
#pragma GCC unroll 8
    for (int k = 2; k < DT_SIG_LEAN_POLY_N; k++)
#pragma GCC unroll 4
        for (int i = 0; i < R; i++) p[i] = _mm512_fmadd_ps(p[i], f[i], _mm512_set1_ps(c[k]));
#pragma GCC unroll 4
    for (int i = 0; i < R; i++) {
        __m512 s = _mm512_rcp14_ps(_mm512_add_ps(_mm512_scalef_ps(p[i], y[i]), _mm512_set1_ps(1.0f)));
        v[i] = silu ? _mm512_mul_ps(v[i], s) : s;
    }
}

/* One vector's sigmoid (dt_sigmoid_vecs of one). */
static inline __attribute__((always_inline)) __attribute__((target("avx512f,fma"))) __m512 dt_sigmoid_v16(__m512 x)
{
    dt_sigmoid_vecs(&x, 1, false);
    return x;
}

/* erf's two fits (the Erf op, elementwise_unary.c): erf(x) = x * P(x^2) for small |x|, and
 * Q(|x|) fitting log(erfc(|x|)) on [0.92, 4]. */
static inline __attribute__((always_inline)) float dt_erf_small_poly(float zz)
{
    static const float c[DT_ERF_SMALL_POLY_N] = DT_ERF_SMALL_POLY;
    return dt_poly_eval(c, DT_ERF_SMALL_POLY_N, zz, false);
}

static inline __attribute__((always_inline)) float dt_erfc_log_poly(float b)
{
    static const float c[DT_ERFC_LOG_POLY_N] = DT_ERFC_LOG_POLY;
    return dt_poly_eval(c, DT_ERFC_LOG_POLY_N, b, false);
}

/* Gelu's two polynomials by Estrin's scheme (pairs of terms, then pairs of pairs in b^2, then b^4):
 * the chain of dependent steps half as long as Horner's, which kept the core waiting (Gelu
 * 0.27 -> 0.21 ns an element, this Zen 5, session 19). F is one fused multiply-add, or its
 * 16-lane form in dt_gelu_v16 (gemm_row.h), which evaluates the same expressions. */
#define DT_GELU_LOG_ERFC_ESTRIN(T, b, F, MUL, C)                                                                   \
    T b2 = MUL(b, b), b4 = MUL(b2, b2);                                                                            \
    T p01 = F(C(1), b, C(0)), p23 = F(C(3), b, C(2)), p45 = F(C(5), b, C(4)), p67 = F(C(7), b, C(6)),              \
      p89 = F(C(9), b, C(8));                                                                                      \
    T q03 = F(p23, b2, p01), q47 = F(p67, b2, p45), q8a = F(C(10), b2, p89);                                       \
    T q = F(F(q8a, b4, q47), b4, q03);
#define DT_GELU_HALF_EXP_ESTRIN(T, r, F, MUL, C)                                                                   \
    T r2 = MUL(r, r);                                                                                              \
    T e01 = F(C(1), r, C(0)), e23 = F(C(3), r, C(2)), e45 = F(C(5), r, C(4));                                      \
    T p = F(F(e45, r2, e23), r2, e01);
#define DT_GELU_MUL(x, y) ((x) * (y))
#define DT_GELU_QC(i) qc[DT_GELU_LOG_ERFC_POLY_N - 1 - (i)]
#define DT_GELU_EC(i) ec[DT_GELU_HALF_EXP_POLY_N - 1 - (i)]

static inline __attribute__((always_inline)) float dt_gelu_log_erfc(float b)
{
    static const float qc[DT_GELU_LOG_ERFC_POLY_N] = DT_GELU_LOG_ERFC_POLY;
    DT_GELU_LOG_ERFC_ESTRIN(float, b, __builtin_fmaf, DT_GELU_MUL, DT_GELU_QC)
    return q;
}

static inline __attribute__((always_inline)) float dt_gelu_half_exp(float r)
{
    static const float ec[DT_GELU_HALF_EXP_POLY_N] = DT_GELU_HALF_EXP_POLY;
    DT_GELU_HALF_EXP_ESTRIN(float, r, __builtin_fmaf, DT_GELU_MUL, DT_GELU_EC)
    return p;
}

/* Gelu (approximate "none"), 0.5 x (1 + erf(x / sqrt 2)) = x Phi(x), in float: transformers
 * run it on their widest activations (the builder fuses the Div, Erf, Add, Mul, Mul that
 * exporters write into one Gelu, and that into FusedMatMul's epilogue: both call this, or its
 * lane-wise copy dt_gelu_v16, so the fused and the unfused layer agree bit for bit).
 * One branch for every x: h = erfc(|z|) / 2 (z = x / sqrt 2) as e^Q(b) / 2, Q fitting
 * log(erfc) on [0, 4], then Phi = h for x < 0 and 1 - h otherwise. Phi >= 1/2 on the right
 * and h itself on the left keep the relative error of h (5.4e-6 at worst, near x = -5.5,
 * where Q ~ -16.6 is held to float's 1.9e-6 steps), without the cancellation of 1 + erf.
 * Half the operations of erf's two fits (session 19: 0.53 -> 0.27 ns an element on this
 * Zen 5): FFN1's store in bert_small. Past |z| = 4, h is 0 (erfc(4) < 2^-25). */
static inline __attribute__((always_inline)) float dt_gelu_approx(float x)
{
    float z = x * 0.707106781f, a = fabsf(z);
    float b = a < 4.0f ? a : 4.0f;
    float q = dt_gelu_log_erfc(b);
    /* q in [-16.9, 2e-7]: n in [-25, 0], and 2^n below is a normal float */
    float n = __builtin_fmaf(q, DT_LOG2E, DT_ROUND_MAGIC) - DT_ROUND_MAGIC;
    float r = __builtin_fmaf(n, -DT_LN2_HI, q);
    r = __builtin_fmaf(n, -DT_LN2_LO, r);
    float p = dt_gelu_half_exp(r);
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    float h = p * scale;
    h = a < 4.0f ? h : 0.0f; /* also a NaN x: h = 0, Phi = 1, x Phi = NaN */
    return x * (z < 0.0f ? h : 1.0f - h);
}

#endif
