/* Index-addressed reads and writes: GatherND, ScatterElements, Scatter (opset 9-10) and
 * ScatterND. Shapes only; index values are checked by the kernels, since they are usually
 * known only at run time. */
#include "ops/shape.h"
#include "core/status.h"

#include <string.h>

static const char *const dt_reduction_names[] = {"none", "add", "mul", "max", "min"};

ductile_status dt_scatter_reduction(const ductile_layer *L, int *red)
{
    const char *r = dt_attr_string(L, "reduction", "none");
    for (int i = 0; i < 5; i++)
        if (strcmp(r, dt_reduction_names[i]) == 0) {
            *red = i;
            return DUCTILE_OK;
        }
    return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                   "attribute 'reduction' = '%s' is not supported (supported: none, add, mul, max, min)", r);
}

/* Reductions combine values arithmetically, so they need a numeric dtype the kernels have. */
static ductile_status dt_want_reducible(const ductile_layer *L, const dt_view *in, int red)
{
    int t = in[0].dtype;
    if (red == DT_SCATTER_NONE || t == DUCTILE_FLOAT32 || t == DUCTILE_FLOAT64 || t == DUCTILE_INT32 ||
        t == DUCTILE_INT64)
        return DUCTILE_OK;
    return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                   "reduction '%s' on input 0 ('%s') of dtype %s is not supported (supported: float32, "
                   "float64, int32, int64)", dt_reduction_names[red], dt_shape_name(L, 0),
                   ductile_dtype_name((ductile_dtype)t));
}

static ductile_status dt_want_same_dtype(const ductile_layer *L, const dt_view *in, int i)
{
    if (in[i].dtype != in[0].dtype)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "input %d ('%s') has dtype %s but input 0 ('%s') has %s",
                       i, dt_shape_name(L, i), ductile_dtype_name((ductile_dtype)in[i].dtype),
                       dt_shape_name(L, 0), ductile_dtype_name((ductile_dtype)in[0].dtype));
    return DUCTILE_OK;
}

static ductile_status dt_want_inputs(const ductile_layer *L, int n, const char *const *names)
{
    return dt_check_arity(L, n, n, 1, 1, names);
}

/* ---- GatherND ---- */

ductile_status dt_shape_check_gather_nd(const ductile_layer *L)
{
    static const char *const names[] = {"data", "indices"};
    DT_TRY(dt_want_inputs(L, 2, names));
    if (dt_attr_int(L, "batch_dims", 0) < 0)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'batch_dims' = %lld; expected 0 or more",
                       (long long)dt_attr_int(L, "batch_dims", 0));
    return DUCTILE_OK;
}

ductile_status dt_gather_nd_plan(const ductile_layer *L, const dt_view *in, int *batch, int *depth)
{
    return dt_gather_nd_plan_of(L, dt_attr_int(L, "batch_dims", 0), in, batch, depth);
}

ductile_status dt_gather_nd_plan_of(const ductile_layer *L, int64_t b, const dt_view *in, int *batch, int *depth)
{
    DT_TRY(dt_shape_want_sized(L, in, 0));
    DT_TRY(dt_shape_want_int(L, in, 1));
    int r = in[0].rank, q = in[1].rank;
    char sd[160], si[160];
    dt_format_dims(sd, sizeof sd, in[0].dims, r, NULL);
    dt_format_dims(si, sizeof si, in[1].dims, q, NULL);
    if (r < 1 || q < 1)
        return dt_fail(DUCTILE_ERR_SHAPE, "input 0 ('%s') has shape %s and input 1 ('%s') %s; both need rank 1 or more",
                       dt_shape_name(L, 0), sd, dt_shape_name(L, 1), si);
    if (b >= q || b >= r)
        return dt_fail(DUCTILE_ERR_SHAPE,
                       "attribute 'batch_dims' = %lld must be less than the ranks of input 0 ('%s', %d) and input 1 ('%s', %d)",
                       (long long)b, dt_shape_name(L, 0), r, dt_shape_name(L, 1), q);
    int64_t k = in[1].dims[q - 1];
    if (k < 1 || k > r - b)
        return dt_fail(DUCTILE_ERR_SHAPE,
                       "input 1 ('%s') has shape %s: its last dimension (%lld) must be 1..%lld (the rank of input 0 ('%s') %s minus batch_dims)",
                       dt_shape_name(L, 1), si, (long long)k, (long long)(r - b), dt_shape_name(L, 0), sd);
    for (int i = 0; i < b; i++)
        if (in[0].dims[i] != in[1].dims[i])
            return dt_fail(DUCTILE_ERR_SHAPE,
                           "input 1 ('%s') has shape %s but input 0 ('%s') has %s: batch dimension %d differs",
                           dt_shape_name(L, 1), si, dt_shape_name(L, 0), sd, i);
    *batch = (int)b;
    *depth = (int)k;
    return DUCTILE_OK;
}

