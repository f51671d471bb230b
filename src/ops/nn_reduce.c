/* The Reduce* ops: where the axes come from and the shapes. An empty reduction gives the
 * fold's identity (0 for sums, -inf for max and the log-sums, +inf for min, 1 for Prod). */
#include "ops/nn.h"
#include "core/status.h"

#include <string.h>

/* ReduceSum moved axes from an attribute to input 1 at opset 13, the others at 18. */
static bool dt_reduce_axes_input(const ductile_layer *L)
{
    return L->opset >= 18 || (L->opset >= 13 && strcmp(L->op_type, "ReduceSum") == 0);
}

ductile_status dt_nn_check_reduce(const ductile_layer *L)
{
    bool from_input = dt_reduce_axes_input(L);
    DT_TRY(dt_check_arity(L, 1, from_input ? 2 : 1, 1, 1, NULL));
    if (from_input && dt_attr_find(L, "axes"))
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                       "attribute 'axes' is not allowed at opset %d; axes are input 1", L->opset);
    DT_TRY(dt_nn_check_int_range(L, "keepdims", 1, 0, 1));
    return dt_nn_check_int_range(L, "noop_with_empty_axes", 0, 0, 1);
}

ductile_status dt_reduce_attrs_read(const ductile_layer *L, dt_reduce_attrs *a)
{
    *a = (dt_reduce_attrs){.from_input = dt_reduce_axes_input(L),
                           .noop = dt_attr_int(L, "noop_with_empty_axes", 0) != 0,
                           .axes_name = L->n_in > 1 && L->in[1] ? L->in[1]->name : "axes"};
    if (a->from_input) return DUCTILE_OK;
    int64_t n = 0;
    const int64_t *attr = dt_attr_ints(L, "axes", &n);
    /* More axes than a tensor has dims must repeat one; infer names which. */
    if (n > DT_MAX_DIMS)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'axes' has %lld entries; a tensor has at most %d dims",
                       (long long)n, DT_MAX_DIMS);
    a->n_axes = (int)n;
    for (int k = 0; k < a->n_axes; k++) a->axes[k] = attr[k];
    return DUCTILE_OK;
}

ductile_status dt_reduce_axes_of(const dt_reduce_attrs *a, int n_in, const dt_view *in,
                                 bool reduced[DT_MAX_DIMS], bool *identity)
{
    int r = in[0].rank;
    int64_t n = 0;
    const dt_view *axes = NULL;
    if (a->from_input) {
        if (n_in > 1 && in[1].rank >= 0) {
            axes = &in[1];
            if (axes->rank != 1 || (axes->dtype != DUCTILE_INT64 && axes->dtype != DUCTILE_INT32)) {
                char s[160];
                dt_format_dims(s, sizeof s, axes->dims, axes->rank, NULL);
                return dt_fail(DUCTILE_ERR_SHAPE, "input 1 (axes) is %s %s; expected a 1-D int64 tensor",
                               ductile_dtype_name((ductile_dtype)axes->dtype), s);
            }
            n = axes->dims[0];
            if (n > 0 && !axes->data)
                return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                               "the output shape depends on the data of input 1 (%s)", a->axes_name);
        }
    } else {
        n = a->n_axes;
    }
    *identity = false;
    bool all = n == 0;
    if (all && a->noop) {
        *identity = true;
        all = false;
    }
    for (int i = 0; i < DT_MAX_DIMS; i++) reduced[i] = all && i < r;
    for (int64_t k = 0; k < n; k++) {
        int64_t v = axes ? dt_view_int(axes, k) : a->axes[k];
        int ax;
        ductile_status st = dt_norm_axis(v, r, &ax);
        if (st != DUCTILE_OK) return dt_fail_prefix(st, "axes[%lld]", (long long)k);
        if (reduced[ax])
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "axes[%lld] = %lld repeats axis %d",
                           (long long)k, (long long)v, ax);
        reduced[ax] = true;
    }
    return DUCTILE_OK;
}

ductile_status dt_reduce_axes(const ductile_layer *L, const dt_view *in, bool reduced[DT_MAX_DIMS],
                              bool *identity)
{
    dt_reduce_attrs a;
    DT_TRY(dt_reduce_attrs_read(L, &a));
    return dt_reduce_axes_of(&a, L->n_in, in, reduced, identity);
}

/* The CPU computes in float32: exact for halves, integers below 2^24 and bool. */
static ductile_status dt_reduce_dtype(const ductile_layer *L, int t)
{
    if (t == DUCTILE_FLOAT32 || t == DUCTILE_FLOAT16 || t == DUCTILE_BFLOAT16 || t == DUCTILE_FLOAT64)
        return DUCTILE_OK;
    bool minmax = !strcmp(L->op_type, "ReduceMax") || !strcmp(L->op_type, "ReduceMin");
    bool ints = minmax || !strcmp(L->op_type, "ReduceSum") || !strcmp(L->op_type, "ReduceMean") ||
                !strcmp(L->op_type, "ReduceProd") || !strcmp(L->op_type, "ReduceL1") ||
                !strcmp(L->op_type, "ReduceSumSquare");
    bool is_int = t == DUCTILE_INT8 || t == DUCTILE_UINT8 || t == DUCTILE_INT16 ||
                  t == DUCTILE_UINT16 || t == DUCTILE_INT32 || t == DUCTILE_INT64 ||
                  t == DUCTILE_UINT32 || t == DUCTILE_UINT64;
    if ((ints && is_int) || (minmax && t == DUCTILE_BOOL)) return DUCTILE_OK;
    return dt_fail(DUCTILE_ERR_UNSUPPORTED, "input 0 (data) has dtype %s (supported: float32, "
                   "float16, bfloat16, float64%s)", ductile_dtype_name((ductile_dtype)t),
                   minmax ? ", integers, bool" : ints ? ", integers" : "");
}

ductile_status dt_nn_infer_reduce(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    DT_TRY(dt_reduce_dtype(L, in[0].dtype));
    bool red[DT_MAX_DIMS], identity;
    DT_TRY(dt_reduce_axes(L, in, red, &identity));
    bool keep = dt_attr_int(L, "keepdims", 1) != 0;
    out[0].dtype = in[0].dtype;
    out[0].data = NULL;
    int r = 0;
    for (int i = 0; i < in[0].rank; i++) {
        if (!red[i])
            out[0].dims[r++] = in[0].dims[i];
        else if (keep)
            out[0].dims[r++] = 1;
    }
    out[0].rank = r;
    return DUCTILE_OK;
}
