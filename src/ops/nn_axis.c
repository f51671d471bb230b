/* Ops along one axis: ArgMax, ArgMin, Hardmax, CumSum, CumProd, LpNormalization, TopK. */
#include "ops/nn.h"
#include "core/status.h"

#include <stdio.h>
#include <string.h>

void dt_axis_layout(const dt_view *x, int axis, int64_t *outer, int64_t *n, int64_t *inner)
{
    *outer = *n = *inner = 1;
    for (int i = 0; i < x->rank; i++) {
        if (i < axis) *outer *= x->dims[i];
        else if (i == axis) *n = x->dims[i];
        else *inner *= x->dims[i];
    }
}

bool dt_axis_from_input(const ductile_layer *L)
{
    return strcmp(L->op_type, "CumSum") == 0 || strcmp(L->op_type, "CumProd") == 0;
}

ductile_status dt_axis_get(const ductile_layer *L, const dt_view *in, int64_t dflt, int *axis)
{
    bool from_input = dt_axis_from_input(L);
    return dt_axis_of(from_input ? dflt : dt_attr_int(L, "axis", dflt), from_input, in, axis);
}

ductile_status dt_axis_of(int64_t attr, bool from_input, const dt_view *in, int *axis)
{
    int64_t a = attr;
    const char *what = "attribute 'axis'";
    if (from_input) {
        const dt_view *v = &in[1];
        if ((v->dtype != DUCTILE_INT32 && v->dtype != DUCTILE_INT64) || dt_view_count(v) != 1 ||
            v->rank > 1)
            return dt_fail(DUCTILE_ERR_SHAPE, "input 1 (axis) has dtype %s and rank %d; expected an int32 or int64 scalar",
                           ductile_dtype_name((ductile_dtype)v->dtype), v->rank);
        if (!v->data) {
            *axis = -1; /* known at run time; infer's shape does not depend on it */
            return DUCTILE_OK;
        }
        a = dt_view_int(v, 0);
        what = "input 1 (axis)";
    }
    ductile_status st = dt_norm_axis(a, in[0].rank, axis);
    if (st != DUCTILE_OK) return dt_fail_prefix(st, "%s", what);
    return DUCTILE_OK;
}

/* ArgMax, ArgMin */

ductile_status dt_nn_check_argmax(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 1, 1, 1, 1, NULL));
    DT_TRY(dt_nn_check_int_range(L, "keepdims", 1, 0, 1));
    return dt_nn_check_int_range(L, "select_last_index", 0, 0, 1);
}

static ductile_status dt_axis_want_real(const dt_view *in, int i, const char *what)
{
    switch (in[i].dtype) {
    case DUCTILE_FLOAT32: case DUCTILE_FLOAT64: case DUCTILE_INT32: case DUCTILE_INT64:
    case DUCTILE_INT8: case DUCTILE_UINT8: case DUCTILE_INT16: case DUCTILE_UINT16:
    case DUCTILE_UINT32: case DUCTILE_UINT64:
        return DUCTILE_OK;
    default:
        return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                       "input %d (%s) has dtype %s; supported: float32, float64 and integers", i,
                       what, ductile_dtype_name((ductile_dtype)in[i].dtype));
    }
}

ductile_status dt_nn_infer_argmax(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    DT_TRY(dt_axis_want_real(in, 0, "data"));
    int axis;
    DT_TRY(dt_axis_get(L, in, 0, &axis));
    if (in[0].dims[axis] == 0)
        return dt_fail(DUCTILE_ERR_SHAPE, "%s over axis %d of size 0 has no value", L->op_type, axis);
    out[0] = in[0];
    out[0].data = NULL;
    out[0].dtype = DUCTILE_INT64;
    if (dt_attr_int(L, "keepdims", 1)) {
        out[0].dims[axis] = 1;
    } else {
        for (int i = axis; i + 1 < in[0].rank; i++) out[0].dims[i] = in[0].dims[i + 1];
        out[0].rank--;
    }
    return DUCTILE_OK;
}

/* Hardmax: the axis semantics of Softmax (coerced to 2-D before opset 13). */

