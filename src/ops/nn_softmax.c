/* Softmax and LogSoftmax: the axis semantics that changed at opset 13. */
#include "ops/nn.h"
#include "core/status.h"

ductile_status dt_nn_check_softmax(const ductile_layer *L)
{
    return dt_check_arity(L, 1, 1, 1, 1, NULL);
}

int64_t dt_softmax_axis_attr(const ductile_layer *L)
{
    return dt_attr_int(L, "axis", L->opset < 13 ? 1 : -1);
}

ductile_status dt_softmax_layout(const ductile_layer *L, const dt_view *x, int64_t *outer,
                                 int64_t *n, int64_t *inner)
{
    return dt_softmax_layout_of(dt_softmax_axis_attr(L), L->opset < 13, x, outer, n, inner);
}

ductile_status dt_softmax_layout_of(int64_t axis_attr, bool coerce, const dt_view *x, int64_t *outer,
                                    int64_t *n, int64_t *inner)
{
    /* Before opset 13 the input is coerced to 2-D at axis (default 1) and each row of the
     * flattened trailing dims is normalized; from 13 only the one axis (default -1) is. */
    int axis;
    ductile_status st = dt_norm_axis(axis_attr, x->rank, &axis);
    if (st != DUCTILE_OK) return dt_fail_prefix(st, "attribute 'axis'");
    *outer = 1;
    *n = 1;
    *inner = 1;
    for (int i = 0; i < x->rank; i++) {
        if (i < axis)
            *outer *= x->dims[i];
        else if (i == axis || coerce)
            *n *= x->dims[i];
        else
            *inner *= x->dims[i];
    }
    return DUCTILE_OK;
}

ductile_status dt_nn_infer_softmax(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    int t = in[0].dtype;
    /* The CPU computes float16, bfloat16 and float64 in float32. */
    if (t != DUCTILE_FLOAT32 && t != DUCTILE_FLOAT16 && t != DUCTILE_BFLOAT16 && t != DUCTILE_FLOAT64)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "input 0 (input) has dtype %s (supported: float32, "
                       "float16, bfloat16, float64)", ductile_dtype_name((ductile_dtype)t));
    int64_t o, n, i;
    DT_TRY(dt_softmax_layout(L, &in[0], &o, &n, &i));
    out[0] = in[0];
    out[0].data = NULL;
    return DUCTILE_OK;
}
