/* Ops whose output is made from shapes or scalars: Shape, Size, ConstantOfShape, Range. */
#include "ops/shape.h"
#include "core/status.h"

#include <math.h>

void dt_shape_bounds(const ductile_layer *L, int r, int *start, int *end)
{
    dt_shape_bounds_of(dt_attr_int(L, "start", 0), dt_attr_int(L, "end", INT64_MAX), r, start, end);
}

void dt_shape_bounds_of(int64_t s, int64_t e, int r, int *start, int *end)
{
    if (s < 0) s += r;
    if (e < 0) e += r;
    s = s < 0 ? 0 : s > r ? r : s;
    e = e < 0 ? 0 : e > r ? r : e;
    *start = (int)s;
    *end = (int)(e < s ? s : e);
}

ductile_status dt_shape_check_shape(const ductile_layer *L) { return dt_check_arity(L, 1, 1, 1, 1, NULL); }

ductile_status dt_shape_infer_shape(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    int s, e;
    dt_shape_bounds(L, in[0].rank, &s, &e);
    out[0].dtype = DUCTILE_INT64;
    out[0].rank = 1;
    out[0].dims[0] = e - s;
    return DUCTILE_OK;
}

ductile_status dt_shape_check_size(const ductile_layer *L) { return dt_check_arity(L, 1, 1, 1, 1, NULL); }

ductile_status dt_shape_infer_size(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    out[0].dtype = DUCTILE_INT64;
    out[0].rank = 0;
    return DUCTILE_OK;
}

ductile_status dt_shape_check_constant_of_shape(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 1, 1, 1, 1, NULL));
    const dt_attr *a = dt_attr_find(L, "value");
    if (!a) return DUCTILE_OK;
    if (a->type != DT_ATTR_TENSOR || !a->t)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'value' must be a tensor");
    if (ductile_dtype_size((ductile_dtype)a->t->dtype) == 0)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "attribute 'value' has dtype %s, which is not supported",
                       ductile_dtype_name((ductile_dtype)a->t->dtype));
    if (dt_tensor_count(a->t) != 1 || !a->t->data)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                       "attribute 'value' must hold exactly one element, it has %lld",
                       (long long)dt_tensor_count(a->t));
    return DUCTILE_OK;
}

ductile_status dt_shape_infer_constant_of_shape(const ductile_layer *L, const dt_view *in,
                                                dt_view *out)
{
    int64_t v[DT_MAX_DIMS];
    int n;
    DT_TRY(dt_shape_read_ints(L, in, 0, v, DT_MAX_DIMS, &n));
    for (int i = 0; i < n; i++)
        if (v[i] < 0) {
            char s[200];
            return dt_fail(DUCTILE_ERR_SHAPE,
                           "input 0 ('%s') = %s has the negative dim %lld at position %d",
                           dt_shape_name(L, 0), dt_shape_format_values(s, sizeof s, v, n),
                           (long long)v[i], i);
        }
    const dt_attr *a = dt_attr_find(L, "value");
    out[0].dtype = a && a->t ? a->t->dtype : DUCTILE_FLOAT32;
    out[0].rank = n;
    for (int i = 0; i < n; i++) out[0].dims[i] = v[i];
    return DUCTILE_OK;
}

/* IEEE half and bfloat16 bits to float (exact). */
static float dt_range_half(uint16_t h, bool bf16)
{
    union { uint32_t u; float f; } c;
    if (bf16) {
        c.u = (uint32_t)h << 16;
        return c.f;
    }
    uint32_t sign = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    if (e == 0) {
        float f = ldexpf((float)m, -24);   /* zero and subnormals */
        return sign ? -f : f;
    }
    c.u = sign | (e == 31 ? 0x7f800000u | (m << 13) : ((e + 112) << 23) | (m << 13));
    return c.f;
}