ductile_status dt_nn_check_hardmax(const ductile_layer *L)
{
    return dt_check_arity(L, 1, 1, 1, 1, NULL);
}

ductile_status dt_nn_infer_hardmax(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    DT_TRY(dt_want_float32(in, 0, "input"));
    int64_t o, n, i;
    DT_TRY(dt_softmax_layout(L, &in[0], &o, &n, &i));
    out[0] = in[0];
    out[0].data = NULL;
    return DUCTILE_OK;
}

/* CumSum, CumProd: the axis is input 1, read by the kernel. */

ductile_status dt_nn_check_cum(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 2, 2, 1, 1, DT_INPUT_NAMES("x", "axis")));
    DT_TRY(dt_nn_check_int_range(L, "exclusive", 0, 0, 1));
    return dt_nn_check_int_range(L, "reverse", 0, 0, 1);
}

ductile_status dt_nn_infer_cum(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    DT_TRY(dt_axis_want_real(in, 0, "x"));
    int axis;
    DT_TRY(dt_axis_get(L, in, 0, &axis));
    out[0] = in[0];
    out[0].data = NULL;
    return DUCTILE_OK;
}

/* LpNormalization */

ductile_status dt_nn_check_lpnorm(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 1, 1, 1, 1, NULL));
    return dt_nn_check_int_range(L, "p", 2, 1, 2);
}

ductile_status dt_nn_infer_lpnorm(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    DT_TRY(dt_want_float32(in, 0, "input"));
    int axis;
    DT_TRY(dt_axis_get(L, in, -1, &axis));
    out[0] = in[0];
    out[0].data = NULL;
    return DUCTILE_OK;
}

/* TopK: k is input 1 from opset 10 (its value decides the output shape), before that an
 * attribute. */

ductile_status dt_nn_check_topk(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, L->opset >= 10 ? 2 : 1, L->opset >= 10 ? 2 : 1, 2, 2, DT_INPUT_NAMES("X", "K")));
    DT_TRY(dt_nn_check_int_range(L, "largest", 1, 0, 1));
    return dt_nn_check_int_range(L, "sorted", 1, 0, 1);
}

ductile_status dt_topk_k(const ductile_layer *L, const dt_view *in, int axis, int64_t *k)
{
    bool from_input = L->opset >= 10;
    return dt_topk_k_of(from_input, from_input ? -1 : dt_attr_int(L, "k", -1),
                        from_input && L->in[1] ? L->in[1]->name : "K", in, axis, k);
}

ductile_status dt_topk_k_of(bool from_input, int64_t attr, const char *k_name, const dt_view *in,
                            int axis, int64_t *k)
{
    if (from_input) {
        const dt_view *v = &in[1];
        if ((v->dtype != DUCTILE_INT64 && v->dtype != DUCTILE_INT32) || v->rank > 1 ||
            dt_view_count(v) != 1)
            return dt_fail(DUCTILE_ERR_SHAPE, "input 1 (K) has dtype %s and rank %d; expected int64 [1]",
                           ductile_dtype_name((ductile_dtype)v->dtype), v->rank);
        if (!v->data)
            return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                           "the output shape depends on the data of input 1 ('%s')", k_name);
        *k = dt_view_int(v, 0);
    } else {
        *k = attr;
    }
    if (*k < 0 || *k > in[0].dims[axis])
        return dt_fail(DUCTILE_ERR_SHAPE, "K = %lld is outside 0..%lld (dim %d of X)", (long long)*k,
                       (long long)in[0].dims[axis], axis);
    return DUCTILE_OK;
}

ductile_status dt_nn_infer_topk(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    DT_TRY(dt_axis_want_real(in, 0, "X"));
    int axis;
    DT_TRY(dt_axis_get(L, in, -1, &axis));
    int64_t k;
    DT_TRY(dt_topk_k(L, in, axis, &k));
    out[0] = in[0];
    out[0].data = NULL;
    out[0].dims[axis] = k;
    out[1] = out[0];
    out[1].dtype = DUCTILE_INT64;
    return DUCTILE_OK;
}
