/* Dtype plumbing shared by the elementwise kernels: reading any numeric element, converting a
 * view to another dtype, and running a float32 kernel on float16/bfloat16 tensors. The half
 * types have no arithmetic in C, so they are widened to float32 (exact), computed there and
 * rounded back to nearest even: one rounding per result, as onnxruntime's CPU kernels do. */
#include "backend/cpu/elementwise_impl.h"
#include "core/alloc.h"
#include "backend/cpu/elementwise_float8.h"
#include "backend/cpu/widen.h"
#include "core/status.h"

#include <stdlib.h>
#include <string.h>

float dt_bf16_to_float(uint16_t h)
{
    uint32_t x = (uint32_t)h << 16;
    float f;
    memcpy(&f, &x, sizeof f);
    return f;
}

uint16_t dt_float_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40); /* quiet NaN */
    x += 0x7fffu + ((x >> 16) & 1);                                          /* nearest even */
    return (uint16_t)(x >> 16);
}

bool dt_ew_is_half(int dtype)
{
    return dtype == DUCTILE_FLOAT16 || dtype == DUCTILE_BFLOAT16;
}

bool dt_ew_is_float(int dtype)
{
    return dtype == DUCTILE_FLOAT32 || dtype == DUCTILE_FLOAT64 || dt_ew_is_half(dtype);
}

bool dt_ew_is_int(int dtype)
{
    switch (dtype) {
    case DUCTILE_INT8: case DUCTILE_INT16: case DUCTILE_INT32: case DUCTILE_INT64:
    case DUCTILE_UINT8: case DUCTILE_UINT16: case DUCTILE_UINT32: case DUCTILE_UINT64:
        return true;
    default:
        return false;
    }
}

int64_t dt_ew_get_i64(const dt_view *v, int64_t i)
{
    const void *p = v->data;
    switch (v->dtype) {
    case DUCTILE_INT8: return ((const int8_t *)p)[i];
    case DUCTILE_INT16: return ((const int16_t *)p)[i];
    case DUCTILE_INT32: return ((const int32_t *)p)[i];
    case DUCTILE_INT64: return ((const int64_t *)p)[i];
    case DUCTILE_UINT8: return ((const uint8_t *)p)[i];
    case DUCTILE_UINT16: return ((const uint16_t *)p)[i];
    case DUCTILE_UINT32: return ((const uint32_t *)p)[i];
    case DUCTILE_UINT64: return (int64_t)((const uint64_t *)p)[i];
    case DUCTILE_BOOL: return ((const uint8_t *)p)[i] != 0;
    case DUCTILE_UINT4: case DUCTILE_INT4: case DUCTILE_UINT2: case DUCTILE_INT2:
        return dt_lowp_int_load(v->dtype, ((const uint8_t *)p)[i]);
    default: {
        if (!dt_ew_is_float(v->dtype) && !dt_lowp_is_float(v->dtype)) return 0;   /* no such type */
        double d = dt_ew_get_f64(v, i);
        return d >= -9223372036854775808.0 && d < 9223372036854775808.0 ? (int64_t)d : INT64_MIN;
    }
    }
}

double dt_ew_get_f64(const dt_view *v, int64_t i)
{
    const void *p = v->data;
    switch (v->dtype) {
    case DUCTILE_FLOAT32: return ((const float *)p)[i];
    case DUCTILE_FLOAT64: return ((const double *)p)[i];
    case DUCTILE_FLOAT16: return dt_half_to_float(((const uint16_t *)p)[i]);
    case DUCTILE_BFLOAT16: return dt_bf16_to_float(((const uint16_t *)p)[i]);
    case DUCTILE_UINT64: return (double)((const uint64_t *)p)[i];
    case DUCTILE_FLOAT8E4M3FN: case DUCTILE_FLOAT8E4M3FNUZ: case DUCTILE_FLOAT8E5M2:
    case DUCTILE_FLOAT8E5M2FNUZ: case DUCTILE_FLOAT4E2M1: case DUCTILE_FLOAT8E8M0:
        return dt_lowp_to_f64(v->dtype, ((const uint8_t *)p)[i]);
    default: return (double)dt_ew_get_i64(v, i);
    }
}

ductile_status dt_ew_convert(const dt_view *src, int dtype, dt_view *dst, void *buf, dt_exec *ex)
{
    *dst = *src;
    dst->dtype = dtype;
    dst->data = buf;
    if (dt_view_count(src) == 0) return DUCTILE_OK;
    return dt_ew_cast_view(src, dst, ex);
}

bool dt_ew_needs_f32(const ductile_layer *L, const dt_view *in, const dt_view *out)
{
    for (int i = 0; i < L->n_in; i++)
        if (in[i].rank >= 0 && in[i].data && dt_ew_is_half(in[i].dtype)) return true;
    for (int i = 0; i < L->n_out; i++)
        if (dt_ew_is_half(out[i].dtype)) return true;
    return false;
}

ductile_status dt_ew_via_f32(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex,
                             dt_kernel_fn fn)
{
    return dt_cpu_widen(L, in, out, ex, UINT32_MAX, dt_ew_is_half, fn);
}

ductile_status dt_ew_via_f32_run(const ductile_layer *L, const void *params, dt_kernel_run_fn run,
                                 const dt_view *in, dt_view *out, dt_exec *ex)
{
    return dt_cpu_widen_run(L, params, run, in, out, ex, UINT32_MAX, dt_ew_is_half);
}

ductile_status dt_ew_via_f32_scratch(const ductile_layer *L, const dt_view *in, const dt_view *out, size_t *bytes)
{
    return dt_cpu_widen_scratch(L, in, out, UINT32_MAX, dt_ew_is_half, bytes);
}
