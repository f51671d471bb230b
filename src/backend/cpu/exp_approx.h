/* e^x as a polynomial the vectorizer turns into SIMD code (a few ulp; Sigmoid, Tanh and Erf
 * built on it stay within 3 ulp, see elementwise_unary.c): the exponentials of Sigmoid, Tanh, Erf
 * and Softmax, where libm's scalar expf costs 5-10 ns an element. The Exp op keeps libm. */
#ifndef DT_CPU_EXP_APPROX_H
#define DT_CPU_EXP_APPROX_H

#include <stdint.h>
#include <string.h>

static inline __attribute__((always_inline)) float dt_exp_approx(float x)
{
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    /* x = n ln2 + r with |r| <= ln2 / 2; adding and subtracting 1.5 * 2^23 rounds to nearest. */
    float n = (x * 1.44269504f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693145752f;
    r = r - n * 1.42860677e-6f;
    float p = 1.98412698e-4f;
    p = p * r + 1.38888889e-3f;
    p = p * r + 8.33333333e-3f;
    p = p * r + 4.16666667e-2f;
    p = p * r + 1.66666667e-1f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    /* A NaN x passes the clamps; converting NaN to int is undefined, and p is NaN already. */
    n = n == n ? n : 0.0f;
    int32_t bits = ((int32_t)n + 127) << 23; /* 2^n; n is in [-126, 127] after the clamp */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

#endif
