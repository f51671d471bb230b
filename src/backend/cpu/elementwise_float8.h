/* Private to the CPU elementwise kernels: the 8-, 4- and 2-bit types, one byte per element
 * (see ductile.h), converted to and from double with ONNX's Cast rules (elementwise_float8.c). */
#ifndef DT_ELEMENTWISE_FLOAT8_H
#define DT_ELEMENTWISE_FLOAT8_H

#include <stdbool.h>
#include <stdint.h>

/* How float8e8m0 rounds (Cast's round_mode). */
enum { DT_E8M0_UP = 0, DT_E8M0_DOWN = 1, DT_E8M0_NEAREST = 2 };

/* float8e4m3fn, float8e4m3fnuz, float8e5m2, float8e5m2fnuz, float4e2m1, float8e8m0. */
bool dt_lowp_is_float(int dtype);
/* uint4, int4, uint2, int2. */
bool dt_lowp_is_int(int dtype);

/* The value of byte b of a low-precision float type; exact. */
double dt_lowp_to_f64(int dtype, uint8_t b);
/* v (first rounded to float32) rounded to nearest even in a float8 or float4e2m1 type. Out of range and infinite values
 * become the largest finite value of their sign when saturate is set (float4e2m1 always
 * saturates); otherwise NaN, or infinity in float8e5m2. For float8e8m0, see dt_f32_to_e8m0. */
uint8_t dt_f64_to_lowp(int dtype, double v, bool saturate, int e8m0_round);
/* float -> float8e8m0 exactly as onnx.numpy_helper.to_float8e8m0: the sign is dropped, NaN and
 * infinity become 0xff, and saturate keeps rounding from passing 2^127. */
uint8_t dt_f32_to_e8m0(float v, bool saturate, int round_mode);

/* The integer held in byte b of a 4-bit or 2-bit integer type (only its low bits count). */
int64_t dt_lowp_int_load(int dtype, uint8_t b);
/* v wrapped to a 4-bit or 2-bit integer type (its low bits, as numpy's ml_dtypes does). */
uint8_t dt_lowp_int_store(int dtype, int64_t v);

#endif
