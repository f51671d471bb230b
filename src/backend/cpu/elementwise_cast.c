/* Cast between the numeric types and bool. Each block of elements is widened to double (float
 * sources) or int64 (integer and bool sources) and narrowed to the target, so n types need 2n
 * loops instead of n^2, and each loop still has no per-element dispatch. The 8-, 4- and 2-bit
 * types (one byte each) go through the same two loops; their conversions are in
 * elementwise_float8.c. */
/* The build's -O2 vectorizes only loops whose trip count and aliasing are known; these
 * loops need the full vectorizer to run at memory speed. */
#pragma GCC optimize("O3", "no-trapping-math")

#include "backend/cpu/elementwise_impl.h"
#include "backend/cpu/elementwise_float8.h"
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
           t == DUCTILE_BFLOAT16 || dt_lowp_is_float(t);
}

/* Cast's attributes that shape a conversion to float8 (saturate) and float8e8m0 (round_mode). */
typedef struct {
    bool saturate;
    int round_mode;
} dt_cast_opts;

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
    case DUCTILE_FLOAT8E4M3FN: case DUCTILE_FLOAT8E4M3FNUZ: case DUCTILE_FLOAT8E5M2:
    case DUCTILE_FLOAT8E5M2FNUZ: case DUCTILE_FLOAT4E2M1: case DUCTILE_FLOAT8E8M0: {
        const uint8_t *s = (const uint8_t *)src + off;
        for (int i = 0; i < n; i++) w[i] = dt_lowp_to_f64(t, s[i]);
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
    case DUCTILE_UINT4: case DUCTILE_INT4: case DUCTILE_UINT2: case DUCTILE_INT2: {
        const uint8_t *s = (const uint8_t *)src + off;
        for (int i = 0; i < n; i++) w[i] = dt_lowp_int_load(t, s[i]);
        break;
    }
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
static void dt_store_from_f(int t, void *dst, int64_t off, int n, const double *w,
                            const dt_cast_opts *o)
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
    /* Float to 4-bit and 2-bit integers truncates and wraps, as ml_dtypes' astype does (onnx's
     * reference and test data use it). */
    case DUCTILE_UINT4: case DUCTILE_INT4: case DUCTILE_UINT2: case DUCTILE_INT2:
        DT_STORE(uint8_t, dt_lowp_int_store(t, dt_f2i32(w[i])))
    case DUCTILE_FLOAT8E4M3FN: case DUCTILE_FLOAT8E4M3FNUZ: case DUCTILE_FLOAT8E5M2:
    case DUCTILE_FLOAT8E5M2FNUZ: case DUCTILE_FLOAT4E2M1: case DUCTILE_FLOAT8E8M0:
        DT_STORE(uint8_t, dt_f64_to_lowp(t, w[i], o->saturate, o->round_mode))
    default: DT_STORE(bool, w[i] != 0.0) /* NaN is true, as in onnxruntime */
    }
}

/* Integers narrow by wrapping (two's complement), as numpy and onnxruntime do. */
static void dt_store_from_i(int t, void *dst, int64_t off, int n, const int64_t *w, bool from_u64,
                            const dt_cast_opts *o)
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
    case DUCTILE_UINT4: case DUCTILE_INT4: case DUCTILE_UINT2: case DUCTILE_INT2:
        DT_STORE(uint8_t, dt_lowp_int_store(t, w[i]))
    case DUCTILE_FLOAT8E4M3FN: case DUCTILE_FLOAT8E4M3FNUZ: case DUCTILE_FLOAT8E5M2:
    case DUCTILE_FLOAT8E5M2FNUZ: case DUCTILE_FLOAT4E2M1: case DUCTILE_FLOAT8E8M0:
        if (from_u64) DT_STORE(uint8_t, dt_f64_to_lowp(t, (double)(uint64_t)w[i], o->saturate, o->round_mode))
        DT_STORE(uint8_t, dt_f64_to_lowp(t, (double)w[i], o->saturate, o->round_mode))
    default: DT_STORE(bool, w[i] != 0)
    }
}

