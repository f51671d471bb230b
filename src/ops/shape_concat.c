/* Concat and Split: joining and cutting along one axis. */
#include "ops/shape.h"
#include "core/checked.h"
#include "core/status.h"

#include <string.h>

ductile_status dt_shape_check_concat(const ductile_layer *L)
{
    /* Every input is required: lo = n_in makes the arity check name an omitted one. */
    DT_TRY(dt_check_arity(L, L->n_in > 0 ? L->n_in : 1, 1 << 30, 1, 1, NULL));
    const dt_attr *a = dt_attr_find(L, "axis");
    if (!a || a->type != DT_ATTR_INT)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'axis' is required");
    return DUCTILE_OK;
}

ductile_status dt_shape_infer_concat(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    DT_TRY(dt_shape_want_sized(L, in, 0));
    int r = in[0].rank, axis;
    if (dt_norm_axis(dt_attr_int(L, "axis", 0), r, &axis) != DUCTILE_OK || r == 0)
        return dt_fail(DUCTILE_ERR_SHAPE, "attribute 'axis' = %lld is out of range for input 0 ('%s') of rank %d (expected %d..%d)",
                       (long long)dt_attr_int(L, "axis", 0), dt_shape_name(L, 0), r, -r, r - 1);
    dt_shape_same(&in[0], &out[0]);
    char s0[160], si[160];
    dt_format_dims(s0, sizeof s0, in[0].dims, r, NULL);
    for (int i = 1; i < L->n_in; i++) {
        dt_format_dims(si, sizeof si, in[i].dims, in[i].rank, NULL);
        if (in[i].dtype != in[0].dtype)
            return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "input %d ('%s') has dtype %s but input 0 ('%s') has %s",
                           i, dt_shape_name(L, i), ductile_dtype_name((ductile_dtype)in[i].dtype),
                           dt_shape_name(L, 0), ductile_dtype_name((ductile_dtype)in[0].dtype));
        if (in[i].rank != r)
            return dt_fail(DUCTILE_ERR_SHAPE, "input %d ('%s') has shape %s but input 0 ('%s') has %s: ranks differ (%d vs %d)",
                           i, dt_shape_name(L, i), si, dt_shape_name(L, 0), s0, in[i].rank, r);
        for (int k = 0; k < r; k++) {
            if (k == axis || in[i].dims[k] == in[0].dims[k]) continue;
            return dt_fail(DUCTILE_ERR_SHAPE,
                           "input %d ('%s') has shape %s but input 0 ('%s') has %s: dimension %d differs (%lld vs %lld); all dims but axis %d must match",
                           i, dt_shape_name(L, i), si, dt_shape_name(L, 0), s0, k,
                           (long long)in[i].dims[k], (long long)in[0].dims[k], axis);
        }
        if (!dt_add_i64(out[0].dims[axis], in[i].dims[axis], &out[0].dims[axis]))
            return dt_fail(DUCTILE_ERR_SHAPE, "the concatenated dimension %d overflows int64", axis);
    }
    return DUCTILE_OK;
}

static bool dt_split_from_input(const ductile_layer *L) { return L->opset == 0 || L->opset >= 13; }

ductile_status dt_shape_check_split(const ductile_layer *L)
{
    if (L->n_out > DT_SHAPE_MAX_OUTPUTS)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "%d outputs; 1 to %d are supported", L->n_out,
                       DT_SHAPE_MAX_OUTPUTS);
    DT_TRY(dt_check_arity(L, 1, dt_split_from_input(L) ? 2 : 1, 1, DT_SHAPE_MAX_OUTPUTS, NULL));
    int64_t no = dt_attr_int(L, "num_outputs", L->n_out);
    if (no != L->n_out)
        return dt_fail(DUCTILE_ERR_INVALID_ARGUMENT, "attribute 'num_outputs' = %lld but the node has %d outputs",
                       (long long)no, L->n_out);
    return DUCTILE_OK;
}

ductile_status dt_split_attrs_read(const ductile_layer *L, dt_split_attrs *a)
{
    a->axis = dt_attr_int(L, "axis", 0);
    a->from_input = dt_split_from_input(L);
    a->n_split = 0;
    if (a->from_input) return DUCTILE_OK;
    int64_t ns;
    const int64_t *v = dt_attr_ints(L, "split", &ns);
    if (ns > DT_SHAPE_MAX_OUTPUTS)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "attribute 'split' has %lld values; at most %d are supported",
                       (long long)ns, DT_SHAPE_MAX_OUTPUTS);
    if (v) memcpy(a->split, v, (size_t)ns * sizeof *v);
    a->n_split = (int)ns;
    return DUCTILE_OK;
}

