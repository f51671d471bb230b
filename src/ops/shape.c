/* The shape op family's table and the helpers its ops share. */
#include "ops/shape.h"
#include "ops/families.h"
#include "core/status.h"

#include <stdio.h>

const char *dt_shape_name(const ductile_layer *L, int i)
{
    return i < L->n_in && L->in[i] ? L->in[i]->name : "";
}

bool dt_shape_has(const ductile_layer *L, const dt_view *in, int i)
{
    return i < L->n_in && L->in[i] && in[i].rank >= 0;
}

ductile_status dt_shape_need_value(const ductile_layer *L, const dt_view *in, int i)
{
    if (!in[i].data)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                       "the output shape depends on the data of input %d ('%s')", i,
                       dt_shape_name(L, i));
    return DUCTILE_OK;
}

ductile_status dt_shape_want_sized(const ductile_layer *L, const dt_view *in, int i)
{
    if (ductile_dtype_size((ductile_dtype)in[i].dtype) == 0)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "input %d ('%s') has dtype %s, which is not supported",
                       i, dt_shape_name(L, i), ductile_dtype_name((ductile_dtype)in[i].dtype));
    return DUCTILE_OK;
}

ductile_status dt_shape_want_int(const ductile_layer *L, const dt_view *in, int i)
{
    if (in[i].dtype != DUCTILE_INT64 && in[i].dtype != DUCTILE_INT32)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT,
                       "input %d ('%s') has dtype %s; expected int64 or int32", i,
                       dt_shape_name(L, i), ductile_dtype_name((ductile_dtype)in[i].dtype));
    return DUCTILE_OK;
}

ductile_status dt_shape_read_ints(const ductile_layer *L, const dt_view *in, int i,
                                  int64_t *vals, int cap, int *n)
{
    DT_TRY(dt_shape_need_value(L, in, i));
    DT_TRY(dt_shape_want_int(L, in, i));
    if (in[i].rank > 1) {
        char s[160];
        dt_format_dims(s, sizeof s, in[i].dims, in[i].rank, NULL);
        return dt_fail(DUCTILE_ERR_SHAPE, "input %d ('%s') has shape %s; expected a 1-D tensor",
                       i, dt_shape_name(L, i), s);
    }
    int64_t count = dt_view_count(&in[i]);
    if (count > cap)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED,
                       "input %d ('%s') has %lld values; at most %d are supported", i,
                       dt_shape_name(L, i), (long long)count, cap);
    for (int64_t k = 0; k < count; k++) vals[k] = dt_view_int(&in[i], k);
    *n = (int)count;
    return DUCTILE_OK;
}

char *dt_shape_format_values(char *buf, size_t cap, const int64_t *v, int n)
{
    size_t used = 0;
    if (cap == 0) return buf;
    used += (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < n && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%lld", i ? "," : "", (long long)v[i]);
    if (used < cap) snprintf(buf + used, cap - used, "]");
    return buf;
}

void dt_shape_same(const dt_view *in, dt_view *out)
{
    out->dtype = in->dtype;
    out->rank = in->rank;
    for (int i = 0; i < in->rank; i++) out->dims[i] = in->dims[i];
}

const dt_opdef dt_ops_shape[] = {
    {"Shape", dt_shape_check_shape, dt_shape_infer_shape, 0},
    {"Size", dt_shape_check_size, dt_shape_infer_size, 0},
    {"ConstantOfShape", dt_shape_check_constant_of_shape, dt_shape_infer_constant_of_shape, 1u << 0},
    {"Range", dt_shape_check_range, dt_shape_infer_range, (1u << 0) | (1u << 1) | (1u << 2)},
    {"Reshape", dt_shape_check_reshape, dt_shape_infer_reshape, 1u << 1},
    {"Flatten", dt_shape_check_flatten, dt_shape_infer_flatten, 0},
    /* axes is input 1 from opset 13; before, the attribute (and there is no input 1). */
    {"Squeeze", dt_shape_check_squeeze, dt_shape_infer_squeeze, 1u << 1},
    {"Unsqueeze", dt_shape_check_unsqueeze, dt_shape_infer_unsqueeze, 1u << 1},
    {"Expand", dt_shape_check_expand, dt_shape_infer_expand, 1u << 1},
    {"Gather", dt_shape_check_gather, dt_shape_infer_gather, 0},
    {"GatherElements", dt_shape_check_gather_elements, dt_shape_infer_gather_elements, 0},
    {"Concat", dt_shape_check_concat, dt_shape_infer_concat, 0},
    {"Split", dt_shape_check_split, dt_shape_infer_split, 1u << 1},
    /* starts, ends, axes, steps (opset 10+). */
    {"Slice", dt_shape_check_slice, dt_shape_infer_slice, 0x1eu},
    {"Transpose", dt_shape_check_transpose, dt_shape_infer_transpose, 0},
    {"DepthToSpace", dt_shape_check_depth_to_space, dt_shape_infer_depth_to_space, 0},
    {"SpaceToDepth", dt_shape_check_space_to_depth, dt_shape_infer_space_to_depth, 0},
    {"Tile", dt_shape_check_tile, dt_shape_infer_tile, 1u << 1},
    /* pads (input 1) and axes (input 3, opset 18); constant_value is only read by the kernel. */
    {"Pad", dt_shape_check_pad, dt_shape_infer_pad, (1u << 1) | (1u << 3)},
    {"GatherND", dt_shape_check_gather_nd, dt_shape_infer_gather_nd, 0},
    {"ScatterElements", dt_shape_check_scatter_elements, dt_shape_infer_scatter_elements, 0},
    /* Scatter (opset 9-10) is ScatterElements without reduction. */
    {"Scatter", dt_shape_check_scatter_elements, dt_shape_infer_scatter_elements, 0},
    {"ScatterND", dt_shape_check_scatter_nd, dt_shape_infer_scatter_nd, 0},
    /* k (input 1) is read only by the kernel. */
    {"Trilu", dt_shape_check_trilu, dt_shape_infer_trilu, 0},
    {"EyeLike", dt_shape_check_eye_like, dt_shape_infer_eye_like, 0},
    {"ReverseSequence", dt_shape_check_reverse_sequence, dt_shape_infer_reverse_sequence, 0},
    {"ConvTranspose", dt_shape_check_conv_transpose, dt_shape_infer_conv_transpose, 0},
    /* image_shape and block_shape. */
    {"Col2Im", dt_shape_check_col2im, dt_shape_infer_col2im, (1u << 1) | (1u << 2)},
    {"CenterCropPad", dt_shape_check_center_crop_pad, dt_shape_infer_center_crop_pad, 1u << 1},
    /* Output shapes that depend on data: condition, the input, the input. */
    {"Compress", dt_shape_check_compress, dt_shape_infer_compress, 1u << 1},
    {"NonZero", dt_shape_check_non_zero, dt_shape_infer_non_zero, 1u << 0},
    {"Unique", dt_shape_check_unique, dt_shape_infer_unique, 1u << 0},
    {NULL, NULL, NULL, 0},
};
