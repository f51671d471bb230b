/* Gather and GatherElements: shapes only; index values are checked by the kernels, since they
 * are usually known only at run time. */
#include "ops/shape.h"
#include "core/status.h"

ductile_status dt_shape_check_gather(const ductile_layer *L)
{
    DT_TRY(dt_check_arity(L, 2, 2, 1, 1, DT_INPUT_NAMES("data", "indices")));
    return DUCTILE_OK;
}

ductile_status dt_shape_infer_gather(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    DT_TRY(dt_shape_want_sized(L, in, 0));
    DT_TRY(dt_shape_want_int(L, in, 1));
    int r = in[0].rank, q = in[1].rank, axis;
    if (r < 1)
        return dt_fail(DUCTILE_ERR_SHAPE, "input 0 ('%s') is a scalar; Gather needs rank 1 or more",
                       dt_shape_name(L, 0));
    if (dt_norm_axis(dt_attr_int(L, "axis", 0), r, &axis) != DUCTILE_OK)
        return dt_fail_prefix(DUCTILE_ERR_SHAPE, "attribute 'axis' for input 0 ('%s')",
                              dt_shape_name(L, 0));
    if (r + q - 1 > DT_MAX_DIMS)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                       "the output would have rank %d (data rank %d + indices rank %d - 1); at most %d is supported",
                       r + q - 1, r, q, DT_MAX_DIMS);
    int o = 0;
    for (int i = 0; i < axis; i++) out[0].dims[o++] = in[0].dims[i];
    for (int i = 0; i < q; i++) out[0].dims[o++] = in[1].dims[i];
    for (int i = axis + 1; i < r; i++) out[0].dims[o++] = in[0].dims[i];
    out[0].dtype = in[0].dtype;
    out[0].rank = o;
    return DUCTILE_OK;
}

ductile_status dt_shape_check_gather_elements(const ductile_layer *L)
{
    return dt_shape_check_gather(L);
}

ductile_status dt_shape_infer_gather_elements(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    DT_TRY(dt_shape_want_sized(L, in, 0));
    DT_TRY(dt_shape_want_int(L, in, 1));
    int r = in[0].rank, axis;
    char sd[160], si[160];
    dt_format_dims(sd, sizeof sd, in[0].dims, r, NULL);
    dt_format_dims(si, sizeof si, in[1].dims, in[1].rank, NULL);
    if (r < 1 || in[1].rank != r)
        return dt_fail(DUCTILE_ERR_SHAPE,
                       "input 1 ('%s') has shape %s but input 0 ('%s') has %s; expected equal ranks of 1 or more",
                       dt_shape_name(L, 1), si, dt_shape_name(L, 0), sd);
    if (dt_norm_axis(dt_attr_int(L, "axis", 0), r, &axis) != DUCTILE_OK)
        return dt_fail_prefix(DUCTILE_ERR_SHAPE, "attribute 'axis' for input 0 ('%s')",
                              dt_shape_name(L, 0));
    /* Off the axis, index positions address data directly, so they must stay inside it. */
    for (int i = 0; i < r; i++)
        if (i != axis && in[1].dims[i] > in[0].dims[i])
            return dt_fail(DUCTILE_ERR_SHAPE,
                           "input 1 ('%s') has shape %s but input 0 ('%s') has %s: dimension %d "
                           "(%lld) exceeds the data's (%lld)", dt_shape_name(L, 1), si,
                           dt_shape_name(L, 0), sd, i, (long long)in[1].dims[i],
                           (long long)in[0].dims[i]);
    dt_shape_same(&in[1], &out[0]);
    out[0].dtype = in[0].dtype;
    return DUCTILE_OK;
}