ductile_status dt_split_sizes(const ductile_layer *L, const dt_view *in, int *axis,
                              int64_t sizes[DT_SHAPE_MAX_OUTPUTS])
{
    dt_split_attrs a;
    DT_TRY(dt_split_attrs_read(L, &a));
    return dt_split_sizes_of(L, &a, in, axis, sizes);
}

ductile_status dt_split_sizes_of(const ductile_layer *L, const dt_split_attrs *a, const dt_view *in, int *axis,
                                 int64_t sizes[DT_SHAPE_MAX_OUTPUTS])
{
    int r = in[0].rank, n = L->n_out;
    if (n < 1 || n > DT_SHAPE_MAX_OUTPUTS)
        return dt_fail(DUCTILE_ERR_UNSUPPORTED, "%d outputs; 1 to %d are supported", n, DT_SHAPE_MAX_OUTPUTS);
    if (dt_norm_axis(a->axis, r, axis) != DUCTILE_OK || r == 0)
        return dt_fail(DUCTILE_ERR_SHAPE, "attribute 'axis' = %lld is out of range for input 0 ('%s') of rank %d (expected %d..%d)",
                       (long long)a->axis, dt_shape_name(L, 0), r, -r, r - 1);
    int64_t dim = in[0].dims[*axis], ns = 0;
    const char *src = "attribute 'split'";
    if (a->from_input) {
        if (dt_shape_has(L, in, 1)) {
            int got;
            DT_TRY(dt_shape_read_ints(L, in, 1, sizes, DT_SHAPE_MAX_OUTPUTS, &got));
            ns = got;
            src = "input 1 (split)";
        }
    } else {
        ns = a->n_split;
        memcpy(sizes, a->split, (size_t)ns * sizeof *sizes);
    }
    if (ns > 0) {
        if (ns != n)
            return dt_fail(DUCTILE_ERR_SHAPE, "%s has %lld values but the node has %d outputs", src,
                           (long long)ns, n);
        int64_t sum = 0;
        for (int i = 0; i < n; i++) {
            if (sizes[i] < 0 || !dt_add_i64(sum, sizes[i], &sum))
                return dt_fail(DUCTILE_ERR_SHAPE, "%s[%d] = %lld; expected a size >= 0", src, i,
                               (long long)sizes[i]);
        }
        if (sum != dim)
            return dt_fail(DUCTILE_ERR_SHAPE,
                           "%s sums to %lld but dimension %d of input 0 ('%s') is %lld", src,
                           (long long)sum, *axis, dt_shape_name(L, 0), (long long)dim);
        return DUCTILE_OK;
    }
    if (dim % n == 0) {
        for (int i = 0; i < n; i++) sizes[i] = dim / n;
        return DUCTILE_OK;
    }
    /* Opset 18 allows an uneven split: equal chunks rounded up, the last one smaller. */
    int64_t chunk = (dim + n - 1) / n;
    if ((L->opset == 0 || L->opset >= 18) && chunk * (n - 1) <= dim) {
        for (int i = 0; i < n; i++) sizes[i] = i < n - 1 ? chunk : dim - chunk * (n - 1);
        return DUCTILE_OK;
    }
    return dt_fail(DUCTILE_ERR_SHAPE, "dimension %d of input 0 ('%s') is %lld, which does not split into %d equal parts",
                   *axis, dt_shape_name(L, 0), (long long)dim, n);
}

ductile_status dt_shape_infer_split(const ductile_layer *L, const dt_view *in, dt_view *out)
{
    DT_TRY(dt_shape_want_sized(L, in, 0));
    int64_t sizes[DT_SHAPE_MAX_OUTPUTS];
    int axis;
    DT_TRY(dt_split_sizes(L, in, &axis, sizes));
    for (int i = 0; i < L->n_out; i++) {
        dt_shape_same(&in[0], &out[i]);
        out[i].dims[axis] = sizes[i];
    }
    return DUCTILE_OK;
}
