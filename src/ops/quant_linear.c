/* QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear: checks, the scale map and shapes. */
#include "ops/quant.h"
#include "core/status.h"

#include <string.h>

bool dt_quant_int_range(int dtype, int64_t *lo, int64_t *hi)
{
    switch (dtype) {
    case DUCTILE_UINT8: *lo = 0; *hi = 255; return true;
    case DUCTILE_INT8: *lo = -128; *hi = 127; return true;
    case DUCTILE_UINT16: *lo = 0; *hi = 65535; return true;
    case DUCTILE_INT16: *lo = -32768; *hi = 32767; return true;
    case DUCTILE_INT32: *lo = INT32_MIN; *hi = INT32_MAX; return true;
    case DUCTILE_UINT4: *lo = 0; *hi = 15; return true;
    case DUCTILE_INT4: *lo = -8; *hi = 7; return true;
    case DUCTILE_UINT2: *lo = 0; *hi = 3; return true;
    case DUCTILE_INT2: *lo = -2; *hi = 1; return true;
    default: return false;
    }
}

bool dt_quant_is_minifloat(int dtype)
{
    return dtype == DUCTILE_FLOAT8E4M3FN || dtype == DUCTILE_FLOAT8E4M3FNUZ || dtype == DUCTILE_FLOAT8E5M2 ||
           dtype == DUCTILE_FLOAT8E5M2FNUZ || dtype == DUCTILE_FLOAT4E2M1;
}

bool dt_quant_is_quantized(int dtype)
{
    int64_t lo, hi;
    return dt_quant_is_minifloat(dtype) || (dtype != DUCTILE_INT32 && dt_quant_int_range(dtype, &lo, &hi));
}

bool dt_quant_is_float(int dtype)
{
    return dtype == DUCTILE_FLOAT32 || dtype == DUCTILE_FLOAT16 || dtype == DUCTILE_BFLOAT16 ||
           dtype == DUCTILE_FLOAT64;
}

static const char *dt_q_name(int dtype)
{
    return ductile_dtype_name((ductile_dtype)dtype);
}

bool dt_quant_present(const ductile_layer *L, const dt_view *in, int i)
{
    return i < L->n_in && L->in[i] && in[i].rank >= 0;
}

ductile_status dt_quant_vec(const ductile_layer *L, const dt_view *in, int i, const char *what,
                            int64_t n, const char *nwhat, bool *per_channel)
{
    *per_channel = false;
    if (!dt_quant_present(L, in, i)) return DUCTILE_OK;
    const dt_view *v = &in[i];
    if (dt_view_count(v) == 1 && v->rank <= 1) return DUCTILE_OK;
    if (v->rank == 1 && v->dims[0] == n) {
        *per_channel = true;
        return DUCTILE_OK;
    }
    char sv[160];
    dt_format_dims(sv, sizeof sv, v->dims, v->rank, NULL);
    return dt_fail(DUCTILE_ERR_SHAPE, "input %d (%s) has shape %s; expected a scalar or [%lld] "
                   "(%s)", i, what, sv, (long long)n, nwhat);
}

void dt_qmap_attrs_read(const ductile_layer *L, dt_qmap_attrs *a)
{
    a->axis = dt_attr_int(L, "axis", 1);
    a->block = dt_attr_int(L, "block_size", 0);
}

ductile_status dt_qmap_get(const ductile_layer *L, const dt_view *in, dt_qmap *q)
{
    dt_qmap_attrs a;
    dt_qmap_attrs_read(L, &a);
    return dt_qmap_of(&a, L, in, q);
}