typedef struct {
    int from, to;
    const void *x;
    void *y;
    dt_cast_opts opts;
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
            dt_store_from_f(j->to, j->y, off, n, wf, &j->opts);
        } else {
            dt_load_i(j->from, j->x, off, n, wi);
            dt_store_from_i(j->to, j->y, off, n, wi, j->from == DUCTILE_UINT64, &j->opts);
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
        return dt_lowp_is_float(t) || dt_lowp_is_int(t);
    }
}

static ductile_status dt_cast_view_opts(const dt_view *src, dt_view *dst, dt_exec *ex, dt_cast_opts opts)
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
    dt_cast_job j = {from, to, src->data, dst->data, opts};
    dt_ew_parallel(ex, n, dt_cast_range, &j);
    return DUCTILE_OK;
}

ductile_status dt_ew_cast_view(const dt_view *src, dt_view *dst, dt_exec *ex)
{
    return dt_cast_view_opts(src, dst, ex, (dt_cast_opts){true, DT_E8M0_UP});
}

/* BitCast: the bytes unchanged (infer checked that the bit widths match). The 4-bit and 2-bit
 * types keep only their low bits, so int4 -1 held as 0xff reads as uint4 15. */
static ductile_status dt_bitcast(const dt_view *src, dt_view *dst)
{
    int64_t n = dt_view_count(dst);
    size_t es = ductile_dtype_size((ductile_dtype)dst->dtype);
    if (es == 0 || es != ductile_dtype_size((ductile_dtype)src->dtype))
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "BitCast from %s to %s is not supported",
                       ductile_dtype_name((ductile_dtype)src->dtype), ductile_dtype_name((ductile_dtype)dst->dtype));
    if (n) memcpy(dst->data, src->data, (size_t)n * es);
    if (dt_lowp_is_int(dst->dtype) || dst->dtype == DUCTILE_FLOAT4E2M1) {
        uint8_t mask = dst->dtype == DUCTILE_UINT2 || dst->dtype == DUCTILE_INT2 ? 0x3 : 0xf, *d = dst->data;
        for (int64_t i = 0; i < n; i++) d[i] &= mask;
    }
    return DUCTILE_OK;
}

/* Cast, CastLike (whose target dtype infer took from input 1) and BitCast, compiled: the
 * op and the options read once. */
typedef struct dt_cast_params {
    bool bitcast;
    dt_cast_opts o;
} dt_cast_params;

static void dt_cast_read(const ductile_layer *L, dt_cast_params *p)
{
    p->bitcast = L && strcmp(L->op_type, "BitCast") == 0;
    p->o = (dt_cast_opts){true, DT_E8M0_UP};
    if (L) {
        p->o.saturate = dt_attr_int(L, "saturate", 1) != 0;
        const char *rm = dt_attr_string(L, "round_mode", "up");
        p->o.round_mode = strcmp(rm, "down") == 0 ? DT_E8M0_DOWN : strcmp(rm, "nearest") == 0 ? DT_E8M0_NEAREST
                                                                                             : DT_E8M0_UP;
    }
}

static ductile_status dt_cast_exec(const dt_cast_params *p, const dt_view *in, dt_view *out, dt_exec *ex)
{
    if (p->bitcast) return dt_bitcast(&in[0], &out[0]);
    return dt_cast_view_opts(&in[0], &out[0], ex, p->o);
}

static ductile_status dt_cast_prepare(const ductile_layer *L, void **out)
{
    dt_cast_params p;
    dt_cast_read(L, &p);
    return dt_cpu_params_copy(&p, sizeof p, L, out);
}

static ductile_status dt_cast_run(const void *params, const dt_view *in, dt_view *out, dt_exec *ex)
{
    return dt_cast_exec(params, in, out, ex);
}

const dt_kernel dt_cpu_ew_cast_kernel = {.prepare = dt_cast_prepare, .run = dt_cast_run};
