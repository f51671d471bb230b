/* Cast between the numeric types and bool. Each block of elements is widened to double (float
 * sources) or int64 (integer and bool sources) and narrowed to the target, so n types need 2n
 * loops instead of n^2, and each loop still has no per-element dispatch. */
/* The build's -O2 vectorizes only loops whose trip count and aliasing are known; these
 * loops need the full vectorizer to run at memory speed. */
#pragma GCC optimize("O3", "no-trapping-math")

#include "backend/cpu/elementwise_impl.h"
#include "core/status.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

#define DT_CAST_BLOCK 512

float dt_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff, x;
    if (e == 0) {
        float f = (float)m * (1.0f / 16777216.0f); /* subnormal: m * 2^-24, exact */
        memcpy(&x, &f, sizeof x);
        x |= sign;
    } else if (e == 31) {
        x = sign | 0x7f800000u | (m << 13);
    } else {
        x = sign | ((e + 112) << 23) | (m << 13);
    }
    float f;
    memcpy(&f, &x, sizeof f);
    return f;
}

uint16_t dt_float_to_half(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) return sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 : 0);
    if (ax >= 0x477ff000u) return sign | 0x7c00; /* 65520 and up round to infinity */
    if (ax < 0x38800000u) {                      /* below 2^-14: a subnormal half */
        float a;
        memcpy(&a, &ax, sizeof a);
        return sign | (uint16_t)nearbyintf(a * 16777216.0f);
    }
    uint32_t r = ax - 0x38000000u; /* rebias the exponent from 127 to 15 */
    r += 0xfffu + ((r >> 13) & 1); /* round the 13 dropped bits to nearest even */
    return sign | (uint16_t)(r >> 13);
}

static bool dt_is_float_type(int t)
{
    return t == DUCTILE_FLOAT32 || t == DUCTILE_FLOAT64 || t == DUCTILE_FLOAT16 ||
           t == DUCTILE_BFLOAT16;
}

static void dt_load_f(int t, const void *src, int64_t off, int n, double *w)
{
    switch (t) {
    case DUCTILE_FLOAT32: {
        const float *s = (const float *)src + off;
        for (int i = 0; i < n; i++) w[i] = s[i];
        break;
    }
    case DUCTILE_FLOAT64: memcpy(w, (const double *)src + off, (size_t)n * sizeof *w); break;
    case DUCTILE_BFLOAT16: {
        const uint16_t *s = (const uint16_t *)src + off;
        for (int i = 0; i < n; i++) w[i] = dt_bf16_to_float(s[i]);
        break;
    }
    default: {
        const uint16_t *s = (const uint16_t *)src + off;
        for (int i = 0; i < n; i++) w[i] = dt_half_to_float(s[i]);
        break;
    }
    }
}

#define DT_LOAD_I(T)                                                                        \
    {                                                                                       \
        const T *s = (const T *)src + off;                                                  \
        for (int i = 0; i < n; i++) w[i] = (int64_t)s[i];                                   \
        break;                                                                              \
    }
static void dt_load_i(int t, const void *src, int64_t off, int n, int64_t *w)
{
    switch (t) {
    case DUCTILE_INT8: DT_LOAD_I(int8_t)
    case DUCTILE_INT16: DT_LOAD_I(int16_t)
    case DUCTILE_INT32: DT_LOAD_I(int32_t)
    case DUCTILE_INT64: DT_LOAD_I(int64_t)
    case DUCTILE_UINT8: DT_LOAD_I(uint8_t)
    case DUCTILE_UINT16: DT_LOAD_I(uint16_t)
    case DUCTILE_UINT32: DT_LOAD_I(uint32_t)
    case DUCTILE_UINT64: DT_LOAD_I(uint64_t) /* bit pattern kept; see dt_store_from_i */
    default: {
        const uint8_t *s = (const uint8_t *)src + off;
        for (int i = 0; i < n; i++) w[i] = s[i] != 0;
        break;
    }
    }
}

/* Float to integer truncates toward zero. Values out of range (and NaN) have no defined
 * result in ONNX; these follow onnxruntime on x86 (int32's minimum, wrapped to narrower types;
 * int64's minimum for 64-bit types) and never invoke C's undefined conversion. */
static int64_t dt_f2i32(double v)
{
    return v > -2147483649.0 && v < 2147483648.0 ? (int64_t)v : INT32_MIN;
}
static int64_t dt_f2i64(double v)
{
    if (v >= -9223372036854775808.0 && v < 9223372036854775808.0) return (int64_t)v;
    if (v >= 0 && v < 18446744073709551616.0) return (int64_t)(uint64_t)v;
    return INT64_MIN;
}

#define DT_STORE(T, EXPR)                                                                   \
    {                                                                                       \
        T *d = (T *)dst + off;                                                              \
        for (int i = 0; i < n; i++) d[i] = (T)(EXPR);                                       \
        break;                                                                              \
    }
