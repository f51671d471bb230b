/* Private to the CPU quant kernels (quant*.c): reading and writing elements of the types the
 * quant ops take, and numpy's rounding of float16/bfloat16 arithmetic, which the reference
 * results depend on. */
#ifndef DT_CPU_QUANT_KERNELS_H
#define DT_CPU_QUANT_KERNELS_H

#include "backend/cpu/elementwise_impl.h"
#include "backend/cpu/elementwise_float8.h"

#include <math.h>
#include <stdint.h>

/* f rounded to dtype's precision when dtype is float16 or bfloat16 (numpy computes half
 * arithmetic in float32 and rounds each result). */
static inline float dt_q_round_to(int dtype, float f)
{
    if (dtype == DUCTILE_FLOAT16) return dt_half_to_float(dt_float_to_half(f));
    if (dtype == DUCTILE_BFLOAT16) return dt_bf16_to_float(dt_float_to_bf16(f));
    return f;
}

/* Stores v (already in the type's range) as element i of an integer view. */
static inline void dt_q_store_int(dt_view *v, int64_t i, int64_t x)
{
    switch (v->dtype) {
    case DUCTILE_UINT8: ((uint8_t *)v->data)[i] = (uint8_t)x; break;
    case DUCTILE_INT8: ((int8_t *)v->data)[i] = (int8_t)x; break;
    case DUCTILE_UINT16: ((uint16_t *)v->data)[i] = (uint16_t)x; break;
    case DUCTILE_INT16: ((int16_t *)v->data)[i] = (int16_t)x; break;
    case DUCTILE_UINT4: case DUCTILE_INT4: case DUCTILE_UINT2: case DUCTILE_INT2:
        ((uint8_t *)v->data)[i] = dt_lowp_int_store(v->dtype, x); break;
    default: ((int32_t *)v->data)[i] = (int32_t)x; break;
    }
}

/* Stores a real value as element i of a float view (float32, float16, bfloat16, float64). */
static inline void dt_q_store_float(dt_view *v, int64_t i, double x)
{
    switch (v->dtype) {
    case DUCTILE_FLOAT64: ((double *)v->data)[i] = x; break;
    case DUCTILE_FLOAT16: ((uint16_t *)v->data)[i] = dt_float_to_half((float)x); break;
    case DUCTILE_BFLOAT16: ((uint16_t *)v->data)[i] = dt_float_to_bf16((float)x); break;
    default: ((float *)v->data)[i] = (float)x; break;
    }
}

/* Element i of an int8/uint8 view, as int32. */
static inline int32_t dt_q_get_i8(const dt_view *v, int64_t i)
{
    return v->dtype == DUCTILE_INT8 ? ((const int8_t *)v->data)[i] : ((const uint8_t *)v->data)[i];
}

/* Requantizes an int32 accumulator: rint(acc * mult + zp) clamped to [lo, hi] (numpy computes
 * int32 * float in float64). */
static inline int64_t dt_q_requant(int32_t acc, double mult, int64_t zp, int64_t lo, int64_t hi)
{
    double v = nearbyint((double)acc * mult + (double)zp);
    return v < (double)lo ? lo : v > (double)hi ? hi : (int64_t)v;
}

/* The kernels, compiled (backend.h): quant_linear.c, quant_integer.c. */
extern const dt_kernel dt_cpu_quantize_linear_kernel;
extern const dt_kernel dt_cpu_dequantize_linear_kernel;
extern const dt_kernel dt_cpu_dynamic_quantize_linear_kernel;
extern const dt_kernel dt_cpu_matmul_integer_kernel;
extern const dt_kernel dt_cpu_qlinear_matmul_kernel;
extern const dt_kernel dt_cpu_conv_integer_kernel;
extern const dt_kernel dt_cpu_qlinear_conv_kernel;

#endif
