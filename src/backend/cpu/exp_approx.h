/* e^x as a polynomial the vectorizer turns into SIMD code (a few ulp; Sigmoid, Tanh and Erf
 * built on it stay within 3 ulp, see elementwise_unary.c): the exponentials of Sigmoid, Tanh, Erf
 * and Softmax, where libm's scalar expf costs 5-10 ns an element. The Exp op keeps libm. */
#ifndef DT_CPU_EXP_APPROX_H
#define DT_CPU_EXP_APPROX_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* The polynomials' coefficients, highest degree first: e^r on [-ln2/2, ln2/2]; erf(x) / x in
 * x^2 for |x| < 0.921875; log(erfc(b)) for b in [0.921875, 4]. Also read by the GEMM kernel's
 * lane-wise Gelu (gemm_kernel.c), which must give these functions' bits. */
#define DT_EXP_POLY_N 8
#define DT_EXP_POLY {1.98412698e-4f, 1.38888889e-3f, 8.33333333e-3f, 4.16666667e-2f, 1.66666667e-1f, 0.5f, 1.0f, 1.0f}
#define DT_ERF_SMALL_POLY_N 9
#define DT_ERF_SMALL_POLY                                                                                        \
    {1.135858170e-06f, -1.417643338e-05f, 1.199418542e-04f, -8.545392544e-04f, 5.223894961e-03f,                \
     -2.686615768e-02f, 1.128379157e-01f, -3.761263890e-01f, 1.128379167e+00f}
#define DT_ERFC_LOG_POLY_N 11
#define DT_ERFC_LOG_POLY                                                                                         \
    {-5.145243064e-08f, 1.226307281e-06f, -1.122068767e-05f, 3.196410875e-05f, 2.936291109e-04f,                \
     -3.971806958e-03f, 2.503526851e-02f, -1.084502228e-01f, -6.330528755e-01f, -1.129699386e+00f,            \
     2.179623732e-04f}

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
    float n = (x * 1.44269504f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693145752f;
    r = r - n * 1.42860677e-6f;
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

/* erf's two fits, shared by Erf (elementwise_unary.c) and Gelu (Gelu with fused steps):
 * erf(x) = x * P(x^2) for small |x|, and Q(|x|) fitting log(erfc(|x|)) on [0.92, 4]. */
static inline __attribute__((always_inline)) float dt_erf_small_poly_f(float zz, const bool fma)
{
    static const float c[DT_ERF_SMALL_POLY_N] = DT_ERF_SMALL_POLY;
    return dt_poly_eval(c, DT_ERF_SMALL_POLY_N, zz, fma);
}

static inline __attribute__((always_inline)) float dt_erf_small_poly(float zz) { return dt_erf_small_poly_f(zz, false); }

static inline __attribute__((always_inline)) float dt_erfc_log_poly_f(float b, const bool fma)
{
    static const float c[DT_ERFC_LOG_POLY_N] = DT_ERFC_LOG_POLY;
    return dt_poly_eval(c, DT_ERFC_LOG_POLY_N, b, fma);
}

static inline __attribute__((always_inline)) float dt_erfc_log_poly(float b) { return dt_erfc_log_poly_f(b, false); }

/* Gelu (approximate "none"), 0.5 x (1 + erf(x / sqrt 2)), in float: transformers run it on
 * their widest activations (the builder fuses the Div, Erf, Add, Mul, Mul that exporters
 * write into one Gelu, and that into FusedMatMul's epilogue: both call this, so the fused
 * and the unfused layer agree bit for bit). Built from dt_erf_approx's pieces (elementwise_
 * unary.c), but where erf is near -1 the factor 1 + erf is taken as exp(Q) itself (Q fits log erfc), not as 1 - (1 - exp(Q)), so
 * the negative tail keeps the accuracy of exp(Q) instead of cancelling. */
static inline __attribute__((always_inline)) float dt_gelu_approx(float x)
{
    float z = x * 0.707106781f, a = fabsf(z), zz = z * z;
    float p = dt_erf_small_poly_f(zz, true);
    float small = 1.0f + z * p;
    float b = a < 4.0f ? a : 4.0f;
    float q = dt_erfc_log_poly_f(b, true);
    float t = dt_exp_approx_f(q, true);     /* erfc(|z|) */
    t = a >= 4.0f ? 0.0f : t;
    float big = z < 0.0f ? t : 2.0f - t;
    return 0.5f * x * (a < 0.921875f ? small : big);
}

#endif