static void dt_store_from_f(int t, void *dst, int64_t off, int n, const double *w)
{
    switch (t) {
    case DUCTILE_FLOAT32: DT_STORE(float, w[i])
    case DUCTILE_FLOAT64: DT_STORE(double, w[i])
    case DUCTILE_FLOAT16: DT_STORE(uint16_t, dt_float_to_half((float)w[i]))
    case DUCTILE_BFLOAT16: DT_STORE(uint16_t, dt_float_to_bf16((float)w[i]))
    case DUCTILE_INT8: DT_STORE(int8_t, (uint8_t)dt_f2i32(w[i]))
    case DUCTILE_INT16: DT_STORE(int16_t, (uint16_t)dt_f2i32(w[i]))
    case DUCTILE_INT32: DT_STORE(int32_t, dt_f2i32(w[i]))
    case DUCTILE_UINT8: DT_STORE(uint8_t, dt_f2i32(w[i]))
    case DUCTILE_UINT16: DT_STORE(uint16_t, dt_f2i32(w[i]))
    case DUCTILE_UINT32: DT_STORE(uint32_t, dt_f2i64(w[i]))
    case DUCTILE_INT64: DT_STORE(int64_t, dt_f2i64(w[i]))
    case DUCTILE_UINT64: DT_STORE(uint64_t, dt_f2i64(w[i]))
    default: DT_STORE(bool, w[i] != 0.0) /* NaN is true, as in onnxruntime */
    }
}

/* Integers narrow by wrapping (two's complement), as numpy and onnxruntime do. */
static void dt_store_from_i(int t, void *dst, int64_t off, int n, const int64_t *w, bool from_u64)
{
    switch (t) {
    case DUCTILE_FLOAT32:
        if (from_u64) DT_STORE(float, (uint64_t)w[i])
        DT_STORE(float, w[i])
    case DUCTILE_FLOAT64:
        if (from_u64) DT_STORE(double, (uint64_t)w[i])
        DT_STORE(double, w[i])
    case DUCTILE_FLOAT16:
        if (from_u64) DT_STORE(uint16_t, dt_float_to_half((float)(uint64_t)w[i]))
        DT_STORE(uint16_t, dt_float_to_half((float)w[i]))
    case DUCTILE_BFLOAT16:
        if (from_u64) DT_STORE(uint16_t, dt_float_to_bf16((float)(uint64_t)w[i]))
        DT_STORE(uint16_t, dt_float_to_bf16((float)w[i]))
    case DUCTILE_INT8: DT_STORE(int8_t, (uint8_t)w[i])
    case DUCTILE_INT16: DT_STORE(int16_t, (uint16_t)w[i])
    case DUCTILE_INT32: DT_STORE(int32_t, (uint32_t)w[i])
    case DUCTILE_INT64: DT_STORE(int64_t, w[i])
    case DUCTILE_UINT8: DT_STORE(uint8_t, w[i])
    case DUCTILE_UINT16: DT_STORE(uint16_t, w[i])
    case DUCTILE_UINT32: DT_STORE(uint32_t, w[i])
    case DUCTILE_UINT64: DT_STORE(uint64_t, w[i])
    default: DT_STORE(bool, w[i] != 0)
    }
}

typedef struct {
    int from, to;
    const void *x;
    void *y;
} dt_cast_job;

static void dt_cast_range(void *arg, int64_t b, int64_t e, int tid)
{
    const dt_cast_job *j = arg;
    bool from_float = dt_is_float_type(j->from);
    double wf[DT_CAST_BLOCK];
    int64_t wi[DT_CAST_BLOCK];
    for (int64_t off = b; off < e; off += DT_CAST_BLOCK) {
        int n = (int)(e - off < DT_CAST_BLOCK ? e - off : DT_CAST_BLOCK);
        if (from_float) {
            dt_load_f(j->from, j->x, off, n, wf);
            dt_store_from_f(j->to, j->y, off, n, wf);
        } else {
            dt_load_i(j->from, j->x, off, n, wi);
            dt_store_from_i(j->to, j->y, off, n, wi, j->from == DUCTILE_UINT64);
        }
    }
}

static bool dt_cast_type_ok(int t)
{
    switch (t) {
    case DUCTILE_FLOAT32: case DUCTILE_FLOAT64: case DUCTILE_FLOAT16: case DUCTILE_INT8:
    case DUCTILE_INT16: case DUCTILE_INT32: case DUCTILE_INT64: case DUCTILE_UINT8:
    case DUCTILE_UINT16: case DUCTILE_UINT32: case DUCTILE_UINT64: case DUCTILE_BOOL:
    case DUCTILE_BFLOAT16:
        return true;
    default:
        return false;
    }
}

ductile_status dt_ew_cast_view(const dt_view *src, dt_view *dst, dt_exec *ex)
{
    int from = src->dtype, to = dst->dtype;
    if (!dt_cast_type_ok(from) || !dt_cast_type_ok(to))
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "Cast from %s to %s is not supported",
                       ductile_dtype_name((ductile_dtype)from), ductile_dtype_name((ductile_dtype)to));
    int64_t n = dt_view_count(dst);
    if (from == to && from != DUCTILE_BOOL) {
        memcpy(dst->data, src->data, (size_t)n * ductile_dtype_size((ductile_dtype)to));
        return DUCTILE_OK;
    }
    dt_cast_job j = {from, to, src->data, dst->data};
    dt_ew_parallel(ex, n, dt_cast_range, &j);
    return DUCTILE_OK;
}

/* Cast, and CastLike (whose target dtype infer took from input 1). */
ductile_status dt_cpu_ew_cast(const ductile_layer *L, const dt_view *in, dt_view *out, dt_exec *ex)
{
    (void)L;
    return dt_ew_cast_view(&in[0], &out[0], ex);
}
