/* Ops that keep, make or reorder elements by a fixed pattern of positions: Trilu, EyeLike,
 * ReverseSequence. */
#include "ops/shape.h"
#include "core/dtype.h"
#include "core/status.h"

/* ---- Trilu ---- */

ductile_status dt_shape_check_trilu(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 1, 2, 1, 1, NULL));
    int64_t u = dt_attr_int(L, "upper", 1);
    if (u != 0 && u != 1)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'upper' = %lld; expected 0 or 1", (long long)u);
    return DUCTILE_OK;
}

ductile_status dt_shape_infer_trilu(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    DT_TRY(dt_shape_want_sized(L, in, 0));
    if (in[0].rank < 2) {
        char s[160];
        return dt_fail(DUCTILE_ERR_SHAPE, "input 0 ('%s') has shape %s; Trilu needs rank 2 or more",
                       dt_shape_name(L, 0), dt_format_dims(s, sizeof s, in[0].dims, in[0].rank, NULL));
    }
    if (dt_shape_has(L, in, 1)) {
        DT_TRY(dt_shape_want_int(L, in, 1));
        if (dt_view_count(&in[1]) != 1)
            return dt_fail(DUCTILE_ERR_SHAPE, "input 1 (k, '%s') has %lld values; expected a scalar",
                           dt_shape_name(L, 1), (long long)dt_view_count(&in[1]));
    }
    dt_shape_same(&in[0], &out[0]);
    return DUCTILE_OK;
}

/* ---- EyeLike ---- */

ductile_status dt_shape_check_eye_like(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 1, 1, 1, 1, NULL));
    const dt_attr *a = dt_attr_find(L, "dtype");
    if (a && (!dt_dtype_valid((int)a->i) || a->i == DUCTILE_STRING))
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "attribute 'dtype' = %lld (%s) is not supported", (long long)a->i,
                       ductile_dtype_name((ductile_dtype)a->i));
    return DUCTILE_OK;
}

ductile_status dt_shape_infer_eye_like(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    DT_TRY(dt_shape_check_eye_like(L));
    if (in[0].rank != 2) {
        char s[160];
        return dt_fail(DUCTILE_ERR_SHAPE, "input 0 ('%s') has shape %s; EyeLike needs rank 2",
                       dt_shape_name(L, 0), dt_format_dims(s, sizeof s, in[0].dims, in[0].rank, NULL));
    }
    dt_shape_same(&in[0], &out[0]);
    const dt_attr *a = dt_attr_find(L, "dtype");
    if (a) out[0].dtype = (int)a->i;
    return dt_shape_want_sized(L, out, 0);
}

/* ---- ReverseSequence ---- */

ductile_status dt_shape_check_reverse_sequence(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 2, 2, 1, 1, DT_INPUT_NAMES("input", "sequence_lens")));
    int64_t b = dt_attr_int(L, "batch_axis", 1), t = dt_attr_int(L, "time_axis", 0);
    if ((b != 0 && b != 1) || (t != 0 && t != 1) || b == t)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                       "attributes 'batch_axis' = %lld and 'time_axis' = %lld; expected 0 and 1 in either order",
                       (long long)b, (long long)t);
    return DUCTILE_OK;
}

ductile_status dt_shape_infer_reverse_sequence(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    DT_TRY(dt_shape_check_reverse_sequence(L));
    DT_TRY(dt_shape_want_sized(L, in, 0));
    DT_TRY(dt_shape_want_int(L, in, 1));
    char sd[160], sl[160];
    dt_format_dims(sd, sizeof sd, in[0].dims, in[0].rank, NULL);
    dt_format_dims(sl, sizeof sl, in[1].dims, in[1].rank, NULL);
    if (in[0].rank < 2)
        return dt_fail(DUCTILE_ERR_SHAPE, "input 0 ('%s') has shape %s; ReverseSequence needs rank 2 or more",
                       dt_shape_name(L, 0), sd);
    int64_t b = dt_attr_int(L, "batch_axis", 1);
    if (in[1].rank != 1 || in[1].dims[0] != in[0].dims[b])
        return dt_fail(DUCTILE_ERR_SHAPE,
                       "input 1 ('%s') has shape %s; expected [%lld], the batch dimension (axis %lld) of input 0 ('%s') %s",
                       dt_shape_name(L, 1), sl, (long long)in[0].dims[b], (long long)b, dt_shape_name(L, 0), sd);
    dt_shape_same(&in[0], &out[0]);
    return DUCTILE_OK;
}