ductile_status dt_qmap_of(const dt_qmap_attrs *a, const ductile_layer *L, const dt_view *in, dt_qmap *q)
{
    const dt_view *x = &in[0], *s = &in[1];
    char sx[160], ss[160];
    dt_format_dims(sx, sizeof sx, x->dims, x->rank, NULL);
    dt_format_dims(ss, sizeof ss, s->dims, s->rank, NULL);
    memset(q, 0, sizeof *q);
    q->mode = DT_QUANT_TENSOR;
    q->outer = dt_view_count(x);
    q->n = q->inner = 1;
    int64_t block = a->block;
    if (block < 0)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'block_size' = %lld; expected >= 0",
                       (long long)block);
    int64_t ns = dt_view_count(s);
    if (block == 0 && ns == 1 && s->rank <= 1) {
        /* Per tensor: a scalar or a 1-element vector. */
    } else {
        int axis;
        ductile_status st = dt_norm_axis(a->axis, x->rank, &axis);
        if (st != DUCTILE_OK) return dt_fail_prefix(st, "attribute 'axis'");
        q->outer = q->inner = 1;
        for (int i = 0; i < x->rank; i++) {
            if (i < axis) q->outer *= x->dims[i];
            else if (i > axis) q->inner *= x->dims[i];
        }
        q->n = x->dims[axis];
        if (block == 0) {
            if (s->rank != 1 || s->dims[0] != q->n)
                return dt_fail(DUCTILE_ERR_SHAPE,
                               "input 1 (scale) has shape %s; expected a scalar or [%lld] (dim %d "
                               "of input 0 %s, the axis)", ss, (long long)q->n, axis, sx);
            q->mode = DT_QUANT_AXIS;
        } else {
            q->mode = DT_QUANT_BLOCKED;
            q->block = block;
            q->nblocks = (q->n + block - 1) / block;
            bool ok = s->rank == x->rank;
            for (int i = 0; ok && i < x->rank; i++)
                ok = s->dims[i] == (i == axis ? q->nblocks : x->dims[i]);
            if (!ok)
                return dt_fail(DUCTILE_ERR_SHAPE,
                               "input 1 (scale) has shape %s; with block_size %lld on axis %d it "
                               "must equal input 0 %s except dim %d = %lld", ss, (long long)block,
                               axis, sx, axis, (long long)q->nblocks);
        }
    }
    if (dt_quant_present(L, in, 2)) {
        const dt_view *z = &in[2];
        bool ok = z->rank == s->rank || (dt_view_count(z) == 1 && ns == 1 && z->rank <= 1);
        for (int i = 0; ok && i < z->rank && z->rank == s->rank; i++) ok = z->dims[i] == s->dims[i];
        if (!ok) {
            char sz[160];
            dt_format_dims(sz, sizeof sz, z->dims, z->rank, NULL);
            return dt_fail(DUCTILE_ERR_SHAPE,
                           "input 2 (zero_point) has shape %s; expected the shape of input 1 "
                           "(scale) %s", sz, ss);
        }
    }
    return DUCTILE_OK;
}

/* ---- QuantizeLinear ---- */

ductile_status dt_quantize_check(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 2, 3, 1, 1, NULL));
    int64_t od = dt_attr_int(L, "output_dtype", 0);
    if (od != 0 && !dt_quant_is_quantized((int)od))
        return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                       "attribute 'output_dtype' = %lld (%s) is not supported (supported: uint8, int8, uint16, int16, uint4, int4, uint2, int2, float8e4m3fn, float8e4m3fnuz, float8e5m2, float8e5m2fnuz, float4e2m1)",
                       (long long)od, dt_q_name((int)od));
    int64_t prec = dt_attr_int(L, "precision", 0);
    if (prec != 0 && prec != DUCTILE_FLOAT32)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                       "attribute 'precision' = %lld (%s) is not supported (supported: float32)",
                       (long long)prec, dt_q_name((int)prec));
    return DUCTILE_OK;
}

ductile_status dt_quantize_out_dtype(const ductile_layer *L, const dt_view *in, int *dtype)
{
    int od = (int)dt_attr_int(L, "output_dtype", 0);
    if (dt_quant_present(L, in, 2)) {
        if (od != 0 && od != in[2].dtype)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                           "attribute 'output_dtype' is %s but input 2 (zero_point) has dtype %s",
                           dt_q_name(od), dt_q_name(in[2].dtype));
        od = in[2].dtype;
    }
    *dtype = od ? od : DUCTILE_UINT8;
    if (!dt_quant_is_quantized(*dtype))
        return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                       "quantizing to %s is not supported (supported: uint8, int8, uint16, int16, uint4, int4, uint2, int2, float8e4m3fn, float8e4m3fnuz, float8e5m2, float8e5m2fnuz, float4e2m1)",
                       dt_q_name(*dtype));
    return DUCTILE_OK;
}