ductile_status dt_shape_infer_gather_nd(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    int b, k, r = in[0].rank, q = in[1].rank;
    DT_TRY(dt_gather_nd_plan(L, in, &b, &k));
    int o = 0;
    if (q - 1 + r - b - k > DT_MAX_DIMS)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "the output would have rank %d; at most %d is supported",
                       q - 1 + r - b - k, DT_MAX_DIMS);
    for (int i = 0; i < q - 1; i++) out[0].dims[o++] = in[1].dims[i];
    for (int i = b + k; i < r; i++) out[0].dims[o++] = in[0].dims[i];
    out[0].rank = o;
    out[0].dtype = in[0].dtype;
    return DUCTILE_OK;
}

/* ---- ScatterElements, Scatter ---- */

ductile_status dt_shape_check_scatter_elements(const ductile_layer *L)
{
    static const char *const names[] = {"data", "indices", "updates"};
    DT_TRY(dt_want_inputs(L, 3, names));
    int red;
    return dt_scatter_reduction(L, &red);
}

/* What ScatterElements and ScatterND both require of data (0), indices (1) and updates (2), and
 * the three shapes formatted for their messages. */
static ductile_status dt_scatter_inputs(const ductile_layer *L, const dt_view *in, int *red,
                                        char sd[160], char si[160], char su[160])
{
    DT_TRY(dt_scatter_reduction(L, red));
    DT_TRY(dt_shape_want_sized(L, in, 0));
    DT_TRY(dt_shape_want_int(L, in, 1));
    DT_TRY(dt_want_same_dtype(L, in, 2));
    DT_TRY(dt_want_reducible(L, in, *red));
    dt_format_dims(sd, 160, in[0].dims, in[0].rank, NULL);
    dt_format_dims(si, 160, in[1].dims, in[1].rank, NULL);
    dt_format_dims(su, 160, in[2].dims, in[2].rank, NULL);
    return DUCTILE_OK;
}

ductile_status dt_shape_infer_scatter_elements(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    int red = DT_SCATTER_NONE, axis, r = in[0].rank;
    char sd[160], si[160], su[160];
    DT_TRY(dt_scatter_inputs(L, in, &red, sd, si, su));
    if (r < 1 || in[1].rank != r)
        return dt_fail(DUCTILE_ERR_SHAPE,
                       "input 1 ('%s') has shape %s but input 0 ('%s') has %s; expected equal ranks of 1 or more",
                       dt_shape_name(L, 1), si, dt_shape_name(L, 0), sd);
    bool same = in[2].rank == r;
    for (int i = 0; same && i < r; i++) same = in[2].dims[i] == in[1].dims[i];
    if (!same)
        return dt_fail(DUCTILE_ERR_SHAPE, "input 2 ('%s') has shape %s but input 1 ('%s') has %s; expected the same shape",
                       dt_shape_name(L, 2), su, dt_shape_name(L, 1), si);
    if (dt_norm_axis(dt_attr_int(L, "axis", 0), r, &axis) != DUCTILE_OK)
        return dt_fail_prefix(DUCTILE_ERR_SHAPE, "attribute 'axis' for input 0 ('%s')", dt_shape_name(L, 0));
    for (int i = 0; i < r; i++)
        if (i != axis && in[1].dims[i] > in[0].dims[i])
            return dt_fail(DUCTILE_ERR_SHAPE,
                           "input 1 ('%s') has shape %s but input 0 ('%s') has %s: dimension %d (%lld) exceeds the data's (%lld)",
                           dt_shape_name(L, 1), si, dt_shape_name(L, 0), sd, i, (long long)in[1].dims[i],
                           (long long)in[0].dims[i]);
    dt_shape_same(&in[0], &out[0]);
    return DUCTILE_OK;
}

/* ---- ScatterND ---- */

ductile_status dt_shape_check_scatter_nd(const ductile_layer *L) { return dt_shape_check_scatter_elements(L); }

ductile_status dt_shape_infer_scatter_nd(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    int red = DT_SCATTER_NONE, r = in[0].rank, q = in[1].rank;
    char sd[160], si[160], su[160];
    DT_TRY(dt_scatter_inputs(L, in, &red, sd, si, su));
    if (r < 1 || q < 1 || in[1].dims[q - 1] > r)
        return dt_fail(DUCTILE_ERR_SHAPE,
                       "input 1 ('%s') has shape %s and input 0 ('%s') %s; expected ranks of 1 or more and a last index dimension of at most %d",
                       dt_shape_name(L, 1), si, dt_shape_name(L, 0), sd, r);
    int k = (int)in[1].dims[q - 1];
    /* updates = indices.shape[:-1] + data.shape[k:] */
    bool ok = in[2].rank == q - 1 + r - k;
    for (int i = 0; ok && i < q - 1; i++) ok = in[2].dims[i] == in[1].dims[i];
    for (int i = k; ok && i < r; i++) ok = in[2].dims[q - 1 + i - k] == in[0].dims[i];
    if (!ok)
        return dt_fail(DUCTILE_ERR_SHAPE,
                       "input 2 ('%s') has shape %s; expected input 1's shape %s without its last dimension followed by input 0's %s from dimension %d",
                       dt_shape_name(L, 2), su, si, sd, k);
    dt_shape_same(&in[0], &out[0]);
    return DUCTILE_OK;
}