double dt_range_f(const dt_view *v)
{
    switch (v->dtype) {
    case DUCTILE_FLOAT16: return dt_range_half(*(const uint16_t *)v->data, false);
    case DUCTILE_BFLOAT16: return dt_range_half(*(const uint16_t *)v->data, true);
    case DUCTILE_FLOAT32: return *(const float *)v->data;
    case DUCTILE_FLOAT64: return *(const double *)v->data;
    default: return (double)dt_range_i(v);
    }
}

int64_t dt_range_i(const dt_view *v)
{
    switch (v->dtype) {
    case DUCTILE_INT16: return *(const int16_t *)v->data;
    case DUCTILE_INT32: return *(const int32_t *)v->data;
    case DUCTILE_INT64: return *(const int64_t *)v->data;
    default: return (int64_t)dt_range_f(v);
    }
}

static const char *const dt_range_names[3] = {"start", "limit", "delta"};

ductile_status dt_shape_check_range(const ductile_layer *L)
{
    return dt_check_arity(L, 3, 3, 1, 1, dt_range_names);
}

ductile_status dt_shape_infer_range(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    int t = in[0].dtype;
    bool is_float = t == DUCTILE_FLOAT32 || t == DUCTILE_FLOAT64 || t == DUCTILE_FLOAT16 ||
                    t == DUCTILE_BFLOAT16;
    if (!is_float && t != DUCTILE_INT16 && t != DUCTILE_INT32 && t != DUCTILE_INT64)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                       "input 0 (start, '%s') has dtype %s; supported: float32, float64, float16, "
                       "bfloat16, int16, int32, int64", dt_shape_name(L, 0),
                       ductile_dtype_name((ductile_dtype)t));
    for (int i = 0; i < 3; i++) {
        if (in[i].dtype != t)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                           "input %d (%s, '%s') has dtype %s but input 0 (start) has %s", i,
                           dt_range_names[i], dt_shape_name(L, i),
                           ductile_dtype_name((ductile_dtype)in[i].dtype),
                           ductile_dtype_name((ductile_dtype)t));
        if (dt_view_count(&in[i]) != 1 || in[i].rank > 1) {
            char s[160];
            dt_format_dims(s, sizeof s, in[i].dims, in[i].rank, NULL);
            return dt_fail(DUCTILE_ERR_SHAPE, "input %d (%s, '%s') has shape %s; expected a scalar",
                           i, dt_range_names[i], dt_shape_name(L, i), s);
        }
    }
    for (int i = 0; i < 3; i++) DT_TRY(dt_shape_need_value(L, in, i));
    int64_t n;
    if (is_float) {
        /* float16 and bfloat16 run in float64, as the reference's np.arange does. */
        double start = dt_range_f(&in[0]), limit = dt_range_f(&in[1]), delta = dt_range_f(&in[2]);
        /* The difference is taken in the input's precision, as onnxruntime does, so lengths
         * agree with it at the edges. */
        double diff = t == DUCTILE_FLOAT32 ? (double)((float)limit - (float)start) : limit - start;
        double c = ceil(diff / delta);
        if (delta == 0 || !isfinite(c) || c > 9.0e18)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                           "Range(start=%g, limit=%g, delta=%g) has no finite length", start,
                           limit, delta);
        n = c > 0 ? (int64_t)c : 0;
    } else {
        int64_t start = dt_range_i(&in[0]), limit = dt_range_i(&in[1]), delta = dt_range_i(&in[2]);
        int64_t diff;
        if (delta == 0)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "input 2 (delta, '%s') is 0",
                           dt_shape_name(L, 2));
        if (__builtin_sub_overflow(limit, start, &diff) || (diff == INT64_MIN && delta == -1))
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                           "Range(start=%lld, limit=%lld): limit - start overflows int64",
                           (long long)start, (long long)limit);
        if (diff == 0 || (diff > 0) != (delta > 0)) n = 0;
        else n = diff / delta + (diff % delta != 0);
    }
    out[0].dtype = t;
    out[0].rank = 1;
    out[0].dims[0] = n;
    return DUCTILE_OK;
}