ductile_status dt_quantize_infer(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    if (!dt_quant_is_float(in[0].dtype) && in[0].dtype != DUCTILE_INT32)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                       "input 0 (x) has dtype %s (supported: float32, float16, bfloat16, float64, "
                       "int32)", dt_q_name(in[0].dtype));
    if (!dt_quant_is_float(in[1].dtype))
        return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                       "input 1 (y_scale) has dtype %s (supported: float32, float16, bfloat16, "
                       "float64)", dt_q_name(in[1].dtype));
    int dtype = DUCTILE_UINT8;
    DT_TRY(dt_quantize_out_dtype(L, in, &dtype));
    dt_qmap q;
    DT_TRY(dt_qmap_get(L, in, &q));
    out[0] = in[0];
    out[0].dtype = dtype;
    out[0].data = NULL;
    return DUCTILE_OK;
}

/* ---- DequantizeLinear ---- */

ductile_status dt_dequantize_check(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 2, 3, 1, 1, NULL));
    int64_t od = dt_attr_int(L, "output_dtype", 0);
    if (od != 0 && (od == DUCTILE_FLOAT64 || !dt_quant_is_float((int)od)))
        return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                       "attribute 'output_dtype' = %lld (%s) is not supported (supported: "
                       "float32, float16, bfloat16)", (long long)od, dt_q_name((int)od));
    return DUCTILE_OK;
}

int dt_dequantize_out_dtype(const ductile_layer *L, const dt_view *in)
{
    int od = (int)dt_attr_int(L, "output_dtype", 0);
    return od ? od : in[1].dtype;
}

ductile_status dt_dequantize_infer(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    if (!dt_quant_is_quantized(in[0].dtype) && in[0].dtype != DUCTILE_INT32)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                       "input 0 (x) has dtype %s (supported: uint8, int8, uint16, int16, uint4, int4, uint2, int2, float8e4m3fn, float8e4m3fnuz, float8e5m2, float8e5m2fnuz, float4e2m1, int32)",
                       dt_q_name(in[0].dtype));
    if (!dt_quant_is_float(in[1].dtype))
        return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                       "input 1 (x_scale) has dtype %s (supported: float32, float16, bfloat16, "
                       "float64)", dt_q_name(in[1].dtype));
    if (dt_quant_present(L, in, 2) && in[2].dtype != in[0].dtype)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                       "input 2 (x_zero_point) has dtype %s; expected %s like input 0 (x)",
                       dt_q_name(in[2].dtype), dt_q_name(in[0].dtype));
    dt_qmap q;
    DT_TRY(dt_qmap_get(L, in, &q));
    out[0] = in[0];
    out[0].dtype = dt_dequantize_out_dtype(L, in);
    out[0].data = NULL;
    return DUCTILE_OK;
}

/* ---- DynamicQuantizeLinear ---- */

ductile_status dt_dynquant_check(const ductile_layer *L)
{
    return dt_check_arity(L, 1, 1, 3, 3, NULL);
}

ductile_status dt_dynquant_infer(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    if (in[0].dtype != DUCTILE_FLOAT32)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "input 0 (x) has dtype %s; only float32 is "
                       "supported", dt_q_name(in[0].dtype));
    out[0] = in[0];
    out[0].dtype = DUCTILE_UINT8;
    out[0].data = NULL;
    out[1] = (dt_view){.dtype = DUCTILE_FLOAT32, .rank = 0};
    out[2] = (dt_view){.dtype = DUCTILE_UINT8, .rank = 0};
    return DUCTILE_OK;
}
